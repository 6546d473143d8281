//! The cache's Prometheus metrics, registered into the gateway's registry by
//! `telemetry::Metrics::new`:
//!
//! - `datamind_cache_requests_total{result="hit|miss|bypass"}`: cacheable requests that
//!   were answered from the cache, looked up and missed (or revalidated with `no-cache`),
//!   and requests the cache was on for but did not consider (not deterministic, `no-store`,
//!   `x-datamind-cache: off`).
//! - `datamind_cache_stores_total{result="stored|too_large|failed"}`: answers offered to the store.
//! - `datamind_cache_evictions_total{reason="capacity|expired|replaced"}`.
//! - `datamind_cache_bytes`, `datamind_cache_entries`: what the memory store holds.
//! - `datamind_cache_store_errors_total`: external store (Redis) calls that failed
//!   (each degraded to a miss or a skipped store).

use crate::telemetry::metrics::Counter;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Handles to every cache metric (cheap to clone: each is an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct CacheMetrics {
    requests: Family<ResultLabels, Counter>,
    /// `requests` for hit, miss, bypass, resolved once (the request path only touches atomics).
    by_result: [Counter; 3],
    stores: Family<ResultLabels, Counter>,
    evictions: Family<ReasonLabels, Counter>,
    bytes: Gauge,
    entries: Gauge,
    store_errors: Counter,
}

impl CacheMetrics {
    /// Registers every cache metric in `registry` (prefix `datamind_` comes from it).
    pub fn register(registry: &mut Registry) -> Self {
        let mut m = Self::default();
        m.by_result = ["hit", "miss", "bypass"]
            .map(|result| m.requests.get_or_create(&ResultLabels { result }).clone());
        registry.register(
            "cache_requests",
            "Response-cache decisions per request (hit, miss, bypass)",
            m.requests.clone(),
        );
        registry.register(
            "cache_stores",
            "Answers offered to the response cache by result (stored, too_large, failed)",
            m.stores.clone(),
        );
        registry.register(
            "cache_evictions",
            "Response-cache entries removed by reason (capacity, expired, replaced)",
            m.evictions.clone(),
        );
        registry.register(
            "cache_bytes",
            "Bytes held by the in-memory response cache",
            m.bytes.clone(),
        );
        registry.register(
            "cache_entries",
            "Entries held by the in-memory response cache",
            m.entries.clone(),
        );
        registry.register(
            "cache_store_errors",
            "External response-cache store calls that failed (served as misses)",
            m.store_errors.clone(),
        );
        m
    }

    /// One request's decision.
    pub fn request(&self, status: super::CacheStatus) {
        let i = match status {
            super::CacheStatus::Hit => 0,
            super::CacheStatus::Miss => 1,
            super::CacheStatus::Bypass => 2,
        };
        self.by_result[i].inc();
    }

    /// One store attempt: `stored`, `too_large` or `failed`.
    pub fn store(&self, result: &'static str) {
        self.stores.get_or_create(&ResultLabels { result }).inc();
    }

    /// One failed call to an external store.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// An entry of `size` bytes was added to the memory store.
    pub(super) fn remember(&self, size: usize) {
        self.bytes.inc_by(size as i64);
        self.entries.inc();
    }

    /// An entry of `size` bytes (if any) left the memory store for `reason`.
    pub(super) fn forget(&self, size: Option<usize>, reason: &'static str) {
        if let Some(size) = size {
            self.bytes.dec_by(size as i64);
            self.entries.dec();
            self.evictions.get_or_create(&ReasonLabels { reason }).inc();
        }
    }
}
