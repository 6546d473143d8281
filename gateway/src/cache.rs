//! The response cache: exact-match answers for repeated deterministic requests.
//!
//! ```text
//! server::api  after auth + parse + model check:
//!   ResponseCache::plan ── off / not cacheable ──▶ bypass (no canonicalisation at all)
//!        │ key = datamind_llm::cache_key(tenant, scope, canonical request)
//!        ├─ lookup ── hit ──▶ replay::write (same bytes, `x-datamind-cache: hit`), done
//!        └─ miss ──▶ engine (Job::capture_limit) ── relay tees what the client is sent
//!                      └─ complete 200 answer, within max_entry_bytes ──▶ store
//! ```
//!
//! **What is stored** is exactly what the client was sent (status 200 only): the JSON
//! body, or the SSE stream through its final event, plus the usage and the deployment
//! that answered. A hit replays those bytes, so a replayed stream is event for event the
//! original one. Because bytes are stored, the key's `scope` names their shape:
//! `operation:client-format:delivery`, e.g. `chat:openai:json`, `chat:openai:sse+usage`,
//! `chat:anthropic:sse`. A streamed and a non-streamed request for the same prompt are
//! therefore separate entries (each consistent with one upstream answer); an OpenAI and an
//! Anthropic client likewise each get answers in their own format.
//!
//! **Never stored**: errors (any status but 200), streams that broke, ended without the
//! provider's final event, carried an error event or lost their client, and answers over
//! `max_entry_bytes`.
//!
//! **Headers**: `x-datamind-cache: hit|miss|bypass` on every answer while the cache is on;
//! `age` on hits. Requests opt in with `x-datamind-cache: force`, out with `off`;
//! `Cache-Control: no-cache` skips the lookup but stores, `no-store` does neither,
//! `max-age=N` only accepts an entry at most N seconds old (see
//! [`datamind_llm::cache_key::CacheDirectives`]).
//!
//! **On a hit** the body reports the original usage; the access log says `cache: "hit"`
//! with `upstream_ms` 0 and zero tokens (no provider was paid), and token metrics are not
//! incremented. Limits: admission runs before the lookup, so a hit counts as a request
//! (RPM); `limits::gate::finish` refunds its token reservation whole (no deployment
//! answered). Placement (Conductor) runs only on a miss.

pub mod capture;
pub mod memory;
pub mod metrics;
pub mod redis_store;
pub mod replay;

use std::time::{Duration, Instant};

use bytes::Bytes;
use datamind_llm::cache_key::{self, CacheDirectives, CacheKey};
use datamind_llm::{Operation, ParsedRequest, Usage};

use crate::config::{CacheConfig, CacheMode, CacheStoreKind};
use crate::engine::ClientFormat;
use crate::redis::Redis;
pub use memory::MemoryStore;
pub use metrics::CacheMetrics;
pub use redis_store::RedisStore;

/// One stored answer: what the client was sent.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    /// An SSE stream (else a whole JSON body).
    pub stream: bool,
    /// The `content-type` sent.
    pub content_type: String,
    /// The body sent, whole (for streams: every event through the last).
    pub body: Bytes,
    /// Usage of the original answer.
    pub usage: Usage,
    /// The deployment that produced it.
    pub deployment: String,
    /// When it was stored (Unix ms), for the `age` header.
    pub stored_unix_ms: u64,
}

/// What the cache will do for one request.
#[derive(Debug, Clone)]
pub struct CachePlan {
    /// The entry's key.
    pub key: CacheKey,
    /// Answer from the cache if an entry exists.
    pub lookup: bool,
    /// Store the answer if it completes.
    pub store: bool,
    /// Largest answer stored.
    pub max_entry_bytes: usize,
    /// How long a stored answer lives.
    pub ttl: Duration,
    /// The client's `max-age`: older entries are treated as misses.
    pub max_age_ms: Option<u64>,
}

/// The cache decision for a request, as reported in `x-datamind-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Answered from the cache.
    Hit,
    /// Looked up (or revalidated) and sent upstream.
    Miss,
    /// The cache is on but did not consider this request.
    Bypass,
}

impl CacheStatus {
    /// Header, metric label and access-log value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Bypass => "bypass",
        }
    }
}

/// The process's response cache (kept across config reloads).
#[derive(Debug)]
pub struct ResponseCache {
    store: Store,
    metrics: CacheMetrics,
}

/// Where entries live (chosen at start).
#[derive(Debug)]
enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl ResponseCache {
    /// A cache for `config`; `redis` is the shared handle when one is configured. The
    /// store kind and the memory budget are fixed until restart.
    pub fn new(config: &CacheConfig, metrics: CacheMetrics, redis: Option<&Redis>) -> Self {
        let store = match (config.store, redis) {
            (CacheStoreKind::Redis, Some(r)) => {
                Store::Redis(RedisStore::new(r.clone(), metrics.clone()))
            }
            (kind, _) => {
                if kind == CacheStoreKind::Redis {
                    tracing::warn!(
                        "cache.store is redis but no Redis handle started: using the memory store"
                    );
                }
                Store::Memory(MemoryStore::new(config.max_total_bytes, metrics.clone()))
            }
        };
        Self { store, metrics }
    }

    /// Its metrics.
    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    /// Decides what the cache does for a request. `None` when the cache is off (nothing
    /// reported) — the only cost then is one boolean test. `Some(Err(Bypass))` when it is
    /// on but the request is not cacheable; the key is only computed for requests that
    /// can hit or be stored.
    pub fn plan(
        &self,
        config: &CacheConfig,
        directives: CacheDirectives,
        tenant: &str,
        op: Operation,
        client: ClientFormat,
        req: &ParsedRequest,
    ) -> Option<Result<CachePlan, CacheStatus>> {
        if !config.enabled {
            return None;
        }
        let eligible = directives.force
            || (config.mode == CacheMode::Deterministic
                && (op == Operation::Embeddings || cache_key::is_deterministic(req)));
        if !eligible || !directives.any() {
            return Some(Err(CacheStatus::Bypass));
        }
        let key = match cache_key::cache_key(tenant, &scope(op, client, req), req.body()) {
            Ok(k) => k,
            Err(_) => return Some(Err(CacheStatus::Bypass)),
        };
        Some(Ok(CachePlan {
            key,
            lookup: directives.lookup,
            store: directives.store,
            max_entry_bytes: config.max_entry_bytes,
            ttl: Duration::from_secs(config.ttl_seconds),
            max_age_ms: directives.max_age.map(|s| s.saturating_mul(1000)),
        }))
    }

    /// The stored answer for `plan`, if any (a failing store reads as a miss).
    pub async fn lookup(&self, plan: &CachePlan) -> Option<CachedAnswer> {
        if !plan.lookup {
            return None;
        }
        let found = match &self.store {
            Store::Memory(m) => m.get(&plan.key, Instant::now()),
            Store::Redis(r) => r.get(&plan.key).await,
        }?;
        let fresh_enough = plan
            .max_age_ms
            .is_none_or(|max| now_unix_ms().saturating_sub(found.stored_unix_ms) <= max);
        fresh_enough.then_some(found)
    }

    /// Stores a complete answer (the caller checked it is a 200 within the size limit).
    pub async fn store(&self, plan: &CachePlan, answer: CachedAnswer) {
        if !plan.store {
            return;
        }
        if answer.body.len() > plan.max_entry_bytes {
            self.metrics.store("too_large");
            return;
        }
        let result = match &self.store {
            Store::Memory(m) => match m.put(plan.key, answer, plan.ttl, Instant::now()) {
                memory::Stored::Kept { .. } => "stored",
                memory::Stored::TooLarge => "too_large",
            },
            Store::Redis(r) => {
                if r.put(&plan.key, &answer, plan.ttl).await {
                    "stored"
                } else {
                    "failed"
                }
            }
        };
        self.metrics.store(result);
    }
}

/// What the stored bytes are: `operation:client-format:delivery`.
pub fn scope(op: Operation, client: ClientFormat, req: &ParsedRequest) -> String {
    let client_name = match client {
        ClientFormat::OpenAi => "openai",
        ClientFormat::Anthropic => "anthropic",
    };
    let delivery = if !(req.stream && op.can_stream()) {
        "json"
    } else if client == ClientFormat::OpenAi && req.include_usage {
        "sse+usage"
    } else {
        // Anthropic streams always carry usage in `message_delta`.
        "sse"
    };
    format!("{}:{client_name}:{delivery}", op.as_str())
}

/// Unix time in ms.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
