//! Nothing is sent to the client before the first byte of an answer is in hand, so an
//! upstream that fails after its response header but before any data is still replaced by
//! the next candidate — and one that fails after data reached the client is not.

use std::time::{Duration, Instant};

use anyhow::Result;
use datamind_e2e::fixture::{BACKUP_MODEL, CHAT_MODEL, Failover};
use datamind_e2e::{KEY_ALL, MockSpec, header, stream_body};
use serde_json::json;

async fn stream_once(f: &Failover) -> Result<(u16, Option<String>, Option<String>, String)> {
    let resp = f
        .gateway
        .post(
            "/v1/chat/completions",
            KEY_ALL,
            &stream_body(CHAT_MODEL, "hi"),
        )
        .await?;
    let status = resp.status().as_u16();
    let deployment = header(&resp, "x-datamind-deployment");
    let attempts = header(&resp, "x-datamind-attempts");
    Ok((status, deployment, attempts, resp.text().await?))
}

#[tokio::test]
async fn stream_that_stalls_after_its_header_falls_back_within_first_byte_timeout() -> Result<()> {
    // The primary sends its SSE header at once, then nothing for 5 s.
    let f = Failover::start(
        MockSpec::default().ttft_ms(5_000),
        MockSpec::default(),
        |c| c.set("/timeouts/first_byte_ms", json!(300)),
    )
    .await?;
    let started = Instant::now();
    let (status, deployment, attempts, text) = stream_once(&f).await?;
    assert_eq!(status, 200);
    assert_eq!(
        deployment.as_deref(),
        Some(format!("up2/{BACKUP_MODEL}").as_str())
    );
    assert_eq!(attempts.as_deref(), Some("2"));
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("\"error\""), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn stream_that_dies_before_any_data_falls_back() -> Result<()> {
    // One chunk, dropped "mid-stream": the connection closes before any event is sent.
    let f = Failover::start(
        MockSpec::default().fault("drop-mid-stream").chunks(1),
        MockSpec::default(),
        |c| c,
    )
    .await?;
    let (status, deployment, attempts, text) = stream_once(&f).await?;
    assert_eq!(status, 200);
    assert_eq!(
        deployment.as_deref(),
        Some(format!("up2/{BACKUP_MODEL}").as_str())
    );
    assert_eq!(attempts.as_deref(), Some("2"));
    assert!(
        text.trim_end().ends_with("data: [DONE]") && !text.contains("\"error\""),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn stream_that_dies_after_data_is_not_retried() -> Result<()> {
    let f = Failover::start(
        MockSpec::default().fault("drop-mid-stream").chunks(8),
        MockSpec::default(),
        |c| c,
    )
    .await?;
    let (status, deployment, attempts, text) = stream_once(&f).await?;
    assert_eq!(status, 200);
    assert_eq!(deployment.as_deref(), Some("up1/primary-model"));
    assert_eq!(attempts.as_deref(), Some("1"));
    assert!(
        text.contains("\"error\""),
        "the broken stream ends with an error event: {text}"
    );
    assert_eq!(
        f.backup.stats().await?.requests,
        0,
        "no retry after bytes reached the client"
    );
    Ok(())
}
