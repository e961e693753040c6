//! `[cluster]` (DESIGN §10, issue 15): replicas of the gateway binary on loopback share one root
//! secret over mutual RA-TLS and serve the same OHTTP keys. Simulated TEE: the measurement is
//! SHA-384 of the executable, so a copy of the binary with bytes appended is a genuinely
//! different build. The haproxy test skips without haproxy, unless `SHROUD_REQUIRE_HAPROXY=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{BIN, Haproxy, TestGateway, get, haproxy, post_json, verifier};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use sha2::Digest as _;
use shroud_ohttp::bundle::AttestationBundle;
use shroud_ohttp::message::{decode_response, encode_request};
use shroud_ohttp::{Aead, Kem, KeyConfig, seal_request};
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config};
use shroud_ra_tls::{Policy, UnixTime, VerifyOptions};
use shroud_testkit::gateway::{Reply, eventually, simulated_pin};
use shroud_testkit::upstream::RecordingUpstream;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// A PROXY v2 header with the LOCAL command (no client address): what a health checker of the
/// balancer sends; here, how a test reaches one replica behind `proxy_protocol = true`.
const PROXY_V2_LOCAL: [u8; 16] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00,
];

fn client_tls(measurement: &str) -> ClientConfig {
    client_config(verifier(&simulated_pin(measurement)), &[]).unwrap()
}

/// One replica: the binary at `bin`, and its cluster listener's address.
struct Replica {
    gateway: TestGateway,
    cluster: SocketAddr,
    proxy_protocol: bool,
}

/// What a replica's configuration varies in.
struct Options<'a> {
    upstream: &'a str,
    proxy_protocol: bool,
    /// The `[cluster]` keys besides `listen`, `danger_allow_simulated` and `timeout_ms`.
    cluster: String,
    /// `[cluster] listen`.
    listen: String,
}

impl<'a> Options<'a> {
    fn new(upstream: &'a str, cluster: String) -> Self {
        Self {
            upstream,
            proxy_protocol: false,
            cluster,
            listen: "127.0.0.1:0".to_owned(),
        }
    }
}

impl Replica {
    async fn start(bin: &str, options: Options<'_>) -> Replica {
        let config = format!(
            r#"
[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"
proxy_protocol = {}
[tee]
platform = "simulated"
[limits]
rate_limit_per_second = 0
[cache]
enabled = false
[cluster]
listen = "{}"
danger_allow_simulated = true
timeout_ms = 400
{}
[[chain]]
name = "eth"
upstreams = ["{}"]
"#,
            options.proxy_protocol, options.listen, options.cluster, options.upstream
        );
        let gateway = TestGateway::spawn(bin, &config, "", client_tls).await;
        let mut cluster = None;
        for _ in 0..500 {
            cluster = gateway
                .stderr()
                .split("cluster=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| addr.parse().ok());
            if cluster.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Replica {
            gateway,
            cluster: cluster.expect("the cluster address is logged"),
            proxy_protocol: options.proxy_protocol,
        }
    }

    /// `/readyz` on the metrics listener.
    async fn readyz(&self) -> Reply {
        self.gateway.metrics_get("/readyz").await
    }

    async fn wait_ready(&self) {
        let ready = eventually(Duration::from_secs(20), || async {
            self.readyz().await.status == StatusCode::OK
        })
        .await;
        let reply = self.readyz().await;
        assert!(
            ready,
            "not ready: {}\n{}",
            String::from_utf8_lossy(&reply.body),
            self.gateway.stderr()
        );
    }

    /// One request to this replica alone, over RA-TLS pinned to its measurement (with a LOCAL
    /// PROXY header first when the replica expects one).
    async fn request(&self, request: Request<Full<Bytes>>) -> Reply {
        let mut tcp = TcpStream::connect(self.gateway.addr).await.unwrap();
        if self.proxy_protocol {
            tcp.write_all(&PROXY_V2_LOCAL).await.unwrap();
        }
        let mut tls = client_tls(&self.gateway.measurement);
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        send(stream, request).await
    }

    async fn served_keys(&self) -> Reply {
        self.request(get("/.well-known/ohttp-gateway")).await
    }

    async fn metric(&self, series: &str) -> f64 {
        metric(&self.gateway.metrics_text().await, series)
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Reply
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// The value of one series (`name{labels}` exactly as exposed), or 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// A copy of the gateway binary with `marker` appended: another build, another measurement.
/// Returns its path and its simulated measurement (hex).
fn another_build(dir: &std::path::Path, marker: &str) -> (String, String) {
    let path = dir.join(format!("shroud-gateway-{marker}"));
    std::fs::copy(BIN, &path).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, marker.as_bytes()).unwrap();
    drop(file);
    let measurement = hex::encode(sha2::Sha384::digest(std::fs::read(&path).unwrap()));
    (path.display().to_string(), measurement)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn block_number_call() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
}

fn ohttp_request(sealed: &[u8]) -> Request<Full<Bytes>> {
    Request::post("/eth")
        .header("host", "localhost")
        .header("content-type", "message/ohttp-req")
        .body(Full::new(Bytes::copy_from_slice(sealed)))
        .unwrap()
}

/// Seals `eth_blockNumber` to `config`, sends it with `send`, opens the answer: its result.
async fn ohttp_call<F, Fut>(config: &KeyConfig, send: F) -> Result<Value, String>
where
    F: FnOnce(Request<Full<Bytes>>) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let bhttp = encode_request("/eth", block_number_call().to_string().as_bytes(), now()).unwrap();
    let sealed = seal_request(config, Aead::Aes128Gcm, &bhttp).unwrap();
    let reply = send(ohttp_request(&sealed.bytes)).await;
    if reply.status != StatusCode::OK {
        return Err(format!(
            "{}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    let inner = decode_response(&sealed.opener.open(&reply.body).unwrap()).unwrap();
    let answer: Value = serde_json::from_slice(&inner.body).unwrap();
    Ok(answer["result"].clone())
}

fn x25519(configs: &[KeyConfig]) -> &KeyConfig {
    configs.iter().find(|c| c.kem == Kem::X25519Sha256).unwrap()
}

/// The attestation bundle of a replica, verified against `pin`, checked against the keys it
/// serves: the attested key configurations.
async fn attested_keys(replica: &Replica, pin: &str) -> Vec<KeyConfig> {
    let reply = replica
        .request(get("/.well-known/shroud/attestation"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let bundle = AttestationBundle::from_json(&reply.body).unwrap();
    let options = VerifyOptions {
        danger_allow_simulated: true,
        ..VerifyOptions::at(UnixTime::now())
    };
    let verified = bundle
        .verify(&Policy::from_pins([pin]).unwrap(), &options)
        .unwrap();
    let served = replica.served_keys().await;
    verified.check_served_keys(&served.body).unwrap();
    verified.key_configs().to_vec()
}

/// The served key lists of `replicas`, read until all are equal (a read can straddle an epoch
/// boundary); panics when they never agree.
async fn agreed_keys(replicas: &[&Replica]) -> Bytes {
    for _ in 0..5 {
        let mut lists = Vec::new();
        for replica in replicas {
            let reply = replica.served_keys().await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.headers["content-type"], "application/ohttp-keys");
            lists.push(reply.body);
        }
        if lists.iter().all(|list| *list == lists[0]) {
            return lists.swap_remove(0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replicas never served the same keys");
}

#[tokio::test]
async fn three_replicas_behind_haproxy_serve_the_same_ohttp_keys() {
    let Some(haproxy) = haproxy() else { return };
    let upstream = RecordingUpstream::start().await;
    let url = upstream.url();
    let options = |cluster: String| Options {
        proxy_protocol: true,
        ..Options::new(&url, cluster)
    };
    let founder = Replica::start(BIN, options("found = true".to_owned())).await;
    let peers = format!("peers = [\"{}\"]", founder.cluster);
    let second = Replica::start(BIN, options(peers.clone())).await;
    let third = Replica::start(
        BIN,
        options(format!(
            "peers = [\"{}\", \"{}\"]",
            founder.cluster, second.cluster
        )),
    )
    .await;
    let replicas = [&founder, &second, &third];
    for replica in replicas {
        replica.wait_ready().await;
        assert_eq!(replica.metric("shroud_cluster_secret_held").await, 1.0);
    }
    assert_eq!(
        second
            .metric("shroud_cluster_peers{state=\"verified\"}")
            .await,
        1.0
    );
    assert_eq!(
        third
            .metric("shroud_cluster_peers{state=\"verified\"}")
            .await,
        2.0
    );

    // All three serve byte-identical keys, each bound by its own certificate.
    let pin = founder.gateway.pin();
    let keys = agreed_keys(&replicas).await;
    for replica in replicas {
        let attested = attested_keys(replica, &pin).await;
        assert_eq!(KeyConfig::encode_list(&attested), keys.to_vec());
    }

    let balancer = Haproxy::start(&haproxy, &replicas.map(|r| r.gateway.addr)).await;
    let front = balancer.front;
    // The attesting client pins once: one verifier (one policy) for every connection.
    let pinned: Arc<AttestedServerVerifier> = verifier(&pin);
    let connect = |pinned: Arc<AttestedServerVerifier>| async move {
        let mut tls = client_config(pinned, &[]).unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(front).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    };

    // An OHTTP client fetches the keys once (through the balancer, from whichever replica)...
    let stream = connect(Arc::clone(&pinned)).await;
    let fetched = send(stream, get("/.well-known/ohttp-gateway")).await;
    assert_eq!(fetched.body, keys);
    let configs = KeyConfig::decode_list(&fetched.body).unwrap();
    // ...then makes 100 calls, each on a new connection that haproxy gives the next replica.
    let before: Vec<f64> = futures_util::future::join_all(
        replicas.map(|r| r.metric("shroud_ohttp_requests_total{outcome=\"ok\"}")),
    )
    .await;
    for call in 0..100 {
        let stream = connect(Arc::clone(&pinned)).await;
        let result = ohttp_call(x25519(&configs), |request| send(stream, request)).await;
        assert_eq!(result, Ok(json!("0x10")), "call {call}");
    }
    let mut counts = BTreeMap::new();
    for (i, replica) in replicas.iter().enumerate() {
        let after = replica
            .metric("shroud_ohttp_requests_total{outcome=\"ok\"}")
            .await;
        counts.insert(
            format!("replica {i} ({})", replica.gateway.addr),
            after - before[i],
        );
    }
    println!("OHTTP calls per replica: {counts:?}");
    assert!(counts.values().all(|n| *n >= 30.0), "{counts:?}");
    assert_eq!(counts.values().sum::<f64>(), 100.0);

    // The attesting client, pinned once, succeeds on every replica: each connection through
    // the balancer lands on the next one, each with its own certificate (its own key).
    let mut certificates: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    for _ in 0..6 {
        let stream = connect(Arc::clone(&pinned)).await;
        let certificate = shroud_testkit::gateway::peer_certificate(&stream);
        let reply = send(stream, post_json("/eth", &block_number_call().to_string())).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["result"], "0x10");
        *certificates.entry(certificate.to_vec()).or_default() += 1;
    }
    println!(
        "attested calls per replica certificate: {:?}",
        certificates.values().collect::<Vec<_>>()
    );
    assert_eq!(certificates.len(), 3);
    assert!(certificates.values().all(|n| *n == 2));
}

#[tokio::test]
async fn a_replica_of_another_build_is_refused_and_an_allowed_build_joins() {
    let upstream = RecordingUpstream::start().await;
    let url = upstream.url();
    let dir = tempfile::tempdir().unwrap();
    let (other, other_measurement) = another_build(dir.path(), "another build");
    let (allowed, allowed_measurement) = another_build(dir.path(), "the next release");

    // The founder lets the next release join (a rolling upgrade), not the other build.
    let founder = Replica::start(
        BIN,
        Options::new(
            &url,
            format!(
                "found = true\nallow_measurements = [\"simulated:measurement={allowed_measurement}\"]"
            ),
        ),
    )
    .await;
    founder.wait_ready().await;
    assert_ne!(founder.gateway.measurement, other_measurement);
    let peers = format!("peers = [\"{}\"]", founder.cluster);

    // The other build refuses the founder (its measurements are not its own)...
    let refusing = Replica::start(&other, Options::new(&url, peers.clone())).await;
    assert_eq!(refusing.gateway.measurement, other_measurement);
    // ...and one that would accept the founder is refused by it: no secret either way.
    let refused = Replica::start(
        &other,
        Options::new(
            &url,
            format!(
                "{peers}\nallow_measurements = [\"simulated:measurement={}\"]",
                founder.gateway.measurement
            ),
        ),
    )
    .await;
    let allowed = Replica::start(
        &allowed,
        Options::new(
            &url,
            format!(
                "{peers}\nallow_measurements = [\"simulated:measurement={}\"]",
                founder.gateway.measurement
            ),
        ),
    )
    .await;
    allowed.wait_ready().await;
    assert_eq!(allowed.gateway.measurement, allowed_measurement);
    // The new build serves exactly the founder's keys.
    agreed_keys(&[&founder, &allowed]).await;

    // Both others have had several rounds by now; neither is ready, and each says why.
    for (replica, why) in [
        (
            &refusing,
            "is not a replica this one shares with: measurement mismatch",
        ),
        (&refused, "refused this replica"),
    ] {
        let logged = eventually(Duration::from_secs(10), || async {
            replica.gateway.stderr().contains(why)
        })
        .await;
        assert!(logged, "{why:?} not in:\n{}", replica.gateway.stderr());
        let readyz = replica.readyz().await;
        assert_eq!(readyz.status, StatusCode::SERVICE_UNAVAILABLE);
        let body = String::from_utf8_lossy(&readyz.body).into_owned();
        assert!(
            body.contains("waiting for the cluster secret") && body.contains(why),
            "{body}"
        );
        assert_eq!(
            replica.served_keys().await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(replica.metric("shroud_cluster_secret_held").await, 0.0);
        assert_eq!(
            replica
                .metric("shroud_cluster_peers{state=\"refused\"}")
                .await,
            1.0
        );
    }
    println!(
        "refusing replica's log: {}",
        refusing
            .gateway
            .stderr()
            .lines()
            .find(|l| l.contains("measurement mismatch"))
            .unwrap()
    );
    // The founder's log names the refused build.
    let founder_log = founder.gateway.stderr();
    let refusal = founder_log
        .lines()
        .find(|line| line.contains("refused a connection") && line.contains(&other_measurement))
        .unwrap_or_else(|| panic!("no refusal of the other build in:\n{founder_log}"));
    println!("founder's log: {refusal}");
    assert!(founder_log.contains("sent the root secret to the verified replica"));
}

#[tokio::test]
async fn a_replica_without_reachable_peers_waits_and_all_rotate_together() {
    const EPOCH_SECS: u64 = 3;
    let upstream = RecordingUpstream::start().await;
    let url = upstream.url();
    // A port that accepts connections but never answers (its owner does not accept them), and a
    // name that does not resolve.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let epoch = format!("key_epoch_secs = {EPOCH_SECS}");
    let waiting = Replica::start(
        BIN,
        Options::new(
            &url,
            format!("peers = [\"{silent_addr}\", \"shroud-peer.invalid:7443\"]\n{epoch}"),
        ),
    )
    .await;
    let started = Instant::now();
    // It keeps asking, and stays not ready, saying why.
    let asked_twice = eventually(Duration::from_secs(10), || async {
        waiting.gateway.stderr().matches("unreachable").count() >= 2
    })
    .await;
    assert!(asked_twice, "{}", waiting.gateway.stderr());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let readyz = waiting.readyz().await;
    assert_eq!(readyz.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = String::from_utf8_lossy(&readyz.body).into_owned();
    println!("/readyz of the waiting replica: {body}");
    assert!(body.contains("makes no secret of its own"), "{body}");
    assert!(
        body.contains(&format!("{silent_addr}: no answer within")),
        "{body}"
    );
    assert!(body.contains("shroud-peer.invalid:7443"), "{body}");
    assert_eq!(
        waiting
            .metric("shroud_cluster_peers{state=\"unreachable\"}")
            .await,
        2.0
    );
    assert_eq!(waiting.metric("shroud_cluster_secret_held").await, 0.0);

    // The founder comes up where the silent port was; it asks its peer first (verified, holding
    // nothing), then founds; the waiting replica joins it.
    drop(silent);
    let founder = Replica::start(
        BIN,
        Options {
            listen: silent_addr.to_string(),
            ..Options::new(
                &url,
                format!("found = true\npeers = [\"{}\"]\n{epoch}", waiting.cluster),
            )
        },
    )
    .await;
    assert_eq!(founder.cluster, silent_addr);
    let third = Replica::start(
        BIN,
        Options::new(&url, format!("peers = [\"{}\"]\n{epoch}", founder.cluster)),
    )
    .await;
    let replicas = [&founder, &waiting, &third];
    for replica in replicas {
        replica.wait_ready().await;
    }
    println!(
        "the waiting replica became ready {:?} after it started",
        started.elapsed()
    );
    assert!(
        waiting
            .gateway
            .stderr()
            .contains("received the root secret")
    );

    // Rotation: every replica moves to the next epoch's keys, the same everywhere, each
    // certificate binding them; the previous epoch's keys are still accepted.
    let pin = founder.gateway.pin();
    let first = agreed_keys(&replicas).await;
    let first_configs = KeyConfig::decode_list(&first).unwrap();
    let rotated = eventually(Duration::from_secs(EPOCH_SECS * 2 + 2), || async {
        founder.served_keys().await.body != first
    })
    .await;
    assert!(rotated, "the keys did not rotate within two epochs");
    let second = agreed_keys(&replicas).await;
    assert_ne!(second, first);
    let second_configs = KeyConfig::decode_list(&second).unwrap();
    let ids = |configs: &[KeyConfig]| configs.iter().map(|c| c.key_id).collect::<Vec<_>>();
    println!(
        "key ids before and after the epoch boundary: {:?} -> {:?}",
        ids(&first_configs),
        ids(&second_configs)
    );
    assert!(
        ids(&first_configs)
            .iter()
            .all(|id| !ids(&second_configs).contains(id))
    );
    for replica in replicas {
        let attested = attested_keys(replica, &pin).await;
        assert_eq!(KeyConfig::encode_list(&attested), second.to_vec());
        for configs in [&second_configs, &first_configs] {
            let result = ohttp_call(x25519(configs), |request| replica.request(request)).await;
            assert_eq!(result, Ok(json!("0x10")));
        }
    }
    assert!(founder.gateway.stderr().contains("founded"));
    assert!(founder.gateway.stderr().contains("holds no secret yet"));

    // A founder that restarts takes the secret its peers hold instead of founding again.
    drop(founder);
    let restarted = Replica::start(
        BIN,
        Options::new(
            &url,
            format!(
                "found = true\npeers = [\"{}\", \"{}\"]\n{epoch}",
                waiting.cluster, third.cluster
            ),
        ),
    )
    .await;
    restarted.wait_ready().await;
    let log = restarted.gateway.stderr();
    assert!(
        log.contains("received the root secret") && !log.contains("founded"),
        "{log}"
    );
    agreed_keys(&[&restarted, &waiting, &third]).await;
}
