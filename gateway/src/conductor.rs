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
#[cfg(test)]
mod inputs;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use datamind_llm::policy::prefix::PrefixKey;
use datamind_llm::policy::{
    DeploymentInput, Placement, Policy, PolicySpec, Reads, RequestInput, TenantInput,
};
use datamind_llm::{Operation, ParsedRequest};
use http::HeaderMap;
use prometheus_client::metrics::counter::Counter;

use crate::auth::Caller;
use crate::config::{Config, DeploymentConfig, ProviderConfig};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::route::{RouteMetrics, RouteOutcome, RuleCounters};

/// The header naming the rule and deployment of each answer.
pub const ROUTE_HEADER: &str = "x-datamind-route";

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
    tenants: HashMap<String, (Arc<TenantInput>, bool), BuildHasherDefault<Fnv>>,
    /// Decision counters by rule index; the last is the default rule.
    counters: Vec<RuleCounters>,
    shadow_counters: Option<(Counter, Counter)>,
    route_metrics: RouteMetrics,
    /// Cloud and region by deployment id, for the access log.
    places: HashMap<String, (String, String)>,
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
            tenants: tenants(config),
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

    /// The caller's tenant as rules see it: the configured tenant, else what the caller
    /// carries (a bare tenant has no attributes).
    pub fn tenant(&self, caller: &Caller) -> Arc<TenantInput> {
        let t = &caller.tenant_info;
        let bare = t.residency.is_none() && t.region.is_none() && t.attributes.is_empty();
        match self.tenants.get(&caller.tenant) {
            Some((input, configured)) if *configured || bare => input.clone(),
            _ => Arc::new(TenantInput::new(
                caller.tenant.as_str(),
                t.residency.clone().unwrap_or_default(),
                t.region.clone().unwrap_or_default(),
                &t.attributes,
            )),
        }
    }

    /// A configured tenant by name (bare when unknown).
    pub fn tenant_named(&self, name: &str) -> Arc<TenantInput> {
        self.tenants
            .get(name)
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| Arc::new(TenantInput::new(name, "", "", &BTreeMap::new())))
    }

    /// What rules see of a request with `headers`. Only what some rule reads is filled in:
    /// the key name, tags, selected headers and session of a policy that reads none of them
    /// stay empty (no header lookups, no copies); the ones read are found in one pass over
    /// the headers (a lookup by name costs more than the pass).
    pub fn request_input(
        &self,
        caller: &Caller,
        req: &ParsedRequest,
        op: Operation,
        headers: &HeaderMap,
    ) -> RequestInput {
        let reads = self.reads;
        let (tags, session) = (reads.request_field("tags"), reads.request_field("session"));
        let selected = reads.request_field("headers");
        let mut found = Found::default();
        if tags || session || selected {
            for (name, value) in headers {
                // Like a lookup by name: the first value counts, even when not text.
                let n = name.as_str();
                let text = || value.to_str().ok();
                if tags && n == TAGS_HEADER && found.tags.is_none() {
                    found.tags = Some(text());
                }
                if session && n == SESSION_HEADER && found.session.is_none() {
                    found.session = Some(text());
                }
                if selected
                    && let Some(i) = self.headers.iter().position(|h| h == n)
                    && !found.headers.iter().any(|(j, _)| *j == i)
                {
                    found.headers.push((i, text()));
                }
            }
        }
        let lookup = |name: &str| {
            let value = match name {
                TAGS_HEADER if tags => found.tags.flatten(),
                SESSION_HEADER if session => found.session.flatten(),
                n => found
                    .headers
                    .iter()
                    .find(|(i, _)| self.headers[*i] == n)
                    .and_then(|(_, v)| *v),
            };
            value.map(str::to_owned)
        };
        self.input_with(
            self.tenant(caller),
            &caller.key_name,
            req,
            op,
            &lookup,
            reads,
        )
    }

    /// What rules see of a request from `tenant` with key `key`, every field filled in (the
    /// explain endpoint shows them all).
    pub fn input_for(
        &self,
        tenant: Arc<TenantInput>,
        key: &str,
        req: &ParsedRequest,
        op: Operation,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> RequestInput {
        let all = Reads {
            request: u64::MAX,
            deployment: u64::MAX,
        };
        self.input_with(tenant, key, req, op, header, all)
    }

    fn input_with(
        &self,
        tenant: Arc<TenantInput>,
        key: &str,
        req: &ParsedRequest,
        op: Operation,
        header: &dyn Fn(&str) -> Option<String>,
        reads: Reads,
    ) -> RequestInput {
        let read = |field: &str| reads.request_field(field);
        RequestInput {
            model: req.model.clone(),
            operation: op.as_str(),
            tenant,
            key: if read("key") {
                key.to_owned()
            } else {
                String::new()
            },
            estimated_prompt_tokens: req.estimated_prompt_tokens(),
            max_tokens: req.max_tokens,
            stream: req.stream,
            tags: read("tags")
                .then(|| header(TAGS_HEADER))
                .flatten()
                .map(|v| {
                    v.split(',')
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            headers: if read("headers") {
                self.headers
                    .iter()
                    .filter_map(|h| header(h).map(|v| (h.clone(), v)))
                    .collect()
            } else {
                Vec::new()
            },
            session: read("session")
                .then(|| header(SESSION_HEADER))
                .flatten()
                .unwrap_or_default(),
            prefix: if read("prefix") {
                PrefixKey::of(req, self.prefix_bytes)
            } else {
                PrefixKey::default()
            },
        }
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

/// FNV-1a, for the tenant table: a per-request lookup of a short name, where SipHash costs
/// more than the rest of the input. The table is fixed once built (no inserts from
/// requests), so keys chosen to collide cannot grow it.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

const TAGS_HEADER: &str = "x-datamind-tags";
const SESSION_HEADER: &str = "x-session-id";

/// The request headers rules read, found in one pass (first value of each).
#[derive(Default)]
struct Found<'h> {
    tags: Option<Option<&'h str>>,
    session: Option<Option<&'h str>>,
    /// `(index in policy.headers, value)`.
    headers: Vec<(usize, Option<&'h str>)>,
}

/// Fills the access-log fields that answer "where did this request go": rule, cloud,
/// region, tags.
pub fn log_fields(
    snapshot: &crate::snapshot::Snapshot,
    out: &crate::engine::Outcome,
    rec: &mut crate::telemetry::AccessRecord,
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
        .as_deref()
        .and_then(|d| snapshot.conductor.places.get(d))
    {
        rec.cloud = (!cloud.is_empty()).then(|| cloud.clone());
        rec.region = (!region.is_empty()).then(|| region.clone());
    }
}

fn places(config: &Config) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
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

fn tenants(config: &Config) -> HashMap<String, (Arc<TenantInput>, bool), BuildHasherDefault<Fnv>> {
    config
        .tenants
        .iter()
        .map(|t| {
            let input = TenantInput::new(
                t.name.as_str(),
                t.residency.clone().unwrap_or_default(),
                t.region.clone().unwrap_or_default(),
                &t.attributes,
            );
            (t.name.clone(), (Arc::new(input), true))
        })
        .chain(config.auth.keys.iter().map(|k| {
            let bare = TenantInput::new(k.tenant.as_str(), "", "", &BTreeMap::new());
            (k.tenant.clone(), (Arc::new(bare), false))
        }))
        .chain(std::iter::once((
            "anonymous".to_owned(),
            (
                Arc::new(TenantInput::new("anonymous", "", "", &BTreeMap::new())),
                false,
            ),
        )))
        .fold(HashMap::default(), |mut m, (name, t)| {
            // A configured tenant wins over a key's bare one.
            m.entry(name).or_insert(t);
            m
        })
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
