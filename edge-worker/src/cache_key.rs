//! Which requests may be answered from the edge cache, and the key they are stored under.
//!
//! The key is the core gateway's: [`datamind_llm::cache_key::cache_key_value`] (SHA-256 over
//! a domain tag, the scope, the tenant — each length-prefixed — and the canonical request:
//! sorted keys, no whitespace, `0.0` = `0`, `stream`, `stream_options` and `user` dropped).
//! The edge uses the scope `chat`: it stores one [`crate::completion::Completion`] per
//! request and renders it as JSON or SSE, whichever the client asked for, so a streamed and
//! a non-streamed request share an entry. (The gateway stores the exact bytes it sent, so
//! its scopes also name the client format and delivery, e.g. `chat:openai:sse`.)

use serde_json::Value;

/// What the client said about caching (request header `x-datamind-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheOptIn {
    /// No header: cache only deterministic requests.
    #[default]
    Default,
    /// `on` (or `force`, as at the core gateway): cache even if sampling is not deterministic.
    On,
    /// `off`: never read or write the cache.
    Off,
}

impl CacheOptIn {
    /// Reads the header value (case-insensitive); unknown values mean [`CacheOptIn::Default`].
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if matches!(v.as_str(), "on" | "force" | "true" | "1" | "use") => Self::On,
            Some(v) if matches!(v.as_str(), "off" | "false" | "0" | "bypass" | "no-store") => {
                Self::Off
            }
            _ => Self::Default,
        }
    }
}

/// Whether an answer to `req` may be served from, and stored in, the cache.
///
/// Deterministic means `temperature` is 0 (or `top_k` is 1) and at most one choice is
/// asked for; a client can opt in for any request with one choice, and opt out always.
pub fn is_cacheable(req: &Value, opt: CacheOptIn) -> bool {
    let n_ok = match req.get("n") {
        None | Some(Value::Null) => true,
        Some(n) => n.as_f64() == Some(1.0),
    };
    if !n_ok || opt == CacheOptIn::Off {
        return false;
    }
    if opt == CacheOptIn::On {
        return true;
    }
    let temp_zero = req.get("temperature").and_then(Value::as_f64) == Some(0.0);
    let top_k_one = req.get("top_k").and_then(Value::as_f64) == Some(1.0);
    temp_zero || top_k_one
}

/// The cache key for `req` (a JSON object) of operation `op` (e.g. `"chat"`) for `tenant`:
/// 64 hex digits.
pub fn cache_key(tenant: &str, op: &str, req: &Value) -> String {
    datamind_llm::cache_key::cache_key_value(tenant, op, req).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_ignores_order_whitespace_transport_fields_and_float_form() {
        let a: Value = serde_json::from_str(
            r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let b: Value = serde_json::from_str(
            r#"{ "messages":[{"content":"hi","role":"user"}], "stream":true,
                 "stream_options":{"include_usage":true}, "temperature":0.0, "model":"m", "user":"u1" }"#,
        )
        .unwrap();
        assert_eq!(cache_key("t", "chat", &a), cache_key("t", "chat", &b));
    }

    #[test]
    fn key_separates_tenants_operations_and_content() {
        let a = json!({"model":"m","messages":[{"role":"user","content":"hi"}]});
        let k = cache_key("t1", "chat", &a);
        assert_eq!(k.len(), 64);
        assert_ne!(k, cache_key("t2", "chat", &a));
        assert_ne!(k, cache_key("t1", "text_completion", &a));
        let b = json!({"model":"m","messages":[{"role":"user","content":"hi!"}]});
        assert_ne!(k, cache_key("t1", "chat", &b));
        // A tenant name cannot bleed into the operation or the body.
        assert_ne!(cache_key("a\0b", "chat", &a), cache_key("a", "b\0chat", &a));
    }

    #[test]
    fn key_is_the_core_gateways() {
        let a = json!({"model":"m","temperature":0,"stream":true});
        assert_eq!(
            cache_key("team-a", "chat:openai:json", &a),
            "3fc985ae2fa1419da392fd2f84bfc6aa57a35342650ff3fe8105380feecd429c"
        );
    }

    #[test]
    fn cacheability_rules() {
        let det = json!({"model":"m","temperature":0});
        let hot = json!({"model":"m","temperature":0.7});
        let many = json!({"model":"m","temperature":0,"n":3});
        assert!(is_cacheable(&det, CacheOptIn::Default));
        assert!(!is_cacheable(&hot, CacheOptIn::Default));
        assert!(is_cacheable(&hot, CacheOptIn::On));
        assert!(!is_cacheable(&det, CacheOptIn::Off));
        assert!(!is_cacheable(&many, CacheOptIn::On));
        assert!(is_cacheable(
            &json!({"model":"m","top_k":1}),
            CacheOptIn::Default
        ));
        assert!(!is_cacheable(&json!({"model":"m"}), CacheOptIn::Default));
        assert_eq!(CacheOptIn::from_header(Some(" ON ")), CacheOptIn::On);
        assert_eq!(CacheOptIn::from_header(Some("bypass")), CacheOptIn::Off);
        assert_eq!(CacheOptIn::from_header(Some("maybe")), CacheOptIn::Default);
        assert_eq!(CacheOptIn::from_header(None), CacheOptIn::Default);
    }
}
