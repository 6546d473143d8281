//! The in-process store: a byte-bounded map with least-recently-used eviction and a
//! per-entry expiry.
//!
//! Sixteen shards, each with its own lock and an equal share of the byte budget, so
//! concurrent requests rarely wait on each other. A shard keeps its entries in a hash map
//! and their recency in an ordered map (tick → key): a hit moves the entry to the newest
//! tick, and a store evicts from the oldest tick until the shard fits its budget again.
//! Expired entries are dropped when they are looked up, or evicted like any other.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use datamind_llm::cache_key::CacheKey;
use parking_lot::Mutex;

use super::CachedAnswer;
use super::metrics::CacheMetrics;

const SHARDS: usize = 16;

/// Bytes an entry costs besides its body (map slots, headers, key).
const ENTRY_OVERHEAD: usize = 160;

/// The in-process store.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    metrics: CacheMetrics,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<CacheKey, Slot>,
    recency: BTreeMap<u64, CacheKey>,
    bytes: usize,
    budget: usize,
    tick: u64,
}

#[derive(Debug)]
struct Slot {
    answer: CachedAnswer,
    expires: Instant,
    tick: u64,
    size: usize,
}

/// What a store call did, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Kept (replacing an older entry with the same key, if any).
    Kept {
        /// Entries evicted to make room.
        evicted: usize,
    },
    /// Larger than a shard's budget: not kept.
    TooLarge,
}

impl MemoryStore {
    /// A store that keeps at most `max_total_bytes`.
    pub fn new(max_total_bytes: usize, metrics: CacheMetrics) -> Self {
        let budget = max_total_bytes / SHARDS;
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    budget,
                    ..Shard::default()
                })
            })
            .collect();
        Self { shards, metrics }
    }

    fn shard(&self, key: &CacheKey) -> &Mutex<Shard> {
        &self.shards[usize::from(key.0[0]) % SHARDS]
    }

    /// The live entry under `key`, marked most recently used.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<CachedAnswer> {
        let mut s = self.shard(key).lock();
        let expired = s.map.get(key).map(|slot| slot.expires <= now)?;
        if expired {
            let freed = s.remove(key);
            drop(s);
            self.metrics.forget(freed, "expired");
            return None;
        }
        s.tick += 1;
        let tick = s.tick;
        let old = s.map.get_mut(key).map(|slot| {
            let old = slot.tick;
            slot.tick = tick;
            old
        })?;
        s.recency.remove(&old);
        s.recency.insert(tick, *key);
        s.map.get(key).map(|slot| slot.answer.clone())
    }

    /// Stores `answer` under `key` for `ttl`.
    pub fn put(&self, key: CacheKey, answer: CachedAnswer, ttl: Duration, now: Instant) -> Stored {
        let size = answer.body.len() + answer.content_type.len() + ENTRY_OVERHEAD;
        let mut s = self.shard(&key).lock();
        if size > s.budget {
            return Stored::TooLarge;
        }
        let replaced = s.remove(&key);
        let mut evicted = Vec::new();
        while s.bytes + size > s.budget {
            let Some((_, oldest)) = s.recency.pop_first() else {
                break;
            };
            let freed = s.map.remove(&oldest).map_or(0, |slot| slot.size);
            s.bytes -= freed;
            evicted.push(freed);
        }
        s.tick += 1;
        let tick = s.tick;
        s.recency.insert(tick, key);
        s.map.insert(
            key,
            Slot {
                answer,
                expires: now + ttl,
                tick,
                size,
            },
        );
        s.bytes += size;
        drop(s);
        self.metrics.forget(replaced, "replaced");
        for freed in &evicted {
            self.metrics.forget(Some(*freed), "capacity");
        }
        self.metrics.remember(size);
        Stored::Kept {
            evicted: evicted.len(),
        }
    }
}

impl Shard {
    /// Removes `key`; returns the bytes it took.
    fn remove(&mut self, key: &CacheKey) -> Option<usize> {
        let slot = self.map.remove(key)?;
        self.recency.remove(&slot.tick);
        self.bytes -= slot.size;
        Some(slot.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn answer(n: usize) -> CachedAnswer {
        CachedAnswer {
            stream: false,
            content_type: "application/json".into(),
            body: Bytes::from(vec![b'x'; n]),
            usage: Default::default(),
            deployment: "d".into(),
            stored_unix_ms: 0,
        }
    }

    /// Keys that all land in shard 0, so one shard's budget is exercised.
    fn key(i: u8) -> CacheKey {
        let mut k = [0u8; 32];
        k[0] = 0;
        k[1] = i;
        CacheKey(k)
    }

    fn store(total: usize) -> MemoryStore {
        MemoryStore::new(total, CacheMetrics::default())
    }

    #[test]
    fn hit_miss_and_expiry() {
        let s = store(16 * 10_000);
        let now = Instant::now();
        assert!(s.get(&key(1), now).is_none());
        s.put(key(1), answer(10), Duration::from_secs(5), now);
        let hit = s.get(&key(1), now + Duration::from_secs(4)).unwrap();
        assert_eq!(hit.body.len(), 10);
        assert!(s.get(&key(1), now + Duration::from_secs(5)).is_none());
        // The expired entry is gone, not merely hidden.
        assert!(s.shard(&key(1)).lock().map.is_empty());
        assert_eq!(s.shard(&key(1)).lock().bytes, 0);
    }

    #[test]
    fn evicts_least_recently_used_within_the_budget() {
        // Shard budget: 1000 bytes; each entry 300 + overhead = 460: two fit.
        let s = store(16 * 1000);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        s.put(key(1), answer(300), ttl, now);
        s.put(key(2), answer(300), ttl, now);
        // Touch 1, so 2 is the least recently used.
        assert!(s.get(&key(1), now).is_some());
        assert_eq!(
            s.put(key(3), answer(300), ttl, now),
            Stored::Kept { evicted: 1 }
        );
        assert!(s.get(&key(1), now).is_some());
        assert!(s.get(&key(2), now).is_none());
        assert!(s.get(&key(3), now).is_some());
        let sh = s.shard(&key(1)).lock();
        assert!(sh.bytes <= sh.budget);
        assert_eq!(sh.map.len(), sh.recency.len());
    }

    #[test]
    fn refuses_entries_larger_than_a_shard_and_replaces_same_key() {
        let s = store(16 * 1000);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        assert_eq!(s.put(key(1), answer(2000), ttl, now), Stored::TooLarge);
        assert!(s.get(&key(1), now).is_none());
        s.put(key(1), answer(100), ttl, now);
        s.put(key(1), answer(200), ttl, now);
        assert_eq!(s.get(&key(1), now).unwrap().body.len(), 200);
        let sh = s.shard(&key(1)).lock();
        assert_eq!(sh.bytes, 200 + 16 + ENTRY_OVERHEAD);
        assert_eq!(sh.map.len(), 1);
        assert_eq!(sh.recency.len(), 1);
    }
}
