//! Metrics of rate limits, budgets and spend. Labels are bounded: scopes, dimensions and
//! modes are fixed sets; tenants come from the config; models are client-facing names
//! from the config. Never a key.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    scope: &'static str,
    dimension: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    tenant: String,
    period: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpendLabels {
    tenant: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SoftLabels {
    scope: &'static str,
}

const MODES: [&str; 4] = ["local", "shared", "local_fallback", "fail_closed"];

/// The limiter's and the spend tracker's metric handles.
#[derive(Debug, Clone, Default)]
pub struct LimitMetrics {
    rejections: Family<RejectLabels, Counter>,
    mode: Family<ModeLabels, Gauge>,
    budget_remaining: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    spend: Family<SpendLabels, Counter<f64, AtomicU64>>,
    soft_budget: Family<SoftLabels, Counter>,
}

impl LimitMetrics {
    /// Registers every metric in `registry` (prefix `datamind_`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "ratelimit_rejections",
            "Requests refused by a rate limit (scope: key, tenant, key_model, tenant_model, redis; dimension: requests, tokens, concurrent, budget, unavailable)",
            m.rejections.clone(),
        );
        registry.register(
            "ratelimit_mode",
            "Where rate limits are enforced now (1 = in force): local, shared (Redis), local_fallback, fail_closed",
            m.mode.clone(),
        );
        registry.register(
            "budget_remaining_usd",
            "Hard budget left in the current period, per configured tenant",
            m.budget_remaining.clone(),
        );
        registry.register(
            "spend_usd",
            "Spend recorded by this replica, by tenant (listed in tenants[], else other) and client-facing model",
            m.spend.clone(),
        );
        registry.register(
            "budget_soft_exceeded",
            "Soft budgets crossed (counted once per subject and period)",
            m.soft_budget.clone(),
        );
        m
    }

    /// Counts one refusal.
    pub fn reject(&self, scope: &'static str, dimension: &'static str) {
        self.rejections
            .get_or_create(&RejectLabels { scope, dimension })
            .inc();
    }

    /// Marks `mode` as the one in force (the others 0).
    pub fn set_mode(&self, mode: &str) {
        for m in MODES {
            self.mode
                .get_or_create(&ModeLabels { mode: m })
                .set(i64::from(m == mode));
        }
    }

    /// The hard budget left for a configured tenant.
    pub fn set_budget_remaining(&self, tenant: &str, period: &'static str, usd: f64) {
        self.budget_remaining
            .get_or_create(&BudgetLabels {
                tenant: tenant.to_owned(),
                period,
            })
            .set(usd);
    }

    /// Adds a request's cost.
    pub fn add_spend(&self, tenant: &str, model: &str, usd: f64) {
        self.spend
            .get_or_create(&SpendLabels {
                tenant: tenant.to_owned(),
                model: model.to_owned(),
            })
            .inc_by(usd);
    }

    /// A soft budget was crossed.
    pub fn soft_budget_crossed(&self, scope: &'static str) {
        self.soft_budget.get_or_create(&SoftLabels { scope }).inc();
    }
}
