//! The `telemetry:` block: log level, traces (OTLP) and the overhead header.
//!
//! Every field is optional. Tracing stays off unless `traces.enabled` is true, or it is
//! omitted and one of the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables is set (and `OTEL_SDK_DISABLED` is not
//! `true`). Fields left out fall back to the standard `OTEL_*` variables, then to the
//! OpenTelemetry defaults; see `config/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Problem;

/// `telemetry:`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log filter (`tracing` `EnvFilter` syntax, e.g. `info,datamind_gateway=debug`).
    /// `RUST_LOG` wins when set. Reloadable.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Send `x-datamind-overhead-ms` (time spent in the gateway itself) on every answer.
    #[serde(default)]
    pub overhead_header: bool,
    /// OpenTelemetry traces over OTLP.
    #[serde(default)]
    pub traces: TracesConfig,
}

/// `telemetry.traces:`. Changes need a restart.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// On, off, or (omitted) on exactly when an `OTEL_EXPORTER_OTLP_*ENDPOINT` is set.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `grpc` or `http/protobuf`; default `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`.
    #[serde(default)]
    pub protocol: Option<OtlpProtocol>,
    /// Collector URL. gRPC: `http://host:4317`; HTTP: the full traces URL
    /// (`http://host:4318/v1/traces`). Default: the `OTEL_*` variables.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Extra export headers (e.g. Langfuse's `Authorization: Basic …`), added to
    /// `OTEL_EXPORTER_OTLP_HEADERS`. Values are secrets: never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `service.name`; default `OTEL_SERVICE_NAME`, else `datamind-gateway`.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Share of new traces recorded (0–1). A client's `traceparent` sampled flag wins.
    #[serde(default = "one")]
    pub sample_ratio: f64,
    /// Requests whose spans wait for export; more are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue_size: usize,
    /// Most spans per export call.
    #[serde(default = "default_batch")]
    pub max_batch_size: usize,
    /// How long spans may wait before an export.
    #[serde(default = "default_delay")]
    pub schedule_delay_ms: u64,
    /// One export call's deadline; its spans are dropped and counted after it.
    #[serde(default = "default_export_timeout")]
    pub export_timeout_ms: u64,
    /// Tenants whose prompt and completion content is recorded on spans
    /// (`gen_ai.input.messages`, `gen_ai.output.messages`). Empty: nobody's.
    #[serde(default)]
    pub record_content_tenants: Vec<String>,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (default port 4317).
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318); Langfuse speaks only this.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

fn one() -> f64 {
    1.0
}
fn default_queue() -> usize {
    4096
}
fn default_batch() -> usize {
    512
}
fn default_delay() -> u64 {
    500
}
fn default_export_timeout() -> u64 {
    10_000
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            protocol: None,
            endpoint: None,
            headers: BTreeMap::new(),
            service_name: None,
            sample_ratio: one(),
            queue_size: default_queue(),
            max_batch_size: default_batch(),
            schedule_delay_ms: default_delay(),
            export_timeout_ms: default_export_timeout(),
            record_content_tenants: Vec::new(),
        }
    }
}

// === impl TelemetryConfig ===

impl TelemetryConfig {
    /// Problems with paths under `telemetry.`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut add = |path: &str, message: String| {
            out.push(Problem {
                path: format!("telemetry.{path}"),
                message,
            })
        };
        if let Some(level) = &self.log_level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
        {
            add("log_level", format!("not a log filter: {e}"));
        }
        let t = &self.traces;
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            add("traces.sample_ratio", "must be between 0 and 1".into());
        }
        if t.queue_size == 0 {
            add("traces.queue_size", "must be at least 1".into());
        }
        if t.max_batch_size == 0 {
            add("traces.max_batch_size", "must be at least 1".into());
        }
        if t.export_timeout_ms == 0 {
            add("traces.export_timeout_ms", "must be at least 1".into());
        }
        if let Some(e) = &t.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            add(
                "traces.endpoint",
                format!("\"{e}\" must start with http:// or https://"),
            );
        }
        for k in t.headers.keys() {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                add(
                    &format!("traces.headers.{k}"),
                    "not a valid header name".into(),
                );
            }
        }
        for (k, v) in &t.headers {
            if http::HeaderValue::from_str(v).is_err() {
                // The value is a secret: say which header, never what it holds.
                add(
                    &format!("traces.headers.{k}"),
                    "value is not a valid header value".into(),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_off() {
        let c = TelemetryConfig::default();
        assert!(c.problems().is_empty());
        assert_eq!(c.traces.enabled, None);
        assert!(!c.overhead_header);
    }

    #[test]
    fn reports_each_problem_with_its_path() {
        let mut c = TelemetryConfig {
            log_level: Some("info,[[".into()),
            ..TelemetryConfig::default()
        };
        c.traces.sample_ratio = 2.0;
        c.traces.queue_size = 0;
        c.traces.endpoint = Some("collector:4317".into());
        c.traces
            .headers
            .insert("Authorization".into(), "Basic s3cr3t\n".into());
        let paths: Vec<_> = c.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "telemetry.log_level",
                "telemetry.traces.sample_ratio",
                "telemetry.traces.queue_size",
                "telemetry.traces.endpoint",
                "telemetry.traces.headers.Authorization",
            ]
        );
        let text: String = c.problems().iter().map(|p| p.to_string()).collect();
        assert!(!text.contains("s3cr3t"));
    }
}
