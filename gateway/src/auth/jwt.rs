//! JWT / OIDC access tokens as API credentials (`jsonwebtoken`).
//!
//! A bearer credential that looks like a JWT (three base64url segments) is verified here
//! when issuers are configured. In order, each failure a 401 that says which check failed
//! (never echoing the token):
//! 1. size (`auth.jwt.max_token_bytes`), before any parsing;
//! 2. header: `alg` must be one of the issuer's `algorithms` (never `none`, never `HS*`);
//! 3. issuer: the unverified `iss` picks the issuer config (verified again in step 5);
//! 4. key: by `kid` from the static keys or the JWKS ([`jwks`]); its type must match the
//!    algorithm's family, so an RSA public key can never verify an HMAC token;
//! 5. signature, `exp` (required), `nbf`, `iss`, `aud`, with `leeway_seconds`;
//! 6. claims → [`Caller`]: `sub` (required), tenant, models, limits.
//!
//! Verified tokens are cached by digest until they expire (bounded), so a client reusing
//! its token pays one hash and one map lookup.

pub mod jwks;

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::{Map, Value};

use self::jwks::{Jwks, VerifyKey, pick};
use super::AuthMetrics;
use super::keys::{Digest32, digest};
use super::{Caller, Tenants};
use crate::GatewayError;
use crate::config::{JwtConfig, JwtIssuerConfig, JwtStaticKey, LimitsConfig};

type Claims = Map<String, Value>;

/// The configured issuers and the verified-token cache. Built with each snapshot.
#[derive(Debug)]
pub struct JwtAuth {
    issuers: Vec<Issuer>,
    max_token_bytes: usize,
    cache_entries: usize,
    cache: Mutex<HashMap<Digest32, (Arc<Caller>, i64)>>,
}

#[derive(Debug)]
struct Issuer {
    cfg: JwtIssuerConfig,
    algorithms: Vec<Algorithm>,
    static_keys: Vec<Arc<VerifyKey>>,
    jwks: Option<Arc<Jwks>>,
}

fn unauthorized(msg: &'static str) -> GatewayError {
    GatewayError::Unauthorized(msg)
}

/// Whether `token` has the shape of a JWS compact serialization: three non-empty
/// base64url segments.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut n = 0;
    for seg in token.split('.') {
        n += 1;
        if n > 3
            || seg.is_empty()
            || !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    n == 3
}

/// Parses an algorithm name; `None` for unknown names and for symmetric algorithms.
pub fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    let alg = name.parse::<Algorithm>().ok()?;
    (alg.family() != jsonwebtoken::AlgorithmFamily::Hmac).then_some(alg)
}

/// Reads a static key: PEM text or file, RSA, EC or Ed25519 public key.
pub fn load_static_key(k: &JwtStaticKey) -> Result<VerifyKey, String> {
    let pem = match (&k.pem, &k.pem_file) {
        (Some(p), None) => p.clone().into_bytes(),
        (None, Some(f)) => std::fs::read(f).map_err(|e| format!("cannot read \"{f}\": {e}"))?,
        _ => return Err("give exactly one of pem and pem_file".into()),
    };
    let key = DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| "not an RSA, EC or Ed25519 public key in PEM".to_owned())?;
    Ok(VerifyKey {
        kid: k.kid.clone(),
        alg: None,
        key,
    })
}

// === impl JwtAuth ===

impl JwtAuth {
    /// Builds the issuers of a validated config (no I/O: key sets are fetched on use).
    pub fn from_config(cfg: &JwtConfig, metrics: &AuthMetrics) -> Self {
        let issuers = cfg
            .issuers
            .iter()
            .map(|i| Issuer {
                algorithms: i
                    .algorithms
                    .iter()
                    .filter_map(|a| asymmetric_algorithm(a))
                    .collect(),
                static_keys: i
                    .keys
                    .iter()
                    .filter_map(|k| {
                        load_static_key(k)
                            .inspect_err(|e| tracing::error!(issuer = %i.issuer, error = %e, "JWT static key"))
                            .ok()
                    })
                    .map(Arc::new)
                    .collect(),
                jwks: i.jwks_url.as_deref().and_then(|u| {
                    Jwks::new(i, u, metrics)
                        .map(Arc::new)
                        .inspect_err(|e| tracing::error!(issuer = %i.issuer, error = %e, "JWKS URL"))
                        .ok()
                }),
                cfg: i.clone(),
            })
            .collect();
        Self {
            issuers,
            max_token_bytes: cfg.max_token_bytes,
            cache_entries: cfg.cache_entries,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any issuer is configured (else JWT-shaped credentials are API keys).
    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Largest accepted credential.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// JWKS fetch attempts of the issuer `iss` (for tests and diagnostics).
    pub fn jwks_fetches(&self, iss: &str) -> Option<u64> {
        self.issuers
            .iter()
            .find(|i| i.cfg.issuer == iss)
            .and_then(|i| i.jwks.as_ref().map(|j| j.fetches()))
    }

    /// Verifies `token` and maps its claims to a caller.
    pub async fn verify(
        &self,
        token: &str,
        now: i64,
        tenants: &Tenants,
    ) -> Result<Arc<Caller>, GatewayError> {
        if token.len() > self.max_token_bytes {
            return Err(unauthorized("the credential is too long"));
        }
        let d = digest(token);
        if let Some((caller, until)) = self.cache.lock().get(&d)
            && now < *until
        {
            return Ok(caller.clone());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            unauthorized("the JWT header is malformed or names an unsupported algorithm")
        })?;
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<IssOnly>(token)
            .map_err(|_| unauthorized("the JWT payload is malformed"))?
            .iss;
        let issuer = self
            .issuers
            .iter()
            .find(|i| Some(i.cfg.issuer.as_str()) == iss.as_deref())
            .ok_or(unauthorized("the JWT's issuer is not trusted"))?;
        let alg = header.alg;
        if !issuer.algorithms.contains(&alg) {
            return Err(unauthorized("the JWT's algorithm is not allowed"));
        }
        let kid = header.kid.as_deref();
        let key = match pick(&issuer.static_keys, kid, alg) {
            Some(k) => Some(k),
            None => match &issuer.jwks {
                Some(j) => j.key(kid, alg).await,
                None => None,
            },
        }
        .ok_or(unauthorized("the JWT's signing key is unknown"))?;
        let claims = issuer.validate(token, alg, &key.key)?;
        let (caller, exp) = issuer.caller(&claims, tenants)?;
        let caller = Arc::new(caller);
        let mut cache = self.cache.lock();
        if cache.len() >= self.cache_entries {
            cache.retain(|_, (_, until)| now < *until);
            if cache.len() >= self.cache_entries {
                cache.clear();
            }
        }
        if self.cache_entries > 0 {
            // Cached until `exp` without leeway: a cached token never outlives its claim.
            cache.insert(d, (caller.clone(), exp));
        }
        Ok(caller)
    }
}

#[derive(serde::Deserialize)]
struct IssOnly {
    #[serde(default)]
    iss: Option<String>,
}

// === impl Issuer ===

impl Issuer {
    fn validate(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<Claims, GatewayError> {
        let mut v = Validation::new(alg);
        v.leeway = self.cfg.leeway_seconds;
        v.validate_nbf = true;
        v.set_issuer(&[&self.cfg.issuer]);
        let mut required = vec!["exp", "iss", "sub"];
        if self.cfg.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.cfg.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        jsonwebtoken::decode::<Claims>(token, key, &v)
            .map(|t| t.claims)
            .map_err(|e| {
                unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "the JWT has expired",
                    ErrorKind::ImmatureSignature => "the JWT is not valid yet (nbf)",
                    ErrorKind::InvalidAudience => "the JWT's audience is not accepted",
                    ErrorKind::InvalidIssuer => "the JWT's issuer is not trusted",
                    ErrorKind::InvalidSignature => "the JWT's signature is invalid",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the JWT lacks a required claim (exp, iss, sub, aud)"
                    }
                    ErrorKind::InvalidAlgorithm => "the JWT's algorithm does not fit its key",
                    _ => "the JWT is invalid",
                })
            })
    }

    /// The caller a verified token stands for, and the token's `exp`.
    fn caller(&self, claims: &Claims, tenants: &Tenants) -> Result<(Caller, i64), GatewayError> {
        let names = &self.cfg.claims;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(unauthorized(
                "the JWT's sub claim must be a non-empty string",
            ))?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .map_or(0, |e| e as i64);
        let tenant = match claims.get(&names.tenant) {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            None => self
                .cfg
                .default_tenant
                .clone()
                .ok_or(unauthorized("the JWT has no tenant claim"))?,
            Some(_) => return Err(unauthorized("the JWT's tenant claim must be a string")),
        };
        let models = match claims.get(&names.models) {
            None => Caller::model_set(&self.cfg.default_models),
            Some(Value::String(s)) => {
                Caller::model_set(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            }
            Some(Value::Array(a)) => {
                let list: Option<Vec<String>> =
                    a.iter().map(|m| m.as_str().map(str::to_owned)).collect();
                Caller::model_set(
                    &list.ok_or(unauthorized("the JWT's models claim must list strings"))?,
                )
            }
            Some(_) => return Err(unauthorized("the JWT's models claim must list strings")),
        };
        let limits = match claims.get(&names.limits) {
            None => LimitsConfig::default(),
            Some(v) => serde_json::from_value::<LimitsConfig>(v.clone())
                .ok()
                .filter(|l| {
                    [l.rpm, l.tpm, l.max_concurrent]
                        .iter()
                        .all(|v| *v != Some(0))
                })
                .ok_or(unauthorized("the JWT's limits claim is malformed"))?,
        };
        let key_id = format!("jwt:{}:{sub}", self.cfg.issuer);
        Ok((
            Caller {
                key_name: key_id.as_str().into(),
                key_id,
                tenant_info: tenants.resolve(&tenant),
                tenant: tenant.into(),
                models,
                limits: Arc::new(limits),
                budget: None,
            },
            exp,
        ))
    }
}

#[cfg(test)]
mod tests;
