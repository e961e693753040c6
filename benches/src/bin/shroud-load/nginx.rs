//! The first yardstick: nginx as a TLS-terminating reverse proxy to the same upstream,
//! configured the way one would for a fair fight: one worker per core, TLS 1.3 with an ECDSA
//! P-256 key like the gateway's, HTTP/2 and HTTP/1.1 on the one listener (ALPN), keep-alive
//! on both sides, no access log.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

use shroud_benches::harness::error::LoadError;

use crate::proxy::{Layout, Proxy, Recipe};

/// Starts nginx from `binary` in front of `upstream`.
pub fn start(binary: &Path, upstream: SocketAddr) -> Result<Proxy, LoadError> {
    Proxy::start("nginx", binary, upstream, |layout| {
        // `-p` and `-c` name the run's directory and configuration; `-e stderr` keeps nginx
        // from opening the default error log before it has read the configuration.
        let common: Vec<OsString> = vec![
            "-p".into(),
            layout.dir.clone().into(),
            "-c".into(),
            layout.config.clone().into(),
            "-e".into(),
            "stderr".into(),
        ];
        // `-s stop` signals the master through its pid file, and the master stops its workers.
        let mut stop = common.clone();
        stop.extend(["-s".into(), "stop".into()]);
        Recipe {
            config: config(layout),
            run: common,
            stop: Some(stop),
        }
    })
}

/// `listen ... ssl http2` is the form of nginx before 1.25.1 (Debian 12 has 1.22), which later
/// versions still accept with a deprecation warning. `keepalive_requests` also bounds the
/// requests of an HTTP/2 connection (since 1.19.7), so no connection is closed mid-phase.
fn config(layout: &Layout) -> String {
    let dir = layout.dir.display();
    let (listen, upstream) = (layout.listen, layout.upstream);
    let (cert, key) = (layout.cert.display(), layout.key.display());
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
pid {dir}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream shroud_load_upstream {{
        server {upstream};
        keepalive 256;
    }}

    server {{
        listen {listen} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        keepalive_requests 10000000;
        keepalive_timeout 600s;

        location / {{
            proxy_pass http://shroud_load_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}
