//! Google's Gemini API and Vertex AI (same wire format, different auth and base path).
//!
//! Paths below the base (`/v1beta` for the Gemini API; `/v1/projects/{p}/locations/{l}/
//! publishers/google` for Vertex): `/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`, `:embedContent` (one input) and `:batchEmbedContents`.
//! Auth: Gemini sends `x-goog-api-key`; Vertex sends the OAuth2 access token (`bearer_token`,
//! which the caller obtains from the service account) as `Authorization: Bearer`.
//!
//! Mapping: system → `systemInstruction`; `assistant` → role `model`; images → `inlineData`
//! (base64) or `fileData` (URL); tool calls → `functionCall`; tool results →
//! `functionResponse` (named by the matching call); tools → `functionDeclarations`;
//! `tool_choice` → `functionCallingConfig` (`AUTO`/`NONE`/`ANY`, a function → `ANY` with
//! `allowedFunctionNames`); limits → `generationConfig`.
//!
//! `finishReason` → `finish_reason`: `STOP` → `stop` (`tool_calls` when the answer calls
//! functions); `MAX_TOKENS` → `length`; `SAFETY`, `RECITATION`, `BLOCKLIST`,
//! `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY` → `content_filter`; anything else → `stop`.
//! Usage: `promptTokenCount` (includes `cachedContentTokenCount`), completion =
//! `candidatesTokenCount` + `thoughtsTokenCount`.

mod stream;
pub mod vertex_auth;

use serde_json::{Value, json};

use std::borrow::Cow;

use super::{
    Adapter, Headers, Operation, RequestPath, ResponseMeta, Target, UpstreamRequest, bearer,
};
use crate::chat::{ChatRequest, Completion, Content, Image, ToolChoice, unsupported};
use crate::providers::anthropic::parse_args;
use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

pub use stream::GeminiStream;

/// The Gemini-format adapter, in API-key (Gemini) or bearer (Vertex) mode.
#[derive(Debug, Clone, Copy)]
pub struct GeminiAdapter {
    vertex: bool,
}

impl GeminiAdapter {
    /// The Gemini API (`x-goog-api-key`).
    pub const GEMINI: Self = Self { vertex: false };
    /// Vertex AI (`Authorization: Bearer`).
    pub const VERTEX: Self = Self { vertex: true };
}

impl Adapter for GeminiAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        let chat = ChatRequest::parse(req)?;
        let model = target.model.strip_prefix("models/").unwrap_or(target.model);
        let (method, body) = match op {
            Operation::ChatCompletions if req.stream => {
                ("streamGenerateContent?alt=sse", to_generate(&chat)?)
            }
            Operation::ChatCompletions => ("generateContent", to_generate(&chat)?),
            Operation::Embeddings => {
                let texts = chat.input_texts()?;
                let content = |t: &str| json!({"parts": [{"text": t}]});
                let one = |t: &str| {
                    let mut b = json!({ "content": content(t) });
                    if let Some(d) = chat.dimensions {
                        b["outputDimensionality"] = d.into();
                    }
                    b
                };
                match texts.as_slice() {
                    [t] => ("embedContent", one(t)),
                    many => {
                        let reqs: Vec<Value> = many
                            .iter()
                            .map(|t| {
                                let mut r = one(t);
                                r["model"] = json!(format!("models/{model}"));
                                r
                            })
                            .collect();
                        ("batchEmbedContents", json!({ "requests": reqs }))
                    }
                }
            }
            Operation::Completions => return Err(unsupported("model", "text completion")),
        };
        let mut headers = Headers::new();
        headers.push(("host", Cow::Borrowed(target.host)));
        headers.push(("content-type", Cow::Borrowed("application/json")));
        if req.stream {
            headers.push(("accept", Cow::Borrowed("text/event-stream")));
        }
        match (self.vertex, target.bearer_token, target.api_key) {
            (_, Some(t), _) => headers.push(("authorization", bearer(t))),
            (true, None, Some(_)) => {
                if let Some(auth) = target.api_key_as_bearer() {
                    headers.push(("authorization", auth));
                }
            }
            (false, None, Some(k)) => headers.push(("x-goog-api-key", Cow::Borrowed(k))),
            _ => {}
        }
        Ok(UpstreamRequest {
            method: "POST",
            path: RequestPath {
                prefix: target.base_path,
                rest: Cow::Owned(format!("/models/{model}:{method}")),
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
        Box::new(GeminiStream::new(meta, req.include_usage))
    }

    fn translate_response_with(
        &self,
        op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        let out = match op {
            Operation::Embeddings => from_embeddings(&body, meta.model),
            _ => from_generate(&body, meta).map(|c| (c.to_json(), c.usage)),
        };
        match out {
            Some((b, u)) => (b, Some(u)),
            None => (body, None),
        }
    }
}

/// The `generateContent` request body.
pub fn to_generate(c: &ChatRequest) -> Result<Value, LlmError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for (i, m) in c.messages.iter().enumerate() {
        let (role, parts) = match m.role.as_str() {
            "system" | "developer" => {
                let t = m.content.as_ref().map(Content::text).unwrap_or_default();
                system.push(json!({ "text": t }));
                continue;
            }
            "user" => ("user", parts(m.content.as_ref())?),
            "assistant" => {
                let mut p = parts(m.content.as_ref())?;
                for tc in m.tool_calls.iter().flatten() {
                    p.push(json!({"functionCall": {"name": tc.function.name,
                        "args": parse_args(&tc.function.arguments)}}));
                }
                ("model", p)
            }
            "tool" => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                let name = c.tool_name(i, id).ok_or_else(|| LlmError::InvalidField {
                    field: "messages",
                    reason: format!("tool message answers unknown tool_call_id `{id}`"),
                })?;
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({ "content": text }),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
            other => return Err(unsupported("messages", other)),
        };
        match turns.last_mut() {
            Some((r, p)) if *r == role => p.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let contents: Vec<Value> = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    let mut body = json!({ "contents": contents });
    if !system.is_empty() {
        body["systemInstruction"] = json!({ "parts": system });
    }
    if let Some(tools) = &c.tools {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut d = json!({ "name": t.function.name });
                if let Some(desc) = &t.function.description {
                    d["description"] = json!(desc);
                }
                if let Some(p) = &t.function.parameters {
                    d["parameters"] = clean_schema(p);
                }
                d
            })
            .collect();
        body["tools"] = json!([{ "functionDeclarations": decls }]);
    }
    if let Some(choice) = c.tool_choice()? {
        let cfg = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Function(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
        };
        body["toolConfig"] = json!({ "functionCallingConfig": cfg });
    }
    let mut config = serde_json::Map::new();
    if let Some(n) = c.max_output() {
        config.insert("maxOutputTokens".into(), n.into());
    }
    if let Some(t) = &c.temperature {
        config.insert("temperature".into(), t.clone());
    }
    if let Some(p) = &c.top_p {
        config.insert("topP".into(), p.clone());
    }
    let stop = c.stop_sequences();
    if !stop.is_empty() {
        config.insert("stopSequences".into(), json!(stop));
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    Ok(body)
}

fn parts(content: Option<&Content>) -> Result<Vec<Value>, LlmError> {
    let mut out = Vec::new();
    match content {
        None => {}
        Some(Content::Text(s)) => out.push(json!({ "text": s })),
        Some(Content::Parts(ps)) => {
            for p in ps {
                out.push(match (p.kind.as_str(), p.image()) {
                    ("text", _) => json!({ "text": p.text.as_deref().unwrap_or("") }),
                    ("image_url", Some(Image::Base64 { media_type, data })) => {
                        json!({"inlineData": {"mimeType": media_type, "data": data}})
                    }
                    ("image_url", Some(Image::Url(url))) => {
                        json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}})
                    }
                    (other, _) => return Err(unsupported("messages", other)),
                });
            }
        }
    }
    Ok(out)
}

fn mime_from_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        _ => "image/jpeg",
    }
}

/// Drops JSON Schema keywords Gemini's `parameters` schema rejects.
fn clean_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "$schema" | "additionalProperties" | "strict")
                })
                .map(|(k, v)| (k.clone(), clean_schema(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

/// `finishReason` → `finish_reason` (before the tool-call override).
pub fn finish_reason(r: &str) -> &'static str {
    match r {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ => "stop",
    }
}

/// `usageMetadata` → usage.
pub(crate) fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt_tokens: n("promptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
        cache_read_tokens: n("cachedContentTokenCount"),
        cache_creation_tokens: 0,
    }
}

/// A tool-call id: Gemini's own when it sends one, else one derived from the response id.
pub(crate) fn call_id(fc: &Value, response_id: Option<&str>, n: usize) -> String {
    match (fc.get("id").and_then(Value::as_str), response_id) {
        (Some(id), _) => id.to_owned(),
        (None, Some(r)) => format!("call_{r}_{n}"),
        (None, None) => format!("call_{n}"),
    }
}

/// A `generateContent` response as an OpenAI completion; `None` if `body` is not one.
pub fn from_generate(body: &[u8], meta: &ResponseMeta<'_>) -> Option<Completion> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("candidates").is_none() && v.get("promptFeedback").is_none() {
        return None;
    }
    let rid = v.get("responseId").and_then(Value::as_str);
    let cand = v.pointer("/candidates/0");
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    let parts = cand
        .and_then(|c| c.pointer("/content/parts"))
        .and_then(Value::as_array);
    for p in parts.into_iter().flatten() {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(fc) = p.get("functionCall") {
            let args = fc.get("args").cloned().unwrap_or_else(|| json!({}));
            tool_calls.push((
                call_id(fc, rid, tool_calls.len()),
                fc["name"].as_str().unwrap_or("").to_owned(),
                serde_json::to_string(&args).unwrap_or_else(|_| "{}".into()),
            ));
        }
    }
    let reason = match cand
        .and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str)
    {
        Some(r) if !tool_calls.is_empty() && finish_reason(r) == "stop" => Some("tool_calls"),
        Some(r) => Some(finish_reason(r)),
        None if v.pointer("/promptFeedback/blockReason").is_some() => Some("content_filter"),
        None => None,
    };
    Some(Completion {
        id: rid.unwrap_or(meta.id).to_owned(),
        model: v
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or(meta.model)
            .to_owned(),
        created: meta.created,
        text,
        tool_calls,
        finish_reason: reason,
        usage: v.get("usageMetadata").map(usage).unwrap_or_default(),
    })
}

fn from_embeddings(body: &[u8], model: &str) -> Option<(Vec<u8>, Usage)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let vectors: Vec<Value> = match (v.pointer("/embedding/values"), v.get("embeddings")) {
        (Some(e), _) => vec![e.clone()],
        (None, Some(Value::Array(a))) => {
            a.iter().filter_map(|e| e.get("values").cloned()).collect()
        }
        _ => return None,
    };
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
        .collect();
    let out = json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0}});
    Some((
        serde_json::to_vec(&out).unwrap_or_default(),
        Usage::default(),
    ))
}
