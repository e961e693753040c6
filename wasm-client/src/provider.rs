//! An EIP-1193 provider over a [`ShroudClient`](crate::ShroudClient)'s session: `request({method, params})`, `on`,
//! `removeListener`. Plugs into viem (`custom(provider)`) and ethers (`new BrowserProvider(provider)`).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::rpc::{SharedSession, call, rpc_error};

type Listeners = Rc<RefCell<Vec<(String, Function)>>>;

/// The EIP-1193 provider. Emits `connect` (`{chainId}`) on the first answered `eth_chainId` and
/// `chainChanged` when a later one differs.
#[wasm_bindgen]
pub struct Eip1193Provider {
    session: SharedSession,
    listeners: Listeners,
    chain_id: Rc<RefCell<Option<String>>>,
}

impl Eip1193Provider {
    pub(crate) fn new(session: SharedSession) -> Eip1193Provider {
        Eip1193Provider {
            session,
            listeners: Rc::default(),
            chain_id: Rc::default(),
        }
    }
}

#[wasm_bindgen]
impl Eip1193Provider {
    /// EIP-1193 `request({method, params})`: resolves to the result, rejects with an Error
    /// carrying `code` (JSON-RPC codes; 4200 for subscriptions, which OHTTP cannot carry).
    ///
    /// An array of JSON-RPC request objects (a batch, as web3.js's `BatchRequest` sends it)
    /// resolves to an array of JSON-RPC response objects in the same order, each with the
    /// request's `id` and its `result` or `error`; one call failing does not fail the others.
    pub fn request(&self, args: JsValue) -> Promise {
        let session = Rc::clone(&self.session);
        let listeners = Rc::clone(&self.listeners);
        let chain_id = Rc::clone(&self.chain_id);
        if Array::is_array(&args) {
            return future_to_promise(async move { batch(&session, &Array::from(&args)).await });
        }
        future_to_promise(async move {
            let method = Reflect::get(&args, &"method".into())?
                .as_string()
                .ok_or_else(|| rpc_error(-32600, "request: method must be a string", None))?;
            if method == "eth_subscribe" || method == "eth_unsubscribe" {
                return Err(rpc_error(
                    4200,
                    "subscriptions are not supported over OHTTP",
                    None,
                ));
            }
            let params = Reflect::get(&args, &"params".into())?;
            let result = call(&session, &method, &params).await?;
            if method == "eth_chainId"
                && let Some(id) = result.as_string()
            {
                let previous = chain_id.borrow_mut().replace(id.clone());
                match previous {
                    None => {
                        let info = Object::new();
                        Reflect::set(&info, &"chainId".into(), &id.clone().into())?;
                        emit(&listeners, "connect", &info.into());
                    }
                    Some(old) if old != id => emit(&listeners, "chainChanged", &id.into()),
                    Some(_) => {}
                }
            }
            Ok(result)
        })
    }

    /// Registers `listener` for `event`; returns the provider for chaining.
    pub fn on(&self, event: String, listener: Function) -> Eip1193Provider {
        self.listeners.borrow_mut().push((event, listener));
        self.clone_handle()
    }

    /// Removes a listener registered with [`on`](Self::on).
    #[wasm_bindgen(js_name = removeListener)]
    pub fn remove_listener(&self, event: String, listener: Function) -> Eip1193Provider {
        self.listeners
            .borrow_mut()
            .retain(|(e, l)| !(e == &event && l == &listener));
        self.clone_handle()
    }

    /// The number of listeners registered for `event`.
    #[wasm_bindgen(js_name = listenerCount)]
    pub fn listener_count(&self, event: String) -> usize {
        self.listeners
            .borrow()
            .iter()
            .filter(|(e, _)| e == &event)
            .count()
    }
}

impl Eip1193Provider {
    fn clone_handle(&self) -> Eip1193Provider {
        Eip1193Provider {
            session: Rc::clone(&self.session),
            listeners: Rc::clone(&self.listeners),
            chain_id: Rc::clone(&self.chain_id),
        }
    }
}

/// Most calls in one batch (the gateway's default `max_batch_len`).
const MAX_BATCH_LEN: u32 = 100;

/// Each member of `requests` as its own sealed call, in order, answered as JSON-RPC response
/// objects. Subscriptions and malformed members get error objects; an empty or oversized
/// batch is refused as a whole (-32600).
async fn batch(session: &SharedSession, requests: &Array) -> Result<JsValue, JsValue> {
    let len = requests.length();
    if len == 0 || len > MAX_BATCH_LEN {
        return Err(rpc_error(
            -32600,
            &format!("request: a batch holds 1 to {MAX_BATCH_LEN} calls, not {len}"),
            None,
        ));
    }
    let answers = Array::new();
    for request in requests.iter() {
        answers.push(&member(session, &request).await?);
    }
    Ok(answers.into())
}

/// The JSON-RPC response object of one batch member.
async fn member(session: &SharedSession, request: &JsValue) -> Result<JsValue, JsValue> {
    let id = if request.is_object() {
        Reflect::get(request, &"id".into())?
    } else {
        JsValue::NULL
    };
    let id = if id.is_undefined() { JsValue::NULL } else { id };
    let method = if request.is_object() {
        Reflect::get(request, &"method".into())?.as_string()
    } else {
        None
    };
    let outcome = match method.as_deref() {
        None => Err(rpc_error(-32600, "request: method must be a string", None)),
        Some("eth_subscribe" | "eth_unsubscribe") => Err(rpc_error(
            4200,
            "subscriptions are not supported over OHTTP",
            None,
        )),
        Some(method) => {
            let params = Reflect::get(request, &"params".into())?;
            call(session, method, &params).await
        }
    };
    let answer = Object::new();
    Reflect::set(&answer, &"jsonrpc".into(), &"2.0".into())?;
    Reflect::set(&answer, &"id".into(), &id)?;
    match outcome {
        Ok(result) => {
            Reflect::set(&answer, &"result".into(), &result)?;
        }
        Err(error) => {
            let object = Object::new();
            Reflect::set(
                &object,
                &"code".into(),
                &Reflect::get(&error, &"code".into())?,
            )?;
            Reflect::set(
                &object,
                &"message".into(),
                &Reflect::get(&error, &"message".into())?,
            )?;
            let data = Reflect::get(&error, &"data".into())?;
            if !data.is_undefined() {
                Reflect::set(&object, &"data".into(), &data)?;
            }
            Reflect::set(&answer, &"error".into(), &object)?;
        }
    }
    Ok(answer.into())
}

fn emit(listeners: &Listeners, event: &str, payload: &JsValue) {
    let targets: Vec<Function> = listeners
        .borrow()
        .iter()
        .filter(|(e, _)| e == event)
        .map(|(_, l)| l.clone())
        .collect();
    for listener in targets {
        // A listener that throws must not break the provider.
        let _ = listener.apply(&JsValue::NULL, &Array::of1(payload));
    }
}
