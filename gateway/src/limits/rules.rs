//! Which limits apply to one request: the caller's key, its tenant, and both per model.

use crate::auth::Caller;
use crate::config::{LimitsConfig, ModelLimitsConfig};

/// Whose budget of requests/tokens a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One API key (or JWT subject).
    Key,
    /// All keys of a tenant.
    Tenant,
    /// One key on one client-facing model.
    KeyModel,
    /// All keys of a tenant on one client-facing model.
    TenantModel,
}

impl Scope {
    /// Label value and error wording.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Tenant => "tenant",
            Self::KeyModel => "key_model",
            Self::TenantModel => "tenant_model",
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Requests per minute.
    Requests,
    /// Tokens (prompt + completion) per minute, admitted by reservation.
    Tokens,
    /// Requests in flight.
    Concurrent,
}

impl Dimension {
    /// Label value and error wording.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Concurrent => "concurrent",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Requests => "rpm",
            Self::Tokens => "tpm",
            Self::Concurrent => "conc",
        }
    }
}

/// One limit on one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Whose counter.
    pub scope: Scope,
    /// What it counts.
    pub dim: Dimension,
    /// The configured limit (before any per-replica division).
    pub limit: u64,
    /// The counter's name under the tenant's hash tag, e.g. `k:team-a-ci:m:gpt-4o:tpm`.
    /// Holds the key's non-secret id, never the key.
    pub id: String,
}

/// Whether `caller` has any rate limit at all (the hot path skips the limiter otherwise).
pub fn any(caller: &Caller) -> bool {
    !is_empty(&caller.limits) || !is_empty(&caller.tenant_info.limits)
}

fn is_empty(l: &LimitsConfig) -> bool {
    l.rpm.is_none() && l.tpm.is_none() && l.max_concurrent.is_none() && l.models.is_empty()
}

/// The limits that apply to `caller` using client-facing `model`.
pub fn collect(caller: &Caller, model: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    let key = format!("k:{}", caller.key_id);
    push(&mut rules, Scope::Key, &key, &flat(&caller.limits));
    push(
        &mut rules,
        Scope::Tenant,
        "t",
        &flat(&caller.tenant_info.limits),
    );
    if let Some(m) = caller.limits.models.get(model) {
        push(&mut rules, Scope::KeyModel, &format!("{key}:m:{model}"), m);
    }
    if let Some(m) = caller.tenant_info.limits.models.get(model) {
        push(&mut rules, Scope::TenantModel, &format!("t:m:{model}"), m);
    }
    rules
}

fn flat(l: &LimitsConfig) -> ModelLimitsConfig {
    ModelLimitsConfig {
        rpm: l.rpm,
        tpm: l.tpm,
        max_concurrent: l.max_concurrent,
    }
}

fn push(rules: &mut Vec<Rule>, scope: Scope, base: &str, l: &ModelLimitsConfig) {
    for (dim, limit) in [
        (Dimension::Requests, l.rpm),
        (Dimension::Tokens, l.tpm),
        (Dimension::Concurrent, l.max_concurrent),
    ] {
        if let Some(limit) = limit {
            rules.push(Rule {
                scope,
                dim,
                limit,
                id: format!("{base}:{}", dim.suffix()),
            });
        }
    }
}

/// The Redis Cluster hash tag of a tenant's counters: every counter one request touches
/// belongs to its tenant, so one tag per tenant keeps the admission script in one slot.
/// Plain names are kept readable; anything else is hashed.
pub fn tenant_tag(tenant: &str) -> String {
    let plain = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        tenant.to_owned()
    } else {
        use sha2::Digest;
        let d = sha2::Sha256::digest(tenant.as_bytes());
        format!("h-{}", hex::encode(&d[..8]))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::TenantInfo;
    use crate::config::ModelLimitsConfig;

    fn caller(key: LimitsConfig, tenant: LimitsConfig) -> Caller {
        Caller {
            key_id: "ci".into(),
            key_name: "ci".into(),
            tenant: "team-a".into(),
            tenant_info: Arc::new(TenantInfo {
                name: "team-a".into(),
                limits: tenant,
                ..TenantInfo::default()
            }),
            models: None,
            limits: Arc::new(key),
            budget: None,
        }
    }

    #[test]
    fn collects_every_scope_and_dimension_that_is_set() {
        let mut key = LimitsConfig {
            rpm: Some(10),
            max_concurrent: Some(2),
            ..LimitsConfig::default()
        };
        key.models.insert(
            "gpt-4o".into(),
            ModelLimitsConfig {
                tpm: Some(1000),
                ..ModelLimitsConfig::default()
            },
        );
        let tenant = LimitsConfig {
            tpm: Some(5000),
            ..LimitsConfig::default()
        };
        let c = caller(key, tenant);
        assert!(any(&c));
        let ids: Vec<_> = collect(&c, "gpt-4o")
            .into_iter()
            .map(|r| (r.scope, r.dim, r.limit, r.id))
            .collect();
        assert_eq!(
            ids,
            vec![
                (Scope::Key, Dimension::Requests, 10, "k:ci:rpm".to_owned()),
                (Scope::Key, Dimension::Concurrent, 2, "k:ci:conc".to_owned()),
                (Scope::Tenant, Dimension::Tokens, 5000, "t:tpm".to_owned()),
                (
                    Scope::KeyModel,
                    Dimension::Tokens,
                    1000,
                    "k:ci:m:gpt-4o:tpm".to_owned()
                ),
            ]
        );
        assert_eq!(collect(&c, "other").len(), 3);
        let none = caller(LimitsConfig::default(), LimitsConfig::default());
        assert!(!any(&none) && collect(&none, "gpt-4o").is_empty());
    }

    #[test]
    fn tags_are_plain_or_hashed_never_braced() {
        assert_eq!(tenant_tag("team-a"), "team-a");
        let t = tenant_tag("we{ird} tenant");
        assert!(t.starts_with("h-") && t.len() == 18 && !t.contains(['{', '}']));
    }
}
