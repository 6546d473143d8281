//! The immutable snapshot every request reads: config turned into lookup tables.
//!
//! A reload builds a new [`Snapshot`] and swaps it in (`ArcSwap`); requests in flight keep
//! the one they started with. Live deployment health ([`Health`]) is not part of the
//! config, so it is carried over from a registry keyed by deployment id.

pub(crate) mod health;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::fnv::Fnv;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use datamind_llm::ProviderKind;
use parking_lot::Mutex;
use pingora_core::upstreams::peer::{HttpPeer, Peer};

pub use health::Health;

use crate::auth::{JwtAuth, KeyTable};
use crate::config::{BaseUrl, Config, Strategy, Timeouts};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::{DeploymentMetrics, ModelMetrics};

/// Everything a request needs to be decided.
#[derive(Debug)]
pub struct Snapshot {
    /// The config it was built from.
    pub config: Config,
    /// API keys by hash, and the tenants.
    pub keys: KeyTable,
    /// JWT issuers and the verified-token cache.
    pub jwt: JwtAuth,
    /// Model groups by client-facing name.
    pub groups: HashMap<String, Arc<ModelGroup>, BuildHasherDefault<Fnv>>,
    /// Group names in config order (for `/v1/models`).
    pub group_order: Vec<String>,
    /// The compiled placement policy.
    pub conductor: crate::conductor::Conductor,
}

/// A client-facing model name and its deployments.
#[derive(Debug)]
pub struct ModelGroup {
    /// Client-facing name. Shared: each request's access-log record holds it.
    pub name: Arc<str>,
    /// Load-balancing strategy.
    pub strategy: Strategy,
    /// Where it is served.
    pub deployments: Vec<Arc<Deployment>>,
    /// Groups tried next, in order.
    pub fallbacks: Vec<String>,
    /// Round-robin cursor.
    pub cursor: AtomicU64,
    /// Its metric handles.
    pub metrics: ModelMetrics,
}

/// One (provider, upstream model) pair.
#[derive(Debug)]
pub struct Deployment {
    /// `provider/model`: labels, headers, logs. Shared: each request's outcome holds it.
    pub id: Arc<str>,
    /// Its provider.
    pub provider: Arc<Provider>,
    /// The model name the provider knows.
    pub model: String,
    /// Round-robin weight.
    pub weight: u32,
    /// Concurrency cap.
    pub max_in_flight: Option<u32>,
    /// USD per million tokens (`deployments[].price`, else `prices[model]`); `None`: unpriced.
    pub price: Option<crate::pricing::Price>,
    /// Live statistics, shared across reloads.
    pub health: Arc<Health>,
    /// What placement rules see of it (`deployment.*`).
    pub input: datamind_llm::policy::DeploymentInput,
    /// The snapshot's rules bound to it (what its fixed fields decide, decided once).
    pub bound: crate::conductor::Bound,
    /// Its attempt counters.
    pub metrics: DeploymentMetrics,
    /// The fixed attributes of its attempt spans, OTLP-encoded once.
    pub span_attributes: Box<[u8]>,
    /// Its `x-datamind-route` value when no placement rule chose it
    /// (`rule=default; deployment=<id>`), built once instead of per answer.
    pub default_route: Box<str>,
}

/// A configured provider, ready to connect to. Its `Debug` leaves the credentials out.
pub struct Provider {
    /// Name from the config.
    pub name: String,
    /// API family.
    pub kind: ProviderKind,
    /// Parsed base URL (`None` for `mock`).
    pub base: Option<BaseUrl>,
    /// `Host` header value.
    pub host_header: String,
    /// Credential.
    pub api_key: Option<String>,
    /// `Bearer {api_key}`, built once here so adapters that send the key as a bearer token
    /// (OpenAI-compatible ones) need not build it per request.
    pub api_key_bearer: Option<String>,
    /// `api-version` / `anthropic-version`.
    pub api_version: Option<String>,
    /// OAuth2 / Entra ID bearer token.
    pub bearer_token: Option<String>,
    /// AWS region.
    pub region: Option<String>,
    /// AWS credentials: access key, secret, session token.
    pub aws: Option<(String, String, Option<String>)>,
    /// `vertex` with a service account: its token cache.
    pub vertex_token: Option<crate::engine::vertex_token::VertexToken>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Effective timeouts.
    pub timeouts: Timeouts,
    /// The peer to connect to; `None` when the host did not resolve (attempts then fail
    /// as connect errors, and the next reload tries again).
    pub peer: Option<Arc<HttpPeer>>,
    /// The peer's connection-pool key (Pingora's `reuse_hash`), computed once.
    pub pool_key: u64,
    /// `mock`: delay before the first token.
    pub mock_latency: Duration,
    /// `mock`: delay between chunks.
    pub mock_chunk_delay: Duration,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: bool| if o { "<set>" } else { "<none>" };
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("host_header", &self.host_header)
            .field("api_key", &set(self.api_key.is_some()))
            .field("bearer_token", &set(self.bearer_token.is_some()))
            .field("aws", &set(self.aws.is_some()))
            .field("region", &self.region)
            .field("headers", &self.headers.len())
            .field("timeouts", &self.timeouts)
            .field("pool_key", &self.pool_key)
            .finish_non_exhaustive()
    }
}

/// Live health per deployment id, kept across reloads.
#[derive(Debug, Default)]
pub struct HealthRegistry(Mutex<HashMap<String, Arc<Health>>>);

impl HealthRegistry {
    fn get(&self, id: &str, metrics: &Metrics) -> Arc<Health> {
        self.0
            .lock()
            .entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(
                    Health::new(metrics.in_flight_gauge(id))
                        .with_queue_gauge(metrics.queue_depth_gauge(id)),
                )
            })
            .clone()
    }
}

impl Snapshot {
    /// Builds a snapshot from a validated config.
    pub fn build(config: Config, registry: &HealthRegistry, metrics: &Metrics) -> Self {
        let providers: HashMap<&str, Arc<Provider>> = config
            .providers
            .iter()
            .map(|p| {
                let base = p.base_url.as_deref().and_then(|u| BaseUrl::parse(u).ok());
                let timeouts = p.timeouts.unwrap_or(config.timeouts);
                let peer = base.as_ref().and_then(|b| make_peer(b, &timeouts, p.http2));
                let pool_key = peer.as_ref().map_or(0, |p| p.reuse_hash());
                let peer = peer.map(Arc::new);
                let provider = Provider {
                    pool_key,
                    name: p.name.clone(),
                    kind: p.kind,
                    host_header: base.as_ref().map(BaseUrl::host_header).unwrap_or_default(),
                    base,
                    api_key: p.api_key.clone(),
                    api_key_bearer: p.api_key.as_ref().map(|k| format!("Bearer {k}")),
                    api_version: p.api_version.clone(),
                    bearer_token: p.bearer_token.clone(),
                    region: p.region.clone(),
                    vertex_token: p.service_account_file.as_deref().and_then(|f| {
                        crate::engine::vertex_token::VertexToken::load(f, &timeouts)
                            .inspect_err(|e| tracing::error!(provider = %p.name, error = %e, "vertex service account"))
                            .ok()
                    }),
                    aws: match (&p.aws_access_key_id, &p.aws_secret_access_key) {
                        (Some(k), Some(s)) => {
                            Some((k.clone(), s.clone(), p.aws_session_token.clone()))
                        }
                        _ => None,
                    },
                    headers: p
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect(),
                    timeouts,
                    peer,
                    mock_latency: Duration::from_millis(p.latency_ms),
                    mock_chunk_delay: Duration::from_millis(p.chunk_delay_ms),
                };
                (p.name.as_str(), Arc::new(provider))
            })
            .collect();
        let conductor = crate::conductor::Conductor::build(&config, metrics);
        let mut groups = HashMap::default();
        for m in &config.models {
            let deployments = m
                .deployments
                .iter()
                .filter_map(|d| {
                    let provider = providers.get(d.provider.as_str())?.clone();
                    let id = format!("{}/{}", d.provider, d.model);
                    let provider_config = config.providers.iter().find(|p| p.name == d.provider)?;
                    let input = crate::conductor::deployment_input(
                        &id,
                        &m.name,
                        provider_config,
                        d,
                        crate::pricing::resolve(&config, d)
                            .map_or((0.0, 0.0, 0.0), |p| (p.input, p.output, p.cached_input)),
                    );
                    Some(Arc::new(Deployment {
                        bound: conductor.bind(&input),
                        input,
                        health: registry.get(&id, metrics),
                        metrics: metrics.for_deployment(&id, provider.kind.as_str(), &d.model),
                        span_attributes: crate::telemetry::trace::deployment_span_attributes(
                            &provider, &d.model, &id,
                        ),
                        default_route: crate::conductor::route_header_value(
                            datamind_llm::policy::DEFAULT_RULE,
                            &id,
                        )
                        .into(),
                        id: id.into(),
                        provider,
                        model: d.model.clone(),
                        weight: d.weight.max(1),
                        max_in_flight: d.max_in_flight,
                        price: crate::pricing::resolve(&config, d),
                    }))
                })
                .collect();
            let group = ModelGroup {
                name: m.name.as_str().into(),
                strategy: m.strategy,
                deployments,
                fallbacks: m.fallbacks.clone(),
                cursor: AtomicU64::new(0),
                metrics: metrics.for_model(&m.name),
            };
            groups.insert(m.name.clone(), Arc::new(group));
        }
        Self {
            conductor,
            keys: KeyTable::from_config(&config.auth, &config.tenants),
            jwt: JwtAuth::from_config(&config.auth.jwt, &metrics.auth),
            group_order: config.models.iter().map(|m| m.name.clone()).collect(),
            groups,
            config,
        }
    }
}

pub(crate) fn make_peer(base: &BaseUrl, t: &Timeouts, http2: bool) -> Option<HttpPeer> {
    let addr = match (base.host.as_str(), base.port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(a)) => a,
        _ => {
            tracing::warn!(host = %base.host, "provider host did not resolve; attempts will fail until a reload");
            return None;
        }
    };
    let mut peer = HttpPeer::new(addr, base.tls, base.host.clone());
    let o = &mut peer.options;
    o.connection_timeout = Some(Duration::from_millis(t.connect_ms));
    o.total_connection_timeout = Some(Duration::from_millis(t.connect_ms));
    o.idle_timeout = Some(Duration::from_secs(60));
    o.tcp_keepalive = None;
    if http2 {
        // TLS: offer h2 and h1 by ALPN; plain TCP: h2c with prior knowledge.
        o.set_http_version(2, if base.tls { 1 } else { 2 });
        o.max_h2_streams = 100;
    } else {
        o.set_http_version(1, 1);
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::telemetry::Metrics;

    #[test]
    fn a_providers_debug_output_leaves_its_credentials_out() {
        let yaml = "server: {listen: '127.0.0.1:1', admin_listen: '127.0.0.1:2'}\n\
            auth: {enabled: false}\n\
            providers:\n\
            - {name: o, kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-very-secret-1}\n\
            - {name: z, kind: azure, base_url: 'http://127.0.0.1:9', bearer_token: entra-secret-2}\n\
            models:\n\
            - {name: m, deployments: [{provider: o, model: x}, {provider: z, model: y}]}\n";
        let cfg = parse_str(yaml, &|_| None).unwrap();
        let s = Snapshot::build(cfg, &HealthRegistry::default(), &Metrics::new());
        let all = format!("{:?}", s.groups["m"].deployments);
        assert!(all.contains("\"o\"") && all.contains("<set>"), "{all}");
        for secret in ["sk-very-secret-1", "entra-secret-2"] {
            assert!(!all.contains(secret), "{all}");
        }
    }
}
