//! Rate limits shared by two gateways through one real `redis-server`: the fleet admits
//! N per minute (not N × replicas), for requests and for streamed tokens; when Redis dies
//! the gateways keep serving on per-replica limits (or refuse limited callers, failing
//! closed), and return to shared limits by themselves when it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use datamind_e2e::fixture::{CHAT_MODEL, one_upstream_config};
use datamind_e2e::sse::SseStream;
use datamind_e2e::{
    Gateway, GatewayConfig, KEY_ALL, KEY_LIMITED, MockLlm, MockSpec, RedisServer, chat_body,
};
use serde_json::{Value, json};

struct Fleet {
    redis: RedisServer,
    mock: MockLlm,
    gateways: Vec<Gateway>,
}

async fn fleet(spec: MockSpec, limits: Value, limiter: Value) -> Result<Fleet> {
    let redis = RedisServer::start().await?;
    let mock = MockLlm::start(spec).await?;
    let config: GatewayConfig = one_upstream_config(&mock)
        .set("/auth/keys/0/limits", limits)
        .set(
            "/redis",
            json!({"url": redis.url(), "reconnect_max_ms": 300, "command_timeout_ms": 500}),
        )
        .set("/limiter", limiter);
    let mut gateways = Vec::new();
    for _ in 0..2 {
        gateways.push(Gateway::start(&config).await?);
    }
    for g in &gateways {
        wait_mode(g, "shared").await?;
    }
    Ok(Fleet {
        redis,
        mock,
        gateways,
    })
}

/// Waits until `/metrics` says the limiter is in `mode`.
async fn wait_mode(g: &Gateway, mode: &str) -> Result<()> {
    datamind_e2e::eventually(
        &format!("ratelimit mode {mode}"),
        Duration::from_secs(10),
        || async {
            let m = g.metrics().await?;
            Ok((m.sum("datamind_ratelimit_mode", &[("mode", mode)]) == 1.0).then_some(()))
        },
    )
    .await
}

/// `attempts` chat requests from `clients` concurrent clients, alternating between the
/// gateways. Returns (admitted, refused); any other status fails the test.
async fn hammer(gateways: &[Gateway], clients: usize, attempts: usize) -> Result<(usize, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let work = (0..clients).map(|_| {
        let (next, ok, limited) = (next.clone(), ok.clone(), limited.clone());
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= attempts {
                    return Ok::<(), anyhow::Error>(());
                }
                let g = &gateways[i % gateways.len()];
                let r = g
                    .chat(KEY_ALL, &chat_body(CHAT_MODEL, &format!("n{i}")))
                    .await?;
                match r.status().as_u16() {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    429 => limited.fetch_add(1, Ordering::Relaxed),
                    s => bail!("request {i}: status {s}: {}", r.text().await?),
                };
            }
        }
    });
    for r in futures_util::future::join_all(work).await {
        r?;
    }
    Ok((ok.load(Ordering::Relaxed), limited.load(Ordering::Relaxed)))
}

#[tokio::test]
async fn two_gateways_share_requests_per_minute() -> Result<()> {
    const N: usize = 60;
    let f = fleet(
        MockSpec::named("up1"),
        json!({"rpm": N}),
        json!({"replicas": 2}),
    )
    .await?;
    let (ok, limited) = hammer(&f.gateways, 8, 3 * N).await?;
    eprintln!("rpm accuracy: limit {N}, 2 gateways, 8 clients: admitted {ok}, refused {limited}");
    assert!(
        ok >= N && ok <= N + N.div_ceil(100),
        "admitted {ok} for a limit of {N}"
    );
    assert_eq!(f.mock.stats().await?.requests as usize, ok);
    // Both replicas counted in Redis; neither enforced a local copy.
    for g in &f.gateways {
        let m = g.metrics().await?;
        assert_eq!(m.sum("datamind_ratelimit_mode", &[("mode", "shared")]), 1.0);
    }
    assert!(
        f.redis
            .keys("datamind:rl:*")
            .await?
            .iter()
            .all(|k| !k.contains(KEY_ALL)),
        "a raw key in a Redis key name"
    );
    Ok(())
}

#[tokio::test]
async fn two_gateways_share_tokens_per_minute_of_streams() -> Result<()> {
    const T: u64 = 3000;
    // Streams of 5 completion tokens asked with max_tokens 5: reservations match usage.
    let f = fleet(
        MockSpec::named("up1").chunks(5).chunk_delay_ms(5),
        json!({"tpm": T}),
        json!({"replicas": 2}),
    )
    .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let used = Arc::new(AtomicU64::new(0));
    let biggest = Arc::new(AtomicU64::new(0));
    let (ok, limited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let gateways = &f.gateways;
    let work = (0..6).map(|_| {
        let (next, used, biggest, ok, limited) = (
            next.clone(),
            used.clone(),
            biggest.clone(),
            ok.clone(),
            limited.clone(),
        );
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 150 {
                    return Ok::<(), anyhow::Error>(());
                }
                let body = json!({"model": CHAT_MODEL, "stream": true, "max_tokens": 5,
                    "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": format!("stream {i}")}]});
                let r = gateways[i % 2].chat(KEY_ALL, &body).await?;
                match r.status().as_u16() {
                    200 => {
                        let events = SseStream::new(r).collect(Duration::from_secs(10)).await?;
                        let total = events
                            .iter()
                            .rev()
                            .find_map(|e| {
                                e.json()
                                    .ok()
                                    .and_then(|v| v.pointer("/usage/total_tokens")?.as_u64())
                            })
                            .context("no usage in the stream")?;
                        used.fetch_add(total, Ordering::Relaxed);
                        biggest.fetch_max(total, Ordering::Relaxed);
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    429 => {
                        limited.fetch_add(1, Ordering::Relaxed);
                    }
                    s => bail!("status {s}: {}", r.text().await?),
                }
            }
        }
    });
    for r in futures_util::future::join_all(work).await {
        r?;
    }
    let (used, one) = (
        used.load(Ordering::Relaxed),
        biggest.load(Ordering::Relaxed),
    );
    eprintln!(
        "tpm accuracy: limit {T}, 2 gateways, 6 streaming clients: {} admitted using {used} tokens ({one} per request), {} refused",
        ok.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed)
    );
    assert!(
        used <= T + one,
        "{used} tokens streamed under a {T} tpm limit"
    );
    assert!(used + 2 * one >= T, "only {used} of {T} tokens admitted");
    Ok(())
}

#[tokio::test]
async fn redis_outage_falls_back_to_per_replica_limits_and_recovers() -> Result<()> {
    const N: usize = 20;
    let mut f = fleet(
        MockSpec::named("up1"),
        json!({"rpm": N}),
        json!({"replicas": 2, "on_redis_failure": "open"}),
    )
    .await?;
    let (ok, _) = hammer(&f.gateways, 4, 2 * N).await?;
    assert_eq!(ok, N, "shared phase");

    f.redis.kill().await?;
    // Every request still gets an answer: 200 or 429, never an error.
    let (ok, _) = hammer(&f.gateways, 4, 2 * N).await?;
    assert_eq!(ok, N, "each replica enforces {N} / 2 on its own");
    for g in &f.gateways {
        wait_mode(g, "local_fallback").await?;
        let m = g.metrics().await?;
        assert_eq!(m.sum("datamind_ratelimit_mode", &[("mode", "shared")]), 0.0);
    }

    f.redis.restart().await?;
    for g in &f.gateways {
        wait_mode(g, "shared").await?;
    }
    let (ok, _) = hammer(&f.gateways, 4, 3 * N).await?;
    assert_eq!(
        ok, N,
        "shared again: {N} for the fleet, not {N} per replica"
    );
    Ok(())
}

#[tokio::test]
async fn failing_closed_refuses_only_limited_callers() -> Result<()> {
    let mut f = fleet(
        MockSpec::named("up1"),
        json!({"rpm": 100}),
        json!({"on_redis_failure": "closed"}),
    )
    .await?;
    let g = &f.gateways[0];
    assert_eq!(
        g.chat(KEY_ALL, &chat_body(CHAT_MODEL, "up"))
            .await?
            .status(),
        200
    );
    f.redis.kill().await?;
    let r = g.chat(KEY_ALL, &chat_body(CHAT_MODEL, "down")).await?;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "state_store_unavailable", "{body}");
    let text = body.to_string();
    assert!(
        !text.contains(&f.redis.url()) && !text.contains("127.0.0.1"),
        "{text}"
    );
    wait_mode(g, "fail_closed").await?;
    // A caller without limits does not depend on Redis.
    assert_eq!(
        g.chat(KEY_LIMITED, &chat_body(CHAT_MODEL, "free"))
            .await?
            .status(),
        200
    );
    f.redis.restart().await?;
    wait_mode(g, "shared").await?;
    assert_eq!(
        g.chat(KEY_ALL, &chat_body(CHAT_MODEL, "back"))
            .await?
            .status(),
        200
    );
    Ok(())
}
