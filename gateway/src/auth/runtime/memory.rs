//! The in-process key store: the default when no Redis is configured. Runtime keys then
//! live as long as the process (a reload keeps them, a restart loses them).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{KeyStore, RuntimeKey};
use crate::GatewayError;

/// Records in a map.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<String, RuntimeKey>>,
    version: AtomicU64,
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn load_all(&self) -> Result<Vec<RuntimeKey>, GatewayError> {
        Ok(self.records.lock().values().cloned().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<RuntimeKey>, GatewayError> {
        Ok(self.records.lock().get(id).cloned())
    }

    async fn put(&self, key: &RuntimeKey) -> Result<(), GatewayError> {
        self.records.lock().insert(key.id.clone(), key.clone());
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn replace(&self, key: &RuntimeKey, read_revision: u64) -> Result<bool, GatewayError> {
        let mut records = self.records.lock();
        match records.get_mut(&key.id) {
            Some(cur) if cur.revision == read_revision => {
                *cur = key.clone();
                self.version.fetch_add(1, Ordering::AcqRel);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn version(&self) -> Result<u64, GatewayError> {
        Ok(self.version.load(Ordering::Acquire))
    }
}
