//! [`ShroudClient`]: fetch the attestation bundle, verify it in wasm, then seal every call.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::provider::Eip1193Provider;
use crate::rpc::{SharedSession, call, fetch_bundle, js_error, nonce_for, now};
use crate::session::{Endpoint, Session};

#[wasm_bindgen(typescript_custom_section)]
const CONNECT_OPTIONS: &str = r#"
/** The options of `ShroudClient.connect`. */
export interface ConnectOptions {
  /** Accept the simulated TEE of `shroud-gateway --dev` (development only: it proves nothing). */
  allowSimulated?: boolean;
  /** Ask for evidence bound to a random nonce (`?nonce=`) and refuse a bundle without it. */
  fresh?: boolean;
}
"#;

/// `connect`'s options, read from the JavaScript object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ConnectOptions {
    allow_simulated: bool,
    fresh: bool,
}

impl ConnectOptions {
    /// `undefined`/`null` (the defaults), a boolean (`allowSimulated`, the earlier signature),
    /// or an object whose `allowSimulated` and `fresh` are booleans when present.
    fn from_js(value: &JsValue) -> Result<ConnectOptions, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(ConnectOptions::default());
        }
        if let Some(allow_simulated) = value.as_bool() {
            return Ok(ConnectOptions {
                allow_simulated,
                fresh: false,
            });
        }
        if !value.is_object() {
            return Err(js_sys::TypeError::new(
                "connect: options must be an object { allowSimulated?, fresh? }",
            )
            .into());
        }
        Ok(ConnectOptions {
            allow_simulated: flag(value, "allowSimulated")?,
            fresh: flag(value, "fresh")?,
        })
    }
}

/// A boolean option, `false` when absent; anything else is refused rather than guessed.
fn flag(options: &JsValue, name: &str) -> Result<bool, JsValue> {
    let value = js_sys::Reflect::get(options, &JsValue::from_str(name))?;
    if value.is_undefined() {
        return Ok(false);
    }
    value.as_bool().ok_or_else(|| {
        js_sys::TypeError::new(&format!("connect: options.{name} must be a boolean")).into()
    })
}

/// A gateway whose attestation bundle verified: every call is sealed with Oblivious HTTP to
/// the HPKE keys its enclave attested.
///
/// ```js
/// const client = await ShroudClient.connect("https://gateway.example/eth", policyToml, { fresh: true });
/// const block = await client.request("eth_blockNumber", []);
/// const provider = client.provider(); // EIP-1193: viem `custom(provider)`, ethers `BrowserProvider`
/// ```
#[wasm_bindgen]
#[derive(Clone)]
pub struct ShroudClient {
    pub(crate) inner: SharedSession,
}

#[wasm_bindgen]
impl ShroudClient {
    /// Fetches `GET /.well-known/shroud/attestation` from the gateway of `url`
    /// (`https://host[:port]/CHAIN`), verifies the certificate against `policy_json` (the JSON
    /// document of a policy file, `{"accept": [{…}, …]}`, which the npm package makes from the
    /// dapp's TOML) with the real platform verifiers and pinned
    /// roots, and checks that the served OHTTP keys are the attested ones. Resolves to a client,
    /// or rejects with an Error naming the failed check (and nothing is sent).
    ///
    /// `options` (`{ allowSimulated?, fresh? }`, both `false` when left out):
    /// `allowSimulated` accepts development evidence, which proves nothing; `fresh` asks for
    /// evidence made for this connect (`?nonce=` with 32 random bytes, DESIGN §4.2) and refuses
    /// a bundle whose claims do not carry exactly that nonce; it asks again, with a new nonce,
    /// whenever the verdict expires. A boolean in place of `options` is `allowSimulated`, as in
    /// earlier versions.
    pub fn connect(
        url: String,
        policy_json: String,
        #[wasm_bindgen(unchecked_param_type = "ConnectOptions | boolean")] options: JsValue,
    ) -> Promise {
        future_to_promise(async move {
            let options = ConnectOptions::from_js(&options)?;
            let endpoint = Endpoint::parse(&url).map_err(js_error)?;
            let nonce = nonce_for(options.fresh)?;
            let bundle = fetch_bundle(&endpoint, nonce.as_ref()).await?;
            let session = Session::open(
                endpoint,
                &bundle,
                &policy_json,
                now(),
                options.allow_simulated,
                nonce.as_ref(),
            )
            .map_err(js_error)?;
            Ok(ShroudClient {
                inner: Rc::new(RefCell::new(Rc::new(session))),
            }
            .into())
        })
    }

    /// The verdict, as JSON (the shape of `verify_certificate`).
    pub fn verdict(&self) -> String {
        crate::summary(self.inner.borrow().verified().verdict()).to_string()
    }

    /// Sends one JSON-RPC call, sealed; resolves to its `result` or rejects with an Error that
    /// carries the JSON-RPC `code` and `data`.
    pub fn request(&self, method: String, params: JsValue) -> Promise {
        let session = Rc::clone(&self.inner);
        future_to_promise(async move { call(&session, &method, &params).await })
    }

    /// An EIP-1193 provider over this client.
    pub fn provider(&self) -> Eip1193Provider {
        Eip1193Provider::new(Rc::clone(&self.inner))
    }
}
