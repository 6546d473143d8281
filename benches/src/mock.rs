//! `mock-llm`: a fast OpenAI-compatible upstream with scriptable faults, for end-to-end tests
//! and benchmarks of the gateway. It also speaks the other providers' wire formats
//! ([`api`]: Azure OpenAI, Anthropic Messages, Gemini / Vertex, Bedrock Converse with SigV4
//! checking, Workers AI) so the gateway's provider adapters can be tested end to end.
//!
//! Flow: [`conn`] accepts a socket (TCP_NODELAY, HTTP/1.1 or h2c) → [`routes`] reads the request
//! and picks a [`Behaviour`] (CLI defaults ← `POST /control` ← `x-mock-*` headers) → [`body`],
//! [`sse`] or [`embeddings`] build the reply in one buffer → [`response::MockBody`] releases it
//! with the configured delays and faults, holding the request's [`stats::RequestGuard`] so
//! `GET /stats` can tell completed requests from cancelled ones. [`prefix_cache`] simulates
//! vLLM's prefix cache (hits and misses in `/stats`), to compare routing strategies.

pub mod anthropic;
pub mod api;
pub mod bedrock;
pub mod behaviour;
pub mod body;
pub mod conn;
pub mod embeddings;
pub mod gemini;
pub mod prefix_cache;
pub mod response;
pub mod routes;
pub mod sigv4;
pub mod sse;
pub mod stats;
pub mod token;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use tokio::net::TcpListener;

pub use behaviour::{Behaviour, Fault};
pub use sigv4::AwsKeys;

use routes::MockState;

/// A bound, not yet serving, mock upstream.
#[derive(Debug)]
pub struct MockServer {
    listener: TcpListener,
    state: Arc<MockState>,
}

// === impl MockServer ===

impl MockServer {
    /// Binds `addr` (port 0 picks a free port). `name` is sent back in `x-mock-name`.
    pub async fn bind(addr: SocketAddr, name: &str, defaults: Behaviour) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let name = HeaderValue::from_str(name)?;
        Ok(Self {
            listener,
            state: Arc::new(MockState::new(name, defaults)),
        })
    }

    /// Sets the credentials Bedrock requests must be SigV4-signed with (default `AKIDMOCK` /
    /// `mock-secret`). Call before [`MockServer::serve`].
    pub fn with_aws_keys(mut self, keys: AwsKeys) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.set_aws_keys(keys);
        }
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        conn::accept_loop(self.listener, self.state).await;
    }
}
