//! Which certificate the https listener serves to a ClientHello (DESIGN §4.1, §4.4).
//!
//! * A ClientHello offering ALPN `acme-tls/1` is the CA validating a TLS-ALPN-01 challenge
//!   (RFC 8737): it gets the validation certificate of the name it asks for, or no certificate
//!   (the handshake fails) when no challenge for that name is pending.
//! * One offering `shroud-ra-tls/1` is an attesting client: it gets the RA-TLS certificate.
//! * Any other gets the publicly trusted certificate when one is installed, else the RA-TLS
//!   certificate.
//!
//! The RA-TLS and public certificates carry the same key ([`crate::tls::Issuer`]), so whichever a
//! client is served, the attestation vouches for the key it talks to.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use shroud_ra_tls::tls::{RA_TLS_ALPN, RotatingCertResolver};

/// TLS-ALPN-01's protocol id (RFC 8737 §6.2).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The certificates of the https listener.
#[derive(Debug)]
pub(crate) struct ServedCertificates {
    ra_tls: Arc<RotatingCertResolver>,
    public: RwLock<Option<Arc<CertifiedKey>>>,
    /// TLS-ALPN-01 validation certificates by lower-case host name, while an order is pending;
    /// at most one per configured host.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl ServedCertificates {
    /// Serves `ra_tls`'s certificate to everyone until a public certificate is installed.
    pub(crate) fn new(ra_tls: Arc<RotatingCertResolver>) -> Self {
        Self {
            ra_tls,
            public: RwLock::new(None),
            challenges: RwLock::new(HashMap::new()),
        }
    }

    /// The RA-TLS certificate's resolver.
    pub(crate) fn ra_tls(&self) -> &Arc<RotatingCertResolver> {
        &self.ra_tls
    }

    /// Serves `public` to clients that do not offer `shroud-ra-tls/1`, from the next handshake.
    pub(crate) fn install_public(&self, public: Arc<CertifiedKey>) {
        *self.public.write().unwrap_or_else(PoisonError::into_inner) = Some(public);
    }

    /// The public certificate chain served, if any.
    pub(crate) fn public(&self) -> Option<Arc<CertifiedKey>> {
        self.public
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Answers TLS-ALPN-01 validations of `host` with `certificate` until
    /// [`ServedCertificates::clear_challenge`].
    pub(crate) fn set_challenge(&self, host: &str, certificate: Arc<CertifiedKey>) {
        self.challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_ascii_lowercase(), certificate);
    }

    /// Stops answering validations of `host`.
    pub(crate) fn clear_challenge(&self, host: &str) {
        self.challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&host.to_ascii_lowercase());
    }

    fn challenge(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.challenges
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&host.to_ascii_lowercase())
            .cloned()
    }
}

/// What a ClientHello asks for, from the offered ALPN ids and the server name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted<'a> {
    /// A TLS-ALPN-01 validation of this name (`None`: it named none).
    AcmeChallenge(Option<&'a str>),
    /// The RA-TLS certificate.
    RaTls,
    /// Whatever a web-PKI client should see.
    Public,
}

fn wanted<'a>(
    mut alpn: impl Iterator<Item = &'a [u8]>,
    server_name: Option<&'a str>,
) -> Wanted<'a> {
    let mut ra_tls = false;
    for id in alpn.by_ref() {
        if id == ACME_TLS_ALPN {
            return Wanted::AcmeChallenge(server_name);
        }
        ra_tls |= id == RA_TLS_ALPN;
    }
    if ra_tls {
        Wanted::RaTls
    } else {
        Wanted::Public
    }
}

impl ResolvesServerCert for ServedCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let server_name = hello.server_name();
        let wanted = match hello.alpn() {
            Some(alpn) => wanted(alpn, server_name),
            None => Wanted::Public,
        };
        match wanted {
            // No pending challenge for the name: no certificate, the handshake fails (RFC 8737
            // §3 forbids answering with any other certificate).
            Wanted::AcmeChallenge(name) => name.and_then(|name| self.challenge(name)),
            Wanted::RaTls => Some(self.ra_tls.current()),
            Wanted::Public => self.public().or_else(|| Some(self.ra_tls.current())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(ids: &[&'a [u8]], name: Option<&'a str>) -> Wanted<'a> {
        wanted(ids.iter().copied(), name)
    }

    #[test]
    fn the_offered_protocols_choose_the_certificate() {
        assert_eq!(ask(&[b"h2", b"http/1.1"], None), Wanted::Public);
        assert_eq!(ask(&[], Some("rpc.example.org")), Wanted::Public);
        assert_eq!(ask(&[b"h2", RA_TLS_ALPN], None), Wanted::RaTls);
        assert_eq!(ask(&[RA_TLS_ALPN, b"http/1.1"], None), Wanted::RaTls);
        assert_eq!(
            ask(&[ACME_TLS_ALPN], Some("rpc.example.org")),
            Wanted::AcmeChallenge(Some("rpc.example.org"))
        );
        // A validation wins over everything else offered with it.
        assert_eq!(
            ask(&[RA_TLS_ALPN, ACME_TLS_ALPN], None),
            Wanted::AcmeChallenge(None)
        );
    }
}
