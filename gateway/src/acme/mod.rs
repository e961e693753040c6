//! The publicly trusted certificate (`[acme]`, DESIGN §4.4), obtained and renewed inside the
//! enclave with [instant-acme](https://docs.rs/instant-acme).
//!
//! The account key is made by instant-acme in enclave memory at the first order and kept there
//! only; the certificate's key is the enclave's RA-TLS key ([`Issuer::csr`]), so the
//! attestation, whose `pubkey-hash` claim names that key, vouches for this certificate too.
//! Validation is TLS-ALPN-01, answered by the gateway's own https listener
//! ([`ServedCertificates::set_challenge`]); the CA is reached through the egress path. Nothing
//! of it is written anywhere: a restarted enclave makes a new account and orders anew.

mod challenge;
mod error;
mod http;
mod schedule;

pub(crate) use error::AcmeError;
use schedule::ORDER_TIMEOUT;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::sign::CertifiedKey;
use tokio::sync::watch;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::certs::ServedCertificates;
use crate::metrics::Metrics;
use crate::settings::AcmeSettings;
use crate::shutdown::stopped;
use crate::tls::Issuer;
use crate::transport::EgressProxy;

/// How long the CA may take to validate every challenge.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the CA may take to issue once the order is finalized.
const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(120);
/// Most certificates in the chain the CA returns.
const MAX_CHAIN_LEN: usize = 8;

/// What keeps the public certificate: the settings and the parts of the gateway it uses.
pub(crate) struct Acme {
    pub(crate) settings: AcmeSettings,
    pub(crate) egress: Option<Arc<EgressProxy>>,
    pub(crate) issuer: Arc<Issuer>,
    pub(crate) certs: Arc<ServedCertificates>,
    pub(crate) metrics: Arc<Metrics>,
}

/// The validity of an installed certificate, unix seconds.
#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: u64,
    not_after: u64,
}

/// Obtains the certificate, then renews it at two thirds of its lifetime, until `stop`. A
/// failed order is logged, counted and retried with exponential backoff while the current
/// certificate (or, before the first, the RA-TLS certificate) keeps being served.
pub(crate) async fn maintain(acme: Acme, mut stop: watch::Receiver<bool>) {
    let mut account = None;
    let mut backoff = schedule::Backoff::default();
    loop {
        let order = tokio::time::timeout(ORDER_TIMEOUT, acme.obtain(&mut account));
        let outcome = tokio::select! {
            outcome = order => outcome.unwrap_or(Err(AcmeError::Timeout)),
            () = stopped(&mut stop) => return,
        };
        let wait = match outcome {
            Ok(validity) => {
                acme.metrics.acme_renewal("ok");
                acme.metrics.acme_expiry(validity.not_after);
                backoff.reset();
                let wait = schedule::renew_in(validity.not_before, validity.not_after, unix_now());
                tracing::info!(
                    hosts = ?acme.settings.hosts,
                    not_after = validity.not_after,
                    renew_in_secs = wait.as_secs(),
                    "ACME certificate installed"
                );
                wait
            }
            Err(error) => {
                acme.metrics.acme_renewal("error");
                let wait = backoff.next();
                tracing::error!(%error, retry_in_secs = wait.as_secs(), "ACME order failed");
                // Only a CA that no longer knows or accepts the account gets a new one: CAs
                // limit new accounts per address (Let's Encrypt: 10 per 3 hours), so a network
                // failure must not make one.
                if error.is_account_problem() {
                    account = None;
                }
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

impl Acme {
    /// One order, from the account to the installed certificate.
    async fn obtain(&self, account: &mut Option<Account>) -> Result<Validity, AcmeError> {
        let account = match account {
            Some(account) => account,
            None => account.insert(self.create_account().await?),
        };
        let identifiers: Vec<Identifier> = self
            .settings
            .hosts
            .iter()
            .map(|host| Identifier::Dns(host.clone()))
            .collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        // Cleared when the order ends, however it ends.
        let challenges = Challenges {
            certs: &self.certs,
            hosts: &self.settings.hosts,
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(AcmeError::Authorization {
                        host: authorization.identifier().to_string(),
                        status: format!("{status:?}").to_ascii_lowercase(),
                    });
                }
            }
            let host = authorization.identifier().to_string();
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| AcmeError::NoTlsAlpnChallenge(host.clone()))?;
            let digest = challenge.key_authorization().digest();
            challenges.answer(
                &host,
                challenge::validation_certificate(&host, digest.as_ref())?,
            )?;
            challenge.set_ready().await?;
        }
        let status = order
            .poll_ready(&RetryPolicy::new().timeout(VALIDATION_TIMEOUT))
            .await?;
        if status != OrderStatus::Ready {
            let problem = order
                .state()
                .error
                .as_ref()
                .map(|problem| format!(": {problem}"))
                .unwrap_or_default();
            return Err(AcmeError::NotReady(format!(
                "{}{problem}",
                format!("{status:?}").to_ascii_lowercase()
            )));
        }
        drop(challenges);
        let csr = self.issuer.csr(&self.settings.hosts)?;
        order.finalize_csr(&csr).await?;
        let pem = order
            .poll_certificate(&RetryPolicy::new().timeout(ISSUANCE_TIMEOUT))
            .await?;
        let served = self.served(pem.as_bytes())?;
        let validity = validity(&served)?;
        self.certs.install_public(Arc::new(served));
        Ok(validity)
    }

    async fn create_account(&self) -> Result<Account, AcmeError> {
        let http = http::AcmeHttp::new(self.egress.as_ref(), &self.settings.extra_roots)?;
        let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
        // The credentials are dropped here: the account lives as long as this process.
        let (account, _credentials) = Account::builder_with_http(Box::new(http))
            .create(
                &NewAccount {
                    contact: &contact,
                    // Configuring [acme] is the operator's agreement (docs/configuration.md).
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await?;
        tracing::info!("ACME account created");
        Ok(account)
    }

    /// The chain the CA returned, with the enclave's key; refused unless the leaf certifies
    /// exactly that key.
    fn served(&self, pem: &[u8]) -> Result<CertifiedKey, AcmeError> {
        let chain = CertificateDer::pem_slice_iter(pem)
            .take(MAX_CHAIN_LEN + 1)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AcmeError::Certificate(format!("the chain is not PEM: {e}")))?;
        if chain.is_empty() || chain.len() > MAX_CHAIN_LEN {
            return Err(AcmeError::Certificate(format!(
                "the chain has {} certificates (1 to {MAX_CHAIN_LEN} expected)",
                chain.len()
            )));
        }
        let key = Arc::clone(&self.certs.ra_tls().current().key);
        let served = CertifiedKey::new(chain, key);
        served.keys_match().map_err(|e| {
            AcmeError::Certificate(format!(
                "the CA certified another key than the enclave's: {e}"
            ))
        })?;
        Ok(served)
    }
}

/// The leaf's validity; refused when it is already over.
fn validity(served: &CertifiedKey) -> Result<Validity, AcmeError> {
    let leaf = served
        .end_entity_cert()
        .map_err(|e| AcmeError::Certificate(e.to_string()))?;
    let (_, leaf) = X509Certificate::from_der(leaf)
        .map_err(|e| AcmeError::Certificate(format!("the leaf does not parse: {e}")))?;
    let seconds = |t: i64| u64::try_from(t).unwrap_or(0);
    let validity = Validity {
        not_before: seconds(leaf.validity().not_before.timestamp()),
        not_after: seconds(leaf.validity().not_after.timestamp()),
    };
    if validity.not_after <= unix_now() {
        return Err(AcmeError::Certificate(
            "the CA returned a certificate that has already expired".to_owned(),
        ));
    }
    Ok(validity)
}

/// The TLS-ALPN-01 answers of one order; dropping it withdraws them.
struct Challenges<'a> {
    certs: &'a ServedCertificates,
    hosts: &'a [String],
}

impl Challenges<'_> {
    /// Answers validations of `host`, one of the configured names (so the map stays bounded).
    fn answer(&self, host: &str, certificate: Arc<CertifiedKey>) -> Result<(), AcmeError> {
        if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(AcmeError::UnexpectedName(host.to_owned()));
        }
        self.certs.set_challenge(host, certificate);
        Ok(())
    }
}

impl Drop for Challenges<'_> {
    fn drop(&mut self) {
        for host in self.hosts {
            self.certs.clear_challenge(host);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
