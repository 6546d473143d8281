//! Cloudflare Workers AI over REST. The base is `/client/v4/accounts/{account_id}/ai`.
//!
//! * `workers_ai`: the OpenAI-compatible endpoint, `{base}/v1/chat/completions` (and
//!   `/embeddings`), bearer token; bodies and streams pass through as OpenAI's.
//! * `workers_ai_run`: the native endpoint, `{base}/run/{model}` (`@cf/…`), for models
//!   served only there. Chat: `messages` with text content (images are refused), `tools`,
//!   `max_tokens`, `temperature`, `top_p`, `stream`; `stop` has no native equivalent and is
//!   not sent. Answers arrive as `{"result":{"response","tool_calls","usage"}}` and streams
//!   as `data: {"response":"…"}` events ending in a usage event and `[DONE]`; the finish
//!   reason is `tool_calls` when the model called tools, else `stop` (the API reports none).
//!   Embeddings: `{"text":[…]}` → `{"result":{"data":[[…]]}}`.

mod run_stream;

use serde_json::{Value, json};

use std::borrow::Cow;

use super::openai::{OpenAiAdapter, pass_through};
use super::{Adapter, Headers, Operation, RequestPath, ResponseMeta, Target, UpstreamRequest};
use crate::chat::{ChatRequest, Completion, Content, unsupported};
use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

pub use run_stream::WorkersAiRunStream;

/// Workers AI's OpenAI-compatible endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkersAiAdapter;

impl Adapter for WorkersAiAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        let rest = match op {
            Operation::ChatCompletions => "/v1/chat/completions",
            Operation::Completions => "/v1/completions",
            Operation::Embeddings => "/v1/embeddings",
        };
        let path = RequestPath {
            prefix: target.base_path,
            rest: Cow::Borrowed(rest),
        };
        Ok(pass_through(op, req, target, path))
    }

    fn stream_translator_with(
        &self,
        op: Operation,
        req: &ParsedRequest,
        meta: &ResponseMeta<'_>,
    ) -> Box<dyn StreamTranslator> {
        OpenAiAdapter.stream_translator_with(op, req, meta)
    }

    fn translate_response_with(
        &self,
        op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        OpenAiAdapter.translate_response_with(op, body, meta)
    }
}

/// Workers AI's native `/run/{model}` endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkersAiRunAdapter;

impl Adapter for WorkersAiRunAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        let chat = ChatRequest::parse(req)?;
        let body = match op {
            Operation::ChatCompletions => to_run_body(&chat, req.stream)?,
            Operation::Embeddings => json!({ "text": chat.input_texts()? }),
            Operation::Completions => return Err(unsupported("model", "text completion")),
        };
        let mut headers = Headers::new();
        headers.push(("host", Cow::Borrowed(target.host)));
        headers.push(("content-type", Cow::Borrowed("application/json")));
        if req.stream {
            headers.push(("accept", Cow::Borrowed("text/event-stream")));
        }
        if let Some(auth) = target.bearer_as_header() {
            headers.push(("authorization", auth));
        }
        Ok(UpstreamRequest {
            method: "POST",
            path: RequestPath {
                prefix: target.base_path,
                rest: Cow::Owned(format!("/run/{}", target.model)),
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
        Box::new(WorkersAiRunStream::new(meta, req.include_usage))
    }

    fn translate_response_with(
        &self,
        op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        let out = match op {
            Operation::Embeddings => from_run_embeddings(&body, meta.model),
            _ => from_run(&body, meta).map(|c| (c.to_json(), c.usage)),
        };
        match out {
            Some((b, u)) => (b, Some(u)),
            None => (body, None),
        }
    }
}

fn to_run_body(c: &ChatRequest, stream: bool) -> Result<Value, LlmError> {
    let mut messages = Vec::with_capacity(c.messages.len());
    for m in &c.messages {
        if let Some(Content::Parts(p)) = &m.content
            && p.iter().any(|p| p.kind != "text")
        {
            return Err(unsupported("messages", "non-text content"));
        }
        let role = if m.role == "developer" {
            "system"
        } else {
            m.role.as_str()
        };
        let mut msg = json!({
            "role": role,
            "content": m.content.as_ref().map(Content::text).unwrap_or_default(),
        });
        if let Some(calls) = &m.tool_calls {
            let calls: Vec<Value> = calls
                .iter()
                .map(|tc| {
                    json!({"id": tc.id, "type": "function",
                    "function": {"name": tc.function.name, "arguments": tc.function.arguments}})
                })
                .collect();
            msg["tool_calls"] = Value::Array(calls);
        }
        if let Some(id) = &m.tool_call_id {
            msg["tool_call_id"] = json!(id);
        }
        messages.push(msg);
    }
    let mut body = json!({ "messages": messages });
    if let Some(n) = c.max_output() {
        body["max_tokens"] = n.into();
    }
    if let Some(t) = &c.temperature {
        body["temperature"] = t.clone();
    }
    if let Some(p) = &c.top_p {
        body["top_p"] = p.clone();
    }
    if let Some(tools) = &c.tools {
        let t: Vec<Value> = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {"name": t.function.name,
                "description": t.function.description.as_deref().unwrap_or(""),
                "parameters": t.function.parameters.clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}))}})
            })
            .collect();
        body["tools"] = Value::Array(t);
    }
    if stream {
        body["stream"] = Value::Bool(true);
    }
    Ok(body)
}

/// A run-endpoint tool call (`{"name","arguments"}` or OpenAI-shaped) as id, name, JSON text.
pub(crate) fn tool_call(tc: &Value, n: usize) -> (String, String, String) {
    let f = tc.get("function").unwrap_or(tc);
    let id = tc
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| format!("call_{n}"), str::to_owned);
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let args = match f.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "{}".to_owned(),
    };
    (id, name, args)
}

pub(crate) fn run_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        ..Usage::default()
    }
}

fn from_run(body: &[u8], meta: &ResponseMeta<'_>) -> Option<Completion> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let r = v.get("result")?;
    let text = match r.get("response") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let tool_calls: Vec<_> = r
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, tc)| tool_call(tc, i))
        .collect();
    let finish = if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    Some(Completion {
        id: meta.id.to_owned(),
        model: meta.model.to_owned(),
        created: meta.created,
        text: text.filter(|t| !t.is_empty() || tool_calls.is_empty()),
        tool_calls,
        finish_reason: Some(finish),
        usage: r.get("usage").map(run_usage).unwrap_or_default(),
    })
}

fn from_run_embeddings(body: &[u8], model: &str) -> Option<(Vec<u8>, Usage)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let rows = v.pointer("/result/data")?.as_array()?;
    let data: Vec<Value> = rows
        .iter()
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
