//! Bodies of any size up to `server.max_body_bytes`: a 4 MiB prompt streams and doesn't,
//! arrives upstream byte-for-byte; one byte over the limit is a 413.

use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream};
use datamind_e2e::sse::{SseStream, joined_content};
use datamind_e2e::{ApiError, KEY_ALL, MockSpec, chat_body, stream_body};
use serde_json::{Value, json};

const FOUR_MIB: usize = 4 * 1024 * 1024;

#[tokio::test]
async fn four_mib_prompt_non_streaming() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let prompt = "y".repeat(FOUR_MIB);
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, &prompt))
        .await?;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    assert!(
        body.pointer("/choices/0/message/content").is_some(),
        "body: {body}"
    );
    let stats = s.mock.stats().await?;
    assert!(
        stats.last_body_bytes >= FOUR_MIB as u64,
        "upstream got {stats:?}"
    );
    let seen = s.mock.last_request().await?;
    let got = seen
        .body
        .pointer("/messages/0/content")
        .and_then(Value::as_str)
        .context("no content upstream")?;
    assert_eq!(got.len(), FOUR_MIB);
    assert!(got == prompt, "prompt altered");
    Ok(())
}

#[tokio::test]
async fn four_mib_prompt_streaming() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(5)).await?;
    let prompt = "z".repeat(FOUR_MIB);
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, &prompt))
        .await?;
    assert_eq!(resp.status(), 200);
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    assert!(events.last().is_some_and(|e| e.is_done()), "no [DONE]");
    assert!(!joined_content(&events).is_empty());
    let stats = s.mock.stats().await?;
    assert!(
        stats.last_body_bytes >= FOUR_MIB as u64,
        "upstream got {stats:?}"
    );
    Ok(())
}

#[tokio::test]
async fn body_over_max_body_bytes_is_413_and_under_is_served() -> Result<()> {
    const LIMIT: usize = 1024 * 1024;
    let s = OneUpstream::start_with(MockSpec::named("up1"), |c| {
        c.set("/server/max_body_bytes", json!(LIMIT))
    })
    .await?;
    let over = chat_body(CHAT_MODEL, &"o".repeat(2 * LIMIT));
    let resp = s.gateway.chat(KEY_ALL, &over).await?;
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 413, "{:?}", err.body);
    assert_eq!(
        s.mock.stats().await?.requests,
        0,
        "oversized body reached upstream"
    );

    // Just under the limit (the JSON envelope is well below 1 KiB).
    let under = chat_body(CHAT_MODEL, &"u".repeat(LIMIT - 1024));
    let resp = s.gateway.chat(KEY_ALL, &under).await?;
    assert_eq!(resp.status(), 200);
    Ok(())
}
