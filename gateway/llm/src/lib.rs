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
//! upstream bytes ─▶ Adapter::stream_translator_with  (push: SSE or AWS event stream in,
//!                                                      OpenAI chunks out, usage in summary)
//! non-streamed ──▶ Adapter::translate_response_with   (provider body → OpenAI body + usage)
//! error status ──▶ Adapter::translate_error           (provider error → OpenAI error, status,
//!                                                      context-window flag; no credentials)
//! errors ──▶ error_body::ErrorBody                    (the OpenAI error JSON shape)
//! reading ─▶ json_scan (crate-private)                (strict in-place JSON scanner: what
//!                                                      `request` and `usage` read per request)
//! caching ─▶ cache_key                                (which requests, header directives,
//!                                                      tenant-scoped key of the canonical form)
//! ```
//!
//! Inside the gateway the client format is OpenAI's. Anthropic-format clients
//! (`/v1/messages`) go through [`client::anthropic`]: their body becomes an OpenAI request
//! first, and answers are translated back (streams with [`stream::chain::Chain`]).
//!
//! ## Where to start reading
//! [`request`] (what the gateway learns from a client body), then [`providers`] (the
//! adapter seam), then [`stream`]. [`chat`] holds the typed OpenAI request the translating
//! adapters read and the completion they write; [`stream::chunks`] writes OpenAI chunks.
//! The per-request hot path reads JSON with the crate-private `json_scan` (skip what is
//! not needed, borrow what is; accepts exactly what serde_json accepts): [`request`] and
//! [`Usage::from_openai_json`] use it. Anything that builds typed values uses serde.
//!
//! ## Providers
//!
//! | kind | module | wire format | auth |
//! |------|--------|-------------|------|
//! | `openai` (vLLM, Ollama too) | [`providers::openai`] | OpenAI, passed through | bearer |
//! | `azure` | [`providers::azure`] | OpenAI at deployment URLs + `api-version` | `api-key` or Entra bearer |
//! | `anthropic` | [`providers::anthropic`] | Messages API, SSE | `x-api-key` |
//! | `bedrock` | [`providers::bedrock`] | Converse / ConverseStream (AWS event stream) | SigV4 (needs `now_unix`) or API key |
//! | `gemini` / `vertex` | [`providers::gemini`] | `generateContent`, `streamGenerateContent?alt=sse` | `x-goog-api-key` / OAuth2 bearer |
//! | `workers_ai` / `workers_ai_run` | [`providers::workers_ai`] | OpenAI-compatible / native `/run/@cf/…` | bearer |
//!
//! Each translating module's docs list its mapping: roles, images, tools and
//! `tool_choice`, stop sequences, limits, `finish_reason` values and usage (cached prompt
//! tokens are inside `prompt_tokens`, as OpenAI counts them, and also in
//! [`Usage::cache_read_tokens`] / [`Usage::cache_creation_tokens`]).
//!
//! vLLM and Ollama use the `openai` kind: point `base_url` at their `/v1` (Ollama:
//! `http://host:11434/v1`). vLLM wants a key only when started with `--api-key`; Ollama
//! wants none. Streamed usage relies on the server honouring
//! `stream_options.include_usage`, which the gateway injects (vLLM does); a server that
//! ignores it leaves the stream unmetered.
//!
//! ## Adding a provider
//! 1. Add a variant to [`providers::ProviderKind`] (and its `adapter()` / `as_str()` arms).
//! 2. In `providers/<name>.rs`, implement [`providers::Adapter`]: parse the client body
//!    with [`chat::ChatRequest::parse`], build the provider body and headers
//!    (`build_request`: static names, values borrowed from the [`providers::Target`] where
//!    they can be, so the request allocates little more than its body); translate answers with [`chat::Completion`]
//!    (`translate_response_with`); write a [`stream::StreamTranslator`] in
//!    `providers/<name>/stream.rs` that feeds a push parser ([`stream::sse::SseParser`] or
//!    [`stream::eventstream::EventStreamDecoder`]) and writes through
//!    [`stream::chunks::ChunkWriter`], so tool-call indexes, the final usage chunk (only when
//!    `req.include_usage`) and `[DONE]` come out the same for every provider. Set
//!    `summary.done` only when the answer is whole; the gateway treats anything else as a
//!    broken stream. Override `is_stream` if its streams are not `text/event-stream`, and
//!    `translate_error` if [`provider_error::map`] does not read its error shape.
//! 3. Add cases under `tests/golden/<kind>/<case>/` (see `tests/golden.rs`): a client
//!    request, `target.json`, the provider's documented response and stream, and a
//!    `source.txt` naming the reference page; bless with `DATAMIND_BLESS=1`, then read
//!    every generated file before committing it.
//!
//! Everything stays portable: no I/O, clocks or async. What needs the time (SigV4) takes
//! it in [`providers::Target::now_unix`]; what needs a token exchange (Vertex) takes the
//! token in [`providers::Target::bearer_token`], obtained with the pure steps of
//! [`providers::gemini::vertex_auth`].

#![warn(missing_docs)]

pub mod cache_key;
pub mod chat;
pub mod client;
pub mod error;
pub mod error_body;
mod json_scan;
pub mod mock;
pub mod policy;
pub mod provider_error;
pub mod providers;
pub mod request;
pub mod stream;
pub mod usage;

pub use error::LlmError;
pub use providers::{Adapter, Operation, ProviderKind, UpstreamRequest};
pub use request::ParsedRequest;
pub use usage::Usage;
