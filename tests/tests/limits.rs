//! Rate limits in one gateway without Redis: requests per minute with OpenAI's
//! `x-ratelimit-*` headers on every kind of answer, the 429 a client sees, concurrency
//! slots released on every exit path, and tokens per minute admitted by reservation.

use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream};
use datamind_e2e::sse::SseStream;
use datamind_e2e::{KEY_ALL, KEY_LIMITED, MockSpec, chat_body, header, stream_body};
use serde_json::{Value, json};

/// One mock behind a gateway where `KEY_ALL`'s key has `limits`.
async fn setup(spec: MockSpec, limits: Value) -> Result<OneUpstream> {
    OneUpstream::start_with(spec, |c| c.set("/auth/keys/0/limits", limits)).await
}

fn assert_limit_headers(resp: &reqwest::Response, limit: &str, remaining: &str) {
    assert_eq!(
        header(resp, "x-ratelimit-limit-requests").as_deref(),
        Some(limit)
    );
    assert_eq!(
        header(resp, "x-ratelimit-remaining-requests").as_deref(),
        Some(remaining),
    );
    let reset = header(resp, "x-ratelimit-reset-requests").unwrap_or_default();
    assert!(
        reset.ends_with('s') && reset.len() >= 2,
        "reset header {reset:?}"
    );
}

#[tokio::test]
async fn rpm_limit_headers_on_every_answer_then_429() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({"rpm": 3})).await?;
    let gw = &s.gateway;

    let r = gw.chat(KEY_ALL, &chat_body(CHAT_MODEL, "one")).await?;
    assert_eq!(r.status(), 200);
    assert_limit_headers(&r, "3", "2");
    let _: Value = r.json().await?;

    let r = gw.chat(KEY_ALL, &stream_body(CHAT_MODEL, "two")).await?;
    assert_eq!(r.status(), 200);
    assert_limit_headers(&r, "3", "1");
    let events = SseStream::new(r).collect(Duration::from_secs(10)).await?;
    assert!(events.last().is_some_and(|e| e.is_done()));

    let r = gw
        .post(
            "/v1/messages",
            KEY_ALL,
            &json!({"model": CHAT_MODEL, "max_tokens": 16,
                    "messages": [{"role": "user", "content": "three"}]}),
        )
        .await?;
    assert_eq!(r.status(), 200);
    assert_limit_headers(&r, "3", "0");
    let _: Value = r.json().await?;

    let r = gw.chat(KEY_ALL, &chat_body(CHAT_MODEL, "four")).await?;
    assert_eq!(r.status(), 429);
    assert_limit_headers(&r, "3", "0");
    let retry: u64 = header(&r, "retry-after")
        .context("no retry-after on the 429")?
        .parse()?;
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "requests", "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("3 requests per minute for this API key"),
        "{msg}"
    );
    assert!(!msg.contains(KEY_ALL), "the key leaked: {msg}");
    assert_eq!(
        s.mock.stats().await?.requests,
        3,
        "the 429 never went upstream"
    );

    // Anthropic clients get their own error shape, with the same status and headers.
    let r = gw
        .post(
            "/v1/messages",
            KEY_ALL,
            &json!({"model": CHAT_MODEL, "max_tokens": 16,
                    "messages": [{"role": "user", "content": "five"}]}),
        )
        .await?;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    let body: Value = r.json().await?;
    assert_eq!(body["type"], "error", "{body}");

    // Other keys are not limited and carry no rate-limit headers.
    let r = gw
        .chat(KEY_LIMITED, &chat_body(CHAT_MODEL, "other"))
        .await?;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "x-ratelimit-limit-requests").is_none());

    let m = gw
        .metrics_when("a requests rejection", |m| {
            m.sum(
                "datamind_ratelimit_rejections_total",
                &[("scope", "key"), ("dimension", "requests")],
            ) >= 2.0
        })
        .await?;
    assert_eq!(m.sum("datamind_ratelimit_mode", &[("mode", "local")]), 1.0);
    Ok(())
}

#[tokio::test]
async fn concurrency_slots_are_released_on_every_exit_path() -> Result<()> {
    let s = setup(
        MockSpec::named("up1").ttft_ms(400),
        json!({"max_concurrent": 2}),
    )
    .await?;
    let gw = &s.gateway;
    let bodies: Vec<Value> = (0..4)
        .map(|i| chat_body(CHAT_MODEL, &format!("c{i}")))
        .collect();
    let calls: Vec<_> = bodies.iter().map(|b| gw.chat(KEY_ALL, b)).collect();
    let mut statuses: Vec<u16> = Vec::new();
    for r in futures_util::future::join_all(calls).await {
        let r = r?;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let body: Value = r.json().await?;
            assert_eq!(body["error"]["type"], "concurrent", "{body}");
        }
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 429, 429]);

    // A client that goes away mid-stream frees its slot too.
    let slow = setup(
        MockSpec::named("up2").chunks(20).chunk_delay_ms(100),
        json!({"max_concurrent": 1}),
    )
    .await?;
    let r = slow
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "leave early"))
        .await?;
    assert_eq!(r.status(), 200);
    let busy = slow
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "busy"))
        .await?;
    assert_eq!(busy.status(), 429, "the stream holds the only slot");
    drop(r);
    datamind_e2e::eventually("the slot to be freed", Duration::from_secs(5), || async {
        let r = slow
            .gateway
            .chat(KEY_ALL, &chat_body(CHAT_MODEL, "after"))
            .await?;
        Ok((r.status() == 200).then_some(()))
    })
    .await?;

    // Upstream errors free it as well.
    let failing = setup(
        MockSpec::named("up3").status(500),
        json!({"max_concurrent": 1}),
    )
    .await?;
    for _ in 0..3 {
        let r = failing
            .gateway
            .chat(KEY_ALL, &chat_body(CHAT_MODEL, "fails"))
            .await?;
        assert_eq!(r.status(), 500, "a leaked slot would turn this into 429");
    }
    Ok(())
}

#[tokio::test]
async fn tokens_are_reserved_then_reconciled_with_real_usage() -> Result<()> {
    // Each request reserves its prompt estimate + max_tokens (200); the mock streams 5
    // completion tokens, so most of each reservation comes back when the stream ends.
    let s = setup(MockSpec::named("up1").chunks(5), json!({"tpm": 500})).await?;
    let gw = &s.gateway;
    let body = |i: u32| {
        json!({"model": CHAT_MODEL, "stream": true, "max_tokens": 200,
               "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": format!("tokens {i}")}]})
    };
    let mut used = 0u64;
    let mut admitted = 0;
    for i in 0..10 {
        let r = gw.chat(KEY_ALL, &body(i)).await?;
        if r.status() == 429 {
            let b: Value = r.json().await?;
            assert_eq!(b["error"]["type"], "tokens", "{b}");
            break;
        }
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "x-ratelimit-limit-tokens").as_deref(),
            Some("500")
        );
        let events = SseStream::new(r).collect(Duration::from_secs(10)).await?;
        let usage = events
            .iter()
            .rev()
            .find_map(|e| e.json().ok().and_then(|v| v.get("usage").cloned()))
            .filter(|u| !u.is_null())
            .context("no usage chunk")?;
        used += usage["total_tokens"].as_u64().context("total_tokens")?;
        admitted += 1;
    }
    // Without reconciliation only two reservations (~230 tokens each) would fit in 500.
    assert!(
        admitted >= 5,
        "only {admitted} admitted: reservations not refunded"
    );
    assert!(used <= 500, "{used} tokens used over a 500 tpm limit");

    // A request that could never fit is refused as too large.
    let r = gw
        .chat(
            KEY_ALL,
            &json!({"model": CHAT_MODEL, "max_tokens": 5000,
                    "messages": [{"role": "user", "content": "big"}]}),
        )
        .await?;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await?;
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("request too large")),
        "{b}"
    );
    Ok(())
}

#[tokio::test]
async fn tenant_and_per_model_limits_apply_across_keys() -> Result<()> {
    let s = OneUpstream::start_with(MockSpec::named("up1"), |c| {
        c.set(
            "/tenants",
            json!([{"name": "team-a", "limits": {"models": {CHAT_MODEL: {"rpm": 2}}}},
                   {"name": "team-b", "limits": {"rpm": 1}}]),
        )
    })
    .await?;
    let gw = &s.gateway;
    for i in 0..2 {
        let r = gw
            .chat(KEY_ALL, &chat_body(CHAT_MODEL, &format!("m{i}")))
            .await?;
        assert_eq!(r.status(), 200);
    }
    let r = gw.chat(KEY_ALL, &chat_body(CHAT_MODEL, "m3")).await?;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await?;
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("this tenant on this model")),
        "{b}"
    );
    // Another model of the same tenant is not limited.
    let r = gw
        .chat(KEY_ALL, &chat_body("gpt-4o", "other model"))
        .await?;
    assert_eq!(r.status(), 200);
    // team-b: one request per minute for the whole tenant.
    assert_eq!(
        gw.chat(KEY_LIMITED, &chat_body(CHAT_MODEL, "b1"))
            .await?
            .status(),
        200
    );
    assert_eq!(
        gw.chat(KEY_LIMITED, &chat_body(CHAT_MODEL, "b2"))
            .await?
            .status(),
        429
    );
    Ok(())
}
