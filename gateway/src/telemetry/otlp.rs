//! OTLP export of request spans, off the hot path.
//!
//! ```text
//! request: finish ─▶ protobuf bytes ──try_send──▶ bounded queue ──▶ "otlp-export" thread
//!   (spans encoded once, straight     (full: dropped,              (own tokio runtime):
//!    from the request's facts)         counted)                      appends to a batch,
//!                                                                    frames it with the
//!                                                                    resource and scope,
//!                                                                    POSTs it (HTTP) or
//!                                                                    sends it (gRPC)
//! ```
//! A request never waits on the collector: it hands its encoded spans to a bounded
//! channel and moves on. The exporter thread wakes on a timer (no per-request wake-up),
//! exports a batch at a time with a deadline, and counts what it could not deliver in
//! `datamind_telemetry_dropped_total{signal="spans",reason}` (`queue_full`,
//! `export_failed`, `export_timeout`); delivered spans in
//! `datamind_telemetry_exported_total{signal="spans"}`.
//!
//! Spans are written as OTLP protobuf by `proto` (no `SpanData`, no conversion to the
//! generated types, no per-attribute allocation) and sent by `transport`; the resource
//! (`service.name`, `service.version`, `OTEL_RESOURCE_ATTRIBUTES`, SDK attributes, as
//! `opentelemetry_sdk` resolves them) and the instrumentation scope are encoded once.
//! Settings come from `telemetry.traces` in the config, then the standard `OTEL_*`
//! variables (endpoint, headers, protocol, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`).

pub(crate) mod proto;
mod transport;

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use datamind_llm::Usage;
use opentelemetry_sdk::Resource;
use prometheus_client::metrics::counter::Counter;

use super::AccessRecord;
use super::metrics::Metrics;
use super::propagation::{accept_tracestate, parse_traceparent};
use super::trace::RequestTrace;
use crate::config::{OtlpProtocol, TelemetryConfig, TracesConfig};
use proto::Writer;
use transport::Transport;

/// How often the exporter thread looks at the queue, at most.
const POLL: Duration = Duration::from_millis(50);

/// Encoded spans of one request: `ScopeSpans.spans` fields, framed.
#[derive(Debug)]
pub struct EncodedSpans {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// How many spans they hold.
    pub count: u32,
}

/// The running trace pipeline (exists only when tracing is on).
#[derive(Debug)]
pub struct Traces {
    tx: SyncSender<EncodedSpans>,
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
        let spans = trace.finish(rec, usage, overhead_ms);
        let n = u64::from(spans.count);
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
    rx: Receiver<EncodedSpans>,
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
        let mut transport = match Transport::build(&settings, |k| std::env::var(k).ok()) {
            Ok(t) => t,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let frame = BatchFrame::new(&settings);
        let _ = ready.send(Ok(()));
        export_loop(&mut transport, &frame, &rx, &cfg).await;
    });
}

/// The parts of every export request that do not change: the resource and the scope,
/// encoded once.
struct BatchFrame {
    /// `ResourceSpans.resource`, framed.
    resource: Vec<u8>,
    /// `ScopeSpans.scope`, framed.
    scope: Vec<u8>,
}

// === impl BatchFrame ===

impl BatchFrame {
    fn new(settings: &ExportSettings) -> Self {
        // The SDK's resource: its detectors read OTEL_RESOURCE_ATTRIBUTES and add the
        // telemetry.sdk.* attributes; the service name and version are ours.
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
        let mut r = Vec::new();
        Writer::new(&mut r).message(proto::RESOURCE_SPANS_RESOURCE, |w| {
            for (k, v) in resource.iter() {
                w.attr_value(proto::RESOURCE_ATTRIBUTES, k.as_str(), v);
            }
        });
        let mut scope = Vec::new();
        Writer::new(&mut scope).message(proto::SCOPE_SPANS_SCOPE, |w| {
            w.bytes(proto::SCOPE_NAME, b"datamind-gateway");
            w.bytes(proto::SCOPE_VERSION, env!("CARGO_PKG_VERSION").as_bytes());
        });
        Self { resource: r, scope }
    }

    /// One `ExportTraceServiceRequest` around `spans` (framed `Span` fields).
    fn request(&self, spans: &[u8]) -> Bytes {
        let scope_spans = self.scope.len() + spans.len();
        let resource_spans = self.resource.len()
            + proto::len_field_len(proto::RESOURCE_SPANS_SCOPE_SPANS, scope_spans);
        let mut out = Vec::with_capacity(proto::len_field_len(
            proto::REQUEST_RESOURCE_SPANS,
            resource_spans,
        ));
        let mut w = Writer::new(&mut out);
        w.len_header(proto::REQUEST_RESOURCE_SPANS, resource_spans);
        w.raw(&self.resource);
        w.len_header(proto::RESOURCE_SPANS_SCOPE_SPANS, scope_spans);
        w.raw(&self.scope);
        w.raw(spans);
        Bytes::from(out)
    }
}

/// Spans waiting to be exported.
struct Batch {
    bytes: Vec<u8>,
    spans: u64,
}

async fn export_loop(
    transport: &mut Transport,
    frame: &BatchFrame,
    rx: &Receiver<EncodedSpans>,
    cfg: &LoopConfig,
) {
    let mut batch = Batch {
        bytes: Vec::new(),
        spans: 0,
    };
    let mut oldest: Option<Instant> = None;
    let mut failing = false;
    loop {
        tokio::time::sleep(POLL.min(cfg.delay)).await;
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(spans) => {
                    oldest.get_or_insert_with(Instant::now);
                    batch.bytes.extend_from_slice(&spans.bytes);
                    batch.spans += u64::from(spans.count);
                    if batch.spans >= cfg.max_batch as u64 {
                        export(transport, frame, &mut batch, cfg, &mut failing).await;
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
        if batch.spans > 0 && (closed || oldest.is_some_and(|t| t.elapsed() >= cfg.delay)) {
            export(transport, frame, &mut batch, cfg, &mut failing).await;
            oldest = None;
        }
        if closed {
            return;
        }
    }
}

async fn export(
    transport: &mut Transport,
    frame: &BatchFrame,
    batch: &mut Batch,
    cfg: &LoopConfig,
    failing: &mut bool,
) {
    let body = frame.request(&batch.bytes);
    let n = batch.spans;
    batch.bytes.clear();
    batch.spans = 0;
    match tokio::time::timeout(cfg.timeout, transport.send(body)).await {
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
mod tests;
