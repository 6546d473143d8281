//! Where a chat request goes: Workers AI, the core gateway, or a cloud API.
//!
//! Rules come from configuration (the `ROUTES` var, or the `routes` document in the
//! `CONFIG_KV` namespace, which wins) and are tried in order; the first whose `model`
//! (and `tenant`, when given) glob matches decides. `*` matches any run of characters.
//!
//! ```json
//! {"rules": [
//!    {"model": "@cf/*", "target": "workers_ai"},
//!    {"model": "llama-3.1-8b", "target": "workers_ai"},
//!    {"model": "gpt-*", "tenant": "acme", "target": "cloud"},
//!    {"model": "*", "target": "core"}],
//!  "workers_ai_models": {"llama-3.1-8b": "@cf/meta/llama-3.1-8b-instruct"},
//!  "fallback_to_core": true}
//! ```
//!
//! ## Conductor policy
//!
//! With `policy` (the core gateway's `policy` section: the same rule schema, compiled by
//! the same engine, `datamind_llm::policy`) and `destinations` (the edge's "deployments":
//! Workers AI, the core gateway, a cloud API, with the placement facts rules read), the
//! policy decides instead of the glob rules: its `when` picks the rule, `deny` refuses,
//! `filter` and `order` rank the destinations that serve the model; the first wins. Rules
//! see `request.*` (model, tenant with the residency, region and attributes of `tenants`,
//! estimated tokens, `max_tokens`, stream, session,
//! prefix, tags from `x-datamind-tags`) and `deployment.*` (name, provider = the target,
//! cloud, region, model, prices, context window, labels); the edge has no live statistics,
//! so every destination reads as healthy and idle. A policy that does not compile is a
//! config error with its path and position, as at the core.
//!
//! ```json
//! {"policy": {"rules": [
//!    {"name": "small-at-edge", "when": "request.model == \"chat-small\"",
//!     "order": "deployment.cloud == \"cloudflare\" ? 0 : 1"},
//!    {"name": "core-first", "order": "deployment.provider == \"core\" ? 0 : 1"}]},
//!  "destinations": [
//!    {"name": "workers-ai", "target": "workers_ai", "models": ["chat-small"],
//!     "cloud": "cloudflare", "region": "edge", "upstream_model": "@cf/meta/llama-3.1-8b-instruct"},
//!    {"name": "core", "target": "core", "cloud": "onprem"},
//!    {"name": "cloud", "target": "cloud", "cloud": "azure", "region": "westeurope"}]}
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use datamind_llm::ParsedRequest;
use datamind_llm::policy::prefix::PrefixKey;
use datamind_llm::policy::{
    Candidate, DeploymentInput, Now, Placement, Policy, PolicySpec, RequestInput, Stats,
    TenantInput,
};
use serde::Deserialize;

use crate::EdgeError;

/// An inference destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Workers AI through the `AI` binding.
    WorkersAi,
    /// The DataMind core gateway (`CORE_URL`).
    Core,
    /// An OpenAI-compatible cloud API (`CLOUD_BASE_URL`, `CLOUD_API_KEY`).
    Cloud,
}

impl Target {
    /// The name used in headers and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkersAi => "workers_ai",
            Self::Core => "core",
            Self::Cloud => "cloud",
        }
    }
}

/// One routing rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Glob over the client's model name.
    pub model: String,
    /// Glob over the tenant id; any tenant when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Where matching requests go.
    pub target: Target,
    /// The model name to send upstream, when it differs from the client's.
    #[serde(default)]
    pub upstream_model: Option<String>,
}

fn yes() -> bool {
    true
}

/// A destination the policy ranks: one of the targets, with what rules read of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// Unique name (`deployment.name`).
    pub name: String,
    /// Where it sends (`deployment.provider` and `deployment.kind`).
    pub target: Target,
    /// Globs of the client models it serves (all when empty).
    #[serde(default)]
    pub models: Vec<String>,
    /// The model name it is sent (the client's when absent; Workers AI maps through
    /// `workers_ai_models` then).
    #[serde(default)]
    pub upstream_model: Option<String>,
    /// `deployment.cloud`.
    #[serde(default)]
    pub cloud: String,
    /// `deployment.region`.
    #[serde(default)]
    pub region: String,
    /// USD per million input tokens.
    #[serde(default)]
    pub price_input: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub price_output: f64,
    /// Context window in tokens (0 when unknown).
    #[serde(default)]
    pub context_window: u64,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A tenant's placement attributes (`request.tenant.*`), as in the core's `tenants:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Data residency, e.g. `eu`.
    #[serde(default)]
    pub residency: String,
    /// Home region.
    #[serde(default)]
    pub region: String,
    /// Free-form attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// The compiled policy and its destinations as the engine sees them, built once per
/// routing document.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    policy: Arc<Policy>,
    inputs: Arc<[DeploymentInput]>,
    tenants: Arc<BTreeMap<String, Arc<TenantInput>>>,
}

/// The routing document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Where requests go when no rule matches; `None` answers `model_not_found`.
    #[serde(default)]
    pub default: Option<Target>,
    /// Client model names served by Workers AI, mapped to `@cf/…` models.
    #[serde(default)]
    pub workers_ai_models: BTreeMap<String, String>,
    /// Retry on the core gateway when Workers AI fails before its first byte.
    #[serde(default = "yes")]
    pub fallback_to_core: bool,
    /// Conductor placement rules (the core gateway's schema); replace `rules` when set.
    #[serde(default)]
    pub policy: Option<PolicySpec>,
    /// What the policy chooses among.
    #[serde(default)]
    pub destinations: Vec<Destination>,
    /// Tenants' placement attributes by tenant id (others: name only).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSpec>,
    /// `policy` compiled (by [`RoutingConfig::from_json`]).
    #[serde(skip)]
    pub compiled: Option<CompiledPolicy>,
}

impl Default for RoutingConfig {
    /// Everything to the core gateway.
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: Some(Target::Core),
            workers_ai_models: BTreeMap::new(),
            fallback_to_core: true,
            policy: None,
            destinations: Vec::new(),
            tenants: BTreeMap::new(),
            compiled: None,
        }
    }
}

/// The outcome of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Where to send it.
    pub target: Target,
    /// The model name the target knows.
    pub upstream_model: String,
    /// Index of the matching rule; `None` for the default.
    pub rule: Option<usize>,
    /// The Conductor rule that placed it (`default` when none matched), with a policy.
    pub policy_rule: Option<String>,
}

fn is_workers_ai_model(m: &str) -> bool {
    m.starts_with("@cf/") || m.starts_with("@hf/")
}

impl RoutingConfig {
    /// Parses and validates a JSON routing document. The isolate keeps the last two
    /// documents it compiled (the `ROUTES` var and a `CONFIG_KV` override), so a policy is
    /// compiled once, not per request.
    pub fn from_json(text: &str) -> Result<Self, Vec<String>> {
        thread_local! {
            static COMPILED: std::cell::RefCell<Vec<(String, RoutingConfig)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let hit = COMPILED.with(|c| {
            c.borrow()
                .iter()
                .find(|(t, _)| t == text)
                .map(|(_, cfg)| cfg.clone())
        });
        if let Some(cfg) = hit {
            return Ok(cfg);
        }
        let mut cfg: Self = serde_json::from_str(text).map_err(|e| vec![format!("routes: {e}")])?;
        cfg.validate()?;
        cfg.compiled = cfg.compile()?;
        COMPILED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= 2 {
                c.remove(0);
            }
            c.push((text.to_owned(), cfg.clone()));
        });
        Ok(cfg)
    }

    /// Every problem, each with its path.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if r.model.is_empty() {
                problems.push(format!("rules[{i}].model: must not be empty"));
            }
            if r.target == Target::WorkersAi
                && !r.model.contains('*')
                && r.upstream_model.is_none()
                && !is_workers_ai_model(&r.model)
                && !self.workers_ai_models.contains_key(&r.model)
            {
                problems.push(format!(
                    "rules[{i}].model: \"{}\" routes to workers_ai but has no @cf/ model (set upstream_model or workers_ai_models)",
                    r.model
                ));
            }
        }
        for (name, m) in &self.workers_ai_models {
            if !is_workers_ai_model(m) {
                problems.push(format!(
                    "workers_ai_models.{name}: \"{m}\" is not a Workers AI model (@cf/… or @hf/…)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Compiles `policy` over `destinations`; every problem with its path.
    fn compile(&self) -> Result<Option<CompiledPolicy>, Vec<String>> {
        let Some(spec) = &self.policy else {
            return Ok(None);
        };
        let mut problems = Vec::new();
        let policy = Policy::compile(spec).map_err(|errs| {
            errs.into_iter()
                .map(|e| format!("policy.{e}"))
                .collect::<Vec<_>>()
        });
        if self.destinations.is_empty() {
            problems.push("destinations: a policy needs at least one destination".to_owned());
        }
        let mut names = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            if d.name.is_empty() || !names.insert(d.name.as_str()) {
                problems.push(format!("destinations[{i}].name: empty or duplicate"));
            }
        }
        let policy = match policy {
            Ok(p) => p,
            Err(mut e) => {
                e.append(&mut problems);
                return Err(e);
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let inputs = self
            .destinations
            .iter()
            .map(|d| {
                let placement = Placement {
                    cloud: d.cloud.clone(),
                    region: d.region.clone(),
                    context_window: d.context_window,
                    labels: d.labels.clone(),
                };
                DeploymentInput::new(
                    d.name.as_str(),
                    "",
                    d.target.as_str(),
                    d.target.as_str(),
                    d.upstream_model.clone().unwrap_or_default(),
                    &placement,
                    (d.price_input, d.price_output, 0.0),
                    1,
                    0,
                )
            })
            .collect();
        let tenants = self
            .tenants
            .iter()
            .map(|(id, t)| {
                let input = TenantInput::new(
                    id.as_str(),
                    t.residency.as_str(),
                    t.region.as_str(),
                    &t.attributes,
                );
                (id.clone(), Arc::new(input))
            })
            .collect();
        Ok(Some(CompiledPolicy {
            policy: Arc::new(policy),
            inputs,
            tenants: Arc::new(tenants),
        }))
    }

    /// Picks the target for a parsed request: by the Conductor policy when one is
    /// configured, else by the glob rules ([`Self::decide`]). `header` reads a request
    /// header; `now_ms` is the clock (Unix milliseconds).
    pub fn place(
        &self,
        req: &ParsedRequest,
        tenant: &str,
        header: &dyn Fn(&str) -> Option<String>,
        now_ms: u64,
    ) -> Result<Decision, EdgeError> {
        let Some(c) = &self.compiled else {
            return self.decide(&req.model, tenant);
        };
        let reads = c.policy.reads();
        let request =
            RequestInput {
                model: req.model.clone(),
                operation: "chat",
                tenant: c.tenants.get(tenant).cloned().unwrap_or_else(|| {
                    Arc::new(TenantInput::new(tenant, "", "", &BTreeMap::new()))
                }),
                key: String::new(),
                estimated_prompt_tokens: req.estimated_prompt_tokens(),
                max_tokens: req.max_tokens,
                stream: req.stream,
                tags: header("x-datamind-tags")
                    .map(|v| {
                        v.split(',')
                            .map(|t| t.trim().to_owned())
                            .filter(|t| !t.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                headers: Vec::new(),
                session: header("x-session-id").unwrap_or_default(),
                prefix: if reads.request_field("prefix") {
                    PrefixKey::of(req, datamind_llm::policy::prefix::DEFAULT_PREFIX_BYTES)
                } else {
                    PrefixKey::default()
                },
            };
        let now = Now::from_unix_ms(now_ms);
        let sel = c.policy.select(&request, &now);
        let rule = sel.rule_name.to_string();
        if let Some(d) = &sel.deny {
            return Err(EdgeError::PolicyDenied {
                rule,
                status: d.status,
                message: d.message.clone(),
            });
        }
        // No live statistics at the edge: every destination reads as healthy and idle.
        let idle = Stats {
            healthy: true,
            ..Stats::default()
        };
        let serving: Vec<usize> = self
            .destinations
            .iter()
            .enumerate()
            .filter(|(_, d)| d.models.is_empty() || d.models.iter().any(|g| glob(g, &req.model)))
            .map(|(i, _)| i)
            .collect();
        let candidates: Vec<Candidate<'_>> = serving
            .iter()
            .map(|i| Candidate {
                deployment: &c.inputs[*i],
                stats: idle,
                tier: 0,
            })
            .collect();
        let ranking = c.policy.rank(&sel, &request, &now, &candidates);
        let Some((first, _)) = ranking.order.first() else {
            return Err(if serving.is_empty() {
                EdgeError::ModelNotFound(req.model.clone())
            } else {
                EdgeError::NoPlacement(rule)
            });
        };
        let d = &self.destinations[serving[*first]];
        let upstream_model = match (d.target, &d.upstream_model) {
            (_, Some(m)) => m.clone(),
            (Target::WorkersAi, None) => match self.workers_ai_models.get(&req.model) {
                Some(m) => m.clone(),
                None if is_workers_ai_model(&req.model) => req.model.clone(),
                None => return Err(EdgeError::ModelNotFound(req.model.clone())),
            },
            (_, None) => req.model.clone(),
        };
        Ok(Decision {
            target: d.target,
            upstream_model,
            rule: None,
            policy_rule: Some(rule),
        })
    }

    /// Picks the target for `model` asked by `tenant`.
    pub fn decide(&self, model: &str, tenant: &str) -> Result<Decision, EdgeError> {
        let found = self.rules.iter().enumerate().find(|(_, r)| {
            glob(&r.model, model) && r.tenant.as_deref().is_none_or(|t| glob(t, tenant))
        });
        let (target, upstream, rule) = match found {
            Some((i, r)) => (r.target, r.upstream_model.clone(), Some(i)),
            None => match self.default {
                Some(t) => (t, None, None),
                None => return Err(EdgeError::ModelNotFound(model.to_owned())),
            },
        };
        let upstream_model = match (target, upstream) {
            (_, Some(m)) => m,
            (Target::WorkersAi, None) => match self.workers_ai_models.get(model) {
                Some(m) => m.clone(),
                None if is_workers_ai_model(model) => model.to_owned(),
                None => return Err(EdgeError::ModelNotFound(model.to_owned())),
            },
            (_, None) => model.to_owned(),
        };
        Ok(Decision {
            target,
            upstream_model,
            rule,
            policy_rule: None,
        })
    }

    /// Model names a client can ask for by name (wildcard rules are not listed).
    pub fn listed_models(&self) -> Vec<(String, Target)> {
        let mut out: BTreeMap<String, Target> = BTreeMap::new();
        for name in self.workers_ai_models.keys() {
            out.insert(name.clone(), Target::WorkersAi);
        }
        for r in self.rules.iter().filter(|r| !r.model.contains('*')) {
            out.entry(r.model.clone()).or_insert(r.target);
        }
        out.into_iter().collect()
    }
}

/// `*`-glob match (no other metacharacters).
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(p) => rest = &rest[p + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"rules":[
        {"model":"@cf/*","target":"workers_ai"},
        {"model":"llama-3.1-8b","target":"workers_ai"},
        {"model":"gpt-*","tenant":"acme","target":"cloud","upstream_model":"gpt-4o-mini"},
        {"model":"*","target":"core"}],
      "workers_ai_models":{"llama-3.1-8b":"@cf/meta/llama-3.1-8b-instruct"}}"#;

    #[test]
    fn first_matching_rule_decides() {
        let c = RoutingConfig::from_json(DOC).unwrap();
        let d = c.decide("llama-3.1-8b", "t").unwrap();
        assert_eq!(d.target, Target::WorkersAi);
        assert_eq!(d.upstream_model, "@cf/meta/llama-3.1-8b-instruct");
        assert_eq!(d.rule, Some(1));
        assert_eq!(c.decide("@cf/x/y", "t").unwrap().upstream_model, "@cf/x/y");
        let d = c.decide("gpt-4o", "acme").unwrap();
        assert_eq!(
            (d.target, d.upstream_model.as_str()),
            (Target::Cloud, "gpt-4o-mini")
        );
        let d = c.decide("gpt-4o", "other").unwrap();
        assert_eq!(
            (d.target, d.upstream_model.as_str()),
            (Target::Core, "gpt-4o")
        );
        assert!(c.fallback_to_core);
    }

    #[test]
    fn no_match_without_default_is_model_not_found() {
        let c = RoutingConfig::from_json(r#"{"rules":[{"model":"a","target":"core"}]}"#).unwrap();
        assert_eq!(
            c.decide("b", "t").unwrap_err(),
            EdgeError::ModelNotFound("b".into())
        );
        let d = RoutingConfig::default().decide("b", "t").unwrap();
        assert_eq!(d.target, Target::Core);
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let e = RoutingConfig::from_json(
            r#"{"rules":[{"model":"","target":"core"},{"model":"mistral","target":"workers_ai"}],
                "workers_ai_models":{"x":"gpt"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("rules[0].model"));
        assert!(e[1].starts_with("rules[1].model"));
        assert!(e[2].starts_with("workers_ai_models.x"));
        let e = RoutingConfig::from_json(r#"{"rules":[],"bogus":1}"#).unwrap_err();
        assert!(e[0].contains("bogus"));
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("gpt-*", "gpt-4o"));
        assert!(!glob("gpt-*", "xgpt-4o"));
        assert!(glob("*-mini", "gpt-4o-mini"));
        assert!(glob("a*b*c", "a1b2c"));
        assert!(!glob("a*b*c", "a1c2b"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact"));
    }

    #[test]
    fn listed_models_skip_wildcards() {
        let c = RoutingConfig::from_json(DOC).unwrap();
        let names: Vec<String> = c.listed_models().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["llama-3.1-8b"]);
    }

    /// The core gateway's example rules, as the edge runs them over its three routes.
    pub(crate) const POLICY_DOC: &str = r#"{
      "policy": {"rules": [
        {"name": "oversized-output", "when": "has(request.max_tokens) && request.max_tokens > 32768",
         "deny": {"status": 400, "message": "max_tokens above 32768 is not served"}},
        {"name": "eu-residency", "when": "request.tenant.residency == \"eu\"",
         "filter": "(deployment.cloud == \"azure\" && deployment.region == \"westeurope\") || deployment.cloud == \"onprem\"",
         "order": "deployment.cloud == \"azure\" ? 0 : 1"},
        {"name": "small-at-edge", "when": "request.model == \"chat-small\"",
         "order": "deployment.cloud == \"cloudflare\" ? 0 : 1"},
        {"name": "cheapest-fast", "when": "\"cost\" in request.tags",
         "filter": "deployment.healthy", "order": "deployment.price_input + deployment.price_output"},
        {"name": "core-first", "order": "deployment.provider == \"core\" ? 0 : 1"}]},
      "destinations": [
        {"name": "workers-ai", "target": "workers_ai", "models": ["chat-small"],
         "cloud": "cloudflare", "region": "edge", "upstream_model": "@cf/meta/llama-3.1-8b-instruct",
         "price_input": 0.03, "price_output": 0.2},
        {"name": "core", "target": "core", "cloud": "onprem", "price_input": 0.4, "price_output": 0.4},
        {"name": "cloud", "target": "cloud", "cloud": "azure", "region": "westeurope",
         "upstream_model": "gpt-4o-mini", "price_input": 0.15, "price_output": 0.6}],
      "tenants": {"eu-bank": {"residency": "eu", "region": "westeurope"}}}"#;

    fn parsed(body: &str) -> ParsedRequest {
        ParsedRequest::parse(bytes::Bytes::from(body.to_owned())).unwrap()
    }

    fn place(c: &RoutingConfig, body: &str, tags: &str) -> Result<Decision, EdgeError> {
        place_for(c, "acme", body, tags)
    }

    fn place_for(
        c: &RoutingConfig,
        tenant: &str,
        body: &str,
        tags: &str,
    ) -> Result<Decision, EdgeError> {
        let tags = tags.to_owned();
        c.place(
            &parsed(body),
            tenant,
            &move |h| (h == "x-datamind-tags" && !tags.is_empty()).then(|| tags.clone()),
            1_764_000_000_000,
        )
    }

    #[test]
    fn the_policy_places_requests_as_the_core_would() {
        let c = RoutingConfig::from_json(POLICY_DOC).unwrap();
        let small = place(&c, r#"{"model":"chat-small","messages":[]}"#, "").unwrap();
        assert_eq!(small.target, Target::WorkersAi);
        assert_eq!(small.upstream_model, "@cf/meta/llama-3.1-8b-instruct");
        assert_eq!(small.policy_rule.as_deref(), Some("small-at-edge"));
        let large = place(&c, r#"{"model":"chat-large","messages":[]}"#, "").unwrap();
        assert_eq!(
            (large.target, large.upstream_model.as_str()),
            (Target::Core, "chat-large")
        );
        assert_eq!(large.policy_rule.as_deref(), Some("core-first"));
        let cost = place(&c, r#"{"model":"chat-large","messages":[]}"#, "batch, cost").unwrap();
        assert_eq!(
            (cost.target, cost.upstream_model.as_str()),
            (Target::Cloud, "gpt-4o-mini")
        );
        // An EU-resident tenant never goes to Workers AI, not even for a small model.
        let eu = place_for(&c, "eu-bank", r#"{"model":"chat-small","messages":[]}"#, "").unwrap();
        assert_eq!(
            (eu.target, eu.policy_rule.as_deref()),
            (Target::Cloud, Some("eu-residency"))
        );
        let denied = place(&c, r#"{"model":"chat-small","max_tokens":65536}"#, "").unwrap_err();
        assert_eq!(denied.status(), 400);
        assert!(
            matches!(denied, EdgeError::PolicyDenied { ref rule, .. } if rule == "oversized-output")
        );
    }

    #[test]
    fn policy_errors_have_their_path_and_position() {
        let doc = r#"{"policy":{"rules":[{"name":"x","filter":"deployment.regoin == 'x'"}]},
                      "destinations":[{"name":"core","target":"core"}]}"#;
        let errs = RoutingConfig::from_json(doc).unwrap_err();
        assert!(
            errs.iter().any(|e| e
                .starts_with("policy.rules[0].filter: 1:11: `deployment` has no field `regoin`")),
            "{errs:?}"
        );
        let doc = r#"{"policy":{"rules":[{"name":"x","order":"1"}]}}"#;
        let errs = RoutingConfig::from_json(doc).unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with("destinations:")),
            "{errs:?}"
        );
    }
}
