//! The prompt-prefix key (`request.prefix`): requests that open with the same prompt get the
//! same key, so affinity sends them to the same vLLM replica and its prefix cache hits, also
//! when the client sends no session id.
//!
//! What is hashed, from the raw JSON of the body (nothing is re-serialised or copied):
//! - chat (`messages`, and Anthropic's top-level `system`): `system` when present, then the
//!   leading messages up to and including the first `user` message — the part every later
//!   turn of the same conversation repeats, byte for byte;
//! - completions (`prompt`): the prompt;
//!
//! each capped at `max_bytes` in total, so a long shared preamble (a system prompt, a
//! document) keys on its first `max_bytes` bytes. A body with none of these fields (e.g.
//! embeddings) has no key (empty string). Deterministic on every target, so gateways and the
//! edge agree.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::Deserialize;

use crate::ParsedRequest;

/// The default of `max_bytes`: a system prompt and a first question, rarely more.
pub const DEFAULT_PREFIX_BYTES: usize = 4096;

#[derive(Deserialize)]
struct Role<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
}

/// `request.prefix`, computed the first time a rule reads it (most requests match rules
/// that never do).
#[derive(Debug, Clone, Default)]
pub struct PrefixKey {
    source: Option<Source>,
    key: OnceLock<String>,
}

#[derive(Debug, Clone)]
struct Source {
    body: Bytes,
    system: Option<Range<usize>>,
    messages: Option<Range<usize>>,
    prompt: Option<Range<usize>>,
    max_bytes: usize,
}

impl PrefixKey {
    /// A key given as is.
    pub fn ready(key: impl Into<String>) -> Self {
        Self {
            source: None,
            key: OnceLock::from(key.into()),
        }
    }

    /// The key of `req`, hashing at most `max_bytes` once it is read (the body is shared,
    /// not copied).
    pub fn of(req: &ParsedRequest, max_bytes: usize) -> Self {
        Self {
            source: Some(Source {
                body: req.body().clone(),
                system: req.raw_range("system"),
                messages: req.raw_range("messages"),
                prompt: req.raw_range("prompt"),
                max_bytes,
            }),
            key: OnceLock::new(),
        }
    }

    /// The key: 16 hex digits, or the empty string when the request has no prompt.
    pub fn get(&self) -> &str {
        self.key.get_or_init(|| {
            let Some(s) = &self.source else {
                return String::new();
            };
            let part = |r: &Option<Range<usize>>| r.clone().and_then(|r| s.body.get(r));
            hash_parts(
                part(&s.system),
                part(&s.messages),
                part(&s.prompt),
                s.max_bytes,
            )
            .map_or_else(String::new, |h| format!("{h:016x}"))
        })
    }
}

/// The prefix key of `req` as 16 hex digits, or the empty string when it has no prompt.
pub fn prefix_key(req: &ParsedRequest, max_bytes: usize) -> String {
    prefix_hash(req, max_bytes).map_or_else(String::new, |h| format!("{h:016x}"))
}

/// The prefix hash of `req` (see the module docs), `None` without a prompt.
pub fn prefix_hash(req: &ParsedRequest, max_bytes: usize) -> Option<u64> {
    hash_parts(
        req.raw_field("system"),
        req.raw_field("messages"),
        req.raw_field("prompt"),
        max_bytes,
    )
}

/// The hash over the raw JSON of the `system`, `messages` and `prompt` fields.
fn hash_parts(
    system: Option<&[u8]>,
    messages: Option<&[u8]>,
    prompt: Option<&[u8]>,
    max_bytes: usize,
) -> Option<u64> {
    let mut h = Hasher::new(max_bytes);
    if let Some(system) = system {
        h.write(system);
    }
    if let Some(messages) = messages {
        let list: Vec<&serde_json::value::RawValue> = serde_json::from_slice(messages).ok()?;
        for m in list {
            if h.full() {
                break;
            }
            h.write(m.get().as_bytes());
            let role: Option<Role<'_>> = serde_json::from_str(m.get()).ok();
            if role.and_then(|r| r.role).is_some_and(|r| r == "user") {
                break;
            }
        }
        return Some(h.finish());
    }
    h.write(prompt?);
    Some(h.finish())
}

/// A fast word-at-a-time 64-bit hash over at most `left` bytes (not for security: keys
/// only spread replicas).
struct Hasher {
    h: u64,
    left: usize,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher {
    fn new(max_bytes: usize) -> Self {
        Self {
            h: 0x243f_6a88_85a3_08d3,
            left: max_bytes,
        }
    }

    fn full(&self) -> bool {
        self.left == 0
    }

    fn write(&mut self, bytes: &[u8]) {
        let bytes = &bytes[..bytes.len().min(self.left)];
        self.left -= bytes.len();
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length keeps "ab" + "c" apart from "a" + "bc".
        self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56) ^ bytes.len() as u64);
    }

    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(K).rotate_left(31);
    }

    fn finish(&self) -> u64 {
        let mut h = self.h;
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn key(body: &str, max: usize) -> String {
        prefix_key(
            &ParsedRequest::parse(Bytes::from(body.to_owned())).unwrap(),
            max,
        )
    }

    const SYS: &str = r#"{"role":"system","content":"You are a careful assistant."}"#;

    fn chat(messages: &[&str]) -> String {
        format!(r#"{{"model":"m","messages":[{}]}}"#, messages.join(","))
    }

    #[test]
    fn every_turn_of_a_conversation_has_the_same_key() {
        let u1 = r#"{"role":"user","content":"Summarise the contract."}"#;
        let a1 = r#"{"role":"assistant","content":"It says…"}"#;
        let u2 = r#"{"role":"user","content":"And clause 7?"}"#;
        let turn1 = key(&chat(&[SYS, u1]), 4096);
        let turn2 = key(&chat(&[SYS, u1, a1, u2]), 4096);
        assert_eq!(turn1.len(), 16);
        assert_eq!(turn1, turn2);
        // Without a system prompt too.
        assert_eq!(key(&chat(&[u1]), 4096), key(&chat(&[u1, a1, u2]), 4096));
    }

    #[test]
    fn other_conversations_and_other_system_prompts_differ() {
        let u1 = r#"{"role":"user","content":"Summarise the contract."}"#;
        let other = r#"{"role":"user","content":"Translate the letter."}"#;
        let sys2 = r#"{"role":"system","content":"You are a terse assistant."}"#;
        let base = key(&chat(&[SYS, u1]), 4096);
        assert_ne!(base, key(&chat(&[SYS, other]), 4096));
        assert_ne!(base, key(&chat(&[sys2, u1]), 4096));
    }

    #[test]
    fn the_length_cap_groups_requests_sharing_a_long_preamble() {
        let u1 = r#"{"role":"user","content":"Summarise the contract."}"#;
        let other = r#"{"role":"user","content":"Translate the letter."}"#;
        // The cap falls inside the shared system message: same key.
        assert_eq!(key(&chat(&[SYS, u1]), 20), key(&chat(&[SYS, other]), 20));
        assert_ne!(
            key(&chat(&[SYS, u1]), 4096),
            key(&chat(&[SYS, other]), 4096)
        );
    }

    #[test]
    fn anthropic_system_completions_prompt_and_no_prompt() {
        let a = r#"{"model":"m","system":"Be brief.","messages":[{"role":"user","content":"hi"}]}"#;
        let b = r#"{"model":"m","system":"Be long.","messages":[{"role":"user","content":"hi"}]}"#;
        assert_ne!(key(a, 4096), key(b, 4096));
        let p = r#"{"model":"m","prompt":"Once upon a time"}"#;
        assert_eq!(key(p, 4096).len(), 16);
        assert_eq!(key(r#"{"model":"m","input":"embed me"}"#, 4096), "");
    }

    #[test]
    fn the_lazy_key_is_the_same_key() {
        let body = chat(&[SYS, r#"{"role":"user","content":"hi"}"#]);
        let req = ParsedRequest::parse(Bytes::from(body.clone())).unwrap();
        let lazy = PrefixKey::of(&req, 4096);
        assert_eq!(lazy.get(), key(&body, 4096));
        assert_eq!(PrefixKey::default().get(), "");
        assert_eq!(PrefixKey::ready("k").get(), "k");
    }

    #[test]
    fn the_hash_is_stable() {
        // Gateways and the edge must agree across versions: pin one value.
        assert_eq!(key(&chat(&[SYS]), 4096), "921994acc8a58e56");
        let mut h = Hasher::new(64);
        h.write(b"abc");
        let one = h.finish();
        let mut h = Hasher::new(64);
        h.write(b"ab");
        h.write(b"c");
        assert_ne!(one, h.finish());
    }
}
