//! Response caching, the pure part: which requests may be answered from a cache, what the
//! client's cache headers mean, and the key an answer is stored under.
//!
//! Shared by the core gateway and the edge worker, so an entry means the same thing at
//! either tier. Nothing here reads a clock or does I/O.
//!
//! ## The key
//!
//! `SHA-256(len‖"datamind/response-cache/v1" ‖ len‖scope ‖ len‖tenant ‖ canonical)`, every
//! part but the last prefixed with its length (8 bytes, big-endian), so no tenant or scope
//! can be confused with another however it is spelt. The tenant is always part of it:
//! tenants never share entries. `scope` names what the stored bytes are (the gateway uses
//! `operation:client-format:delivery`, e.g. `chat:openai:sse+usage`), so an answer is only
//! replayed to a request that wants exactly that shape.
//!
//! `canonical` is the request JSON with these top-level fields removed — `stream`,
//! `stream_options` (the scope says how the answer is delivered) and `user` (an end-user
//! label for abuse tracking that does not change the answer) — object keys sorted at every
//! level, no whitespace, and integral floats written as integers (`0.0` and `0` are the same
//! temperature). Everything else stays: `model` (the client-facing group), messages,
//! tools, `tool_choice`, `response_format`, `seed`, sampling and limits. The canonical text
//! is hashed as it is written, so a large prompt is never copied.
//!
//! ## Which requests
//!
//! [`is_deterministic`]: `temperature` 0 or `top_k` 1. Anything else is cached only when the
//! client opts in (`x-datamind-cache: force`); see [`CacheDirectives`].

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{LlmError, ParsedRequest};

/// Domain separator hashed first into every key; change it when the canonical form changes.
pub const KEY_DOMAIN: &str = "datamind/response-cache/v1";

/// Top-level fields that change how an answer is delivered (or who asked), not what it says.
pub const TRANSPORT_FIELDS: &[&str] = &["stream", "stream_options", "user"];

/// A cache key: the SHA-256 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Lower-case hex, 64 characters (for external stores).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// What a client's request headers say about the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheDirectives {
    /// Look for a stored answer (false for `no-cache`, `max-age=0`, `no-store`, `off`).
    pub lookup: bool,
    /// Store the answer (false for `no-store` and `off`).
    pub store: bool,
    /// Cache even a request that is not deterministic (`x-datamind-cache: force`).
    pub force: bool,
    /// Accept only an entry stored at most this many seconds ago (`max-age=N`).
    pub max_age: Option<u64>,
}

impl Default for CacheDirectives {
    fn default() -> Self {
        Self {
            lookup: true,
            store: true,
            force: false,
            max_age: None,
        }
    }
}

impl CacheDirectives {
    /// Reads `x-datamind-cache` and `Cache-Control` (values as sent; case-insensitive).
    ///
    /// - `x-datamind-cache: force` (or `on`): opt in, whatever the sampling settings;
    ///   `off` (or `bypass`): neither look up nor store. Other values are ignored.
    /// - `Cache-Control: no-store`: neither look up nor store. `no-cache` or `max-age=0`:
    ///   do not answer from the cache, but store the fresh answer (revalidation).
    ///   `max-age=N`: answer only from an entry at most N seconds old (else go upstream
    ///   and store the fresh answer).
    pub fn from_headers(x_datamind_cache: Option<&[u8]>, cache_control: Option<&[u8]>) -> Self {
        let mut d = Self::default();
        if let Some(v) = x_datamind_cache {
            let v = String::from_utf8_lossy(v).trim().to_ascii_lowercase();
            match v.as_str() {
                "force" | "on" => d.force = true,
                "off" | "bypass" => {
                    d.lookup = false;
                    d.store = false;
                }
                _ => {}
            }
        }
        if let Some(v) = cache_control {
            for token in String::from_utf8_lossy(v).split(',') {
                let token = token.trim().to_ascii_lowercase();
                match token.as_str() {
                    "no-store" => {
                        d.lookup = false;
                        d.store = false;
                    }
                    "no-cache" => d.lookup = false,
                    t => {
                        if let Some(n) = t
                            .strip_prefix("max-age=")
                            .and_then(|n| n.trim().parse::<u64>().ok())
                        {
                            if n == 0 {
                                d.lookup = false;
                            }
                            d.max_age = Some(d.max_age.map_or(n, |m| m.min(n)));
                        }
                    }
                }
            }
        }
        d
    }

    /// Whether the cache is involved at all.
    pub fn any(&self) -> bool {
        self.lookup || self.store
    }
}

/// Whether sampling is switched off: `temperature` is 0 or `top_k` is 1. Reads two
/// top-level fields only (no full parse).
pub fn is_deterministic(req: &ParsedRequest) -> bool {
    let is = |field: &str, want: f64| {
        req.raw_field(field)
            .and_then(|raw| serde_json::from_slice::<f64>(raw).ok())
            == Some(want)
    };
    is("temperature", 0.0) || is("top_k", 1.0)
}

/// The key of `body` (a JSON object) in `scope` for `tenant`.
pub fn cache_key(tenant: &str, scope: &str, body: &[u8]) -> Result<CacheKey, LlmError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| LlmError::InvalidJson(e.to_string()))?;
    Ok(cache_key_value(tenant, scope, &v))
}

/// [`cache_key`] of an already parsed body.
pub fn cache_key_value(tenant: &str, scope: &str, req: &Value) -> CacheKey {
    let mut h = Sha256::new();
    for part in [KEY_DOMAIN, scope, tenant] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    write_request(&mut h, req);
    CacheKey(h.finalize().into())
}

/// Writes the canonical request: [`TRANSPORT_FIELDS`] dropped at the top level, then
/// [`write_canonical`].
pub fn write_request(out: &mut impl Sink, req: &Value) {
    match req {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !TRANSPORT_FIELDS.contains(&k.as_str()))
                .collect();
            keys.sort();
            write_object(out, keys.into_iter().map(|k| (k, &map[k])));
        }
        other => write_canonical(out, other),
    }
}

/// Where canonical bytes go: a buffer (tests) or straight into the hash.
pub trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Writes `v` canonically: keys sorted, no whitespace, integral floats as integers, strings
/// in serde_json's escaping.
pub fn write_canonical(out: &mut impl Sink, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            write_object(out, keys.into_iter().map(|k| (k, &map[k])));
        }
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_canonical(out, item);
            }
            out.put(b"]");
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                out.put((f as i64).to_string().as_bytes());
            }
            _ => out.put(n.to_string().as_bytes()),
        },
        Value::String(s) => write_string(out, s),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Null => out.put(b"null"),
    }
}

fn write_string(out: &mut impl Sink, s: &str) {
    // A &str always serializes; the fallback only keeps this total.
    match serde_json::to_vec(s) {
        Ok(v) => out.put(&v),
        Err(_) => out.put(b"\"\""),
    }
}

fn write_object<'a>(out: &mut impl Sink, fields: impl Iterator<Item = (&'a String, &'a Value)>) {
    out.put(b"{");
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.put(b",");
        }
        write_string(out, k);
        out.put(b":");
        write_canonical(out, v);
    }
    out.put(b"}");
}

#[cfg(test)]
mod tests;
