//! The trace's facts of a whole OpenAI answer (`id`, `model`, every choice's
//! `finish_reason`), borrowed from its bytes and read without walking the choices.
//!
//! OpenAI and the servers that copy its format (vLLM, Ollama, Azure, Workers AI) write `id`
//! and `model` before `choices`, so the top level is read member by member only up to
//! `choices`; the finish reasons are then found by searching the rest of the body for the
//! key. Why a match is a key: its first quote has no backslash before it, so it is
//! structural (inside a string every quote is escaped), and after it comes `:`. Anything
//! else (`id` or `model` after `choices`, an escape in a key or value, a backslash before
//! the key, a value of another type) gives up, and the full reader
//! ([`super::Usage::with_facts_from_openai_json`]) decides. Nothing here judges the rest of
//! the body, which passed to the client untouched; the facts feed a trace, not accounting.

use std::sync::LazyLock;

use memchr::memmem;
use smallvec::SmallVec;

use super::quick::Walk;

/// What a whole OpenAI-format answer says about itself, borrowed from its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactsRef<'a> {
    /// The answer's `id`.
    pub id: Option<&'a str>,
    /// The answer's `model`.
    pub model: Option<&'a str>,
    /// Every `finish_reason` after `choices`, in order (`null` ones left out).
    pub finish_reasons: SmallVec<[&'a str; 2]>,
}

impl<'a> FactsRef<'a> {
    /// The facts of an answer whose `id` and `model` come before `choices`; `None` for any
    /// other shape (see the module guide).
    pub fn read(body: &'a [u8]) -> Option<Self> {
        let mut w = Walk { b: body, i: 0 };
        if !w.eat(b'{') {
            return None;
        }
        let (mut id, mut model) = (None, None);
        let mut seen = [false; 2];
        loop {
            w.ws();
            if body.get(w.i) != Some(&b'"') {
                return None;
            }
            let (key, escaped) = w.string()?;
            if escaped || !w.eat(b':') {
                return None;
            }
            let field = match &body[key] {
                b"id" => 0,
                b"model" => 1,
                b"choices" => break,
                _ => {
                    w.skip_value()?;
                    if !w.eat(b',') {
                        return None; // no choices, or a broken body: the full reader decides
                    }
                    continue;
                }
            };
            if std::mem::replace(&mut seen[field], true) {
                return None;
            }
            let value = opt_raw(&mut w)?;
            if field == 0 {
                id = value;
            } else {
                model = value;
            }
            if !w.eat(b',') {
                return None;
            }
        }
        if seen != [true, true] {
            return None;
        }
        // The id and the model as text: the top level up to `choices` checked at once (one
        // call, not one per value), each value alone only when that fails.
        let text = |r: Option<std::ops::Range<usize>>, head: Option<&'a str>| match r {
            None => Some(None),
            Some(r) => match head {
                Some(h) => h.get(r).map(Some),
                None => std::str::from_utf8(&body[r]).ok().map(Some),
            },
        };
        let head = std::str::from_utf8(&body[..w.i]).ok();
        Some(Self {
            id: text(id, head)?,
            model: text(model, head)?,
            finish_reasons: finish_reasons(&body[w.i..])?,
        })
    }
}

/// The key the finish reasons are found by, quotes included.
const FINISH_REASON: &[u8] = b"\"finish_reason\"";

/// A SIMD substring search for [`FINISH_REASON`], built once.
static FINISH_REASON_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(FINISH_REASON));

/// Every `"finish_reason":` value in `rest`: the key found by a SIMD substring search,
/// after one pass over the backslashes (a backslash may start an escape that spells the key
/// differently, and then the full reader decides).
fn finish_reasons(rest: &[u8]) -> Option<SmallVec<[&str; 2]>> {
    if memchr::memchr_iter(b'\\', rest).any(|at| escapes_a_letter(&rest[at..])) {
        return None;
    }
    let mut out = SmallVec::new();
    let mut from = 0;
    for key in FINISH_REASON_FINDER.find_iter(rest) {
        if key < from {
            continue; // inside the value just read
        }
        if key > 0 && rest[key - 1] == b'\\' {
            return None;
        }
        let mut w = Walk {
            b: rest,
            i: key + FINISH_REASON.len(),
        };
        if !w.eat(b':') {
            return None;
        }
        if let Some(r) = opt_raw(&mut w)? {
            out.push(std::str::from_utf8(&rest[r]).ok()?);
        }
        from = w.i;
    }
    Some(out)
}

/// `escape` starts with a `\u` escape of a character from U+0050 to U+007F (`_` and every
/// letter of `finish_reason` are there): a key spelled with one would not match the
/// search, so the full reader decides. Encoders escape only control characters, quotes,
/// backslashes and (some) `<`, `>`, `&` or non-ASCII this way, so real answers stay on the
/// quick path.
fn escapes_a_letter(escape: &[u8]) -> bool {
    escape.starts_with(b"\\u00") && matches!(escape.get(4), Some(b'5'..=b'7'))
}

/// `null` or a string without escapes (after whitespace), as the range of its raw
/// content; anything else gives up.
fn opt_raw(w: &mut Walk<'_>) -> Option<Option<std::ops::Range<usize>>> {
    if w.null() {
        return Some(None);
    }
    if w.b.get(w.i) != Some(&b'"') {
        return None;
    }
    let (raw, escaped) = w.string()?;
    if escaped {
        return None;
    }
    Some(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    fn owned(f: &FactsRef<'_>) -> (Option<String>, Option<String>, Vec<String>) {
        (
            f.id.map(str::to_owned),
            f.model.map(str::to_owned),
            f.finish_reasons.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Where the quick read takes a body, it agrees with the full reader.
    #[test]
    fn agrees_with_the_full_reader_on_openai_shaped_answers() {
        let bodies: &[&[u8]] = &[
            br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi \"there\" finish_reason"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            br#" { "id" : "a" , "model" : "m" , "choices" : [ { "finish_reason" : "length" } , { "finish_reason" : null } , { "message" : { "content" : "\"finish_reason\": \"x\"" }, "finish_reason" : "tool_calls" } ] } "#,
            br#"{"id":null,"model":"m","choices":[]}"#,
            br#"{"model":"m","id":"x","system_fingerprint":{"a":[1,{"b":"}"}]},"choices":[{"finish_reason":"stop"},{"finish_reason":"stop"}]}"#,
        ];
        for body in bodies {
            let quick = FactsRef::read(body).unwrap_or_else(|| {
                panic!("taken: {}", String::from_utf8_lossy(body));
            });
            let (_, full) = Usage::with_facts_from_openai_json(body);
            let full = full.unwrap_or_else(|| panic!("full: {}", String::from_utf8_lossy(body)));
            assert_eq!(
                owned(&quick),
                (full.id, full.model, full.finish_reasons),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Shapes it does not take: the full reader decides.
    #[test]
    fn gives_up_on_other_shapes() {
        let bodies: &[&[u8]] = &[
            br#"{"choices":[{"finish_reason":"stop"}],"id":"a","model":"m"}"#, // after choices
            br#"{"id":"a","choices":[{"finish_reason":"stop"}],"model":"m"}"#,
            br#"{"id":"a\u0041","model":"m","choices":[]}"#, // escaped value
            br#"{"i\u0064":"a","model":"m","choices":[]}"#,  // escaped key
            br#"{"id":"a","model":"m","choices":[{"finish_reason":"st\u006fp"}]}"#,
            br#"{"id":"a","model":"m","choices":[{"finish_reason":1}]}"#,
            br#"{"id":"a","id":"b","model":"m","choices":[]}"#, // repeated
            br#"{"id":"a","model":7,"choices":[]}"#,
            br#"{"id":"a","model":"m"}"#, // no choices
            br#"{"id":"a","model":"m","choices":[{"\u0066inish_reason":"stop"}]}"#,
            br#"{"id":"a","model":"m","choices":[{"finish_reaso\u006E":"stop"}]}"#,
            br#"[{"id":"a","model":"m","choices":[]}]"#,
            b"not json",
            b"",
        ];
        for body in bodies {
            assert_eq!(
                FactsRef::read(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// A quote that a backslash escapes is inside a string, even when the match ends a
    /// key (`x"finish_reason`): the full reader decides. A match ending in an escaped
    /// quote is no match at all.
    #[test]
    fn a_match_after_a_backslash_gives_up() {
        let body = br#"{"id":"a","model":"m","choices":[{"x\"finish_reason":"y"}]}"#;
        assert_eq!(FactsRef::read(body), None);
        let (_, full) = Usage::with_facts_from_openai_json(body);
        assert_eq!(full.map(|f| f.finish_reasons), Some(Vec::new()));
        let body = br#"{"id":"a","model":"m","choices":[{"message":{"content":"x\"finish_reason\":\"y"}}]}"#;
        assert_eq!(
            FactsRef::read(body).map(|f| f.finish_reasons.len()),
            Some(0)
        );
    }

    /// The bench mock's answer (`mock-llm`, as `curl` shows it) is read borrowed.
    #[test]
    fn reads_the_mock_answer() {
        let body = br#"{"id":"chatcmpl-mock-1","object":"chat.completion","created":1795730675,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"This is a mock reply."},"finish_reason":"stop"}],"usage":{"prompt_tokens":17,"completion_tokens":5,"total_tokens":22}}"#;
        let f = FactsRef::read(body).unwrap_or_default();
        assert_eq!(f.id, Some("chatcmpl-mock-1"));
        assert_eq!(f.model, Some("mock"));
        assert_eq!(f.finish_reasons.as_slice(), ["stop"]);
    }

    /// On thousands of generated valid answers it takes, the quick read has the full
    /// reader's id and model, and the full reader's finish reasons in order; exactly them
    /// when every `"finish_reason"` in the body is one the full reader counted.
    #[test]
    fn differential_against_the_full_reader() {
        use crate::json_scan::testgen::{Rng, document};
        let mut rng = Rng::new(0xfac7);
        let mut taken = 0;
        for n in 0..4000 {
            // Generated choices (objects with random keys, `finish_reason` among them,
            // nested), after an id and a model, before a generated tail member.
            let mut doc = format!(r#"{{"id":"c{n}","object":"x","model":"m{n}","choices":["#);
            for i in 0..rng.below(4) {
                if i > 0 {
                    doc.push(',');
                }
                doc.push_str(&String::from_utf8_lossy(&document(&mut rng)));
            }
            doc.push_str("],\"usage\":");
            doc.push_str(&String::from_utf8_lossy(&document(&mut rng)));
            doc.push('}');
            let doc = doc.into_bytes();
            if serde_json::from_slice::<serde_json::Value>(&doc).is_err() {
                continue;
            }
            let (Some(quick), (_, Some(full))) = (
                FactsRef::read(&doc),
                Usage::with_facts_from_openai_json(&doc),
            ) else {
                continue;
            };
            taken += 1;
            let show = String::from_utf8_lossy(&doc);
            assert_eq!(quick.id, full.id.as_deref(), "{show}");
            assert_eq!(quick.model, full.model.as_deref(), "{show}");
            let mut rest = quick.finish_reasons.iter();
            for r in &full.finish_reasons {
                assert!(rest.any(|q| q == r), "{show}");
            }
            let keys = show.matches("\"finish_reason\"").count();
            if keys == full.finish_reasons.len() {
                assert_eq!(
                    quick.finish_reasons.as_slice(),
                    full.finish_reasons,
                    "{show}"
                );
            }
        }
        assert!(taken > 1000, "only {taken} generated answers taken");
    }
}
