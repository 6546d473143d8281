//! Retry and fallback: a failing deployment (503, connection refused, first-byte timeout,
//! 429) hands the request to the fallback group; cooldown skips a deployment that keeps
//! failing and brings it back afterwards; big bodies survive the retry.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use datamind_e2e::fixture::{
    BACKUP_MODEL, CHAT_MODEL, Failover, OneUpstream, PRIMARY_MODEL, failover_config,
};
use datamind_e2e::gateway::free_addr;
use datamind_e2e::sse::SseStream;
use datamind_e2e::{
    ApiError, Gateway, GatewayConfig, KEY_ALL, MockLlm, MockSpec, ModelGroup, chat_body,
    eventually, header, stream_body,
};
use serde_json::{Value, json};

fn backup_deployment() -> String {
    format!("up2/{BACKUP_MODEL}")
}

fn primary_deployment() -> String {
    format!("up1/{PRIMARY_MODEL}")
}

/// Sends one chat and returns (status, deployment header, attempts header).
async fn chat_once(gw: &Gateway) -> Result<(u16, String, String)> {
    let resp = gw.chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi")).await?;
    let out = (
        resp.status().as_u16(),
        header(&resp, "x-datamind-deployment").unwrap_or_default(),
        header(&resp, "x-datamind-attempts").unwrap_or_default(),
    );
    let _ = resp.bytes().await?;
    Ok(out)
}

#[tokio::test]
async fn falls_back_when_primary_answers_503() -> Result<()> {
    let f = Failover::start(MockSpec::default().status(503), MockSpec::default(), |c| c).await?;
    let (status, deployment, attempts) = chat_once(&f.gateway).await?;
    assert_eq!(status, 200);
    assert_eq!(deployment, backup_deployment());
    assert_eq!(attempts, "2");
    assert_eq!(
        f.primary.stats().await?.requests,
        1,
        "primary was not tried first"
    );
    let seen = f.backup.last_request().await?;
    assert_eq!(
        seen.body["model"], BACKUP_MODEL,
        "fallback model name not rewritten"
    );
    Ok(())
}

#[tokio::test]
async fn streaming_falls_back_when_primary_answers_503() -> Result<()> {
    let f = Failover::start(MockSpec::default().status(503), MockSpec::default(), |c| c).await?;
    let resp = f
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(backup_deployment().as_str())
    );
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    assert!(events.last().is_some_and(|e| e.is_done()), "no [DONE]");
    assert!(
        events.iter().all(|e| !e.is_error()),
        "error event in a good stream"
    );
    Ok(())
}

#[tokio::test]
async fn falls_back_when_primary_refuses_connections() -> Result<()> {
    let backup = MockLlm::start(MockSpec::named("up2")).await?;
    let dead = format!("http://{}/v1", free_addr()?);
    let gw = Gateway::start(&failover_config(&dead, &backup.base_url())).await?;
    let (status, deployment, attempts) = chat_once(&gw).await?;
    assert_eq!(status, 200);
    assert_eq!(deployment, backup_deployment());
    assert_eq!(attempts, "2");
    Ok(())
}

#[tokio::test]
async fn falls_back_on_first_byte_timeout() -> Result<()> {
    let f = Failover::start(
        MockSpec::default().fault("stall"),
        MockSpec::default(),
        |c| c.set("/timeouts/first_byte_ms", json!(300)),
    )
    .await?;
    let started = Instant::now();
    let (status, deployment, attempts) = chat_once(&f.gateway).await?;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(deployment, backup_deployment());
    assert_eq!(attempts, "2");
    assert!(
        took < Duration::from_secs(3),
        "first-byte timeout 300 ms took {took:?}"
    );
    assert!(f.primary.stats().await?.requests >= 1);
    Ok(())
}

#[tokio::test]
async fn all_deployments_failing_returns_an_openai_error() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").status(503)).await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    let err = ApiError::read(resp).await?;
    assert!(
        err.status.is_server_error(),
        "status {}: {}",
        err.status,
        err.body
    );
    Ok(())
}

#[tokio::test]
async fn rate_limited_deployment_cools_down_for_retry_after_then_recovers() -> Result<()> {
    let f = Failover::start(
        MockSpec::default().status(429).retry_after(2),
        MockSpec::default(),
        // One failure is enough; the default cooldown is far longer than Retry-After, so
        // recovering within a few seconds proves the upstream's Retry-After was used.
        |c| {
            c.set("/cooldown/failures", json!(1))
                .set("/cooldown/seconds", json!(120))
        },
    )
    .await?;
    let (status, deployment, _) = chat_once(&f.gateway).await?;
    assert_eq!(
        (status, deployment.as_str()),
        (200, backup_deployment().as_str())
    );
    assert_eq!(f.primary.stats().await?.requests, 1);

    let (status, deployment, _) = chat_once(&f.gateway).await?;
    assert_eq!(
        (status, deployment.as_str()),
        (200, backup_deployment().as_str())
    );
    assert_eq!(
        f.primary.stats().await?.requests,
        1,
        "cooled-down deployment was tried again"
    );
    f.gateway
        .metrics_when("a cooldown_skip for up1", |m| {
            m.sum_where("datamind_upstream_attempts_total", |s| {
                s.label("outcome") == Some("cooldown_skip")
                    && s.label("deployment").is_some_and(|d| d.contains("up1"))
            }) >= 1.0
        })
        .await?;

    f.primary.heal().await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    eventually(
        "primary serving again after Retry-After",
        Duration::from_secs(5),
        || async {
            let (status, deployment, _) = chat_once(&f.gateway).await?;
            Ok((status == 200 && deployment == primary_deployment()).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn failing_deployment_is_skipped_during_cooldown_then_recovers() -> Result<()> {
    let f = Failover::start(MockSpec::default().status(503), MockSpec::default(), |c| {
        c.set("/cooldown/failures", json!(2))
            .set("/cooldown/seconds", json!(1))
    })
    .await?;
    for _ in 0..2 {
        let (status, deployment, _) = chat_once(&f.gateway).await?;
        assert_eq!(
            (status, deployment.as_str()),
            (200, backup_deployment().as_str())
        );
    }
    assert_eq!(f.primary.stats().await?.requests, 2);
    let (_, deployment, attempts) = chat_once(&f.gateway).await?;
    assert_eq!(deployment, backup_deployment());
    assert_eq!(
        f.primary.stats().await?.requests,
        2,
        "deployment in cooldown was tried (attempts header {attempts})"
    );

    f.primary.heal().await?;
    eventually(
        "primary back after 1 s cooldown",
        Duration::from_secs(4),
        || async {
            let (status, deployment, _) = chat_once(&f.gateway).await?;
            Ok((status == 200 && deployment == primary_deployment()).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn four_mib_prompt_survives_fallback() -> Result<()> {
    let f = Failover::start(MockSpec::default().status(503), MockSpec::default(), |c| c).await?;
    let prompt = "x".repeat(4 * 1024 * 1024);
    let resp = f
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, &prompt))
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(backup_deployment().as_str())
    );
    let _: Value = resp.json().await?;
    assert!(
        f.primary.stats().await?.requests >= 1,
        "primary never tried"
    );
    let stats = f.backup.stats().await?;
    assert!(
        stats.last_body_bytes >= 4 * 1024 * 1024,
        "backup got {stats:?}"
    );
    let seen = f.backup.last_request().await?;
    let got = seen
        .body
        .pointer("/messages/0/content")
        .and_then(Value::as_str)
        .context("no content upstream")?;
    assert_eq!(got.len(), prompt.len(), "prompt truncated on the retry");
    assert!(got == prompt, "prompt altered on the retry");
    Ok(())
}

#[tokio::test]
async fn streaming_falls_back_on_first_byte_timeout() -> Result<()> {
    let f = Failover::start(
        MockSpec::default().fault("stall"),
        MockSpec::default(),
        |c| c.set("/timeouts/first_byte_ms", json!(300)),
    )
    .await?;
    let started = Instant::now();
    let resp = f
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(backup_deployment().as_str())
    );
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    assert!(events.last().is_some_and(|e| e.is_done()), "no [DONE]");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn upstream_client_error_is_returned_without_fallback() -> Result<()> {
    // 400 is the caller's fault: retrying elsewhere cannot help, so no fallback.
    let f = Failover::start(MockSpec::default().status(400), MockSpec::default(), |c| c).await?;
    let resp = f
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    let attempts = header(&resp, "x-datamind-attempts");
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 400, "{}", err.body);
    assert_eq!(f.backup.stats().await?.requests, 0, "fell back on a 400");
    assert_eq!(attempts.as_deref(), Some("1"));
    Ok(())
}

#[tokio::test]
async fn next_deployment_in_group_is_tried_before_the_fallback_group() -> Result<()> {
    let bad = MockLlm::start(MockSpec::named("up1").status(503)).await?;
    let good = MockLlm::start(MockSpec::named("up2")).await?;
    let spare = MockLlm::start(MockSpec::named("up3")).await?;
    let config = GatewayConfig::new()
        .openai_provider("up1", &bad.base_url())
        .openai_provider("up2", &good.base_url())
        .openai_provider("up3", &spare.base_url())
        .model(
            ModelGroup::new(CHAT_MODEL)
                .deployment("up1", "bad-model")
                .deployment("up2", "good-model")
                .fallback("spare-group"),
        )
        .model(ModelGroup::new("spare-group").deployment("up3", "spare-model"))
        // Keep the failing deployment in rotation for the whole test.
        .set("/cooldown/failures", json!(100));
    let gw = Gateway::start(&config).await?;
    for i in 0..4 {
        let (status, deployment, _) = chat_once(&gw).await?;
        assert_eq!(
            (status, deployment.as_str()),
            (200, "up2/good-model"),
            "request {i}"
        );
    }
    assert!(
        bad.stats().await?.requests >= 1,
        "failing deployment never tried"
    );
    assert_eq!(
        spare.stats().await?.requests,
        0,
        "fallback group used too early"
    );
    Ok(())
}
