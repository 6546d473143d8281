//! Streaming chat completions: SSE passes chunk by chunk, the usage chunk is injected
//! upstream and hidden (or kept when asked for), and an upstream that dies mid-stream ends
//! the client's stream with an in-band SSE error event instead of a retry.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, Failover, OneUpstream, UPSTREAM_CHAT};
use datamind_e2e::sse::{SseStream, joined_content};
use datamind_e2e::{KEY_ALL, MockSpec, header, stream_body};
use serde_json::{Value, json};

const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn chunks_reach_the_client_before_the_upstream_finishes() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(5).chunk_delay_ms(200)).await?;
    let started = Instant::now();
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "count"))
        .await?;
    assert_eq!(resp.status(), 200);
    let ctype = header(&resp, "content-type").unwrap_or_default();
    assert!(
        ctype.starts_with("text/event-stream"),
        "content-type {ctype:?}"
    );
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(format!("up1/{UPSTREAM_CHAT}").as_str())
    );
    let events = SseStream::new(resp).collect(STREAM_TIMEOUT).await?;
    let last = events.last().context("no events")?;
    assert!(
        last.is_done(),
        "stream did not end with [DONE]: {:?}",
        last.data
    );

    let content: Vec<_> = events
        .iter()
        .filter(|e| e.delta_content().is_some())
        .collect();
    assert!(
        content.len() >= 2,
        "expected several content chunks, got {}",
        content.len()
    );
    let first = content[0].at;
    let spread = last.at.duration_since(first);
    // 5 chunks 200 ms apart: a gateway that buffers delivers them all at once.
    assert!(
        spread >= Duration::from_millis(500),
        "first content chunk arrived only {spread:?} before the end (after {:?}): not streamed",
        first.duration_since(started)
    );
    assert!(!joined_content(&events).is_empty());
    Ok(())
}

#[tokio::test]
async fn usage_chunk_is_injected_upstream_and_hidden_from_client() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(4)).await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200);
    let events = SseStream::new(resp).collect(STREAM_TIMEOUT).await?;
    assert!(events.last().is_some_and(|e| e.is_done()), "no [DONE]");

    let seen = s.mock.last_request().await?;
    assert_eq!(
        seen.body.pointer("/stream_options/include_usage"),
        Some(&json!(true)),
        "gateway did not ask upstream for usage: {}",
        seen.body
    );
    let with_usage: Vec<&str> = events
        .iter()
        .filter(|e| e.has_usage())
        .map(|e| e.data.as_str())
        .collect();
    assert!(
        with_usage.is_empty(),
        "client saw usage it did not ask for: {with_usage:?}"
    );
    assert!(!joined_content(&events).is_empty(), "no content");
    Ok(())
}

#[tokio::test]
async fn usage_chunk_is_kept_when_client_asks() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(4)).await?;
    let mut body = stream_body(CHAT_MODEL, "hi");
    body["stream_options"] = json!({"include_usage": true});
    let resp = s.gateway.chat(KEY_ALL, &body).await?;
    assert_eq!(resp.status(), 200);
    let events = SseStream::new(resp).collect(STREAM_TIMEOUT).await?;
    assert!(events.last().is_some_and(|e| e.is_done()), "no [DONE]");
    let usage = events
        .iter()
        .rev()
        .find(|e| e.has_usage())
        .context("client asked for usage but got no usage chunk")?
        .json()?;
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert!(usage["usage"][k].is_u64(), "usage.{k} missing: {usage}");
    }
    Ok(())
}

#[tokio::test]
async fn upstream_drop_mid_stream_ends_with_sse_error_and_no_retry() -> Result<()> {
    let f = Failover::start(
        MockSpec::default().fault("drop-mid-stream").chunks(10),
        MockSpec::default(),
        |c| c,
    )
    .await?;
    let resp = f
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(
        resp.status(),
        200,
        "headers were already sent: status must be 200"
    );
    let events = SseStream::new(resp).collect_lenient(STREAM_TIMEOUT).await;
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    let err_at = events
        .iter()
        .position(|e| e.is_error())
        .with_context(|| format!("no SSE error event in {data:?}"))?;
    assert!(
        events[..err_at].iter().any(|e| e.delta_content().is_some()),
        "no content before the error: {data:?}"
    );
    assert!(
        events[err_at + 1..].iter().all(|e| e.is_done()),
        "events after the error: {data:?}"
    );
    let err: Value = events[err_at].json()?;
    assert!(err["error"]["message"].is_string(), "error event: {err}");
    assert_eq!(
        f.backup.stats().await?.requests,
        0,
        "gateway retried after bytes reached the client"
    );
    Ok(())
}
