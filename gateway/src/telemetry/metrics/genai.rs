//! The OpenTelemetry GenAI metrics, under the names the standard OTel → Prometheus
//! translation gives them (dots become underscores, the unit `s` becomes `_seconds`):
//!
//! | OTel instrument | Prometheus family | recorded |
//! |---|---|---|
//! | `gen_ai.server.request.duration` | `gen_ai_server_request_duration_seconds` | every LLM request, client side |
//! | `gen_ai.server.time_to_first_token` | `gen_ai_server_time_to_first_token_seconds` | successful streams |
//! | `gen_ai.server.time_per_output_token` | `gen_ai_server_time_per_output_token_seconds` | successful streams with ≥ 2 output tokens |
//! | `gen_ai.client.operation.duration` | `gen_ai_client_operation_duration_seconds` | every upstream attempt |
//! | `gen_ai.client.token.usage` | `gen_ai_client_token_usage` | every answered attempt, input and output |
//!
//! Labels are the OTel attributes translated the same way: `gen_ai_operation_name`,
//! `gen_ai_provider_name`, `gen_ai_request_model`, `gen_ai_token_type`, `error_type`
//! (empty on success). Model labels are configured names only (client-facing model groups
//! and deployments' models), so clients cannot create series. Buckets are the ones the
//! semantic conventions advise. Handles for `chat` are resolved once per config snapshot;
//! other operations and errors are looked up when they happen.

use super::sharded::Histogram;
use datamind_llm::{Operation, Usage};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    gen_ai_operation_name: &'static str,
    gen_ai_provider_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_token_type: &'static str,
}

type H<L> = Family<L, Histogram, fn() -> Histogram>;

/// The GenAI families (registered without the `datamind_` prefix).
#[derive(Debug, Clone)]
pub struct GenAiMetrics {
    server_duration: H<ServerLabels>,
    server_ttft: H<ServerLabels>,
    server_tpot: H<ServerLabels>,
    client_duration: H<ClientLabels>,
    client_tokens: H<TokenLabels>,
}

/// Server-side handles of one client-facing model (`chat`, success).
#[derive(Debug, Clone)]
pub struct GenAiModel {
    families: GenAiMetrics,
    model: String,
    duration: Histogram,
    ttft: Histogram,
    tpot: Histogram,
}

/// Client-side handles of one deployment (`chat`, success).
#[derive(Debug, Clone)]
pub struct GenAiDeployment {
    families: GenAiMetrics,
    provider: &'static str,
    model: String,
    duration: Histogram,
    input: Histogram,
    output: Histogram,
}

/// One finished LLM request, as the server metrics need it.
#[derive(Debug, Clone, Copy)]
pub struct ServerSample {
    /// `gen_ai.operation.name`.
    pub op: &'static str,
    /// Status sent to the client.
    pub status: u16,
    /// Whole request, seconds.
    pub duration_s: f64,
    /// Streamed answer: time to its first byte, seconds.
    pub stream_ttft_s: Option<f64>,
    /// Output tokens.
    pub output_tokens: u64,
}

fn duration_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ])
}
fn ttft_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ])
}
fn tpot_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
    ])
}
fn token_buckets() -> Histogram {
    Histogram::new([
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        4194304.0, 16777216.0, 67108864.0,
    ])
}

/// `gen_ai.operation.name` of a client-facing operation.
pub fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::ChatCompletions => "chat",
        Operation::Completions => "text_completion",
        Operation::Embeddings => "embeddings",
    }
}

/// `error.type` of a status sent to the client (`None` for success).
pub fn error_type(status: u16) -> Option<&'static str> {
    Some(match status {
        0..=399 => return None,
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "request_too_large",
        429 => "rate_limited",
        499 => "cancelled",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "timeout",
        s if s < 500 => "client_error",
        _ => "server_error",
    })
}

// === impl GenAiMetrics ===

impl GenAiMetrics {
    /// Registers the families in `registry` (which must carry no prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            server_duration: Family::new_with_constructor(duration_buckets),
            server_ttft: Family::new_with_constructor(ttft_buckets),
            server_tpot: Family::new_with_constructor(tpot_buckets),
            client_duration: Family::new_with_constructor(duration_buckets),
            client_tokens: Family::new_with_constructor(token_buckets),
        };
        registry.register_with_unit(
            "gen_ai_server_request_duration",
            "GenAI server request duration (gen_ai.server.request.duration)",
            prometheus_client::registry::Unit::Seconds,
            m.server_duration.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "Time to the first token of streamed answers (gen_ai.server.time_to_first_token)",
            prometheus_client::registry::Unit::Seconds,
            m.server_ttft.clone(),
        );
        registry.register_with_unit(
            "gen_ai_server_time_per_output_token",
            "Time per output token after the first, streamed answers (gen_ai.server.time_per_output_token)",
            prometheus_client::registry::Unit::Seconds,
            m.server_tpot.clone(),
        );
        registry.register_with_unit(
            "gen_ai_client_operation_duration",
            "Duration of each upstream attempt (gen_ai.client.operation.duration)",
            prometheus_client::registry::Unit::Seconds,
            m.client_duration.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used per answered upstream call, by gen_ai_token_type (gen_ai.client.token.usage)",
            m.client_tokens.clone(),
        );
        m
    }

    fn server(&self, op: &'static str, model: &str, error: &'static str) -> ServerLabels {
        ServerLabels {
            gen_ai_operation_name: op,
            gen_ai_request_model: model.to_owned(),
            error_type: error,
        }
    }

    /// The `chat` success handles of a client-facing model.
    pub fn for_model(&self, model: &str) -> GenAiModel {
        let l = self.server("chat", model, "");
        GenAiModel {
            families: self.clone(),
            model: model.to_owned(),
            duration: self.server_duration.get_or_create(&l).clone(),
            ttft: self.server_ttft.get_or_create(&l).clone(),
            tpot: self.server_tpot.get_or_create(&l).clone(),
        }
    }

    /// The `chat` success handles of a deployment.
    pub fn for_deployment(&self, provider: &'static str, model: &str) -> GenAiDeployment {
        let tokens = |t: &'static str| {
            self.client_tokens
                .get_or_create(&TokenLabels {
                    gen_ai_operation_name: "chat",
                    gen_ai_provider_name: provider,
                    gen_ai_request_model: model.to_owned(),
                    gen_ai_token_type: t,
                })
                .clone()
        };
        let duration = self
            .client_duration
            .get_or_create(&ClientLabels {
                gen_ai_operation_name: "chat",
                gen_ai_provider_name: provider,
                gen_ai_request_model: model.to_owned(),
                error_type: String::new(),
            })
            .clone();
        GenAiDeployment {
            families: self.clone(),
            provider,
            model: model.to_owned(),
            duration,
            input: tokens("input"),
            output: tokens("output"),
        }
    }
}

// === impl GenAiModel ===

impl GenAiModel {
    /// One finished LLM request of this model.
    pub fn record(&self, s: &ServerSample) {
        let (f, m) = (&self.families, self);
        let err = error_type(s.status);
        let fast = s.op == "chat" && err.is_none();
        // The model's own handles are used in place (no clone: an Arc's count is shared).
        if fast {
            m.duration.observe(s.duration_s);
        } else {
            let l = f.server(s.op, &m.model, err.unwrap_or(""));
            f.server_duration.get_or_create(&l).observe(s.duration_s);
        }
        if err.is_some() {
            return;
        }
        if let Some(ttft) = s.stream_ttft_s {
            let tpot = (s.output_tokens > 1)
                .then(|| (s.duration_s - ttft).max(0.0) / (s.output_tokens - 1) as f64);
            if fast {
                m.ttft.observe(ttft);
                if let Some(v) = tpot {
                    m.tpot.observe(v);
                }
            } else {
                let l = f.server(s.op, &m.model, "");
                f.server_ttft.get_or_create(&l).observe(ttft);
                if let Some(v) = tpot {
                    f.server_tpot.get_or_create(&l).observe(v);
                }
            }
        }
    }
}

// === impl GenAiDeployment ===

impl GenAiDeployment {
    /// One upstream attempt of this deployment: its duration, and its token usage when it
    /// answered. `error`: why it failed (`None` when it answered).
    pub fn record(
        &self,
        op: &'static str,
        duration_s: f64,
        error: Option<&str>,
        usage: Option<&Usage>,
    ) {
        let (f, d) = (&self.families, self);
        if op == "chat" && error.is_none() {
            d.duration.observe(duration_s);
        } else {
            f.client_duration
                .get_or_create(&ClientLabels {
                    gen_ai_operation_name: op,
                    gen_ai_provider_name: d.provider,
                    gen_ai_request_model: d.model.clone(),
                    error_type: error.unwrap_or("").to_owned(),
                })
                .observe(duration_s);
        }
        let Some(u) = usage else { return };
        if op == "chat" {
            d.input.observe(u.prompt_tokens as f64);
            d.output.observe(u.completion_tokens as f64);
        } else {
            for (t, n) in [("input", u.prompt_tokens), ("output", u.completion_tokens)] {
                if t == "output" && n == 0 {
                    continue; // embeddings produce no output tokens
                }
                f.client_tokens
                    .get_or_create(&TokenLabels {
                        gen_ai_operation_name: op,
                        gen_ai_provider_name: d.provider,
                        gen_ai_request_model: d.model.clone(),
                        gen_ai_token_type: t,
                    })
                    .observe(n as f64);
            }
        }
    }
}
