//! The worker's settings, read from vars and secrets (one flat namespace in Workers).
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `ROUTES` | var (JSON) | [`RoutingConfig`]; a `routes` document in `CONFIG_KV` overrides it |
//! | `CORE_URL` | var | origin of the core gateway, e.g. `https://gw.example.com` |
//! | `CORE_API_KEY` | secret | service token the edge presents to the core (`Bearer`) |
//! | `EDGE_SIGNING_KEY` | secret | HMAC key for the forwarded tenant headers |
//! | `CLOUD_BASE_URL` | var | OpenAI-compatible API base, e.g. `https://api.openai.com/v1` |
//! | `CLOUD_API_KEY` | secret | key for that API |
//! | `API_KEYS` | secret (JSON) | `{"<sha256 hex of key>": "<tenant>"}` |
//! | `JWT_HS256_SECRET` | secret | HMAC secret for HS* JWTs |
//! | `JWT_PUBLIC_KEY` | var | PEM key for RS*/PS*/ES*/EdDSA JWTs |
//! | `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_TENANT_CLAIM` | var | JWT checks / tenant claim |
//! | `CACHE_TTL_SECONDS` | var | edge cache lifetime (default 3600, KV minimum 60) |
//! | `SESSION_TTL_SECONDS` | var | idle session lifetime before the cron prunes it (default 30 days) |
//! | `SESSION_MAX_MESSAGES` | var | most recent messages prepended (default 50) |
//! | `MAX_BODY_BYTES` | var | request body limit (default 4 MiB) |

use std::collections::HashMap;

use crate::auth::{AuthConfig, JwtConfig};
use crate::routing::RoutingConfig;

/// Everything the worker reads from its environment.
#[derive(Clone)]
pub struct EdgeConfig {
    /// Routing rules (before any `CONFIG_KV` override).
    pub routing: RoutingConfig,
    /// Core gateway origin, without a trailing slash.
    pub core_url: Option<String>,
    /// Service token for the core.
    pub core_api_key: Option<String>,
    /// HMAC key for the tenant headers sent to the core.
    pub edge_signing_key: Option<String>,
    /// Cloud API base URL (ending in the version path, e.g. `/v1`), no trailing slash.
    pub cloud_base_url: Option<String>,
    /// Cloud API key.
    pub cloud_api_key: Option<String>,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// Edge cache TTL in seconds.
    pub cache_ttl: u64,
    /// Session idle TTL in seconds.
    pub session_ttl: u64,
    /// Most recent messages prepended from a session.
    pub session_max_messages: usize,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
}

fn number<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    problems: &mut Vec<String>,
) -> T {
    match get(name) {
        None => default,
        Some(v) => v.trim().parse().unwrap_or_else(|_| {
            problems.push(format!("{name}: \"{v}\" is not a non-negative integer"));
            default
        }),
    }
}

impl EdgeConfig {
    /// Reads the configuration through `get` (vars and secrets by name), reporting every
    /// problem with the name at fault.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let get_nonempty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let routing = match get_nonempty("ROUTES") {
            Some(doc) => RoutingConfig::from_json(&doc).unwrap_or_else(|e| {
                problems.extend(e.into_iter().map(|p| format!("ROUTES: {p}")));
                RoutingConfig::default()
            }),
            None => RoutingConfig::default(),
        };
        let api_keys: HashMap<String, String> = match get_nonempty("API_KEYS") {
            Some(doc) => serde_json::from_str(&doc).unwrap_or_else(|e| {
                problems.push(format!(
                    "API_KEYS: must be a JSON object of hash to tenant: {e}"
                ));
                HashMap::new()
            }),
            None => HashMap::new(),
        };
        for hash in api_keys.keys() {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(format!(
                    "API_KEYS: key \"{}…\" is not a SHA-256 hex digest (store hashes, never keys)",
                    hash.chars().take(6).collect::<String>()
                ));
            }
        }
        let url = |name: &str, problems: &mut Vec<String>| {
            get_nonempty(name).map(|u| {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    problems.push(format!("{name}: \"{u}\" must be an http(s) URL"));
                }
                u.trim_end_matches('/').to_owned()
            })
        };
        let core_url = url("CORE_URL", &mut problems);
        let cloud_base_url = url("CLOUD_BASE_URL", &mut problems);
        let cfg = Self {
            routing,
            core_url,
            core_api_key: get_nonempty("CORE_API_KEY"),
            edge_signing_key: get_nonempty("EDGE_SIGNING_KEY"),
            cloud_base_url,
            cloud_api_key: get_nonempty("CLOUD_API_KEY"),
            auth: AuthConfig {
                api_keys,
                jwt: JwtConfig {
                    hmac_secret: get_nonempty("JWT_HS256_SECRET").map(String::into_bytes),
                    public_key_pem: get_nonempty("JWT_PUBLIC_KEY"),
                    issuer: get_nonempty("JWT_ISSUER"),
                    audience: get_nonempty("JWT_AUDIENCE"),
                    tenant_claim: get_nonempty("JWT_TENANT_CLAIM"),
                },
            },
            cache_ttl: number(get, "CACHE_TTL_SECONDS", 3600, &mut problems),
            session_ttl: number(get, "SESSION_TTL_SECONDS", 30 * 24 * 3600, &mut problems),
            session_max_messages: number(get, "SESSION_MAX_MESSAGES", 50, &mut problems),
            max_body_bytes: number(get, "MAX_BODY_BYTES", 4 << 20, &mut problems),
        };
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_with_empty_environment() {
        let c = EdgeConfig::from_lookup(&lookup(&[])).unwrap();
        assert_eq!(c.cache_ttl, 3600);
        assert_eq!(c.session_max_messages, 50);
        assert!(c.core_url.is_none());
        assert!(!c.auth.jwt.enabled());
    }

    #[test]
    fn every_problem_is_reported_by_name() {
        let e = EdgeConfig::from_lookup(&lookup(&[
            ("CACHE_TTL_SECONDS", "soon"),
            ("CORE_URL", "gw.example.com"),
            ("API_KEYS", r#"{"sk-plain":"acme"}"#),
            ("ROUTES", r#"{"rules":[{"model":"","target":"core"}]}"#),
        ]))
        .err()
        .unwrap();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|p| p.starts_with("CACHE_TTL_SECONDS")));
        assert!(e.iter().any(|p| p.starts_with("CORE_URL")));
        assert!(
            e.iter()
                .any(|p| p.starts_with("API_KEYS") && !p.contains("sk-plain"))
        );
        assert!(e.iter().any(|p| p.starts_with("ROUTES: rules[0].model")));
    }

    #[test]
    fn urls_lose_trailing_slash() {
        let c = EdgeConfig::from_lookup(&lookup(&[("CORE_URL", "http://127.0.0.1:9/")])).unwrap();
        assert_eq!(c.core_url.as_deref(), Some("http://127.0.0.1:9"));
    }
}
