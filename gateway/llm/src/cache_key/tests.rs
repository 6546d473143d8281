use bytes::Bytes;
use serde_json::json;

use super::*;

fn key(tenant: &str, scope: &str, body: &str) -> CacheKey {
    cache_key(tenant, scope, body.as_bytes()).unwrap()
}

fn parsed(body: &str) -> ParsedRequest {
    ParsedRequest::parse(Bytes::from(body.to_owned())).unwrap()
}

#[test]
fn key_ignores_order_whitespace_transport_fields_and_float_form() {
    let a = r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#;
    let b = r#"{ "messages":[{"content":"hi","role":"user"}], "stream":true,
                 "stream_options":{"include_usage":true}, "temperature":0.0, "model":"m",
                 "user":"u1" }"#;
    assert_eq!(key("t", "chat", a), key("t", "chat", b));
}

#[test]
fn key_separates_tenants_scopes_and_everything_that_changes_the_answer() {
    let base = json!({"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]});
    let k = cache_key_value("t1", "chat:openai:json", &base);
    assert_eq!(k.to_hex().len(), 64);
    assert_ne!(k, cache_key_value("t2", "chat:openai:json", &base));
    assert_ne!(k, cache_key_value("t1", "chat:openai:sse", &base));
    for (field, value) in [
        ("model", json!("other")),
        ("messages", json!([{"role":"user","content":"hi!"}])),
        (
            "tools",
            json!([{"type":"function","function":{"name":"f"}}]),
        ),
        ("tool_choice", json!("required")),
        ("response_format", json!({"type":"json_object"})),
        ("seed", json!(7)),
        ("max_tokens", json!(5)),
        ("temperature", json!(0.5)),
    ] {
        let mut changed = base.clone();
        changed[field] = value;
        assert_ne!(
            k,
            cache_key_value("t1", "chat:openai:json", &changed),
            "{field} must change the key"
        );
    }
    // Nested key order does not matter, nested values do.
    let nested_a =
        json!({"model":"m","response_format":{"type":"json_schema","json_schema":{"a":1,"b":2}}});
    let nested_b =
        json!({"response_format":{"json_schema":{"b":2,"a":1},"type":"json_schema"},"model":"m"});
    assert_eq!(
        cache_key_value("t", "s", &nested_a),
        cache_key_value("t", "s", &nested_b)
    );
}

#[test]
fn parts_are_length_prefixed_so_names_cannot_collide() {
    let body = json!({"model":"m"});
    assert_ne!(
        cache_key_value("ab", "c", &body),
        cache_key_value("a", "bc", &body)
    );
    assert_ne!(
        cache_key_value("a\0b", "chat", &body),
        cache_key_value("a", "b\0chat", &body)
    );
}

#[test]
fn known_answer_vector() {
    // Pins the format: a change here invalidates every stored entry (bump KEY_DOMAIN).
    let body = json!({"model":"m","temperature":0,"stream":true});
    let mut canon = Vec::new();
    write_request(&mut canon, &body);
    assert_eq!(canon, br#"{"model":"m","temperature":0}"#);
    // Computed independently (Python hashlib) from the documented layout.
    assert_eq!(
        cache_key_value("team-a", "chat:openai:json", &body).to_hex(),
        "3fc985ae2fa1419da392fd2f84bfc6aa57a35342650ff3fe8105380feecd429c"
    );
}

#[test]
fn canonical_form_is_stable() {
    let mut s = Vec::new();
    write_canonical(
        &mut s,
        &json!({"b":[1.0, 2.5, "x\"y", -3], "a": {"d": null, "c": true, "e": false}}),
    );
    assert_eq!(
        String::from_utf8(s).unwrap(),
        r#"{"a":{"c":true,"d":null,"e":false},"b":[1,2.5,"x\"y",-3]}"#
    );
}

#[test]
fn rejects_invalid_json() {
    assert!(cache_key("t", "s", b"{").is_err());
}

#[test]
fn determinism_rules() {
    assert!(is_deterministic(&parsed(
        r#"{"model":"m","temperature":0}"#
    )));
    assert!(is_deterministic(&parsed(
        r#"{"model":"m","temperature":0.0}"#
    )));
    assert!(is_deterministic(&parsed(
        r#"{"model":"m","top_k":1,"temperature":0.9}"#
    )));
    assert!(!is_deterministic(&parsed(
        r#"{"model":"m","temperature":0.7}"#
    )));
    assert!(!is_deterministic(&parsed(r#"{"model":"m"}"#)));
    assert!(!is_deterministic(&parsed(
        r#"{"model":"m","temperature":null}"#
    )));
    assert!(!is_deterministic(&parsed(
        r#"{"model":"m","temperature":"0"}"#
    )));
}

#[test]
fn directives_from_headers() {
    let d = |x: Option<&str>, cc: Option<&str>| {
        CacheDirectives::from_headers(x.map(str::as_bytes), cc.map(str::as_bytes))
    };
    assert_eq!(d(None, None), CacheDirectives::default());
    assert!(d(None, None).lookup && d(None, None).store && !d(None, None).force);
    assert!(d(Some(" Force "), None).force);
    assert!(d(Some("on"), None).force);
    let off = d(Some("off"), None);
    assert!(!off.lookup && !off.store && !off.any());
    let no_store = d(None, Some("no-store"));
    assert!(!no_store.lookup && !no_store.store);
    let no_cache = d(None, Some("No-Cache"));
    assert!(!no_cache.lookup && no_cache.store && no_cache.any());
    let max_age0 = d(None, Some("private, max-age=0"));
    assert!(!max_age0.lookup && max_age0.store);
    let fresh = d(None, Some("max-age=60"));
    assert!(fresh.lookup && fresh.store);
    assert_eq!(fresh.max_age, Some(60));
    assert_eq!(d(None, Some("max-age=60, max-age=5")).max_age, Some(5));
    assert_eq!(d(None, Some("max-age=soon")), CacheDirectives::default());
    assert_eq!(d(Some("maybe"), None), CacheDirectives::default());
    // no-store wins over force.
    let both = d(Some("force"), Some("no-cache, no-store"));
    assert!(both.force && !both.lookup && !both.store);
}
