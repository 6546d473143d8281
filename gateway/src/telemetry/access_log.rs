//! One JSON line per request, written off the hot path.
//!
//! Requests hand a finished [`AccessRecord`] to a bounded channel; a dedicated thread
//! serializes and writes them in batches. When the writer falls behind, lines are dropped
//! and counted rather than slowing requests. Records hold no credentials by construction:
//! there is no field a key could go into.
//!
//! The same thread encodes traced requests' spans (a record carries its request's trace,
//! see `otlp`), so a request's own thread neither writes its line nor encodes its spans.
//! With tracing on and the access log off, the thread runs for the spans alone.

use std::borrow::Cow;
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the writer wakes to write what accumulated (and encode the spans of traced
/// requests) when requests are many: ~200 records a wake-up at 40,000 requests a second, a
/// small burst on a core the workers share. Against 20 ms, side by side
/// (`benches/results/2026-11-26T214822Z.md`): the same throughput, traced p99 at c=32
/// 2.4 → 2.1 ms.
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// The longest sleep, when requests are few: lines still leave within 50 ms.
const FLUSH_MAX: Duration = Duration::from_millis(50);
/// Records a wake-up aims at. Fewer found: the next sleep is longer (up to `FLUSH_MAX`), so
/// a lightly loaded gateway is not woken 200 times a second to write a few lines each (at
/// c=1 those wake-ups were half of the writer's CPU).
const BATCH: usize = 200;

/// The next sleep after a wake-up that found `n` records in `slept`: long enough for about
/// `BATCH` records at the rate just seen, within `FLUSH_EVERY..=FLUSH_MAX`.
fn next_sleep(n: usize, slept: Duration) -> Duration {
    if n == 0 {
        return FLUSH_MAX;
    }
    let per_record = slept / u32::try_from(n).unwrap_or(u32::MAX);
    (per_record * BATCH as u32).clamp(FLUSH_EVERY, FLUSH_MAX)
}

use serde::Serialize;

use super::otlp::SpanSink;
use super::propagation::{SpanHex, TraceHex};
use super::trace::RequestTrace;

/// What one request did. Built on the request path, so its fields avoid copies where they
/// can: the time is formatted by the writer thread, known methods and paths are literals.
#[derive(Debug, Default, Serialize)]
pub struct AccessRecord {
    /// RFC 3339 UTC time the request started.
    pub ts: Timestamp,
    /// `x-request-id`.
    pub request_id: String,
    /// HTTP method.
    pub method: Cow<'static, str>,
    /// Path without query.
    pub path: Cow<'static, str>,
    /// Tenant of the caller, if authenticated (shared with the caller).
    #[serde(serialize_with = "shared")]
    pub tenant: Option<Arc<str>>,
    /// Name of the API key used (never the key; shared with the caller).
    #[serde(serialize_with = "shared")]
    pub key_name: Option<Arc<str>>,
    /// Client-facing model.
    #[serde(serialize_with = "shared")]
    pub model: Option<Arc<str>>,
    /// Deployment that served it (shared with the snapshot).
    #[serde(serialize_with = "shared")]
    pub deployment: Option<Arc<str>>,
    /// Conductor rule that placed it.
    pub rule: Option<String>,
    /// Cloud of the deployment that served it.
    pub cloud: Option<String>,
    /// Region of the deployment that served it.
    pub region: Option<String>,
    /// Tags added by placement rules.
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    /// Status sent to the client.
    pub status: u16,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Streamed response.
    pub stream: bool,
    /// Whole request, ms.
    pub duration_ms: f64,
    /// Time to the first response byte to the client, ms.
    pub ttfb_ms: Option<f64>,
    /// Time spent waiting on upstreams, ms.
    pub upstream_ms: f64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Request body bytes.
    pub request_bytes: usize,
    /// Why it failed, if it did (no secrets).
    pub error: Option<String>,
    /// Response cache: `hit`, `miss` or `bypass` (absent when the cache is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// W3C trace id of the request's trace (when traced or the client sent `traceparent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<TraceHex>,
    /// The tenant may be a metric label (configured, not just claimed by a JWT).
    #[serde(skip)]
    pub tenant_is_label: bool,
    /// `gen_ai.operation.name` of an LLM request (metrics only; not logged).
    #[serde(skip)]
    pub operation: Option<&'static str>,
    /// The gateway's server span id (when traced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<SpanHex>,
    /// The request's finished trace, for the writer thread to encode (not logged).
    #[serde(skip)]
    pub trace: Option<Box<RequestTrace>>,
}

/// A shared string as serde writes a `String` (without serde's `rc` feature, which would
/// rebuild every crate that uses serde).
fn shared<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    v.as_deref().serialize(s)
}

/// A Unix time in ms, logged as RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn rfc3339(self) -> [u8; 24] {
        rfc3339_ms_bytes(self.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.rfc3339()).unwrap_or_default())
    }
}

/// The access-log writer's handle.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<Box<AccessRecord>>>,
    /// Lines are written (else the thread runs for spans only).
    writes: bool,
    /// Where the thread leaves spans, once tracing is attached.
    spans: Arc<OnceLock<SpanSink>>,
}

impl AccessLog {
    /// No thread: no lines, and spans are encoded by the requests themselves.
    pub fn disabled() -> Self {
        Self {
            tx: None,
            writes: false,
            spans: Arc::default(),
        }
    }

    /// Starts the writer thread, writing lines to `path` (`-` = stdout), or none when
    /// `path` is `None` (the thread then only encodes spans).
    pub fn start(path: Option<&str>) -> std::io::Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match path {
            None => None,
            Some("-") => Some(Box::new(std::io::stdout())),
            Some(path) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
        };
        let writes = out.is_some();
        let spans: Arc<OnceLock<SpanSink>> = Arc::default();
        // The channel's slots are allocated up front: boxed records keep that at 8 bytes a
        // slot (128 KiB) instead of the record's size (MiBs of idle RSS).
        let (tx, rx) = sync_channel(QUEUE_SLOTS);
        let thread_spans = Arc::clone(&spans);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, out, thread_spans))?;
        Ok(Self {
            tx: Some(tx),
            writes,
            spans,
        })
    }

    /// Hands traced requests' spans to the writer thread; false when there is no thread
    /// (the requests then encode their own).
    pub fn attach_spans(&self, sink: SpanSink) -> bool {
        self.tx.is_some() && self.spans.set(sink).is_ok()
    }

    /// Whether records may carry their trace (see [`AccessLog::attach_spans`]).
    pub fn takes_spans(&self) -> bool {
        self.tx.is_some() && self.spans.get().is_some()
    }

    /// Queues one record; returns false when its line had to be dropped (its spans, if it
    /// carried any, are counted as dropped). Boxed by the caller: a request builds its
    /// record in the box it is sent in, so the record is neither part of the request's
    /// future nor copied into a box at the end.
    pub fn log(&self, record: Box<AccessRecord>) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        match tx.try_send(record) {
            Ok(()) => true,
            Err(TrySendError::Full(r)) | Err(TrySendError::Disconnected(r)) => {
                if let (Some(t), Some(sink)) = (&r.trace, self.spans.get()) {
                    sink.dropped(t);
                }
                !self.writes
            }
        }
    }
}

/// Records that may wait for the writer (which drains every `FLUSH_EVERY` under load):
/// ~0.4 s at 40,000 requests a second, eighty drains. A full queue holds ~10 MiB of records (they are
/// a few hundred bytes each), so the bound is on memory too; past it lines are dropped and
/// counted (`datamind_access_log_dropped_total`).
const QUEUE_SLOTS: usize = 16_384;

fn write_loop(
    rx: Receiver<Box<AccessRecord>>,
    out: Option<Box<dyn Write + Send>>,
    spans: Arc<OnceLock<SpanSink>>,
) {
    // Poll on a timer instead of blocking in `recv`: a blocked receiver must be woken by
    // every sender (a futex call and a context switch per request); a sleeping one costs
    // nothing on the request path. Lines (and spans) leave within FLUSH_MAX.
    let mut out = out.map(|o| std::io::BufWriter::with_capacity(64 * 1024, o));
    let mut line = Vec::with_capacity(1024);
    let mut sleep = FLUSH_EVERY;
    loop {
        std::thread::sleep(sleep);
        let mut wrote = false;
        let mut n = 0;
        loop {
            match rx.try_recv() {
                Ok(mut r) => {
                    n += 1;
                    if let Some(mut t) = r.trace.take()
                        && let Some(sink) = spans.get()
                    {
                        sink.submit(&mut t, &r);
                    }
                    if let Some(out) = out.as_mut() {
                        line.clear();
                        super::access_json::write(&r, &mut line);
                        line.push(b'\n');
                        let _ = out.write_all(&line);
                        wrote = true;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if let Some(out) = out.as_mut() {
                        let _ = out.flush();
                    }
                    return;
                }
            }
        }
        if wrote && let Some(out) = out.as_mut() {
            let _ = out.flush();
        }
        sleep = next_sleep(n, sleep);
    }
}

/// Formats a Unix time in ms as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(unix_ms: u64) -> String {
    String::from_utf8_lossy(&rfc3339_ms_bytes(unix_ms)).into_owned()
}

/// [`rfc3339_ms`] without the allocation: the 24 ASCII bytes.
fn rfc3339_ms_bytes(unix_ms: u64) -> [u8; 24] {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::clock::civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (at, width, v) in [
        (0, 4, y.min(9999)),
        (5, 2, m),
        (8, 2, d),
        (11, 2, rem / 3600),
        (14, 2, rem % 3600 / 60),
        (17, 2, rem % 60),
        (20, 3, unix_ms % 1000),
    ] {
        crate::clock::put_digits(&mut out, at, width, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_sleeps_longer_when_requests_are_few() {
        let five = FLUSH_EVERY;
        // 40,000 a second: 200 in 5 ms, the shortest sleep.
        assert_eq!(next_sleep(200, five), FLUSH_EVERY);
        assert_eq!(next_sleep(5_000, five), FLUSH_EVERY);
        // 10,000 a second (50 in 5 ms): 20 ms for the next 200.
        assert_eq!(next_sleep(50, five), Duration::from_millis(20));
        // A few, or none: the longest sleep.
        assert_eq!(next_sleep(1, five), FLUSH_MAX);
        assert_eq!(next_sleep(0, FLUSH_MAX), FLUSH_MAX);
        // Load returns: back to the shortest within one wake-up.
        assert_eq!(next_sleep(2_000, FLUSH_MAX), FLUSH_EVERY);
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_657_200_123), "2026-11-26T01:40:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339_ms(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            serde_json::to_string(&Timestamp(1_795_657_200_123)).unwrap(),
            "\"2026-11-26T01:40:00.123Z\""
        );
    }
}
