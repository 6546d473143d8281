//! Criterion micro-benchmarks of the gateway's hot pure code in `datamind-llm`: SSE parsing
//! and pass-through of a 20-chunk OpenAI stream, client request parsing/rendering, and
//! stream translation per provider on the golden fixtures (Bedrock's in its binary framing).
//! The stream is the exact one `mock-llm` sends, so these match the end-to-end scenarios.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datamind_benches::mock::body::{Endpoint, Reply};
use datamind_benches::mock::sse::{Chunked, stream_body};
use datamind_llm::providers::Target;
use datamind_llm::providers::openai::OpenAiAdapter;
use datamind_llm::stream::StreamTranslator;
use datamind_llm::stream::openai::OpenAiPassthrough;
use datamind_llm::stream::sse::SseParser;
use datamind_llm::{Adapter, Operation, ParsedRequest, ProviderKind, Usage};

const SMALL_REQUEST: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in five words."}],"stream":true,"stream_options":{"include_usage":true}}"#;

fn twenty_chunks() -> Chunked {
    let reply = Reply::parse(Endpoint::Chat, SMALL_REQUEST.as_bytes(), 1, 1_700_000_000);
    match reply {
        Ok(reply) => stream_body(&reply, 20),
        Err(e) => unreachable!("constant request is valid: {e}"),
    }
}

fn large_request() -> Bytes {
    let messages: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" },
                                     "content": "lorem ipsum dolor sit amet ".repeat(8)})
        })
        .collect();
    let body = serde_json::json!({"model": "gpt-4o", "messages": messages, "temperature": 0.2});
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

fn sse(c: &mut Criterion) {
    let stream = twenty_chunks();
    let pieces: Vec<Bytes> = (0..stream.len()).map(|i| stream.piece(i)).collect();
    let mut group = c.benchmark_group("sse_20_chunks");
    group.throughput(Throughput::Bytes(stream.bytes.len() as u64));
    group.bench_function("parse_per_network_chunk", |b| {
        let mut events = Vec::with_capacity(32);
        b.iter(|| {
            let mut parser = SseParser::default();
            events.clear();
            for piece in &pieces {
                let _ = parser.feed(black_box(piece), &mut events);
            }
            parser.finish(&mut events);
            black_box(events.len())
        });
    });
    group.bench_function("parse_whole", |b| {
        let mut events = Vec::with_capacity(32);
        b.iter(|| {
            let mut parser = SseParser::default();
            events.clear();
            let _ = parser.feed(black_box(&stream.bytes), &mut events);
            parser.finish(&mut events);
            black_box(events.len())
        });
    });
    group.bench_function("openai_passthrough_per_network_chunk", |b| {
        let mut out = Vec::with_capacity(stream.bytes.len());
        b.iter(|| {
            let mut translator = OpenAiPassthrough::new(true);
            out.clear();
            for piece in &pieces {
                let _ = translator.feed(black_box(piece), &mut out);
            }
            translator.finish(&mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

/// The client body of the end-to-end scenarios (`datamind-bench`'s default).
const BENCH_REQUEST: &str = r#"{"model":"mock","messages":[{"role":"user","content":"hello"}]}"#;

fn request(c: &mut Criterion) {
    let small = Bytes::from_static(SMALL_REQUEST.as_bytes());
    let large = large_request();
    let mut group = c.benchmark_group("request");
    for (name, body) in [("small", small), ("large", large)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| black_box(ParsedRequest::parse(black_box(body.clone())).is_ok()));
        });
        if let Ok(parsed) = ParsedRequest::parse(body.clone()) {
            group.bench_function(format!("render_{name}"), |b| {
                b.iter(|| black_box(parsed.render(black_box("gpt-4o-2024-08-06"), true).len()));
            });
        }
    }
    let bench = Bytes::from_static(BENCH_REQUEST.as_bytes());
    group.throughput(Throughput::Bytes(bench.len() as u64));
    group.bench_function("parse_bench", |b| {
        b.iter(|| black_box(ParsedRequest::parse(black_box(bench.clone())).is_ok()));
    });
    if let Ok(parsed) = ParsedRequest::parse(bench) {
        let target = Target {
            base_path: "/v1",
            host: "127.0.0.1:8000",
            model: "mock",
            api_key: Some("x"),
            ..Target::default()
        };
        group.bench_function("openai_build_request_bench", |b| {
            b.iter(|| {
                let up = OpenAiAdapter.build_request(Operation::ChatCompletions, &parsed, &target);
                black_box(up.map(|u| u.body.len()).unwrap_or_default())
            });
        });
    }
    group.finish();
}

/// Usage (and the trace's facts) read from the mock's non-streamed chat completion, as the
/// OpenAI adapter does for every answer.
fn answer(c: &mut Criterion) {
    let body = match Reply::parse(Endpoint::Chat, BENCH_REQUEST.as_bytes(), 7, 1_700_000_000) {
        Ok(reply) => reply.full_body(),
        Err(e) => unreachable!("constant request is valid: {e}"),
    };
    let mut group = c.benchmark_group("answer");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("usage", |b| {
        b.iter(|| black_box(Usage::from_openai_json(black_box(&body))));
    });
    group.bench_function("usage_with_facts", |b| {
        b.iter(|| black_box(Usage::with_facts_from_openai_json(black_box(&body))));
    });
    group.finish();
}

/// Stream translation per provider, on the golden fixtures of `gateway/llm/tests/golden`
/// (the providers' documented example streams): provider bytes in, OpenAI chunks out.
fn providers(c: &mut Criterion) {
    // At run time first: this checkout, not the one that built the bench.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let golden = format!("{manifest}/../gateway/llm/tests/golden");
    let cases = [
        (ProviderKind::Anthropic, "anthropic/stream_tool_use"),
        (ProviderKind::Gemini, "gemini/stream_text"),
        (ProviderKind::WorkersAiRun, "workers_ai_run/run_text"),
        (ProviderKind::Azure, "azure/stream_with_filters"),
        (ProviderKind::Bedrock, "bedrock/converse_stream_tool"),
    ];
    let mut group = c.benchmark_group("stream_translation");
    for (kind, case) in cases {
        let dir = format!("{golden}/{case}");
        let (Ok(request), Ok(stream), Some(adapter)) = (
            std::fs::read(format!("{dir}/request.json")),
            std::fs::read(format!("{dir}/stream.sse")).or_else(|_| bedrock_frames(&dir)),
            kind.adapter(),
        ) else {
            continue;
        };
        let Ok(req) = ParsedRequest::parse(Bytes::from(request)) else {
            continue;
        };
        group.throughput(Throughput::Bytes(stream.len() as u64));
        let mut out = Vec::with_capacity(stream.len() * 2);
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                let mut t = adapter.stream_translator(Operation::ChatCompletions, &req);
                out.clear();
                let _ = t.feed(black_box(&stream), &mut out);
                t.finish(&mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

/// A Bedrock fixture (`stream.jsonl`, one `{"event","payload"}` per line) in the binary AWS
/// event-stream framing, exactly as `mock-llm` sends it.
fn bedrock_frames(dir: &str) -> std::io::Result<Vec<u8>> {
    const EVENTS: [&str; 6] = [
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ];
    let text = std::fs::read_to_string(format!("{dir}/stream.jsonl"))?;
    let mut wire = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let name = v["event"].as_str().unwrap_or_default();
        if let Some(event) = EVENTS.iter().find(|e| **e == name) {
            wire.extend(datamind_benches::mock::bedrock::frame(event, &v["payload"]));
        }
    }
    Ok(wire)
}

criterion_group!(benches, sse, request, answer, providers);
criterion_main!(benches);
