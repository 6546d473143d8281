//! Who is calling: API keys (stored as SHA-256 hashes) and JWTs verified in wasm with
//! `jsonwebtoken`'s pure-Rust (RustCrypto) backend; and how the tenant is vouched for to
//! the core gateway.
//!
//! Credentials arrive as `Authorization: Bearer <token>` (or `x-api-key`). A token with two
//! dots is a JWT when a JWT key is configured; anything else is an API key, looked up by
//! its hash (`API_KEYS` JSON `{"<sha256 hex>": "<tenant>"}`, then `apikey:<hash>` in
//! `CONFIG_KV`). The plain key is never stored or logged.
//!
//! The core gateway learns the tenant from three headers ([`tenant_headers`]):
//! `x-datamind-tenant`, `x-datamind-edge-ts` and `x-datamind-edge-signature`
//! = `v1=` hex HMAC-SHA256(`EDGE_SIGNING_KEY`, `"{ts}.{tenant}"`), checked with
//! [`verify_tenant_signature`] (pure; fit for `gateway/llm` so the core uses this code).

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::EdgeError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Tenant id: scopes sessions and cache entries, forwarded to the core.
    pub id: String,
    /// How it authenticated: `api_key` or `jwt`.
    pub via: &'static str,
}

/// A credential as presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// An opaque API key.
    ApiKey(&'a str),
    /// A compact JWS.
    Jwt(&'a str),
}

/// JWT verification settings.
#[derive(Clone, Default)]
pub struct JwtConfig {
    /// Shared secret for HS256/384/512 (`JWT_HS256_SECRET`).
    pub hmac_secret: Option<Vec<u8>>,
    /// PEM public key for RS*/PS*/ES*/EdDSA (`JWT_PUBLIC_KEY`).
    pub public_key_pem: Option<String>,
    /// Required `iss` (`JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud` (`JWT_AUDIENCE`).
    pub audience: Option<String>,
    /// Claim holding the tenant id (`JWT_TENANT_CLAIM`, default `tenant`, then `sub`).
    pub tenant_claim: Option<String>,
}

impl JwtConfig {
    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        self.hmac_secret.is_some() || self.public_key_pem.is_some()
    }
}

/// Static authentication settings.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// SHA-256 hex of an API key → tenant.
    pub api_keys: HashMap<String, String>,
    /// JWT settings.
    pub jwt: JwtConfig,
}

/// Finds the credential in the request headers.
pub fn credential<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
    jwt_enabled: bool,
) -> Result<Credential<'a>, EdgeError> {
    let token = match (authorization, x_api_key) {
        (Some(h), _) => {
            let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(EdgeError::Unauthorized(
                    "expected `Authorization: Bearer <key>`",
                ));
            }
            rest.trim()
        }
        (None, Some(k)) => k.trim(),
        (None, None) => return Err(EdgeError::Unauthorized("missing API key")),
    };
    if token.is_empty() {
        return Err(EdgeError::Unauthorized("missing API key"));
    }
    if jwt_enabled && token.bytes().filter(|b| *b == b'.').count() == 2 {
        Ok(Credential::Jwt(token))
    } else {
        Ok(Credential::ApiKey(token))
    }
}

/// SHA-256 hex of an API key: the only form in which keys are stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Verifies a JWT and returns the tenant it names. `exp` is required.
pub fn verify_jwt(cfg: &JwtConfig, token: &str) -> Result<Tenant, EdgeError> {
    const BAD: EdgeError = EdgeError::Unauthorized("invalid token");
    let header = decode_header(token).map_err(|_| BAD)?;
    let alg = header.alg;
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            DecodingKey::from_secret(cfg.hmac_secret.as_deref().ok_or(BAD)?)
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            DecodingKey::from_rsa_pem(cfg.public_key_pem.as_deref().ok_or(BAD)?.as_bytes())
                .map_err(|_| BAD)?
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            DecodingKey::from_ec_pem(cfg.public_key_pem.as_deref().ok_or(BAD)?.as_bytes())
                .map_err(|_| BAD)?
        }
        Algorithm::EdDSA => {
            DecodingKey::from_ed_pem(cfg.public_key_pem.as_deref().ok_or(BAD)?.as_bytes())
                .map_err(|_| BAD)?
        }
        _ => return Err(BAD),
    };
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp"]);
    v.leeway = 30;
    match &cfg.issuer {
        Some(iss) => v.set_issuer(&[iss]),
        None => v.iss = None,
    }
    match &cfg.audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    let data = decode::<serde_json::Map<String, Value>>(token, &key, &v).map_err(|_| BAD)?;
    let claim = cfg.tenant_claim.as_deref().unwrap_or("tenant");
    let tenant = data
        .claims
        .get(claim)
        .or_else(|| data.claims.get("sub"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(EdgeError::Unauthorized("token names no tenant"))?;
    Ok(Tenant {
        id: tenant.to_owned(),
        via: "jwt",
    })
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], tenant: &str, ts: u64) -> Option<HmacSha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).ok()?;
    m.update(ts.to_string().as_bytes());
    m.update(b".");
    m.update(tenant.as_bytes());
    Some(m)
}

/// `v1=<hex HMAC-SHA256(secret, "{ts}.{tenant}")>`.
pub fn tenant_signature(secret: &[u8], tenant: &str, ts: u64) -> String {
    let tag = mac(secret, tenant, ts).map(|m| hex::encode(m.finalize().into_bytes()));
    format!("v1={}", tag.unwrap_or_default())
}

/// Checks a signature made by [`tenant_signature`], in constant time, rejecting
/// timestamps more than `max_skew` seconds away from `now`.
pub fn verify_tenant_signature(
    secret: &[u8],
    tenant: &str,
    ts: u64,
    signature: &str,
    now: u64,
    max_skew: u64,
) -> bool {
    let Some(sig) = signature
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    now.abs_diff(ts) <= max_skew
        && mac(secret, tenant, ts).is_some_and(|m| m.verify_slice(&sig).is_ok())
}

/// The headers that vouch for `tenant` to the core gateway.
pub fn tenant_headers(secret: &[u8], tenant: &str, now: u64) -> Vec<(String, String)> {
    vec![
        ("x-datamind-tenant".to_owned(), tenant.to_owned()),
        ("x-datamind-edge-ts".to_owned(), now.to_string()),
        (
            "x-datamind-edge-signature".to_owned(),
            tenant_signature(secret, tenant, now),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn hs_cfg() -> JwtConfig {
        JwtConfig {
            hmac_secret: Some(b"s3cret".to_vec()),
            issuer: Some("https://idp.example".into()),
            ..JwtConfig::default()
        }
    }

    fn token(claims: Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn credentials_are_classified() {
        assert_eq!(
            credential(Some("Bearer sk-1"), None, true),
            Ok(Credential::ApiKey("sk-1"))
        );
        assert_eq!(
            credential(Some("bearer a.b.c"), None, true),
            Ok(Credential::Jwt("a.b.c"))
        );
        assert_eq!(
            credential(Some("Bearer a.b.c"), None, false),
            Ok(Credential::ApiKey("a.b.c"))
        );
        assert_eq!(
            credential(None, Some("sk-2"), false),
            Ok(Credential::ApiKey("sk-2"))
        );
        assert!(credential(Some("Basic xyz"), None, true).is_err());
        assert!(credential(Some("Bearer "), None, true).is_err());
        assert!(credential(None, None, true).is_err());
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn jwt_valid_expired_forged_and_wrong_issuer() {
        let cfg = hs_cfg();
        let ok = token(
            json!({"tenant":"acme","exp":now()+600,"iss":"https://idp.example"}),
            b"s3cret",
        );
        assert_eq!(verify_jwt(&cfg, &ok).unwrap().id, "acme");
        let sub = token(
            json!({"sub":"beta","exp":now()+600,"iss":"https://idp.example"}),
            b"s3cret",
        );
        assert_eq!(verify_jwt(&cfg, &sub).unwrap().id, "beta");
        let expired = token(
            json!({"tenant":"acme","exp":now()-600,"iss":"https://idp.example"}),
            b"s3cret",
        );
        assert!(verify_jwt(&cfg, &expired).is_err());
        let forged = token(
            json!({"tenant":"acme","exp":now()+600,"iss":"https://idp.example"}),
            b"other",
        );
        assert!(verify_jwt(&cfg, &forged).is_err());
        let iss = token(
            json!({"tenant":"acme","exp":now()+600,"iss":"evil"}),
            b"s3cret",
        );
        assert!(verify_jwt(&cfg, &iss).is_err());
        let no_exp = token(
            json!({"tenant":"acme","iss":"https://idp.example"}),
            b"s3cret",
        );
        assert!(verify_jwt(&cfg, &no_exp).is_err());
        // An RS256 header must not be checked against the HMAC secret (alg confusion).
        let rs_header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"RS256","typ":"JWT"}
        let parts: Vec<&str> = ok.split('.').collect();
        let confused = format!("{rs_header}.{}.{}", parts[1], parts[2]);
        assert!(verify_jwt(&cfg, &confused).is_err());
    }

    #[test]
    fn tenant_signature_round_trip() {
        let sig = tenant_signature(b"k", "acme", 1000);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert!(verify_tenant_signature(b"k", "acme", 1000, &sig, 1010, 60));
        assert!(!verify_tenant_signature(b"k", "acme", 1000, &sig, 2000, 60));
        assert!(!verify_tenant_signature(b"k", "beta", 1000, &sig, 1000, 60));
        assert!(!verify_tenant_signature(b"x", "acme", 1000, &sig, 1000, 60));
        assert!(!verify_tenant_signature(
            b"k", "acme", 1000, "v1=zz", 1000, 60
        ));
        let h = tenant_headers(b"k", "acme", 1000);
        assert_eq!(h[0], ("x-datamind-tenant".into(), "acme".into()));
        assert_eq!(h[2].1, sig);
    }
}
