//! What the gateway needs to know about a client's JSON body, found in one pass.
//!
//! The body is validated as JSON once, but only the top level is split into fields; the
//! values (messages, tools, …) stay as raw bytes and are written back verbatim. That keeps
//! unknown fields untouched for the upstream and makes a multi-MiB prompt cost one scan.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::LlmError;

/// A client request body, split at the top level.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    body: Bytes,
    fields: Vec<Field>,
    /// The `model` the client asked for.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// The client itself asked for `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// `max_tokens` or `max_completion_tokens`, when given.
    pub max_tokens: Option<u64>,
}

#[derive(Debug, Clone)]
struct Field {
    key: String,
    value: Range<usize>,
}

/// The top-level object, borrowed from the body.
struct TopLevel<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    out.push((key, value));
                }
                Ok(TopLevel(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl ParsedRequest {
    /// Parses a body. `model` is required; every other field is optional.
    ///
    /// Guarantees: the whole body is valid JSON when this returns `Ok`; field order and
    /// values are preserved for [`ParsedRequest::render`].
    pub fn parse(body: Bytes) -> Result<Self, LlmError> {
        let top: TopLevel<'_> =
            serde_json::from_slice(&body).map_err(|e| LlmError::InvalidJson(e.to_string()))?;
        let base = body.as_ptr() as usize;
        let mut fields = Vec::with_capacity(top.0.len());
        let (mut model, mut stream, mut include_usage, mut max_tokens) = (None, false, false, None);
        for (key, raw) in &top.0 {
            let text = raw.get();
            let start = text.as_ptr() as usize - base;
            match key.as_ref() {
                "model" => {
                    let m: String =
                        serde_json::from_str(text).map_err(|_| LlmError::InvalidField {
                            field: "model",
                            reason: "must be a string".into(),
                        })?;
                    model = Some(m);
                }
                "stream" => {
                    stream = serde_json::from_str::<Option<bool>>(text)
                        .map_err(|_| LlmError::InvalidField {
                            field: "stream",
                            reason: "must be a boolean".into(),
                        })?
                        .unwrap_or(false);
                }
                "stream_options" => {
                    let so: Option<StreamOptions> =
                        serde_json::from_str(text).map_err(|_| LlmError::InvalidField {
                            field: "stream_options",
                            reason: "must be an object".into(),
                        })?;
                    include_usage = so.and_then(|s| s.include_usage).unwrap_or(false);
                }
                "max_tokens" | "max_completion_tokens" => {
                    max_tokens = serde_json::from_str::<Option<u64>>(text).map_err(|_| {
                        LlmError::InvalidField {
                            field: "max_tokens",
                            reason: "must be a non-negative integer".into(),
                        }
                    })?;
                }
                _ => {}
            }
            fields.push(Field {
                key: key.to_string(),
                value: start..start + text.len(),
            });
        }
        let model = model
            .filter(|m| !m.is_empty())
            .ok_or(LlmError::InvalidField {
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
            .find(|f| f.key == key)
            .map(|f| &self.body[f.value.clone()])
    }

    /// Where the raw JSON text of a top-level field lies in [`Self::body`], if present.
    pub fn raw_range(&self, key: &str) -> Option<Range<usize>> {
        self.fields
            .iter()
            .find(|f| f.key == key)
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
            write_json_string(&mut out, &f.key);
            out.push(b':');
            match f.key.as_str() {
                "model" => write_json_string(&mut out, model),
                "stream_options" if inject => {
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

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON requires; a &str always serializes.
    match serde_json::to_vec(s) {
        Ok(v) => out.extend_from_slice(&v),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

#[cfg(test)]
mod tests;
