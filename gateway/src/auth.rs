//! Who is calling: API keys (from the config or created at runtime), JWTs, and tenants.
//!
//! Authentication turns the request's credential into a [`Caller`], which everything after
//! it reads: the model allow-list, the key's and the tenant's limits and budget (enforced
//! by `limits`), and the tenant's residency/region (inputs of the placement policy).
//!
//! Keys are never stored or logged in clear: tables hold SHA-256 digests, the presented
//! key is hashed and compared in constant time, and only the key's *id* and *name* travel
//! further.
//!
//! - [`authenticate`]: the entry point; picks the path by the credential's shape.
//! - [`keys`]: config keys, looked up by digest (built with each snapshot).
//! - [`runtime`]: keys created through the admin API (kept across reloads; in memory or
//!   in Redis).
//! - [`jwt`]: JWT / OIDC tokens, verified against static keys or a cached JWKS.
//! - [`tenant`]: the tenant table.

mod credential;
pub mod jwt;
pub mod keys;
pub mod metrics;
pub mod runtime;
pub mod secret;
pub mod tenant;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

pub use jwt::JwtAuth;
pub use keys::{KeyTable, hash_key, now_secs};
pub use metrics::AuthMetrics;
pub use runtime::{RuntimeKey, RuntimeKeys};
pub use tenant::{TenantInfo, Tenants};

use self::metrics::Method;
use crate::GatewayError;
use crate::config::{BudgetConfig, LimitsConfig};
use crate::snapshot::Snapshot;
use crate::state::Gateway;

/// Authenticates a request from `Authorization: Bearer …` or `x-api-key`.
///
/// A JWT-shaped credential goes to [`JwtAuth`] when issuers are configured (it may wait
/// for a key-set fetch, see [`jwt::jwks`]); anything else is an API key: a hash, then a
/// lookup in the config keys and the runtime keys. Every refusal is a 401
/// `invalid_api_key` whose message says what was wrong without echoing the credential.
/// `now` is the unix time in seconds (expiry is checked against it).
pub async fn authenticate<'s>(
    gw: &Gateway,
    snapshot: &'s Snapshot,
    authorization: Option<&[u8]>,
    x_api_key: Option<&[u8]>,
    now: i64,
) -> Result<CallerRef<'s>, GatewayError> {
    let keys = &snapshot.keys;
    if !keys.enabled() {
        return Ok(Cow::Borrowed(keys.anonymous()));
    }
    let (method, result) = match credential::presented(authorization, x_api_key) {
        Ok(credential) if snapshot.jwt.enabled() && jwt::looks_like_jwt(credential) => (
            Method::Jwt,
            check(gw, snapshot, credential, true, now).await,
        ),
        Ok(credential) => (
            Method::ApiKey,
            check(gw, snapshot, credential, false, now).await,
        ),
        Err(e) => (Method::ApiKey, Err(e)),
    };
    gw.metrics.auth.record(method, result.as_ref().map(|_| ()));
    result
}

async fn check<'s>(
    gw: &Gateway,
    snapshot: &'s Snapshot,
    credential: &str,
    jwt: bool,
    now: i64,
) -> Result<CallerRef<'s>, GatewayError> {
    let keys = &snapshot.keys;
    if credential.len() > snapshot.jwt.max_token_bytes() {
        return Err(GatewayError::Unauthorized("the credential is too long"));
    }
    if jwt {
        // Boxed: verification may fetch a JWKS (a whole HTTP client future), and an inline
        // future that size would be copied around on every API-key request too.
        return Box::pin(snapshot.jwt.verify(credential, now, &keys.tenants))
            .await
            .map(Cow::Owned);
    }
    let d = keys::digest(credential);
    if let Some(c) = keys.lookup(&d, now)? {
        return Ok(Cow::Borrowed(c));
    }
    gw.runtime_keys
        .lookup(&d, now)?
        .map(Cow::Owned)
        .ok_or(GatewayError::Unauthorized("invalid API key"))
}

/// The caller of one request: a config key's caller borrowed from the snapshot the request
/// holds (no reference count shared by the worker threads is touched), or a runtime key's
/// or a token's, shared.
pub type CallerRef<'s> = Cow<'s, Arc<Caller>>;

/// An authenticated caller. Built once per key (or cached per token), shared by `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Stable, non-secret id: a config key's name, a runtime key's generated id, or
    /// `jwt:<issuer>:<sub>` for a JWT. Keys limits and spend.
    pub key_id: String,
    /// The key's name (safe to log). Shared: every request's access-log record holds it.
    pub key_name: Arc<str>,
    /// Tenant name. Shared, like `key_name`.
    pub tenant: Arc<str>,
    /// The tenant's attributes, limits and budget (bare when the tenant is not configured).
    pub tenant_info: Arc<TenantInfo>,
    /// Allowed client-facing models; `None` = all.
    pub models: Option<HashSet<String>>,
    /// The key's (or token's) own rate limits.
    pub limits: Arc<LimitsConfig>,
    /// The key's (or token's) own budget.
    pub budget: Option<BudgetConfig>,
}

impl Caller {
    /// Whether the caller may use `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }

    /// `None` when `models` contains `*`, else the set.
    pub fn model_set(models: &[String]) -> Option<HashSet<String>> {
        (!models.iter().any(|m| m == "*")).then(|| models.iter().cloned().collect())
    }
}
