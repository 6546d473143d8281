//! Config types of the identity features: JWT issuers and the admin API credential.
//! (Tenants, limits and budgets are in `types.rs`, next to the keys that use them.)

use serde::Deserialize;

/// The admin API on the admin listener (`/admin/…`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Lower-case hex SHA-256 of the admin credential, sent as `Authorization: Bearer …`.
    /// Without it the admin API refuses every request.
    #[serde(default)]
    pub api_key_sha256: Option<String>,
}

/// JSON Web Tokens (OIDC access tokens) as API credentials.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Trusted issuers. A bearer token that looks like a JWT goes to the JWT path only when
    /// this list is not empty.
    #[serde(default)]
    pub issuers: Vec<JwtIssuerConfig>,
    /// Credentials longer than this are refused before any parsing.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Verified tokens are cached (by digest, until they expire) up to this many entries.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
}

/// One trusted issuer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// The exact `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one. Empty = `aud` not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted signature algorithms (`RS256`, `RS384`, `RS512`, `PS256`, `PS384`, `PS512`,
    /// `ES256`, `ES384`, `EdDSA`). Symmetric (`HS*`) and `none` are never accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Where the issuer publishes its keys (`http(s)://…/jwks.json`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Static public keys (PEM), instead of or besides `jwks_url`.
    #[serde(default)]
    pub keys: Vec<JwtStaticKey>,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The key set is refetched after this long.
    #[serde(default = "default_jwks_ttl")]
    pub jwks_cache_seconds: u64,
    /// A token with an unknown `kid` refetches the key set at most this often.
    #[serde(default = "default_jwks_min_refresh")]
    pub jwks_min_refresh_seconds: u64,
    /// Timeout of one key-set fetch, in milliseconds.
    #[serde(default = "default_jwks_timeout")]
    pub jwks_timeout_ms: u64,
    /// Which claims carry tenant, models and limits.
    #[serde(default)]
    pub claims: JwtClaimNames,
    /// Tenant of tokens without the tenant claim; without it such tokens are refused.
    #[serde(default)]
    pub default_tenant: Option<String>,
    /// Models of tokens without the models claim (`*` = all).
    #[serde(default = "all")]
    pub default_models: Vec<String>,
}

/// A static verification key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtStaticKey {
    /// Matched against the token's `kid`; a key without one matches tokens without `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// PEM text (RSA, EC or Ed25519 public key).
    #[serde(default)]
    pub pem: Option<String>,
    /// A PEM file, instead of `pem`.
    #[serde(default)]
    pub pem_file: Option<String>,
}

/// Claim names (top-level claims of the token).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtClaimNames {
    /// A string claim: the tenant.
    #[serde(default = "claim_tenant")]
    pub tenant: String,
    /// An array of model names, or a space-separated string.
    #[serde(default = "claim_models")]
    pub models: String,
    /// An object shaped like a `limits` block (`{rpm, tpm, max_concurrent, models}`).
    #[serde(default = "claim_limits")]
    pub limits: String,
}

fn default_max_token_bytes() -> usize {
    8192
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_leeway() -> u64 {
    30
}
fn default_jwks_ttl() -> u64 {
    600
}
fn default_jwks_min_refresh() -> u64 {
    30
}
fn default_jwks_timeout() -> u64 {
    3000
}
fn all() -> Vec<String> {
    vec!["*".into()]
}
fn claim_tenant() -> String {
    "tenant".into()
}
fn claim_models() -> String {
    "models".into()
}
fn claim_limits() -> String {
    "limits".into()
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            max_token_bytes: default_max_token_bytes(),
            cache_entries: default_cache_entries(),
        }
    }
}

impl Default for JwtClaimNames {
    fn default() -> Self {
        Self {
            tenant: claim_tenant(),
            models: claim_models(),
            limits: claim_limits(),
        }
    }
}
