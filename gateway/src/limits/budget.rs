//! Spend and budgets: what each key and tenant spent this day and this month, and the
//! check that refuses a request whose worst-case cost would cross a hard budget.
//!
//! ```text
//! admission: spent (fleet total as last read + not yet flushed + reserved in flight)
//!            + worst-case cost of this request > hard_usd ──▶ 429 insufficient_quota
//!            otherwise the worst case is reserved until the request ends
//! finish:    reservation released; the real cost (deployment price × usage) recorded
//!            for key/day, key/month, tenant/day, tenant/month
//! Redis:     a background task flushes the recorded deltas every `spend_flush_ms`
//!            (HINCRBYFLOAT/HINCRBY, one pipeline per subject) and reads the fleet totals back —
//!            never on the request path. Without Redis the in-process totals are the truth.
//! ```
//! Soft budgets only warn: a log line and `datamind_budget_soft_exceeded_total`, once per
//! subject and period.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use datamind_llm::Usage;
use parking_lot::Mutex;
use redis::Value;

use super::rules::tenant_tag;
use crate::GatewayError;
use crate::config::{BudgetConfig, BudgetPeriod};
use crate::redis::Redis;
use crate::snapshot::health::now_ms;
use crate::telemetry::Metrics;
use crate::telemetry::access_log::rfc3339_ms;

/// Whose spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One API key (by its non-secret id).
    Key,
    /// A tenant.
    Tenant,
}

impl Scope {
    /// `key` or `tenant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Tenant => "tenant",
        }
    }
}

/// One spend counter: a subject in one calendar period (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpendKey {
    /// Key or tenant.
    pub scope: Scope,
    /// The key's id or the tenant's name.
    pub id: String,
    /// Day or month.
    pub period: BudgetPeriod,
    /// `2026-11-26` or `2026-11`.
    pub stamp: String,
}

/// Spend and usage of one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// USD.
    pub usd: f64,
    /// Requests that reached a priced deployment.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.usd += o.usd;
        self.requests += o.requests;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }
}

/// A subject whose budget a request is checked against.
#[derive(Debug, Clone)]
pub struct Budgeted<'a> {
    /// Key or tenant.
    pub scope: Scope,
    /// Its id.
    pub id: &'a str,
    /// Its budget.
    pub budget: BudgetConfig,
}

/// What a finished request cost, and whom.
#[derive(Debug, Clone, Copy)]
pub struct Charge<'a> {
    /// Tenant name.
    pub tenant: &'a str,
    /// The key's id.
    pub key_id: &'a str,
    /// Client-facing model (metric label).
    pub model: &'a str,
    /// The tenant as a metric label: its name when listed in `tenants[]`, else `other`
    /// (runtime keys and tokens may name unbounded tenants).
    pub tenant_label: &'a str,
    /// Tokens used.
    pub usage: &'a Usage,
    /// Price × usage; `None` when nothing priced answered (nothing is recorded).
    pub cost_usd: Option<f64>,
}

/// The worst-case cost a request holds against budgets while in flight.
#[derive(Debug, Default)]
pub struct Reservation {
    held: Vec<(SpendKey, f64)>,
}

/// Every process's spend book.
#[derive(Debug)]
pub struct SpendTracker {
    redis: Option<Redis>,
    book: Mutex<Book>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct Book {
    /// Fleet totals as last read from Redis (without Redis: the totals).
    totals: HashMap<SpendKey, Totals>,
    /// Recorded here, not yet flushed to Redis.
    pending: HashMap<SpendKey, Totals>,
    /// Worst-case cost of requests in flight.
    reserved: HashMap<SpendKey, f64>,
    /// Soft budgets already reported this period.
    soft_noted: HashSet<SpendKey>,
    /// Tenants with a hard budget: for `datamind_budget_remaining_usd`.
    tenant_budgets: HashMap<String, BudgetConfig>,
}

/// `(day, month)` stamps for now (UTC).
fn stamps() -> (String, String) {
    let ts = rfc3339_ms(now_ms());
    (ts[..10].to_owned(), ts[..7].to_owned())
}

fn key_for(scope: Scope, id: &str, period: BudgetPeriod, stamps: &(String, String)) -> SpendKey {
    SpendKey {
        scope,
        id: id.to_owned(),
        period,
        stamp: match period {
            BudgetPeriod::Day => stamps.0.clone(),
            BudgetPeriod::Month => stamps.1.clone(),
        },
    }
}

fn period_str(p: BudgetPeriod) -> &'static str {
    match p {
        BudgetPeriod::Day => "day",
        BudgetPeriod::Month => "month",
    }
}

// === impl SpendTracker ===

impl SpendTracker {
    /// A tracker; with Redis, a background task flushes every `flush`.
    pub fn new(redis: Option<Redis>, flush: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        let tracker = Arc::new(Self {
            redis,
            book: Mutex::new(Book::default()),
            metrics,
        });
        if let Some(redis) = &tracker.redis {
            let weak = Arc::downgrade(&tracker);
            redis.spawn(async move {
                let mut tick = tokio::time::interval(flush);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(t) = weak.upgrade() else { return };
                    t.flush().await;
                }
            });
        }
        tracker
    }

    /// Refuses the request if `worst_usd` on top of what each subject spent (and holds in
    /// flight) would cross its hard budget; otherwise reserves `worst_usd` for each.
    pub fn admit(
        &self,
        subjects: &[Budgeted<'_>],
        worst_usd: f64,
    ) -> Result<Reservation, GatewayError> {
        let stamps = stamps();
        let mut book = self.book.lock();
        let mut keys = Vec::with_capacity(subjects.len());
        for s in subjects {
            let key = key_for(s.scope, s.id, s.budget.period, &stamps);
            let spent = book.spent(&key);
            let held = book.reserved.get(&key).copied().unwrap_or(0.0);
            if s.scope == Scope::Tenant && s.budget.hard_usd.is_some() {
                book.tenant_budgets.insert(s.id.to_owned(), s.budget);
            }
            if let Some(hard) = s.budget.hard_usd
                && (spent + held + worst_usd > hard || spent >= hard)
            {
                self.metrics.limits.reject(s.scope.as_str(), "budget");
                return Err(GatewayError::BudgetExceeded {
                    scope: s.scope.as_str(),
                    period: period_str(s.budget.period),
                    hard_usd: hard,
                    spent_usd: spent,
                });
            }
            // Watched: the flush reads its fleet total back from now on.
            book.totals.entry(key.clone()).or_default();
            keys.push(key);
        }
        let mut r = Reservation::default();
        if worst_usd > 0.0 {
            for key in keys {
                *book.reserved.entry(key.clone()).or_default() += worst_usd;
                r.held.push((key, worst_usd));
            }
        }
        Ok(r)
    }

    /// Ends a request: frees its reservation and records what it really cost.
    pub fn finish(&self, r: Reservation, charge: &Charge<'_>, budgets: &[Budgeted<'_>]) {
        let Charge {
            tenant,
            key_id,
            model,
            tenant_label,
            usage,
            cost_usd,
        } = *charge;
        let stamps = stamps();
        let mut book = self.book.lock();
        for (key, usd) in r.held {
            if let Some(v) = book.reserved.get_mut(&key) {
                *v -= usd;
                if *v <= 1e-12 {
                    book.reserved.remove(&key);
                }
            }
        }
        let Some(usd) = cost_usd else { return };
        let delta = Totals {
            usd,
            requests: 1,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        };
        let shared = self.redis.is_some();
        for scope in [Scope::Key, Scope::Tenant] {
            let id = if scope == Scope::Key { key_id } else { tenant };
            for period in [BudgetPeriod::Day, BudgetPeriod::Month] {
                let key = key_for(scope, id, period, &stamps);
                let slot = if shared {
                    book.pending.entry(key).or_default()
                } else {
                    book.totals.entry(key).or_default()
                };
                slot.add(&delta);
            }
        }
        self.metrics.limits.add_spend(tenant_label, model, usd);
        for b in budgets {
            let key = key_for(b.scope, b.id, b.budget.period, &stamps);
            let spent = book.spent(&key);
            if let Some(soft) = b.budget.soft_usd
                && spent >= soft
                && book.soft_noted.insert(key)
            {
                self.metrics.limits.soft_budget_crossed(b.scope.as_str());
                tracing::warn!(
                    scope = b.scope.as_str(),
                    id = b.id,
                    period = period_str(b.budget.period),
                    soft_usd = soft,
                    spent_usd = spent,
                    "soft budget exceeded"
                );
            }
        }
        book.export_remaining(&self.metrics, &stamps);
    }

    /// What `scope`/`id` spent this day and this month (fleet-wide when Redis is up).
    pub async fn report(&self, scope: Scope, id: &str) -> (SpendKey, Totals, SpendKey, Totals) {
        let stamps = stamps();
        let day = key_for(scope, id, BudgetPeriod::Day, &stamps);
        let month = key_for(scope, id, BudgetPeriod::Month, &stamps);
        if let Some(redis) = &self.redis {
            let mut p = redis::pipe();
            for k in [&day, &month] {
                p.cmd("HGETALL").arg(redis_key(redis, k));
            }
            if let Ok(v) = redis.pipeline::<Vec<Value>>(&p).await
                && v.len() == 2
            {
                let book = self.book.lock();
                let mut d = parse_totals(&v[0]);
                let mut m = parse_totals(&v[1]);
                d.add(&book.pending.get(&day).copied().unwrap_or_default());
                m.add(&book.pending.get(&month).copied().unwrap_or_default());
                return (day, d, month, m);
            }
        }
        let book = self.book.lock();
        let total = |k: &SpendKey| {
            let mut t = book.totals.get(k).copied().unwrap_or_default();
            t.add(&book.pending.get(k).copied().unwrap_or_default());
            t
        };
        let (d, m) = (total(&day), total(&month));
        (day, d, month, m)
    }

    /// Sends the recorded deltas to Redis and reads the fleet totals of every watched
    /// counter back: one pipeline per subject (its day and month share a hash tag, so this
    /// works under Redis Cluster too). On failure a subject's deltas are kept for the next
    /// flush.
    async fn flush(&self) {
        let Some(redis) = &self.redis else { return };
        let (mut pending, watched) = {
            let mut book = self.book.lock();
            let stamps = stamps();
            book.prune(&stamps);
            let pending = std::mem::take(&mut book.pending);
            let mut watched: Vec<SpendKey> = book.totals.keys().cloned().collect();
            watched.extend(
                pending
                    .keys()
                    .filter(|k| !book.totals.contains_key(*k))
                    .cloned(),
            );
            (pending, watched)
        };
        let mut subjects: HashMap<(Scope, String), Vec<SpendKey>> = HashMap::new();
        for k in watched {
            subjects.entry((k.scope, k.id.clone())).or_default().push(k);
        }
        for keys in subjects.into_values() {
            let deltas: Vec<(SpendKey, Totals)> = keys
                .iter()
                .filter_map(|k| pending.remove(k).map(|t| (k.clone(), t)))
                .collect();
            let mut p = redis::pipe();
            for (k, t) in &deltas {
                let name = redis_key(redis, k);
                p.cmd("HINCRBYFLOAT")
                    .arg(&name)
                    .arg("usd")
                    .arg(t.usd)
                    .ignore();
                for (field, v) in [
                    ("requests", t.requests),
                    ("prompt_tokens", t.prompt_tokens),
                    ("completion_tokens", t.completion_tokens),
                ] {
                    p.cmd("HINCRBY").arg(&name).arg(field).arg(v).ignore();
                }
                let ttl = match k.period {
                    BudgetPeriod::Day => 35 * 86_400,
                    BudgetPeriod::Month => 400 * 86_400,
                };
                p.cmd("EXPIRE").arg(&name).arg(ttl).ignore();
            }
            for k in &keys {
                p.cmd("HGETALL").arg(redis_key(redis, k));
            }
            match redis.pipeline::<Vec<Value>>(&p).await {
                Ok(values) if values.len() == keys.len() => {
                    let mut book = self.book.lock();
                    for (k, v) in keys.into_iter().zip(values) {
                        book.totals.insert(k, parse_totals(&v));
                    }
                }
                other => {
                    if let Err(e) = other {
                        tracing::debug!(error = %e, "spend flush to Redis failed; kept for the next one");
                    }
                    let mut book = self.book.lock();
                    for (k, t) in deltas {
                        book.pending.entry(k).or_default().add(&t);
                    }
                }
            }
        }
        self.book.lock().export_remaining(&self.metrics, &stamps());
    }
}

// === impl Book ===

impl Book {
    fn spent(&self, key: &SpendKey) -> f64 {
        self.totals.get(key).map_or(0.0, |t| t.usd) + self.pending.get(key).map_or(0.0, |t| t.usd)
    }

    /// Forgets counters of past periods.
    fn prune(&mut self, stamps: &(String, String)) {
        let current = |k: &SpendKey| match k.period {
            BudgetPeriod::Day => k.stamp == stamps.0,
            BudgetPeriod::Month => k.stamp == stamps.1,
        };
        self.totals.retain(|k, _| current(k));
        self.soft_noted.retain(current);
    }

    fn export_remaining(&self, metrics: &Metrics, stamps: &(String, String)) {
        for (tenant, b) in &self.tenant_budgets {
            if let Some(hard) = b.hard_usd {
                let key = key_for(Scope::Tenant, tenant, b.period, stamps);
                metrics.limits.set_budget_remaining(
                    tenant,
                    period_str(b.period),
                    (hard - self.spent(&key)).max(0.0),
                );
            }
        }
    }
}

/// `<prefix>spend:{t-<tenant>}:d:2026-11-26` / `{k-<key id>}`: each subject its own hash
/// tag (the flush pipeline is not atomic, so counters may live in different slots).
fn redis_key(redis: &Redis, k: &SpendKey) -> String {
    let tag = match k.scope {
        Scope::Key => format!("k-{}", tenant_tag(&k.id)),
        Scope::Tenant => format!("t-{}", tenant_tag(&k.id)),
    };
    let p = match k.period {
        BudgetPeriod::Day => "d",
        BudgetPeriod::Month => "m",
    };
    redis.key("spend", &tag, &format!(":{p}:{}", k.stamp))
}

fn parse_totals(v: &Value) -> Totals {
    let mut t = Totals::default();
    let Ok(map) = redis::from_redis_value_ref::<HashMap<String, String>>(v) else {
        return t;
    };
    let num = |f: &str| {
        map.get(f)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    t.usd = num("usd");
    t.requests = num("requests") as u64;
    t.prompt_tokens = num("prompt_tokens") as u64;
    t.completion_tokens = num("completion_tokens") as u64;
    t
}

#[cfg(test)]
mod tests;
