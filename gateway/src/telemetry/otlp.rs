//! OTLP export of request spans, off the hot path.
//!
//! ```text
//! request ──try_send──▶ bounded queue ──▶ "otlp-export" thread (own tokio runtime)
//!   (full: dropped,                         batches by size or age ─▶ opentelemetry-otlp
//!    counted)                               SpanExporter (gRPC or HTTP/protobuf)
//! ```
//! A request never waits on the collector: it hands its finished spans to a bounded
//! channel and moves on. The exporter thread wakes on a timer (no per-request wake-up),
//! exports a batch at a time with a deadline, and counts what it could not deliver in
//! `datamind_telemetry_dropped_total{signal="spans",reason}` (`queue_full`,
//! `export_failed`, `export_timeout`); delivered spans in
//! `datamind_telemetry_exported_total{signal="spans"}`.
//!
//! Settings come from `telemetry.traces` in the config, then the standard `OTEL_*`
//! variables (endpoint, headers, protocol, timeout, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`), which `opentelemetry-otlp` and the SDK read themselves.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use datamind_llm::Usage;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use prometheus_client::metrics::counter::Counter;

use super::AccessRecord;
use super::metrics::Metrics;
use super::propagation::{accept_tracestate, parse_traceparent};
use super::trace::RequestTrace;
use crate::config::{OtlpProtocol, TelemetryConfig, TracesConfig};

/// How often the exporter thread looks at the queue, at most.
const POLL: Duration = Duration::from_millis(50);

/// The running trace pipeline (exists only when tracing is on).
#[derive(Debug)]
pub struct Traces {
    tx: SyncSender<Vec<SpanData>>,
    scope: InstrumentationScope,
    sample_ratio: f64,
    content_tenants: Vec<String>,
    dropped_queue_full: Counter,
}

/// Where and how spans are sent, resolved from the config and the environment.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Explicit endpoint; `None` leaves it to the `OTEL_*` variables and defaults.
    pub endpoint: Option<String>,
    /// Configured headers (secrets: never logged).
    pub headers: HashMap<String, String>,
    /// `service.name` override.
    pub service_name: Option<String>,
    /// One export's deadline.
    pub timeout: Duration,
}

// === impl Traces ===

impl Traces {
    /// Starts the exporter thread when tracing is on for this config and environment;
    /// `Ok(None)` when it is off. Fails when the exporter cannot be built (bad endpoint).
    pub fn start(cfg: &TelemetryConfig, metrics: &Metrics) -> Result<Option<Self>, String> {
        let t = &cfg.traces;
        if !enabled(t, |k| std::env::var(k).ok()) {
            return Ok(None);
        }
        let settings = settings(t, |k| std::env::var(k).ok());
        let (tx, rx) = sync_channel(t.queue_size);
        let (ready_tx, ready_rx) = sync_channel(1);
        let loop_cfg = LoopConfig {
            max_batch: t.max_batch_size,
            delay: Duration::from_millis(t.schedule_delay_ms),
            timeout: Duration::from_millis(t.export_timeout_ms),
            exported: metrics.telemetry_exported("spans"),
            failed: metrics.telemetry_dropped("spans", "export_failed"),
            timed_out: metrics.telemetry_dropped("spans", "export_timeout"),
        };
        let describe = format!(
            "{} {}",
            match settings.protocol {
                OtlpProtocol::Grpc => "grpc",
                OtlpProtocol::HttpProtobuf => "http/protobuf",
            },
            settings
                .endpoint
                .as_deref()
                .unwrap_or("(from OTEL_* variables)")
        );
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || export_thread(settings, rx, ready_tx, loop_cfg))
            .map_err(|e| format!("telemetry.traces: cannot start the exporter thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("telemetry.traces: {e}")),
            Err(_) => return Err("telemetry.traces: the exporter thread stopped".into()),
        }
        tracing::info!(exporter = %describe, "exporting traces over OTLP");
        Ok(Some(Self {
            tx,
            scope: InstrumentationScope::builder("datamind-gateway")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            sample_ratio: t.sample_ratio,
            content_tenants: t.record_content_tenants.clone(),
            dropped_queue_full: metrics.telemetry_dropped("spans", "queue_full"),
        }))
    }

    /// Whether `tenant` opted in to prompt and completion content on spans.
    pub fn records_content(&self, tenant: &str) -> bool {
        self.content_tenants.iter().any(|t| t == tenant)
    }

    /// Hands a finished request's spans to the exporter; drops (and counts) them when the
    /// queue is full. Never blocks.
    pub fn submit(&self, trace: RequestTrace, rec: &AccessRecord, usage: &Usage, overhead_ms: f64) {
        if !trace.is_recording() {
            return;
        }
        let spans = trace.finish(&self.scope, rec, usage, overhead_ms);
        let n = spans.len() as u64;
        match self.tx.try_send(spans) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped_queue_full.inc_by(n);
            }
        }
    }

    fn sample(&self, parent_sampled: Option<bool>) -> bool {
        match parent_sampled {
            Some(s) => s,
            None => self.sample_ratio >= 1.0 || fastrand::f64() < self.sample_ratio,
        }
    }
}

/// The trace context of a new request: recording when tracing is on and the request is
/// sampled; otherwise only passing a client's `traceparent` on; `None` when there is
/// nothing to do.
pub fn begin(
    traces: Option<&Traces>,
    traceparent: Option<&[u8]>,
    tracestate: Option<&[u8]>,
) -> Option<Box<RequestTrace>> {
    let parent = traceparent.and_then(parse_traceparent);
    let state = || tracestate.and_then(accept_tracestate);
    match traces {
        Some(t) if t.sample(parent.map(|p| p.sampled)) => {
            Some(Box::new(RequestTrace::recording(parent, state())))
        }
        _ => parent.map(|p| Box::new(RequestTrace::propagate_only(p, state()))),
    }
}

/// Whether tracing is on: the config's `enabled`, else whether an OTLP endpoint variable
/// is set (and the SDK is not disabled).
pub fn enabled(t: &TracesConfig, env: impl Fn(&str) -> Option<String>) -> bool {
    if let Some(on) = t.enabled {
        return on;
    }
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled && (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// Resolves the export settings: config first, then the standard variables.
pub fn settings(t: &TracesConfig, env: impl Fn(&str) -> Option<String>) -> ExportSettings {
    let protocol = t.protocol.unwrap_or_else(|| {
        match env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .as_deref()
            .map(str::trim)
        {
            Some("grpc") => OtlpProtocol::Grpc,
            // The spec's default; `http/json` is not built in and falls back to protobuf.
            _ => OtlpProtocol::HttpProtobuf,
        }
    });
    ExportSettings {
        protocol,
        endpoint: t.endpoint.clone(),
        headers: t
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        service_name: t
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty()))
            .or_else(|| Some("datamind-gateway".into())),
        timeout: Duration::from_millis(t.export_timeout_ms),
    }
}

fn build_exporter(s: &ExportSettings) -> Result<SpanExporter, String> {
    let built = match s.protocol {
        OtlpProtocol::Grpc => {
            let mut b = SpanExporter::builder().with_tonic().with_timeout(s.timeout);
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e.clone());
            }
            if !s.headers.is_empty() {
                let mut headers = http::HeaderMap::new();
                for (k, v) in &s.headers {
                    let name = http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|_| format!("header name `{k}` is not valid gRPC metadata"))?;
                    let val = http::HeaderValue::from_str(v)
                        .map_err(|_| format!("header `{k}` has an invalid value"))?;
                    headers.insert(name, val);
                }
                let md =
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
                b = b.with_metadata(md);
            }
            b.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let b = SpanExporter::builder().with_http();
            // https (e.g. Langfuse cloud) with the system's roots; plain http otherwise.
            let b = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
                Ok(tls) => {
                    let connector = tls.https_or_http().enable_http1().build();
                    b.with_http_client(opentelemetry_http::hyper::HyperClient::new(
                        connector, s.timeout, None,
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no system CA roots: OTLP over https will fail");
                    b.with_http_client(
                        opentelemetry_http::hyper::HyperClient::with_default_connector(
                            s.timeout, None,
                        ),
                    )
                }
            };
            let mut b = b
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(s.timeout);
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e.clone());
            }
            if !s.headers.is_empty() {
                b = b.with_headers(s.headers.clone());
            }
            b.build()
        }
    };
    built.map_err(|e| format!("cannot build the OTLP exporter: {e}"))
}

struct LoopConfig {
    max_batch: usize,
    delay: Duration,
    timeout: Duration,
    exported: Counter,
    failed: Counter,
    timed_out: Counter,
}

fn export_thread(
    settings: ExportSettings,
    rx: Receiver<Vec<SpanData>>,
    ready: SyncSender<Result<(), String>>,
    cfg: LoopConfig,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("tokio runtime: {e}")));
            return;
        }
    };
    rt.block_on(async move {
        let mut exporter = match build_exporter(&settings) {
            Ok(x) => x,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut resource = Resource::builder();
        if let Some(name) = &settings.service_name {
            resource = resource.with_service_name(name.clone());
        }
        let resource = resource
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        exporter.set_resource(&resource);
        let _ = ready.send(Ok(()));
        export_loop(&exporter, &rx, &cfg).await;
    });
}

async fn export_loop(exporter: &SpanExporter, rx: &Receiver<Vec<SpanData>>, cfg: &LoopConfig) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(cfg.max_batch);
    let mut oldest: Option<Instant> = None;
    let mut failing = false;
    loop {
        tokio::time::sleep(POLL.min(cfg.delay)).await;
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(spans) => {
                    oldest.get_or_insert_with(Instant::now);
                    batch.extend(spans);
                    if batch.len() >= cfg.max_batch {
                        export(exporter, &mut batch, cfg, &mut failing).await;
                        oldest = None;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() && (closed || oldest.is_some_and(|t| t.elapsed() >= cfg.delay)) {
            export(exporter, &mut batch, cfg, &mut failing).await;
            oldest = None;
        }
        if closed {
            return;
        }
    }
}

async fn export(
    exporter: &SpanExporter,
    batch: &mut Vec<SpanData>,
    cfg: &LoopConfig,
    failing: &mut bool,
) {
    let spans = std::mem::replace(batch, Vec::with_capacity(cfg.max_batch));
    let n = spans.len() as u64;
    match tokio::time::timeout(cfg.timeout, exporter.export(spans)).await {
        Ok(Ok(())) => {
            cfg.exported.inc_by(n);
            if *failing {
                tracing::info!("OTLP export recovered");
                *failing = false;
            }
        }
        Ok(Err(e)) => {
            cfg.failed.inc_by(n);
            if !*failing {
                tracing::warn!(error = %e, spans = n, "OTLP export failed; spans dropped until it recovers");
                *failing = true;
            }
        }
        Err(_) => {
            cfg.timed_out.inc_by(n);
            if !*failing {
                tracing::warn!(
                    spans = n,
                    timeout_ms = cfg.timeout.as_millis() as u64,
                    "OTLP export timed out; spans dropped until it recovers"
                );
                *failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn off_unless_configured_or_an_endpoint_variable_is_set() {
        let t = TracesConfig::default();
        assert!(!enabled(&t, env(&[])));
        assert!(enabled(
            &t,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
        ));
        assert!(enabled(
            &t,
            env(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )])
        ));
        assert!(!enabled(
            &t,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])
        ));
        assert!(!enabled(
            &t,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none")
            ])
        ));
        let off = TracesConfig {
            enabled: Some(false),
            ..TracesConfig::default()
        };
        assert!(!enabled(
            &off,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
        ));
        let on = TracesConfig {
            enabled: Some(true),
            ..TracesConfig::default()
        };
        assert!(enabled(&on, env(&[])));
    }

    #[test]
    fn protocol_and_service_name_fall_back_to_the_standard_variables() {
        let t = TracesConfig::default();
        let s = settings(&t, env(&[]));
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(s.service_name.as_deref(), Some("datamind-gateway"));
        let s = settings(
            &t,
            env(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_SERVICE_NAME", "gw-eu"),
            ]),
        );
        assert_eq!(s.protocol, OtlpProtocol::Grpc);
        assert_eq!(s.service_name.as_deref(), Some("gw-eu"));
        let s = settings(
            &t,
            env(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ]),
        );
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        let pinned = TracesConfig {
            protocol: Some(OtlpProtocol::Grpc),
            ..TracesConfig::default()
        };
        assert_eq!(
            settings(
                &pinned,
                env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])
            )
            .protocol,
            OtlpProtocol::Grpc
        );
    }

    #[test]
    fn begin_follows_the_parent_flag_and_passes_context_on_when_off() {
        let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".as_slice();
        assert!(begin(None, None, None).is_none());
        let t = begin(None, Some(tp), Some(b"k=v")).unwrap();
        assert!(!t.is_recording());
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
