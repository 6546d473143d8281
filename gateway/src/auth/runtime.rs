//! API keys created at runtime through the admin API: a [`KeyStore`] holds the records,
//! and every gateway keeps an in-memory index of them, so authenticating never waits on
//! the store.
//!
//! Writes (create, rotate, revoke) go to the store and then refresh the local index. A
//! shared store (Redis) is polled for changes by [`RuntimeKeys::sync`], which bounds how
//! long another gateway takes to see a write. Records are never deleted: a revoked key
//! keeps its record, so the answer can say "revoked" instead of "invalid", and a rotated
//! key remembers its previous digests for the same reason.
//!
//! Runtime keys are not config: a reload keeps them. The index holds the tenant table it
//! was built with; a reload hands it the new one ([`RuntimeKeys::set_tenants`]), which
//! rebuilds the index once, off the request path.

pub mod memory;
pub mod redis_store;
pub mod sync;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::keys::Digest32;
use super::{Caller, Tenants};
use crate::GatewayError;
use crate::config::{BudgetConfig, LimitsConfig};

pub use memory::MemoryStore;
pub use redis_store::RedisStore;
pub use sync::KeySync;

/// How many earlier digests of a rotated key are remembered (to answer "revoked").
const REMEMBERED_ROTATIONS: usize = 4;

/// A runtime key as stored. Holds the key's digest, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeKey {
    /// Generated, non-secret id (`key_…`): the caller's `key_id`.
    pub id: String,
    /// A label for logs and listings.
    pub name: String,
    /// Lower-case hex SHA-256 of the current key.
    pub sha256: String,
    /// Digests of keys this one replaced by rotation (newest last).
    #[serde(default)]
    pub previous_sha256: Vec<String>,
    /// Tenant.
    pub tenant: String,
    /// Allowed client-facing models; `*` = all.
    pub models: Vec<String>,
    /// The key's rate limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The key's budget.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// Unix seconds from which the key is refused.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Free-form labels.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last rotation.
    #[serde(default)]
    pub rotated_at: Option<i64>,
    /// Unix seconds of revocation.
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Bumped by every update; [`KeyStore::replace`] only writes over the revision it read.
    #[serde(default)]
    pub revision: u64,
}

/// Where runtime keys live. Implementations: [`MemoryStore`] (one process) and the Redis
/// store (shared by every gateway on that Redis).
#[async_trait]
pub trait KeyStore: Send + Sync + Debug {
    /// Every record. Called at start, after each local write and when [`Self::version`]
    /// moved; may do I/O.
    async fn load_all(&self) -> Result<Vec<RuntimeKey>, GatewayError>;
    /// One record by id.
    async fn get(&self, id: &str) -> Result<Option<RuntimeKey>, GatewayError>;
    /// Inserts the new record `key` (its id is fresh), and moves the version.
    async fn put(&self, key: &RuntimeKey) -> Result<(), GatewayError>;
    /// Replaces the record `key.id` if its stored revision is still `read_revision`
    /// (compare-and-set, so two gateways updating one key cannot lose a write), and moves
    /// the version. Returns whether it wrote.
    async fn replace(&self, key: &RuntimeKey, read_revision: u64) -> Result<bool, GatewayError>;
    /// A counter that changes with every write by any gateway (cheap; polled).
    async fn version(&self) -> Result<u64, GatewayError>;
    /// Whether other gateways write to this store too (then it is polled).
    fn shared(&self) -> bool {
        false
    }
}

/// What a digest is in the index.
#[derive(Debug)]
enum Slot {
    Active {
        caller: Arc<Caller>,
        expires_at: Option<i64>,
    },
    /// Revoked, or replaced by rotation.
    Revoked,
}

#[derive(Debug, Default)]
struct Index {
    by_digest: HashMap<Digest32, Slot>,
    records: Vec<RuntimeKey>,
    tenants: Arc<Tenants>,
}

/// The runtime keys of this gateway: the store and the local index.
#[derive(Debug)]
pub struct RuntimeKeys {
    store: Arc<dyn KeyStore>,
    index: ArcSwap<Index>,
    /// The store version the index reflects (`u64::MAX`: never loaded).
    version: AtomicU64,
    writes: tokio::sync::Mutex<()>,
    /// Serialises index rebuilds (a sync and a tenant swap must not undo each other).
    rebuild: parking_lot::Mutex<()>,
}

// === impl RuntimeKey ===

impl RuntimeKey {
    /// `active`, `revoked` or `expired` at `now`.
    pub fn status(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|t| now >= t) {
            "expired"
        } else {
            "active"
        }
    }

    /// Replaces the digest with `new_sha256`, remembering the old one.
    pub fn rotate(&mut self, new_sha256: String, now: i64) {
        let old = std::mem::replace(&mut self.sha256, new_sha256);
        self.previous_sha256.push(old);
        let excess = self
            .previous_sha256
            .len()
            .saturating_sub(REMEMBERED_ROTATIONS);
        self.previous_sha256.drain(..excess);
        self.rotated_at = Some(now);
    }

    fn caller(&self, tenants: &Tenants) -> Caller {
        Caller {
            key_id: self.id.clone(),
            key_name: self.name.as_str().into(),
            tenant: self.tenant.as_str().into(),
            tenant_info: tenants.resolve(&self.tenant),
            models: Caller::model_set(&self.models),
            limits: Arc::new(self.limits.clone()),
            budget: self.budget,
        }
    }
}

fn decode(hex_digest: &str) -> Option<Digest32> {
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut d).ok().map(|()| d)
}

// === impl Index ===

impl Index {
    fn build(records: Vec<RuntimeKey>, tenants: Arc<Tenants>) -> Self {
        let mut by_digest = HashMap::with_capacity(records.len());
        for r in &records {
            for old in r.previous_sha256.iter().filter_map(|h| decode(h)) {
                by_digest.entry(old).or_insert(Slot::Revoked);
            }
            let Some(d) = decode(&r.sha256) else {
                continue;
            };
            let slot = if r.revoked_at.is_some() {
                Slot::Revoked
            } else {
                Slot::Active {
                    caller: Arc::new(r.caller(&tenants)),
                    expires_at: r.expires_at,
                }
            };
            by_digest.insert(d, slot);
        }
        Self {
            by_digest,
            records,
            tenants,
        }
    }
}

// === impl RuntimeKeys ===

impl RuntimeKeys {
    /// An empty index over `store` with the config's `tenants`; call [`Self::sync`] to
    /// load it.
    pub fn new(store: Arc<dyn KeyStore>, tenants: Arc<Tenants>) -> Self {
        Self {
            store,
            index: ArcSwap::from_pointee(Index {
                tenants,
                ..Index::default()
            }),
            version: AtomicU64::new(u64::MAX),
            writes: tokio::sync::Mutex::new(()),
            rebuild: parking_lot::Mutex::new(()),
        }
    }

    /// A reload brought a new tenant table: rebuild the index with it.
    pub fn set_tenants(&self, tenants: Arc<Tenants>) {
        let _r = self.rebuild.lock();
        let records = self.index.load().records.clone();
        self.index.store(Arc::new(Index::build(records, tenants)));
    }

    /// The key with this digest: `Ok(None)` when unknown, an error when revoked or
    /// expired. Never does I/O or allocates.
    pub fn lookup(&self, digest: &Digest32, now: i64) -> Result<Option<Arc<Caller>>, GatewayError> {
        let index = self.index.load();
        match index.by_digest.get_key_value(digest) {
            Some((stored, slot)) if bool::from(stored.ct_eq(digest)) => match slot {
                Slot::Revoked => Err(GatewayError::Unauthorized("the API key has been revoked")),
                Slot::Active { expires_at, .. } if expires_at.is_some_and(|t| now >= t) => {
                    Err(GatewayError::Unauthorized("the API key has expired"))
                }
                Slot::Active { caller, .. } => Ok(Some(caller.clone())),
            },
            _ => Ok(None),
        }
    }

    /// Whether the store is shared with other gateways (Redis).
    pub fn shared(&self) -> bool {
        self.store.shared()
    }

    /// Every record, as of the last sync.
    pub fn records(&self) -> Vec<RuntimeKey> {
        self.index.load().records.clone()
    }

    /// Reloads the index when the store's version moved (or `force`). Returns whether it
    /// reloaded.
    pub async fn sync(&self, force: bool) -> Result<bool, GatewayError> {
        let v = self.store.version().await?;
        if !force && v == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        let records = self.store.load_all().await?;
        let _r = self.rebuild.lock();
        let tenants = self.index.load().tenants.clone();
        self.index.store(Arc::new(Index::build(records, tenants)));
        self.version.store(v, Ordering::Release);
        Ok(true)
    }

    /// Stores a new record and refreshes the index.
    pub async fn create(&self, key: RuntimeKey) -> Result<RuntimeKey, GatewayError> {
        let _w = self.writes.lock().await;
        self.store.put(&key).await?;
        self.sync(true).await?;
        Ok(key)
    }

    /// Applies `change` to the record `id` (read from the store), stores it and refreshes
    /// the index. `Ok(None)` when there is no such key. A concurrent update of the same key
    /// (by another gateway) makes it read again and reapply `change`, a few times at most.
    pub async fn update(
        &self,
        id: &str,
        change: impl Fn(&mut RuntimeKey),
    ) -> Result<Option<RuntimeKey>, GatewayError> {
        let _w = self.writes.lock().await;
        for _ in 0..5 {
            let Some(mut key) = self.store.get(id).await? else {
                return Ok(None);
            };
            let read = key.revision;
            change(&mut key);
            key.revision = read + 1;
            if self.store.replace(&key, read).await? {
                self.sync(true).await?;
                return Ok(Some(key));
            }
        }
        Err(GatewayError::Internal(format!(
            "key {id} is being updated concurrently; retry"
        )))
    }

    /// One record, read from the store.
    pub async fn get(&self, id: &str) -> Result<Option<RuntimeKey>, GatewayError> {
        self.store.get(id).await
    }
}

#[cfg(test)]
mod tests;
