//! Prometheus metrics, served on the admin listener at `/metrics`.
//!
//! Names follow the OpenTelemetry GenAI conventions where one exists, under a
//! `datamind_` prefix. Label values are model names, deployment ids, statuses and
//! outcomes: never keys, tenants' secrets or prompt content.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::fnv::Fnv;

pub mod genai;
pub mod route;
pub mod sharded;

pub use sharded::{Counter, Gauge, Histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantTokenLabels {
    tenant: String,
    model: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    deployment: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    signal: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Outcome of one upstream attempt, for `datamind_upstream_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Answered; served the client.
    Success = 0,
    /// Failed; another deployment of the same group is tried next.
    Retry,
    /// Failed; the next candidate belongs to a fallback group.
    Fallback,
    /// Failed with nothing left to try.
    Failure,
    /// Not tried: cooling down.
    CooldownSkip,
}

impl AttemptOutcome {
    /// The label value (`success`, `retry`, `fallback`, `failure`, `cooldown_skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retry => "retry",
            Self::Fallback => "fallback",
            Self::Failure => "failure",
            Self::CooldownSkip => "cooldown_skip",
        }
    }
}

/// Metric handles of one client-facing model, resolved once per config snapshot so the
/// request path only touches atomics.
#[derive(Debug, Clone)]
pub struct ModelMetrics {
    ok: Counter,
    duration: Histogram,
    ttft: Histogram,
    tokens_in: Counter,
    tokens_out: Counter,
    /// The GenAI server metrics of this model.
    pub genai: genai::GenAiModel,
    /// `datamind_tenant_tokens_total` of this model, by tenant.
    tenants: TenantTokens,
}

/// Input and output token counters by tenant name.
type ByTenant = HashMap<Box<str>, [Counter; 2], BuildHasherDefault<Fnv>>;

/// A model's per-tenant token counters, resolved on a tenant's first request and then
/// found by an FNV lookup of the tenant name: no label set to build, allocate and
/// SipHash per request. Tenant label values are bounded by the config (unlisted tenants
/// count as `other`), so the table stays small. The table is read through an `ArcSwap`
/// (no lock word or reference count for both worker threads to write per request) and
/// copied to add a tenant.
#[derive(Debug, Clone)]
struct TenantTokens {
    family: Family<TenantTokenLabels, Counter>,
    model: String,
    by_tenant: Arc<ArcSwap<ByTenant>>,
}

// === impl TenantTokens ===

impl TenantTokens {
    /// Adds `input` and `output` tokens to `tenant`'s counters.
    fn add(&self, tenant: &str, input: u64, output: u64) {
        let add = |c: &[Counter; 2]| {
            for (c, n) in c.iter().zip([input, output]) {
                if n > 0 {
                    c.inc_by(n);
                }
            }
        };
        if let Some(c) = self.by_tenant.load().get(tenant) {
            return add(c);
        }
        let resolve = |direction| {
            self.family
                .get_or_create(&TenantTokenLabels {
                    tenant: tenant.to_owned(),
                    model: self.model.clone(),
                    direction,
                })
                .clone()
        };
        let c = [resolve("input"), resolve("output")];
        add(&c);
        self.by_tenant.rcu(|map| {
            let mut map = ByTenant::clone(map);
            map.insert(tenant.into(), c.clone());
            map
        });
    }
}

/// What one finished request reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSample<'a> {
    /// Status sent to the client.
    pub status: u16,
    /// Whole request, seconds.
    pub duration_s: f64,
    /// Time to the first byte to the client, seconds.
    pub ttft_s: Option<f64>,
    /// Time spent in the gateway itself, seconds.
    pub overhead_s: f64,
    /// Input and output tokens.
    pub tokens: (u64, u64),
    /// `gen_ai.operation.name` (`""`: not an LLM operation).
    pub op: &'static str,
    /// The answer was streamed.
    pub stream: bool,
    /// The caller's tenant, for `datamind_tenant_tokens_total`.
    pub tenant: Option<&'a str>,
}

/// Attempt counters of one deployment, indexed by [`AttemptOutcome`].
#[derive(Debug, Clone)]
pub struct DeploymentMetrics {
    attempts: [Counter; 5],
    /// The GenAI client metrics of this deployment.
    pub genai: genai::GenAiDeployment,
}

impl DeploymentMetrics {
    /// Counts one attempt (or skip).
    pub fn record(&self, outcome: AttemptOutcome) {
        self.attempts[outcome as usize].inc();
    }
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    genai_registry: Registry,
    /// The OpenTelemetry GenAI families (`gen_ai_*`, no prefix).
    pub genai: genai::GenAiMetrics,
    requests: Family<RequestLabels, Counter>,
    duration: Family<ModelLabels, Histogram>,
    ttft: Family<ModelLabels, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    tenant_tokens: Family<TenantTokenLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    in_flight: Family<DeploymentLabels, Gauge>,
    queue_depth: Family<DeploymentLabels, Gauge>,
    overhead: Histogram,
    reloads: Family<ResultLabels, Counter>,
    requests_in_flight: Gauge,
    access_log_dropped: Counter,
    /// The response cache's metrics (`datamind_cache_*`).
    pub cache: crate::cache::CacheMetrics,
    /// Conductor's decision and shadow metrics.
    pub route: route::RouteMetrics,
    /// Authentication and JWKS metrics (`datamind_auth_*`, `datamind_jwks_*`).
    pub auth: crate::auth::AuthMetrics,
    telemetry_dropped: Family<DropLabels, Counter>,
    telemetry_exported: Family<SignalLabels, Counter>,
    /// Rate limits, budgets and spend (`telemetry/limits.rs`).
    pub limits: super::limits::LimitMetrics,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ]
    .into_iter()
}

fn overhead_buckets() -> impl Iterator<Item = f64> {
    [
        0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("datamind");
        let mut genai_registry = Registry::default();
        let genai = genai::GenAiMetrics::register(&mut genai_registry);
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<ModelLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(latency_buckets())) as fn() -> Histogram,
        );
        let ttft = Family::<ModelLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(latency_buckets())) as fn() -> Histogram,
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        let tenant_tokens = Family::<TenantTokenLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let in_flight = Family::<DeploymentLabels, Gauge>::default();
        let queue_depth = Family::<DeploymentLabels, Gauge>::default();
        let overhead = Histogram::new(overhead_buckets());
        let reloads = Family::<ResultLabels, Counter>::default();
        let requests_in_flight = Gauge::default();
        let access_log_dropped = Counter::default();
        let telemetry_dropped = Family::<DropLabels, Counter>::default();
        let telemetry_exported = Family::<SignalLabels, Counter>::default();
        registry.register(
            "requests",
            "API requests by client-facing model and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole-request duration",
            duration.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time from request start to the first response byte sent to the client",
            ttft.clone(),
        );
        registry.register(
            "tokens",
            "Tokens by model and direction (input, output)",
            tokens.clone(),
        );
        registry.register(
            "tenant_tokens",
            "Tokens by tenant, model and direction (input, output)",
            tenant_tokens.clone(),
        );
        registry.register(
            "upstream_attempts",
            "Upstream attempts by deployment and outcome",
            attempts.clone(),
        );
        registry.register(
            "deployment_in_flight",
            "Requests in flight per deployment",
            in_flight.clone(),
        );
        registry.register(
            "deployment_queue_depth",
            "Attempts sent to each deployment still waiting for its response header (the upstream's queue as the gateway sees it; KEDA scales on it)",
            queue_depth.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself (request duration minus upstream time)",
            overhead.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reloads by result",
            reloads.clone(),
        );
        registry.register(
            "requests_in_flight",
            "API requests being served",
            requests_in_flight.clone(),
        );
        registry.register(
            "access_log_dropped",
            "Access-log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let cache = crate::cache::CacheMetrics::register(&mut registry);
        let route = route::RouteMetrics::register(&mut registry);
        let auth = crate::auth::AuthMetrics::register(&mut registry);
        registry.register(
            "telemetry_dropped",
            "Telemetry items dropped by signal (spans, access_log) and reason (queue_full, export_failed, export_timeout)",
            telemetry_dropped.clone(),
        );
        registry.register(
            "telemetry_exported",
            "Telemetry items delivered to their collector, by signal",
            telemetry_exported.clone(),
        );
        // Series that exist before their first event, so dashboards and alerts see 0.
        for result in ["success", "failure"] {
            let _ = reloads.get_or_create(&ResultLabels { result });
        }
        let _ = telemetry_dropped.get_or_create(&DropLabels {
            signal: "access_log",
            reason: "queue_full",
        });
        let limits = super::limits::LimitMetrics::register(&mut registry);
        Self {
            route,
            auth,
            registry,
            genai_registry,
            genai,
            cache,
            limits,
            requests,
            duration,
            ttft,
            tokens,
            tenant_tokens,
            attempts,
            in_flight,
            queue_depth,
            overhead,
            reloads,
            requests_in_flight,
            access_log_dropped,
            telemetry_dropped,
            telemetry_exported,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let ok = encode_registry(&mut out, &self.registry).is_ok()
            && encode_registry(&mut out, &self.genai_registry).is_ok()
            && encode_eof(&mut out).is_ok();
        if !ok {
            out.clear();
        }
        out
    }

    /// The in-flight gauge of one deployment.
    pub fn in_flight_gauge(&self, deployment: &str) -> Gauge {
        self.in_flight
            .get_or_create(&DeploymentLabels {
                deployment: deployment.to_owned(),
            })
            .clone()
    }

    /// The queue-depth gauge of one deployment.
    pub fn queue_depth_gauge(&self, deployment: &str) -> Gauge {
        self.queue_depth
            .get_or_create(&DeploymentLabels {
                deployment: deployment.to_owned(),
            })
            .clone()
    }

    /// Gauge of API requests being served.
    pub fn requests_in_flight(&self) -> &Gauge {
        &self.requests_in_flight
    }

    /// Resolves the handles of one client-facing model.
    pub fn for_model(&self, model: &str) -> ModelMetrics {
        // One statement per handle: `get_or_create` returns a read guard on its family, and
        // a second lookup on the same family while it is alive would deadlock.
        let m = ModelLabels {
            model: model.to_owned(),
        };
        let ok = self
            .requests
            .get_or_create(&RequestLabels {
                model: model.to_owned(),
                status: 200,
            })
            .clone();
        let duration = self.duration.get_or_create(&m).clone();
        let ttft = self.ttft.get_or_create(&m).clone();
        let tokens_in = self
            .tokens
            .get_or_create(&TokenLabels {
                model: model.to_owned(),
                direction: "input",
            })
            .clone();
        let tokens_out = self
            .tokens
            .get_or_create(&TokenLabels {
                model: model.to_owned(),
                direction: "output",
            })
            .clone();
        ModelMetrics {
            ok,
            duration,
            ttft,
            tokens_in,
            tokens_out,
            genai: self.genai.for_model(model),
            tenants: TenantTokens {
                family: self.tenant_tokens.clone(),
                model: model.to_owned(),
                by_tenant: Arc::default(),
            },
        }
    }

    /// Resolves the attempt counters of one deployment of `provider` (`gen_ai.provider.name`)
    /// serving `model`.
    pub fn for_deployment(
        &self,
        deployment: &str,
        provider: &'static str,
        model: &str,
    ) -> DeploymentMetrics {
        let c = |outcome: AttemptOutcome| -> Counter {
            self.attempts
                .get_or_create(&AttemptLabels {
                    deployment: deployment.to_owned(),
                    outcome: outcome.as_str(),
                })
                .clone()
        };
        DeploymentMetrics {
            attempts: [
                c(AttemptOutcome::Success),
                c(AttemptOutcome::Retry),
                c(AttemptOutcome::Fallback),
                c(AttemptOutcome::Failure),
                c(AttemptOutcome::CooldownSkip),
            ],
            genai: self.genai.for_deployment(provider, model),
        }
    }

    /// One finished request of a known model, through its pre-resolved handles.
    pub fn record_model_request(&self, m: &ModelMetrics, model: &str, r: &RequestSample<'_>) {
        let RequestSample {
            status,
            duration_s,
            ttft_s,
            overhead_s,
            tokens,
            op,
            stream,
            tenant,
        } = *r;
        if let Some(t) = tenant
            && tokens.0 + tokens.1 > 0
        {
            m.tenants.add(t, tokens.0, tokens.1);
        }
        if !op.is_empty() {
            m.genai.record(&genai::ServerSample {
                op,
                status,
                duration_s,
                stream_ttft_s: ttft_s.filter(|_| stream && status < 400),
                output_tokens: tokens.1,
            });
        }
        if status == 200 {
            m.ok.inc();
        } else {
            self.requests
                .get_or_create(&RequestLabels {
                    model: model.to_owned(),
                    status,
                })
                .inc();
        }
        m.duration.observe(duration_s);
        if let Some(t) = ttft_s {
            m.ttft.observe(t);
        }
        if tokens.0 > 0 {
            m.tokens_in.inc_by(tokens.0);
        }
        if tokens.1 > 0 {
            m.tokens_out.inc_by(tokens.1);
        }
        self.overhead.observe(overhead_s.max(0.0));
    }

    /// One finished request that matched no model (label `model=""`, so client-chosen names
    /// cannot inflate the series count).
    pub fn record_unmatched_request(&self, status: u16, duration_s: f64, overhead_s: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                model: String::new(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&ModelLabels {
                model: String::new(),
            })
            .observe(duration_s);
        self.overhead.observe(overhead_s.max(0.0));
    }

    /// One config reload.
    pub fn record_reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// An access-log line was dropped.
    pub fn record_access_log_drop(&self) {
        self.access_log_dropped.inc();
        self.telemetry_dropped
            .get_or_create(&DropLabels {
                signal: "access_log",
                reason: "queue_full",
            })
            .inc();
    }

    /// The counter of `signal` items dropped for `reason` (registered at once, so the
    /// series shows 0 before the first drop).
    pub fn telemetry_dropped(&self, signal: &'static str, reason: &'static str) -> Counter {
        self.telemetry_dropped
            .get_or_create(&DropLabels { signal, reason })
            .clone()
    }

    /// The counter of `signal` items delivered.
    pub fn telemetry_exported(&self, signal: &'static str) -> Counter {
        self.telemetry_exported
            .get_or_create(&SignalLabels { signal })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_names() {
        let m = Metrics::new();
        let gpt = m.for_model("gpt");
        let sample = RequestSample {
            status: 200,
            duration_s: 0.01,
            ttft_s: Some(0.005),
            overhead_s: 0.0001,
            tokens: (10, 3),
            op: "chat",
            stream: true,
            tenant: Some("team-a"),
        };
        m.record_model_request(&gpt, "gpt", &sample);
        let d = m.for_deployment("p/m", "openai", "m");
        d.genai.record(
            "chat",
            0.02,
            None,
            Some(&datamind_llm::Usage {
                prompt_tokens: 10,
                completion_tokens: 3,
                ..Default::default()
            }),
        );
        d.genai.record("chat", 0.5, Some("503"), None);
        let _q = m.queue_depth_gauge("p/m");
        m.for_deployment("mock/m", "openai", "m")
            .record(AttemptOutcome::Success);
        m.record_unmatched_request(404, 0.001, 0.001);
        m.record_reload(false);
        let _g = m.in_flight_gauge("mock/m");
        let text = m.render();
        for needle in [
            "datamind_requests_total{model=\"gpt\",status=\"200\"} 1",
            "datamind_request_duration_seconds_bucket",
            "datamind_time_to_first_token_seconds_count{model=\"gpt\"} 1",
            "datamind_tokens_total{model=\"gpt\",direction=\"output\"} 3",
            "datamind_upstream_attempts_total{deployment=\"mock/m\",outcome=\"success\"} 1",
            "datamind_deployment_in_flight{deployment=\"mock/m\"} 0",
            "datamind_gateway_overhead_seconds_count 2",
            "datamind_config_reloads_total{result=\"failure\"} 1",
            "datamind_requests_total{model=\"\",status=\"404\"} 1",
            "gen_ai_server_request_duration_seconds_count{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"gpt\",error_type=\"\"} 1",
            "gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"gpt\",error_type=\"\"} 1",
            "gen_ai_server_time_per_output_token_seconds_sum{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"gpt\",error_type=\"\"} 0.0025",
            "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m\",error_type=\"503\"} 1",
            "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m\",gen_ai_token_type=\"input\"} 10.0",
            "datamind_deployment_queue_depth{deployment=\"p/m\"} 0",
            "datamind_tenant_tokens_total{tenant=\"team-a\",model=\"gpt\",direction=\"output\"} 3",
            "# TYPE gen_ai_client_token_usage histogram",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
