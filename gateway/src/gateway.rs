//! [`Gateway`]: binds the listeners, then serves until shut down.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http::header::ALT_SVC;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use shroud_ra_tls::Platform;
use shroud_ra_tls::attest::Attester;
use shroud_ra_tls::tls::{RotatingCertResolver, server_config};

use crate::acme::{self, Acme};
use crate::certs::{ACME_TLS_ALPN, ServedCertificates};
use crate::cluster::{self, Cluster};
use crate::ratelimit::SharedBucket;
use crate::tls::Issuer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::admission::{Admission, Admitted};
use crate::collateral::EndorsedAttester;
use crate::config::{Config, Settings};
use crate::error::GatewayError;
use crate::first_byte;
use crate::metrics::Metrics;
use crate::ohttp::OhttpState;
use crate::pipeline::Relay;
use crate::pipeline::cache::ResponseCache;
use crate::pipeline::forward::MEMORY_UNIT;
use crate::pipeline::parse::ParseLimits;
use crate::quic::{self, QuicListener, QuicServing};
use crate::ratelimit::{ClientKey, RateLimiter};
use crate::routes;
use crate::shutdown::{AcceptBackoff, stopped};
use crate::state::{AppState, FreshEvidence};
use crate::subscriptions::Subscriptions;
use crate::subscriptions::session::Upgrades;
use crate::transport::Listener;
use crate::workers::{self, PerWorker, Workers};
use crate::{admin, descriptors, proxy_header, tls, upstream};

/// After shutdown is requested, in-flight requests get the request timeout plus this long.
const SHUTDOWN_EXTRA_GRACE: Duration = Duration::from_secs(5);

/// A bound gateway: attested certificate issued, both listeners bound, nothing served yet.
pub struct Gateway {
    settings: Settings,
    attester: Arc<EndorsedAttester>,
    issuer: Arc<Issuer>,
    resolver: Arc<RotatingCertResolver>,
    certs: Arc<ServedCertificates>,
    acceptor: TlsAcceptor,
    /// The client listeners: RA-TLS over TCP first, then Unix socket and vsock if configured.
    listeners: Vec<Listener>,
    metrics: TcpListener,
    /// `[listen] h3`: HTTP/3 over QUIC, when configured.
    h3: Option<QuicListener>,
    https_addr: SocketAddr,
    metrics_addr: SocketAddr,
    state: Arc<AppState>,
    /// `[cluster]`: the keys come from the shared root secret instead of this replica alone.
    cluster: Option<Cluster>,
    /// Turned true when `run`'s shutdown completes; made in `bind` because the chain followers
    /// (in the shared state) watch it too.
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("platform", &self.platform())
            .field("https_addr", &self.https_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Validates `config`, builds the attester, issues the RA-TLS certificate and binds the
    /// HTTPS and metrics listeners.
    pub async fn bind(config: Config) -> Result<Gateway, GatewayError> {
        let settings = config.settings()?;
        let chains = upstream::chains(&settings);
        let mut chain_list: Vec<Arc<upstream::Chain>> = chains.values().cloned().collect();
        chain_list.sort_by(|a, b| a.name.cmp(&b.name));
        // Every upstream request in flight and one health probe per upstream may hold a socket,
        // and each connection pool (one per serving worker and the main runtime's) may keep as
        // many idle as were ever in flight at once.
        let pools = workers::count() as u64 + 1;
        let upstream_reserve: u64 = chain_list
            .iter()
            .flat_map(|chain| chain.upstreams.iter())
            .map(|upstream| upstream.permits.available_permits() as u64 * pools + 1)
            .sum();
        descriptors::ensure(descriptors::needed(
            &settings.limits,
            upstream_reserve,
            admin::MAX_CONNECTIONS as u64,
        ))?;
        let clients = PerWorker::new(workers::count(), || upstream::http_client(&settings))?;

        // The OHTTP keys are generated here, in the enclave, and bound by the certificate. A
        // clustered replica has none until it holds the cluster's root secret: its first
        // certificate binds an empty list, and it is not ready.
        let ohttp = Arc::new(OhttpState::new(&settings.ohttp));
        let keys = match settings.cluster {
            None => Some(
                ohttp
                    .generate()
                    .map_err(|e| GatewayError::Ohttp(e.to_string()))?,
            ),
            Some(_) => None,
        };
        let key_list = keys
            .as_ref()
            .map(|keys| keys.list.clone())
            .unwrap_or_default();
        // Hashing the executable and producing evidence block; keep them off the runtime.
        let tee = settings.tee.clone();
        let egress = settings.egress.clone();
        let attester =
            tokio::task::spawn_blocking(move || tls::attester_for(&tee, egress.as_ref()))
                .await
                .map_err(|e| GatewayError::Task(e.to_string()))??;
        // Certificates must carry verifiable collateral from the first one on.
        attester.refresh().await?;
        let issuer = Arc::new(Issuer::new(
            Arc::clone(&attester),
            settings.tls_hosts.clone(),
        )?);
        let first = Arc::clone(&issuer);
        let certificate = tokio::task::spawn_blocking(move || first.issue(&key_list))
            .await
            .map_err(|e| GatewayError::Task(e.to_string()))??;
        if let Some(keys) = keys {
            ohttp.install(keys);
        }
        let resolver = Arc::new(RotatingCertResolver::new(&certificate)?);
        let cluster = match settings.cluster.clone() {
            None => None,
            Some(cluster) => Some(
                Cluster::bind(
                    cluster,
                    settings.egress.clone(),
                    &attester,
                    certificate.certificate.as_ref(),
                    Arc::clone(&resolver),
                )
                .await
                .map_err(|e| GatewayError::Cluster(e.to_string()))?,
            ),
        };
        let certs = Arc::new(ServedCertificates::new(Arc::clone(&resolver)));
        let alpn: &[&[u8]] = if settings.acme.is_some() {
            &tls::ALPN_WITH_ACME
        } else {
            &tls::ALPN
        };
        let server_config = server_config(Arc::clone(&certs) as _, alpn)?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config));

        let https = bind("https", settings.listen.https).await?;
        let metrics = bind("metrics", settings.listen.metrics).await?;
        let https_addr = https.local_addr()?;
        let mut listeners = vec![Listener::Tcp(https)];
        if let Some(path) = &settings.listen.unix {
            listeners.push(
                Listener::bind_unix(path).map_err(|source| GatewayError::BindPath {
                    what: "unix",
                    path: path.display().to_string(),
                    source,
                })?,
            );
        }
        if let Some(port) = settings.listen.vsock {
            listeners.push(Listener::bind_vsock(port).map_err(|source| {
                GatewayError::BindPath {
                    what: "vsock",
                    path: format!("port {port}"),
                    source,
                }
            })?);
        }
        // Same certificates (and so the same rotation) as the TCP listener, ALPN `h3`.
        let h3 = settings
            .listen
            .h3
            .map(|addr| QuicListener::bind(addr, Arc::clone(&certs), &settings.limits))
            .transpose()?;
        let metrics_addr = metrics.local_addr()?;
        let series: Vec<(&str, Vec<&str>)> = chain_list
            .iter()
            .map(|chain| {
                let upstreams = chain.upstreams.iter().map(|u| u.label.as_str()).collect();
                (chain.name.as_str(), upstreams)
            })
            .collect();
        let registry = Arc::new(Metrics::new(
            attester.platform(),
            &series,
            cluster.is_some(),
        )?);
        let limits = &settings.limits;
        let relay = Relay {
            clients,
            metrics: registry,
            limiter: RateLimiter::new(limits),
            cache: ResponseCache::new(&settings.cache),
            parse_limits: ParseLimits {
                max_batch_len: limits.max_batch_len,
                max_depth: limits.max_json_depth,
            },
            max_response_bytes: limits.max_response_bytes,
            request_timeout: limits.request_timeout,
            answer_memory: Arc::new(Semaphore::new(
                (limits.max_inflight_response_bytes / MEMORY_UNIT).min(Semaphore::MAX_PERMITS),
            )),
        };
        let (stop, stop_rx) = watch::channel(false);
        let subscriptions = Subscriptions::new(
            &chains,
            &settings,
            relay.clients.main(),
            &relay.metrics,
            &stop_rx,
        )?;
        let state = Arc::new(AppState {
            subscriptions,
            chains,
            chain_list: Arc::from(chain_list),
            certs: Arc::clone(&certs),
            fresh: FreshEvidence {
                issuer: Arc::clone(&issuer),
                limit: SharedBucket::per_minute(
                    settings.limits.fresh_evidence_per_minute,
                    settings.limits.fresh_evidence_burst,
                ),
            },
            limits: settings.limits.clone(),
            relay,
            ohttp,
            cluster: cluster.as_ref().map(Cluster::status),
        });
        Ok(Gateway {
            settings,
            attester,
            issuer,
            resolver,
            certs,
            acceptor,
            listeners,
            metrics,
            h3,
            https_addr,
            metrics_addr,
            state,
            cluster,
            stop,
        })
    }

    /// The `[cluster]` listener's address, when clustered (the real port when bound to port 0).
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().map(Cluster::local_addr)
    }

    /// The address of the RA-TLS listener (the real port when bound to port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The address of the `[listen] h3` (QUIC, UDP) listener, when configured (the real port
    /// when bound to port 0).
    pub fn h3_addr(&self) -> Option<SocketAddr> {
        self.h3.as_ref().map(QuicListener::local_addr)
    }

    /// The address of the metrics listener.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The TEE platform whose evidence the certificate carries.
    pub fn platform(&self) -> Platform {
        self.attester.platform()
    }

    /// The primary measurement ([`Platform::primary_field`]) in lower-case hex: what users pin.
    pub fn measurement_hex(&self) -> String {
        let platform = self.platform();
        self.attester
            .measurements()
            .get(platform.primary_field())
            .map(hex::encode)
            .unwrap_or_default()
    }

    /// `--pin` arguments for this build: the first complete identity of its platform
    /// ([`Platform::complete_identities`]) whose fields the attester reports, each
    /// `platform:field=hex`. Empty when none is complete (SGX by signer needs a policy file).
    pub fn pins(&self) -> Vec<String> {
        let platform = self.platform();
        let measurements = self.attester.measurements();
        platform
            .complete_identities()
            .iter()
            .find_map(|fields| {
                fields
                    .iter()
                    .map(|field| {
                        measurements
                            .get(field)
                            .map(|value| format!("{platform}:{field}={}", hex::encode(value)))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .unwrap_or_default()
    }

    /// The resolver serving the certificate; rotating through it changes what new handshakes and
    /// the attestation endpoint see.
    pub fn resolver(&self) -> Arc<RotatingCertResolver> {
        Arc::clone(&self.resolver)
    }

    /// Answers `request` in process: the routes and the relay pipeline a connection runs, with no
    /// listener, TLS or socket in between, as the client nothing names (a forwarder's key, so
    /// the rate limit applies to it). For the benches that measure DESIGN §8's cache hit "in
    /// process" (`benches/benches/pipeline.rs`); not a stable API.
    #[doc(hidden)]
    pub async fn answer_in_process<B>(&self, request: http::Request<B>) -> http::Response<Bytes>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let upgrades = Upgrades {
            hold: Arc::new(()),
            stop: self.stop.subscribe(),
        };
        let client = self.state.relay.limiter.local_key();
        let response = routes::handle(Arc::clone(&self.state), client, &upgrades, request).await;
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        http::Response::from_parts(parts, body)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to a grace period) and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let stop_tx = self.stop;
        let stop_rx = stop_tx.subscribe();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });

        let rotation = match self.cluster {
            None => tokio::spawn(tls::rotate_forever(
                Arc::clone(&self.issuer),
                Arc::clone(&self.resolver),
                Arc::clone(&self.state.relay.metrics),
                Arc::clone(&self.state.ohttp),
            )),
            // Clustered, the keys rotate at epoch boundaries, from the shared secret.
            Some(cluster) => {
                let serving = cluster::Serving {
                    issuer: Arc::clone(&self.issuer),
                    resolver: Arc::clone(&self.resolver),
                    metrics: Arc::clone(&self.state.relay.metrics),
                    ohttp: Arc::clone(&self.state.ohttp),
                };
                let stop = stop_rx.clone();
                tokio::spawn(async move {
                    if let Err(error) = cluster.run(serving, stop).await {
                        tracing::error!("cluster: {error}; this replica stays not ready");
                    }
                })
            }
        };
        let health = tokio::spawn(upstream::health_checks(
            self.state.relay.clients.main().clone(),
            self.state.chain_list.to_vec(),
            Arc::clone(&self.state.relay.metrics),
            stop_rx.clone(),
        ));
        let acme = self.settings.acme.clone().map(|settings| {
            tokio::spawn(acme::maintain(
                Acme {
                    settings,
                    egress: self.settings.egress.clone(),
                    issuer: Arc::clone(&self.issuer),
                    certs: Arc::clone(&self.certs),
                    metrics: Arc::clone(&self.state.relay.metrics),
                },
                stop_rx.clone(),
            ))
        });
        let metrics = tokio::spawn(admin::serve(
            self.metrics,
            Arc::clone(&self.state.relay.metrics),
            Arc::clone(&self.state.chain_list),
            self.state.cluster.clone(),
            stop_rx.clone(),
        ));
        let limits = &self.settings.limits;
        let serving = Arc::new(Serving {
            admission: Admission::new(limits.max_connections, limits.max_connections_per_client),
            acceptor: self.acceptor.clone(),
            timeouts: Timeouts {
                handshake: limits.handshake_timeout,
                header_read: limits.header_read_timeout,
            },
            proxy_protocol: self.settings.listen.proxy_protocol,
            alt_svc: self.h3.as_ref().and_then(|h3| alt_svc(h3.local_addr())),
            local_client: self.state.relay.limiter.local_key(),
            state: Arc::clone(&self.state),
        });
        let grace = limits
            .request_timeout
            .saturating_add(limits.body_read_timeout)
            .saturating_add(SHUTDOWN_EXTRA_GRACE);

        // Every connection task holds a clone of `alive`; when all are dropped, `drained` yields
        // `None` and every in-flight connection has finished.
        let (alive, mut drained) = mpsc::channel::<()>(1);
        let workers = Arc::new(Workers::start(workers::count())?);
        let accepting: Vec<_> = self
            .listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(accept_loop(
                    listener,
                    Arc::clone(&serving),
                    Arc::clone(&workers),
                    alive.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        let quic = self.h3.map(|listener| {
            tokio::spawn(quic::serve(
                listener,
                Arc::new(QuicServing {
                    admission: Arc::clone(&serving.admission),
                    state: Arc::clone(&self.state),
                    handshake_timeout: limits.handshake_timeout,
                    header_read_timeout: limits.header_read_timeout,
                    shutdown_grace: grace,
                }),
                alive.clone(),
                stop_rx.clone(),
            ))
        });
        let mut stop = stop_rx.clone();
        stopped(&mut stop).await;
        tracing::info!("shutting down: no longer accepting connections");
        // Each accept loop ends at the stop signal and drops its listener.
        for accepting in accepting {
            let _ = accepting.await;
        }
        // The QUIC listener returns once its connections have been told to go away; their
        // requests still in flight hold `alive` like TCP connections do.
        if let Some(quic) = quic {
            let _ = quic.await;
        }
        drop(alive);
        rotation.abort();
        health.abort();
        if let Some(acme) = acme {
            acme.abort();
        }
        if tokio::time::timeout(grace, drained.recv()).await.is_err() {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
        let _ = metrics.await;
        Ok(())
    }
}

/// What every accept loop and connection of the client listeners share.
struct Serving {
    admission: Arc<Admission>,
    acceptor: TlsAcceptor,
    timeouts: Timeouts,
    /// Every connection starts with a PROXY v2 header naming its client.
    proxy_protocol: bool,
    /// `Alt-Svc` advertising the h3 listener on every TCP response, when it is configured.
    alt_svc: Option<HeaderValue>,
    /// The client key of connections whose client is not known: those of a local forwarder
    /// without a PROXY header, and a PROXY header's `LOCAL` command.
    local_client: ClientKey,
    state: Arc<AppState>,
}

/// Accepts connections on `listener` until `stop`, admitting each against the shared limits
/// before it costs more than a descriptor.
async fn accept_loop(
    listener: Listener,
    serving: Arc<Serving>,
    workers: Arc<Workers>,
    alive: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        // The peer address is turned into an opaque rate-limit key right here and goes no
        // further: not into logs, metrics or any other task.
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    // With PROXY headers, the client is named by its header, read by the
                    // connection's task; the peer is then a forwarder.
                    let client = peer
                        .filter(|_| !serving.proxy_protocol)
                        .map(|ip| serving.state.relay.limiter.key(ip));
                    (stream, client)
                }
                Err(error) => {
                    backoff.wait(listener.name(), &error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let admitted = match client {
            Some(client) => serving.admission.admit(client).await,
            None => serving.admission.admit_unkeyed().await,
        };
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!("{}; closing a new connection", refused.reason());
                drop(stream);
                continue;
            }
        };
        let connection = Connection {
            client: client.unwrap_or(serving.local_client),
            admitted,
            _alive: alive.clone(),
        };
        let (serving, stop) = (Arc::clone(&serving), stop.clone());
        // The whole connection runs on one serving worker (workers.rs); a vsock stream cannot
        // move and is served here.
        match stream.detach() {
            Ok(Ok(detached)) => workers.spawn(async move {
                match detached.attach() {
                    Ok(stream) => serve_connection(stream, connection, serving, stop).await,
                    Err(error) => tracing::debug!(%error, "a new connection could not be served"),
                }
            }),
            Ok(Err(stream)) => drop(tokio::spawn(serve_connection(
                stream, connection, serving, stop,
            ))),
            Err(error) => tracing::debug!(%error, "a new connection could not be served"),
        }
    }
}

/// `h3=":PORT"`: the same host, this UDP port (RFC 7838). Advertised only when the listener
/// exists, so a client never tries QUIC where nothing answers.
fn alt_svc(addr: SocketAddr) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("h3=\":{}\"", addr.port())).ok()
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { what, addr, source })
}

/// The client-facing timeouts of a connection.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    handshake: Duration,
    header_read: Duration,
}

/// What an accepted connection holds while it lives.
struct Connection {
    client: ClientKey,
    /// Its slot of the connection limits.
    admitted: Admitted,
    /// Shutdown waits until every clone is dropped.
    _alive: mpsc::Sender<()>,
}

/// Handshake, then HTTP/1.1 or HTTP/2 on one connection. Errors are logged at debug, without
/// the peer's address.
async fn serve_connection<S>(
    mut stream: S,
    mut connection: Connection,
    serving: Arc<Serving>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeouts = serving.timeouts;
    let state = Arc::clone(&serving.state);
    let metrics = Arc::clone(&state.relay.metrics);
    let mut shed = connection.admitted.handshaking();
    if serving.proxy_protocol {
        // The header counts against the handshake's time and can be shed like it.
        let header = tokio::time::timeout(timeouts.handshake, proxy_header::read(&mut stream));
        let named = tokio::select! {
            result = header => match result {
                Ok(Ok(ip)) => ip,
                Ok(Err(error)) => {
                    metrics.handshake("proxy_header");
                    tracing::debug!(%error, "closing a connection without a valid PROXY header");
                    return;
                }
                Err(_) => {
                    metrics.handshake("timeout");
                    tracing::debug!("PROXY header not received in time");
                    return;
                }
            },
            _ = &mut shed => {
                metrics.handshake("shed");
                return;
            }
            () = stopped(&mut stop) => return,
        };
        if let Some(ip) = named {
            let client = state.relay.limiter.key(ip);
            if let Err(refused) = connection.admitted.assign(client) {
                tracing::debug!("{}; closing a new connection", refused.reason());
                return;
            }
            connection.client = client;
        }
    }
    let handshake = tokio::time::timeout(timeouts.handshake, serving.acceptor.accept(stream));
    let mut tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                metrics.handshake("failed");
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics.handshake("timeout");
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        _ = &mut shed => {
            metrics.handshake("shed");
            tracing::debug!("connection full: closed the oldest unfinished handshake");
            return;
        }
        () = stopped(&mut stop) => return,
    };
    connection.admitted.handshaken();
    let protocol = match tls.get_ref().1.alpn_protocol() {
        // RFC 8737 §3: the CA's validation ends with the handshake; nothing is served on it.
        Some(ACME_TLS_ALPN) => {
            metrics.handshake("acme_validation");
            return;
        }
        Some(b"h2") => "h2",
        _ => "http1",
    };
    metrics.handshake("ok");
    let _open = metrics.connection(protocol);

    // The HTTP state (hyper's buffers) is built only once the client starts a request; until
    // then the connection holds its TLS session and nothing more (first_byte.rs).
    let first = tokio::select! {
        read = tokio::time::timeout(timeouts.header_read, first_byte::read(&mut tls)) => match read {
            Ok(Ok(Some(byte))) => byte,
            Ok(Ok(None)) => return,
            Ok(Err(error)) => {
                tracing::debug!(%error, "connection ended before its first request");
                return;
            }
            Err(_) => {
                tracing::debug!("no request in time; closing the connection");
                return;
            }
        },
        () = stopped(&mut stop) => return,
    };
    // Boxed: an idle connection's task holds only the state above, not hyper's connection.
    Box::pin(serve_http(
        first_byte::Replay::new(first, tls),
        protocol,
        connection,
        &serving,
        stop,
    ))
    .await;
}

/// Serves HTTP/1.1 or HTTP/2 (`protocol`, from ALPN) on an established connection until it
/// ends or the gateway stops.
async fn serve_http<S>(
    io: S,
    protocol: &'static str,
    connection: Connection,
    serving: &Serving,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeouts = serving.timeouts;
    let state = Arc::clone(&serving.state);
    let client = connection.client;
    // A WebSocket outlives the HTTP connection it was upgraded from: it holds the connection's
    // slot (and the shutdown's count) until it ends.
    let upgrades = Upgrades {
        hold: Arc::new(connection),
        stop: stop.clone(),
    };
    let alt_svc = serving.alt_svc.clone();
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        let upgrades = upgrades.clone();
        let alt_svc = alt_svc.clone();
        async move {
            let mut response = routes::handle(state, client, &upgrades, request).await;
            if let Some(alt_svc) = alt_svc {
                response.headers_mut().insert(ALT_SVC, alt_svc);
            }
            Ok::<_, Infallible>(response)
        }
    });
    // The protocol comes from ALPN, never from sniffing the first bytes: sniffing waits for
    // them without a deadline, which would let a silent client hold a connection forever (and
    // hyper-util's upgradeable `auto` connection always sniffs, so HTTP/1.1 is served by hyper's
    // own builder here). Over HTTP/1.1 the header read timeout runs from the moment the
    // connection waits for a request; upgrades (WebSocket) exist only there.
    let io = TokioIo::new(io);
    let result = if protocol == "h2" {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(timeouts.header_read)
            .keep_alive_timeout(timeouts.header_read);
        let builder = builder.http2_only();
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => result,
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header_read);
        let conn = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => result.map_err(Into::into),
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await.map_err(Into::into)
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
