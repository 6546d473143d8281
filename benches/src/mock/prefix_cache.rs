//! A simulated vLLM prefix cache: does a request's prompt start with a prompt this replica
//! has already processed?
//!
//! vLLM keeps the KV blocks of recent prompts; a new prompt whose beginning matches one of
//! them skips that part of the prefill. The mock models this at message granularity: it
//! remembers the hash of every prompt it served (the whole `messages` array, or `prompt`),
//! and a request *hits* when some shorter run of its leading messages is such a prompt (the
//! next turn of a conversation, or a shared system prompt sent before). Memory is bounded:
//! the oldest entries are evicted first. Counted in `/stats` as `prefix_cache_hits` /
//! `prefix_cache_misses`, so a load test can compare routing strategies.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use parking_lot::Mutex;
use serde_json::Value;

/// Prompts remembered per replica.
pub const DEFAULT_ENTRIES: usize = 4096;

/// The cache of one mock replica.
#[derive(Debug)]
pub struct PrefixCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl Default for PrefixCache {
    fn default() -> Self {
        Self::new(DEFAULT_ENTRIES)
    }
}

impl PrefixCache {
    /// A cache remembering `capacity` prompts.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                capacity: capacity.max(1),
                ..Inner::default()
            }),
        }
    }

    /// Looks a generation request body up and remembers its prompt. Returns whether it hit;
    /// `None` when the body has no prompt (not counted).
    pub fn observe(&self, body: &[u8]) -> Option<bool> {
        let prefixes = prefix_hashes(body)?;
        let (&whole, shorter) = prefixes.split_last()?;
        let mut c = self.inner.lock();
        let hit = shorter.iter().any(|h| c.seen.contains(h));
        if hit {
            c.hits += 1;
        } else {
            c.misses += 1;
        }
        if c.seen.insert(whole) {
            c.order.push_back(whole);
            while c.order.len() > c.capacity {
                if let Some(old) = c.order.pop_front() {
                    c.seen.remove(&old);
                }
            }
        }
        Some(hit)
    }

    /// `(hits, misses)` since the last reset.
    pub fn counts(&self) -> (u64, u64) {
        let c = self.inner.lock();
        (c.hits, c.misses)
    }

    /// Zeroes the counters and forgets every prompt.
    pub fn reset(&self) {
        let mut c = self.inner.lock();
        let capacity = c.capacity;
        *c = Inner {
            capacity,
            ..Inner::default()
        };
    }
}

/// Hashes of the prompt's leading runs of messages: `[h(m0), h(m0 m1), …, h(all)]`.
fn prefix_hashes(body: &[u8]) -> Option<Vec<u64>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = match (v.get("messages"), v.get("prompt")) {
        (Some(Value::Array(m)), _) => m.iter().map(Value::to_string).collect(),
        (_, Some(p)) => vec![p.to_string()],
        _ => return None,
    };
    let mut h = DefaultHasher::new();
    Some(
        parts
            .iter()
            .map(|p| {
                p.hash(&mut h);
                h.finish()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(turns: &[&str]) -> Vec<u8> {
        let messages: Vec<Value> = turns
            .iter()
            .map(|t| serde_json::json!({"role": "user", "content": t}))
            .collect();
        serde_json::to_vec(&serde_json::json!({"model": "m", "messages": messages}))
            .unwrap_or_default()
    }

    #[test]
    fn the_next_turn_hits_and_a_new_conversation_misses() {
        let c = PrefixCache::new(8);
        assert_eq!(c.observe(&chat(&["a"])), Some(false));
        assert_eq!(c.observe(&chat(&["a", "b", "c"])), Some(true));
        assert_eq!(c.observe(&chat(&["x", "b"])), Some(false));
        assert_eq!(c.observe(b"{\"input\": \"e\"}"), None);
        assert_eq!(c.counts(), (1, 2));
    }

    #[test]
    fn old_prompts_are_evicted() {
        let c = PrefixCache::new(1);
        c.observe(&chat(&["a"]));
        c.observe(&chat(&["z"]));
        assert_eq!(c.observe(&chat(&["a", "b"])), Some(false));
    }
}
