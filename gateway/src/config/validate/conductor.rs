//! Validation of Conductor's parts of the config: placement metadata and the policy.

use std::collections::HashSet;

use datamind_llm::LlmError;
use datamind_llm::policy::{Policy, PolicySpec};

use super::Problems;
use crate::config::Config;

/// Checks `policy.*` (every rule compiles, names only known variables and fields, falls back
/// to known groups) and the placement fields of providers and deployments.
pub(super) fn check(c: &Config, p: &mut Problems) {
    let groups: HashSet<&str> = c.models.iter().map(|m| m.name.as_str()).collect();
    check_spec(p, "policy", &c.policy.spec(), &groups);
    if let Some(shadow) = &c.policy.shadow {
        check_spec(p, "policy.shadow", shadow, &groups);
    }
    if c.policy.prefix_bytes == 0 {
        p.add("policy.prefix_bytes", "must be at least 1");
    }
    for (i, h) in c.policy.headers.iter().enumerate() {
        if http::HeaderName::from_bytes(h.as_bytes()).is_err() || h.to_ascii_lowercase() != *h {
            p.add(
                format!("policy.headers[{i}]"),
                "must be a lower-case header name",
            );
        }
    }
    for (i, pr) in c.providers.iter().enumerate() {
        if pr.cloud.as_deref() == Some("") {
            p.add(format!("providers[{i}].cloud"), "must not be empty");
        }
    }
    for (i, m) in c.models.iter().enumerate() {
        for (j, d) in m.deployments.iter().enumerate() {
            let at = format!("models[{i}].deployments[{j}]");
            if d.context_window == Some(0) {
                p.add(format!("{at}.context_window"), "must be at least 1");
            }
            for (field, v) in [("cloud", &d.cloud), ("region", &d.region)] {
                if v.as_deref() == Some("") {
                    p.add(format!("{at}.{field}"), "must not be empty");
                }
            }
        }
    }
}

fn check_spec(p: &mut Problems, at: &str, spec: &PolicySpec, groups: &HashSet<&str>) {
    if let Err(errors) = Policy::compile(spec) {
        for e in errors {
            match e {
                LlmError::InvalidPolicy { path, message } => p.add(format!("{at}.{path}"), message),
                other => p.add(at, other.to_string()),
            }
        }
    }
    for (i, r) in spec.rules.iter().enumerate() {
        for (j, f) in r.fallbacks.iter().flatten().enumerate() {
            if !groups.contains(f.as_str()) {
                p.add(
                    format!("{at}.rules[{i}].fallbacks[{j}]"),
                    format!("unknown model \"{f}\""),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    #[test]
    fn policy_problems_have_their_path_and_position() {
        let yaml = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
providers: [ { name: m, kind: mock, cloud: "" } ]
models:
  - name: g
    deployments: [ { provider: m, model: x, context_window: 0 } ]
policy:
  headers: [X-Priority]
  prefix_bytes: 0
  rules:
    - name: eu
      when: request.tenant.residency == "eu"
      filter: deployment.regoin == "westeurope"
      fallbacks: [ghost]
  shadow:
    rules:
      - { name: s, order: "deployment.price_input +" }
"#;
        let err = parse_str(yaml, &|_| None).unwrap_err().to_string();
        for needle in [
            "policy.rules[0].filter: 1:11: `deployment` has no field `regoin`",
            "policy.rules[0].fallbacks[0]: unknown model \"ghost\"",
            "policy.shadow.rules[0].order: 1:",
            "policy.headers[0]: must be a lower-case header name",
            "policy.prefix_bytes: must be at least 1",
            "providers[0].cloud: must not be empty",
            "models[0].deployments[0].context_window: must be at least 1",
        ] {
            assert!(err.contains(needle), "missing {needle} in:\n{err}");
        }
    }

    /// Expressions in `.cel` files: compile errors carry the file, line and column inside
    /// it; a missing file is a config error; both `filter` and `filter_file` is refused.
    #[test]
    fn policy_files_report_their_path_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        std::fs::write(
            dir.path().join("policies/eu.cel"),
            "// EU only\ndeployment.cloud == \"azure\"\n  && deployment.regoin == \"westeurope\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("policies/when.cel"), "request.model == 'x'").unwrap();
        let base = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
providers: [ { name: m, kind: mock } ]
models: [ { name: g, deployments: [ { provider: m, model: x } ] } ]
policy:
  rules:
"#;
        let parse = |rules: &str| {
            crate::config::parse_str_at(&format!("{base}{rules}"), &|_| None, dir.path())
        };
        let err = parse(
            "    - { name: eu, when_file: policies/when.cel, filter_file: policies/eu.cel }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "policy.rules[0].filter_file: policies/eu.cel:3:16: `deployment` has no field `regoin`"
            ),
            "{err}"
        );
        let err = parse("    - { name: a, filter_file: policies/nope.cel }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("policy.rules[0].filter_file: policies/nope.cel: "),
            "{err}"
        );
        let err =
            parse("    - { name: a, when: 'true', when_file: policies/when.cel, order: '1' }\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("policy.rules[0].when: give either `when` or `when_file`"),
            "{err}"
        );
        std::fs::write(
            dir.path().join("policies/eu.cel"),
            "deployment.cloud == \"azure\"",
        )
        .unwrap();
        let ok = parse(
            "    - { name: eu, when_file: policies/when.cel, filter_file: policies/eu.cel }\n",
        )
        .unwrap();
        let rule = &ok.policy.rules[0];
        assert_eq!(
            rule.file_sources.filter.as_deref(),
            Some("deployment.cloud == \"azure\"")
        );
        assert_eq!(ok.policy.files(), ["policies/when.cel", "policies/eu.cel"]);
    }
}
