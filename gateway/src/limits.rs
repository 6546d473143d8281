//! Rate limits: requests per minute, tokens per minute and requests in flight, per key,
//! tenant, key × model and tenant × model — enforced fleet-wide in Redis when it is
//! configured, in-process otherwise.
//!
//! ```text
//! server::api, after the model lookup:
//!   rules::any(caller)? ── no ──▶ nothing to do (no allocation, no lock, no round trip)
//!        │ yes
//!   Limiter::admit ──▶ rules::collect → checks (reserve prompt estimate + max_tokens)
//!        ├─ Redis up:  shared::Scripts::admit  (ONE EVALSHA for every scope)
//!        ├─ Redis down, on_redis_failure=open:   local::LocalStore (limit / replicas)
//!        ├─ Redis down, on_redis_failure=closed: 503 state_store_unavailable
//!        └─ no Redis:  local::LocalStore
//!   denied ─▶ 429 rate_limit_exceeded + Retry-After + x-ratelimit-* headers
//!   admitted ─▶ Admission (a guard): headers for the answer; when dropped — on every
//!               exit path — it settles: reserved tokens reconciled with the real usage,
//!               in-flight slot released (Redis: in the background, off the hot path)
//! ```
//! Token limits are admitted by reservation, so a burst of long streams cannot overshoot
//! a limit by more than what one request reserved too little.

pub mod budget;
pub mod gate;
mod headers;
mod local;
pub mod rules;
mod shared;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::GatewayError;
use crate::auth::Caller;
use crate::config::{LimiterConfig, RedisFailureMode};
use crate::redis::Redis;
use crate::telemetry::Metrics;
use rules::{Dimension, Rule};

pub use local::LocalStore;

/// One counter to check, as the stores see it.
#[derive(Debug, Clone)]
pub struct Check {
    /// The counter's full name in its store.
    pub name: String,
    /// Sliding window or in-flight count.
    pub kind: Kind,
    /// The limit (the store divides it in fallback mode).
    pub limit: u64,
    /// Units this request takes (1, or the reserved tokens).
    pub cost: u64,
}

/// How a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Units per sliding minute.
    Window,
    /// Requests in flight.
    InFlight,
}

/// A store's answer for every check of one request.
#[derive(Debug)]
pub struct Decision {
    /// The first check that failed; nothing was counted then.
    pub denied: Option<usize>,
    /// The window slot the request was counted in (for settling).
    pub bucket: i64,
    /// Per check, in order.
    pub verdicts: Vec<Verdict>,
}

/// One check's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// The limit in force (divided in fallback mode).
    pub limit: u64,
    /// Units counted before this request.
    pub used: u64,
    /// Whether this check passed.
    pub admitted: bool,
    /// Milliseconds until the window is empty (admitted) or this request would fit.
    pub reset_ms: i64,
}

/// Where limits are being enforced right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// No Redis configured: per process.
    Local = 0,
    /// In Redis, fleet-wide.
    Shared = 1,
    /// Redis unreachable: per replica, limits divided by `limiter.replicas`.
    LocalFallback = 2,
    /// Redis unreachable: limited callers are refused.
    FailClosed = 3,
}

impl Mode {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Shared => "shared",
            Self::LocalFallback => "local_fallback",
            Self::FailClosed => "fail_closed",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Shared,
            2 => Self::LocalFallback,
            3 => Self::FailClosed,
            _ => Self::Local,
        }
    }

    fn when_down(on_failure: RedisFailureMode) -> Self {
        match on_failure {
            RedisFailureMode::Open => Self::LocalFallback,
            RedisFailureMode::Closed => Self::FailClosed,
        }
    }
}

/// The rate limiter of one gateway process.
#[derive(Debug)]
pub struct Limiter {
    local: Arc<LocalStore>,
    redis: Option<Redis>,
    scripts: Arc<shared::Scripts>,
    metrics: Arc<Metrics>,
    mode: AtomicU8,
    /// `limiter.on_redis_failure` as last seen (the reconnect watcher reads it).
    on_failure: AtomicU8,
}

/// What one request needs to know to be admitted.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Client-facing model.
    pub model: &'a str,
    /// Tokens to reserve: estimated prompt plus `max_tokens` (or the default).
    pub reserve_tokens: u64,
    /// How long an in-flight slot may be held in Redis if this replica dies.
    pub lease_ttl_ms: u64,
}

// === impl Limiter ===

impl Limiter {
    /// A limiter over `redis` (or in-process when `None`). With Redis, a task watches its
    /// connection so the mode metric and log follow outages even without traffic.
    pub fn new(redis: Option<Redis>, cfg: &LimiterConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let initial = if redis.is_some() {
            Mode::when_down(cfg.on_redis_failure)
        } else {
            Mode::Local
        };
        metrics.limits.set_mode(initial.as_str());
        let limiter = Arc::new(Self {
            local: Arc::new(LocalStore::default()),
            redis,
            scripts: Arc::new(shared::Scripts::default()),
            metrics,
            mode: AtomicU8::new(initial as u8),
            on_failure: AtomicU8::new(cfg.on_redis_failure as u8),
        });
        if let Some(redis) = &limiter.redis {
            let weak = Arc::downgrade(&limiter);
            let mut rx = redis.watch();
            redis.spawn(async move {
                // The connection may already be up: act on the current state first.
                loop {
                    let up = *rx.borrow_and_update();
                    let Some(l) = weak.upgrade() else { return };
                    l.note_mode(if up { Mode::Shared } else { l.down_mode() });
                    drop(l);
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
        limiter
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    fn down_mode(&self) -> Mode {
        Mode::when_down(if self.on_failure.load(Ordering::Relaxed) == 0 {
            RedisFailureMode::Open
        } else {
            RedisFailureMode::Closed
        })
    }

    /// Logs and exports a change of mode (once per change).
    fn note_mode(&self, m: Mode) {
        let old = Mode::from_u8(self.mode.swap(m as u8, Ordering::AcqRel));
        if old == m {
            return;
        }
        self.metrics.limits.set_mode(m.as_str());
        match m {
            Mode::Shared => tracing::info!(mode = m.as_str(), "rate limits: shared in Redis"),
            Mode::LocalFallback => tracing::warn!(
                mode = m.as_str(),
                "rate limits: Redis unreachable, enforcing per-replica local limits (limit / limiter.replicas)"
            ),
            Mode::FailClosed => tracing::error!(
                mode = m.as_str(),
                "rate limits: Redis unreachable, refusing limited requests (on_redis_failure: closed)"
            ),
            Mode::Local => tracing::info!(mode = m.as_str(), "rate limits: in-process"),
        }
    }

    /// Admits a request of `caller`, or refuses it with 429 (or 503 when Redis is down
    /// and failing closed). `None` when no limit applies to the caller: call only after
    /// [`rules::any`] said there is one, or accept the cost of collecting nothing.
    pub async fn admit(
        &self,
        cfg: &LimiterConfig,
        caller: &Caller,
        ask: Ask<'_>,
    ) -> Result<Option<Admission>, GatewayError> {
        let rules = rules::collect(caller, ask.model);
        if rules.is_empty() {
            return Ok(None);
        }
        self.on_failure
            .store(cfg.on_redis_failure as u8, Ordering::Relaxed);
        let tag = rules::tenant_tag(&caller.tenant);
        let lease = format!("{:016x}", fastrand::u64(..));
        if let Some(redis) = &self.redis {
            if redis.is_up() {
                let checks = checks(&rules, ask.reserve_tokens, |id| {
                    redis.key("rl", &tag, &format!(":{id}"))
                });
                match self
                    .scripts
                    .admit(redis, &checks, &lease, ask.lease_ttl_ms)
                    .await
                {
                    Ok(d) => {
                        self.note_mode(Mode::Shared);
                        let backend = Backend::Shared(redis.clone(), self.scripts.clone());
                        return self.conclude(&rules, &checks, d, backend, lease, ask);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "rate limits: Redis admission failed");
                    }
                }
            }
            let mode = Mode::when_down(cfg.on_redis_failure);
            self.note_mode(mode);
            if mode == Mode::FailClosed {
                self.metrics.limits.reject("redis", "unavailable");
                return Err(GatewayError::RedisUnavailable(
                    "rate limits cannot be checked".into(),
                ));
            }
        }
        let divisor = if self.redis.is_some() {
            u64::from(cfg.replicas.max(1))
        } else {
            1
        };
        let checks = checks(&rules, ask.reserve_tokens, |id| format!("{tag}:{id}"));
        let d = self.local.admit(&checks, divisor);
        self.conclude(
            &rules,
            &checks,
            d,
            Backend::Local(self.local.clone()),
            lease,
            ask,
        )
    }

    fn conclude(
        &self,
        rules: &[Rule],
        checks: &[Check],
        d: Decision,
        backend: Backend,
        lease: String,
        ask: Ask<'_>,
    ) -> Result<Option<Admission>, GatewayError> {
        let hdrs = headers::rate_limit_headers(rules, checks, &d);
        if let Some(i) = d.denied {
            let (rule, v) = (&rules[i], &d.verdicts[i]);
            self.metrics
                .limits
                .reject(rule.scope.as_str(), rule.dim.as_str());
            return Err(GatewayError::RateLimited {
                scope: rule.scope.as_str(),
                dimension: rule.dim.as_str(),
                limit: v.limit,
                too_large: rule.dim == Dimension::Tokens && checks[i].cost > v.limit,
                retry_after_s: (v.reset_ms.max(0) as u64).div_ceil(1000).max(1),
                headers: hdrs,
            });
        }
        let pick = |kind: Kind, dim: Option<Dimension>| -> Vec<String> {
            rules
                .iter()
                .zip(checks)
                .filter(|(r, c)| c.kind == kind && dim.is_none_or(|d| r.dim == d))
                .map(|(_, c)| c.name.clone())
                .collect()
        };
        Ok(Some(Admission {
            backend,
            windows: pick(Kind::Window, Some(Dimension::Tokens)),
            in_flight: pick(Kind::InFlight, None),
            bucket: d.bucket,
            reserved: ask.reserve_tokens,
            lease,
            used: None,
            headers: hdrs,
        }))
    }
}

fn checks(rules: &[Rule], reserve: u64, name: impl Fn(&str) -> String) -> Vec<Check> {
    rules
        .iter()
        .map(|r| Check {
            name: name(&r.id),
            kind: match r.dim {
                Dimension::Concurrent => Kind::InFlight,
                _ => Kind::Window,
            },
            limit: r.limit,
            cost: match r.dim {
                Dimension::Tokens => reserve,
                _ => 1,
            },
        })
        .collect()
}

/// Where an admission was counted.
#[derive(Debug)]
enum Backend {
    Local(Arc<LocalStore>),
    Shared(Redis, Arc<shared::Scripts>),
}

/// An admitted request's hold on its limits. Dropping it — on every exit path — settles:
/// the token reservation is reconciled with the usage recorded by
/// [`Admission::record_usage`] (kept whole when none was), and in-flight slots are freed.
#[derive(Debug)]
pub struct Admission {
    backend: Backend,
    windows: Vec<String>,
    in_flight: Vec<String>,
    bucket: i64,
    reserved: u64,
    lease: String,
    used: Option<u64>,
    /// `x-ratelimit-*` headers for the answer.
    pub headers: Vec<(&'static str, String)>,
}

impl Admission {
    /// The tokens the request really used (prompt + completion). `None` when unknown
    /// (e.g. the client left mid-stream before usage arrived): the reservation stands.
    pub fn record_usage(&mut self, tokens: Option<u64>) {
        self.used = tokens;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.windows.is_empty() && self.in_flight.is_empty() {
            return;
        }
        let delta = self.used.map_or(0, |u| u as i64 - self.reserved as i64);
        let windows = if delta == 0 {
            Vec::new()
        } else {
            std::mem::take(&mut self.windows)
        };
        let in_flight = std::mem::take(&mut self.in_flight);
        if windows.is_empty() && in_flight.is_empty() {
            return;
        }
        match &self.backend {
            Backend::Local(store) => store.settle(&windows, self.bucket, delta, &in_flight),
            Backend::Shared(redis, scripts) => {
                let (redis2, scripts) = (redis.clone(), scripts.clone());
                let (bucket, lease) = (self.bucket, std::mem::take(&mut self.lease));
                redis.spawn(async move {
                    if let Err(e) = scripts
                        .settle(&redis2, &windows, bucket, delta, &in_flight, &lease)
                        .await
                    {
                        tracing::debug!(error = %e, "rate limits: settling in Redis failed; leases expire by themselves");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
