//! The `policy` section: Conductor's placement rules (compiled by `datamind_llm::policy`).

use datamind_llm::policy::{PolicySpec, RuleSpec};
use serde::Deserialize;

/// Placement rules, the request headers they may read, and an optional shadow policy.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Ordered rules; the first matching placement rule decides. Empty: the groups'
    /// strategies alone decide (no CEL is evaluated).
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Request headers exposed as `request.headers` (lower-case names).
    #[serde(default)]
    pub headers: Vec<String>,
    /// A candidate policy evaluated beside the active one on every request; disagreements
    /// are counted and logged, traffic is not affected.
    #[serde(default)]
    pub shadow: Option<PolicySpec>,
}

impl PolicyConfig {
    /// The active rules as a spec.
    pub fn spec(&self) -> PolicySpec {
        PolicySpec {
            rules: self.rules.clone(),
        }
    }

    /// Whether any rule is configured.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }
}
