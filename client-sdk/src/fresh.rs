//! Fresh evidence (DESIGN §4.2): on an already attested connection, `GET
//! /.well-known/shroud/attestation?nonce=<hex>` asks the enclave for a certificate issued now,
//! for the same key, whose claims carry the nonce. It proves the evidence is not a replay of an
//! old certificate: only an enclave holding the key, asked now, can have produced it.
//!
//! Three checks, each with its own error: the bundle's certificate verifies under the client's
//! policy (as in a handshake); its claims carry exactly the nonce sent; its key (SPKI) is the key
//! of the certificate the TLS connection was verified with.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use shroud_ra_tls::tls::AttestedServerVerifier;
use shroud_ra_tls::{UnixTime, Verdict};

use crate::ClientError;
use crate::bundle::{AttestationBundle, BUNDLE_PATH};
use crate::connect::{AttestedConnection, GatewayUrl, HttpVersion};

/// How many random bytes [`Client::attest_fresh`](crate::Client::attest_fresh) sends as nonce.
pub const NONCE_LEN: usize = 32;

/// The largest attestation bundle read (certificates with evidence are a few KiB; collateral
/// may add some).
const MAX_BUNDLE_LEN: usize = 1024 * 1024;

/// How much of an error answer's body is kept for the message.
const MAX_DETAIL_LEN: usize = 300;

pub use crate::error::FreshError;

/// What fresh evidence established.
#[derive(Debug, Clone)]
pub struct FreshAttestation {
    /// The verdict of the TLS connection's certificate.
    pub connection: Verdict,
    /// The verdict of the freshly issued certificate (its claims carry [`nonce`](Self::nonce)).
    pub fresh: Verdict,
    /// The nonce sent, and found in the fresh certificate's claims.
    pub nonce: Vec<u8>,
}

/// Lower-case hex.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A random nonce of [`NONCE_LEN`] bytes from the TLS provider's secure random source.
pub(crate) fn random_nonce() -> Result<Vec<u8>, ClientError> {
    let mut nonce = vec![0; NONCE_LEN];
    shroud_ra_tls::tls::crypto_provider()
        .secure_random
        .fill(&mut nonce)
        .map_err(|_| ClientError::InvalidOption {
            option: "nonce",
            reason: "no secure random source".into(),
        })?;
    Ok(nonce)
}

/// On `connection` (attested, nothing written yet), asks for a bundle bound to `nonce` and
/// checks it with `verifier`.
pub(crate) async fn fetch_and_check(
    connection: AttestedConnection,
    url: &GatewayUrl,
    verifier: &AttestedServerVerifier,
    nonce: &[u8],
) -> Result<FreshAttestation, ClientError> {
    let connection_verdict = connection.verdict.clone();
    let target = format!("{BUNDLE_PATH}?nonce={}", hex_lower(nonce));
    let (status, headers, body) = get(connection, url, &target).await?;
    match status.as_u16() {
        200 => {}
        400 => return Err(fresh(FreshError::BadRequest(detail(&body)))),
        429 => {
            let retry_after = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(40).collect());
            return Err(fresh(FreshError::RateLimited { retry_after }));
        }
        _ => {
            return Err(fresh(FreshError::Status {
                status,
                detail: detail(&body),
            }));
        }
    }
    let bundle = AttestationBundle::from_json(&body).map_err(ClientError::from_bundle)?;
    let fresh_verdict = verifier
        .verify(&bundle.certificate, UnixTime::now())
        .map_err(ClientError::from_refusal)?;
    check(&connection_verdict, &fresh_verdict, nonce)?;
    Ok(FreshAttestation {
        connection: connection_verdict,
        fresh: fresh_verdict,
        nonce: nonce.to_vec(),
    })
}

/// The two bindings: the nonce, exactly, and the connection's key.
pub(crate) fn check(
    connection: &Verdict,
    fresh_verdict: &Verdict,
    nonce: &[u8],
) -> Result<(), ClientError> {
    match fresh_verdict.claims().nonce.as_deref() {
        Some(got) if got == nonce => {}
        Some(got) => {
            return Err(fresh(FreshError::NonceMismatch {
                sent: hex_lower(nonce),
                got: hex_lower(got),
            }));
        }
        None => {
            return Err(fresh(FreshError::NonceMissing {
                sent: hex_lower(nonce),
            }));
        }
    }
    if fresh_verdict.spki_sha256() != connection.spki_sha256() {
        return Err(fresh(FreshError::KeyMismatch {
            connection: hex_lower(&connection.spki_sha256()),
            fresh: hex_lower(&fresh_verdict.spki_sha256()),
        }));
    }
    Ok(())
}

fn fresh(error: FreshError) -> ClientError {
    ClientError::Fresh(error)
}

fn detail(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL_LEN)
        .collect()
}

/// One GET on the attested connection; the body read is bounded.
async fn get(
    connection: AttestedConnection,
    url: &GatewayUrl,
    target: &str,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), ClientError> {
    let io = TokioIo::new(connection.stream);
    let transport = |e: hyper::Error| ClientError::Transport(Box::new(e));
    let invalid = |e: http::Error| ClientError::InvalidUrl {
        url: url.as_str().to_owned(),
        reason: format!("cannot form an HTTP request: {e}"),
    };
    let response = match connection.http_version {
        HttpVersion::Http1 => {
            let (mut sender, driver) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(transport)?;
            let driver = tokio::spawn(async move {
                driver.await.ok();
            });
            let request = http::Request::get(target)
                .header(http::header::HOST, url.authority())
                .header(http::header::ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())
                .map_err(invalid)?;
            let response = sender.send_request(request).await.map_err(transport);
            let response = read(response).await;
            driver.abort();
            response?
        }
        HttpVersion::Http2 => {
            let (mut sender, driver) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(transport)?;
            let driver = tokio::spawn(async move {
                driver.await.ok();
            });
            let request = http::Request::get(format!("https://{}{target}", url.authority()))
                .header(http::header::ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())
                .map_err(invalid)?;
            let response = sender.send_request(request).await.map_err(transport);
            let response = read(response).await;
            driver.abort();
            response?
        }
    };
    Ok(response)
}

async fn read(
    response: Result<http::Response<hyper::body::Incoming>, ClientError>,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), ClientError> {
    let (parts, body) = response?.into_parts();
    let body = Limited::new(body, MAX_BUNDLE_LEN)
        .collect()
        .await
        .map_err(ClientError::Transport)?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}
