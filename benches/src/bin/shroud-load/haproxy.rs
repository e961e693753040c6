//! The second yardstick: HAProxy (Debian's, 2.6 on Debian 12) as a TLS-terminating reverse
//! proxy to the same upstream, tuned like nginx: one process with one thread per core, TLS 1.3
//! with the same ECDSA P-256 key type, HTTP mode with HTTP/2 and HTTP/1.1 on the one listener
//! (ALPN), keep-alive on both sides with upstream connections shared between client
//! connections (`http-reuse always`, what nginx's `keepalive` pool does), no logging.

use std::net::SocketAddr;
use std::path::Path;

use shroud_benches::harness::error::LoadError;

use crate::proxy::{Layout, Proxy, Recipe};

/// Connections HAProxy accepts at once: far above the 32 (plus the upstream side) of the
/// throughput phases, and low enough that the descriptors it reserves (about twice this) fit
/// an ordinary `ulimit -n`.
const MAX_CONNECTIONS: usize = 4096;

/// Starts HAProxy from `binary` in front of `upstream`, in the foreground (`-db`); one
/// process, so stopping it is killing it.
pub fn start(binary: &Path, upstream: SocketAddr) -> Result<Proxy, LoadError> {
    Proxy::start("haproxy", binary, upstream, |layout| Recipe {
        config: config(layout),
        run: vec!["-db".into(), "-f".into(), layout.config.clone().into()],
        stop: None,
    })
}

/// Defaults everywhere else (`tune.bufsize` 16 KiB, 100 streams per HTTP/2 connection); the
/// timeouts only keep idle connections open across the phases, as nginx's do.
fn config(layout: &Layout) -> String {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (listen, upstream) = (layout.listen, layout.upstream);
    let crt = layout.cert_and_key.display();
    format!(
        r#"global
    nbthread {threads}
    maxconn {MAX_CONNECTIONS}
    ssl-default-bind-options ssl-min-ver TLSv1.3

defaults
    mode http
    option http-keep-alive
    maxconn {MAX_CONNECTIONS}
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s

frontend shroud_load
    bind {listen} ssl crt {crt} alpn h2,http/1.1
    default_backend shroud_load_upstream

backend shroud_load_upstream
    http-reuse always
    server upstream {upstream}
"#
    )
}
