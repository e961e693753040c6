//! The upstream side: one pooled HTTP client shared by every client of the gateway, and the
//! configured chains with their upstream URIs.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::Config;
use crate::error::GatewayError;

/// The fixed `user-agent` of every upstream request; never the client's.
pub(crate) const USER_AGENT: &str = concat!("shroud-gateway/", env!("CARGO_PKG_VERSION"));
/// How long establishing a TCP connection to an upstream may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The HTTP client type used for upstreams.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A configured chain: its name and its upstreams. The URIs may carry credentials in their path
/// and are therefore never logged; upstreams are referred to by index.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// The chain name (the route and the metric label).
    pub(crate) name: String,
    /// The upstream URIs, validated.
    pub(crate) upstreams: Vec<Uri>,
}

/// Builds the chains of a validated configuration, by name.
pub(crate) fn chains(config: &Config) -> Result<HashMap<String, Chain>, GatewayError> {
    let mut chains = HashMap::new();
    for chain in &config.chains {
        let upstreams = (0..chain.upstreams.len())
            .map(|index| chain.upstream_uri(index))
            .collect::<Result<Vec<_>, _>>()?;
        chains.insert(
            chain.name.clone(),
            Chain {
                name: chain.name.clone(),
                upstreams,
            },
        );
    }
    Ok(chains)
}

/// The shared, pooled upstream client: HTTPS with the web PKI roots (ring), HTTP/1.1 and HTTP/2
/// by ALPN. Plain `http://` is enabled only when the configuration has such an upstream (which
/// validation allowed: loopback, or `allow_insecure_upstream`).
pub(crate) fn http_client(config: &Config) -> Result<HttpClient, GatewayError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| GatewayError::UpstreamClient(e.to_string()))?;
    let any_plain_http = config
        .chains
        .iter()
        .flat_map(|c| c.upstreams.iter())
        .any(|url| {
            url.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        });
    let builder = if any_plain_http {
        builder.https_or_http()
    } else {
        builder.https_only()
    };
    let connector = builder.enable_http1().enable_http2().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector))
}
