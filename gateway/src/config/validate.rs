//! `Config::validate`: every problem, each with the path of the field at fault.

use std::collections::HashSet;
use std::net::SocketAddr;

use datamind_llm::ProviderKind;
use datamind_llm::providers::gemini::vertex_auth::ServiceAccount;

use super::{BaseUrl, Config};

mod conductor;
mod identity;
mod limits;

pub use identity::check_key_fields;

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, e.g. `models[2].deployments[0].provider`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Checks everything serde cannot: references, ranges, formats, files. An empty list
    /// means the config can be served.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems(Vec::new());
        let s = &self.server;
        for (path, addr) in [
            ("server.listen", &s.listen),
            ("server.admin_listen", &s.admin_listen),
        ] {
            if addr.parse::<SocketAddr>().is_err() {
                p.add(path, format!("\"{addr}\" is not an IP:port address"));
            }
        }
        if s.listen == s.admin_listen {
            p.add("server.admin_listen", "must differ from server.listen");
        }
        if let Some(tls) = &s.tls {
            for (path, file) in [
                ("server.tls.cert_file", &tls.cert_file),
                ("server.tls.key_file", &tls.key_file),
            ] {
                if !std::path::Path::new(file).is_file() {
                    p.add(path, format!("file \"{file}\" does not exist"));
                }
            }
        }
        if s.threads == 0 {
            p.add("server.threads", "must be at least 1");
        }
        if s.pin_threads == Some(true) && s.work_stealing == Some(true) {
            p.add(
                "server.pin_threads",
                "needs one runtime per thread: set server.work_stealing to false or leave it unset",
            );
        }
        if s.max_body_bytes < 1024 {
            p.add("server.max_body_bytes", "must be at least 1024");
        }
        check_timeouts(&mut p, "timeouts", &self.timeouts);
        if self.cooldown.failures == 0 {
            p.add("cooldown.failures", "must be at least 1");
        }
        self.cache
            .check(self.redis.is_some(), &mut |path, msg| p.add(path, msg));

        let groups: HashSet<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        if self.auth.enabled
            && self.auth.keys.is_empty()
            && self.auth.jwt.issuers.is_empty()
            && self.admin.api_key_sha256.is_none()
        {
            p.add(
                "auth.keys",
                "no keys, JWT issuers or admin API while auth.enabled is true: no caller could authenticate",
            );
        }
        for (i, k) in self.auth.keys.iter().enumerate() {
            let at = format!("auth.keys[{i}]");
            if !names.insert(k.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!("duplicate key name \"{}\"", k.name),
                );
            }
            if k.sha256.len() != 64
                || !k
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                p.add(
                    format!("{at}.sha256"),
                    "must be 64 lower-case hex digits (datamind-gateway hash-key KEY)",
                );
            } else if !hashes.insert(k.sha256.as_str()) {
                p.add(format!("{at}.sha256"), "the same key is configured twice");
            }
            for (j, m) in k.models.iter().enumerate() {
                if m != "*" && !groups.contains(m.as_str()) {
                    p.add(
                        format!("{at}.models[{j}]"),
                        format!("unknown model \"{m}\""),
                    );
                }
            }
        }
        identity::check(&mut p, self, &groups);

        let mut providers = HashSet::new();
        for (i, pr) in self.providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            if pr.name.is_empty() || !providers.insert(pr.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!("empty or duplicate provider name \"{}\"", pr.name),
                );
            }
            match (pr.kind, &pr.base_url) {
                (ProviderKind::Mock, Some(_)) => {
                    p.add(format!("{at}.base_url"), "not used by kind `mock`")
                }
                (ProviderKind::Mock, None) => {}
                (_, None) => p.add(format!("{at}.base_url"), "required for this kind"),
                (_, Some(u)) => {
                    if let Err(e) = BaseUrl::parse(u) {
                        p.add(format!("{at}.base_url"), e);
                    }
                }
            }
            if pr.kind == ProviderKind::Bedrock {
                for (field, v) in [
                    ("region", &pr.region),
                    ("aws_access_key_id", &pr.aws_access_key_id),
                    ("aws_secret_access_key", &pr.aws_secret_access_key),
                ] {
                    if v.as_deref().is_none_or(str::is_empty) {
                        p.add(
                            format!("{at}.{field}"),
                            "required for kind `bedrock` (or the AWS_* environment variables)",
                        );
                    }
                }
            }
            if matches!(pr.kind, ProviderKind::Anthropic | ProviderKind::Gemini)
                && pr.api_key.is_none()
                && pr.bearer_token.is_none()
            {
                p.add(
                    format!("{at}.api_key"),
                    "required for this kind (or bearer_token)",
                );
            }
            if pr.kind == ProviderKind::Vertex
                && pr.bearer_token.is_none()
                && pr.service_account_file.is_none()
            {
                p.add(
                    format!("{at}.service_account_file"),
                    "kind `vertex` needs a service_account_file (or a bearer_token)",
                );
            }
            if let Some(f) = &pr.service_account_file {
                match std::fs::read(f) {
                    Err(e) => p.add(
                        format!("{at}.service_account_file"),
                        format!("cannot read \"{f}\": {e}"),
                    ),
                    Ok(bytes) => {
                        if let Err(e) = ServiceAccount::parse(&bytes) {
                            p.add(
                                format!("{at}.service_account_file"),
                                format!("\"{f}\": {e}"),
                            );
                        }
                    }
                }
            }
            for name in pr.headers.keys() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    p.add(format!("{at}.headers.{name}"), "not a valid header name");
                }
            }
            if let Some(t) = &pr.timeouts {
                check_timeouts(&mut p, &format!("{at}.timeouts"), t);
            }
        }

        let mut seen_groups = HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("models[{i}]");
            if m.name.is_empty() || !seen_groups.insert(m.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!("empty or duplicate model name \"{}\"", m.name),
                );
            }
            if m.deployments.is_empty() {
                p.add(
                    format!("{at}.deployments"),
                    "at least one deployment is required",
                );
            }
            for (j, d) in m.deployments.iter().enumerate() {
                let dat = format!("{at}.deployments[{j}]");
                if !providers.contains(d.provider.as_str()) {
                    p.add(
                        format!("{dat}.provider"),
                        format!("unknown provider \"{}\"", d.provider),
                    );
                }
                if d.model.is_empty() {
                    p.add(format!("{dat}.model"), "must not be empty");
                }
                if d.weight == 0 {
                    p.add(format!("{dat}.weight"), "must be at least 1");
                }
                if d.max_in_flight == Some(0) {
                    p.add(format!("{dat}.max_in_flight"), "must be at least 1");
                }
            }
            for (j, f) in m.fallbacks.iter().enumerate() {
                if f == &m.name {
                    p.add(
                        format!("{at}.fallbacks[{j}]"),
                        "a model cannot fall back to itself",
                    );
                } else if !groups.contains(f.as_str()) {
                    p.add(
                        format!("{at}.fallbacks[{j}]"),
                        format!("unknown model \"{f}\""),
                    );
                }
            }
        }
        limits::check(self, &mut p);
        conductor::check(self, &mut p);
        p.0.extend(self.telemetry.problems());
        p.0
    }
}

fn check_timeouts(p: &mut Problems, at: &str, t: &super::Timeouts) {
    for (name, v) in [
        ("connect_ms", t.connect_ms),
        ("first_byte_ms", t.first_byte_ms),
        ("total_ms", t.total_ms),
    ] {
        if v == 0 {
            p.add(format!("{at}.{name}"), "must be greater than 0");
        }
    }
    if t.first_byte_ms > t.total_ms {
        p.add(format!("{at}.first_byte_ms"), "must not exceed total_ms");
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    #[test]
    fn reports_every_problem_with_its_path() {
        let yaml = r#"
server: { listen: "127.0.0.1:1", admin_listen: "nope", work_stealing: true, pin_threads: true }
cooldown: { failures: 0 }
cache: { ttl_seconds: 0, max_entry_bytes: 4096, max_total_bytes: 2048, store: redis }
auth: { keys: [ { name: a, sha256: "XYZ", models: [ghost] } ] }
providers:
  - { name: up, kind: openai }
  - { name: m, kind: mock, base_url: "http://x" }
models:
  - name: g
    deployments: [ { provider: azur, model: x, weight: 0 } ]
    fallbacks: [g, other]
"#;
        let err = parse_str(yaml, &|_| None).unwrap_err().to_string();
        for needle in [
            "server.admin_listen: \"nope\" is not an IP:port address",
            "server.pin_threads: needs one runtime per thread",
            "cooldown.failures: must be at least 1",
            "cache.ttl_seconds: must be at least 1",
            "cache.max_total_bytes: must be at least cache.max_entry_bytes",
            "cache.store: `redis` needs a top-level `redis:` block",
            "auth.keys[0].sha256: must be 64",
            "auth.keys[0].models[0]: unknown model \"ghost\"",
            "providers[0].base_url: required for this kind",
            "providers[1].base_url: not used by kind `mock`",
            "models[0].deployments[0].provider: unknown provider \"azur\"",
            "models[0].deployments[0].weight: must be at least 1",
            "models[0].fallbacks[0]: a model cannot fall back to itself",
            "models[0].fallbacks[1]: unknown model \"other\"",
        ] {
            assert!(err.contains(needle), "missing {needle} in:\n{err}");
        }
    }
}
