//! The shared Redis: one cloneable async handle for every part of the gateway that keeps
//! state across replicas (distributed rate limits, spend, runtime API keys, response cache).
//!
//! ```text
//! config `redis:` ──▶ Target (standalone url | sentinel | cluster)
//!                        │ connect (+ PING) on the handle's own runtime thread
//!                        ▼
//!   Redis::call(|conn| cmd.query_async(&mut conn)) ──▶ Ok(value)
//!                        │ connection error / timeout
//!                        ▼
//!   marked down: calls fail fast (no network) ─▶ ONE background task reconnects with
//!   jittered exponential backoff ─▶ up again (a log line each way)
//! ```
//!
//! Contract for users:
//! - [`Redis::call`] runs one command (or pipeline, or script) with the configured command
//!   timeout and returns [`GatewayError::RedisUnavailable`] when Redis is down or slow; the
//!   caller decides whether that fails open or closed. It never blocks on a reconnect.
//! - [`Connection`] implements `redis::aio::ConnectionLike`, so `redis::Cmd`,
//!   `redis::Pipeline` and `redis::Script` work on it as on any redis-rs connection.
//! - Key names: build them with [`Redis::key`] so they carry the configured prefix and a
//!   `{hash tag}` (all keys one script touches must share a tag under Cluster). Never put
//!   a raw API key in a key name: use the key's id or a hash.
//! - Connections are driven by a dedicated runtime thread, so the handle can be used from
//!   any tokio runtime (Pingora runs one per service).

mod connect;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

use crate::GatewayError;
use crate::config::RedisConfig;

pub use connect::Target;

/// A cloneable handle to the shared Redis. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Redis(Arc<Inner>);

struct Inner {
    target: Target,
    conn: ArcSwapOption<Connection>,
    /// A reconnect task is running (at most one per process).
    reconnecting: AtomicBool,
    runtime: tokio::runtime::Handle,
    command_timeout: Duration,
    connect_timeout: Duration,
    reconnect_max: Duration,
    prefix: String,
    /// Observers of up/down transitions (the limiter's mode metric).
    state: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The target may hold a password: only its kind is shown.
        f.debug_struct("Redis")
            .field("target", &self.0.target.kind())
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// One live connection: a multiplexed connection to a standalone or Sentinel-resolved
/// master, or a cluster connection that routes by key slot.
#[derive(Clone)]
pub enum Connection {
    /// Standalone server or the master a Sentinel named.
    Node(redis::aio::MultiplexedConnection),
    /// Redis Cluster.
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

// === impl Redis ===

impl Redis {
    /// Starts the handle: a runtime thread that owns the connection, and a first connect
    /// attempt in the background. Returns at once; until connected, calls fail fast with
    /// [`GatewayError::RedisUnavailable`]. Errors only when the config cannot be turned into
    /// a target or the thread cannot start.
    pub fn start(cfg: &RedisConfig) -> Result<Self, GatewayError> {
        let target = Target::from_config(cfg)?;
        let runtime = spawn_runtime()?;
        let (state, _) = tokio::sync::watch::channel(false);
        let inner = Inner {
            target,
            conn: ArcSwapOption::empty(),
            reconnecting: AtomicBool::new(false),
            runtime,
            command_timeout: Duration::from_millis(cfg.command_timeout_ms),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
            reconnect_max: Duration::from_millis(cfg.reconnect_max_ms),
            prefix: cfg.key_prefix.clone(),
            state,
        };
        let redis = Self(Arc::new(inner));
        redis.reconnect_in_background();
        Ok(redis)
    }

    /// Whether a connection is established (the last command did not fail on it).
    pub fn is_up(&self) -> bool {
        self.0.conn.load().is_some()
    }

    /// Up/down transitions: `true` when connected.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.state.subscribe()
    }

    /// Waits until connected, or `timeout` passes. Returns whether it is up.
    pub async fn wait_up(&self, timeout: Duration) -> bool {
        let mut rx = self.watch();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// `<prefix><area>:{<tag>}<rest>`: every key the gateway writes. Keys that one script
    /// or transaction touches together must share `tag` (Redis Cluster hashes only the
    /// part in braces). `tag` and `rest` must not contain raw secrets.
    pub fn key(&self, area: &str, tag: &str, rest: &str) -> String {
        format!("{}{area}:{{{tag}}}{rest}", self.0.prefix)
    }

    /// Runs `f` on the live connection with the command timeout. A connection-level
    /// failure (I/O, dropped connection, timeout) marks Redis down and starts the one
    /// background reconnect; a command error (wrong type, script error) does not.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, GatewayError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let Some(conn) = self.0.conn.load_full() else {
            return Err(GatewayError::RedisUnavailable(
                "not connected (reconnecting in the background)".into(),
            ));
        };
        match tokio::time::timeout(self.0.command_timeout, f(Connection::clone(&conn))).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if is_connection_error(&e) {
                    self.mark_down(&conn, &e.to_string());
                }
                Err(GatewayError::RedisUnavailable(describe(&e)))
            }
            Err(_) => {
                self.mark_down(&conn, "command timed out");
                Err(GatewayError::RedisUnavailable(format!(
                    "no answer within {} ms",
                    self.0.command_timeout.as_millis()
                )))
            }
        }
    }

    /// Runs one command: `redis.query::<i64>(redis::cmd("INCR").arg(k))`.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, GatewayError> {
        self.call(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Runs a pipeline (atomic when built with `.atomic()`; under Cluster all its keys must
    /// share a hash tag).
    pub async fn pipeline<T: FromRedisValue>(&self, p: &Pipeline) -> Result<T, GatewayError> {
        self.call(|mut c| async move { p.query_async(&mut c).await })
            .await
    }

    /// Runs `f` on the handle's runtime thread (background work such as flushes and
    /// settling, off the request path).
    pub fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.runtime.spawn(f);
    }

    /// Drops `failed` (if it is still the live connection) and starts reconnecting.
    fn mark_down(&self, failed: &Arc<Connection>, reason: &str) {
        let current = self.0.conn.load();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            self.0.conn.store(None);
            self.0.state.send_replace(false);
            tracing::warn!(
                redis = self.0.target.kind(),
                reason,
                "redis connection lost; reconnecting in the background"
            );
        }
        self.reconnect_in_background();
    }

    /// Starts the reconnect task unless one is running: jittered exponential backoff from
    /// 100 ms to `reconnect_max_ms`, so replicas do not stampede a recovering Redis.
    fn reconnect_in_background(&self) {
        if self.0.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        self.0.runtime.spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut first = true;
            loop {
                if !first {
                    let jitter = 0.5 + fastrand::f64();
                    tokio::time::sleep(backoff.mul_f64(jitter)).await;
                    backoff = (backoff * 2).min(this.0.reconnect_max);
                }
                first = false;
                match this.0.target.connect(this.0.connect_timeout).await {
                    Ok(conn) => {
                        this.0.conn.store(Some(Arc::new(conn)));
                        this.0.reconnecting.store(false, Ordering::Release);
                        this.0.state.send_replace(true);
                        tracing::info!(
                            redis = this.0.target.kind(),
                            "redis connected"
                        );
                        return;
                    }
                    Err(e) => tracing::debug!(redis = this.0.target.kind(), error = %e, "redis connect failed"),
                }
            }
        });
    }
}

/// The dedicated thread whose runtime drives Redis connections and reconnects.
fn spawn_runtime() -> Result<tokio::runtime::Handle, GatewayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| GatewayError::RedisUnavailable(format!("starting its runtime: {e}")))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("redis".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| GatewayError::RedisUnavailable(format!("starting its thread: {e}")))?;
    Ok(handle)
}

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// A Redis error for logs and errors: its kind and message, which never carry the URL or
/// password.
fn describe(e: &redis::RedisError) -> String {
    format!("{:?}: {}", e.kind(), e.detail().unwrap_or(""))
}

#[cfg(test)]
pub(crate) mod tests;
