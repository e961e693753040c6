//! HTTP through the host's global `fetch` (browsers and Node alike).

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &Request) -> Promise;
}

/// A fetched response: status, content type and body.
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

/// `GET url`.
pub(crate) async fn get(url: &str) -> Result<Fetched, JsValue> {
    let init = RequestInit::new();
    init.set_method("GET");
    send(&Request::new_with_str_and_init(url, &init)?).await
}

/// `POST url` with `body` as `content_type`.
pub(crate) async fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Fetched, JsValue> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&Uint8Array::from(body).into());
    let request = Request::new_with_str_and_init(url, &init)?;
    request.headers().set("content-type", content_type)?;
    send(&request).await
}

async fn send(request: &Request) -> Result<Fetched, JsValue> {
    let response: Response = JsFuture::from(global_fetch(request)).await?.dyn_into()?;
    let content_type = response.headers().get("content-type")?.unwrap_or_default();
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(Fetched {
        status: response.status(),
        content_type,
        body: Uint8Array::new(&buffer).to_vec(),
    })
}
