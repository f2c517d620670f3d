//! The HTTP endpoint (`--metrics [HOST:]PORT`): `/metrics` in the format
//! the scraper asks for, `/healthz` and `/readyz`; hyper, one connection
//! per task.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use super::{Metrics, exposition};
use crate::net::{ListenAddr, bind_error};

/// Binds the metrics endpoint on every address `addr` resolves to; serving
/// starts with [`serve_metrics`].
pub(crate) async fn bind(
    addr: &ListenAddr,
) -> Result<Vec<tokio::net::TcpListener>, crate::error::ListenError> {
    let mut listeners = Vec::new();
    for resolved in addr.resolve().await? {
        let listener = tokio::net::TcpListener::bind(resolved)
            .await
            .map_err(|cause| bind_error("metrics", &resolved.to_string(), cause))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` forever.
pub(crate) async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(cause = %err, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let metrics = Arc::clone(&metrics);
                    async move { Ok::<_, std::convert::Infallible>(respond(&request, &metrics)) }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%peer, cause = %err, "metrics connection ended");
            }
        });
    }
}

fn respond(request: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response
    };
    match request.uri().path() {
        "/healthz" => return text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let (status, body) = metrics.health.readiness();
            return text(status, body);
        }
        _ => {}
    }
    let mut response = if request.uri().path() == "/metrics" {
        // Each body goes with the content type of its format, or strict
        // scrapers reject it.
        let accept = request
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|value| value.to_str().ok());
        let (body, content_type) = match exposition::wants_openmetrics(accept) {
            true => (metrics.encode(), exposition::OPENMETRICS),
            false => (
                exposition::to_prometheus_text(&metrics.encode()),
                exposition::PROMETHEUS_TEXT,
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        if let Ok(value) = content_type.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    } else {
        Response::new(Full::new(Bytes::from_static(
            b"not found: try /metrics, /healthz or /readyz\n",
        )))
    };
    if request.uri().path() != "/metrics" {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
}
