//! The Anthropic Messages API for clients (`POST /v1/messages`, `/v1/messages/count_tokens`),
//! served by ANY provider: the request becomes an OpenAI chat request (so every adapter can
//! take it), and the OpenAI answer or stream is translated back.
//!
//! ```text
//! Anthropic body ─▶ to_openai_request ─▶ ParsedRequest ─▶ <provider adapter> ─▶ upstream
//! upstream answer ─▶ adapter.translate_response_with ─▶ from_openai_response ─▶ client
//! upstream stream ─▶ Chain(adapter.stream_translator_with, MessagesStream) ─▶ client
//! provider error ─▶ adapter.translate_error ─▶ error_to_anthropic ─▶ client
//! ```
//!
//! Mapping: `system` → a system message; `tool_result` blocks → `tool` messages placed
//! before the rest of their user turn; `tool_use` → `tool_calls` (input serialized);
//! images → data or remote `image_url` parts; `tool_choice` `auto`/`any`/`tool`/`none` →
//! `auto`/`required`/function/`none`, `disable_parallel_tool_use` → `parallel_tool_calls:
//! false`; `stop_sequences` → `stop`. Thinking blocks are dropped (no OpenAI equivalent).
//! `finish_reason` → `stop_reason`: `stop` → `end_turn`, `length` → `max_tokens`,
//! `tool_calls` → `tool_use`, `content_filter` → `refusal`.

mod stream;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{LlmError, Usage};

pub use stream::MessagesStream;

/// An Anthropic request, translated.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// The model the client named (echoed in answers).
    pub model: String,
    /// The client asked for a stream.
    pub stream: bool,
    /// The OpenAI chat-completions body to route (feed it to `ParsedRequest::parse`).
    pub openai_body: Vec<u8>,
    /// Estimated input tokens (for `message_start`, before the provider reports usage).
    pub estimated_input_tokens: u64,
}

#[derive(Deserialize)]
struct Req {
    model: String,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    messages: Vec<Msg>,
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    top_p: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct Msg {
    role: String,
    content: Value,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> LlmError {
    LlmError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Text of a `string | [{type:"text",text}]` value (system prompts, tool results).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Anthropic request body → OpenAI chat request.
pub fn to_openai_request(body: &[u8]) -> Result<MessagesRequest, LlmError> {
    let r: Req = serde_json::from_slice(body).map_err(|e| LlmError::InvalidJson(e.to_string()))?;
    if r.model.is_empty() {
        return Err(invalid("model", "is required"));
    }
    let max_tokens = r
        .max_tokens
        .ok_or_else(|| invalid("max_tokens", "is required"))?;
    let mut messages = Vec::with_capacity(r.messages.len() + 1);
    if let Some(s) = &r.system {
        messages.push(json!({"role": "system", "content": text_of(s)}));
    }
    for m in &r.messages {
        let blocks = match &m.content {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(a) => a.clone(),
            _ => return Err(invalid("messages", "content must be a string or an array")),
        };
        match m.role.as_str() {
            "user" => user_turn(&blocks, &mut messages)?,
            "assistant" => messages.push(assistant_turn(&blocks)),
            other => return Err(invalid("messages", format!("unknown role `{other}`"))),
        }
    }
    let stream = r.stream.unwrap_or(false);
    let mut out = json!({"model": r.model, "messages": messages, "max_tokens": max_tokens});
    if let Some(s) = r.stop_sequences.filter(|s| !s.is_empty()) {
        out["stop"] = json!(s);
    }
    if let Some(t) = r.temperature {
        out["temperature"] = t;
    }
    if let Some(p) = r.top_p {
        out["top_p"] = p;
    }
    if stream {
        out["stream"] = Value::Bool(true);
        out["stream_options"] = json!({"include_usage": true});
    }
    if let Some(u) = r
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out["user"] = json!(u);
    }
    if let Some(tools) = &r.tools {
        let mut t = Vec::with_capacity(tools.len());
        for tool in tools {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(schema) = tool.get("input_schema") else {
                return Err(invalid(
                    "tools",
                    format!("server tool `{name}` cannot be routed"),
                ));
            };
            let mut f = json!({"name": name, "parameters": schema});
            if let Some(d) = tool.get("description") {
                f["description"] = d.clone();
            }
            t.push(json!({"type": "function", "function": f}));
        }
        out["tools"] = Value::Array(t);
    }
    if let Some(tc) = &r.tool_choice {
        let choice = match tc.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": tc["name"]}}),
            _ => return Err(invalid("tool_choice", "must be auto, any, tool or none")),
        };
        out["tool_choice"] = choice;
        if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
            out["parallel_tool_calls"] = Value::Bool(false);
        }
    }
    Ok(MessagesRequest {
        model: r.model,
        stream,
        openai_body: serde_json::to_vec(&out).unwrap_or_default(),
        estimated_input_tokens: estimate_tokens(body),
    })
}

fn user_turn(blocks: &[Value], messages: &mut Vec<Value>) -> Result<(), LlmError> {
    let mut parts = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(json!({"type": "text", "text": b["text"]})),
            Some("image") => parts.push(image_part(b)?),
            Some("tool_result") => {
                let content = b.get("content").map(text_of).unwrap_or_default();
                messages.push(json!({"role": "tool", "tool_call_id": b["tool_use_id"],
                    "content": content}));
            }
            Some("thinking" | "redacted_thinking") => {}
            Some(other) => {
                return Err(invalid(
                    "messages",
                    format!("`{other}` blocks are not supported"),
                ));
            }
            None => return Err(invalid("messages", "content block without a type")),
        }
    }
    let only_text = parts.iter().all(|p| p["type"] == "text");
    match parts.len() {
        0 => {}
        1 if only_text => messages.push(json!({"role": "user", "content": parts[0]["text"]})),
        _ => messages.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

fn image_part(b: &Value) -> Result<Value, LlmError> {
    let src = &b["source"];
    let url = match src.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            src["media_type"].as_str().unwrap_or("image/png"),
            src["data"].as_str().unwrap_or("")
        ),
        Some("url") => src["url"].as_str().unwrap_or("").to_owned(),
        _ => return Err(invalid("messages", "image source must be base64 or url")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn assistant_turn(blocks: &[Value]) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(json!({"id": b["id"], "type": "function",
                "function": {"name": b["name"],
                    "arguments": serde_json::to_string(&b["input"]).unwrap_or_default()}})),
            _ => {}
        }
    }
    let mut m = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    m
}

/// `finish_reason` → `stop_reason`.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage object for an OpenAI usage (cached tokens split out of the prompt).
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(u.cache_read_tokens + u.cache_creation_tokens),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
    })
}

/// An OpenAI `chat.completion` → an Anthropic `message`; `None` if `body` is not one.
pub fn from_openai_response(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let choice = v.pointer("/choices/0")?;
    let msg = &choice["message"];
    let mut content = Vec::new();
    if let Some(t) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": t}));
    }
    for tc in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = tc
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        content.push(
            json!({"type": "tool_use", "id": tc["id"], "name": tc["function"]["name"],
            "input": crate::providers::anthropic::parse_args(args)}),
        );
    }
    let usage = Usage::from_openai_json(body).unwrap_or_default();
    let out = json!({
        "id": v.get("id").and_then(Value::as_str).unwrap_or("msg_datamind"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage_json(&usage),
    });
    serde_json::to_vec(&out).ok()
}

/// An OpenAI error (status + body) → Anthropic's `{"type":"error","error":{type,message}}`.
pub fn error_to_anthropic(status: u16, openai_body: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(openai_body).unwrap_or(Value::Null);
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error");
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    serde_json::to_vec(&json!({"type": "error", "error": {"type": kind, "message": message}}))
        .unwrap_or_default()
}

/// Estimated input tokens of an Anthropic request (`/v1/messages/count_tokens`): about four
/// bytes of text per token, a fixed 1,600 per image, and a small per-message overhead.
pub fn estimate_tokens(body: &[u8]) -> u64 {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (body.len() as u64).div_ceil(4);
    };
    fn walk(v: &Value, bytes: &mut u64, images: &mut u64) {
        match v {
            Value::String(s) => *bytes += s.len() as u64,
            Value::Array(a) => a.iter().for_each(|x| walk(x, bytes, images)),
            Value::Object(m) => {
                if m.get("type").and_then(Value::as_str) == Some("image") {
                    *images += 1;
                    return;
                }
                for (k, x) in m {
                    if !matches!(k.as_str(), "type" | "role" | "cache_control") {
                        walk(x, bytes, images);
                    }
                }
            }
            _ => {}
        }
    }
    let (mut bytes, mut images) = (0, 0);
    for key in ["system", "messages", "tools"] {
        if let Some(x) = v.get(key) {
            walk(x, &mut bytes, &mut images);
        }
    }
    let turns = v
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u64;
    bytes.div_ceil(4) + images * 1600 + turns * 3 + 1
}

/// The `/v1/messages/count_tokens` answer body.
pub fn count_tokens_response(body: &[u8]) -> Vec<u8> {
    format!("{{\"input_tokens\":{}}}", estimate_tokens(body)).into_bytes()
}

#[cfg(test)]
mod tests;
