//! One request's trace: a server span and one client span per upstream attempt.
//!
//! ```text
//! api: Traces::begin(traceparent) ─▶ RequestTrace (ids, start time)
//!   engine, per attempt: begin_attempt ─▶ traceparent for the upstream; end_attempt
//! relay: keep_answer (a whole answer's id, model and finish reasons, copied inline) or
//!        note_stream (the same, as the stream translator saw them)
//! api, at the end: finish(usage, overhead, duration), then the trace rides in the access
//!                  record to the access-log thread (`access_log`)
//! access-log thread: SpanSink::submit ─▶ encode(access record) ─▶ OTLP protobuf bytes at
//!                  the end of the exporter's batch buffer (`otlp::spool`)
//! ```
//! Spans are encoded once, when the request is over, from facts the request collected
//! anyway, straight into OTLP protobuf (`otlp::proto`), on the access-log thread: the
//! request's own thread only records times and ids, and goes back to its connection. No
//! `tracing` span machinery or SDK `SpanData` runs per request, and attribute keys are
//! static strings written as bytes. A whole answer's id, model and finish reasons are read
//! on the request's thread while the answer is in its cache (`FactsRef::read`: the top
//! level up to `choices`, then a search for the finish reasons, ~2k instructions) and
//! copied into the trace; only an answer of another shape (or one whose text is recorded)
//! travels, shared, to be read on the access-log thread.
//! Names and attributes follow the OpenTelemetry GenAI semantic conventions; the README
//! lists each one. Prompt and completion content is recorded only for tenants
//! listed in `telemetry.traces.record_content_tenants`.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrayvec::ArrayString;
use bytes::Bytes;
use smallvec::SmallVec;

use datamind_llm::stream::StreamTranslator;
use datamind_llm::usage::FactsRef;
use datamind_llm::{Operation, ParsedRequest, Usage};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

use super::AccessRecord;
use super::metrics::genai::{error_type, operation_name};
use super::otlp::proto::{self, Writer};
use super::propagation::{HexId, RemoteParent, SpanHex, TraceHex, Traceparent};
use crate::snapshot::{Deployment, Provider};

/// Longest content attribute recorded for opted-in tenants.
const MAX_CONTENT: usize = 16 * 1024;

/// Headers one upstream attempt carries.
#[derive(Debug, Clone)]
pub struct Propagation {
    /// `traceparent`.
    pub traceparent: Traceparent,
    /// `tracestate`, passed on from the client.
    pub tracestate: Option<String>,
}

/// One upstream attempt, as its span will show it.
#[derive(Debug)]
struct AttemptSpan {
    span_id: SpanId,
    start: Instant,
    took: Duration,
    /// Who was tried (shared with the snapshot: nothing is copied per attempt).
    deployment: Arc<Deployment>,
    outcome: &'static str,
    status: Option<u16>,
    error_type: Option<String>,
}

/// What the request and the answer said, beyond the access record.
#[derive(Debug, Default)]
struct Facts {
    op: Option<Operation>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    response_id: Option<String>,
    response_model: Option<String>,
    finish_reasons: Vec<String>,
    input: Option<String>,
    output: Option<String>,
}

/// The trace of one request.
#[derive(Debug)]
pub struct RequestTrace {
    /// Spans are recorded and exported (else the client's context is only passed on).
    recording: bool,
    trace_id: TraceId,
    /// `trace_id` as hex, for the access log and every attempt's `traceparent`.
    trace_hex: TraceHex,
    /// The gateway's server span (the client's own span when not recording).
    span_id: SpanId,
    parent: Option<RemoteParent>,
    tracestate: Option<String>,
    /// Monotonic: placed on the wall clock when encoded, off the request's thread.
    start: Instant,
    /// Inline for the usual single attempt: no allocation made here and freed on the
    /// access-log thread.
    attempts: SmallVec<[AttemptSpan; 1]>,
    record_content: bool,
    facts: Facts,
    /// A whole answer's id, model and finish reasons, copied when the quick read takes it.
    said: Said,
    /// A whole answer the quick read declines (or whose text is recorded): kept, shared,
    /// and read when the spans are encoded.
    answer: Option<Bytes>,
    /// How the request ended (set by `finish`).
    end: Option<End>,
}

/// What the request's end adds to its server span.
#[derive(Debug, Clone, Copy)]
struct End {
    /// After the request's start.
    took: Duration,
    usage: Usage,
    overhead_ms: f64,
}

/// A whole answer's id, model and finish reasons, copied into one inline string: no
/// allocation for the usual few dozen bytes, no second UTF-8 check when they are encoded,
/// and nothing of the answer itself outlives the request on its thread.
#[derive(Debug, Default)]
struct Said {
    text: ArrayString<SAID_BYTES>,
    id: Option<Range<usize>>,
    model: Option<Range<usize>>,
    finish_reasons: SmallVec<[Range<usize>; 2]>,
    /// `copy` ran (an answer without any of them still says so).
    noted: bool,
}

/// Room for an answer's id, model and finish reasons: a longer set keeps the answer
/// instead (see [`RequestTrace::keep_answer`]).
const SAID_BYTES: usize = 128;

impl Said {
    /// The facts, copied; `None` when they do not fit.
    fn copy(f: &FactsRef<'_>) -> Option<Self> {
        let mut text = ArrayString::new();
        let mut put = |s: &str| {
            let start = text.len();
            text.try_push_str(s).ok()?;
            Some(start..text.len())
        };
        let id = f.id.map(&mut put);
        let model = f.model.map(&mut put);
        let finish_reasons: SmallVec<[Option<Range<usize>>; 2]> =
            f.finish_reasons.iter().map(|r| put(r)).collect();
        Some(Self {
            text,
            id: id.map_or(Some(None), |r| r.map(Some))?,
            model: model.map_or(Some(None), |r| r.map(Some))?,
            finish_reasons: finish_reasons.into_iter().collect::<Option<_>>()?,
            noted: true,
        })
    }

    /// The facts again, borrowed from the buffer (`None` when nothing was copied).
    fn view(&self) -> Option<FactsRef<'_>> {
        if !self.noted {
            return None;
        }
        // Each piece was a whole `&str`, so every range falls on character boundaries.
        let text = |r: &Range<usize>| self.text.get(r.clone());
        Some(FactsRef {
            id: self.id.as_ref().and_then(text),
            model: self.model.as_ref().and_then(text),
            finish_reasons: self.finish_reasons.iter().filter_map(text).collect(),
        })
    }
}

// === impl RequestTrace ===

impl RequestTrace {
    /// A recording trace: a child of `parent` when the client sent one.
    /// `started`: when the request began (the span's start; placed on the wall clock when
    /// the spans are encoded, by `clock`, without reading it).
    pub fn recording(
        parent: Option<RemoteParent>,
        tracestate: Option<String>,
        started: Instant,
    ) -> Self {
        let trace_id = parent.map_or_else(|| TraceId::from(nonzero_u128()), |p| p.trace_id);
        Self {
            recording: true,
            trace_id,
            trace_hex: HexId::trace(trace_id),
            span_id: SpanId::from(nonzero_u64()),
            parent,
            tracestate,
            start: started,
            attempts: SmallVec::new(),
            record_content: false,
            facts: Facts::default(),
            said: Said::default(),
            answer: None,
            end: None,
        }
    }

    /// Passes the client's context on unchanged and records nothing.
    pub fn propagate_only(
        parent: RemoteParent,
        tracestate: Option<String>,
        started: Instant,
    ) -> Self {
        Self {
            recording: false,
            trace_id: parent.trace_id,
            trace_hex: HexId::trace(parent.trace_id),
            span_id: parent.span_id,
            parent: Some(parent),
            tracestate,
            start: started,
            attempts: SmallVec::new(),
            record_content: false,
            facts: Facts::default(),
            said: Said::default(),
            answer: None,
            end: None,
        }
    }

    /// Whether spans will be exported.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// The trace id (lower-case hex), for logs.
    pub fn trace_id(&self) -> TraceHex {
        self.trace_hex
    }

    /// The server span id (lower-case hex), for logs.
    pub fn span_id(&self) -> SpanHex {
        HexId::span(self.span_id)
    }

    /// Records what the request asks for. `content`: the tenant opted in to content capture.
    pub fn note_request(&mut self, op: Operation, req: &ParsedRequest, content: bool) {
        if !self.recording {
            return;
        }
        self.facts.op = Some(op);
        self.facts.max_tokens = req.max_tokens;
        self.facts.temperature = req
            .raw_field("temperature")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.trim().parse().ok());
        self.record_content = content;
        if content {
            let key = match op {
                Operation::ChatCompletions => "messages",
                Operation::Completions => "prompt",
                Operation::Embeddings => "input",
            };
            self.facts.input = req.raw_field(key).map(bounded_text);
        }
    }

    /// Records facts of a whole (non-streamed) answer body that [`FactsRef::read`] does
    /// not take (another member order, escapes): id, model, finish reasons, owned.
    fn note_response(&mut self, body: &[u8]) {
        if let (_, Some(f)) = Usage::with_facts_from_openai_json(body) {
            self.facts.response_id = f.id;
            self.facts.response_model = f.model;
            self.facts.finish_reasons = f.finish_reasons;
        } else {
            self.note_answer_any_order(body);
        }
    }

    /// `note_response` for a body the quick reader does not take (any JSON object order).
    fn note_answer_any_order(&mut self, body: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Choice {
            finish_reason: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            id: Option<String>,
            model: Option<String>,
            #[serde(default)]
            choices: Vec<Choice>,
        }
        if let Ok(a) = serde_json::from_slice::<Answer>(body) {
            self.facts.response_id = a.id;
            self.facts.response_model = a.model;
            self.facts.finish_reasons = a
                .choices
                .into_iter()
                .filter_map(|c| c.finish_reason)
                .collect();
        }
    }

    /// Notes a whole answer (OpenAI format): its id, model and finish reasons are read
    /// here, where the answer is still in this core's cache ([`FactsRef::read`]: the top
    /// level up to `choices`, then a search), and copied into the trace's inline buffer.
    /// An answer the quick read declines, whose facts are longer than the buffer, or whose
    /// text the tenant records, is kept instead (shared, not copied) and read on the
    /// access-log thread.
    pub fn keep_answer(&mut self, body: &Bytes) {
        if !self.recording {
            return;
        }
        let said = FactsRef::read(body)
            .filter(|_| !self.record_content)
            .and_then(|f| Said::copy(&f));
        match said {
            Some(said) => self.said = said,
            None => self.answer = Some(body.clone()),
        }
    }

    /// Records what a streamed answer said about itself: its id (from the first chunk),
    /// model, and every choice's finish reason (from the final chunks). Called once, when
    /// the stream is over; the translator kept them, so nothing is parsed again here.
    pub fn note_stream(&mut self, t: &dyn StreamTranslator) {
        if !self.recording {
            return;
        }
        self.facts.response_id = t.response_id().map(str::to_owned);
        if let Some(m) = t.response_model() {
            self.facts.response_model = Some(m.to_owned());
        }
        self.facts.finish_reasons = t.finish_reasons().to_vec();
    }

    /// Starts an attempt span on `d` at `at`; returns the headers the attempt carries.
    pub fn begin_attempt(&mut self, d: &Arc<Deployment>, at: Instant) -> Propagation {
        if !self.recording {
            let sampled = self.parent.is_some_and(|p| p.sampled);
            return Propagation {
                traceparent: Traceparent::with_trace_hex(&self.trace_hex, self.span_id, sampled),
                tracestate: self.tracestate.clone(),
            };
        }
        let span_id = SpanId::from(nonzero_u64());
        self.attempts.push(AttemptSpan {
            span_id,
            start: at,
            took: Duration::ZERO,
            deployment: Arc::clone(d),
            outcome: "failure",
            status: None,
            error_type: None,
        });
        Propagation {
            traceparent: Traceparent::with_trace_hex(&self.trace_hex, span_id, true),
            tracestate: self.tracestate.clone(),
        }
    }

    /// Ends the latest attempt span, `took` after its start, with its outcome (`success`,
    /// `retry`, `fallback`, `failure`), the upstream status if one came, and why it failed.
    pub fn end_attempt(
        &mut self,
        took: Duration,
        outcome: &'static str,
        status: Option<u16>,
        error: Option<&str>,
    ) {
        if let Some(a) = self.attempts.last_mut() {
            a.took = took;
            a.outcome = outcome;
            a.status = status;
            a.error_type = error.map(str::to_owned);
        }
    }

    /// Records the end of the request: `took` after the start, with its usage and the
    /// time spent in the gateway. Cheap: the spans are encoded later, elsewhere.
    pub fn finish(&mut self, usage: Usage, overhead_ms: f64, took: Duration) {
        self.end = Some(End {
            took,
            usage,
            overhead_ms,
        });
    }

    /// How many spans `encode` writes.
    pub fn span_count(&self) -> u32 {
        if self.recording {
            1 + self.attempts.len() as u32
        } else {
            0
        }
    }

    /// Appends the spans of the finished request to `buf` as OTLP protobuf
    /// (`ScopeSpans.spans` fields; nothing when not recording) and returns how many it
    /// wrote. Attributes are written straight from the record and the facts: no
    /// `SpanData`, no per-attribute `String`.
    pub fn encode(&mut self, buf: &mut Vec<u8>, rec: &AccessRecord<'_>) -> u32 {
        if !self.recording {
            return 0;
        }
        // A kept answer's facts, borrowed from it (owned when the quick read declines).
        let answer = self.answer.take();
        let quick = answer.as_deref().and_then(FactsRef::read);
        if let Some(a) = answer.as_deref() {
            if quick.is_none() {
                self.note_response(a);
            }
            if self.record_content {
                self.facts.output = Some(bounded_text(a));
            }
        }
        let end = self.end.unwrap_or_else(|| End {
            took: self.start.elapsed(),
            usage: Usage::default(),
            overhead_ms: 0.0,
        });
        // A tracestate that does not parse is not passed on in the span (as the SDK would).
        let tracestate = self
            .tracestate
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .map(|t| t.header())
            .unwrap_or_default();
        let content = self.facts.input.as_ref().map_or(0, String::len)
            + self.facts.output.as_ref().map_or(0, String::len);
        buf.reserve(1024 + 320 * self.attempts.len() + content);
        let said = quick
            .or_else(|| self.said.view())
            .unwrap_or_else(|| FactsRef {
                id: self.facts.response_id.as_deref(),
                model: self.facts.response_model.as_deref(),
                finish_reasons: self
                    .facts
                    .finish_reasons
                    .iter()
                    .map(String::as_str)
                    .collect(),
            });
        // One wall-clock placement; every other time is an offset from it.
        let start = unix_nanos(self.start);
        let mut w = Writer::new(buf);
        w.message(proto::SCOPE_SPANS_SPANS, |w| {
            self.server_span(w, rec, &said, start, &end, &tracestate);
        });
        let op = self.facts.op.map_or("chat", operation_name);
        for a in &self.attempts {
            let at = start.saturating_add(nanos(a.start.saturating_duration_since(self.start)));
            w.message(proto::SCOPE_SPANS_SPANS, |w| {
                self.attempt_span(w, a, op, at, &tracestate);
            });
        }
        self.span_count()
    }

    fn ids(&self, w: &mut Writer<'_>, span_id: SpanId, tracestate: &str) {
        w.bytes(proto::SPAN_TRACE_ID, &self.trace_id.to_bytes());
        w.bytes(proto::SPAN_SPAN_ID, &span_id.to_bytes());
        if !tracestate.is_empty() {
            w.bytes(proto::SPAN_TRACE_STATE, tracestate.as_bytes());
        }
    }

    fn server_span(
        &self,
        w: &mut Writer<'_>,
        rec: &AccessRecord<'_>,
        said: &FactsRef<'_>,
        start: u64,
        end: &End,
        tracestate: &str,
    ) {
        let End {
            took,
            ref usage,
            overhead_ms,
        } = *end;
        const A: u32 = proto::SPAN_ATTRIBUTES;
        self.ids(w, self.span_id, tracestate);
        let remote = match self.parent {
            Some(p) => {
                w.bytes(proto::SPAN_PARENT_SPAN_ID, &p.span_id.to_bytes());
                proto::FLAGS_IS_REMOTE
            }
            None => 0,
        };
        w.fixed32(
            proto::SPAN_FLAGS,
            u32::from(TraceFlags::SAMPLED.to_u8()) | proto::FLAGS_HAS_IS_REMOTE | remote,
        );
        let op_name = self.facts.op.map(operation_name);
        let model = rec.model.as_deref().unwrap_or("");
        match op_name {
            Some(op) => w.str_parts(proto::SPAN_NAME, &[op, " ", model]),
            None => w.str_parts(proto::SPAN_NAME, &[&*rec.method, " ", &*rec.path]),
        }
        w.uint(proto::SPAN_KIND, proto::KIND_SERVER);
        w.fixed64(proto::SPAN_START, start);
        w.fixed64(proto::SPAN_END, start.saturating_add(nanos(took)));

        w.attr_str(A, "http.request.method", &rec.method);
        w.attr_str(A, "url.path", &rec.path);
        w.attr_i64(A, "http.response.status_code", i64::from(rec.status));
        w.attr_str(A, "datamind.request_id", &rec.request_id);
        if let Some(op) = op_name {
            w.attr_str(A, "gen_ai.operation.name", op);
            w.attr_str(A, "gen_ai.request.model", model);
            w.attr_bool(A, "gen_ai.request.stream", rec.stream);
        }
        let served_by = self.attempts.iter().rev().find(|a| a.outcome == "success");
        if let Some(a) = served_by {
            w.attr_str(
                A,
                "gen_ai.provider.name",
                a.deployment.provider.kind.as_str(),
            );
            let m = said.model.unwrap_or(&a.deployment.model);
            w.attr_str(A, "gen_ai.response.model", m);
        }
        if let Some(n) = self.facts.max_tokens {
            w.attr_i64(A, "gen_ai.request.max_tokens", n as i64);
        }
        if let Some(t) = self.facts.temperature {
            w.attr_f64(A, "gen_ai.request.temperature", t);
        }
        if let Some(id) = said.id {
            w.attr_str(A, "gen_ai.response.id", id);
        }
        if !said.finish_reasons.is_empty() {
            w.attr_str_array(
                A,
                "gen_ai.response.finish_reasons",
                said.finish_reasons.iter().copied(),
            );
        }
        if self.facts.op.is_some() && rec.status < 400 {
            let u = usage;
            w.attr_i64(A, "gen_ai.usage.input_tokens", u.prompt_tokens as i64);
            w.attr_i64(A, "gen_ai.usage.output_tokens", u.completion_tokens as i64);
            if u.cache_read_tokens > 0 {
                w.attr_i64(
                    A,
                    "gen_ai.usage.cache_read.input_tokens",
                    u.cache_read_tokens as i64,
                );
            }
            if u.cache_creation_tokens > 0 {
                w.attr_i64(
                    A,
                    "gen_ai.usage.cache_creation.input_tokens",
                    u.cache_creation_tokens as i64,
                );
            }
        }
        if let Some(t) = &rec.tenant {
            w.attr_str(A, "caller.tenant", t);
        }
        if let Some(d) = &rec.deployment {
            w.attr_str(A, "datamind.deployment", d);
        }
        w.attr_i64(A, "datamind.attempts", i64::from(rec.attempts));
        // Conductor's decision and the response cache, as the access log has them.
        for (k, v) in [
            ("datamind.route.rule", &rec.rule),
            ("datamind.route.cloud", &rec.cloud),
            ("datamind.route.region", &rec.region),
        ] {
            if let Some(v) = v {
                w.attr_str(A, k, v);
            }
        }
        for (k, v) in rec.tags.iter().flatten() {
            w.attr_str_parts(A, &["datamind.route.tag.", k], v);
        }
        if let Some(c) = rec.cache {
            w.attr_str(A, "datamind.cache", c);
        }
        w.attr_f64(A, "datamind.overhead_ms", overhead_ms);
        if let Some(i) = &self.facts.input {
            w.attr_str(A, "gen_ai.input.messages", i);
        }
        if let Some(o) = &self.facts.output {
            w.attr_str(A, "gen_ai.output.messages", o);
        }
        let error_type = error_type(rec.status);
        if let Some(e) = error_type {
            w.attr_str(A, "error.type", e);
        }
        // Server spans are errors for 5xx only: 4xx is the client's doing.
        if let Some(e) = error_type.filter(|_| rec.status >= 500) {
            status_error(w, e);
        }
    }

    /// `start`: the attempt's start, unix nanoseconds.
    fn attempt_span(
        &self,
        w: &mut Writer<'_>,
        a: &AttemptSpan,
        op: &str,
        start: u64,
        tracestate: &str,
    ) {
        const A: u32 = proto::SPAN_ATTRIBUTES;
        self.ids(w, a.span_id, tracestate);
        w.bytes(proto::SPAN_PARENT_SPAN_ID, &self.span_id.to_bytes());
        w.fixed32(
            proto::SPAN_FLAGS,
            u32::from(TraceFlags::SAMPLED.to_u8()) | proto::FLAGS_HAS_IS_REMOTE,
        );
        let d = &a.deployment;
        w.str_parts(proto::SPAN_NAME, &[op, " ", &d.model]);
        w.uint(proto::SPAN_KIND, proto::KIND_CLIENT);
        w.fixed64(proto::SPAN_START, start);
        w.fixed64(proto::SPAN_END, start.saturating_add(nanos(a.took)));
        w.attr_str(A, "gen_ai.operation.name", op);
        w.raw(&d.span_attributes);
        w.attr_str(A, "datamind.attempt.outcome", a.outcome);
        if let Some(s) = a.status {
            w.attr_i64(A, "http.response.status_code", i64::from(s));
        }
        if let Some(e) = &a.error_type {
            w.attr_str(A, "error.type", e);
        }
        if a.outcome != "success" {
            status_error(w, a.error_type.as_deref().unwrap_or(a.outcome));
        }
    }
}

/// The attributes every attempt span on a deployment carries (provider, model, server
/// address and port, deployment id), encoded once when the snapshot is built and copied
/// into each attempt span as they are.
pub fn deployment_span_attributes(provider: &Provider, model: &str, id: &str) -> Box<[u8]> {
    const A: u32 = proto::SPAN_ATTRIBUTES;
    let mut buf = Vec::with_capacity(160 + model.len() + id.len());
    let mut w = Writer::new(&mut buf);
    w.attr_str(A, "gen_ai.provider.name", provider.kind.as_str());
    w.attr_str(A, "gen_ai.request.model", model);
    if let Some(b) = &provider.base {
        w.attr_str(A, "server.address", &b.host);
        w.attr_i64(A, "server.port", i64::from(b.port));
    }
    w.attr_str(A, "datamind.deployment", id);
    buf.into_boxed_slice()
}

/// `Span.status`: ERROR with `message`.
fn status_error(w: &mut Writer<'_>, message: &str) {
    w.message(proto::SPAN_STATUS, |w| {
        w.bytes(proto::STATUS_MESSAGE, message.as_bytes());
        w.uint(proto::STATUS_CODE, proto::STATUS_ERROR);
    });
}

/// The wall-clock time at `at`, derived without a clock read (`clock::unix_nanos_at`).
/// Unix nanoseconds at `at`, derived from this thread's clock anchor (`clock`).
fn unix_nanos(at: Instant) -> u64 {
    crate::clock::unix_nanos_at(at)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn bounded_text(v: &[u8]) -> String {
    let v = &v[..v.len().min(MAX_CONTENT)];
    String::from_utf8_lossy(v).into_owned()
}

/// A random non-zero id: full-range draws (no range arithmetic), redrawn on the one zero.
fn nonzero_u128() -> u128 {
    loop {
        let v = fastrand::u128(..);
        if v != 0 {
            return v;
        }
    }
}

fn nonzero_u64() -> u64 {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return v;
        }
    }
}
