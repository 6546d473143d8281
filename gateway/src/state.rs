//! The state shared by every request and background task of one gateway process.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use pingora_core::connectors::http::Connector;

use crate::auth::RuntimeKeys;
use crate::auth::runtime::{KeyStore, MemoryStore, RedisStore};
use crate::cache::ResponseCache;
use crate::engine::H1Pool;
use crate::snapshot::{HealthRegistry, Snapshot};
use crate::telemetry::{AccessLog, Metrics, Traces};

/// One gateway process's shared state.
pub struct Gateway {
    /// The config snapshot requests read; swapped by reloads.
    pub snapshot: ArcSwap<Snapshot>,
    /// Live deployment health, kept across reloads.
    pub health: HealthRegistry,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// New TLS and HTTP/2 upstream connections, and pooled HTTP/2 sessions (plain HTTP/1.1
    /// connections are opened by `engine/connection.rs`).
    pub connector: Connector,
    /// Idle HTTP/1.1 upstream connections.
    pub h1_pool: Arc<H1Pool>,
    /// The access log.
    pub access_log: AccessLog,
    /// SIGTERM received: finish what is in flight, accept nothing new.
    pub draining: AtomicBool,
    /// The config reloader is watching the file and the signals: until then `/readyz` says
    /// "starting" (an edit made before would be missed).
    pub reloader_started: AtomicBool,
    /// The shared Redis, when `redis:` is configured (fixed at start: a reload that changes
    /// it logs a warning).
    pub redis: Option<crate::redis::Redis>,
    /// The response cache (its entries survive reloads).
    pub cache: ResponseCache,
    /// API keys created through the admin API (not config: kept across reloads).
    pub runtime_keys: Arc<RuntimeKeys>,
    /// The OTLP trace pipeline, set once at start-up when tracing is on.
    pub traces: std::sync::OnceLock<Traces>,
    /// Rate limits (in Redis when configured).
    pub limiter: Arc<crate::limits::Limiter>,
    /// Spend per key and tenant, and budget checks.
    pub spend: Arc<crate::limits::budget::SpendTracker>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("in_flight", &self.requests_in_flight())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the shared state around a validated config.
    pub fn new(config: crate::config::Config, access_log: AccessLog) -> Arc<Self> {
        let work_stealing = crate::server::work_stealing(&config.server);
        let metrics = Arc::new(Metrics::new());
        let health = HealthRegistry::default();
        let redis = config.redis.as_ref().and_then(|r| {
            crate::redis::Redis::start(r)
                .inspect_err(
                    |e| tracing::error!(error = %e, "redis: cannot start; running without it"),
                )
                .ok()
        });
        let cache = ResponseCache::new(&config.cache, metrics.cache.clone(), redis.as_ref());
        let limiter = crate::limits::Limiter::new(redis.clone(), &config.limiter, metrics.clone());
        let spend = crate::limits::budget::SpendTracker::new(
            redis.clone(),
            std::time::Duration::from_millis(config.limiter.spend_flush_ms),
            metrics.clone(),
        );
        let snapshot = Snapshot::build(config, &health, &metrics);
        let store: Arc<dyn KeyStore> = match &redis {
            Some(r) => Arc::new(RedisStore::new(r.clone())),
            None => Arc::new(MemoryStore::default()),
        };
        let runtime_keys = Arc::new(RuntimeKeys::new(store, snapshot.keys.tenants.clone()));
        let mut opts = pingora_core::connectors::ConnectorOptions::new(1024);
        opts.keepalive_pool_size = 1024;
        Arc::new(Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            health,
            metrics,
            connector: Connector::new(Some(opts)),
            h1_pool: Arc::new(if work_stealing {
                H1Pool::new(crate::engine::IDLE_TIMEOUT)
            } else {
                H1Pool::per_thread(crate::engine::IDLE_TIMEOUT)
            }),
            access_log,
            draining: AtomicBool::new(false),
            reloader_started: AtomicBool::new(false),
            redis,
            cache,
            runtime_keys,
            traces: std::sync::OnceLock::new(),
            limiter,
            spend,
        })
    }

    /// Requests being served right now.
    pub fn requests_in_flight(&self) -> usize {
        // The metric's shards, summed: requests update only their thread's shard.
        usize::try_from(self.metrics.requests_in_flight().get()).unwrap_or(0)
    }
}
