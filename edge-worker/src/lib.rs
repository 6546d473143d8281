//! # datamind-edge — the DataMind gateway's first hop, on Cloudflare Workers
//!
//! Public clients reach this worker first. It answers what it can at the edge and sends the
//! rest to the right place:
//!
//! ```text
//! request ──▶ auth (API key hash or JWT)            → Tenant
//!         ──▶ sessions: x-session-id → D1 history    prepended to `messages`
//!         ──▶ cache: tenant + canonical request      Cache API (colo) → KV (global)
//!         ──▶ routing rules → Workers AI | core gateway | cloud API
//!         ──▶ answer (JSON or SSE, OpenAI format), teed to: session append + cache fill
//! ```
//!
//! The crate has two halves:
//! - **pure logic**, compiled everywhere and unit-tested natively with `cargo test`:
//!   [`auth`], [`cache_key`], [`completion`], [`config`], [`error`], [`routing`],
//!   [`session`], [`workers_ai`]. These only depend on `datamind-llm`, serde and RustCrypto
//!   crates; [`completion`], [`workers_ai`] and [`auth::tenant_signature`] are written so
//!   they can move into `gateway/llm` unchanged (the core gateway must verify the same
//!   tenant signature); [`cache_key`] already computes its key with
//!   `datamind_llm::cache_key`, the core gateway's function.
//! - **the worker** (`edge`, wasm32 only): bindings (D1, KV, Cache API, AI), fetches and
//!   the streaming relay. Start reading at `edge::fetch` then `edge::chat`.
//!
//! ## Adding a route target
//! Add a variant to [`routing::Target`], teach `edge::chat::dispatch` to call it, and give it
//! a translator to the OpenAI stream format (see [`workers_ai::WorkersAiStream`]).

pub mod auth;
pub mod cache_key;
pub mod completion;
pub mod config;
pub mod error;
pub mod routing;
pub mod session;
pub mod workers_ai;

#[cfg(target_arch = "wasm32")]
mod edge;

pub use error::EdgeError;
