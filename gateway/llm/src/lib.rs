//! # datamind-llm — the portable heart of the DataMind gateway
//!
//! Everything here is pure code over bytes and types: no I/O, no clocks, no async runtime.
//! It compiles for native targets (the Pingora core gateway) and for `wasm32-unknown-unknown`
//! (the Cloudflare edge worker), so both deployables translate requests and streams the
//! same way.
//!
//! ## Data flow
//!
//! ```text
//! client body ──▶ request::ParsedRequest::parse     (validates JSON once, finds model/stream)
//!             ──▶ providers::Adapter::build_request  (path, headers, body for one deployment)
//! upstream bytes ─▶ stream::sse::SseParser::feed     (push parser: any byte split works)
//!             ──▶ stream::StreamTranslator::feed      (client-format events + usage)
//! non-streamed ──▶ usage::Usage::from_response_body
//! errors ──▶ error_body::ErrorBody                    (the OpenAI error JSON shape)
//! ```
//!
//! ## Where to start reading
//! [`request`] (what the gateway learns from a client body), then [`providers`] (the
//! adapter seam), then [`stream`].
//!
//! ## Adding a provider
//! Add a variant to [`providers::ProviderKind`], implement [`providers::Adapter`] in
//! `providers/<name>.rs` (build the upstream request; return a [`stream::StreamTranslator`]
//! that turns the provider's stream into OpenAI chunks) and add golden tests beside it.

#![warn(missing_docs)]

pub mod chat;
pub mod client;
pub mod error;
pub mod error_body;
pub mod mock;
pub mod provider_error;
pub mod providers;
pub mod request;
pub mod stream;
pub mod usage;

pub use error::LlmError;
pub use providers::{Adapter, Operation, ProviderKind, UpstreamRequest};
pub use request::ParsedRequest;
pub use usage::Usage;
