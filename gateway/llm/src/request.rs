//! What the gateway needs to know about a client's JSON body, found in one pass.
//!
//! The body is validated as JSON once, but only the top level is split into fields; the
//! values (messages, tools, …) stay as raw bytes and are written back verbatim. That keeps
//! unknown fields untouched for the upstream and makes a multi-MiB prompt cost one scan.
//!
//! The scan is `json_scan`'s and accepts exactly what serde_json accepted when this was a
//! map of `RawValue`s (the differential test in `request/tests.rs` holds the old code): keys
//! and values must be UTF-8, keys may not hold lone surrogates (values may), nesting is not
//! limited (the scanner keeps no recursion on the stack). A body it rejects is read again
//! by serde_json (`request/fallback.rs`), so the error keeps serde_json's message.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use smallvec::SmallVec;

use crate::LlmError;
use crate::json_scan::{self, Scanner, Strings};

mod fallback;

/// A client request body, split at the top level.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    body: Bytes,
    fields: Fields,
    /// The `model` the client asked for.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// The client itself asked for `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// `max_tokens` or `max_completion_tokens`, when given.
    pub max_tokens: Option<u64>,
}

/// The top-level members. Client bodies rarely have more than eight (model, messages,
/// stream, a few sampling knobs), so parsing one allocates nothing for them.
type Fields = SmallVec<[Field; 8]>;

#[derive(Debug, Clone)]
struct Field {
    key: FieldKey,
    value: Range<usize>,
}

/// A top-level key: where it lies in the body when it has no escapes (nearly always), else
/// its text.
#[derive(Debug, Clone)]
enum FieldKey {
    Raw(Range<usize>),
    Unescaped(Box<str>),
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

// === impl FieldKey ===

impl FieldKey {
    /// The key's text (a raw key has no escapes, so its bytes are its text).
    fn text<'a>(&'a self, body: &'a [u8]) -> &'a [u8] {
        match self {
            Self::Raw(range) => &body[range.clone()],
            Self::Unescaped(text) => text.as_bytes(),
        }
    }
}

/// The top-level members, in order (repeats kept), if the body is a JSON object that
/// serde_json accepts as an object of raw values: keys are text (UTF-8, surrogates paired),
/// values are well-formed JSON whose strings are UTF-8 (lone surrogates allowed), nesting
/// is not limited, and only whitespace follows.
fn split_top_level(body: &[u8]) -> Result<Fields, json_scan::ScanError> {
    let mut s = Scanner::new(body, Strings::Checked);
    s.begin_object()?;
    let mut fields = Fields::new();
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        let key = match key.unescaped {
            None => FieldKey::Raw(key.raw),
            Some(text) => FieldKey::Unescaped(text.into()),
        };
        let value = s.skip_value()?;
        fields.push(Field { key, value });
    }
    s.finish()?;
    Ok(fields)
}

// === impl ParsedRequest ===

impl ParsedRequest {
    /// Parses a body. `model` is required; every other field is optional.
    ///
    /// Guarantees: the whole body is valid JSON when this returns `Ok`; field order and
    /// values are preserved for [`ParsedRequest::render`]. One pass over the body; a body
    /// the scanner rejects is parsed again by serde_json, whose message the error carries.
    pub fn parse(body: Bytes) -> Result<Self, LlmError> {
        let fields = match split_top_level(&body) {
            Ok(fields) => fields,
            Err(_) => fallback::split_top_level(&body)?,
        };
        Self::from_fields(body, fields)
    }

    /// Reads the fields the gateway needs; the first field of the wrong type (in body
    /// order) is the error.
    fn from_fields(body: Bytes, fields: Fields) -> Result<Self, LlmError> {
        let (mut model, mut stream, mut include_usage, mut max_tokens) = (None, false, false, None);
        for f in &fields {
            let raw = &body[f.value.clone()];
            match f.key.text(&body) {
                b"model" => {
                    let m = Scanner::new(raw, Strings::Checked)
                        .read_str()
                        .map_err(|_| LlmError::InvalidField {
                            field: "model",
                            reason: "must be a string".into(),
                        })?;
                    model = Some(m.into_owned());
                }
                b"stream" => {
                    stream = match raw {
                        b"true" => true,
                        b"false" | b"null" => false,
                        _ => {
                            return Err(LlmError::InvalidField {
                                field: "stream",
                                reason: "must be a boolean".into(),
                            });
                        }
                    };
                }
                b"stream_options" => {
                    // Rare and small: serde's reading of the struct, kept exactly.
                    let so: Option<StreamOptions> =
                        serde_json::from_slice(raw).map_err(|_| LlmError::InvalidField {
                            field: "stream_options",
                            reason: "must be an object".into(),
                        })?;
                    include_usage = so.and_then(|s| s.include_usage).unwrap_or(false);
                }
                b"max_tokens" | b"max_completion_tokens" => {
                    max_tokens = match json_scan::u64_digits(raw) {
                        Some(n) => Some(n),
                        None => serde_json::from_slice::<Option<u64>>(raw).map_err(|_| {
                            LlmError::InvalidField {
                                field: "max_tokens",
                                reason: "must be a non-negative integer".into(),
                            }
                        })?,
                    };
                }
                _ => {}
            }
        }
        let model = model
            .filter(|m| !m.is_empty())
            // Lazily: the error's `String` would otherwise be built (and dropped) per request.
            .ok_or_else(|| LlmError::InvalidField {
                field: "model",
                reason: "is required".into(),
            })?;
        Ok(Self {
            body,
            fields,
            model,
            stream,
            include_usage,
            max_tokens,
        })
    }

    /// The original body, byte for byte.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The raw JSON text of a top-level field, if present.
    pub fn raw_field(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.key.text(&self.body) == key.as_bytes())
            .map(|f| &self.body[f.value.clone()])
    }

    /// Where the raw JSON text of a top-level field lies in [`Self::body`], if present.
    pub fn raw_range(&self, key: &str) -> Option<Range<usize>> {
        self.fields
            .iter()
            .find(|f| f.key.text(&self.body) == key.as_bytes())
            .map(|f| f.value.clone())
    }

    /// Estimated prompt tokens (about four bytes per token), for limits and usage fallbacks.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        (self.body.len() as u64 / 4).max(1)
    }

    /// Writes the body for an upstream: `model` replaced, and, when `inject_usage` is set
    /// and the request streams, `stream_options.include_usage` forced on. Every other field
    /// is copied verbatim, in its original order.
    pub fn render(&self, model: &str, inject_usage: bool) -> Vec<u8> {
        let inject = inject_usage && self.stream && !self.include_usage;
        let mut out = Vec::with_capacity(self.body.len() + model.len() + 48);
        out.push(b'{');
        let mut saw_options = false;
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match &f.key {
                // No escapes, so serde_json would write it back unchanged.
                FieldKey::Raw(range) => {
                    out.push(b'"');
                    out.extend_from_slice(&self.body[range.clone()]);
                    out.push(b'"');
                }
                FieldKey::Unescaped(text) => json_scan::write_str(&mut out, text),
            }
            out.push(b':');
            match f.key.text(&self.body) {
                b"model" => json_scan::write_str(&mut out, model),
                b"stream_options" if inject => {
                    saw_options = true;
                    let mut v: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_slice(&self.body[f.value.clone()]).unwrap_or_default();
                    v.insert("include_usage".into(), serde_json::Value::Bool(true));
                    out.extend_from_slice(
                        &serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()),
                    );
                }
                _ => out.extend_from_slice(&self.body[f.value.clone()]),
            }
        }
        if inject && !saw_options {
            if !self.fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
        }
        out.push(b'}');
        out
    }

    /// True when the gateway must add `include_usage` upstream and strip the usage chunk
    /// from what the client sees.
    pub fn usage_injected(&self) -> bool {
        self.stream && !self.include_usage
    }
}

#[cfg(test)]
mod tests;
