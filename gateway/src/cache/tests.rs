use bytes::Bytes;
use datamind_llm::cache_key::CacheDirectives;
use datamind_llm::{Operation, ParsedRequest, Usage};

use super::*;
use crate::config::{CacheConfig, CacheMode};
use crate::engine::ClientFormat;

fn req(body: &str) -> ParsedRequest {
    ParsedRequest::parse(Bytes::from(body.to_owned())).unwrap()
}

fn on() -> CacheConfig {
    CacheConfig {
        enabled: true,
        ..CacheConfig::default()
    }
}

fn answer(body: &str) -> CachedAnswer {
    CachedAnswer {
        stream: false,
        content_type: "application/json".into(),
        body: Bytes::from(body.to_owned()),
        usage: Usage::default(),
        deployment: "up/m".into(),
        stored_unix_ms: now_unix_ms(),
    }
}

const DET: &str = r#"{"model":"m","temperature":0,"messages":[]}"#;
const HOT: &str = r#"{"model":"m","temperature":0.8,"messages":[]}"#;

#[test]
fn scope_names_the_shape_of_the_stored_bytes() {
    let chat = Operation::ChatCompletions;
    let (oa, an) = (ClientFormat::OpenAi, ClientFormat::Anthropic);
    assert_eq!(scope(chat, oa, &req(DET)), "chat:openai:json");
    let s = r#"{"model":"m","stream":true}"#;
    let su = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
    assert_eq!(scope(chat, oa, &req(s)), "chat:openai:sse");
    assert_eq!(scope(chat, oa, &req(su)), "chat:openai:sse+usage");
    assert_eq!(scope(chat, an, &req(su)), "chat:anthropic:sse");
    assert_eq!(
        scope(Operation::Embeddings, oa, &req(s)),
        "embeddings:openai:json"
    );
}

#[tokio::test]
async fn plan_follows_config_mode_and_directives() {
    let cache = ResponseCache::new(&on(), CacheMetrics::default(), None);
    let d = CacheDirectives::default();
    let chat = Operation::ChatCompletions;
    let oa = ClientFormat::OpenAi;
    // Off: nothing at all.
    assert!(
        cache
            .plan(&CacheConfig::default(), d, "t", chat, oa, &req(DET))
            .is_none()
    );
    // Deterministic requests and embeddings are cacheable; sampling ones are not.
    assert!(matches!(
        cache.plan(&on(), d, "t", chat, oa, &req(DET)),
        Some(Ok(_))
    ));
    assert!(matches!(
        cache.plan(&on(), d, "t", chat, oa, &req(HOT)),
        Some(Err(CacheStatus::Bypass))
    ));
    assert!(matches!(
        cache.plan(&on(), d, "t", Operation::Embeddings, oa, &req(HOT)),
        Some(Ok(_))
    ));
    let force = CacheDirectives { force: true, ..d };
    assert!(matches!(
        cache.plan(&on(), force, "t", chat, oa, &req(HOT)),
        Some(Ok(_))
    ));
    // Opt-in mode: only forced requests.
    let opt_in = CacheConfig {
        mode: CacheMode::OptIn,
        ..on()
    };
    assert!(matches!(
        cache.plan(&opt_in, d, "t", chat, oa, &req(DET)),
        Some(Err(CacheStatus::Bypass))
    ));
    assert!(matches!(
        cache.plan(&opt_in, force, "t", chat, oa, &req(DET)),
        Some(Ok(_))
    ));
    // no-store: bypass.
    let none = CacheDirectives {
        lookup: false,
        store: false,
        force: false,
        max_age: None,
    };
    assert!(matches!(
        cache.plan(&on(), none, "t", chat, oa, &req(DET)),
        Some(Err(CacheStatus::Bypass))
    ));
}

#[tokio::test]
async fn store_then_lookup_per_tenant_and_directives() {
    let cache = ResponseCache::new(&on(), CacheMetrics::default(), None);
    let d = CacheDirectives::default();
    let chat = Operation::ChatCompletions;
    let oa = ClientFormat::OpenAi;
    let plan = |tenant: &str, d| match cache.plan(&on(), d, tenant, chat, oa, &req(DET)) {
        Some(Ok(p)) => p,
        other => panic!("not cacheable: {other:?}"),
    };
    let a = plan("a", d);
    assert!(cache.lookup(&a).await.is_none());
    cache.store(&a, answer("{}")).await;
    assert_eq!(&cache.lookup(&a).await.unwrap().body[..], b"{}");
    // Another tenant, same request: its own (empty) entry.
    assert!(cache.lookup(&plan("b", d)).await.is_none());
    // no-cache: no lookup, but stores.
    let revalidate = plan("a", CacheDirectives { lookup: false, ..d });
    assert!(cache.lookup(&revalidate).await.is_none());
    cache.store(&revalidate, answer("[1]")).await;
    assert_eq!(&cache.lookup(&a).await.unwrap().body[..], b"[1]");
    // Over the entry limit: not stored.
    let small = CachePlan {
        max_entry_bytes: 2,
        ..plan("c", d)
    };
    cache.store(&small, answer("[1,2]")).await;
    assert!(cache.lookup(&small).await.is_none());
}
