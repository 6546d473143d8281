//! Authentication against configured hashes, `CONFIG_KV` and JWT keys.

use worker::{Env, Request};

use crate::EdgeError;
use crate::auth::{Credential, Tenant, credential, key_hash, verify_jwt};
use crate::config::EdgeConfig;

/// The tenant behind the request's credential.
pub async fn authenticate(req: &Request, env: &Env, cfg: &EdgeConfig) -> Result<Tenant, EdgeError> {
    let h = req.headers();
    let authz = h.get("authorization").ok().flatten();
    let x_key = h.get("x-api-key").ok().flatten();
    match credential(authz.as_deref(), x_key.as_deref(), cfg.auth.jwt.enabled())? {
        Credential::Jwt(token) => verify_jwt(&cfg.auth.jwt, token),
        Credential::ApiKey(key) => {
            let hash = key_hash(key);
            if let Some(t) = cfg.auth.api_keys.get(&hash) {
                return Ok(Tenant {
                    id: t.clone(),
                    via: "api_key",
                });
            }
            if let Ok(kv) = env.kv("CONFIG_KV")
                && let Ok(Some(v)) = kv.get(&format!("apikey:{hash}")).cache_ttl(60).text().await
            {
                let tenant = if v.trim_start().starts_with('{') {
                    serde_json::from_str::<serde_json::Value>(&v)
                        .ok()
                        .and_then(|j| j.get("tenant").and_then(|t| t.as_str()).map(str::to_owned))
                } else {
                    Some(v.trim().to_owned())
                };
                if let Some(id) = tenant.filter(|t| !t.is_empty()) {
                    return Ok(Tenant { id, via: "api_key" });
                }
            }
            Err(EdgeError::Unauthorized("invalid API key"))
        }
    }
}
