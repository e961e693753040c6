//! Private transaction submission (`[chain.private_tx]`): `eth_sendRawTransaction` goes only to
//! the chain's private relays, never to the public upstreams (whose mempools are watched by
//! front-runners), unless no relay could be reached and the chain says `fallback = "public"`.
//!
//! The submission is hedged: every relay gets it at once, the first to accept answers the
//! client, and the others run on to their own deadline in the background (a relay that has not
//! seen the transaction yet should). The hash answered is computed here, Keccak-256 of the
//! signed bytes, and a relay answering another hash is not believed. Nothing of the
//! transaction is logged: only the relay's label and the outcome.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http_body_util::{BodyExt as _, Limited};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha3::{Digest as _, Keccak256};

use super::error::PipelineError;
use super::restore::{self, Answers};
use super::strip::{GatewayId, SanitizedCall, UpstreamBody};
use crate::egress::HttpClient;
use crate::metrics::Metrics;
use crate::settings::PrivateTxFallback;
use crate::upstream::{Chain, PrivateRelays, Upstream};

/// Largest relay answer read: a hash or an error object.
const MAX_RELAY_ANSWER: usize = 64 * 1024;

/// How one relay took the transaction.
#[derive(Debug)]
enum Outcome {
    /// It answered the transaction's hash.
    Accepted,
    /// It knew the transaction already (another relay, or an earlier try, sent it): as good.
    AlreadyKnown,
    /// It answered another hash.
    HashMismatch,
    /// It refused the transaction with a JSON-RPC error (kept, to answer the client with).
    Rejected(Answers),
    /// Not reached, or no usable answer.
    Unreachable,
    /// No answer in time.
    Timeout,
    /// An HTTP error without a JSON-RPC answer.
    HttpError,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::AlreadyKnown => "already_known",
            Self::HashMismatch => "hash_mismatch",
            Self::Rejected(_) => "rejected",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::HttpError => "http_error",
        }
    }
}

/// The transaction hash of `eth_sendRawTransaction`'s params: Keccak-256 of the signed bytes,
/// `0x` and lower-case hex.
pub(crate) fn transaction_hash(params: &str) -> Result<String, PipelineError> {
    let invalid = || {
        PipelineError::InvalidParams(
            "eth_sendRawTransaction takes one param, the signed transaction as 0x-prefixed hex"
                .to_owned(),
        )
    };
    let (raw,): (String,) = serde_json::from_str(params).map_err(|_| invalid())?;
    let digits = raw.strip_prefix("0x").ok_or_else(invalid)?;
    let bytes = hex::decode(digits).map_err(|_| invalid())?;
    if bytes.is_empty() {
        return Err(invalid());
    }
    Ok(format!("0x{}", hex::encode(Keccak256::digest(&bytes))))
}

/// Submits `call` (an `eth_sendRawTransaction`) to the chain's private relays; with
/// `fallback = "public"` and no relay reached, to the public upstreams through `public`.
pub(crate) async fn submit<F, Fut>(
    client: &HttpClient,
    metrics: &Arc<Metrics>,
    chain: &Chain,
    relays: &PrivateRelays,
    call: (GatewayId, &SanitizedCall),
    public: F,
) -> Result<Answers, PipelineError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Answers, PipelineError>>,
{
    let (id, sanitized) = call;
    let hash = transaction_hash(sanitized.params())?;
    let body = UpstreamBody::new(&[call]);
    let chain_name: Arc<str> = Arc::clone(&chain.name_arc);
    // Each submission is its own task: it runs to its relay's deadline whether or not the
    // client has been answered (dropping it would cancel the request mid-flight).
    let mut running: FuturesUnordered<_> = relays
        .relays
        .iter()
        .map(|relay| {
            tokio::spawn(send(
                client.clone(),
                Arc::clone(metrics),
                Arc::clone(&chain_name),
                Arc::clone(relay),
                body.clone(),
                id,
                hash.clone(),
            ))
        })
        .collect();
    let mut mismatch = false;
    let mut rejected: Option<Answers> = None;
    while let Some(finished) = running.next().await {
        match finished {
            Ok(Outcome::Accepted | Outcome::AlreadyKnown) => return Ok(answer(id, &hash)),
            Ok(Outcome::HashMismatch) => mismatch = true,
            Ok(Outcome::Rejected(answers)) => {
                rejected.get_or_insert(answers);
            }
            Ok(Outcome::Unreachable | Outcome::Timeout | Outcome::HttpError) | Err(_) => {}
        }
    }
    if mismatch {
        return Err(PipelineError::PrivateRelayHashMismatch);
    }
    // A transaction a relay refused (a bad nonce, no funds) would be refused in public too,
    // and sending it there would only publish it.
    if let Some(answers) = rejected {
        return Ok(answers);
    }
    match relays.fallback {
        PrivateTxFallback::None => {
            tracing::warn!(chain = %chain.name, "no private relay could be reached; the transaction was not sent anywhere (fallback = none)");
            Err(PipelineError::PrivateRelaysUnavailable)
        }
        PrivateTxFallback::Public => {
            tracing::warn!(chain = %chain.name, "no private relay could be reached; sending the transaction to the public upstreams (fallback = public)");
            metrics.private_tx_fallback(&chain.name);
            public().await
        }
    }
}

/// `{"result": HASH}` under gateway id `id`.
fn answer(id: GatewayId, hash: &str) -> Answers {
    let text = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"{hash}"}}"#, id.get());
    // Well-formed by construction; an empty answer set would only make the call "no answer".
    restore::parse_answers(&Bytes::from(text)).unwrap_or_default()
}

/// One relay's submission, to its deadline.
async fn send(
    client: HttpClient,
    metrics: Arc<Metrics>,
    chain: Arc<str>,
    relay: Arc<Upstream>,
    body: UpstreamBody,
    id: GatewayId,
    hash: String,
) -> Outcome {
    let started = Instant::now();
    let exchange = async {
        let Ok(_permit) = relay.permits.acquire().await else {
            return Outcome::Unreachable;
        };
        let Ok(response) = client.request(relay.request(body)).await else {
            return Outcome::Unreachable;
        };
        let status = response.status();
        let Ok(collected) = Limited::new(response.into_body(), MAX_RELAY_ANSWER)
            .collect()
            .await
        else {
            return Outcome::Unreachable;
        };
        let text = collected.to_bytes();
        match classify(&text, id, &hash) {
            Some(outcome) => outcome,
            None if status.is_success() => Outcome::Unreachable,
            None => Outcome::HttpError,
        }
    };
    let outcome = tokio::time::timeout(relay.timeout, exchange)
        .await
        .unwrap_or(Outcome::Timeout);
    if matches!(
        outcome,
        Outcome::Unreachable | Outcome::Timeout | Outcome::HttpError | Outcome::HashMismatch
    ) {
        tracing::warn!(chain = %chain, relay = %relay.label, outcome = outcome.label(), "private relay did not take the transaction");
    }
    metrics.private_tx(&chain, &relay.label, outcome.label());
    let result = if matches!(outcome, Outcome::Accepted | Outcome::AlreadyKnown) {
        "ok"
    } else {
        "error"
    };
    metrics.upstream_exchange(&chain, &relay.label, result, started.elapsed());
    outcome
}

/// What a relay's JSON-RPC answer says; `None` when it is not one.
fn classify(body: &[u8], id: GatewayId, hash: &str) -> Option<Outcome> {
    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(borrow)]
        result: Option<&'a RawValue>,
        error: Option<ErrorObject>,
    }
    #[derive(Deserialize)]
    struct ErrorObject {
        #[serde(default)]
        message: String,
    }
    let reply: Reply<'_> = serde_json::from_slice(body).ok()?;
    if let Some(result) = reply.result {
        let answered: String = serde_json::from_str(result.get()).ok()?;
        return Some(if answered.eq_ignore_ascii_case(hash) {
            Outcome::Accepted
        } else {
            Outcome::HashMismatch
        });
    }
    let error = reply.error?;
    let message = error.message.to_ascii_lowercase();
    // geth "already known", Nethermind "AlreadyKnown", Erigon/others "known transaction",
    // Flashbots "already imported": the relay holds this very transaction.
    if [
        "already known",
        "alreadyknown",
        "known transaction",
        "already imported",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
    {
        return Some(Outcome::AlreadyKnown);
    }
    let answers = restore::parse_answers(&Bytes::copy_from_slice(body))?;
    answers
        .has_error(id.get())
        .then_some(Outcome::Rejected(answers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_keccak_of_the_signed_bytes() {
        // Keccak-256 of the empty string would be c5d2…; of 0x00 it is bc36789e….
        assert_eq!(
            transaction_hash(r#"["0x00"]"#).unwrap(),
            "0xbc36789e7a1e281436464229828f817d6612f7b477d66591ff96a9e064bcc98a"
        );
        for bad in [
            r#"[]"#,
            r#"["00"]"#,
            r#"["0x"]"#,
            r#"["0xzz"]"#,
            r#"[1]"#,
            r#"["0x00",1]"#,
        ] {
            assert_eq!(transaction_hash(bad).unwrap_err().code(), -32602, "{bad}");
        }
    }

    #[test]
    fn relay_answers() {
        let id = GatewayId::random();
        let hash = "0xabcd";
        let reply = |member: &str| format!(r#"{{"jsonrpc":"2.0","id":{},{member}}}"#, id.get());
        let outcome =
            |member: &str| classify(reply(member).as_bytes(), id, hash).map(|o| o.label());
        assert_eq!(outcome(r#""result":"0xABCD""#), Some("accepted"));
        assert_eq!(outcome(r#""result":"0x1234""#), Some("hash_mismatch"));
        assert_eq!(
            outcome(r#""error":{"code":-32000,"message":"already known"}"#),
            Some("already_known")
        );
        assert_eq!(
            outcome(r#""error":{"code":-32000,"message":"nonce too low"}"#),
            Some("rejected")
        );
        assert_eq!(classify(b"<html>", id, hash).map(|o| o.label()), None);
    }
}
