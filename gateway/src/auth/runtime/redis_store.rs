//! The shared key store: runtime keys in Redis, so every gateway on that Redis accepts and
//! refuses the same keys.
//!
//! Two keys under one hash tag (`<prefix>keys:{runtime}…`, so the transaction below works
//! on Redis Cluster): a hash `records` (key id → the JSON record, which holds digests, never
//! a key) and a counter `version`, bumped in the same `MULTI` as every write. Each gateway
//! polls `version` every [`super::sync::INTERVAL`] and reloads the hash when it moved: that
//! interval bounds how long a key created or revoked on one gateway takes to be seen by
//! the others. While Redis is down, lookups use the last loaded records and admin writes
//! fail with 503.

use async_trait::async_trait;

use super::{KeyStore, RuntimeKey};
use crate::GatewayError;
use crate::redis::Redis;

/// Compare-and-set of one record on its `revision` (both keys share the hash tag).
static REPLACE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local rev = cjson.decode(cur).revision or 0
if string.format('%d', rev) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
",
    )
});

/// Runtime keys in Redis.
#[derive(Debug)]
pub struct RedisStore {
    redis: Redis,
    records: String,
    version: String,
}

impl RedisStore {
    /// The store on the shared handle.
    pub fn new(redis: Redis) -> Self {
        Self {
            records: redis.key("keys", "runtime", "records"),
            version: redis.key("keys", "runtime", "version"),
            redis,
        }
    }
}

fn decode(id: &str, json: &[u8]) -> Option<RuntimeKey> {
    serde_json::from_slice(json)
        .inspect_err(
            |e| tracing::warn!(key_id = %id, error = %e, "unreadable runtime key record; skipped"),
        )
        .ok()
}

#[async_trait]
impl KeyStore for RedisStore {
    async fn load_all(&self) -> Result<Vec<RuntimeKey>, GatewayError> {
        let all: Vec<(String, Vec<u8>)> = self
            .redis
            .query(redis::cmd("HGETALL").arg(&self.records))
            .await?;
        Ok(all.iter().filter_map(|(id, j)| decode(id, j)).collect())
    }

    async fn get(&self, id: &str) -> Result<Option<RuntimeKey>, GatewayError> {
        let json: Option<Vec<u8>> = self
            .redis
            .query(redis::cmd("HGET").arg(&self.records).arg(id))
            .await?;
        Ok(json.and_then(|j| decode(id, &j)))
    }

    async fn put(&self, key: &RuntimeKey) -> Result<(), GatewayError> {
        let json = serde_json::to_vec(key)
            .map_err(|e| GatewayError::Internal(format!("encoding a key record: {e}")))?;
        let mut p = redis::pipe();
        p.atomic()
            .cmd("HSET")
            .arg(&self.records)
            .arg(&key.id)
            .arg(json)
            .ignore()
            .cmd("INCR")
            .arg(&self.version)
            .ignore();
        self.redis.pipeline::<()>(&p).await
    }

    async fn replace(&self, key: &RuntimeKey, read_revision: u64) -> Result<bool, GatewayError> {
        let json = serde_json::to_vec(key)
            .map_err(|e| GatewayError::Internal(format!("encoding a key record: {e}")))?;
        let mut inv = REPLACE.prepare_invoke();
        inv.key(&self.records)
            .key(&self.version)
            .arg(&key.id)
            .arg(read_revision)
            .arg(json);
        let wrote: i64 = self
            .redis
            .call(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(wrote == 1)
    }

    async fn version(&self) -> Result<u64, GatewayError> {
        let v: Option<u64> = self
            .redis
            .query(redis::cmd("GET").arg(&self.version))
            .await?;
        Ok(v.unwrap_or(0))
    }

    fn shared(&self) -> bool {
        true
    }
}
