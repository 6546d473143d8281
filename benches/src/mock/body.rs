//! Request parsing and non-streamed response bodies (chat, text completion, models, errors).
//!
//! Bodies are written straight into one pre-sized buffer: the mock must stay far cheaper than
//! any gateway it is measured through.

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::Bytes;
use serde::Deserialize;

/// The reply content of a non-streamed completion.
pub const CONTENT: &str = "This is a mock reply.";
/// Completion tokens of [`CONTENT`]: one per word.
pub const CONTENT_TOKENS: u64 = 5;

/// OpenAI-style error body sent with every non-200 status.
pub const ERROR_BODY: &[u8] =
    br#"{"error":{"message":"mock error","type":"server_error","param":null,"code":null}}"#;

/// `GET /v1/models`.
pub const MODELS_BODY: &[u8] = br#"{"object":"list","data":[{"id":"mock","object":"model","created":0,"owned_by":"datamind-mock"}]}"#;

/// Which OpenAI endpoint a generation request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completion,
}

/// What the mock needs from a generation request, plus the reply's identity.
#[derive(Debug)]
pub struct Reply {
    /// Endpoint shape to answer in.
    pub endpoint: Endpoint,
    /// Sequence number, for the `id`.
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
    /// The requested model as a JSON string literal (quoted and escaped).
    pub model_json: String,
    /// Whether the client asked for SSE.
    pub stream: bool,
    /// Whether `stream_options.include_usage` was set.
    pub include_usage: bool,
    /// Request body bytes / 4, at least 1.
    pub prompt_tokens: u64,
}

#[derive(Deserialize)]
struct GenerationRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// Prompt tokens the mock charges for a body: bytes / 4, at least 1.
pub fn prompt_tokens(body_len: usize) -> u64 {
    (body_len as u64 / 4).max(1)
}

// === impl Reply ===

impl Reply {
    /// Parses the fields the mock needs; the rest of the body is skipped, not built.
    pub fn parse(endpoint: Endpoint, body: &[u8], seq: u64, created: u64) -> Result<Self, String> {
        let req: GenerationRequest<'_> =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        let model = req.model.as_deref().unwrap_or("mock");
        let model_json = serde_json::to_string(model).map_err(|e| e.to_string())?;
        Ok(Self {
            endpoint,
            seq,
            created,
            model_json,
            stream: req.stream.unwrap_or(false),
            include_usage: req
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            prompt_tokens: prompt_tokens(body.len()),
        })
    }

    /// `"id":"…","object":"…","created":…,"model":…` shared by every body of this reply.
    pub(crate) fn write_head(&self, out: &mut String, chunk: bool) {
        let (prefix, object) = match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => ("chatcmpl", "chat.completion"),
            (Endpoint::Chat, true) => ("chatcmpl", "chat.completion.chunk"),
            (Endpoint::Completion, _) => ("cmpl", "text_completion"),
        };
        let _ = write!(
            out,
            r#""id":"{prefix}-mock-{}","object":"{object}","created":{},"model":{}"#,
            self.seq, self.created, self.model_json
        );
    }

    /// `"usage":{…}` for the given completion tokens.
    pub(crate) fn write_usage(&self, out: &mut String, completion_tokens: u64) {
        let p = self.prompt_tokens;
        let _ = write!(
            out,
            r#""usage":{{"prompt_tokens":{p},"completion_tokens":{completion_tokens},"total_tokens":{}}}"#,
            p + completion_tokens
        );
    }

    /// The complete non-streamed JSON body.
    pub fn full_body(&self) -> Bytes {
        let mut out = String::with_capacity(320 + self.model_json.len());
        out.push('{');
        self.write_head(&mut out, false);
        match self.endpoint {
            Endpoint::Chat => {
                out.push_str(r#","choices":[{"index":0,"message":{"role":"assistant","content":""#);
                out.push_str(CONTENT);
                out.push_str(r#""},"finish_reason":"stop"}],"#);
            }
            Endpoint::Completion => {
                out.push_str(r#","choices":[{"index":0,"text":""#);
                out.push_str(CONTENT);
                out.push_str(r#"","logprobs":null,"finish_reason":"stop"}],"#);
            }
        }
        self.write_usage(&mut out, CONTENT_TOKENS);
        out.push('}');
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn reply(endpoint: Endpoint, body: &str) -> Reply {
        Reply::parse(endpoint, body.as_bytes(), 7, 1_700_000_000).unwrap()
    }

    #[test]
    fn chat_body_is_openai_shaped() {
        let body = r#"{"model":"gpt-\"x\"","messages":[{"role":"user","content":"hi"}]}"#;
        let r = reply(Endpoint::Chat, body);
        let v: Value = serde_json::from_slice(&r.full_body()).unwrap();
        let p = (body.len() / 4) as u64;
        assert_eq!(
            v,
            json!({
                "id": "chatcmpl-mock-7", "object": "chat.completion", "created": 1_700_000_000,
                "model": "gpt-\"x\"",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": CONTENT},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": p, "completion_tokens": 5, "total_tokens": p + 5}
            })
        );
        assert_eq!(CONTENT.split_whitespace().count() as u64, CONTENT_TOKENS);
    }

    #[test]
    fn completion_body_has_text() {
        let r = reply(Endpoint::Completion, r#"{"model":"m","prompt":"x"}"#);
        let v: Value = serde_json::from_slice(&r.full_body()).unwrap();
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["id"], "cmpl-mock-7");
        assert_eq!(v["choices"][0]["text"], CONTENT);
        assert_eq!(v["usage"]["prompt_tokens"], 6);
    }

    #[test]
    fn parse_reads_stream_flags_and_defaults() {
        let r = reply(
            Endpoint::Chat,
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert!(r.stream && r.include_usage);
        assert_eq!(r.model_json, r#""mock""#);
        let r = reply(Endpoint::Chat, r#"{"model":"m","stream":null}"#);
        assert!(!r.stream && !r.include_usage);
        assert_eq!(reply(Endpoint::Chat, "{}").prompt_tokens, 1);
        assert!(Reply::parse(Endpoint::Chat, b"{not json", 1, 1).is_err());
    }

    #[test]
    fn fixed_bodies_are_valid_json() {
        let e: Value = serde_json::from_slice(ERROR_BODY).unwrap();
        assert_eq!(e["error"]["type"], "server_error");
        let m: Value = serde_json::from_slice(MODELS_BODY).unwrap();
        assert_eq!(m["data"][0]["id"], "mock");
    }
}
