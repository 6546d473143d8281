//! The "otlp-export" thread: on a timer, takes the batches the spool has ready, frames
//! each as an `ExportTraceServiceRequest` in the headroom its buffer kept free, and sends
//! it with a deadline; counts what was delivered and what was lost.
//!
//! The thread never blocks on requests and requests never wake it: it sleeps `POLL` (or
//! the schedule delay when shorter), so at most that long passes between a batch filling
//! up and its export, and a partial batch waits the schedule delay.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use crate::telemetry::metrics::Counter;
use bytes::Bytes;
use opentelemetry_sdk::Resource;

use super::ExportSettings;
use super::proto::{self, Writer};
use super::spool::{Batch, Spool};
use super::transport::Transport;

/// How often the exporter thread looks at the spool, at most.
const POLL: Duration = Duration::from_millis(50);

/// How the loop batches and what it counts.
pub(super) struct LoopConfig {
    pub delay: Duration,
    pub timeout: Duration,
    pub exported: Counter,
    pub failed: Counter,
    pub timed_out: Counter,
}

/// Runs on the exporter thread until the spool is closed; reports on `ready` whether the
/// transport could be built.
pub(super) fn export_thread(
    settings: ExportSettings,
    frame: BatchFrame,
    spool: Arc<Spool>,
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
        let _ = ready.send(Ok(()));
        export_loop(&mut transport, &frame, &spool, &cfg).await;
    });
}

/// The parts of every export request that do not change: the resource and the scope,
/// encoded once.
pub(super) struct BatchFrame {
    /// `ResourceSpans.resource`, framed.
    resource: Vec<u8>,
    /// `ScopeSpans.scope`, framed.
    scope: Vec<u8>,
}

// === impl BatchFrame ===

impl BatchFrame {
    pub(super) fn new(settings: &ExportSettings) -> Self {
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

    /// Room the framing needs in front of a batch's spans: the resource, the scope, and two
    /// field headers (a tag and a length of at most ten bytes each).
    pub(super) fn headroom(&self) -> usize {
        self.resource.len() + self.scope.len() + 2 * (1 + 10)
    }

    /// One `ExportTraceServiceRequest` around the spans after `headroom` bytes of `buf`
    /// (framed `Span` fields): the framing is written into the headroom, nothing is copied.
    pub(super) fn request(&self, mut buf: Vec<u8>, headroom: usize) -> Bytes {
        let spans = buf.len() - headroom;
        let scope_spans = self.scope.len() + spans;
        let resource_spans = self.resource.len()
            + proto::len_field_len(proto::RESOURCE_SPANS_SCOPE_SPANS, scope_spans);
        let mut head = Vec::with_capacity(self.headroom());
        let mut w = Writer::new(&mut head);
        w.len_header(proto::REQUEST_RESOURCE_SPANS, resource_spans);
        w.raw(&self.resource);
        w.len_header(proto::RESOURCE_SPANS_SCOPE_SPANS, scope_spans);
        w.raw(&self.scope);
        let start = headroom - head.len();
        buf[start..headroom].copy_from_slice(&head);
        Bytes::from(buf).slice(start..)
    }
}

async fn export_loop(
    transport: &mut Transport,
    frame: &BatchFrame,
    spool: &Spool,
    cfg: &LoopConfig,
) {
    let mut failing = false;
    loop {
        tokio::time::sleep(POLL.min(cfg.delay)).await;
        let closed = spool.is_closed();
        for batch in spool.take(Instant::now(), cfg.delay, closed) {
            let requests = batch.requests;
            export(transport, frame, spool.headroom(), batch, cfg, &mut failing).await;
            spool.done(requests);
        }
        if closed {
            return;
        }
    }
}

async fn export(
    transport: &mut Transport,
    frame: &BatchFrame,
    headroom: usize,
    batch: Batch,
    cfg: &LoopConfig,
    failing: &mut bool,
) {
    let n = batch.spans;
    let body = frame.request(batch.bytes, headroom);
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
