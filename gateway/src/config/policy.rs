//! The `policy` section: Conductor's placement rules (compiled by `datamind_llm::policy`).

use std::path::Path;

use datamind_llm::policy::{PolicySpec, RuleSpec};
use serde::Deserialize;

/// Placement rules, the request headers they may read, and an optional shadow policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// How many bytes of the prompt's opening `request.prefix` hashes (see
    /// `datamind_llm::policy::prefix`).
    #[serde(default = "default_prefix_bytes")]
    pub prefix_bytes: usize,
}

fn default_prefix_bytes() -> usize {
    datamind_llm::policy::prefix::DEFAULT_PREFIX_BYTES
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            headers: Vec::new(),
            shadow: None,
            prefix_bytes: default_prefix_bytes(),
        }
    }
}

impl PolicyConfig {
    /// The active rules as a spec.
    pub fn spec(&self) -> PolicySpec {
        PolicySpec {
            rules: self.rules.clone(),
        }
    }

    /// Reads the rules' `*_file` expressions (active and shadow) relative to `dir`; returns
    /// what could not be read, with its path (`policy.rules[1].filter_file: …`).
    pub fn read_files(&mut self, dir: &Path) -> Vec<String> {
        let mut read =
            |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string());
        let mut active = PolicySpec {
            rules: std::mem::take(&mut self.rules),
        };
        let mut out: Vec<String> = active
            .read_files(&mut read)
            .into_iter()
            .map(|e| format!("policy.{e}"))
            .collect();
        self.rules = active.rules;
        if let Some(shadow) = &mut self.shadow {
            out.extend(
                shadow
                    .read_files(&mut read)
                    .into_iter()
                    .map(|e| format!("policy.shadow.{e}")),
            );
        }
        out
    }

    /// Every policy file referenced (active and shadow), relative to the config file.
    pub fn files(&self) -> Vec<String> {
        let active = self.rules.iter().flat_map(|r| {
            [&r.when_file, &r.filter_file, &r.order_file]
                .into_iter()
                .flatten()
        });
        let shadow = self.shadow.iter().flat_map(|s| s.files());
        active
            .map(String::as_str)
            .chain(shadow)
            .map(str::to_owned)
            .collect()
    }

    /// Whether any rule is configured.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }
}
