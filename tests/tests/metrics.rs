//! What operators see: Prometheus metrics on the admin listener change as requests flow,
//! and the access log has one JSON line per request without any secret.

use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, Failover, OneUpstream, UPSTREAM_CHAT};
use datamind_e2e::sse::SseStream;
use datamind_e2e::{KEY_ALL, MockSpec, UPSTREAM_KEY, chat_body, eventually, header, stream_body};
use serde_json::Value;

#[tokio::test]
async fn admin_health_endpoints_answer() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = s
            .gateway
            .http()
            .get(s.gateway.admin_url(path))
            .send()
            .await?;
        assert_eq!(resp.status(), 200, "admin {path}");
    }
    let resp = s
        .gateway
        .http()
        .get(s.gateway.admin_url("/metrics"))
        .send()
        .await?;
    let ctype = header(&resp, "content-type").unwrap_or_default();
    assert!(
        ctype.starts_with("text/plain") || ctype.contains("openmetrics"),
        "{ctype}"
    );
    Ok(())
}

#[tokio::test]
async fn request_token_duration_and_overhead_metrics_move() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let before = s.gateway.metrics().await?;
    let ok = [("model", CHAT_MODEL), ("status", "200")];
    assert_eq!(before.sum("datamind_requests_total", &ok), 0.0);

    for _ in 0..2 {
        let resp = s
            .gateway
            .chat(KEY_ALL, &chat_body(CHAT_MODEL, "count me"))
            .await?;
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await?;
    }
    let m = s
        .gateway
        .metrics_when("2 requests and 2 successful attempts", |m| {
            m.sum("datamind_requests_total", &ok) >= 2.0
                && m.sum(
                    "datamind_upstream_attempts_total",
                    &[("outcome", "success")],
                ) >= 2.0
        })
        .await?;
    assert_eq!(m.sum("datamind_requests_total", &ok), 2.0, "\n{}", m.text);
    assert!(
        m.sum("datamind_request_duration_seconds_count", &[]) >= 2.0,
        "duration histogram:\n{}",
        m.text
    );
    for direction in ["input", "output"] {
        let tokens = m.sum(
            "datamind_tokens_total",
            &[("model", CHAT_MODEL), ("direction", direction)],
        );
        assert!(tokens > 0.0, "no {direction} tokens counted:\n{}", m.text);
    }
    assert!(
        m.has_family("datamind_gateway_overhead_seconds"),
        "no overhead metric:\n{}",
        m.text
    );
    let ok_attempts = m.sum_where("datamind_upstream_attempts_total", |x| {
        x.label("outcome") == Some("success")
            && x.label("deployment").is_some_and(|d| d.contains("up1"))
    });
    assert_eq!(ok_attempts, 2.0, "\n{}", m.text);
    Ok(())
}

#[tokio::test]
async fn time_to_first_token_is_observed_for_streams() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(3)).await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "hi"))
        .await?;
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    assert!(events.last().is_some_and(|e| e.is_done()));
    s.gateway
        .metrics_when("a TTFT observation", |m| {
            m.sum("datamind_time_to_first_token_seconds_count", &[]) >= 1.0
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn stream_tokens_are_counted_even_when_client_did_not_ask_for_usage() -> Result<()> {
    // The gateway asks upstream for usage so it can count a stream's tokens, then hides it.
    let s = OneUpstream::start(MockSpec::named("up1").chunks(6)).await?;
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("x-request-id", "e2e-stream-tokens")
        .json(&stream_body(CHAT_MODEL, "hi"))
        .send()
        .await?;
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    assert!(events.last().is_some_and(|e| e.is_done()));
    assert!(
        events.iter().all(|e| !e.has_usage()),
        "usage leaked to client"
    );
    s.gateway
        .metrics_when("stream output tokens counted", |m| {
            m.sum(
                "datamind_tokens_total",
                &[("model", CHAT_MODEL), ("direction", "output")],
            ) > 0.0
        })
        .await?;
    let line = s.gateway.access_log_line("e2e-stream-tokens").await?;
    assert!(
        line["completion_tokens"].as_u64() > Some(0),
        "stream completion_tokens not logged: {line}"
    );
    Ok(())
}

#[tokio::test]
async fn upstream_attempt_outcomes_are_counted_per_deployment() -> Result<()> {
    let f = Failover::start(MockSpec::default().status(503), MockSpec::default(), |c| c).await?;
    let resp = f
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;
    let m = f
        .gateway
        .metrics_when("a success attempt for up2", |m| {
            m.sum(
                "datamind_upstream_attempts_total",
                &[("outcome", "success")],
            ) >= 1.0
        })
        .await?;
    let count = |dep: &str, outcomes: &[&str]| {
        m.sum_where("datamind_upstream_attempts_total", |x| {
            x.label("deployment").is_some_and(|d| d.contains(dep))
                && x.label("outcome").is_some_and(|o| outcomes.contains(&o))
        })
    };
    assert!(
        count("up1", &["retry", "fallback", "failure"]) >= 1.0,
        "primary failure not counted:\n{}",
        m.text
    );
    assert_eq!(count("up1", &["success"]), 0.0, "\n{}", m.text);
    assert_eq!(count("up2", &["success"]), 1.0, "\n{}", m.text);
    Ok(())
}

#[tokio::test]
async fn in_flight_gauge_follows_an_open_stream() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(10).chunk_delay_ms(150)).await?;
    let gauge = |m: &datamind_e2e::Metrics| {
        m.sum_where("datamind_deployment_in_flight", |x| {
            x.label("deployment").is_some_and(|d| d.contains("up1"))
        })
    };
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "hi"))
        .await?;
    let mut stream = SseStream::new(resp);
    stream
        .next_event(Duration::from_secs(5))
        .await?
        .context("no first event")?;
    s.gateway
        .metrics_when("in-flight 1 on up1 during the stream", |m| gauge(m) == 1.0)
        .await?;
    let events = stream.collect(Duration::from_secs(10)).await?;
    assert!(events.last().is_some_and(|e| e.is_done()));
    eventually("in-flight back to 0", Duration::from_secs(3), || async {
        Ok((gauge(&s.gateway.metrics().await?) == 0.0).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn access_log_has_one_json_line_per_request_without_secrets() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("x-request-id", "e2e-log-ok")
        .json(&chat_body(CHAT_MODEL, "log me"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await?;
    let wrong_key = "sk-e2e-wrong-secret-0000";
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(wrong_key)
        .header("x-request-id", "e2e-log-401")
        .json(&chat_body(CHAT_MODEL, "nope"))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);

    let line = s.gateway.access_log_line("e2e-log-ok").await?;
    let expect = |k: &str| -> Result<&Value> {
        line.get(k)
            .with_context(|| format!("access log line lacks `{k}`: {line}"))
    };
    assert_eq!(expect("tenant")?, "team-a", "{line}");
    assert_eq!(expect("model")?, CHAT_MODEL, "{line}");
    let deployment = expect("deployment")?.as_str().unwrap_or_default();
    assert!(deployment.contains(UPSTREAM_CHAT), "deployment: {line}");
    assert_eq!(expect("status")?, 200, "{line}");
    assert_eq!(expect("attempts")?, 1, "{line}");
    for k in [
        "duration_ms",
        "ttfb_ms",
        "prompt_tokens",
        "completion_tokens",
    ] {
        assert!(expect(k)?.is_number(), "`{k}` not a number: {line}");
    }
    // The logged usage is the usage the client was told.
    assert_eq!(
        expect("prompt_tokens")?,
        &answer["usage"]["prompt_tokens"],
        "{line}"
    );
    assert_eq!(
        expect("completion_tokens")?,
        &answer["usage"]["completion_tokens"],
        "{line}"
    );
    assert!(expect("prompt_tokens")?.as_u64() > Some(0), "{line}");

    let denied = s.gateway.access_log_line("e2e-log-401").await?;
    assert_eq!(denied.get("status"), Some(&Value::from(401)), "{denied}");
    assert_eq!(
        s.gateway.access_log().len(),
        2,
        "one line per request:\n{}",
        s.gateway.stdout_text()
    );

    let stdout = s.gateway.stdout_text();
    for secret in [KEY_ALL, wrong_key, UPSTREAM_KEY] {
        assert!(
            !stdout.contains(secret),
            "secret {secret:?} in the access log"
        );
    }
    Ok(())
}

#[tokio::test]
async fn access_log_can_go_to_a_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("access.log");
    let path_text = path.to_string_lossy().to_string();
    let s = OneUpstream::start_with(MockSpec::named("up1"), |c| {
        c.set("/access_log/path", Value::from(path_text.clone()))
    })
    .await?;
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("x-request-id", "e2e-to-file")
        .json(&chat_body(CHAT_MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await?;
    eventually(
        "the access log line in the file",
        Duration::from_secs(5),
        || async {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|v| v["request_id"] == "e2e-to-file")
                .then_some(()))
        },
    )
    .await?;
    assert!(
        s.gateway.access_log().is_empty(),
        "access log also went to stdout"
    );
    Ok(())
}
