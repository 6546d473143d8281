//! AWS Bedrock: Converse (`POST /model/{id}/converse`), ConverseStream (`/converse-stream`,
//! binary event stream) and embeddings through InvokeModel (`/model/{id}/invoke`, Titan and
//! Cohere bodies), signed with SigV4 (service `bedrock`) — or, with no AWS credentials but
//! an `api_key`/`bearer_token`, a Bedrock API key as `Authorization: Bearer`.
//!
//! The model id is one path segment, percent-encoded (`…-v1:0` → `…-v1%3A0`, inference
//! profile ARNs included). Request mapping: system → `system`, text/images/tool calls/tool
//! results → `content` blocks (images must be base64: Bedrock takes no URLs), `max_tokens`,
//! `temperature`, `top_p`, `stop` → `inferenceConfig`, tools → `toolConfig` (`required` →
//! `any`; `none` has no Bedrock equivalent and sends no `toolChoice`).
//!
//! `stopReason` → `finish_reason`: `end_turn`, `stop_sequence` → `stop`; `max_tokens`,
//! `model_context_window_exceeded` → `length`; `tool_use` → `tool_calls`;
//! `guardrail_intervened`, `content_filtered` → `content_filter`.

pub mod sigv4;
mod stream;

use serde_json::{Value, json};

use std::borrow::Cow;

use super::{Adapter, Headers, Operation, RequestPath, ResponseMeta, Target, UpstreamRequest};
use crate::chat::{ChatRequest, Completion, Content, Image, ToolChoice, unsupported};
use crate::providers::anthropic::parse_args;
use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

pub use stream::BedrockStream;

/// The Bedrock adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct BedrockAdapter;

impl Adapter for BedrockAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        let chat = ChatRequest::parse(req)?;
        let model = sigv4::uri_encode(target.model, false);
        let (action, body) = match op {
            Operation::ChatCompletions if req.stream => ("converse-stream", to_converse(&chat)?),
            Operation::ChatCompletions => ("converse", to_converse(&chat)?),
            Operation::Embeddings => ("invoke", to_embedding_body(&chat, target.model)?),
            Operation::Completions => return Err(unsupported("model", "text completion")),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let path = format!("{}/model/{model}/{action}", target.base_path);
        let accept = if action == "converse-stream" {
            "application/vnd.amazon.eventstream"
        } else {
            "application/json"
        };
        let mut headers = Headers::new();
        headers.push(("host", Cow::Borrowed(target.host)));
        headers.push(("content-type", Cow::Borrowed("application/json")));
        headers.push(("accept", Cow::Borrowed(accept)));
        if let Some(creds) = target.aws {
            // `ok_or_else`: the errors' strings are built only when they are returned.
            let now = target.now_unix.ok_or_else(|| LlmError::InvalidField {
                field: "model",
                reason: "SigV4 signing needs the request time".into(),
            })?;
            let region = target
                .region
                .or_else(|| region_from_host(target.host))
                .ok_or_else(|| LlmError::InvalidField {
                    field: "model",
                    reason: "no AWS region configured for this deployment".into(),
                })?;
            let date = sigv4::amz_date(now);
            headers.push(("x-amz-date", Cow::Owned(date.clone())));
            if let Some(t) = creds.session_token {
                headers.push(("x-amz-security-token", Cow::Borrowed(t)));
            }
            let auth = sigv4::authorization(
                &sigv4::SignRequest {
                    method: "POST",
                    path: &path,
                    query: "",
                    headers: &headers,
                    body: &body,
                    service: "bedrock",
                    region,
                    double_encode_path: true,
                },
                &creds,
                &date,
            );
            headers.push(("authorization", Cow::Owned(auth)));
        } else if let Some(auth) = target.bearer_as_header() {
            headers.push(("authorization", auth));
        }
        Ok(UpstreamRequest {
            method: "POST",
            path: RequestPath::whole(path),
            headers,
            // Sent after the signed headers: configured extra headers are not signed.
            extra_headers: target.extra_headers,
            body,
        })
    }

    fn stream_translator_with(
        &self,
        _op: Operation,
        req: &ParsedRequest,
        meta: &ResponseMeta<'_>,
    ) -> Box<dyn StreamTranslator> {
        Box::new(BedrockStream::new(meta, req.include_usage))
    }

    fn translate_response_with(
        &self,
        op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        let out = match op {
            Operation::Embeddings => from_embedding_response(&body, meta.model),
            _ => from_converse(&body, meta).map(|c| (c.to_json(), c.usage)),
        };
        match out {
            Some((b, u)) => (b, Some(u)),
            None => (body, None),
        }
    }

    fn is_stream(&self, content_type: &str) -> bool {
        content_type.starts_with("application/vnd.amazon.eventstream")
    }
}

/// `bedrock-runtime.us-west-2.amazonaws.com` → `us-west-2`.
fn region_from_host(host: &str) -> Option<&str> {
    let rest = host.strip_prefix("bedrock-runtime.")?;
    rest.split('.').next().filter(|r| !r.is_empty())
}

/// The Converse request body.
pub fn to_converse(c: &ChatRequest) -> Result<Value, LlmError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in &c.messages {
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let t = m.content.as_ref().map(Content::text).unwrap_or_default();
                if !t.is_empty() {
                    system.push(json!({ "text": t }));
                }
                continue;
            }
            "user" => ("user", blocks(m.content.as_ref())?),
            "assistant" => {
                let mut b = blocks(m.content.as_ref())?;
                for tc in m.tool_calls.iter().flatten() {
                    b.push(
                        json!({"toolUse": {"toolUseId": tc.id, "name": tc.function.name,
                        "input": parse_args(&tc.function.arguments)}}),
                    );
                }
                ("assistant", b)
            }
            "tool" => {
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                let block = json!({"toolResult": {"toolUseId": m.tool_call_id,
                    "content": [{"text": text}]}});
                ("user", vec![block])
            }
            other => return Err(unsupported("messages", other)),
        };
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({ "messages": messages });
    if !system.is_empty() {
        body["system"] = Value::Array(system);
    }
    let mut inference = serde_json::Map::new();
    if let Some(n) = c.max_output() {
        inference.insert("maxTokens".into(), n.into());
    }
    if let Some(t) = &c.temperature {
        inference.insert("temperature".into(), t.clone());
    }
    if let Some(p) = &c.top_p {
        inference.insert("topP".into(), p.clone());
    }
    let stop = c.stop_sequences();
    if !stop.is_empty() {
        inference.insert("stopSequences".into(), json!(stop));
    }
    if !inference.is_empty() {
        body["inferenceConfig"] = Value::Object(inference);
    }
    if let Some(tools) = &c.tools {
        let specs: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut spec = json!({"name": t.function.name, "inputSchema": {"json": t.function
                    .parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}))}});
                if let Some(d) = &t.function.description {
                    spec["description"] = json!(d);
                }
                json!({ "toolSpec": spec })
            })
            .collect();
        let mut cfg = json!({ "tools": specs });
        match c.tool_choice()? {
            None | Some(ToolChoice::None) => {}
            Some(ToolChoice::Auto) => cfg["toolChoice"] = json!({"auto": {}}),
            Some(ToolChoice::Required) => cfg["toolChoice"] = json!({"any": {}}),
            Some(ToolChoice::Function(n)) => cfg["toolChoice"] = json!({"tool": {"name": n}}),
        }
        body["toolConfig"] = cfg;
    }
    Ok(body)
}

fn blocks(content: Option<&Content>) -> Result<Vec<Value>, LlmError> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(Content::Text(s)) if s.is_empty() => {}
        Some(Content::Text(s)) => out.push(json!({ "text": s })),
        Some(Content::Parts(parts)) => {
            for p in parts {
                match (p.kind.as_str(), p.image()) {
                    ("text", _) => {
                        if let Some(t) = p.text.as_deref().filter(|t| !t.is_empty()) {
                            out.push(json!({ "text": t }));
                        }
                    }
                    ("image_url", Some(Image::Base64 { media_type, data })) => {
                        let format = media_type.strip_prefix("image/").unwrap_or(media_type);
                        let format = if format == "jpg" { "jpeg" } else { format };
                        out.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
                    }
                    ("image_url", _) => return Err(unsupported("messages", "an image URL")),
                    (other, _) => return Err(unsupported("messages", other)),
                }
            }
        }
    }
    Ok(out)
}

/// `stopReason` → `finish_reason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// Bedrock's usage object (`inputTokens` excludes cache reads and writes).
pub(crate) fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage::from_split(
        n("inputTokens"),
        n("outputTokens"),
        n("cacheReadInputTokens"),
        n("cacheWriteInputTokens"),
    )
}

/// A Converse response as an OpenAI completion; `None` if `body` is not one.
pub fn from_converse(body: &[u8], meta: &ResponseMeta<'_>) -> Option<Completion> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let content = v.pointer("/output/message/content")?.as_array()?;
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for b in content {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(t) = b.get("toolUse") {
            tool_calls.push((
                t["toolUseId"].as_str().unwrap_or("").to_owned(),
                t["name"].as_str().unwrap_or("").to_owned(),
                serde_json::to_string(&t["input"]).unwrap_or_else(|_| "{}".into()),
            ));
        }
    }
    Some(Completion {
        id: meta.id.to_owned(),
        model: meta.model.to_owned(),
        created: meta.created,
        text,
        tool_calls,
        finish_reason: v
            .get("stopReason")
            .and_then(Value::as_str)
            .map(finish_reason),
        usage: v.get("usage").map(usage).unwrap_or_default(),
    })
}

fn to_embedding_body(c: &ChatRequest, model: &str) -> Result<Value, LlmError> {
    let texts = c.input_texts()?;
    if model.contains("cohere.") {
        return Ok(json!({"texts": texts, "input_type": "search_document"}));
    }
    let [text] = texts.as_slice() else {
        return Err(unsupported(
            "input",
            "more than one input per request (Titan)",
        ));
    };
    let mut body = json!({ "inputText": text });
    if let Some(d) = c.dimensions {
        body["dimensions"] = d.into();
    }
    Ok(body)
}

fn from_embedding_response(body: &[u8], model: &str) -> Option<(Vec<u8>, Usage)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let vectors: Vec<Value> = match (v.get("embedding"), v.get("embeddings")) {
        (Some(e), _) => vec![e.clone()],
        (None, Some(Value::Array(a))) => a.clone(),
        (None, Some(e)) => e.get("float").and_then(Value::as_array)?.clone(),
        _ => return None,
    };
    let tokens = v
        .get("inputTextTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
        .collect();
    let usage = Usage {
        prompt_tokens: tokens,
        ..Usage::default()
    };
    let out = json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    Some((serde_json::to_vec(&out).unwrap_or_default(), usage))
}
