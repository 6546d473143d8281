//! The configuration file's types. Every field is documented in `config/README.md`.

use std::collections::BTreeMap;

use datamind_llm::ProviderKind;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners and process settings.
    pub server: ServerConfig,
    /// The per-request JSON access log.
    #[serde(default)]
    pub access_log: AccessLogConfig,
    /// Default upstream timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// When a failing deployment is skipped.
    #[serde(default)]
    pub cooldown: CooldownConfig,
    /// The shared Redis (distributed limits, spend, runtime keys, response cache). Absent:
    /// everything stays in-process.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Prices by upstream model name (a deployment's `model`), for spend and budgets.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceConfig>,
    /// How rate limits and budgets are enforced (the limits themselves are on keys and
    /// tenants).
    #[serde(default)]
    pub limiter: LimiterConfig,
    /// Who may call the API.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Upstream LLM providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Client-facing model names and where they are served.
    #[serde(default)]
    pub models: Vec<ModelGroupConfig>,
    /// Tenants: residency/region attributes for placement, tenant-wide limits and budget.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// The response cache (absent: off).
    #[serde(default)]
    pub cache: super::CacheConfig,
    /// The admin API (runtime keys) on the admin listener.
    #[serde(default)]
    pub admin: super::AdminConfig,
    /// Conductor: CEL placement rules (see `config/README.md`).
    #[serde(default)]
    pub policy: super::policy::PolicyConfig,
    /// Logs, traces (OTLP) and the overhead header.
    #[serde(default)]
    pub telemetry: super::TelemetryConfig,
}

/// Listeners and process settings. Changing these needs a restart (a reload logs a warning).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// API listener address, e.g. `0.0.0.0:8080`.
    pub listen: String,
    /// Admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin_listen: String,
    /// Serve the API over TLS with these PEM files.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Worker threads.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Largest accepted request body.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long SIGTERM waits for in-flight requests and streams.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// One work-stealing runtime for all worker threads (true), or one runtime per thread
    /// with each plain-text connection moved to, and registered with, the runtime serving
    /// the fewest (false: no cross-thread wake-ups; 5–10% more requests per second at c=32
    /// and c=64 on 2 cores, `benches/results/2026-11-27T091513Z.md`). Unset (the default):
    /// false where the gateway may duplicate its own sockets (`pidfd_getfd`, which some
    /// seccomp profiles refuse), else true. See [`crate::server::work_stealing`].
    #[serde(default)]
    pub work_stealing: Option<bool>,
    /// Pin each per-thread runtime's thread to its own CPU of the gateway's allowed set
    /// (true), or leave threads to the scheduler (false). Unset (the default): pinned when
    /// the gateway runs per-thread runtimes and `threads` equals the number of CPUs it may
    /// run on (a machine, VM or exclusive CPU set of its own), else not. The threads never
    /// trade connections, so the scheduler moving them only costs: pinned, the gateway
    /// leaves ~2 points less CPU idle and serves 8% more at c=32, 1% more at c=64 on 2
    /// cores (`benches/results/2026-11-27T105746Z.md`). See [`crate::server::pinned_cpus`].
    #[serde(default)]
    pub pin_threads: Option<bool>,
}

/// TLS certificate and key files (PEM).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert_file: String,
    /// Private key.
    pub key_file: String,
}

/// The access log.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Write one JSON line per request.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `-` for standard output, else a file appended to.
    #[serde(default = "dash")]
    pub path: String,
}

/// Upstream timeouts, in milliseconds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    #[serde(default = "default_connect")]
    pub connect_ms: u64,
    /// From sending the request to the upstream's response header (time to first byte).
    #[serde(default = "default_first_byte")]
    pub first_byte_ms: u64,
    /// Whole request, streaming included.
    #[serde(default = "default_total")]
    pub total_ms: u64,
}

/// Cooldown of failing deployments.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CooldownConfig {
    /// Consecutive failures before a deployment cools down.
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// How long it is skipped (unless the upstream's `Retry-After` says otherwise).
    #[serde(default = "default_cooldown_secs")]
    pub seconds: u64,
}

/// API authentication.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a key. When false, every caller is the `anonymous` tenant with all models.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Static API keys, stored hashed.
    #[serde(default)]
    pub keys: Vec<ApiKeyConfig>,
    /// JWT / OIDC issuers.
    #[serde(default)]
    pub jwt: super::JwtConfig,
}

/// One API key.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A label for logs and metrics (never the key itself).
    pub name: String,
    /// Lower-case hex SHA-256 of the key (`datamind-gateway hash-key KEY`).
    pub sha256: String,
    /// The tenant the key belongs to.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Client-facing model names the key may use; `*` allows all.
    #[serde(default = "all_models")]
    pub models: Vec<String>,
    /// The key's own rate limits (enforced by `limits`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The key's own spend budget.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// RFC 3339 instant after which the key is refused, e.g. `2027-01-01T00:00:00Z`.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Free-form labels (owner, ticket…); never used for decisions.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A tenant: who a caller belongs to, where its data may go, and what it may spend.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Referenced by keys (`auth.keys[].tenant`) and JWT tenant claims.
    pub name: String,
    /// Data residency, e.g. `eu`; read by the placement policy.
    #[serde(default)]
    pub residency: Option<String>,
    /// Home region, e.g. `westeurope`; read by the placement policy.
    #[serde(default)]
    pub region: Option<String>,
    /// Further attributes for the placement policy.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Tenant-wide rate limits (all its keys and tokens together).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Tenant-wide spend budget.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

/// Rate limits of a key, a JWT subject or a tenant. Absent fields mean "no limit".
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    /// Per client-facing model name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelLimitsConfig>,
}

/// Rate limits for one model.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelLimitsConfig {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
}

/// A spend budget over a calendar period (UTC).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// `day` or `month`.
    pub period: BudgetPeriod,
    /// Requests are refused once spend reaches this (USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_usd: Option<f64>,
    /// A warning threshold (USD); at most `hard_usd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_usd: Option<f64>,
}

/// The period a budget resets on.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// Calendar day (UTC).
    Day,
    /// Calendar month (UTC).
    Month,
}

/// An upstream provider.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Referenced by deployments.
    pub name: String,
    /// API family.
    pub kind: ProviderKind,
    /// Base URL including the API prefix, e.g. `https://api.openai.com/v1` (not for `mock`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `azure`: `api-version`; `anthropic`: `anthropic-version`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// OAuth2 / Entra ID access token sent as `Authorization: Bearer` (`azure`, `vertex`).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// `vertex`: a service-account key file (JSON); access tokens are exchanged and cached.
    #[serde(default)]
    pub service_account_file: Option<String>,
    /// `bedrock`: AWS region, e.g. `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// `bedrock`: AWS credentials (use `${AWS_ACCESS_KEY_ID}` etc.).
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    /// `bedrock`: AWS secret key.
    #[serde(default)]
    pub aws_secret_access_key: Option<String>,
    /// `bedrock`: AWS session token for temporary credentials.
    #[serde(default)]
    pub aws_session_token: Option<String>,
    /// Per-provider timeout overrides.
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
    /// Speak HTTP/2 to the upstream (ALPN over TLS, prior knowledge over plain TCP).
    #[serde(default)]
    pub http2: bool,
    /// Placement: the cloud it runs in (`aws`, `gcp`, `azure`, `onprem`, `cloudflare`, …).
    #[serde(default)]
    pub cloud: Option<String>,
    /// Placement: free-form labels for rules (`deployment.labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `mock` only: delay before the first token.
    #[serde(default)]
    pub latency_ms: u64,
    /// `mock` only: delay between streamed chunks.
    #[serde(default)]
    pub chunk_delay_ms: u64,
}

/// How a group picks among its deployments.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// In proportion to `weight`.
    #[default]
    WeightedRoundRobin,
    /// Fewest requests in flight (relative to weight).
    LeastInFlight,
    /// Lowest recent latency (EWMA of time to first byte).
    LowestLatency,
}

/// A client-facing model name.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelGroupConfig {
    /// The `model` clients send.
    pub name: String,
    /// Load-balancing strategy.
    #[serde(default)]
    pub strategy: Strategy,
    /// Where it is served.
    pub deployments: Vec<DeploymentConfig>,
    /// Other groups tried, in order, when every deployment here failed.
    #[serde(default)]
    pub fallbacks: Vec<String>,
}

/// One place a model is served.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// A provider's `name`.
    pub provider: String,
    /// The model name the provider knows.
    pub model: String,
    /// Share of traffic under weighted round-robin.
    #[serde(default = "one")]
    pub weight: u32,
    /// Skip this deployment while it has this many requests in flight.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// This deployment's price, overriding `prices[model]`.
    #[serde(default)]
    pub price: Option<PriceConfig>,
    /// Placement: overrides the provider's `cloud`.
    #[serde(default)]
    pub cloud: Option<String>,
    /// Placement: overrides the provider's `region`.
    #[serde(default)]
    pub region: Option<String>,
    /// Placement: the model's context window in tokens.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Placement: labels, merged over the provider's.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Prompt tokens.
    pub input: f64,
    /// Completion tokens.
    pub output: f64,
    /// Prompt tokens served from the provider's prompt cache; `input` when absent.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// The shared Redis: exactly one of `url` (standalone), `sentinel` or `cluster`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Standalone server, `redis://[:password@]host:port[/db]`.
    #[serde(default)]
    pub url: Option<String>,
    /// Sentinel-managed master.
    #[serde(default)]
    pub sentinel: Option<RedisSentinelConfig>,
    /// Redis Cluster.
    #[serde(default)]
    pub cluster: Option<RedisClusterConfig>,
    /// ACL user of the data nodes (overrides the URL's).
    #[serde(default)]
    pub username: Option<String>,
    /// Password of the data nodes (overrides the URL's); use `${ENV}`.
    #[serde(default)]
    pub password: Option<String>,
    /// Prefix of every key the gateway writes.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
    /// TCP connect (and Sentinel lookup) timeout.
    #[serde(default = "default_redis_connect")]
    pub connect_timeout_ms: u64,
    /// A command's round trip; slower counts as Redis being unavailable.
    #[serde(default = "default_redis_command")]
    pub command_timeout_ms: u64,
    /// Longest pause between reconnect attempts (they back off from 100 ms, with jitter).
    #[serde(default = "default_redis_backoff")]
    pub reconnect_max_ms: u64,
}

/// How limits and budgets are enforced.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimiterConfig {
    /// When the configured Redis is unreachable: `open` (enforce per-replica local limits,
    /// each limit divided by `replicas`) or `closed` (refuse limited callers with 503).
    #[serde(default)]
    pub on_redis_failure: RedisFailureMode,
    /// Gateway replicas sharing the limits; local fallback limits are divided by it.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Completion tokens reserved for a request without `max_tokens`.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u64,
    /// How often recorded spend is flushed to Redis (and fleet totals read back).
    #[serde(default = "default_spend_flush")]
    pub spend_flush_ms: u64,
}

/// What limited requests get while Redis is unreachable.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RedisFailureMode {
    /// Fall back to per-replica local limits (limit / `replicas`).
    #[default]
    Open,
    /// Refuse requests that have limits or a budget with 503.
    Closed,
}

/// Redis Sentinel.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisSentinelConfig {
    /// The monitored master's name.
    pub master_name: String,
    /// Sentinel addresses, `redis://host:26379`.
    pub nodes: Vec<String>,
    /// Password of the Sentinels themselves, if they require one.
    #[serde(default)]
    pub sentinel_password: Option<String>,
}

/// Redis Cluster.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisClusterConfig {
    /// Seed nodes, `redis://host:6379`; the rest of the cluster is discovered.
    pub nodes: Vec<String>,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
fn default_max_body() -> usize {
    32 << 20
}
fn default_grace() -> u64 {
    30
}
fn yes() -> bool {
    true
}
fn dash() -> String {
    "-".into()
}
fn default_connect() -> u64 {
    2_000
}
fn default_first_byte() -> u64 {
    60_000
}
fn default_total() -> u64 {
    600_000
}
fn default_failures() -> u32 {
    3
}
fn default_cooldown_secs() -> u64 {
    30
}
fn default_tenant() -> String {
    "default".into()
}
fn all_models() -> Vec<String> {
    vec!["*".into()]
}
fn one() -> u32 {
    1
}
fn default_max_tokens() -> u64 {
    1024
}
fn default_spend_flush() -> u64 {
    1000
}
fn default_redis_prefix() -> String {
    "datamind:".into()
}
fn default_redis_connect() -> u64 {
    1_000
}
fn default_redis_command() -> u64 {
    250
}
fn default_redis_backoff() -> u64 {
    5_000
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: dash(),
        }
    }
}
impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: default_connect(),
            first_byte_ms: default_first_byte(),
            total_ms: default_total(),
        }
    }
}
impl Default for CooldownConfig {
    fn default() -> Self {
        Self {
            failures: default_failures(),
            seconds: default_cooldown_secs(),
        }
    }
}
impl Default for AuthConfig {
    fn default() -> Self {
        // Secure by default: no `auth` section still means keys are required.
        Self {
            enabled: true,
            keys: Vec::new(),
            jwt: super::JwtConfig::default(),
        }
    }
}
impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            on_redis_failure: RedisFailureMode::default(),
            replicas: 1,
            default_max_tokens: default_max_tokens(),
            spend_flush_ms: default_spend_flush(),
        }
    }
}
