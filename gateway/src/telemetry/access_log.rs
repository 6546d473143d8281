//! One JSON line per request, written off the hot path.
//!
//! A request formats its finished [`AccessRecord`] into its worker thread's own buffer (a
//! shard, locked by that thread alone except when the writer swaps it out); a dedicated
//! thread swaps every shard's buffer for an empty one every few milliseconds and writes
//! what it took. Nothing crosses threads per request: no allocation, no channel, no shared
//! reference count. When a shard's buffer is full (the writer fell behind), lines are
//! dropped and counted rather than slowing requests. Records hold no credentials by
//! construction: there is no field a key could go into.
//!
//! Lines of one worker thread leave in order; the threads' batches interleave (as the
//! buffered logs of nginx's worker processes do), so order across threads is by `ts`.
//!
//! Traced requests' spans are encoded by the same thread: a traced record is copied (owned)
//! into a box and sent over a channel with its trace (see `otlp`), so a request's own
//! thread does not encode its spans. With tracing on and the access log off, the thread
//! runs for the spans alone.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

/// How often the writer wakes to write what accumulated (and encode the spans of traced
/// requests) when requests are many: ~200 lines a wake-up at 40,000 requests a second, a
/// small burst on a core the workers share. Against 20 ms, side by side
/// (`benches/results/2026-11-26T214822Z.md`): the same throughput, traced p99 at c=32
/// 2.4 → 2.1 ms.
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// The longest sleep, when requests are few: lines still leave within 50 ms.
const FLUSH_MAX: Duration = Duration::from_millis(50);
/// Lines a wake-up aims at. Fewer found: the next sleep is longer (up to `FLUSH_MAX`), so
/// a lightly loaded gateway is not woken 200 times a second to write a few lines each (at
/// c=1 those wake-ups were half of the writer's CPU).
const BATCH: usize = 200;
/// Most bytes of lines one thread may have waiting for the writer (~10,000 lines, a quarter
/// of a second at 40,000 requests a second); past it lines are dropped and counted
/// (`datamind_access_log_dropped_total`).
const SHARD_MAX: usize = 4 << 20;
/// A buffer that grew past this in a burst is replaced by a fresh one once written, so a
/// burst does not hold its memory for good.
const KEEP_CAPACITY: usize = 256 << 10;

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
/// can: names are borrowed from the snapshot and the request for as long as the request
/// runs (no reference count shared across threads is touched), known methods and paths are
/// literals, the time is a number until the line is formatted.
#[derive(Debug, Default, Serialize)]
pub struct AccessRecord<'a> {
    /// RFC 3339 UTC time the request started.
    pub ts: Timestamp,
    /// `x-request-id`.
    pub request_id: Cow<'a, str>,
    /// HTTP method.
    pub method: Cow<'static, str>,
    /// Path without query.
    pub path: Cow<'static, str>,
    /// Tenant of the caller, if authenticated.
    pub tenant: Option<Cow<'a, str>>,
    /// Name of the API key used (never the key).
    pub key_name: Option<Cow<'a, str>>,
    /// Client-facing model.
    pub model: Option<Cow<'a, str>>,
    /// Deployment that served it.
    pub deployment: Option<Cow<'a, str>>,
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

impl AccessRecord<'_> {
    /// The record with every borrowed name copied: what travels to the writer thread with a
    /// trace. Takes the fields it moves, leaving `self` spent.
    fn take_owned(&mut self) -> AccessRecord<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        AccessRecord {
            ts: self.ts,
            request_id: own(std::mem::take(&mut self.request_id)),
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            tenant: self.tenant.take().map(own),
            key_name: self.key_name.take().map(own),
            model: self.model.take().map(own),
            deployment: self.deployment.take().map(own),
            rule: self.rule.take(),
            cloud: self.cloud.take(),
            region: self.region.take(),
            tags: self.tags.take(),
            status: self.status,
            attempts: self.attempts,
            stream: self.stream,
            duration_ms: self.duration_ms,
            ttfb_ms: self.ttfb_ms,
            upstream_ms: self.upstream_ms,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            request_bytes: self.request_bytes,
            error: self.error.take(),
            cache: self.cache,
            trace_id: self.trace_id.take(),
            tenant_is_label: self.tenant_is_label,
            operation: self.operation,
            span_id: self.span_id.take(),
            trace: self.trace.take(),
        }
    }
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
    /// Traced records for the writer thread; also its stop signal (dropped with the last
    /// handle).
    tx: Option<SyncSender<Box<AccessRecord<'static>>>>,
    /// The threads' line buffers (none when only spans are written).
    lines: Option<Arc<Lines>>,
    /// Where the thread leaves spans, once tracing is attached.
    spans: Arc<OnceLock<SpanSink>>,
}

/// Every thread's buffer of formatted lines for one log.
#[derive(Debug)]
struct Lines {
    /// Tells this log's shards apart from another's in a thread's list (tests run many).
    id: u64,
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// One thread's lines waiting for the writer.
#[derive(Debug, Default)]
struct Shard {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
}

thread_local! {
    /// This thread's shard of each log it wrote to: (log id, shard).
    static SHARDS: RefCell<Vec<(u64, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);

impl Lines {
    /// Formats `r` into this thread's shard; false when the shard is full.
    fn append(&self, r: &AccessRecord<'_>) -> bool {
        let append = |shard: &Shard| {
            let mut p = shard.pending.lock();
            if p.bytes.len() >= SHARD_MAX {
                return false;
            }
            super::access_json::write(r, &mut p.bytes);
            p.bytes.push(b'\n');
            p.lines += 1;
            true
        };
        SHARDS
            .try_with(|mine| {
                let mut mine = mine.borrow_mut();
                if let Some((_, shard)) = mine.iter().find(|(id, _)| *id == self.id) {
                    return append(shard);
                }
                // This thread's first line for this log. Shards of logs gone (only this
                // list holds them) are forgotten.
                mine.retain(|(_, s)| Arc::strong_count(s) > 1);
                let shard = Arc::new(Shard::default());
                self.shards.lock().push(Arc::clone(&shard));
                let ok = append(&shard);
                mine.push((self.id, shard));
                ok
            })
            // A thread being torn down: a shard of its own that the writer still sees.
            .unwrap_or_else(|_| {
                let shard = Arc::new(Shard::default());
                self.shards.lock().push(Arc::clone(&shard));
                append(&shard)
            })
    }

    /// Writes every shard's waiting lines to `out`; returns how many.
    fn drain(&self, out: &mut impl Write, spare: &mut Vec<u8>) -> usize {
        let shards: Vec<Arc<Shard>> = {
            let mut all = self.shards.lock();
            // A thread that ended left its shard here alone: forgotten once written.
            all.retain(|s| Arc::strong_count(s) > 1 || s.pending.lock().lines > 0);
            all.clone()
        };
        let mut n = 0;
        for shard in shards {
            {
                let mut p = shard.pending.lock();
                if p.lines == 0 {
                    continue;
                }
                std::mem::swap(&mut p.bytes, spare);
                n += std::mem::take(&mut p.lines);
            }
            let _ = out.write_all(spare);
            spare.clear();
            if spare.capacity() > KEEP_CAPACITY {
                *spare = Vec::new();
            }
        }
        n
    }
}

impl AccessLog {
    /// No thread: no lines, and spans are encoded by the requests themselves.
    pub fn disabled() -> Self {
        Self {
            tx: None,
            lines: None,
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
        let lines = out.is_some().then(|| {
            Arc::new(Lines {
                id: NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed),
                shards: Mutex::default(),
            })
        });
        let spans: Arc<OnceLock<SpanSink>> = Arc::default();
        // The channel's slots are allocated up front: boxed records keep that at 8 bytes a
        // slot instead of the record's size.
        let (tx, rx) = sync_channel(TRACED_SLOTS);
        let thread_spans = Arc::clone(&spans);
        let thread_lines = lines.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, out, thread_lines, thread_spans))?;
        Ok(Self {
            tx: Some(tx),
            lines,
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

    /// Logs one record: its line into this thread's buffer, and its trace (if it carries
    /// one) to the writer thread. Returns false when the line had to be dropped (a trace
    /// that could not be handed over is counted with the spans).
    pub fn log(&self, record: &mut AccessRecord<'_>) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let logged = self.lines.as_ref().is_none_or(|l| l.append(record));
        if record.trace.is_some() {
            let owned = Box::new(record.take_owned());
            if let Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) = tx.try_send(owned)
                && let (Some(t), Some(sink)) = (&r.trace, self.spans.get())
            {
                sink.dropped(t);
            }
        }
        logged
    }
}

/// Traced records that may wait for the writer: ~0.4 s at 40,000 traced requests a second.
/// Past it their spans are dropped and counted.
const TRACED_SLOTS: usize = 16_384;

fn write_loop(
    rx: Receiver<Box<AccessRecord<'static>>>,
    out: Option<Box<dyn Write + Send>>,
    lines: Option<Arc<Lines>>,
    spans: Arc<OnceLock<SpanSink>>,
) {
    // Poll on a timer instead of blocking: a blocked receiver must be woken by every
    // sender (a futex call and a context switch per request); a sleeping one costs nothing
    // on the request path. Lines (and spans) leave within FLUSH_MAX.
    let mut out = out.map(|o| std::io::BufWriter::with_capacity(64 * 1024, o));
    let mut spare = Vec::new();
    let mut sleep = FLUSH_EVERY;
    loop {
        std::thread::sleep(sleep);
        let mut n = 0;
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(mut r) => {
                    n += 1;
                    if let Some(mut t) = r.trace.take()
                        && let Some(sink) = spans.get()
                    {
                        sink.submit(&mut t, &r);
                    }
                }
                Err(TryRecvError::Empty) => break,
                // Every handle is gone: write what is left, then stop.
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if let (Some(out), Some(lines)) = (out.as_mut(), &lines) {
            let written = lines.drain(out, &mut spare);
            if written > 0 || closed {
                let _ = out.flush();
            }
            n = n.max(written);
        }
        if closed {
            return;
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

    fn record(id: &str) -> AccessRecord<'_> {
        AccessRecord {
            request_id: Cow::Borrowed(id),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            status: 200,
            ..AccessRecord::default()
        }
    }

    /// The `request_id`s of the lines in `path`, once they stopped growing.
    fn logged_ids(path: &std::path::Path, want: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let ids: Vec<String> = text
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["request_id"].as_str().unwrap().to_owned()
                })
                .collect();
            if ids.len() >= want || std::time::Instant::now() > deadline {
                return ids;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn every_thread_s_lines_arrive_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::start(Some(path.to_str().unwrap())).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let id = format!("t{t}-{i:04}");
                        assert!(log.log(&mut record(&id)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let ids = logged_ids(&path, 2000);
        assert_eq!(ids.len(), 2000);
        for t in 0..4 {
            let mine: Vec<&String> = ids
                .iter()
                .filter(|s| s.starts_with(&format!("t{t}-")))
                .collect();
            let want: Vec<String> = (0..500).map(|i| format!("t{t}-{i:04}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn the_last_lines_are_written_when_the_log_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::start(Some(path.to_str().unwrap())).unwrap();
        assert!(log.log(&mut record("last")));
        drop(log);
        assert_eq!(logged_ids(&path, 1), ["last"]);
    }

    #[test]
    fn a_full_shard_drops_lines_and_says_so() {
        let lines = Lines {
            id: NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::default(),
        };
        let mut dropped = 0;
        let mut kept = 0;
        // No writer drains this one: it fills up.
        for i in 0..SHARD_MAX / 100 {
            let id = format!("{i:0>200}");
            if lines.append(&record(&id)) {
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        assert!(dropped > 0 && kept > 0, "kept {kept}, dropped {dropped}");
        let mut out = Vec::new();
        let mut spare = Vec::new();
        assert_eq!(lines.drain(&mut out, &mut spare), kept);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), kept);
        // Drained: room again, and nothing twice.
        assert!(lines.append(&record("again")));
        out.clear();
        assert_eq!(lines.drain(&mut out, &mut spare), 1);
    }

    #[test]
    fn a_thread_forgets_the_shards_of_logs_that_are_gone() {
        let shards_here = || SHARDS.with_borrow(Vec::len);
        let before = shards_here();
        for _ in 0..3 {
            let lines = Lines {
                id: NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed),
                shards: Mutex::default(),
            };
            assert!(lines.append(&record("x")));
        }
        // Each new log's first line let go of the shards of the ones dropped before it.
        assert_eq!(shards_here(), before.min(1) + 1);
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
