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
//! When the Conductor's CEL engine lands in `gateway/llm`, [`RoutingConfig::decide`] is
//! the seam where the same compiled rules would run.

use std::collections::BTreeMap;

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
}

impl Default for RoutingConfig {
    /// Everything to the core gateway.
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: Some(Target::Core),
            workers_ai_models: BTreeMap::new(),
            fallback_to_core: true,
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
}

fn is_workers_ai_model(m: &str) -> bool {
    m.starts_with("@cf/") || m.starts_with("@hf/")
}

impl RoutingConfig {
    /// Parses and validates a JSON routing document.
    pub fn from_json(text: &str) -> Result<Self, Vec<String>> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| vec![format!("routes: {e}")])?;
        cfg.validate()?;
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
}
