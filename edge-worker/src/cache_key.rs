//! Which requests may be answered from a cache, and the key they are stored under.
//!
//! Pure and dependency-light (serde_json, sha2) so it can move into `gateway/llm`
//! unchanged: the core gateway must derive the same key for the same tenant and request,
//! so that an answer cached at either tier means the same thing.
//!
//! The key is `hex(sha256("datamind-cache-v1\0" op "\0" tenant "\0" canonical))` where
//! `canonical` is the request JSON with the transport-only fields removed (`stream`,
//! `stream_options`, `user`), object keys sorted, no whitespace, and integral floats
//! written as integers (`0.0` and `0` are the same temperature). A streamed and a
//! non-streamed request therefore share one entry; the answer is replayed in whichever
//! form the client asked for.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Version tag hashed into every key; bump it when the canonical form changes.
pub const KEY_VERSION: &str = "datamind-cache-v1";

/// Top-level fields that change how an answer is delivered, not what it says.
const TRANSPORT_FIELDS: &[&str] = &["stream", "stream_options", "user"];

/// What the client said about caching (request header `x-datamind-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheOptIn {
    /// No header: cache only deterministic requests.
    #[default]
    Default,
    /// `on`: cache even if sampling is not deterministic.
    On,
    /// `off`: never read or write the cache.
    Off,
}

impl CacheOptIn {
    /// Reads the header value (case-insensitive); unknown values mean [`CacheOptIn::Default`].
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if matches!(v.as_str(), "on" | "true" | "1" | "use") => Self::On,
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

/// The cache key for `req` (a JSON object) of operation `op` (e.g. `"chat"`) for `tenant`.
pub fn cache_key(tenant: &str, op: &str, req: &Value) -> String {
    let mut canonical = String::with_capacity(256);
    match req {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !TRANSPORT_FIELDS.contains(&k.as_str()))
                .collect();
            keys.sort();
            write_object(&mut canonical, keys.into_iter().map(|k| (k, &map[k])));
        }
        other => write_canonical(&mut canonical, other),
    }
    let mut h = Sha256::new();
    for part in [KEY_VERSION, op, tenant] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Writes `v` in canonical form: sorted keys, no whitespace, integral floats as integers.
pub fn write_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            write_object(out, keys.into_iter().map(|k| (k, &map[k])));
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                out.push_str(&(f as i64).to_string());
            }
            _ => out.push_str(&n.to_string()),
        },
        // Strings, booleans and null: serde_json's compact form is already canonical.
        other => out.push_str(&other.to_string()),
    }
}

fn write_object<'a>(out: &mut String, fields: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        write_canonical(out, v);
    }
    out.push('}');
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
    fn canonical_form_is_stable() {
        let mut s = String::new();
        write_canonical(
            &mut s,
            &json!({"b":[1.0, 2.5, "x"], "a": {"d": null, "c": true}}),
        );
        assert_eq!(s, r#"{"a":{"c":true,"d":null},"b":[1,2.5,"x"]}"#);
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
