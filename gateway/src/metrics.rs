//! The metrics listener: `GET /metrics` in the Prometheus text format. This release exports
//! `shroud_build_info`; the request metrics of DESIGN §6 come with the full pipeline.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::pipeline::PipelineError;
use crate::pipeline::respond::{self, Body};

/// The Prometheus text exposition content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition text for `platform`.
pub(crate) fn render(platform: shroud_ra_tls::Platform) -> String {
    format!(
        "# HELP shroud_build_info Build information of the running gateway.\n\
         # TYPE shroud_build_info gauge\n\
         shroud_build_info{{version=\"{}\",platform=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION"),
        platform.as_str()
    )
}

fn route<B>(text: &Arc<str>, request: &Request<B>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            respond::text_response(StatusCode::OK, CONTENT_TYPE, text.to_string())
        }
        (_, "/metrics") => respond::error_response(&PipelineError::MethodNotAllowed),
        _ => respond::error_response(&PipelineError::NotFound),
    }
}

/// Serves the metrics listener (plain HTTP/1.1) until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    text: Arc<str>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "metrics accept failed");
                    continue;
                }
            },
            () = crate::gateway::stopped(&mut shutdown) => return,
        };
        let text = Arc::clone(&text);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = route(&text, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "metrics connection ended with an error");
                    }
                }
                () = crate::gateway::stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
