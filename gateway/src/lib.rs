//! # datamind-gateway — the DataMind core LLM gateway
//!
//! One OpenAI-compatible API in front of many LLM deployments, built on Pingora's HTTP
//! server and connection-pooling client. It does what Kong (API keys, limits, TLS) and
//! LiteLLM Proxy (model groups, load balancing, retries, fallbacks, streaming, usage) do,
//! in one process.
//!
//! ## Data flow of one request
//!
//! ```text
//! server::api      route → authenticate (auth) → read body (bounded) → parse (datamind-llm)
//!   limits         budgets, then rate limits (in Redis when configured): admit or 429;
//!                  settled (tokens reconciled, spend recorded) when the usage is known
//!   cache          exact-match answers: a hit is replayed here; a miss is teed and stored
//!   routing        model group → ordered candidates (Conductor's CEL rules, strategy,
//!                  cooldowns, fallbacks)
//!   engine         attempt loop: open (upstream.rs / mock.rs) → relay (relay.rs)
//!   telemetry      metrics + one access-log line
//! ```
//! Decisions read one immutable [`snapshot::Snapshot`] (`ArcSwap`); [`reload`] swaps in
//! a new one when the config file changes or on SIGHUP.
//!
//! ## Where to start reading
//! [`server::ApiApp`] (the request phases), then [`engine`] (the attempt loop).
//!
//! ## How to add…
//! - **a provider**: implement `datamind_llm::Adapter`, add a `ProviderKind` variant; the
//!   engine needs no change.
//! - **a route**: add it to `Route` in `server/api.rs`.
//! - **a metric**: a field in [`telemetry::Metrics`], registered in `Metrics::new`.
//!
//! Pingora's `ProxyHttp` is deliberately not used: it replays a body read before routing
//! from a 64 KiB buffer and hangs above that (see `shared/notes/pingora.md`). The engine
//! drives Pingora's `Connector` itself, so bodies of any size up to the limit work, and
//! retries, fallbacks and streaming share one loop.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod conductor;
pub mod config;
pub mod engine;
pub mod error;
pub mod fnv;
mod http1;
pub mod limits;
pub mod pricing;
pub mod redis;
pub mod reload;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod telemetry;

pub use error::GatewayError;
