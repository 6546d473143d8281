//! The `cache:` block: the exact-match response cache (see `crate::cache`).

use serde::Deserialize;

/// Which requests the cache may answer.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Deterministic requests (`temperature: 0` or `top_k: 1`, and embeddings), plus any
    /// request sent with `x-datamind-cache: force`.
    #[default]
    Deterministic,
    /// Only requests sent with `x-datamind-cache: force`.
    OptIn,
}

/// Where entries live.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheStoreKind {
    /// In this process (bounded by `max_total_bytes`, least recently used evicted first).
    #[default]
    Memory,
    /// In the shared Redis of the top-level `redis:` block: every gateway of a fleet sees
    /// the same entries; Redis expires them. A Redis outage makes every lookup a miss.
    Redis,
}

/// The response cache. Absent means off; `cache: {}` means on with these defaults.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Serve and store answers.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which requests are cacheable.
    #[serde(default)]
    pub mode: CacheMode,
    /// How long an entry is served after it was stored.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Answers larger than this (as sent to the client) are not stored.
    #[serde(default = "default_max_entry")]
    pub max_entry_bytes: usize,
    /// Memory store: total bytes kept (restart to change).
    #[serde(default = "default_max_total")]
    pub max_total_bytes: usize,
    /// Where entries live (restart to change).
    #[serde(default)]
    pub store: CacheStoreKind,
}

fn yes() -> bool {
    true
}
fn default_ttl() -> u64 {
    300
}
fn default_max_entry() -> usize {
    1 << 20
}
fn default_max_total() -> usize {
    64 << 20
}

impl Default for CacheConfig {
    /// No `cache:` block: off.
    fn default() -> Self {
        Self {
            enabled: false,
            mode: CacheMode::default(),
            ttl_seconds: default_ttl(),
            max_entry_bytes: default_max_entry(),
            max_total_bytes: default_max_total(),
            store: CacheStoreKind::default(),
        }
    }
}

impl CacheConfig {
    /// Reports each problem as (path, message).
    pub(super) fn check(&self, has_redis: bool, add: &mut impl FnMut(String, String)) {
        if self.store == CacheStoreKind::Redis && !has_redis {
            add(
                "cache.store".into(),
                "`redis` needs a top-level `redis:` block".into(),
            );
        }
        if self.ttl_seconds == 0 {
            add("cache.ttl_seconds".into(), "must be at least 1".into());
        }
        if self.ttl_seconds > 30 * 86_400 {
            add(
                "cache.ttl_seconds".into(),
                "must be at most 2592000 (30 days)".into(),
            );
        }
        if self.max_entry_bytes < 1024 {
            add(
                "cache.max_entry_bytes".into(),
                "must be at least 1024".into(),
            );
        }
        if self.max_total_bytes < self.max_entry_bytes {
            add(
                "cache.max_total_bytes".into(),
                "must be at least cache.max_entry_bytes".into(),
            );
        }
    }
}
