//! The edge cache: the Cache API of this location first, then KV (global, with TTL).
//!
//! Entries are complete answers ([`Completion`] as a `chat.completion` body) under the key
//! from [`crate::cache_key`], which already folds in the tenant. Only complete, successful
//! answers are stored (see `chat::respond`), so errors are never cached.

use worker::{Cache, Env, Headers, Response, console_error};

use crate::completion::Completion;

/// Where a hit came from, for the `x-datamind-cache-tier` header.
pub type Tier = &'static str;

fn url(key: &str) -> String {
    format!("https://edge-cache.datamind.internal/v1/chat/{key}")
}

fn kv_key(key: &str) -> String {
    format!("cache:v1:{key}")
}

fn cache_response(body: Vec<u8>, ttl: u64) -> worker::Result<Response> {
    let h = Headers::new();
    h.set("content-type", "application/json")?;
    h.set("cache-control", &format!("public, max-age={ttl}"))?;
    Ok(Response::from_bytes(body)?.with_headers(h))
}

/// Looks `key` up in the Cache API, then KV (refilling the Cache API on a KV hit).
pub async fn lookup(env: &Env, key: &str, ttl: u64) -> Option<(Completion, Tier)> {
    let cache = Cache::default();
    if let Ok(Some(mut hit)) = cache.get(url(key), false).await
        && let Ok(body) = hit.bytes().await
        && let Some(c) = Completion::from_openai_json(&body)
    {
        return Some((c, "colo"));
    }
    let kv = env.kv("CACHE_KV").ok()?;
    let body = kv.get(&kv_key(key)).bytes().await.ok()??;
    let c = Completion::from_openai_json(&body)?;
    if let Ok(resp) = cache_response(body, ttl)
        && let Err(e) = cache.put(url(key), resp).await
    {
        console_error!("cache api refill failed: {e:?}");
    }
    Some((c, "global"))
}

/// Stores a complete answer in both tiers.
pub async fn store(env: &Env, key: &str, answer: &Completion, ttl: u64) {
    let body = answer.to_json();
    match cache_response(body.clone(), ttl) {
        Ok(resp) => {
            if let Err(e) = Cache::default().put(url(key), resp).await {
                console_error!("cache api put failed: {e:?}");
            }
        }
        Err(e) => console_error!("cache api response: {e:?}"),
    }
    let Ok(kv) = env.kv("CACHE_KV") else { return };
    // KV refuses TTLs under 60 seconds.
    match kv.put_bytes(&kv_key(key), &body) {
        Ok(put) => {
            if let Err(e) = put.expiration_ttl(ttl.max(60)).execute().await {
                console_error!("kv cache put failed: {e:?}");
            }
        }
        Err(e) => console_error!("kv cache put failed: {e:?}"),
    }
}
