//! [`ShroudClient`]: fetch the attestation bundle, verify it in wasm, then seal every call.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::provider::Eip1193Provider;
use crate::rpc::{SharedSession, call, fetch_bundle, js_error, now};
use crate::session::{Endpoint, Session};

/// A gateway whose attestation bundle verified: every call is sealed with Oblivious HTTP to
/// the HPKE keys its enclave attested.
///
/// ```js
/// const client = await ShroudClient.connect("https://gateway.example/eth", policyToml, false);
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
    /// (`https://host[:port]/CHAIN`), verifies the certificate against `policy_toml` (one
    /// `[[accept]]` table per acceptable build) with the real platform verifiers and pinned
    /// roots, and checks that the served OHTTP keys are the attested ones. Resolves to a client,
    /// or rejects with an Error naming the failed check (and nothing is sent).
    /// `allow_simulated` accepts development evidence, which proves nothing.
    pub fn connect(url: String, policy_toml: String, allow_simulated: bool) -> Promise {
        future_to_promise(async move {
            let endpoint = Endpoint::parse(&url).map_err(js_error)?;
            let bundle = fetch_bundle(&endpoint).await?;
            let session = Session::open(endpoint, &bundle, &policy_toml, now(), allow_simulated)
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
