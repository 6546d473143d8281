//! The response cache as a client sees it: deterministic requests are answered once by the
//! upstream (mock-llm's `/stats` counts what reached it) and then replayed byte for byte
//! with `x-datamind-cache: hit`; tenants, delivery shapes and client formats never share an
//! entry; `Cache-Control` is honoured; errors, broken streams and oversized answers are
//! never stored; entries expire.

use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, EMBED_MODEL, OneUpstream, one_upstream_config};
use datamind_e2e::sse::{SseStream, parse_events};
use datamind_e2e::{
    Gateway, GatewayConfig, KEY_ALL, KEY_LIMITED, MockLlm, MockSpec, ModelGroup, RedisServer,
    eventually, header,
};
use reqwest::Response;
use serde_json::{Value, json};

/// The cache on, with `extra` fields merged into the `cache:` block.
fn with_cache(extra: Value) -> impl FnOnce(GatewayConfig) -> GatewayConfig {
    move |c| {
        let mut block = json!({"enabled": true});
        if let (Some(b), Some(e)) = (block.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        c.set("/cache", block)
    }
}

async fn setup(spec: MockSpec, extra: Value) -> Result<OneUpstream> {
    OneUpstream::start_with(spec, with_cache(extra)).await
}

fn det(prompt: &str) -> Value {
    json!({"model": CHAT_MODEL, "temperature": 0,
           "messages": [{"role": "user", "content": prompt}]})
}

fn det_stream(prompt: &str) -> Value {
    let mut b = det(prompt);
    b["stream"] = json!(true);
    b
}

/// Status, `x-datamind-cache` and the body text.
async fn read(resp: Response) -> Result<(u16, String, String)> {
    let status = resp.status().as_u16();
    let cache = header(&resp, "x-datamind-cache").unwrap_or_default();
    let body = resp.text().await.context("reading body")?;
    Ok((status, cache, body))
}

async fn chat(s: &OneUpstream, key: &str, body: &Value) -> Result<(u16, String, String)> {
    read(s.gateway.chat(key, body).await?).await
}

async fn upstream_requests(s: &OneUpstream) -> Result<u64> {
    Ok(s.mock.stats().await?.requests)
}

#[tokio::test]
async fn a_repeated_deterministic_request_is_answered_from_the_cache() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({})).await?;
    let (st, c1, first) = chat(&s, KEY_ALL, &det("hello")).await?;
    assert_eq!((st, c1.as_str()), (200, "miss"), "{first}");
    let resp = s.gateway.chat(KEY_ALL, &det("hello")).await?;
    let rid = header(&resp, "x-request-id").context("x-request-id")?;
    assert!(header(&resp, "age").is_some(), "a hit carries `age`");
    let (st, c2, second) = read(resp).await?;
    assert_eq!((st, c2.as_str()), (200, "hit"));
    // The same answer (mock ids are per request, so a fresh answer would differ).
    assert_eq!(first, second);
    assert_eq!(
        upstream_requests(&s).await?,
        1,
        "the hit reached the upstream"
    );
    let v: Value = serde_json::from_str(&second)?;
    assert!(
        v.pointer("/usage/prompt_tokens").is_some(),
        "usage kept: {v}"
    );

    // Access log: the hit is marked, spent no upstream time and no tokens.
    let line = s.gateway.access_log_line(&rid).await?;
    assert_eq!(line["cache"], "hit", "{line}");
    assert_eq!(line["upstream_ms"].as_f64(), Some(0.0), "{line}");
    assert_eq!(line["attempts"], 0, "{line}");
    assert_eq!(line["completion_tokens"], 0, "{line}");

    // A sampling request is not cached (two calls, two upstream requests).
    let hot = json!({"model": CHAT_MODEL, "temperature": 0.7,
                     "messages": [{"role": "user", "content": "hello"}]});
    for _ in 0..2 {
        let (st, c, _) = chat(&s, KEY_ALL, &hot).await?;
        assert_eq!((st, c.as_str()), (200, "bypass"));
    }
    assert_eq!(upstream_requests(&s).await?, 3);
    // ...unless the client opts in.
    for want in ["miss", "hit"] {
        let resp = s
            .gateway
            .http()
            .post(s.gateway.url("/v1/chat/completions"))
            .bearer_auth(KEY_ALL)
            .header("x-datamind-cache", "force")
            .json(&hot)
            .send()
            .await?;
        assert_eq!(read(resp).await?.1, want);
    }
    assert_eq!(upstream_requests(&s).await?, 4);

    let m = s
        .gateway
        .metrics_when("cache hits", |m| {
            m.sum("datamind_cache_requests_total", &[("result", "hit")]) >= 2.0
        })
        .await?;
    assert_eq!(
        m.sum("datamind_cache_requests_total", &[("result", "miss")]),
        2.0
    );
    assert_eq!(
        m.sum("datamind_cache_requests_total", &[("result", "bypass")]),
        2.0
    );
    assert_eq!(
        m.sum("datamind_cache_stores_total", &[("result", "stored")]),
        2.0
    );
    assert!(m.sum("datamind_cache_bytes", &[]) > 0.0, "{}", m.text);
    assert_eq!(m.sum("datamind_cache_entries", &[]), 2.0);
    Ok(())
}

#[tokio::test]
async fn tenants_never_see_each_others_entries() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({})).await?;
    let (_, a1, body_a) = chat(&s, KEY_ALL, &det("same prompt")).await?;
    let (_, b1, body_b) = chat(&s, KEY_LIMITED, &det("same prompt")).await?;
    assert_eq!((a1.as_str(), b1.as_str()), ("miss", "miss"));
    assert_ne!(body_a, body_b, "two upstream answers (distinct ids)");
    assert_eq!(upstream_requests(&s).await?, 2);
    let (_, a2, again_a) = chat(&s, KEY_ALL, &det("same prompt")).await?;
    let (_, b2, again_b) = chat(&s, KEY_LIMITED, &det("same prompt")).await?;
    assert_eq!((a2.as_str(), b2.as_str()), ("hit", "hit"));
    assert_eq!(again_a, body_a);
    assert_eq!(again_b, body_b);
    assert_eq!(upstream_requests(&s).await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_stream_is_replayed_exactly_and_kept_apart_from_whole_answers() -> Result<()> {
    let s = setup(MockSpec::named("up1").chunks(6), json!({})).await?;
    let resp = s.gateway.chat(KEY_ALL, &det_stream("tell")).await?;
    assert!(
        header(&resp, "content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let (_, c1, original) = read(resp).await?;
    assert_eq!(c1, "miss");
    let events = parse_events(&original);
    assert!(events.len() >= 7, "{original}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    let resp = s.gateway.chat(KEY_ALL, &det_stream("tell")).await?;
    assert!(
        header(&resp, "content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let (st, c2, replay) = read(resp).await?;
    assert_eq!((st, c2.as_str()), (200, "hit"));
    assert_eq!(
        replay, original,
        "the replay is the original stream, byte for byte"
    );
    assert_eq!(upstream_requests(&s).await?, 1);

    // Asking for the usage chunk is another shape: its own entry, with the usage chunk.
    let mut with_usage = det_stream("tell");
    with_usage["stream_options"] = json!({"include_usage": true});
    let (_, c, body) = chat(&s, KEY_ALL, &with_usage).await?;
    assert_eq!(c, "miss");
    assert!(body.contains("\"usage\":{"), "no usage chunk: {body}");
    let (_, c, again) = chat(&s, KEY_ALL, &with_usage).await?;
    assert_eq!((c.as_str(), again == body), ("hit", true));

    // The same prompt without `stream`: a JSON answer, never the stored stream, and the
    // JSON entry in turn never answers a stream request.
    let (_, c, whole) = chat(&s, KEY_ALL, &det("tell")).await?;
    assert_eq!(c, "miss");
    let v: Value = serde_json::from_str(&whole).context("a JSON body")?;
    assert_eq!(v["object"], "chat.completion");
    let (_, c, whole_again) = chat(&s, KEY_ALL, &det("tell")).await?;
    assert_eq!((c.as_str(), whole_again == whole), ("hit", true));
    let (_, c, stream_again) = chat(&s, KEY_ALL, &det_stream("tell")).await?;
    assert_eq!((c.as_str(), stream_again == original), ("hit", true));
    assert_eq!(upstream_requests(&s).await?, 3);
    Ok(())
}

#[tokio::test]
async fn anthropic_clients_get_hits_in_their_own_format() -> Result<()> {
    let s = setup(MockSpec::named("up1").chunks(3), json!({})).await?;
    let body = json!({"model": CHAT_MODEL, "max_tokens": 64, "temperature": 0,
                      "messages": [{"role": "user", "content": "bonjour"}]});
    let (st, c, first) = read(s.gateway.post("/v1/messages", KEY_ALL, &body).await?).await?;
    assert_eq!((st, c.as_str()), (200, "miss"), "{first}");
    let v: Value = serde_json::from_str(&first)?;
    assert_eq!(v["type"], "message", "{v}");
    let (st, c, second) = read(s.gateway.post("/v1/messages", KEY_ALL, &body).await?).await?;
    assert_eq!((st, c.as_str()), (200, "hit"));
    assert_eq!(second, first);
    let v: Value = serde_json::from_str(&second)?;
    assert_eq!(v["type"], "message");
    assert!(v.pointer("/usage/output_tokens").is_some(), "{v}");

    // Streamed: Anthropic events, replayed as they were.
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let (_, c, stream1) = read(s.gateway.post("/v1/messages", KEY_ALL, &sbody).await?).await?;
    assert_eq!(c, "miss");
    assert!(stream1.contains("event: message_start"), "{stream1}");
    assert!(stream1.contains("event: message_stop"), "{stream1}");
    let (_, c, stream2) = read(s.gateway.post("/v1/messages", KEY_ALL, &sbody).await?).await?;
    assert_eq!((c.as_str(), stream2 == stream1), ("hit", true));

    // The equivalent OpenAI request is answered in OpenAI's format (its own entry).
    let (_, c, openai) = chat(&s, KEY_ALL, &det("bonjour")).await?;
    assert_eq!(c, "miss");
    let v: Value = serde_json::from_str(&openai)?;
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(upstream_requests(&s).await?, 3);
    Ok(())
}

#[tokio::test]
async fn cache_control_no_store_and_no_cache_are_honoured() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({})).await?;
    let send = |cc: &'static str| {
        s.gateway
            .http()
            .post(s.gateway.url("/v1/chat/completions"))
            .bearer_auth(KEY_ALL)
            .header("cache-control", cc)
            .json(&det("cc"))
            .send()
    };
    // no-store: not looked up, not stored.
    for _ in 0..2 {
        let (st, c, _) = read(send("no-store").await?).await?;
        assert_eq!((st, c.as_str()), (200, "bypass"));
    }
    let (_, c, stored) = chat(&s, KEY_ALL, &det("cc")).await?;
    assert_eq!(c, "miss", "a no-store answer was stored");
    assert_eq!(upstream_requests(&s).await?, 3);
    // no-store also does not read an existing entry.
    let (_, c, _) = read(send("no-store").await?).await?;
    assert_eq!(c, "bypass");
    assert_eq!(upstream_requests(&s).await?, 4);
    // no-cache: skips the entry, asks the upstream, and stores the fresh answer.
    let (_, c, fresh) = read(send("no-cache").await?).await?;
    assert_eq!(c, "miss");
    assert_ne!(fresh, stored);
    assert_eq!(upstream_requests(&s).await?, 5);
    let (_, c, now) = chat(&s, KEY_ALL, &det("cc")).await?;
    assert_eq!((c.as_str(), now == fresh), ("hit", true));
    assert_eq!(upstream_requests(&s).await?, 5);
    // max-age=N: an entry older than N seconds is a miss (and is replaced).
    let (_, c, young) = read(send("max-age=60").await?).await?;
    assert_eq!((c.as_str(), young == fresh), ("hit", true));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, c, newer) = read(send("max-age=1").await?).await?;
    assert_eq!(c, "miss", "an entry older than max-age was served");
    assert_ne!(newer, fresh);
    let (_, c, again) = chat(&s, KEY_ALL, &det("cc")).await?;
    assert_eq!((c.as_str(), again == newer), ("hit", true));
    assert_eq!(upstream_requests(&s).await?, 6);
    Ok(())
}

#[tokio::test]
async fn errors_are_never_stored() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({})).await?;
    s.mock.control(json!({"status": 400})).await?;
    let (st, c, _) = chat(&s, KEY_ALL, &det("err")).await?;
    assert_eq!((st, c.as_str()), (400, "miss"));
    let (st, c, _) = chat(&s, KEY_ALL, &det("err")).await?;
    assert_eq!((st, c.as_str()), (400, "miss"), "an error was replayed");
    // A gateway-made error (the upstream resets the connection: 502) is not stored either,
    // and says it was a miss.
    s.mock
        .control(json!({"status": 200, "fault": "reset"}))
        .await?;
    let (st, c, _) = chat(&s, KEY_ALL, &det("err")).await?;
    assert_eq!((st, c.as_str()), (502, "miss"));
    s.mock.heal().await?;
    let (st, c, _) = chat(&s, KEY_ALL, &det("err")).await?;
    assert_eq!((st, c.as_str()), (200, "miss"));
    let (st, c, _) = chat(&s, KEY_ALL, &det("err")).await?;
    assert_eq!((st, c.as_str()), (200, "hit"));
    assert!(upstream_requests(&s).await? >= 4);
    Ok(())
}

#[tokio::test]
async fn a_broken_stream_is_never_stored() -> Result<()> {
    let s = setup(
        MockSpec::named("up1").chunks(6).fault("drop-mid-stream"),
        json!({}),
    )
    .await?;
    let resp = s.gateway.chat(KEY_ALL, &det_stream("cut")).await?;
    assert_eq!(header(&resp, "x-datamind-cache").as_deref(), Some("miss"));
    let events = SseStream::new(resp)
        .collect_lenient(Duration::from_secs(10))
        .await;
    assert!(
        events.iter().any(|e| e.is_error()),
        "the cut stream should end with an error event"
    );
    s.mock.heal().await?;
    let (_, c, whole) = chat(&s, KEY_ALL, &det_stream("cut")).await?;
    assert_eq!(c, "miss", "the broken stream was stored");
    assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    let (_, c, again) = chat(&s, KEY_ALL, &det_stream("cut")).await?;
    assert_eq!((c.as_str(), again == whole), ("hit", true));
    assert_eq!(upstream_requests(&s).await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_stream_the_client_abandoned_is_never_stored() -> Result<()> {
    let s = setup(
        MockSpec::named("up1").chunks(10).chunk_delay_ms(100),
        json!({}),
    )
    .await?;
    let resp = s.gateway.chat(KEY_ALL, &det_stream("leave")).await?;
    let mut events = SseStream::new(resp);
    let first = events.next_event(Duration::from_secs(5)).await?;
    assert!(first.is_some(), "no first event");
    drop(events);
    s.mock
        .wait_stats("the upstream cancelled", Duration::from_secs(5), |st| {
            st.cancelled >= 1 && st.active == 0
        })
        .await?;
    s.mock.heal().await?;
    let (_, c, whole) = chat(&s, KEY_ALL, &det_stream("leave")).await?;
    assert_eq!(c, "miss", "a truncated stream was stored");
    assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    let (_, c, _) = chat(&s, KEY_ALL, &det_stream("leave")).await?;
    assert_eq!(c, "hit");
    Ok(())
}

#[tokio::test]
async fn answers_over_the_entry_limit_are_not_stored() -> Result<()> {
    // A 40-chunk stream is several KiB; a whole chat answer is a few hundred bytes.
    let s = setup(
        MockSpec::named("up1").chunks(40),
        json!({"max_entry_bytes": 2048}),
    )
    .await?;
    let (_, c, big) = chat(&s, KEY_ALL, &det_stream("big")).await?;
    assert_eq!(c, "miss");
    assert!(big.len() > 2048, "stream only {} bytes", big.len());
    let (_, c, _) = chat(&s, KEY_ALL, &det_stream("big")).await?;
    assert_eq!(c, "miss", "an oversized stream was stored");
    let (_, c, small) = chat(&s, KEY_ALL, &det("small")).await?;
    assert!(small.len() < 2048);
    assert_eq!(c, "miss");
    let (_, c, _) = chat(&s, KEY_ALL, &det("small")).await?;
    assert_eq!(c, "hit");
    assert_eq!(upstream_requests(&s).await?, 3);
    Ok(())
}

#[tokio::test]
async fn entries_expire_after_their_ttl() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({"ttl_seconds": 1})).await?;
    let (_, c, _) = chat(&s, KEY_ALL, &det("ttl")).await?;
    assert_eq!(c, "miss");
    let (_, c, _) = chat(&s, KEY_ALL, &det("ttl")).await?;
    assert_eq!(c, "hit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, c, _) = chat(&s, KEY_ALL, &det("ttl")).await?;
    assert_eq!(c, "miss", "an expired entry was served");
    assert_eq!(upstream_requests(&s).await?, 2);
    let m = s
        .gateway
        .metrics_when("an expiry", |m| {
            m.sum("datamind_cache_evictions_total", &[("reason", "expired")]) >= 1.0
        })
        .await?;
    assert_eq!(m.sum("datamind_cache_entries", &[]), 1.0);
    Ok(())
}

#[tokio::test]
async fn embeddings_are_cached_and_the_cache_can_be_off() -> Result<()> {
    let s = setup(MockSpec::named("up1"), json!({})).await?;
    let body = json!({"model": EMBED_MODEL, "input": "vectors"});
    let (_, c, first) = read(s.gateway.post("/v1/embeddings", KEY_ALL, &body).await?).await?;
    assert_eq!(c, "miss");
    let (_, c, second) = read(s.gateway.post("/v1/embeddings", KEY_ALL, &body).await?).await?;
    assert_eq!((c.as_str(), second == first), ("hit", true));
    assert_eq!(upstream_requests(&s).await?, 1);

    // Without a `cache:` block nothing is cached and no header is sent.
    let off = OneUpstream::start(MockSpec::named("up2")).await?;
    for _ in 0..2 {
        let resp = off.gateway.chat(KEY_ALL, &det("off")).await?;
        assert_eq!(header(&resp, "x-datamind-cache"), None);
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(off.mock.stats().await?.requests, 2);
    Ok(())
}

/// `gpt-4o-mini` on `mock`, the cache in the shared Redis at `redis_url`.
fn redis_config(mock: &MockLlm, redis_url: &str) -> GatewayConfig {
    with_cache(json!({"store": "redis", "ttl_seconds": 60}))(one_upstream_config(mock))
        .set("/redis", json!({"url": redis_url}))
}

async fn cache_keys(redis: &RedisServer) -> Result<Vec<String>> {
    redis.keys("datamind:cache:*").await
}

#[tokio::test]
async fn gateways_sharing_redis_share_entries() -> Result<()> {
    let redis = RedisServer::start().await?;
    let mock = MockLlm::start(MockSpec::named("up1").chunks(4)).await?;
    let config = redis_config(&mock, &redis.url());
    let gw1 = Gateway::start(&config).await?;
    let gw2 = Gateway::start(&config).await?;
    // Each gateway connects to Redis in the background: wait until each caches.
    for (i, gw) in [&gw1, &gw2].into_iter().enumerate() {
        let warm = det(&format!("warm-up {i}"));
        eventually("a hit through redis", Duration::from_secs(10), || async {
            let (_, c, _) = read(gw.chat(KEY_ALL, &warm).await?).await?;
            Ok((c == "hit").then_some(()))
        })
        .await?;
    }
    redis.command(&["FLUSHALL"]).await?;
    let base = mock.stats().await?.requests;

    let (st, c, first) = read(gw1.chat(KEY_ALL, &det("shared")).await?).await?;
    assert_eq!((st, c.as_str()), (200, "miss"), "{first}");
    let keys = eventually("a cache key in redis", Duration::from_secs(5), || async {
        let k = cache_keys(&redis).await?;
        Ok((!k.is_empty()).then_some(k))
    })
    .await?;
    // One hash-tagged key, expiring by itself, holding no prompt text in its name.
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert!(
        key.starts_with("datamind:cache:{")
            && key.ends_with('}')
            && key.len() == "datamind:cache:{".len() + 64 + 1,
        "{key}"
    );
    let pttl: i64 = redis
        .command(&["PTTL", key])
        .await?
        .trim_start_matches(':')
        .parse()?;
    assert!(pttl > 0 && pttl <= 60_000, "PTTL {pttl}");

    let (st, c, second) = read(gw2.chat(KEY_ALL, &det("shared")).await?).await?;
    assert_eq!((st, c.as_str()), (200, "hit"), "the other gateway missed");
    assert_eq!(second, first);
    // Streams too: stored by the second gateway, replayed by the first.
    let (_, c, s1) = read(gw2.chat(KEY_ALL, &det_stream("shared")).await?).await?;
    assert_eq!(c, "miss");
    eventually("two cache keys", Duration::from_secs(5), || async {
        Ok((cache_keys(&redis).await?.len() == 2).then_some(()))
    })
    .await?;
    let (_, c, s2) = read(gw1.chat(KEY_ALL, &det_stream("shared")).await?).await?;
    assert_eq!((c.as_str(), s2 == s1), ("hit", true));
    // Tenants stay apart in the shared store as well.
    let (_, c, _) = read(gw1.chat(KEY_LIMITED, &det("shared")).await?).await?;
    assert_eq!(c, "miss");
    assert_eq!(mock.stats().await?.requests, base + 3);
    Ok(())
}

#[tokio::test]
async fn a_redis_outage_degrades_to_misses_never_errors() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let mock = MockLlm::start(MockSpec::named("up1")).await?;
    let gw = Gateway::start(&redis_config(&mock, &redis.url())).await?;
    // Connected: a miss then a hit.
    eventually("a hit through redis", Duration::from_secs(10), || async {
        let (_, c, _) = read(gw.chat(KEY_ALL, &det("outage")).await?).await?;
        Ok((c == "hit").then_some(()))
    })
    .await?;

    redis.kill().await?;
    let before = mock.stats().await?.requests;
    for i in 0..3 {
        let started = std::time::Instant::now();
        let (st, c, body) = read(gw.chat(KEY_ALL, &det("outage")).await?).await?;
        assert_eq!((st, c.as_str()), (200, "miss"), "request {i}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "an outage must not stall requests"
        );
    }
    assert_eq!(mock.stats().await?.requests, before + 3);
    let m = gw
        .metrics_when("store errors", |m| {
            m.sum("datamind_cache_store_errors_total", &[]) >= 1.0
        })
        .await?;
    assert!(m.sum("datamind_cache_requests_total", &[("result", "miss")]) >= 3.0);

    // Redis is back (empty): the gateway reconnects by itself and caches again.
    redis.restart().await?;
    eventually(
        "a hit after redis came back",
        Duration::from_secs(15),
        || async {
            let (st, c, _) = read(gw.chat(KEY_ALL, &det("outage")).await?).await?;
            assert_eq!(st, 200);
            Ok((c == "hit").then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_builtin_mock_of_the_default_config_is_cached_too() -> Result<()> {
    let config = GatewayConfig::new()
        .builtin_mock_provider("mock")
        .model(ModelGroup::new(CHAT_MODEL).deployment("mock", "mock-small"))
        .set("/cache", json!({"enabled": true}));
    let gw = Gateway::start(&config).await?;
    for body in [det("builtin"), det_stream("builtin")] {
        let (st, c, first) = read(gw.chat(KEY_ALL, &body).await?).await?;
        assert_eq!((st, c.as_str()), (200, "miss"), "{first}");
        let (st, c, second) = read(gw.chat(KEY_ALL, &body).await?).await?;
        assert_eq!((st, c.as_str()), (200, "hit"));
        assert_eq!(second, first);
    }
    Ok(())
}
