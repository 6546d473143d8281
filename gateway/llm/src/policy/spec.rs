//! Placement rules as written in a config file (YAML or JSON), before compiling.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An ordered list of rules: the first matching placement rule decides.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One rule. `when` selects requests; the other fields say what happens to them.
///
/// A rule with only `tags` (no `deny`, `filter`, `order`, `fallbacks` or `affinity`) adds its
/// tags and lets the next rules be considered; any other matching rule is the placement rule
/// and ends the search.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name: in headers, logs, metrics and the explain endpoint.
    pub name: String,
    /// What the rule is for (shown by the explain endpoint).
    #[serde(default)]
    pub description: Option<String>,
    /// CEL over `request` and `now`, true when the rule applies (absent: always).
    #[serde(default)]
    pub when: Option<String>,
    /// `when` read from a `.cel` file instead (path relative to the config file).
    #[serde(default)]
    pub when_file: Option<String>,
    /// Refuse matching requests.
    #[serde(default)]
    pub deny: Option<DenySpec>,
    /// CEL over `request`, `deployment` and `now`: keep a candidate when true.
    #[serde(default)]
    pub filter: Option<String>,
    /// `filter` read from a `.cel` file instead (path relative to the config file).
    #[serde(default)]
    pub filter_file: Option<String>,
    /// CEL over `request`, `deployment` and `now` giving a number: candidates are tried in
    /// ascending order of it (within the requested group, then within each fallback group).
    #[serde(default)]
    pub order: Option<String>,
    /// `order` read from a `.cel` file instead (path relative to the config file).
    #[serde(default)]
    pub order_file: Option<String>,
    /// Model groups tried after the requested one, replacing its `fallbacks`.
    #[serde(default)]
    pub fallbacks: Option<Vec<String>>,
    /// Prefix/session affinity for self-hosted pools (see [`AffinitySpec`]).
    #[serde(default)]
    pub affinity: Option<AffinitySpec>,
    /// Tags added to the request (logs, span attributes, the explain endpoint).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The text of the `*_file` expressions, filled by [`PolicySpec::read_files`].
    #[serde(skip)]
    pub file_sources: FileSources,
}

/// The expressions a rule reads from files, once read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSources {
    /// The text of `when_file`.
    pub when: Option<String>,
    /// The text of `filter_file`.
    pub filter: Option<String>,
    /// The text of `order_file`.
    pub order: Option<String>,
}

impl PolicySpec {
    /// Reads every rule's `*_file` expression with `read` (given the path as written; the
    /// caller resolves it, e.g. against the config file's directory). Returns the files that
    /// could not be read, with their path (`rules[2].filter_file`). Reading again replaces
    /// what was read before, so a reload sees edited files.
    pub fn read_files(
        &mut self,
        read: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Vec<crate::LlmError> {
        let mut errors = Vec::new();
        for (i, r) in self.rules.iter_mut().enumerate() {
            let fields = [
                ("when_file", &r.when_file, &mut r.file_sources.when),
                ("filter_file", &r.filter_file, &mut r.file_sources.filter),
                ("order_file", &r.order_file, &mut r.file_sources.order),
            ];
            for (field, path, text) in fields {
                *text = None;
                let Some(path) = path else { continue };
                match read(path) {
                    Ok(t) => *text = Some(t),
                    Err(message) => errors.push(crate::LlmError::InvalidPolicy {
                        path: format!("rules[{i}].{field}"),
                        message: format!("{path}: {message}"),
                    }),
                }
            }
        }
        errors
    }

    /// The files the rules read expressions from, as written.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| {
            [&r.when_file, &r.filter_file, &r.order_file]
                .into_iter()
                .flatten()
                .map(String::as_str)
        })
    }
}

/// A refusal.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenySpec {
    /// Shown to the client.
    pub message: String,
    /// HTTP status, 400–599.
    #[serde(default = "forbidden")]
    pub status: u16,
}

fn forbidden() -> u16 {
    403
}

/// Route requests sharing a key (a session id, a prompt prefix) to the same replica with
/// bounded-load consistent hashing, so the replica's prefix cache hits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AffinitySpec {
    /// CEL over `request` and `now` giving the key (a string); an empty key disables
    /// affinity for the request.
    pub key: String,
    /// A replica takes a request while its in-flight count stays within
    /// `load_factor × (average in flight + 1)`; otherwise the next replica on the ring does.
    #[serde(default = "default_load_factor")]
    pub load_factor: f64,
}

fn default_load_factor() -> f64 {
    1.25
}
