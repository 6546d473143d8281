//! Black-box end-to-end tests for the DataMind gateway.
//!
//! This crate is a *harness*: it starts the real binaries (`mock-llm` from `benches/` and
//! `datamind-gateway` from `gateway/`), talks HTTP to them on 127.0.0.1 exactly as a client
//! would, and gives the tests in `tests/tests/*.rs` small tools to assert on what a user
//! sees — status, body, headers, SSE events, Prometheus metrics and the access log.
//!
//! # Data flow
//!
//! ```text
//!  test ──HTTP──▶ Gateway (api listener) ──HTTP──▶ MockLlm (one per upstream)
//!    │                 │ admin listener: /readyz, /metrics
//!    └── reads ◀───────┘ stdout file: access log (one JSON object per line)
//! ```
//!
//! # Where to start reading
//!
//! - [`fixture`]: the common setups (one mock upstream behind a gateway, a primary that
//!   fails over to a backup). Most tests start here.
//! - [`GatewayConfig`] builds the YAML config; [`Gateway`] writes it to a temp dir,
//!   picks free ports, spawns the binary and waits for `/readyz`.
//! - [`RedisServer`] runs a real `redis-server` on a free port (kill/restart by PID).
//! - [`MockLlm`] spawns one `mock-llm`, reads its `listening on` line, and wraps its
//!   `/control`, `/stats` and `/last-request` endpoints.
//! - [`sse`] parses Server-Sent Events incrementally (with arrival times); [`Metrics`]
//!   parses the Prometheus text of `/metrics`.
//!
//! # Adding a test
//!
//! Put it in the file for its area (`tests/tests/<area>.rs`), build the config with
//! [`GatewayConfig`], and bound every await: the HTTP client has a 15 s timeout and the
//! SSE reader takes an explicit one. Every child process is killed (by its own PID) when
//! its guard drops, so a failing assertion never leaks a process.
//!
//! Binaries are found through `DATAMIND_GATEWAY_BIN` / `DATAMIND_MOCK_BIN`, or next to
//! the test executable, or in `$CARGO_TARGET_DIR/debug`; run `cargo build --workspace`
//! first.

pub mod client;
pub mod config;
pub mod fixture;
pub mod gateway;
pub mod identity;
pub mod metrics;
pub mod mock;
pub mod otlp;
pub mod paths;
pub mod process;
pub mod redis;
pub mod secrets;
pub mod sse;
mod yaml;

pub use client::{ApiError, chat_body, header, http_client, stream_body};
pub use config::{Deployment, GatewayConfig, ModelGroup};
pub use gateway::Gateway;
pub use metrics::Metrics;
pub use mock::{LastRequest, MockLlm, MockSpec, MockStats};
pub use otlp::{OtlpReceiver, ReceivedSpan, StalledCollector};
pub use process::Signal;
pub use redis::RedisServer;

/// A client key allowed to call every model (`models: ["*"]`), tenant `team-a`.
pub const KEY_ALL: &str = "sk-e2e-all-models-7f3a";
/// A client key allowed to call only `gpt-4o-mini`, tenant `team-b`.
pub const KEY_LIMITED: &str = "sk-e2e-limited-91c2";
/// The secret the gateway sends upstream as `Authorization: Bearer …` for openai providers.
/// It reaches the gateway through the `E2E_UPSTREAM_KEY` environment variable.
pub const UPSTREAM_KEY: &str = "upstream-secret-e2e-5d1b";
/// The demo key of the default config (`config/gateway.yaml`).
pub const DEV_KEY: &str = "sk-datamind-dev";

/// Hex SHA-256 of `key`, as stored in the config's `auth.keys[].sha256`.
pub fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Polls `probe` every 50 ms until it returns `Some`, or fails after `timeout`.
///
/// The last error (or "condition never held") is reported with `what` so a failing test
/// says what it waited for.
pub async fn eventually<T, F, Fut>(
    what: &str,
    timeout: std::time::Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("condition never held");
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), probe()).await {
            Ok(Ok(Some(v))) => return Ok(v),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => last = format!("{e:#}"),
            Err(_) => last = "probe timed out".into(),
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("waited {timeout:?} for {what}: {last}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
