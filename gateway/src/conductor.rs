//! Conductor in the core gateway: the compiled placement policy of one config snapshot, and
//! the request inputs it reads.
//!
//! ```text
//! server::api   caller + parsed body + headers ──▶ Conductor::request_input
//! routing       Policy::select → gather candidates (group, fallbacks) with live Stats
//!               → Policy::rank → Plan (+ shadow policy compared, counted, logged)
//! engine        x-datamind-route header, Outcome::route (rule, tags) for spans and logs
//! server::admin POST /admin/route/explain: the same evaluation, nothing sent upstream
//! ```
//! The engine itself lives in `datamind_llm::policy` (portable, shared with the edge).

pub mod explain;
mod input;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::telemetry::metrics::Counter;
use datamind_llm::policy::{DeploymentInput, Placement, Policy, PolicySpec, Reads};

use crate::config::{Config, DeploymentConfig, ProviderConfig};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::route::{RouteMetrics, RouteOutcome, RuleCounters};

/// The header naming the rule and deployment of each answer.
pub const ROUTE_HEADER: &str = "x-datamind-route";

/// The [`ROUTE_HEADER`] value of an answer `deployment` gave under `rule`.
pub fn route_header_value(rule: &str, deployment: &str) -> String {
    let mut v = String::with_capacity(18 + rule.len() + deployment.len());
    for part in ["rule=", rule, "; deployment=", deployment] {
        v.push_str(part);
    }
    v
}

/// The placement policy of one snapshot.
#[derive(Debug, Default)]
pub struct Conductor {
    /// The active policy (`None`: no rules, the groups' strategies decide).
    pub policy: Option<Policy>,
    /// The shadow policy, compared on every request.
    pub shadow: Option<Policy>,
    /// Request headers exposed to rules.
    pub headers: Vec<String>,
    /// By tenant name: the configured tenants (`true`), and the bare tenants of the
    /// configured keys (`false`: what a caller of an unconfigured tenant carries), built once
    /// instead of per request.
    tenants: input::Tenants,
    /// Decision counters by rule index; the last is the default rule.
    counters: Vec<RuleCounters>,
    shadow_counters: Option<(Counter, Counter)>,
    route_metrics: RouteMetrics,
    /// Cloud and region by deployment id, for the access log.
    places: input::ById<(String, String)>,
    /// What the active and shadow rules read of a request: the rest is not looked up.
    reads: Reads,
    /// `policy.prefix_bytes`.
    prefix_bytes: usize,
}

/// The active and shadow policies bound to one deployment ([`Policy::bind`]), kept with it.
#[derive(Debug, Default)]
pub struct Bound {
    active: Option<datamind_llm::policy::Bound>,
    shadow: Option<datamind_llm::policy::Bound>,
}

impl Bound {
    /// The binding of `policy` (the snapshot's active or shadow one).
    pub fn of(&self, policy: &Policy) -> Option<&datamind_llm::policy::Bound> {
        [&self.active, &self.shadow]
            .into_iter()
            .flatten()
            .find(|b| b.is_for(policy))
    }
}

impl Conductor {
    /// Compiles the config's policy (already validated) and resolves its metric handles.
    pub fn build(config: &Config, metrics: &Metrics) -> Self {
        let compile = |spec: &PolicySpec, what: &str| match Policy::compile(spec) {
            Ok(p) => Some(p),
            Err(errors) => {
                // Validation compiles the same rules first, so this is not expected.
                for e in errors {
                    tracing::error!(policy = what, error = %e, "placement rule");
                }
                None
            }
        };
        let policy = config
            .policy
            .is_active()
            .then(|| compile(&config.policy.spec(), "active"))
            .flatten();
        let shadow = config
            .policy
            .shadow
            .as_ref()
            .and_then(|s| compile(s, "shadow"));
        let mut counters: Vec<RuleCounters> = policy
            .iter()
            .flat_map(|p| p.rules().iter())
            .map(|r| metrics.route.for_rule(&r.name))
            .collect();
        counters.push(metrics.route.for_rule(datamind_llm::policy::DEFAULT_RULE));
        let reads = policy
            .iter()
            .chain(shadow.iter())
            .fold(Reads::default(), |a, p| a.union(p.reads()));
        Self {
            shadow_counters: shadow.as_ref().map(|_| metrics.route.shadow_counters()),
            policy,
            shadow,
            headers: config.policy.headers.clone(),
            tenants: input::tenants(config),
            counters,
            route_metrics: metrics.route.clone(),
            places: places(config),
            reads,
            prefix_bytes: config.policy.prefix_bytes,
        }
    }

    /// The snapshot's policies bound to deployment `d`.
    pub fn bind(&self, d: &DeploymentInput) -> Bound {
        Bound {
            active: self.policy.as_ref().map(|p| p.bind(d)),
            shadow: self.shadow.as_ref().map(|p| p.bind(d)),
        }
    }

    /// Whether any rule (active or shadow) is configured: only then are inputs built.
    pub fn is_active(&self) -> bool {
        self.policy.is_some() || self.shadow.is_some()
    }

    /// Counts a decision of rule `index` (`None`: the default).
    pub fn record(&self, index: Option<usize>, outcome: RouteOutcome) {
        let i = index.unwrap_or(self.counters.len().saturating_sub(1));
        if let Some(c) = self.counters.get(i).or(self.counters.last()) {
            c.record(outcome);
        }
    }

    /// Counts a shadow comparison.
    pub fn record_shadow(&self, agree: bool, rule: &str, shadow_rule: &str) {
        if let Some((a, d)) = &self.shadow_counters {
            if agree {
                a.inc();
            } else {
                d.inc();
                self.route_metrics.record_disagreement(rule, shadow_rule);
            }
        }
    }
}

/// Fills the access-log fields that answer "where did this request go": rule, cloud,
/// region, tags.
pub fn log_fields(
    snapshot: &crate::snapshot::Snapshot,
    out: &crate::engine::Outcome<'_>,
    rec: &mut crate::telemetry::AccessRecord<'_>,
) {
    if let Some(r) = &out.route {
        rec.rule = Some(r.rule.to_string());
        let tags: BTreeMap<String, String> = r
            .tag_pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if !tags.is_empty() {
            rec.tags = Some(tags);
        }
    }
    if let Some((cloud, region)) = out
        .deployment
        .and_then(|d| snapshot.conductor.places.get(d))
    {
        rec.cloud = (!cloud.is_empty()).then(|| cloud.clone());
        rec.region = (!region.is_empty()).then(|| region.clone());
    }
}

fn places(config: &Config) -> input::ById<(String, String)> {
    let mut out = input::ById::default();
    for m in &config.models {
        for d in &m.deployments {
            let Some(p) = config.providers.iter().find(|p| p.name == d.provider) else {
                continue;
            };
            let cloud = d
                .cloud
                .clone()
                .or_else(|| p.cloud.clone())
                .unwrap_or_default();
            let region = d
                .region
                .clone()
                .or_else(|| p.region.clone())
                .unwrap_or_default();
            out.insert(format!("{}/{}", d.provider, d.model), (cloud, region));
        }
    }
    out
}

/// The placement input of one deployment of group `group`.
pub fn deployment_input(
    id: &str,
    group: &str,
    provider: &ProviderConfig,
    d: &DeploymentConfig,
    prices: (f64, f64, f64),
) -> DeploymentInput {
    let mut labels = provider.labels.clone();
    labels.extend(d.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let placement = Placement {
        cloud: d
            .cloud
            .clone()
            .or_else(|| provider.cloud.clone())
            .unwrap_or_default(),
        region: d
            .region
            .clone()
            .or_else(|| provider.region.clone())
            .unwrap_or_default(),
        context_window: d.context_window.unwrap_or(0),
        labels,
    };
    DeploymentInput::new(
        id,
        group,
        provider.name.as_str(),
        provider.kind.as_str(),
        d.model.as_str(),
        &placement,
        prices,
        d.weight.max(1),
        d.max_in_flight.unwrap_or(0),
    )
}
