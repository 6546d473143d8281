//! What one traced request costs the request path, three ways (one server span with the
//! GenAI attributes and one attempt span each; spans end in a bounded channel drained by
//! another thread, as in production):
//!
//! - `direct_protobuf`: the gateway's way: `RequestTrace` collects facts, `encode` writes
//!   both spans as OTLP protobuf once at the end, into a buffer the thread reuses (the real
//!   code path, `telemetry::trace`; the spool hands whole buffers to the exporter thread,
//!   which only frames and sends them).
//! - `sdk_tracer`: the OpenTelemetry SDK tracer API (`span_builder` … `end`), a span
//!   processor that forwards `SpanData` to the same channel.
//! - `tracing_macros`: `tracing` spans through `tracing-opentelemetry` onto that SDK tracer.
//!
//! `cargo bench -p datamind-gateway --bench spans`

use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use datamind_gateway::config::parse_str;
use datamind_gateway::snapshot::{HealthRegistry, Snapshot};
use datamind_gateway::telemetry::trace::RequestTrace;
use datamind_gateway::telemetry::{AccessRecord, Metrics};
use datamind_llm::{Operation, ParsedRequest, Usage};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use tracing_subscriber::layer::SubscriberExt;

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: x } ]
models: [ { name: gpt-4o-mini, deployments: [ { provider: up, model: mock-chat-a } ] } ]
"#;

#[derive(Debug)]
struct ToChannel(SyncSender<SpanData>);

impl SpanProcessor for ToChannel {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        let _ = self.0.try_send(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn drained<T: Send + 'static>() -> SyncSender<T> {
    let (tx, rx) = sync_channel::<T>(1 << 16);
    std::thread::spawn(move || while rx.recv().is_ok() {});
    tx
}

fn server_attrs(rec: &AccessRecord<'_>) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", rec.method.clone()),
        KeyValue::new("url.path", rec.path.clone()),
        KeyValue::new("http.response.status_code", 200_i64),
        KeyValue::new("datamind.request_id", rec.request_id.to_string()),
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
        KeyValue::new("gen_ai.request.stream", false),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.response.model", "mock-chat-a"),
        KeyValue::new("gen_ai.request.max_tokens", 20_i64),
        KeyValue::new("gen_ai.usage.input_tokens", 12_i64),
        KeyValue::new("gen_ai.usage.output_tokens", 9_i64),
        KeyValue::new("caller.tenant", "team-a"),
        KeyValue::new("datamind.deployment", "up/mock-chat-a"),
        KeyValue::new("datamind.attempts", 1_i64),
        KeyValue::new("datamind.overhead_ms", 0.05),
    ]
}

fn attempt_attrs() -> Vec<KeyValue> {
    vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "mock-chat-a"),
        KeyValue::new("server.address", "127.0.0.1".to_owned()),
        KeyValue::new("server.port", 9_i64),
        KeyValue::new("datamind.deployment", "up/mock-chat-a".to_owned()),
        KeyValue::new("datamind.attempt.outcome", "success"),
        KeyValue::new("http.response.status_code", 200_i64),
    ]
}

fn spans(c: &mut Criterion) {
    // Constant inputs: they always parse (let-else keeps the bench free of panics).
    let Ok(config) = parse_str(CONFIG, &|_| None) else {
        return;
    };
    let snapshot = Snapshot::build(config, &HealthRegistry::default(), &Metrics::new());
    let Some(d) = snapshot
        .groups
        .get("gpt-4o-mini")
        .and_then(|g| g.deployments.first().cloned())
    else {
        return;
    };
    let Ok(req) = ParsedRequest::parse(Bytes::from_static(
        br#"{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#,
    )) else {
        return;
    };
    let rec = AccessRecord {
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        request_id: "0123456789abcdef0123456789abcdef".into(),
        model: Some("gpt-4o-mini".into()),
        tenant: Some("team-a".into()),
        deployment: Some("up/mock-chat-a".into()),
        status: 200,
        attempts: 1,
        ..AccessRecord::default()
    };
    let usage = Usage {
        prompt_tokens: 12,
        completion_tokens: 9,
        ..Usage::default()
    };
    let answer =
        br#"{"id":"chatcmpl-1","model":"mock-chat-a","choices":[{"finish_reason":"stop"}]}"#;
    let mut g = c.benchmark_group("one_traced_request");
    let tx = drained::<Vec<u8>>();
    let mut buf = Vec::new();
    g.bench_function("direct_protobuf", |b| {
        b.iter(|| {
            let t0 = std::time::Instant::now();
            let mut t = RequestTrace::recording(None, None, t0);
            t.note_request(Operation::ChatCompletions, &req, false);
            let prop = t.begin_attempt(&d, t0);
            t.keep_answer(&Bytes::from_static(answer));
            t.end_attempt(
                std::time::Duration::from_micros(80),
                "success",
                Some(200),
                None,
            );
            t.finish(usage, 0.05, std::time::Duration::from_micros(90));
            t.encode(&mut buf, &rec);
            // A batch's worth: the buffer goes to the exporter thread.
            if buf.len() >= 256 * 1024 {
                let _ = tx.try_send(std::mem::take(&mut buf));
            }
            prop
        })
    });

    let provider = SdkTracerProvider::builder()
        .with_span_processor(ToChannel(drained()))
        .build();
    let tracer = provider.tracer("datamind-gateway");
    g.bench_function("sdk_tracer", |b| {
        b.iter(|| {
            let server = tracer
                .span_builder("chat gpt-4o-mini")
                .with_kind(SpanKind::Server)
                .with_attributes(server_attrs(&rec))
                .start(&tracer);
            let cx = Context::current_with_span(server);
            let mut attempt = tracer
                .span_builder("chat mock-chat-a")
                .with_kind(SpanKind::Client)
                .with_attributes(attempt_attrs())
                .start_with_context(&tracer, &cx);
            opentelemetry::trace::Span::end(&mut attempt);
            cx.span().end();
        })
    });

    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("datamind-gateway"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("tracing_macros", |b| {
            b.iter(|| {
                let server = tracing::info_span!(
                    "chat gpt-4o-mini",
                    otel.kind = "server",
                    http.request.method = %rec.method,
                    url.path = %rec.path,
                    http.response.status_code = 200,
                    datamind.request_id = %rec.request_id,
                    gen_ai.operation.name = "chat",
                    gen_ai.request.model = "gpt-4o-mini",
                    gen_ai.request.stream = false,
                    gen_ai.provider.name = "openai",
                    gen_ai.response.model = "mock-chat-a",
                    gen_ai.request.max_tokens = 20,
                    gen_ai.usage.input_tokens = 12,
                    gen_ai.usage.output_tokens = 9,
                    caller.tenant = "team-a",
                    datamind.deployment = "up/mock-chat-a",
                    datamind.attempts = 1,
                    datamind.overhead_ms = 0.05,
                );
                let _s = server.enter();
                let attempt = tracing::info_span!(
                    "chat mock-chat-a",
                    otel.kind = "client",
                    gen_ai.operation.name = "chat",
                    gen_ai.provider.name = "openai",
                    gen_ai.request.model = "mock-chat-a",
                    server.address = "127.0.0.1",
                    server.port = 9,
                    datamind.deployment = "up/mock-chat-a",
                    datamind.attempt.outcome = "success",
                    http.response.status_code = 200,
                );
                drop(attempt.enter());
            })
        });
    });
    g.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
