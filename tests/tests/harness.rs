//! Self-checks of the harness against `mock-llm` alone (no gateway): the mock wrapper,
//! the SSE reader's timing, and the faults other tests rely on. If these fail, failures
//! elsewhere say nothing about the gateway.

use std::time::Duration;

use anyhow::Result;
use datamind_e2e::sse::{SseStream, joined_content};
use datamind_e2e::{MockLlm, MockSpec, RedisServer, chat_body, header, http_client, stream_body};
use serde_json::{Value, json};

#[tokio::test]
async fn mock_wrapper_reads_port_stats_and_last_request() -> Result<()> {
    let mock = MockLlm::start(MockSpec::named("self")).await?;
    let client = http_client()?;
    let body = chat_body("m", "hi");
    let resp = client
        .post(mock.url("/v1/chat/completions"))
        .bearer_auth("k")
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-mock-name").as_deref(), Some("self"));
    let _: Value = resp.json().await?;
    let stats = mock.stats().await?;
    assert_eq!((stats.requests, stats.completed, stats.active), (1, 1, 0));
    let seen = mock.last_request().await?;
    assert_eq!(seen.body, body);
    assert_eq!(seen.header("Authorization").as_deref(), Some("Bearer k"));
    mock.reset_stats().await?;
    assert_eq!(mock.stats().await?.requests, 0);
    Ok(())
}

#[tokio::test]
async fn sse_reader_sees_chunk_spacing_from_the_mock() -> Result<()> {
    let mock = MockLlm::start(MockSpec::named("self").chunks(5).chunk_delay_ms(200)).await?;
    let resp = http_client()?
        .post(mock.url("/v1/chat/completions"))
        .json(&stream_body("m", "hi"))
        .send()
        .await?;
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    let (first, last) = match (events.first(), events.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => anyhow::bail!("no events"),
    };
    assert!(last.is_done());
    let spread = last.at.duration_since(first.at);
    assert!(spread >= Duration::from_millis(500), "spread {spread:?}");
    assert!(!joined_content(&events).is_empty());
    Ok(())
}

#[tokio::test]
async fn mock_control_switches_to_error_status() -> Result<()> {
    let mock = MockLlm::start(MockSpec::named("self")).await?;
    mock.control(json!({"status": 503})).await?;
    let client = http_client()?;
    let resp = client
        .post(mock.url("/v1/chat/completions"))
        .json(&chat_body("m", "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 503);
    mock.heal().await?;
    let resp = client
        .post(mock.url("/v1/chat/completions"))
        .json(&chat_body("m", "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    Ok(())
}

#[tokio::test]
async fn mock_counts_a_client_that_goes_away_as_cancelled() -> Result<()> {
    let mock = MockLlm::start(MockSpec::named("self").chunks(50).chunk_delay_ms(100)).await?;
    let resp = http_client()?
        .post(mock.url("/v1/chat/completions"))
        .json(&stream_body("m", "hi"))
        .send()
        .await?;
    let mut stream = SseStream::new(resp);
    stream.next_event(Duration::from_secs(5)).await?;
    drop(stream);
    mock.wait_stats("cancelled", Duration::from_secs(3), |s| {
        s.cancelled >= 1 && s.active == 0
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn redis_server_starts_stops_and_restarts_on_its_port() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    redis.ping().await?;
    assert_eq!(redis.command(&["SET", "k", "v"]).await?, "+OK");
    assert_eq!(redis.command(&["GET", "k"]).await?, "v");
    assert_eq!(redis.keys("*").await?, vec!["k".to_string()]);
    let pid = redis.pid().expect("running");
    redis.kill().await?;
    assert!(redis.ping().await.is_err(), "still answering after kill");
    assert!(redis.pid().is_none());
    redis.restart().await?;
    assert_ne!(redis.pid(), Some(pid));
    redis.ping().await?;
    assert_eq!(redis.command(&["GET", "k"]).await?, "", "nothing persisted");
    Ok(())
}
