//! OTLP export of request spans, off the hot path.
//!
//! ```text
//! request ─▶ its trace rides in the access record ─▶ access-log thread: SpanSink::submit
//!   ─▶ spans encoded into the batch buffer (`spool`;  ──▶ "otlp-export" thread (own tokio
//!      full: dropped, counted)                              runtime, `export`): every tick
//!                                                           takes the ready batches, frames
//!                                                           them with the resource and
//!                                                           scope, POSTs (HTTP) or sends
//!                                                           (gRPC) them
//! ```
//! A request never waits on the collector, never wakes the exporter, and does not even
//! encode its spans: the access-log thread (which runs for traces even when no access log
//! is written) appends them to a buffer it reuses. Where no such thread runs (a gateway
//! built without one), `Traces::submit` encodes on the request's thread instead. The exporter thread wakes on a
//! timer, exports a batch at a time with a deadline, and counts what it could not deliver
//! in `datamind_telemetry_dropped_total{signal="spans",reason}` (`queue_full`,
//! `export_failed`, `export_timeout`); delivered spans in
//! `datamind_telemetry_exported_total{signal="spans"}`.
//!
//! Spans are written as OTLP protobuf by `proto` (no `SpanData`, no conversion to the
//! generated types, no per-attribute allocation) and sent by `transport`; the resource
//! (`service.name`, `service.version`, `OTEL_RESOURCE_ATTRIBUTES`, SDK attributes, as
//! `opentelemetry_sdk` resolves them) and the instrumentation scope are encoded once.
//! Settings come from `telemetry.traces` in the config, then the standard `OTEL_*`
//! variables (endpoint, headers, protocol, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`).

mod export;
pub(crate) mod proto;
mod spool;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use crate::telemetry::metrics::Counter;

use super::AccessRecord;
use super::metrics::Metrics;
use super::propagation::{accept_tracestate, parse_traceparent};
use super::trace::RequestTrace;
use crate::config::{OtlpProtocol, TelemetryConfig, TracesConfig};
use export::{BatchFrame, LoopConfig, export_thread};
use spool::Spool;

/// The running trace pipeline (exists only when tracing is on).
#[derive(Debug)]
pub struct Traces {
    spool: Arc<Spool>,
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
        let frame = BatchFrame::new(&settings);
        let spool = Arc::new(Spool::new(t.queue_size, t.max_batch_size, frame.headroom()));
        let (ready_tx, ready_rx) = sync_channel(1);
        let loop_cfg = LoopConfig {
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
        let exporter_spool = Arc::clone(&spool);
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || export_thread(settings, frame, exporter_spool, ready_tx, loop_cfg))
            .map_err(|e| format!("telemetry.traces: cannot start the exporter thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("telemetry.traces: {e}")),
            Err(_) => return Err("telemetry.traces: the exporter thread stopped".into()),
        }
        tracing::info!(exporter = %describe, "exporting traces over OTLP");
        Ok(Some(Self {
            spool,
            sample_ratio: t.sample_ratio,
            content_tenants: t.record_content_tenants.clone(),
            dropped_queue_full: metrics.telemetry_dropped("spans", "queue_full"),
        }))
    }

    /// Whether `tenant` opted in to prompt and completion content on spans.
    pub fn records_content(&self, tenant: &str) -> bool {
        self.content_tenants.iter().any(|t| t == tenant)
    }

    /// Where the access-log thread leaves the spans it encodes.
    pub fn sink(&self) -> SpanSink {
        SpanSink {
            spool: Arc::clone(&self.spool),
            dropped_queue_full: self.dropped_queue_full.clone(),
        }
    }

    /// Encodes a finished request's spans into the exporter's spool on this thread (see
    /// [`SpanSink::submit`]).
    pub fn submit(&self, trace: &mut RequestTrace, rec: &AccessRecord<'_>) {
        submit(&self.spool, &self.dropped_queue_full, trace, rec);
    }

    fn sample(&self, parent_sampled: Option<bool>) -> bool {
        match parent_sampled {
            Some(s) => s,
            None => self.sample_ratio >= 1.0 || fastrand::f64() < self.sample_ratio,
        }
    }
}

/// The spool's entrance for finished requests' spans, held by the access-log thread.
#[derive(Debug, Clone)]
pub struct SpanSink {
    spool: Arc<Spool>,
    dropped_queue_full: Counter,
}

impl SpanSink {
    /// Encodes a finished request's spans into the exporter's spool; drops (and counts)
    /// them when the spool is full. Never blocks on the exporter, never wakes it.
    pub fn submit(&self, trace: &mut RequestTrace, rec: &AccessRecord<'_>) {
        submit(&self.spool, &self.dropped_queue_full, trace, rec);
    }

    /// Counts the spans of a request that could not be handed over.
    pub fn dropped(&self, trace: &RequestTrace) {
        self.dropped_queue_full
            .inc_by(u64::from(trace.span_count()));
    }
}

/// (The trace is encoded where it lies, in its box: not moved out of it.)
fn submit(spool: &Spool, dropped: &Counter, trace: &mut RequestTrace, rec: &AccessRecord<'_>) {
    if !trace.is_recording() {
        return;
    }
    let n = trace.span_count();
    if !spool.push(n, |buf| {
        trace.encode(buf, rec);
    }) {
        dropped.inc_by(u64::from(n));
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        // The exporter sends what is left, then stops.
        self.spool.close();
    }
}

/// The trace context of a new request: recording when tracing is on and the request is
/// sampled; otherwise only passing a client's `traceparent` on; `None` when there is
/// nothing to do.
pub fn begin(
    traces: Option<&Traces>,
    traceparent: Option<&[u8]>,
    tracestate: Option<&[u8]>,
    started: Instant,
) -> Option<Box<RequestTrace>> {
    let parent = traceparent.and_then(parse_traceparent);
    let state = || tracestate.and_then(accept_tracestate);
    match traces {
        Some(t) if t.sample(parent.map(|p| p.sampled)) => {
            Some(Box::new(RequestTrace::recording(parent, state(), started)))
        }
        _ => parent.map(|p| Box::new(RequestTrace::propagate_only(p, state(), started))),
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

#[cfg(test)]
mod tests;
