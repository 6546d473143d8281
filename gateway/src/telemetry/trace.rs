//! One request's trace: a server span and one client span per upstream attempt.
//!
//! ```text
//! api: Traces::begin(traceparent) ─▶ RequestTrace (ids, start time)
//!   engine, per attempt: begin_attempt ─▶ traceparent for the upstream; end_attempt
//!   relay: note_response (id, model, finish reasons of a whole answer)
//! api, at the end: finish(access record, outcome) ─▶ SpanData ─▶ otlp queue
//! ```
//! Spans are assembled once, when the request is over, from facts the request collected
//! anyway: nothing is locked, nothing waits, and no `tracing` span machinery runs per
//! request. Names and attributes follow the OpenTelemetry GenAI semantic conventions;
//! the README lists each one. Prompt and completion content is recorded only for tenants
//! listed in `telemetry.traces.record_content_tenants`.

use std::borrow::Cow;
use std::time::SystemTime;

use datamind_llm::{Operation, ParsedRequest, Usage};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::AccessRecord;
use super::metrics::genai::{error_type, operation_name};
use super::propagation::{RemoteParent, format_traceparent};
use crate::snapshot::Deployment;

/// Longest content attribute recorded for opted-in tenants.
const MAX_CONTENT: usize = 16 * 1024;

/// Headers one upstream attempt carries.
#[derive(Debug, Clone)]
pub struct Propagation {
    /// `traceparent`.
    pub traceparent: String,
    /// `tracestate`, passed on from the client.
    pub tracestate: Option<String>,
}

/// One upstream attempt, as its span will show it.
#[derive(Debug)]
struct AttemptSpan {
    span_id: SpanId,
    start: SystemTime,
    end: SystemTime,
    deployment: String,
    provider: &'static str,
    model: String,
    address: Option<(String, u16)>,
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
    /// The gateway's server span (the client's own span when not recording).
    span_id: SpanId,
    parent: Option<RemoteParent>,
    tracestate: Option<String>,
    start: SystemTime,
    attempts: Vec<AttemptSpan>,
    record_content: bool,
    facts: Facts,
}

// === impl RequestTrace ===

impl RequestTrace {
    /// A recording trace: a child of `parent` when the client sent one.
    pub fn recording(parent: Option<RemoteParent>, tracestate: Option<String>) -> Self {
        let trace_id = parent.map_or_else(|| TraceId::from(nonzero_u128()), |p| p.trace_id);
        Self {
            recording: true,
            trace_id,
            span_id: SpanId::from(nonzero_u64()),
            parent,
            tracestate,
            start: SystemTime::now(),
            attempts: Vec::new(),
            record_content: false,
            facts: Facts::default(),
        }
    }

    /// Passes the client's context on unchanged and records nothing.
    pub fn propagate_only(parent: RemoteParent, tracestate: Option<String>) -> Self {
        Self {
            recording: false,
            trace_id: parent.trace_id,
            span_id: parent.span_id,
            parent: Some(parent),
            tracestate,
            start: SystemTime::UNIX_EPOCH,
            attempts: Vec::new(),
            record_content: false,
            facts: Facts::default(),
        }
    }

    /// Whether spans will be exported.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// The trace id (lower-case hex), for logs.
    pub fn trace_id(&self) -> String {
        self.trace_id.to_string()
    }

    /// The server span id (lower-case hex), for logs.
    pub fn span_id(&self) -> String {
        self.span_id.to_string()
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

    /// Records facts of a whole (non-streamed) answer body: id, model, finish reasons, and
    /// the completion when the tenant opted in.
    pub fn note_response(&mut self, body: &[u8]) {
        if !self.recording {
            return;
        }
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
        if self.record_content {
            self.facts.output = Some(bounded_text(body));
        }
    }

    /// Starts an attempt span on `d`; returns the headers the attempt carries.
    pub fn begin_attempt(&mut self, d: &Deployment) -> Propagation {
        if !self.recording {
            let sampled = self.parent.is_some_and(|p| p.sampled);
            return Propagation {
                traceparent: format_traceparent(self.trace_id, self.span_id, sampled),
                tracestate: self.tracestate.clone(),
            };
        }
        let span_id = SpanId::from(nonzero_u64());
        let now = SystemTime::now();
        self.attempts.push(AttemptSpan {
            span_id,
            start: now,
            end: now,
            deployment: d.id.clone(),
            provider: d.provider.kind.as_str(),
            model: d.model.clone(),
            address: d.provider.base.as_ref().map(|b| (b.host.clone(), b.port)),
            outcome: "failure",
            status: None,
            error_type: None,
        });
        Propagation {
            traceparent: format_traceparent(self.trace_id, span_id, true),
            tracestate: self.tracestate.clone(),
        }
    }

    /// Ends the latest attempt span with its outcome (`success`, `retry`, `fallback`,
    /// `failure`), the upstream status if one came, and why it failed.
    pub fn end_attempt(&mut self, outcome: &'static str, status: Option<u16>, error: Option<&str>) {
        if let Some(a) = self.attempts.last_mut() {
            a.end = SystemTime::now();
            a.outcome = outcome;
            a.status = status;
            a.error_type = error.map(str::to_owned);
        }
    }

    /// The spans of the finished request (empty when not recording).
    pub fn finish(
        mut self,
        scope: &InstrumentationScope,
        rec: &AccessRecord,
        usage: &Usage,
        overhead_ms: f64,
    ) -> Vec<SpanData> {
        if !self.recording {
            return Vec::new();
        }
        let end = SystemTime::now();
        let tracestate = self
            .tracestate
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let op_name = self.facts.op.map(operation_name);
        let model = rec.model.as_deref().unwrap_or("");
        let name: Cow<'static, str> = match op_name {
            Some(op) => format!("{op} {model}").into(),
            None => format!("{} {}", rec.method, rec.path).into(),
        };
        let served_by = self.attempts.iter().rev().find(|a| a.outcome == "success");
        let mut attrs = Vec::with_capacity(24);
        let s = |k: &'static str, v: &str| KeyValue::new(k, v.to_owned());
        attrs.push(s("http.request.method", &rec.method));
        attrs.push(s("url.path", &rec.path));
        attrs.push(KeyValue::new(
            "http.response.status_code",
            i64::from(rec.status),
        ));
        attrs.push(s("datamind.request_id", &rec.request_id));
        if let Some(op) = op_name {
            attrs.push(KeyValue::new("gen_ai.operation.name", op));
            attrs.push(s("gen_ai.request.model", model));
            attrs.push(KeyValue::new("gen_ai.request.stream", rec.stream));
        }
        if let Some(a) = served_by {
            attrs.push(KeyValue::new("gen_ai.provider.name", a.provider));
            let m = self.facts.response_model.as_deref().unwrap_or(&a.model);
            attrs.push(s("gen_ai.response.model", m));
        }
        if let Some(n) = self.facts.max_tokens {
            attrs.push(KeyValue::new("gen_ai.request.max_tokens", n as i64));
        }
        if let Some(t) = self.facts.temperature {
            attrs.push(KeyValue::new("gen_ai.request.temperature", t));
        }
        if let Some(id) = &self.facts.response_id {
            attrs.push(s("gen_ai.response.id", id));
        }
        if !self.facts.finish_reasons.is_empty() {
            let v: Vec<StringValue> = self
                .facts
                .finish_reasons
                .iter()
                .map(|r| r.clone().into())
                .collect();
            attrs.push(KeyValue::new(
                "gen_ai.response.finish_reasons",
                Value::Array(Array::String(v)),
            ));
        }
        if self.facts.op.is_some() && rec.status < 400 {
            let u = usage;
            attrs.push(KeyValue::new(
                "gen_ai.usage.input_tokens",
                u.prompt_tokens as i64,
            ));
            attrs.push(KeyValue::new(
                "gen_ai.usage.output_tokens",
                u.completion_tokens as i64,
            ));
            if u.cache_read_tokens > 0 {
                attrs.push(KeyValue::new(
                    "gen_ai.usage.cache_read.input_tokens",
                    u.cache_read_tokens as i64,
                ));
            }
            if u.cache_creation_tokens > 0 {
                attrs.push(KeyValue::new(
                    "gen_ai.usage.cache_creation.input_tokens",
                    u.cache_creation_tokens as i64,
                ));
            }
        }
        if let Some(t) = &rec.tenant {
            attrs.push(s("caller.tenant", t));
        }
        if let Some(d) = &rec.deployment {
            attrs.push(s("datamind.deployment", d));
        }
        attrs.push(KeyValue::new("datamind.attempts", i64::from(rec.attempts)));
        // Conductor's decision and the response cache, as the access log has them.
        for (k, v) in [
            ("datamind.route.rule", &rec.rule),
            ("datamind.route.cloud", &rec.cloud),
            ("datamind.route.region", &rec.region),
        ] {
            if let Some(v) = v {
                attrs.push(s(k, v));
            }
        }
        for (k, v) in rec.tags.iter().flatten() {
            attrs.push(KeyValue::new(format!("datamind.route.tag.{k}"), v.clone()));
        }
        if let Some(c) = rec.cache {
            attrs.push(KeyValue::new("datamind.cache", c));
        }
        attrs.push(KeyValue::new("datamind.overhead_ms", overhead_ms));
        if let Some(i) = &self.facts.input {
            attrs.push(s("gen_ai.input.messages", i));
        }
        if let Some(o) = &self.facts.output {
            attrs.push(s("gen_ai.output.messages", o));
        }
        let error_type = error_type(rec.status);
        if let Some(e) = error_type {
            attrs.push(KeyValue::new("error.type", e));
        }
        let server_ctx = SpanContext::new(
            self.trace_id,
            self.span_id,
            TraceFlags::SAMPLED,
            false,
            tracestate.clone(),
        );
        let mut spans = Vec::with_capacity(1 + self.attempts.len());
        spans.push(SpanData {
            span_context: server_ctx,
            parent_span_id: self.parent.map_or(SpanId::INVALID, |p| p.span_id),
            parent_span_is_remote: self.parent.is_some(),
            span_kind: SpanKind::Server,
            name,
            start_time: self.start,
            end_time: end,
            attributes: attrs,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            // Server spans are errors for 5xx only: 4xx is the client's doing.
            status: match error_type {
                Some(e) if rec.status >= 500 => Status::error(e),
                _ => Status::Unset,
            },
            instrumentation_scope: scope.clone(),
        });
        for a in std::mem::take(&mut self.attempts) {
            spans.push(attempt_span(a, &self, scope, &tracestate, op_name));
        }
        spans
    }
}

fn attempt_span(
    a: AttemptSpan,
    t: &RequestTrace,
    scope: &InstrumentationScope,
    tracestate: &TraceState,
    op: Option<&'static str>,
) -> SpanData {
    let mut attrs = Vec::with_capacity(10);
    let op = op.unwrap_or("chat");
    attrs.push(KeyValue::new("gen_ai.operation.name", op));
    attrs.push(KeyValue::new("gen_ai.provider.name", a.provider));
    attrs.push(KeyValue::new("gen_ai.request.model", a.model.clone()));
    if let Some((host, port)) = a.address {
        attrs.push(KeyValue::new("server.address", host));
        attrs.push(KeyValue::new("server.port", i64::from(port)));
    }
    attrs.push(KeyValue::new("datamind.deployment", a.deployment));
    attrs.push(KeyValue::new("datamind.attempt.outcome", a.outcome));
    if let Some(s) = a.status {
        attrs.push(KeyValue::new("http.response.status_code", i64::from(s)));
    }
    let failed = a.outcome != "success";
    if let Some(e) = &a.error_type {
        attrs.push(KeyValue::new("error.type", e.clone()));
    }
    SpanData {
        span_context: SpanContext::new(
            t.trace_id,
            a.span_id,
            TraceFlags::SAMPLED,
            false,
            tracestate.clone(),
        ),
        parent_span_id: t.span_id,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: format!("{op} {}", a.model).into(),
        start_time: a.start,
        end_time: a.end,
        attributes: attrs,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if failed {
            Status::error(a.error_type.unwrap_or_else(|| a.outcome.to_owned()))
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    }
}

fn bounded_text(v: &[u8]) -> String {
    let v = &v[..v.len().min(MAX_CONTENT)];
    String::from_utf8_lossy(v).into_owned()
}

fn nonzero_u128() -> u128 {
    fastrand::u128(1..)
}

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}
