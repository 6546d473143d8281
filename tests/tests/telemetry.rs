//! Traces as an operator's collector sees them: the gateway exports OTLP to a real
//! receiver (`datamind_e2e::otlp`, decoding `opentelemetry-proto`), over gRPC and
//! HTTP/protobuf, configured by the config file or the standard `OTEL_*` variables, and to
//! Langfuse's OTLP endpoint with its Basic authentication. A dead or stalled collector
//! never fails or slows a request; what could not be delivered is counted.

use std::time::{Duration, Instant};

use anyhow::Result;
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream, UPSTREAM_CHAT};
use datamind_e2e::{
    Gateway, KEY_ALL, KEY_LIMITED, MockSpec, OtlpReceiver, ReceivedSpan, StalledCollector,
    UPSTREAM_KEY, chat_body, header,
};
use serde_json::{Value, json};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const WAIT: Duration = Duration::from_secs(10);

/// Fast export for tests: batches leave within 100 ms.
fn traces(endpoint: &str, protocol: &str) -> Value {
    json!({
        "enabled": true,
        "protocol": protocol,
        "endpoint": endpoint,
        "schedule_delay_ms": 100,
        "export_timeout_ms": 3000,
    })
}

fn server_span<'a>(spans: &'a [ReceivedSpan], trace: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.trace_id == trace && s.kind == 2)
}

fn attempt_spans<'a>(spans: &'a [ReceivedSpan], trace: &str) -> Vec<&'a ReceivedSpan> {
    let mut v: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id == trace && s.kind == 3)
        .collect();
    v.sort_by_key(|s| s.start_unix_nano);
    v
}

/// No credential in spans (attributes and resource).
fn assert_no_secret_in_spans(spans: &[ReceivedSpan], secrets: &[&str]) {
    for s in spans {
        let text = format!("{} {:?} {:?}", s.name, s.attributes, s.resource);
        for secret in secrets {
            assert!(!text.contains(secret), "secret in span {}: {text}", s.name);
        }
    }
}

#[tokio::test]
async fn grpc_export_has_genai_spans_parented_on_the_client_and_propagated_upstream() -> Result<()>
{
    let rx = OtlpReceiver::start().await?;
    let mut t = traces(&rx.grpc_endpoint(), "grpc");
    t["record_content_tenants"] = json!(["team-b"]);
    let s = OneUpstream::start_with(MockSpec::named("up1"), |c| {
        c.set("/telemetry/traces", t)
            .set("/cache", json!({"enabled": true, "mode": "opt_in"}))
    })
    .await?;

    let mut body = chat_body(CHAT_MODEL, "tell me a secret-free story");
    body["max_tokens"] = json!(20);
    body["temperature"] = json!(0.25);
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=abc")
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let request_id = header(&resp, "x-request-id").unwrap_or_default();
    let answer: Value = resp.json().await?;

    let spans = rx
        .wait_for(
            "server and attempt span of the client's trace",
            WAIT,
            |sp| {
                server_span(sp, CLIENT_TRACE).is_some()
                    && !attempt_spans(sp, CLIENT_TRACE).is_empty()
            },
        )
        .await?;
    let server = server_span(&spans, CLIENT_TRACE).unwrap();
    assert_eq!(server.transport, "grpc");
    assert_eq!(server.name, format!("chat {CHAT_MODEL}"));
    assert_eq!(
        server.parent_span_id, CLIENT_SPAN,
        "child of the client's span"
    );
    assert_eq!(
        server.resource.get("service.name"),
        Some(&json!("datamind-gateway"))
    );
    for (k, v) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.request.model", json!(CHAT_MODEL)),
        ("gen_ai.request.max_tokens", json!(20)),
        ("gen_ai.request.temperature", json!(0.25)),
        ("gen_ai.response.id", answer["id"].clone()),
        ("gen_ai.response.model", answer["model"].clone()),
        (
            "gen_ai.usage.input_tokens",
            answer["usage"]["prompt_tokens"].clone(),
        ),
        (
            "gen_ai.usage.output_tokens",
            answer["usage"]["completion_tokens"].clone(),
        ),
        ("caller.tenant", json!("team-a")),
        ("datamind.deployment", json!(format!("up1/{UPSTREAM_CHAT}"))),
        ("datamind.request_id", json!(request_id)),
        ("http.response.status_code", json!(200)),
        ("datamind.cache", json!("bypass")),
    ] {
        assert_eq!(
            server.attributes.get(k),
            Some(&v),
            "{k} in {:?}",
            server.attributes
        );
    }
    let reasons = server.attributes.get("gen_ai.response.finish_reasons");
    assert_eq!(
        reasons,
        Some(&json!([answer["choices"][0]["finish_reason"]]))
    );
    assert!(!server.attributes.contains_key("error.type"));
    assert!(
        !server.attributes.contains_key("gen_ai.input.messages"),
        "team-a did not opt in to content capture"
    );

    let attempts = attempt_spans(&spans, CLIENT_TRACE);
    assert_eq!(attempts.len(), 1);
    let a = attempts[0];
    assert_eq!(a.parent_span_id, server.span_id);
    assert_eq!(a.name, format!("chat {UPSTREAM_CHAT}"));
    assert_eq!(a.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(
        a.attr_i64("server.port"),
        Some(i64::from(s.mock.addr().port()))
    );
    assert_eq!(a.attr_str("datamind.attempt.outcome"), Some("success"));
    assert_eq!(a.attr_i64("http.response.status_code"), Some(200));
    assert!(a.start_unix_nano >= server.start_unix_nano && a.end_unix_nano <= server.end_unix_nano);

    // The upstream saw the attempt span as its parent, and the client's tracestate.
    let last = s.mock.last_request().await?;
    assert_eq!(
        last.header("traceparent").as_deref(),
        Some(format!("00-{CLIENT_TRACE}-{}-01", a.span_id).as_str())
    );
    assert_eq!(last.header("tracestate").as_deref(), Some("vendor=abc"));

    // The access-log line names the same trace and span.
    let line = s.gateway.access_log_line(&request_id).await?;
    assert_eq!(line["trace_id"], json!(CLIENT_TRACE));
    assert_eq!(line["span_id"], json!(server.span_id));

    // team-b opted in: its prompt and completion are on the span.
    let resp = s
        .gateway
        .chat(KEY_LIMITED, &chat_body(CHAT_MODEL, "opted-in prompt text"))
        .await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;
    let spans = rx
        .wait_for("team-b's span", WAIT, |sp| {
            sp.iter()
                .any(|s| s.kind == 2 && s.attr_str("caller.tenant") == Some("team-b"))
        })
        .await?;
    let b = spans
        .iter()
        .find(|s| s.kind == 2 && s.attr_str("caller.tenant") == Some("team-b"))
        .unwrap();
    assert!(
        b.attr_str("gen_ai.input.messages")
            .is_some_and(|m| m.contains("opted-in prompt text"))
    );
    assert!(
        b.attr_str("gen_ai.output.messages")
            .is_some_and(|m| m.contains("choices"))
    );
    assert_eq!(b.parent_span_id, "", "no client traceparent: a root span");
    assert_ne!(b.trace_id, CLIENT_TRACE);

    assert_no_secret_in_spans(&spans, &[KEY_ALL, KEY_LIMITED, UPSTREAM_KEY]);
    let m = s.gateway.metrics().await?;
    assert!(m.sum("datamind_telemetry_exported_total", &[("signal", "spans")]) >= 3.0);
    Ok(())
}

/// Streamed answers carry the same response facts as whole ones: the id the client saw in
/// the chunks, the model, and the finish reason of the final chunk, for an OpenAI-format
/// upstream (passed through) and an Anthropic one (translated, id from `message_start`).
#[tokio::test]
async fn streamed_answers_carry_response_id_and_finish_reasons() -> Result<()> {
    let rx = OtlpReceiver::start().await?;
    let openai = datamind_e2e::MockLlm::start(MockSpec::named("oa").chunks(4)).await?;
    let claude = datamind_e2e::MockLlm::start(MockSpec::named("ant").chunks(4)).await?;
    let config = datamind_e2e::GatewayConfig::new()
        .openai_provider("oa", &openai.base_url())
        .provider(json!({"name": "ant", "kind": "anthropic",
                         "base_url": claude.url("/v1"), "api_key": "sk-ant-upstream"}))
        .model(datamind_e2e::ModelGroup::new(CHAT_MODEL).deployment("oa", UPSTREAM_CHAT))
        .model(datamind_e2e::ModelGroup::new("claude-via-gateway").deployment("ant", "claude-up"))
        .set(
            "/telemetry/traces",
            traces(&rx.http_url("/v1/traces"), "http/protobuf"),
        );
    let gateway = Gateway::start(&config).await?;

    for (i, (model, provider)) in [(CHAT_MODEL, "openai"), ("claude-via-gateway", "anthropic")]
        .into_iter()
        .enumerate()
    {
        let trace = format!("{CLIENT_TRACE:.30}{i:02x}");
        let resp = gateway
            .http()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(KEY_ALL)
            .header("traceparent", format!("00-{trace}-{CLIENT_SPAN}-01"))
            .json(&datamind_e2e::stream_body(model, "stream it"))
            .send()
            .await?;
        assert_eq!(resp.status(), 200, "{model}");
        let events = datamind_e2e::sse::SseStream::new(resp)
            .collect(WAIT)
            .await?;
        let chunks: Vec<Value> = events
            .iter()
            .filter(|e| !e.is_done())
            .map(|e| e.json())
            .collect::<Result<_>>()?;
        let id = chunks.first().and_then(|c| c["id"].as_str()).unwrap_or("");
        assert!(!id.is_empty(), "{model}: no id in {chunks:?}");
        assert!(chunks.iter().all(|c| c["id"] == json!(id)));
        let finish: Vec<Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .map(|r| json!(r))
            .collect();
        assert_eq!(finish.len(), 1, "{model}: one final chunk in {chunks:?}");

        let spans = rx
            .wait_for("the streamed request's server span", WAIT, |sp| {
                server_span(sp, &trace).is_some()
            })
            .await?;
        let server = server_span(&spans, &trace).unwrap();
        assert_eq!(
            server.attributes.get("gen_ai.request.stream"),
            Some(&json!(true))
        );
        assert_eq!(server.attr_str("gen_ai.provider.name"), Some(provider));
        assert_eq!(server.attr_str("gen_ai.response.id"), Some(id), "{model}");
        assert_eq!(
            server.attributes.get("gen_ai.response.finish_reasons"),
            Some(&Value::Array(finish)),
            "{model}"
        );
        assert_eq!(
            server.attributes.get("gen_ai.response.model"),
            Some(&chunks[0]["model"]),
            "{model}"
        );
        assert!(
            server
                .attr_i64("gen_ai.usage.output_tokens")
                .is_some_and(|n| n > 0)
        );
    }
    Ok(())
}

#[tokio::test]
async fn standard_otel_variables_select_http_protobuf_and_attempt_spans_show_the_failover()
-> Result<()> {
    let rx = OtlpReceiver::start().await?;
    let primary = datamind_e2e::MockLlm::start(MockSpec::named("up1").status(503)).await?;
    let backup = datamind_e2e::MockLlm::start(MockSpec::named("up2")).await?;
    // No access log: the thread that encodes spans then runs for them alone.
    let config = datamind_e2e::fixture::failover_config(&primary.base_url(), &backup.base_url())
        .set(
            "/policy",
            json!({"rules": [{"name": "keep-all", "filter": "true", "tags": {"tier": "gold"}}]}),
        )
        .set("/access_log/enabled", json!(false));
    let endpoint = rx.http_url("");
    let gateway = Gateway::start_with_env(
        |api, admin| config.render(api, admin),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_SERVICE_NAME", "gw-from-env"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=e2e"),
        ],
    )
    .await?;
    let resp = gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "fail over"))
        .await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;

    let spans = rx
        .wait_for("a server span with two attempts", WAIT, |sp| {
            sp.iter().any(|s| s.kind == 2) && sp.iter().filter(|s| s.kind == 3).count() >= 2
        })
        .await?;
    let server = spans.iter().find(|s| s.kind == 2).unwrap();
    assert!(gateway.access_log().is_empty(), "the access log is off");
    assert_eq!(server.transport, "http");
    assert!(rx.calls().iter().all(|c| c.path == "/v1/traces"));
    assert_eq!(
        server.resource.get("service.name"),
        Some(&json!("gw-from-env"))
    );
    assert_eq!(
        server.resource.get("deployment.environment"),
        Some(&json!("e2e"))
    );
    assert_eq!(server.parent_span_id, "");
    assert_eq!(server.attr_i64("datamind.attempts"), Some(2));
    assert_eq!(server.attr_str("datamind.route.rule"), Some("keep-all"));
    assert_eq!(server.attr_str("datamind.route.tag.tier"), Some("gold"));
    let attempts = attempt_spans(&spans, &server.trace_id);
    assert_eq!(attempts.len(), 2);
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!(first.attr_str("datamind.attempt.outcome"), Some("fallback"));
    assert_eq!(first.attr_i64("http.response.status_code"), Some(503));
    assert_eq!(first.attr_str("error.type"), Some("503"));
    assert_eq!(first.status_code, 2, "a failed attempt is an error span");
    assert_eq!(
        first.attr_i64("server.port"),
        Some(i64::from(primary.addr().port()))
    );
    assert_eq!(second.attr_str("datamind.attempt.outcome"), Some("success"));
    assert_eq!(
        second.attr_i64("server.port"),
        Some(i64::from(backup.addr().port()))
    );
    assert!(second.parent_span_id == server.span_id && first.parent_span_id == server.span_id);
    // The process log's line about the failed attempt names the trace.
    let line = gateway
        .stderr_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "upstream attempt failed");
    assert_eq!(
        line.as_ref().map(|v| &v["fields"]["trace_id"]),
        Some(&json!(server.trace_id)),
        "{line:?}"
    );
    // Each upstream saw its own attempt as the parent.
    let tp = |a: &ReceivedSpan| format!("00-{}-{}-01", server.trace_id, a.span_id);
    assert_eq!(
        backup.last_request().await?.header("traceparent"),
        Some(tp(second))
    );
    assert_eq!(
        primary.last_request().await?.header("traceparent"),
        Some(tp(first))
    );
    Ok(())
}

#[tokio::test]
async fn langfuse_endpoint_receives_the_traces_with_basic_auth() -> Result<()> {
    // Langfuse: OTLP/HTTP at /api/public/otel/v1/traces, `Authorization: Basic
    // base64(public_key:secret_key)`; it refuses anything else.
    let rx = OtlpReceiver::start().await?;
    let auth = "cGstbGYtZTJlOnNrLWxmLWUyZS1zZWNyZXQ="; // base64("pk-lf-e2e:sk-lf-e2e-secret")
    rx.require_header("authorization", &format!("Basic {auth}"));
    let langfuse = |c: datamind_e2e::GatewayConfig| {
        c.set(
            "/telemetry/traces",
            json!({
                "enabled": true,
                "protocol": "http/protobuf",
                "endpoint": rx.http_url("/api/public/otel/v1/traces"),
                "headers": {"Authorization": "Basic ${LANGFUSE_AUTH}"},
                "schedule_delay_ms": 100,
            }),
        )
    };
    let mock = datamind_e2e::MockLlm::start(MockSpec::named("up1")).await?;
    let config = langfuse(datamind_e2e::fixture::one_upstream_config(&mock));
    let good =
        Gateway::start_with_env(|a, b| config.render(a, b), &[("LANGFUSE_AUTH", auth)]).await?;
    let resp = good
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "to langfuse"))
        .await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;
    let spans = rx
        .wait_for("spans accepted by the Langfuse endpoint", WAIT, |sp| {
            sp.iter().any(|s| s.kind == 2)
        })
        .await?;
    assert!(spans.iter().any(|s| s.name == format!("chat {CHAT_MODEL}")));
    assert!(
        rx.calls()
            .iter()
            .all(|c| c.path == "/api/public/otel/v1/traces" && !c.refused)
    );

    // A wrong key: Langfuse refuses; the gateway still serves and counts the loss.
    let bad = Gateway::start_with_env(
        |a, b| config.render(a, b),
        &[("LANGFUSE_AUTH", "d3Jvbmc6a2V5")],
    )
    .await?;
    let resp = bad.chat(KEY_ALL, &chat_body(CHAT_MODEL, "refused")).await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;
    bad.metrics_when("an export refused and counted", |m| {
        m.sum(
            "datamind_telemetry_dropped_total",
            &[("signal", "spans"), ("reason", "export_failed")],
        ) >= 2.0
    })
    .await?;
    assert!(rx.calls().iter().any(|c| c.refused));
    // The Langfuse secret is nowhere in what the gateways print.
    for gw in [&good, &bad] {
        let out = format!("{}{}", gw.stdout_text(), gw.stderr_tail());
        assert!(
            !out.contains(auth) && !out.contains("sk-lf-e2e-secret"),
            "{out}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_dead_or_stalled_collector_neither_fails_nor_slows_requests() -> Result<()> {
    // Dead: nothing listens on the port. Stalled: accepts and never answers, so every
    // export hangs to its 5 s deadline while the tiny queue overflows.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let stalled = StalledCollector::start().await?;
    for (what, traces) in [
        (
            "dead grpc",
            json!({"enabled": true, "protocol": "grpc",
            "endpoint": format!("http://{dead}"), "schedule_delay_ms": 50,
            "export_timeout_ms": 5000}),
        ),
        (
            "stalled http",
            json!({"enabled": true, "protocol": "http/protobuf",
            "endpoint": stalled.url("/v1/traces"), "schedule_delay_ms": 50,
            "export_timeout_ms": 5000, "queue_size": 2, "max_batch_size": 2}),
        ),
    ] {
        let s = OneUpstream::start_with(MockSpec::named("up1"), |c| {
            c.set("/telemetry/traces", traces)
        })
        .await?;
        let mut slowest = Duration::ZERO;
        for i in 0..30 {
            let t0 = Instant::now();
            let resp = s
                .gateway
                .chat(KEY_ALL, &chat_body(CHAT_MODEL, &format!("r{i}")))
                .await?;
            assert_eq!(resp.status(), 200, "{what}");
            let _ = resp.bytes().await?;
            slowest = slowest.max(t0.elapsed());
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        }
        // Far below the 5 s export deadline: no request waited on the collector.
        assert!(
            slowest < Duration::from_millis(2500),
            "{what}: slowest request {slowest:?}"
        );
        s.gateway
            .metrics_when(&format!("{what}: lost spans counted"), |m| {
                m.sum("datamind_telemetry_dropped_total", &[("signal", "spans")]) > 0.0
            })
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn without_tracing_a_client_traceparent_is_still_passed_upstream() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let tp = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("traceparent", &tp)
        .json(&chat_body(CHAT_MODEL, "no tracing"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;
    assert_eq!(s.mock.last_request().await?.header("traceparent"), Some(tp));
    let m = s.gateway.metrics().await?;
    assert_eq!(m.sum("datamind_telemetry_exported_total", &[]), 0.0);
    Ok(())
}

#[tokio::test]
async fn overhead_header_is_opt_in() -> Result<()> {
    let s = OneUpstream::start_with(MockSpec::named("up1"), |c| {
        c.set("/telemetry/overhead_header", json!(true))
    })
    .await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "overhead"))
        .await?;
    assert_eq!(resp.status(), 200);
    let v: f64 = header(&resp, "x-datamind-overhead-ms")
        .unwrap_or_default()
        .parse()?;
    assert!((0.0..1000.0).contains(&v), "{v}");
    let _ = resp.bytes().await?;

    let plain = OneUpstream::start(MockSpec::named("up1")).await?;
    let resp = plain
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "no header"))
        .await?;
    assert_eq!(header(&resp, "x-datamind-overhead-ms"), None);
    let _ = resp.bytes().await?;
    Ok(())
}

/// The families the README documents, each of which must be on `/metrics` once the gateway
/// served traffic (OpenMetrics names: counters end in `_total` on their samples).
const DOCUMENTED: &[&str] = &[
    "gen_ai_server_request_duration_seconds",
    "gen_ai_server_time_to_first_token_seconds",
    "gen_ai_server_time_per_output_token_seconds",
    "gen_ai_client_operation_duration_seconds",
    "gen_ai_client_token_usage",
    "datamind_requests",
    "datamind_request_duration_seconds",
    "datamind_time_to_first_token_seconds",
    "datamind_tokens",
    "datamind_tenant_tokens",
    "datamind_gateway_overhead_seconds",
    "datamind_upstream_attempts",
    "datamind_deployment_in_flight",
    "datamind_deployment_queue_depth",
    "datamind_requests_in_flight",
    "datamind_config_reloads",
    "datamind_telemetry_dropped",
    "datamind_telemetry_exported",
    "datamind_access_log_dropped",
];

/// A strict reading of the text format: every line is a comment (`# TYPE`, `# HELP`,
/// `# UNIT`, `# EOF`) or `name{labels} value`; every family is typed; histogram buckets
/// are cumulative and end at `+Inf` == `_count`. Returns the typed families.
fn strict_parse(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    use anyhow::{Context, bail, ensure};
    let mut types = std::collections::BTreeMap::new();
    let mut buckets: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut histograms = 0;
    ensure!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match parts.next() {
                Some("TYPE") => {
                    let name = parts.next().context("TYPE without a name")?.to_owned();
                    let kind = parts.next().context("TYPE without a type")?.to_owned();
                    types.insert(name, kind);
                }
                Some("HELP" | "UNIT" | "EOF") => {}
                _ => bail!("unknown comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').context(format!("no value: {line}"))?;
        let value: f64 = value.parse().context(format!("bad value: {line}"))?;
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').context(format!("unclosed: {line}"))?),
            None => (series, ""),
        };
        ensure!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        let family = ["_bucket", "_count", "_sum", "_total", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        ensure!(
            types.contains_key(family),
            "sample of an untyped family: {line}"
        );
        if name.ends_with("_bucket") {
            let rest: Vec<_> = labels
                .split("\",")
                .filter(|kv| !kv.starts_with("le="))
                .collect();
            buckets
                .entry(format!("{family}{{{}}}", rest.join(",")))
                .or_default()
                .push(value);
            histograms += 1;
        }
    }
    for (series, b) in &buckets {
        ensure!(
            b.windows(2).all(|w| w[0] <= w[1]),
            "buckets not cumulative: {series}"
        );
    }
    ensure!(histograms > 0, "no histogram samples");
    Ok(types)
}

#[tokio::test]
async fn metrics_exposition_has_every_documented_family_after_real_traffic() -> Result<()> {
    let rx = OtlpReceiver::start().await?;
    let primary = datamind_e2e::MockLlm::start(MockSpec::named("up1").status(503)).await?;
    let backup = datamind_e2e::MockLlm::start(MockSpec::named("up2").chunks(5)).await?;
    let config = datamind_e2e::fixture::failover_config(&primary.base_url(), &backup.base_url())
        .set("/telemetry/traces", traces(&rx.grpc_endpoint(), "grpc"));
    let gw = Gateway::start(&config).await?;
    let mut ids = Vec::new();
    for body in [
        chat_body(CHAT_MODEL, "whole"),
        datamind_e2e::stream_body(CHAT_MODEL, "streamed"),
        chat_body("no-such-model", "404"),
    ] {
        let resp = gw.chat(KEY_ALL, &body).await?;
        ids.extend(header(&resp, "x-request-id"));
        let _ = resp.bytes().await?;
    }
    rx.wait_for("spans of the three requests", WAIT, |sp| {
        sp.iter().filter(|s| s.kind == 2).count() >= 3
    })
    .await?;
    let m = gw
        .metrics_when("the streamed request's TTFT", |m| {
            m.sum("gen_ai_server_time_to_first_token_seconds_count", &[]) >= 1.0
                && m.sum("datamind_telemetry_exported_total", &[]) >= 3.0
        })
        .await?;
    let types = strict_parse(&m.text)?;
    for family in DOCUMENTED {
        assert!(
            types.contains_key(*family),
            "{family} missing from\n{}",
            m.text
        );
    }
    let chat = [
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_request_model", CHAT_MODEL),
    ];
    let ok: Vec<_> = chat.iter().copied().chain([("error_type", "")]).collect();
    assert_eq!(
        m.sum("gen_ai_server_request_duration_seconds_count", &ok),
        2.0
    );
    assert_eq!(
        m.sum("gen_ai_server_time_per_output_token_seconds_count", &ok),
        1.0
    );
    let client = |error: &'static str| [("gen_ai_provider_name", "openai"), ("error_type", error)];
    assert_eq!(
        m.sum(
            "gen_ai_client_operation_duration_seconds_count",
            &client("503")
        ),
        2.0,
        "the primary failed both requests"
    );
    assert_eq!(
        m.sum(
            "gen_ai_client_operation_duration_seconds_count",
            &client("")
        ),
        2.0
    );
    for t in ["input", "output"] {
        let l = [
            ("gen_ai_token_type", t),
            ("gen_ai_request_model", "backup-model"),
        ];
        assert_eq!(m.sum("gen_ai_client_token_usage_count", &l), 2.0, "{t}");
        assert!(m.sum("gen_ai_client_token_usage_sum", &l) > 0.0, "{t}");
    }
    assert_eq!(
        m.sum("datamind_deployment_queue_depth", &[]),
        0.0,
        "nothing waits now"
    );
    assert!(m.sum("datamind_gateway_overhead_seconds_count", &[]) >= 3.0);
    // Bounded cardinality: no request id, key or unknown model name in any label.
    for id in &ids {
        assert!(!m.text.contains(id.as_str()), "request id {id} in metrics");
    }
    assert!(!m.text.contains("no-such-model"));
    assert!(datamind_e2e::secrets::find_in(&m.text).is_none());
    assert_no_secret_in_spans(&rx.spans(), datamind_e2e::secrets::KNOWN);
    Ok(())
}
