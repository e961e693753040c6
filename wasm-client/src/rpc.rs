//! One sealed JSON-RPC call over a shared session, and the errors JavaScript sees: what
//! [`ShroudClient`](crate::ShroudClient) and the EIP-1193 provider both use, below both.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::fetch;
use crate::session::{Endpoint, Nonce, Session, SessionError};

/// The session every clone of a client (and its providers) seals with; replaced when its
/// verdict has expired.
pub(crate) type SharedSession = Rc<RefCell<Rc<Session>>>;

/// `GET /.well-known/shroud/attestation` (with `?nonce=` when `nonce` is given): the bundle's
/// body.
pub(crate) async fn fetch_bundle(
    endpoint: &Endpoint,
    nonce: Option<&Nonce>,
) -> Result<Vec<u8>, JsValue> {
    let url = match nonce {
        Some(nonce) => endpoint.fresh_bundle_url(nonce),
        None => endpoint.bundle_url(),
    };
    let bundle = fetch::get(&url).await?;
    match bundle.status {
        200 => Ok(bundle.body),
        429 if nonce.is_some() => Err(js_error(SessionError::Transport(
            "fresh evidence: the gateway is rate limiting nonce requests (HTTP 429); try again later"
                .to_owned(),
        ))),
        400 if nonce.is_some() => Err(js_error(SessionError::Transport(format!(
            "fresh evidence: the gateway refused the nonce (HTTP 400){}",
            problem_detail(&bundle.body)
        )))),
        status => Err(js_error(SessionError::Transport(format!(
            "attestation bundle: HTTP {status}{}",
            problem_detail(&bundle.body)
        )))),
    }
}

/// `: DETAIL` of a `problem+json` body (RFC 9457), bounded, or nothing.
fn problem_detail(body: &[u8]) -> String {
    const MAX_DETAIL: usize = 200;
    let problem: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let detail = problem.as_ref().and_then(|p| {
        p.get("detail")
            .or_else(|| p.get("title"))
            .and_then(serde_json::Value::as_str)
    });
    match detail {
        Some(detail) => {
            let cut: String = detail.chars().take(MAX_DETAIL).collect();
            format!(": {cut}")
        }
        None => String::new(),
    }
}

/// A new random nonce when fresh evidence is asked for, else none.
pub(crate) fn nonce_for(fresh: bool) -> Result<Option<Nonce>, JsValue> {
    if fresh {
        Nonce::random().map(Some).map_err(js_error)
    } else {
        Ok(None)
    }
}

/// The session to seal with now: the current one while its verdict holds, else one verified
/// afresh from a newly fetched bundle, nonce-bound again when the session is (nothing is sealed
/// when that fails).
async fn current_session(shared: &SharedSession) -> Result<Rc<Session>, JsValue> {
    let session = Rc::clone(&shared.borrow());
    if !session.is_expired(now()).map_err(js_error)? {
        return Ok(session);
    }
    let nonce = nonce_for(session.is_fresh())?;
    let bundle = fetch_bundle(&session.endpoint, nonce.as_ref()).await?;
    let fresh = Rc::new(
        session
            .reopen(&bundle, now(), nonce.as_ref())
            .map_err(js_error)?,
    );
    *shared.borrow_mut() = Rc::clone(&fresh);
    Ok(fresh)
}

/// One sealed JSON-RPC call: the `result`, or a rejection carrying `code`, `message`, `data`.
pub(crate) async fn call(
    shared: &SharedSession,
    method: &str,
    params: &JsValue,
) -> Result<JsValue, JsValue> {
    let session = current_session(shared).await?;
    let params = if params.is_undefined() || params.is_null() {
        "[]".to_owned()
    } else {
        js_sys::JSON::stringify(params)?
            .as_string()
            .unwrap_or_else(|| "[]".to_owned())
    };
    let params: serde_json::Value =
        serde_json::from_str(&params).map_err(|e| rpc_error(-32602, &e.to_string(), None))?;
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let sealed = session
        .seal(body.to_string().as_bytes(), now())
        .map_err(js_error)?;
    let answer = fetch::post(
        &session.endpoint.ohttp_url(),
        shroud_ohttp::REQUEST_MEDIA_TYPE,
        sealed.body(),
    )
    .await?;
    if answer.status != 200
        || !shroud_ohttp::media_type_is(&answer.content_type, shroud_ohttp::RESPONSE_MEDIA_TYPE)
    {
        return Err(js_error(SessionError::Http {
            status: answer.status,
            body: String::from_utf8_lossy(&answer.body).into_owned(),
        }));
    }
    let json = sealed.open(&answer.body).map_err(js_error)?;
    let reply: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| rpc_error(-32700, &e.to_string(), None))?;
    if let Some(error) = reply.get("error") {
        let code = error
            .get("code")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-32603);
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("error");
        return Err(rpc_error(code, message, error.get("data")));
    }
    let result = reply
        .get("result")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    js_sys::JSON::parse(&result.to_string())
}

/// A JavaScript Error with EIP-1193 `code` (and `data`).
pub(crate) fn rpc_error(code: i64, message: &str, data: Option<&serde_json::Value>) -> JsValue {
    let error = js_sys::Error::new(message);
    // Setting properties on a fresh Error object cannot fail.
    let _ = Reflect::set(&error, &"code".into(), &JsValue::from_f64(code as f64));
    if let Some(data) = data.and_then(|d| js_sys::JSON::parse(&d.to_string()).ok()) {
        let _ = Reflect::set(&error, &"data".into(), &data);
    }
    error.into()
}

/// A refusal or failure as a JavaScript Error (EIP-1193 code 4900: disconnected).
pub(crate) fn js_error(error: SessionError) -> JsValue {
    rpc_error(4900, &error.to_string(), None)
}

/// The browser's (or Node's) clock, seconds since the epoch.
pub(crate) fn now() -> f64 {
    js_sys::Date::now() / 1000.0
}
