//! `GET /.well-known/shroud/attestation` (DESIGN §4.2): the certificate served, its
//! endorsements and the OHTTP keys it binds; with `?nonce=`, a certificate issued now with fresh
//! evidence whose claims carry that nonce, for the same key as the serving certificate.

use std::sync::Arc;

use http::StatusCode;
use shroud_ra_tls::cert::ParsedCertificate;
use shroud_ra_tls::claims::Claims;
use shroud_ra_tls::cmw::Evidence;

use crate::pipeline::PipelineError;
use crate::pipeline::respond::{self, Body};
use crate::ratelimit::ClientKey;
use crate::state::AppState;

/// Shortest nonce accepted, in bytes (DESIGN §4.2).
pub(crate) const MIN_NONCE_BYTES: usize = 16;
/// Longest nonce accepted, in bytes: the claims stay small.
pub(crate) const MAX_NONCE_BYTES: usize = 64;

/// The bundle for `query` (the request's query string), asked by `client`.
pub(crate) async fn bundle(
    state: &AppState,
    client: ClientKey,
    query: Option<&str>,
) -> http::Response<Body> {
    let answer = match nonce(query) {
        Ok(None) => served_bundle(state),
        Ok(Some(nonce)) => fresh_bundle(state, client, nonce).await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(bundle) => respond::json_response(StatusCode::OK, &bundle.to_json()),
        Err(PipelineError::FreshEvidenceLimited) => {
            state.relay.metrics.rate_limited();
            let mut response = respond::error_response(&PipelineError::FreshEvidenceLimited);
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(state.fresh.limit.retry_after_secs()),
            );
            response
        }
        Err(error) => respond::error_response(&error),
    }
}

/// The nonce of a query `nonce=<hex>`; `None` without a query. Anything else is refused: an
/// unknown parameter may be a client expecting a feature this gateway does not have.
fn nonce(query: Option<&str>) -> Result<Option<Vec<u8>>, PipelineError> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let hex_nonce = query
        .strip_prefix("nonce=")
        .ok_or(PipelineError::InvalidNonce(
            "the only query parameter is nonce=<hex>",
        ))?;
    if hex_nonce.contains(['&', '=']) {
        return Err(PipelineError::InvalidNonce(
            "the only query parameter is nonce=<hex>",
        ));
    }
    if !(2 * MIN_NONCE_BYTES..=2 * MAX_NONCE_BYTES).contains(&hex_nonce.len()) {
        return Err(PipelineError::InvalidNonce(
            "a nonce is 16 to 64 bytes (32 to 128 hex digits)",
        ));
    }
    hex::decode(hex_nonce)
        .map(Some)
        .map_err(|_| PipelineError::InvalidNonce("a nonce is hex digits only"))
}

/// The serving certificate's bundle. All three parts come from the one certificate, so a
/// rotation between reads cannot pair a certificate with other keys.
fn served_bundle(
    state: &AppState,
) -> Result<shroud_ohttp::bundle::AttestationBundle, PipelineError> {
    let certificate = state
        .certs
        .ra_tls()
        .current_certificate()
        .ok_or(PipelineError::Internal)?;
    bundle_of(certificate.to_vec())
}

/// A bundle whose certificate was issued now for the serving key, with `nonce` in its claims.
async fn fresh_bundle(
    state: &AppState,
    client: ClientKey,
    nonce: Vec<u8>,
) -> Result<shroud_ohttp::bundle::AttestationBundle, PipelineError> {
    // The client's own budget first (one call), then the gateway's: a refused client does not
    // use up what others may have.
    if !state.relay.limiter.allow(client, 1).await || !state.fresh.limit.allow() {
        return Err(PipelineError::FreshEvidenceLimited);
    }
    let issuer = Arc::clone(&state.fresh.issuer);
    let keys = state.ohttp.served_keys();
    // Evidence may block on the TEE's device.
    let issued = tokio::task::spawn_blocking(move || issuer.issue_for_nonce(&keys, nonce)).await;
    match issued {
        Ok(Ok(certificate)) => bundle_of(certificate.certificate.to_vec()),
        Ok(Err(error)) => {
            tracing::error!(%error, "issuing a nonce-bound certificate failed");
            Err(PipelineError::FreshEvidenceFailed)
        }
        Err(error) => {
            tracing::error!(%error, "the nonce-bound certificate task failed");
            Err(PipelineError::FreshEvidenceFailed)
        }
    }
}

/// The bundle of a certificate this gateway issued: its endorsements extension and its
/// `ohttp-keys` claim beside it.
fn bundle_of(
    certificate: Vec<u8>,
) -> Result<shroud_ohttp::bundle::AttestationBundle, PipelineError> {
    let parsed = ParsedCertificate::parse(&certificate).map_err(|_| PipelineError::Internal)?;
    let evidence = Evidence::from_cbor(&parsed.evidence).map_err(|_| PipelineError::Internal)?;
    let claims =
        Claims::from_cbor(evidence.claims_buffer()).map_err(|_| PipelineError::Internal)?;
    Ok(shroud_ohttp::bundle::AttestationBundle {
        certificate,
        endorsements: parsed.endorsements,
        ohttp_keys: claims.ohttp_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_16_to_64_bytes_of_hex() {
        assert_eq!(nonce(None), Ok(None));
        assert_eq!(nonce(Some("")), Ok(None));
        let sixteen = "ab".repeat(16);
        assert_eq!(
            nonce(Some(&format!("nonce={sixteen}"))),
            Ok(Some(vec![0xab; 16]))
        );
        let upper = "AB".repeat(64);
        assert_eq!(
            nonce(Some(&format!("nonce={upper}"))),
            Ok(Some(vec![0xab; 64]))
        );
        for bad in [
            "nonce=".to_owned(),
            "nonce=zz".to_owned(),
            format!("nonce={}", "ab".repeat(15)),
            format!("nonce={}", "ab".repeat(65)),
            format!("nonce={}a", "ab".repeat(16)),
            format!("nonce={}", "zz".repeat(16)),
            format!("nonce={sixteen}&nonce={sixteen}"),
            format!("other={sixteen}"),
            format!("nonce={sixteen}&x=1"),
        ] {
            assert!(
                matches!(nonce(Some(&bad)), Err(PipelineError::InvalidNonce(_))),
                "{bad}"
            );
        }
    }
}
