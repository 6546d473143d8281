//! Validation of the identity parts of the config: tenants, key limits, budgets, expiries.

use std::collections::{BTreeMap, HashSet};

use super::{Problem, Problems};
use crate::auth::jwt::{asymmetric_algorithm, load_static_key};
use crate::config::{BaseUrl, BudgetConfig, Config, JwtConfig, LimitsConfig, parse_rfc3339};

/// The problems of a runtime key's `limits` and `budget` (the admin API's create request).
pub fn check_key_fields(
    limits: &LimitsConfig,
    budget: Option<&BudgetConfig>,
    groups: &HashSet<&str>,
) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    check_limits(&mut p, "limits", limits, groups);
    if let Some(b) = budget {
        check_budget(&mut p, "budget", b);
    }
    p.0
}

/// Checks `tenants[]` and the per-key `limits`, `budget` and `expires_at`.
pub(super) fn check(p: &mut Problems, c: &Config, groups: &HashSet<&str>) {
    let mut names = HashSet::new();
    for (i, t) in c.tenants.iter().enumerate() {
        let at = format!("tenants[{i}]");
        if t.name.is_empty() || !names.insert(t.name.as_str()) {
            p.add(
                format!("{at}.name"),
                format!("empty or duplicate tenant name \"{}\"", t.name),
            );
        }
        for (field, v) in [("residency", &t.residency), ("region", &t.region)] {
            if v.as_deref().is_some_and(str::is_empty) {
                p.add(format!("{at}.{field}"), "must not be empty when given");
            }
        }
        check_attributes(p, &format!("{at}.attributes"), &t.attributes);
        check_limits(p, &format!("{at}.limits"), &t.limits, groups);
        if let Some(b) = &t.budget {
            check_budget(p, &format!("{at}.budget"), b);
        }
    }
    for (i, k) in c.auth.keys.iter().enumerate() {
        let at = format!("auth.keys[{i}]");
        if k.tenant.is_empty() {
            p.add(format!("{at}.tenant"), "must not be empty");
        }
        check_limits(p, &format!("{at}.limits"), &k.limits, groups);
        if let Some(b) = &k.budget {
            check_budget(p, &format!("{at}.budget"), b);
        }
        if let Some(e) = &k.expires_at
            && parse_rfc3339(e).is_none()
        {
            p.add(
                format!("{at}.expires_at"),
                format!("\"{e}\" is not an RFC 3339 date-time (e.g. 2027-01-01T00:00:00Z)"),
            );
        }
        check_attributes(p, &format!("{at}.metadata"), &k.metadata);
    }
    if let Some(h) = &c.admin.api_key_sha256
        && !is_sha256_hex(h)
    {
        p.add(
            "admin.api_key_sha256",
            "must be 64 lower-case hex digits (datamind-gateway hash-key KEY)",
        );
    }
    check_jwt(p, &c.auth.jwt, groups);
}

fn is_sha256_hex(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_jwt(p: &mut Problems, jwt: &JwtConfig, groups: &HashSet<&str>) {
    if !(256..=65_536).contains(&jwt.max_token_bytes) {
        p.add("auth.jwt.max_token_bytes", "must be between 256 and 65536");
    }
    let mut seen = HashSet::new();
    for (i, iss) in jwt.issuers.iter().enumerate() {
        let at = format!("auth.jwt.issuers[{i}]");
        if iss.issuer.is_empty() || !seen.insert(iss.issuer.as_str()) {
            p.add(
                format!("{at}.issuer"),
                format!("empty or duplicate issuer \"{}\"", iss.issuer),
            );
        }
        if iss.algorithms.is_empty() {
            p.add(
                format!("{at}.algorithms"),
                "must name at least one algorithm",
            );
        }
        let mut families = Vec::new();
        for (j, a) in iss.algorithms.iter().enumerate() {
            match asymmetric_algorithm(a) {
                Some(alg) => {
                    families.push(alg.family());
                }
                None => p.add(
                    format!("{at}.algorithms[{j}]"),
                    format!(
                        "\"{a}\" is not accepted: use RS256, RS384, RS512, PS256, PS384, PS512, \
                         ES256, ES384 or EdDSA (symmetric HS* and none are refused)"
                    ),
                ),
            }
        }
        match &iss.jwks_url {
            Some(u) => {
                if let Err(e) = BaseUrl::parse(u.split_once('?').map_or(u.as_str(), |(b, _)| b)) {
                    p.add(format!("{at}.jwks_url"), e);
                }
            }
            None if iss.keys.is_empty() => {
                p.add(at.clone(), "needs jwks_url, keys, or both");
            }
            None => {}
        }
        for (j, k) in iss.keys.iter().enumerate() {
            match load_static_key(k) {
                Ok(key) if !families.contains(&key.key.family()) => p.add(
                    format!("{at}.keys[{j}]"),
                    "the key's type fits none of the issuer's algorithms",
                ),
                Ok(_) => {}
                Err(e) => p.add(format!("{at}.keys[{j}]"), e),
            }
        }
        for (field, v) in [
            ("jwks_cache_seconds", iss.jwks_cache_seconds),
            ("jwks_min_refresh_seconds", iss.jwks_min_refresh_seconds),
            ("jwks_timeout_ms", iss.jwks_timeout_ms),
        ] {
            if v == 0 {
                p.add(format!("{at}.{field}"), "must be at least 1");
            }
        }
        for (field, v) in [
            ("tenant", &iss.claims.tenant),
            ("models", &iss.claims.models),
            ("limits", &iss.claims.limits),
        ] {
            if v.is_empty() {
                p.add(format!("{at}.claims.{field}"), "must not be empty");
            }
        }
        if iss.default_tenant.as_deref() == Some("") {
            p.add(
                format!("{at}.default_tenant"),
                "must not be empty when given",
            );
        }
        for (j, m) in iss.default_models.iter().enumerate() {
            if m != "*" && !groups.contains(m.as_str()) {
                p.add(
                    format!("{at}.default_models[{j}]"),
                    format!("unknown model \"{m}\""),
                );
            }
        }
    }
}

/// Non-zero limits; per-model limits only for models that exist.
fn check_limits(p: &mut Problems, at: &str, l: &LimitsConfig, groups: &HashSet<&str>) {
    for (field, v) in [
        ("rpm", l.rpm),
        ("tpm", l.tpm),
        ("max_concurrent", l.max_concurrent),
    ] {
        if v == Some(0) {
            p.add(
                format!("{at}.{field}"),
                "must be at least 1 (omit it for no limit)",
            );
        }
    }
    for (model, m) in &l.models {
        let mat = format!("{at}.models.{model}");
        if !groups.contains(model.as_str()) {
            p.add(mat.clone(), format!("unknown model \"{model}\""));
        }
        for (field, v) in [
            ("rpm", m.rpm),
            ("tpm", m.tpm),
            ("max_concurrent", m.max_concurrent),
        ] {
            if v == Some(0) {
                p.add(
                    format!("{mat}.{field}"),
                    "must be at least 1 (omit it for no limit)",
                );
            }
        }
    }
}

/// Positive, finite amounts; soft ≤ hard; at least one threshold.
fn check_budget(p: &mut Problems, at: &str, b: &BudgetConfig) {
    for (field, v) in [("hard_usd", b.hard_usd), ("soft_usd", b.soft_usd)] {
        if let Some(v) = v
            && (!v.is_finite() || v <= 0.0)
        {
            p.add(format!("{at}.{field}"), "must be a positive amount");
        }
    }
    match (b.soft_usd, b.hard_usd) {
        (None, None) => p.add(at, "needs hard_usd, soft_usd or both"),
        (Some(s), Some(h)) if s > h => p.add(format!("{at}.soft_usd"), "must not exceed hard_usd"),
        _ => {}
    }
}

fn check_attributes(p: &mut Problems, at: &str, m: &BTreeMap<String, String>) {
    for k in m.keys() {
        if k.is_empty() {
            p.add(at, "attribute names must not be empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BudgetPeriod, parse_str};

    const BASE: &str = "server: { listen: '127.0.0.1:1', admin_listen: '127.0.0.1:2' }\n\
        providers: [ { name: m, kind: mock } ]\n\
        models: [ { name: g, deployments: [ { provider: m, model: x } ] } ]\n";

    #[test]
    fn tenants_limits_budgets_and_expiries_parse() {
        let yaml = format!(
            "{BASE}tenants:\n  - name: eu-bank\n    residency: eu\n    region: westeurope\n    \
             attributes: {{ tier: gold }}\n    limits: {{ rpm: 100, models: {{ g: {{ tpm: 5000 }} }} }}\n    \
             budget: {{ period: month, hard_usd: 100, soft_usd: 80 }}\n\
             auth:\n  keys:\n    - name: k\n      sha256: '{}'\n      tenant: eu-bank\n      \
             limits: {{ max_concurrent: 4 }}\n      budget: {{ period: day, hard_usd: 5 }}\n      \
             expires_at: '2030-01-01T00:00:00Z'\n      metadata: {{ owner: alice }}\n",
            "a".repeat(64)
        );
        let c = parse_str(&yaml, &|_| None).unwrap();
        let t = &c.tenants[0];
        assert_eq!(t.residency.as_deref(), Some("eu"));
        assert_eq!(t.limits.models["g"].tpm, Some(5000));
        assert_eq!(t.budget.map(|b| b.period), Some(BudgetPeriod::Month));
        let k = &c.auth.keys[0];
        assert_eq!(k.limits.max_concurrent, Some(4));
        assert_eq!(k.budget.and_then(|b| b.hard_usd), Some(5.0));
        assert_eq!(k.metadata["owner"], "alice");
    }

    #[test]
    fn reports_identity_problems_with_their_paths() {
        let yaml = format!(
            "{BASE}tenants:\n  - {{ name: a, residency: '', limits: {{ rpm: 0, models: {{ ghost: {{ rpm: 1 }}, g: {{ tpm: 0 }} }} }} }}\n  \
             - {{ name: a, budget: {{ period: day, hard_usd: 1, soft_usd: 2 }} }}\n  \
             - {{ name: b, budget: {{ period: month }} }}\n\
             auth:\n  keys:\n    - {{ name: k, sha256: '{}', tenant: '', expires_at: tomorrow, \
             budget: {{ period: day, hard_usd: -1 }} }}\n",
            "a".repeat(64)
        );
        let err = parse_str(&yaml, &|_| None).unwrap_err().to_string();
        for needle in [
            "tenants[0].residency: must not be empty",
            "tenants[0].limits.rpm: must be at least 1",
            "tenants[0].limits.models.ghost: unknown model \"ghost\"",
            "tenants[0].limits.models.g.tpm: must be at least 1",
            "tenants[1].name: empty or duplicate tenant name \"a\"",
            "tenants[1].budget.soft_usd: must not exceed hard_usd",
            "tenants[2].budget: needs hard_usd, soft_usd or both",
            "auth.keys[0].tenant: must not be empty",
            "auth.keys[0].expires_at: \"tomorrow\" is not an RFC 3339 date-time",
            "auth.keys[0].budget.hard_usd: must be a positive amount",
        ] {
            assert!(err.contains(needle), "missing {needle} in:\n{err}");
        }
        let bad_period =
            format!("{BASE}tenants: [ {{ name: a, budget: {{ period: week, hard_usd: 1 }} }} ]\n");
        assert!(parse_str(&bad_period, &|_| None).is_err());
    }

    #[test]
    fn reports_jwt_and_admin_problems_with_their_paths() {
        let jwt = format!(
            "{BASE}admin: {{ api_key_sha256: NOPE }}\n\
             auth:\n  jwt:\n    max_token_bytes: 10\n    issuers:\n      \
             - {{ issuer: a, algorithms: [HS256, none, RS256], jwks_url: 'ftp://x', default_models: [ghost] }}\n      \
             - {{ issuer: a, algorithms: [], jwks_min_refresh_seconds: 0 }}\n      \
             - {{ issuer: c, algorithms: [ES256], keys: [ {{ pem: 'not a key' }}, {{ pem: x, pem_file: y }} ] }}\n"
        );
        let err = parse_str(&jwt, &|_| None).unwrap_err().to_string();
        for needle in [
            "admin.api_key_sha256: must be 64 lower-case hex digits",
            "auth.jwt.max_token_bytes: must be between 256 and 65536",
            "auth.jwt.issuers[0].algorithms[0]: \"HS256\" is not accepted",
            "auth.jwt.issuers[0].algorithms[1]: \"none\" is not accepted",
            "auth.jwt.issuers[0].jwks_url:",
            "auth.jwt.issuers[0].default_models[0]: unknown model \"ghost\"",
            "auth.jwt.issuers[1].issuer: empty or duplicate issuer \"a\"",
            "auth.jwt.issuers[1].algorithms: must name at least one algorithm",
            "auth.jwt.issuers[1]: needs jwks_url, keys, or both",
            "auth.jwt.issuers[1].jwks_min_refresh_seconds: must be at least 1",
            "auth.jwt.issuers[2].keys[0]: not an RSA, EC or Ed25519 public key in PEM",
            "auth.jwt.issuers[2].keys[1]: give exactly one of pem and pem_file",
        ] {
            assert!(err.contains(needle), "missing {needle} in:\n{err}");
        }
    }
}
