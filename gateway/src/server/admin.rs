//! The admin listener: `/healthz`, `/readyz`, `/metrics`, and the key API under
//! `/admin/keys` ([`keys`]), and spend per tenant or key at `/admin/spend` ([`spend`]).

mod keys;
mod spend;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

use crate::state::Gateway;

/// Serves the admin endpoints.
#[derive(Debug)]
pub struct AdminApp {
    gw: Arc<Gateway>,
    /// The API listener has been seen accepting connections.
    api_bound: AtomicBool,
}

impl AdminApp {
    /// Admin endpoints over the shared state.
    pub fn new(gw: Arc<Gateway>) -> Self {
        Self {
            gw,
            api_bound: AtomicBool::new(false),
        }
    }

    /// Ready means the API listener accepts connections: Pingora binds each service on its
    /// own thread, so the admin listener can be up first. Probed until it succeeds once.
    async fn api_listening(&self) -> bool {
        if self.api_bound.load(Ordering::Acquire) {
            return true;
        }
        let Ok(mut addr) = self
            .gw
            .snapshot
            .load()
            .config
            .server
            .listen
            .parse::<SocketAddr>()
        else {
            return false;
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        let probe =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
        let ok = matches!(probe.await, Ok(Ok(_)));
        if ok {
            self.api_bound.store(true, Ordering::Release);
        }
        ok
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_owned();
        if path == "/admin/keys" || path.starts_with("/admin/keys/") {
            let (status, body) = keys::serve(&self.gw, session).await;
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(body)
                .unwrap_or_default();
        }
        if path == "/admin/route/explain" {
            let (status, body) = explain(&self.gw, session).await;
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(body)
                .unwrap_or_default();
        }
        if path == "/admin/spend" {
            let (status, body) = spend::serve(&self.gw, session).await;
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(body)
                .unwrap_or_default();
        }
        let _ = session.drain_request_body().await;
        let (status, ctype, body) = match path.as_str() {
            "/healthz" => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" if self.gw.draining.load(Ordering::Acquire) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"draining\n".to_vec(),
            ),
            "/readyz"
                if !self.gw.reloader_started.load(Ordering::Acquire)
                    || !self.api_listening().await =>
            {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    b"starting\n".to_vec(),
                )
            }
            "/readyz" => (StatusCode::OK, "text/plain", b"ready\n".to_vec()),
            "/metrics" => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.gw.metrics.render().into_bytes(),
            ),
            _ => (StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        };
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}

/// `POST /admin/route/explain` (Conductor): admin key required, like the key API.
async fn explain(gw: &Gateway, session: &mut ServerSession) -> (StatusCode, Vec<u8>) {
    let snapshot = gw.snapshot.load_full();
    let result = async {
        keys::check_admin(&snapshot, session)?;
        let method = session.req_header().method.as_str().to_owned();
        if method != "POST" {
            return Err(crate::GatewayError::MethodNotAllowed {
                method,
                path: "/admin/route/explain".into(),
                allowed: "POST",
            });
        }
        let body = super::body::read(&mut super::Downstream::Pingora(session), 1 << 20).await?;
        crate::conductor::explain::explain(&snapshot, &body)
    }
    .await;
    let _ = session.drain_request_body().await;
    match result {
        Ok(v) => (StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default()),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.body().to_json(),
        ),
    }
}
