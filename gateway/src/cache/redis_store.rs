//! The shared store: entries in Redis (`cache.store: redis`), so every gateway of a fleet
//! answers from the same cache.
//!
//! One key per entry, `<prefix>cache:{<key hex>}`: the hash tag is the entry's own digest,
//! which spreads entries over a Cluster's slots. The value is [`encode`]d (a small JSON
//! header, then the body) and written with `SET … PX ttl`, so Redis expires it; values
//! are bounded by `max_entry_bytes` before they are sent. Redis being down or slow is
//! never an error for the client: a failed `GET` is a miss, a failed `SET` is a skipped
//! store, each counted in `datamind_cache_store_errors_total` (the handle fails fast while
//! it reconnects in the background).

use std::time::Duration;

use bytes::Bytes;
use datamind_llm::Usage;
use datamind_llm::cache_key::CacheKey;
use serde::{Deserialize, Serialize};

use super::CachedAnswer;
use super::metrics::CacheMetrics;
use crate::redis::Redis;

/// Format tag at the start of every value; change it when the layout changes.
const MAGIC: &[u8; 4] = b"DMC1";

/// The Redis-backed store.
#[derive(Debug)]
pub struct RedisStore {
    redis: Redis,
    metrics: CacheMetrics,
}

#[derive(Serialize, Deserialize)]
struct Header {
    stream: bool,
    content_type: String,
    usage: Usage,
    deployment: String,
    stored_unix_ms: u64,
}

impl RedisStore {
    /// A store on the shared handle.
    pub fn new(redis: Redis, metrics: CacheMetrics) -> Self {
        Self { redis, metrics }
    }

    fn key(&self, key: &CacheKey) -> String {
        self.redis.key("cache", &key.to_hex(), "")
    }

    /// The entry under `key`; `None` when absent, unreadable or Redis is unavailable.
    pub async fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        let cmd = redis::cmd("GET").arg(self.key(key)).clone();
        match self.redis.query::<Option<Vec<u8>>>(&cmd).await {
            Ok(v) => v.and_then(|bytes| decode(&bytes)),
            Err(e) => {
                self.metrics.store_error();
                tracing::debug!(error = %e, "response cache lookup failed; served as a miss");
                None
            }
        }
    }

    /// Stores `answer` for `ttl`. Returns false when Redis did not take it.
    pub async fn put(&self, key: &CacheKey, answer: &CachedAnswer, ttl: Duration) -> bool {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let cmd = redis::cmd("SET")
            .arg(self.key(key))
            .arg(encode(answer))
            .arg("PX")
            .arg(ttl_ms)
            .clone();
        match self.redis.query::<()>(&cmd).await {
            Ok(()) => true,
            Err(e) => {
                self.metrics.store_error();
                tracing::debug!(error = %e, "response cache store failed; answer not stored");
                false
            }
        }
    }
}

/// `MAGIC ‖ u32 BE header length ‖ header JSON ‖ body`.
pub fn encode(a: &CachedAnswer) -> Vec<u8> {
    let header = Header {
        stream: a.stream,
        content_type: a.content_type.clone(),
        usage: a.usage,
        deployment: a.deployment.clone(),
        stored_unix_ms: a.stored_unix_ms,
    };
    let h = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + h.len() + a.body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&a.body);
    out
}

/// The inverse of [`encode`]; `None` for anything else.
pub fn decode(bytes: &[u8]) -> Option<CachedAnswer> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let header: Header = serde_json::from_slice(rest.get(4..4 + len)?).ok()?;
    let body = rest.get(4 + len..)?;
    Some(CachedAnswer {
        stream: header.stream,
        content_type: header.content_type,
        body: Bytes::copy_from_slice(body),
        usage: header.usage,
        deployment: header.deployment,
        stored_unix_ms: header.stored_unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_foreign_values() {
        let a = CachedAnswer {
            stream: true,
            content_type: "text/event-stream".into(),
            body: Bytes::from_static(b"data: {\"x\":1}\n\ndata: [DONE]\n\n"),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 5,
                ..Usage::default()
            },
            deployment: "up/m".into(),
            stored_unix_ms: 42,
        };
        let bytes = encode(&a);
        let b = decode(&bytes).unwrap();
        assert_eq!(b.body, a.body);
        assert_eq!(b.usage, a.usage);
        assert!(b.stream);
        assert_eq!(
            (
                b.content_type.as_str(),
                b.deployment.as_str(),
                b.stored_unix_ms
            ),
            ("text/event-stream", "up/m", 42)
        );
        assert!(decode(b"nonsense").is_none());
        assert!(decode(&bytes[..10]).is_none());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(decode(&bad).is_none());
    }
}
