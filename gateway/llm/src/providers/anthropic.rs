//! Anthropic's Messages API (`POST {base}/messages`, `x-api-key`, `anthropic-version`).
//!
//! Request: system/developer messages → `system`; consecutive same-role turns merged (tool
//! results become `tool_result` blocks of a user turn); images → `image` blocks (base64 or
//! URL); tools → `input_schema`; `tool_choice` auto/none/required/function → `auto`/`none`/
//! `any`/`tool`, `parallel_tool_calls: false` → `disable_parallel_tool_use`; `stop` →
//! `stop_sequences`; `max_tokens` defaults to [`DEFAULT_MAX_TOKENS`].
//!
//! `stop_reason` → `finish_reason`: `end_turn`, `stop_sequence`, `pause_turn` → `stop`;
//! `max_tokens`, `model_context_window_exceeded` → `length`; `tool_use` → `tool_calls`;
//! `refusal` → `content_filter`. Usage: `prompt_tokens` = input + cache read + cache
//! creation (OpenAI counts cached tokens inside the prompt).

mod stream;

use serde::Deserialize;
use serde_json::{Value, json};

use std::borrow::Cow;

use super::{
    Adapter, Headers, Operation, RequestPath, ResponseMeta, Target, UpstreamRequest, bearer,
};
use crate::chat::{ChatRequest, Completion, Content, DEFAULT_MAX_TOKENS, Image, ToolChoice};
use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

pub use stream::AnthropicStream;

/// The `anthropic-version` sent when the target sets none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The Anthropic Messages adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicAdapter;

impl Adapter for AnthropicAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        if op != Operation::ChatCompletions {
            return Err(crate::chat::unsupported("model", op.as_str()));
        }
        let chat = ChatRequest::parse(req)?;
        let body = to_messages_body(&chat, target.model, req.stream)?;
        let mut headers = Headers::new();
        headers.push(("host", Cow::Borrowed(target.host)));
        headers.push(("content-type", Cow::Borrowed("application/json")));
        headers.push((
            "anthropic-version",
            Cow::Borrowed(target.api_version.unwrap_or(DEFAULT_VERSION)),
        ));
        if req.stream {
            headers.push(("accept", Cow::Borrowed("text/event-stream")));
        }
        if let Some(t) = target.bearer_token {
            headers.push(("authorization", bearer(t)));
        } else if let Some(k) = target.api_key {
            headers.push(("x-api-key", Cow::Borrowed(k)));
        }
        Ok(UpstreamRequest {
            method: "POST",
            path: RequestPath {
                prefix: target.base_path,
                rest: Cow::Borrowed("/messages"),
            },
            headers,
            extra_headers: target.extra_headers,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        })
    }

    fn stream_translator_with(
        &self,
        _op: Operation,
        req: &ParsedRequest,
        meta: &ResponseMeta<'_>,
    ) -> Box<dyn StreamTranslator> {
        Box::new(AnthropicStream::new(meta, req.include_usage))
    }

    fn translate_response_with(
        &self,
        _op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        match from_messages_response(&body, meta) {
            Some(c) => (c.to_json(), Some(c.usage)),
            None => (body, None),
        }
    }
}

/// The Messages request body for a chat request.
pub fn to_messages_body(c: &ChatRequest, model: &str, stream: bool) -> Result<Value, LlmError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for m in &c.messages {
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                system.push(json!({"type": "text", "text": text}));
                continue;
            }
            "user" => ("user", content_blocks(m.content.as_ref())?),
            "assistant" => {
                let mut b = content_blocks(m.content.as_ref())?;
                for tc in m.tool_calls.iter().flatten() {
                    b.push(
                        json!({"type": "tool_use", "id": tc.id, "name": tc.function.name,
                        "input": parse_args(&tc.function.arguments)}),
                    );
                }
                ("assistant", b)
            }
            "tool" => {
                let id = m.tool_call_id.clone().unwrap_or_default();
                let content = m.content.as_ref().map(Content::text).unwrap_or_default();
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": content});
                ("user", vec![block])
            }
            other => return Err(crate::chat::unsupported("messages", other)),
        };
        match turns.last_mut() {
            Some((r, b)) if r == role => b.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": c.max_output().unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    match system.len() {
        0 => {}
        1 => body["system"] = system[0]["text"].clone(),
        _ => body["system"] = Value::Array(system),
    }
    let stop = c.stop_sequences();
    if !stop.is_empty() {
        body["stop_sequences"] = json!(stop);
    }
    if let Some(t) = &c.temperature {
        body["temperature"] = t.clone();
    }
    if let Some(p) = &c.top_p {
        body["top_p"] = p.clone();
    }
    if stream {
        body["stream"] = Value::Bool(true);
    }
    if let Some(u) = &c.user {
        body["metadata"] = json!({"user_id": u});
    }
    if let Some(tools) = &c.tools {
        let t: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut v = json!({"name": t.function.name, "input_schema": t.function.parameters
                    .clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}))});
                if let Some(d) = &t.function.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        body["tools"] = Value::Array(t);
    }
    let choice = c.tool_choice()?;
    let no_parallel = c.parallel_tool_calls == Some(false);
    if choice.is_some() || (no_parallel && c.tools.is_some()) {
        let mut tc = match choice.unwrap_or(ToolChoice::Auto) {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
        };
        if no_parallel && tc["type"] != "none" {
            tc["disable_parallel_tool_use"] = Value::Bool(true);
        }
        body["tool_choice"] = tc;
    }
    Ok(body)
}

fn content_blocks(content: Option<&Content>) -> Result<Vec<Value>, LlmError> {
    Ok(match content {
        None => Vec::new(),
        Some(Content::Text(s)) if s.is_empty() => Vec::new(),
        Some(Content::Text(s)) => vec![json!({"type": "text", "text": s})],
        Some(Content::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match (p.kind.as_str(), p.image()) {
                    ("text", _) => {
                        out.push(json!({"type": "text", "text": p.text.as_deref().unwrap_or("")}))
                    }
                    ("image_url", Some(Image::Base64 { media_type, data })) => out.push(json!({
                        "type": "image",
                        "source": {"type": "base64", "media_type": media_type, "data": data}})),
                    ("image_url", Some(Image::Url(url))) => {
                        out.push(json!({"type": "image", "source": {"type": "url", "url": url}}))
                    }
                    (other, _) => return Err(crate::chat::unsupported("messages", other)),
                }
            }
            out
        }
    })
}

/// Tool arguments as a JSON object (Anthropic wants `input` as an object, not text).
pub(crate) fn parse_args(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(args).unwrap_or_else(|_| json!({}))
}

/// `stop_reason` → `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

#[derive(Deserialize)]
pub(crate) struct MessagesUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    usage: Option<MessagesUsage>,
}

/// A Messages response as an OpenAI completion; `None` when `body` is not one.
pub fn from_messages_response(body: &[u8], meta: &ResponseMeta<'_>) -> Option<Completion> {
    let r: MessagesResponse = serde_json::from_slice(body).ok()?;
    if r.kind != "message" {
        return None;
    }
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for b in &r.content {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => tool_calls.push((
                b["id"].as_str().unwrap_or("").to_owned(),
                b["name"].as_str().unwrap_or("").to_owned(),
                serde_json::to_string(&b["input"]).unwrap_or_else(|_| "{}".into()),
            )),
            _ => {} // thinking blocks are not part of the OpenAI message
        }
    }
    let usage = r.usage.map(|u| {
        Usage::from_split(
            u.input_tokens.unwrap_or(0),
            u.output_tokens.unwrap_or(0),
            u.cache_read_input_tokens.unwrap_or(0),
            u.cache_creation_input_tokens.unwrap_or(0),
        )
    });
    Some(Completion {
        id: if r.id.is_empty() {
            meta.id.to_owned()
        } else {
            r.id
        },
        model: if r.model.is_empty() {
            meta.model.to_owned()
        } else {
            r.model
        },
        created: meta.created,
        text,
        tool_calls,
        finish_reason: r.stop_reason.as_deref().map(finish_reason),
        usage: usage.unwrap_or_default(),
    })
}
