//! The wasm client inside a JavaScript host: verification, sealing and the bundle checks run as
//! wasm, and one test drives a real `shroud-gateway --dev` on loopback through the host's `fetch`.
//!
//! One test binary, two hosts: `wasm-bindgen-test-runner` runs it under Node by default and in
//! headless Chromium (through chromedriver) when `WASM_BINDGEN_USE_BROWSER=1` is set at run time.
//! There is deliberately no `wasm_bindgen_test_configure!` here: that would pin the binary to one
//! host. `tests/run.sh` runs it both ways:
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!     cargo test -p shroud-wasm --target wasm32-unknown-unknown            # Node
//! WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver ...        # Chromium
//! ```
//!
//! The live test learns the gateway at compile time, from `SHROUD_WASM_GATEWAY`
//! (`https://127.0.0.1:PORT/eth`) and `SHROUD_WASM_MEASUREMENT` (the hex the gateway prints as
//! `measurement: simulated HEX`): a wasm test cannot read the environment it runs in. Without them
//! it prints `skipped: ...` (visible with `-- --nocapture`) and passes, unless
//! `SHROUD_REQUIRE_GATEWAY` was set when compiling, which `tests/run.sh` does.
//!
//! The dev gateway serves a self-signed RA-TLS certificate that no browser or Node trusts, so the
//! run tells them to accept it (`NODE_TLS_REJECT_UNAUTHORIZED=0`, Chromium's
//! `--ignore-certificate-errors` from `wasm-client/webdriver.json`). That costs nothing here:
//! what protects these calls is OHTTP, sealed to keys that the attestation bundle binds and that
//! the client verified in wasm, not the TLS channel underneath.
#![cfg(target_family = "wasm")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::time::Duration;

use base64::Engine as _;
use shroud_ohttp::bundle::BundleError;
use shroud_ohttp::{Kem, KeyConfig, ServerKey, message};
use shroud_ra_tls::UnixTime;
use shroud_ra_tls::attest::simulated::SimulatedAttester;
use shroud_ra_tls::cert::{IssueParams, issue_certificate};
use shroud_wasm::session::{Endpoint, Nonce, Session, SessionError};
use shroud_wasm::{ShroudClient, verify_certificate};
use wasm_bindgen::convert::TryFromJsValue as _;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

const NOW: u64 = 1_800_000_000;
const MEASUREMENT: [u8; 48] = [0x5a; 48];
const ENDPOINT: &str = "https://gateway.test/eth";

/// A simulated RA-TLS certificate issued in wasm (rcgen and ring compiled for wasm32), binding
/// `ohttp_keys` when given.
fn simulated_certificate(ohttp_keys: Option<Vec<u8>>) -> Vec<u8> {
    nonce_certificate(ohttp_keys, None)
}

/// The same, with `nonce` in its claims: what a gateway answers to `?nonce=`.
fn nonce_certificate(ohttp_keys: Option<Vec<u8>>, nonce: Option<&[u8]>) -> Vec<u8> {
    let attester = SimulatedAttester::with_measurement(MEASUREMENT).unwrap();
    let mut params = IssueParams::new(
        vec!["localhost".into()],
        UnixTime::since_unix_epoch(Duration::from_secs(NOW)),
    );
    params.ohttp_keys = ohttp_keys;
    params.nonce = nonce.map(<[u8]>::to_vec);
    issue_certificate(&attester, &params)
        .unwrap()
        .certificate
        .to_vec()
}

/// The JSON form of a policy file, as the npm package hands it over.
fn policy(measurement: &str) -> String {
    serde_json::json!({"accept": [{"platform": "simulated", "measurement": measurement}]})
        .to_string()
}

/// `GET /.well-known/shroud/attestation` as a gateway would serve it (DESIGN §4.2).
fn bundle_json(certificate: &[u8], served_keys: Option<&[u8]>) -> Vec<u8> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    serde_json::json!({
        "certificate": b64(certificate),
        "endorsements": null,
        "ohttp_keys": served_keys.map(b64),
    })
    .to_string()
    .into_bytes()
}

/// A gateway's OHTTP key and its `application/ohttp-keys` list.
fn ohttp_key() -> (ServerKey, Vec<u8>) {
    let key = ServerKey::generate(1, Kem::X25519Sha256).unwrap();
    let list = KeyConfig::encode_list(std::slice::from_ref(key.config()));
    (key, list)
}

fn open_session(bundle: &[u8]) -> Result<Session, SessionError> {
    open_fresh_session(bundle, None)
}

/// A session whose bundle was fetched with `nonce` (`connect(..., { fresh: true })`).
fn open_fresh_session(bundle: &[u8], nonce: Option<&Nonce>) -> Result<Session, SessionError> {
    Session::open(
        Endpoint::parse(ENDPOINT).unwrap(),
        bundle,
        &policy(&hex::encode(MEASUREMENT)),
        NOW as f64,
        true,
        nonce,
    )
}

/// The `message` of a rejection (a JavaScript `Error`).
fn error_message(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{error:?}"))
}

#[wasm_bindgen_test]
fn verifies_a_simulated_certificate() {
    let cert = simulated_certificate(None);
    let accepted =
        verify_certificate(&cert, &policy(&hex::encode(MEASUREMENT)), NOW as f64, true).unwrap();
    let verdict: serde_json::Value = serde_json::from_str(&accepted).unwrap();
    assert_eq!(verdict["verdict"], "trusted");
    assert_eq!(verdict["platform"], "simulated");
    assert_eq!(
        verdict["measurements"]["measurement"],
        hex::encode(MEASUREMENT)
    );
    assert_eq!(verdict["not_after"], NOW + 24 * 3600);

    let other = verify_certificate(&cert, &policy(&hex::encode([0; 48])), NOW as f64, true);
    let message = error_message(&other.unwrap_err());
    assert!(message.contains("measurement mismatch"), "{message}");

    let not_opted_in =
        verify_certificate(&cert, &policy(&hex::encode(MEASUREMENT)), NOW as f64, false);
    let message = error_message(&not_opted_in.unwrap_err());
    assert!(message.contains("simulated"), "{message}");

    let expired = verify_certificate(
        &cert,
        &policy(&hex::encode(MEASUREMENT)),
        (NOW + 25 * 3600) as f64,
        true,
    );
    assert!(expired.is_err());
}

#[wasm_bindgen_test]
fn session_seals_to_the_attested_key_and_opens_the_answer() {
    let (key, keys) = ohttp_key();
    let cert = simulated_certificate(Some(keys.clone()));
    let session = open_session(&bundle_json(&cert, Some(&keys))).unwrap();
    assert_eq!(session.verified().ohttp_keys(), &keys[..]);

    let call = br#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
    let sealed = session.seal(call, NOW as f64).unwrap();

    // The gateway's side: open, read the binary HTTP request, seal an answer to it.
    let opened = key.open_request(sealed.body()).unwrap();
    let inner = message::decode_request(&opened.bhttp).unwrap();
    assert_eq!(inner.method, "POST");
    assert_eq!(inner.path, "/eth");
    assert_eq!(inner.content_type.as_deref(), Some("application/json"));
    assert_eq!(inner.date, Some(NOW));
    assert_eq!(inner.body, call);

    let reply = br#"{"jsonrpc":"2.0","id":1,"result":"0x2a"}"#;
    let answer = message::encode_response(200, "application/json", reply, &[256]).unwrap();
    let sealed_answer = opened.sealer.seal(&answer).unwrap();
    assert_eq!(sealed.open(&sealed_answer).unwrap(), reply);

    // One flipped bit, and the answer does not open.
    let mut tampered = sealed_answer.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(matches!(
        sealed.open(&tampered),
        Err(SessionError::Ohttp(_))
    ));

    // An inner HTTP error without a JSON-RPC body is reported as such.
    let refusal = message::encode_response(413, "text/plain", b"too large", &[]).unwrap();
    let refusal = opened.sealer.seal(&refusal).unwrap();
    assert!(matches!(
        sealed.open(&refusal),
        Err(SessionError::Http { status: 413, .. })
    ));

    // Each call has its own ephemeral key.
    let again = session.seal(call, NOW as f64).unwrap();
    assert_ne!(again.body(), sealed.body());
}

/// Issue: a session sealed to its keys forever. Past the verdict's expiry nothing is sealed, and
/// re-verifying (what `ShroudClient` does with a fresh bundle) applies the same policy at the
/// new clock.
#[wasm_bindgen_test]
fn an_expired_session_seals_nothing_until_verified_again() {
    let (_, keys) = ohttp_key();
    let cert = simulated_certificate(Some(keys.clone()));
    let bundle = bundle_json(&cert, Some(&keys));
    let session = open_session(&bundle).unwrap();
    let expires_at = session.verified().verdict().expires_at();
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
    assert!(!session.is_expired(expires_at as f64).unwrap());
    session.seal(call, expires_at as f64).unwrap();
    let late = (expires_at + 1) as f64;
    assert!(session.is_expired(late).unwrap());
    assert!(matches!(
        session.seal(call, late),
        Err(SessionError::Expired { expires_at: at }) if at == expires_at
    ));
    // The same certificate re-verified at the late clock is refused as expired...
    let error = session.reopen(&bundle, late, None).unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    // ...and within its validity it verifies again, with the policy the session was opened with.
    let again = session.reopen(&bundle, NOW as f64, None).unwrap();
    again.seal(call, NOW as f64).unwrap();
}

#[wasm_bindgen_test]
fn refuses_a_bundle_whose_ohttp_keys_differ_from_the_attested_ones() {
    let (_, attested) = ohttp_key();
    let (_, substituted) = ohttp_key();
    let cert = simulated_certificate(Some(attested.clone()));

    let error = open_session(&bundle_json(&cert, Some(&substituted))).unwrap_err();
    assert!(
        matches!(error, SessionError::Bundle(BundleError::OhttpKeysMismatch)),
        "{error:?}"
    );
    assert!(error.to_string().contains("nothing was sent"), "{error}");

    // Serving no keys at all is no better.
    let error = open_session(&bundle_json(&cert, None)).unwrap_err();
    assert!(matches!(
        error,
        SessionError::Bundle(BundleError::OhttpKeysMismatch)
    ));

    // Nor is a certificate that binds no keys, whatever is served next to it.
    let unbound = simulated_certificate(None);
    let error = open_session(&bundle_json(&unbound, Some(&attested))).unwrap_err();
    assert!(matches!(
        error,
        SessionError::Bundle(BundleError::NoOhttpKeysClaim)
    ));

    // The same keys, served as attested, are accepted.
    assert!(open_session(&bundle_json(&cert, Some(&attested))).is_ok());
}

/// `connect(..., { fresh: true })`: the bundle is asked for with a random nonce, and only a
/// certificate whose claims carry exactly that nonce is accepted. A gateway that ignores the
/// nonce (the plain bundle, evidence of any age) or answers with evidence made for another
/// nonce is refused before anything is sealed.
#[wasm_bindgen_test]
fn a_fresh_session_requires_the_nonce_it_sent() {
    let (_, keys) = ohttp_key();
    let nonce = Nonce::random().unwrap();
    assert_ne!(nonce, Nonce::random().unwrap(), "nonces are random");
    let endpoint = Endpoint::parse(ENDPOINT).unwrap();
    assert_eq!(
        endpoint.fresh_bundle_url(&nonce),
        format!(
            "https://gateway.test/.well-known/shroud/attestation?nonce={}",
            hex::encode(nonce.as_bytes())
        )
    );

    let bound = bundle_json(
        &nonce_certificate(Some(keys.clone()), Some(nonce.as_bytes())),
        Some(&keys),
    );
    let session = open_fresh_session(&bound, Some(&nonce)).unwrap();
    assert!(session.is_fresh());
    assert_eq!(
        session.verified().verdict().claims().nonce.as_deref(),
        Some(nonce.as_bytes())
    );

    // The plain bundle: no nonce in the claims.
    let plain = bundle_json(&simulated_certificate(Some(keys.clone())), Some(&keys));
    let error = open_fresh_session(&plain, Some(&nonce)).unwrap_err();
    assert!(matches!(error, SessionError::NonceMissing), "{error:?}");
    assert!(error.to_string().contains("nothing was sent"), "{error}");
    // Without asking for freshness, the same bundle is fine.
    assert!(!open_session(&plain).unwrap().is_fresh());

    // Evidence bound to another nonce (someone else's, or replayed).
    let other = Nonce::from_bytes([7; 32]);
    let replayed = bundle_json(
        &nonce_certificate(Some(keys.clone()), Some(other.as_bytes())),
        Some(&keys),
    );
    let error = open_fresh_session(&replayed, Some(&nonce)).unwrap_err();
    assert!(matches!(error, SessionError::NonceMismatch), "{error:?}");

    // Once expired, a fresh session is verified again only with a new nonce-bound bundle.
    let error = session.reopen(&plain, NOW as f64, None).unwrap_err();
    assert!(matches!(error, SessionError::NonceMissing), "{error:?}");
    let error = session
        .reopen(&bound, NOW as f64, Some(&other))
        .unwrap_err();
    assert!(matches!(error, SessionError::NonceMismatch), "{error:?}");
    assert!(
        session
            .reopen(&replayed, NOW as f64, Some(&other))
            .unwrap()
            .is_fresh()
    );
}

/// `connect`'s options are checked before anything is fetched: a mistyped option is a
/// TypeError, not silently ignored.
#[wasm_bindgen_test]
async fn connect_refuses_malformed_options() {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"fresh".into(), &"yes".into()).unwrap();
    for (options, named) in [
        (JsValue::from(options), "options.fresh must be a boolean"),
        (JsValue::from_str("fresh"), "options must be an object"),
    ] {
        let refused = JsFuture::from(ShroudClient::connect(
            ENDPOINT.to_owned(),
            policy(&hex::encode(MEASUREMENT)),
            options,
        ))
        .await
        .expect_err("malformed options must be refused");
        assert!(refused.is_instance_of::<js_sys::TypeError>(), "{refused:?}");
        let message = error_message(&refused);
        assert!(message.contains(named), "{message}");
    }
}

/// `ShroudClient.connect` to a real `shroud-gateway --dev` (simulated TEE) in front of a real
/// dev node, through the host's `fetch`: the bundle is fetched and verified in wasm, then
/// `eth_blockNumber` travels sealed, through the gateway's pipeline to the node and back.
#[wasm_bindgen_test]
async fn drives_the_real_gateway() {
    let (Some(url), Some(measurement)) = (
        option_env!("SHROUD_WASM_GATEWAY"),
        option_env!("SHROUD_WASM_MEASUREMENT"),
    ) else {
        assert!(
            option_env!("SHROUD_REQUIRE_GATEWAY").is_none(),
            "SHROUD_REQUIRE_GATEWAY was set at compile time, \
             but SHROUD_WASM_GATEWAY or SHROUD_WASM_MEASUREMENT was not"
        );
        console_log!(
            "skipped: no live gateway (compile with SHROUD_WASM_GATEWAY=https://127.0.0.1:PORT/eth \
             and SHROUD_WASM_MEASUREMENT=HEX, see wasm-client/tests/run.sh)"
        );
        return;
    };

    let connected = JsFuture::from(ShroudClient::connect(
        url.to_owned(),
        policy(measurement),
        connect_options(true, false),
    ))
    .await
    .unwrap_or_else(|e| panic!("connect to {url}: {}", error_message(&e)));
    let client = ShroudClient::try_from_js_value(connected).unwrap();
    let verdict: serde_json::Value = serde_json::from_str(&client.verdict()).unwrap();
    assert_eq!(verdict["platform"], "simulated");
    assert_eq!(verdict["measurements"]["measurement"], measurement);

    let block = JsFuture::from(client.request("eth_blockNumber".into(), JsValue::UNDEFINED))
        .await
        .unwrap_or_else(|e| panic!("eth_blockNumber: {}", error_message(&e)))
        .as_string()
        .expect("eth_blockNumber answers a string");
    assert!(
        block.starts_with("0x") && u64::from_str_radix(&block[2..], 16).is_ok(),
        "eth_blockNumber: {block}"
    );
    console_log!("eth_blockNumber through the gateway: {block}");

    // The EIP-1193 provider over the same session.
    let args = js_sys::Object::new();
    js_sys::Reflect::set(&args, &"method".into(), &"eth_chainId".into()).unwrap();
    let chain_id = JsFuture::from(client.provider().request(args.into()))
        .await
        .unwrap_or_else(|e| panic!("eth_chainId: {}", error_message(&e)))
        .as_string()
        .expect("eth_chainId answers a string");
    assert!(chain_id.starts_with("0x"), "eth_chainId: {chain_id}");

    // A batch, as web3.js's BatchRequest sends it through an EIP-1193 provider: an array of
    // request objects answered by an array of response objects, in order, ids kept; a denied
    // member (a subscription) is an error object and does not fail the others.
    let batch = js_sys::JSON::parse(
        r#"[{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]},
            {"jsonrpc":"2.0","id":"b","method":"eth_subscribe","params":["newHeads"]},
            {"jsonrpc":"2.0","id":9,"method":"eth_blockNumber","params":[]}]"#,
    )
    .unwrap();
    let answers = JsFuture::from(client.provider().request(batch))
        .await
        .unwrap_or_else(|e| panic!("batch: {}", error_message(&e)));
    let answers: serde_json::Value = serde_json::from_str(
        &js_sys::JSON::stringify(&answers)
            .unwrap()
            .as_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answers[0]["id"], 7, "{answers}");
    assert_eq!(answers[0]["result"], chain_id.as_str(), "{answers}");
    assert_eq!(answers[1]["id"], "b", "{answers}");
    assert_eq!(answers[1]["error"]["code"], 4200, "{answers}");
    assert_eq!(answers[2]["id"], 9, "{answers}");
    assert!(
        answers[2]["result"].as_str().unwrap().starts_with("0x"),
        "{answers}"
    );
    assert_eq!(answers[0]["jsonrpc"], "2.0");
    // An empty batch is refused as a whole.
    let empty = JsFuture::from(client.provider().request(js_sys::Array::new().into()))
        .await
        .expect_err("an empty batch is refused");
    assert!(error_message(&empty).contains("a batch holds 1 to 100 calls"));

    // The wrong pin: refused in wasm, naming the mismatch, before any call is sealed.
    let wrong = hex::encode([0x11; 48]);
    assert_ne!(wrong, measurement);
    let refused = JsFuture::from(ShroudClient::connect(
        url.to_owned(),
        policy(&wrong),
        JsValue::TRUE,
    ))
    .await
    .expect_err("a wrong pin must be refused");
    let message = error_message(&refused);
    assert!(message.contains("measurement mismatch"), "{message}");
    assert!(message.contains(measurement), "{message}");
    assert!(message.contains(&wrong), "{message}");

    // { fresh: true }: the gateway issues evidence for this connect's nonce, and the session
    // seals to the keys that certificate binds.
    let fresh = JsFuture::from(ShroudClient::connect(
        url.to_owned(),
        policy(measurement),
        connect_options(true, true),
    ))
    .await
    .unwrap_or_else(|e| panic!("connect to {url} with fresh: true: {}", error_message(&e)));
    let fresh = ShroudClient::try_from_js_value(fresh).unwrap();
    let verdict: serde_json::Value = serde_json::from_str(&fresh.verdict()).unwrap();
    let nonce = verdict["nonce"]
        .as_str()
        .expect("the fresh verdict carries a nonce");
    assert_eq!(nonce.len(), 64, "32 random bytes: {nonce}");
    JsFuture::from(fresh.request("eth_blockNumber".into(), JsValue::UNDEFINED))
        .await
        .unwrap_or_else(|e| panic!("eth_blockNumber, fresh: {}", error_message(&e)));
}

/// `{ allowSimulated, fresh }`, as JavaScript passes it.
fn connect_options(allow_simulated: bool, fresh: bool) -> JsValue {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"allowSimulated".into(), &allow_simulated.into()).unwrap();
    js_sys::Reflect::set(&options, &"fresh".into(), &fresh.into()).unwrap();
    options.into()
}
