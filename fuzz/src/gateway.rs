//! The gateway's parsers of client bytes: the JSON-RPC body (`pipeline::parse`), the OHTTP
//! encapsulation and the binary HTTP request inside it (the steps of `ohttp::handle`), the
//! client's side of a sealed answer, and the TOML configuration.
//!
//! Shared with `gateway/tests/fuzz_regressions.rs` (see `lib.rs`): the replay calls exactly
//! what the fuzz target calls.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use shroud_gateway::config::LimitsConfig;
use shroud_gateway::pipeline::PipelineError;
use shroud_gateway::pipeline::json;
use shroud_gateway::pipeline::parse::{Entry, ParseLimits, parse};
use shroud_gateway::pipeline::policy::MethodPolicy;
use shroud_gateway::pipeline::strip::{GatewayId, SanitizedCall, UpstreamBody, strip};
use shroud_gateway::{Config, ConfigError};
use shroud_ohttp::message::{self, BinaryRequest, BinaryResponse};
use shroud_ohttp::{
    Aead, Kem, OhttpError, SealedRequest, ServerKey, request_key_id, seal_request_with_ikm,
};

/// The limits a gateway with the default configuration parses bodies under.
pub fn default_limits() -> ParseLimits {
    let limits = LimitsConfig::default();
    ParseLimits {
        max_batch_len: limits.max_batch_len,
        max_depth: limits.max_json_depth,
    }
}

/// Target `jsonrpc_parse`: a request body, parsed as the gateway parses it (default limits).
/// Returns the number of entries, or the error the client is answered with.
pub fn jsonrpc_parse(body: &[u8]) -> Result<usize, PipelineError> {
    parse_checked(body, default_limits())
}

/// Target `jsonrpc_nesting`: `body` is a valid request whose deepest nesting is `depth` levels
/// (the generator in `fuzz_targets/jsonrpc_nesting.rs` counts them). Over `max_depth` it must be
/// refused as too deep, never crash; at or under it, it must parse into one call.
pub fn jsonrpc_nesting(body: &[u8], max_depth: usize, depth: usize) {
    let limits = ParseLimits {
        max_batch_len: default_limits().max_batch_len,
        max_depth,
    };
    let result = parse_checked(body, limits);
    if depth > max_depth {
        assert_eq!(
            result,
            Err(PipelineError::TooDeep { max: max_depth }),
            "{depth} levels under a limit of {max_depth}"
        );
    } else {
        assert_eq!(result, Ok(1), "{depth} levels under a limit of {max_depth}");
    }
}

/// `parse`, and what must hold of its answer:
/// * the too-deep refusal comes exactly when the body nests deeper than the limit;
/// * (under serde_json's own recursion limit) the body is refused as invalid JSON exactly when
///   serde_json cannot read it either;
/// * every permitted call becomes an upstream body that is JSON, and that parses back into the
///   same sanitised call (the canonical form is a fixed point).
fn parse_checked(body: &[u8], limits: ParseLimits) -> Result<usize, PipelineError> {
    let result = parse(body, limits);
    let too_deep = json::exceeds_depth(body, limits.max_depth);
    assert_eq!(
        matches!(result, Err(PipelineError::TooDeep { max }) if max == limits.max_depth),
        too_deep,
        "the too-deep refusal and the depth scan disagree: {result:?}"
    );
    // A second reading, by serde_json's recursive `Value` parser (not the iterative skipping
    // the gateway validates with). It recurses up to 128 levels, so it is a witness only below
    // that, and it refuses numbers beyond f64 that JSON allows, and `\u` escapes of lone UTF-16
    // surrogates, which JSON's grammar allows too (RFC 8259 §8.2; serde_json says "lone ...
    // surrogate" or "unexpected end of hex escape"): no verdict then. The gateway's first
    // reading skips string contents; a member name it cannot decode makes that call invalid
    // (-32600, nothing relayed) rather than the body unparseable (-32700). A refusal either way.
    if !too_deep && limits.max_depth < 127 {
        let json = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => Some(true),
            Err(e) if e.to_string().starts_with("number out of range") => None,
            Err(e)
                if e.to_string().contains("surrogate") || e.to_string().contains("hex escape") =>
            {
                None
            }
            Err(_) => Some(false),
        };
        if let Some(json) = json {
            assert_eq!(
                matches!(result, Err(PipelineError::Parse)),
                !json,
                "the gateway and serde_json disagree on whether the body is JSON: {result:?}"
            );
        }
    }
    let parsed = result?;
    let len = parsed.len();
    assert!(len > 0, "an empty request was accepted");
    assert!(
        parsed.is_batch() || len == 1,
        "a single call with {len} entries"
    );
    for entry in parsed.into_entries() {
        if let Entry::Call(call) = entry
            && let Ok(permitted) = MethodPolicy::default().permit(call)
        {
            let (_, sanitized) = strip(permitted);
            check_canonical(&sanitized, limits.max_depth);
        }
    }
    Ok(len)
}

/// The upstream body of `call` is JSON and reads back as the same call.
fn check_canonical(call: &SanitizedCall, max_depth: usize) {
    let mut used = HashSet::new();
    let upstream = UpstreamBody::new(&[(GatewayId::fresh(&mut used), call)]);
    let bytes = upstream.as_bytes();
    assert!(
        serde_json::from_slice::<&RawValue>(bytes).is_ok(),
        "the upstream body is not JSON: {}",
        String::from_utf8_lossy(bytes)
    );
    let limits = ParseLimits {
        max_batch_len: 1,
        max_depth,
    };
    let mut entries = match parse(bytes, limits) {
        Ok(parsed) => parsed.into_entries(),
        Err(e) => panic!(
            "the upstream body is refused ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    };
    let (Some(Entry::Call(again)), None) = (entries.pop(), entries.pop()) else {
        panic!(
            "the upstream body is not one call: {}",
            String::from_utf8_lossy(bytes)
        );
    };
    let Ok(again) = MethodPolicy::default().permit(again) else {
        panic!("the policy refuses the call it let through");
    };
    assert_eq!(
        &strip(again).1,
        call,
        "canonicalising is not idempotent: {}",
        String::from_utf8_lossy(bytes)
    );
}

/// Target `bhttp`: the binary HTTP request the gateway finds inside an opened OHTTP request.
/// What the gateway reads of it (path, body, date) survives the client's encoding unchanged.
pub fn bhttp(bytes: &[u8]) -> Result<BinaryRequest, OhttpError> {
    let request = message::decode_request(bytes)?;
    if let Some(date) = request.date {
        let encoded = message::encode_request(&request.path, &request.body, date)?;
        let again = message::decode_request(&encoded)?;
        assert_eq!(again.path, request.path);
        assert_eq!(again.body, request.body);
        assert_eq!(again.date, Some(date));
    }
    Ok(request)
}

/// The gateway's key ring for the OHTTP targets: X25519 (key id 1) and P-256 (key id 2), from
/// fixed secrets so that every run is the same.
fn server_keys() -> &'static [ServerKey] {
    static KEYS: OnceLock<Vec<ServerKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let aeads = || vec![Aead::Aes128Gcm, Aead::ChaCha20Poly1305];
        [
            ServerKey::from_secret(1, Kem::X25519Sha256, &[0x42; 32], aeads()),
            ServerKey::from_secret(2, Kem::P256Sha256, &[0x17; 32], aeads()),
        ]
        .into_iter()
        .filter_map(Result::ok)
        .collect()
    })
}

/// Fixed client randomness: fuzzing needs reproducible runs, the wire format does not care.
const CLIENT_IKM: [u8; 32] = [0x5c; 32];

/// Target `ohttp_decapsulate`: a `message/ohttp-req` body through the gateway's steps (key id,
/// key, open, binary HTTP decode).
///
/// The first byte chooses what the rest is. Even: the encapsulated request itself, which reaches
/// the header and `enc` checks and the HPKE decapsulation (a fuzzer does not forge an AEAD tag).
/// Odd: a binary HTTP request that a client seals first (bit 1: to the P-256 key, bit 2: with
/// ChaCha20Poly1305), so that what the gateway decodes after opening is fuzzed too; it must open
/// to exactly what was sealed.
pub fn ohttp_decapsulate(data: &[u8]) -> Result<BinaryRequest, OhttpError> {
    let (&mode, rest) = data.split_first().ok_or(OhttpError::Malformed)?;
    let keys = server_keys();
    let sealed = if mode & 1 == 1 {
        let key = keys
            .get(usize::from((mode >> 1) & 1))
            .ok_or(OhttpError::NoSupportedConfig)?;
        let aead = if mode & 4 == 0 {
            Aead::Aes128Gcm
        } else {
            Aead::ChaCha20Poly1305
        };
        Some(seal_request_with_ikm(key.config(), aead, rest, &CLIENT_IKM)?.bytes)
    } else {
        None
    };
    let request = sealed.as_deref().unwrap_or(rest);
    let key_id = request_key_id(request).ok_or(OhttpError::Malformed)?;
    let key = keys
        .iter()
        .find(|k| k.config().key_id == key_id)
        .ok_or(OhttpError::UnknownKey(key_id))?;
    let opened = key.open_request(request);
    if sealed.is_some() {
        match &opened {
            Ok(opened) => assert_eq!(opened.bhttp, rest, "opened something else than sealed"),
            Err(e) => panic!("a request sealed to the gateway's key does not open: {e}"),
        }
    }
    message::decode_request(&opened?.bhttp)
}

/// One request sealed to the X25519 key, and the gateway's opening of it: the two ends of the
/// exchange whose answer the `ohttp_response` target decodes.
fn exchange() -> Option<&'static (SealedRequest, ServerKey)> {
    static EXCHANGE: OnceLock<Option<(SealedRequest, ServerKey)>> = OnceLock::new();
    EXCHANGE
        .get_or_init(|| {
            let key = server_keys().first()?.clone();
            let bhttp = message::encode_request("/eth", br#"{"jsonrpc":"2.0"}"#, 0).ok()?;
            let sealed =
                seal_request_with_ikm(key.config(), Aead::Aes128Gcm, &bhttp, &CLIENT_IKM).ok()?;
            Some((sealed, key))
        })
        .as_ref()
}

/// Target `ohttp_response`: what the client does with a `message/ohttp-res` answer (open, then
/// decode the binary HTTP response).
///
/// First byte even: the rest is the encapsulated answer. Odd: the rest is a binary HTTP
/// response that the gateway seals first (with a fixed response nonce); it must open to exactly
/// that, and a decoded response must survive the gateway's encoding unchanged.
pub fn ohttp_response(data: &[u8]) -> Result<BinaryResponse, OhttpError> {
    let (&mode, rest) = data.split_first().ok_or(OhttpError::Malformed)?;
    let (sealed, key) = exchange().ok_or(OhttpError::NoSupportedConfig)?;
    let answer = if mode & 1 == 1 {
        let opened = key.open_request(&sealed.bytes)?;
        let nonce = vec![0x33; Aead::Aes128Gcm.response_nonce_len()];
        Some(opened.sealer.seal_with_nonce(rest, &nonce)?)
    } else {
        None
    };
    let opened = sealed.opener.open(answer.as_deref().unwrap_or(rest));
    if answer.is_some() {
        match &opened {
            Ok(opened) => assert_eq!(opened, rest, "opened something else than sealed"),
            Err(e) => panic!("an answer sealed by the gateway does not open: {e}"),
        }
    }
    let response = message::decode_response(&opened?)?;
    if let Some(content_type) = &response.content_type
        && let Ok(encoded) =
            message::encode_response(response.status, content_type, &response.body, &[])
    {
        let again = message::decode_response(&encoded)?;
        assert_eq!(again, response, "a response changed through encoding");
    }
    Ok(response)
}

/// Target `config`: the TOML configuration, parsed and validated as `shroud-gateway --config`
/// does. An accepted configuration's upstream URLs all parse.
pub fn config(text: &[u8]) -> Result<Config, ConfigError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| ConfigError::Invalid("not UTF-8 (the binary reads a string)".into()))?;
    let config = Config::from_toml_str(text)?;
    for chain in &config.chains {
        for index in 0..chain.upstreams.len() {
            assert!(
                chain.upstream_uri(index).is_ok(),
                "a validated configuration has an unparsable upstream"
            );
        }
    }
    Ok(config)
}
