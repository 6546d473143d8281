//! The built-in `mock` provider's answers: deterministic, OpenAI-shaped, free.
//!
//! The default config routes every model here so a fresh install answers its first `curl`
//! with no external service. Timing (time to first token, gap between chunks) is the
//! caller's business; this module only produces bytes.

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Operation, ParsedRequest, Usage};

/// A complete mock answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MockAnswer {
    /// The non-streamed JSON body.
    pub body: Vec<u8>,
    /// The streamed SSE events (each `data: …\n\n`), ending with `data: [DONE]`.
    pub chunks: Vec<Vec<u8>>,
    /// The usage reported.
    pub usage: Usage,
}

/// Builds the mock's answer to `req` for `op`. `id` and `created` are supplied by the
/// caller so this stays a pure function (and tests are reproducible).
pub fn answer(
    op: Operation,
    req: &ParsedRequest,
    model: &str,
    id: &str,
    created: u64,
) -> MockAnswer {
    match op {
        Operation::Embeddings => embeddings(req, model),
        Operation::ChatCompletions | Operation::Completions => text(op, req, model, id, created),
    }
}

fn text(op: Operation, req: &ParsedRequest, model: &str, id: &str, created: u64) -> MockAnswer {
    let prompt = match op {
        Operation::ChatCompletions => last_user_text(req),
        _ => prompt_text(req),
    };
    let mut said: String = prompt.chars().take(120).collect();
    if said.len() < prompt.len() {
        said.push('…');
    }
    let content = if said.is_empty() {
        "Hello from the DataMind mock provider.".to_owned()
    } else {
        format!("Hello from the DataMind mock provider. You said: {said}")
    };
    let words: Vec<&str> = content.split_inclusive(' ').collect();
    let limit = req
        .max_tokens
        .map_or(words.len(), |m| (m as usize).clamp(1, words.len()));
    let words = &words[..limit];
    let finish = if limit < content.split_inclusive(' ').count() {
        "length"
    } else {
        "stop"
    };
    let usage = Usage {
        prompt_tokens: req.estimated_prompt_tokens(),
        completion_tokens: words.len() as u64,
        ..Usage::default()
    };
    let usage_json = json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total(),
    });
    let text: String = words.concat();
    let chat = op == Operation::ChatCompletions;
    let top = |object, choices, usage| Top {
        id,
        object,
        created,
        model,
        choices,
        usage,
    };
    let body = if chat {
        top(
            "chat.completion",
            vec![
                json!({"index": 0, "message": {"role": "assistant", "content": text},
                        "logprobs": null, "finish_reason": finish}),
            ],
            Some(&usage_json),
        )
    } else {
        top(
            "text_completion",
            vec![json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})],
            Some(&usage_json),
        )
    };
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let mut chunks = Vec::with_capacity(words.len() + 3);
    for (i, w) in words.iter().enumerate() {
        let choice = if chat {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": w})
            } else {
                json!({"content": w})
            };
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": null})
        } else {
            json!({"index": 0, "text": w, "logprobs": null, "finish_reason": null})
        };
        chunks.push(sse(&top(object, vec![choice], None)));
    }
    let last = if chat {
        json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish})
    };
    chunks.push(sse(&top(object, vec![last], None)));
    if req.include_usage {
        chunks.push(sse(&top(object, Vec::new(), Some(&usage_json))));
    }
    chunks.push(b"data: [DONE]\n\n".to_vec());
    MockAnswer {
        body: to_vec(&body),
        chunks,
        usage,
    }
}

fn embeddings(req: &ParsedRequest, model: &str) -> MockAnswer {
    let inputs: Vec<String> = match req
        .raw_field("input")
        .and_then(|r| serde_json::from_slice::<Value>(r).ok())
    {
        Some(Value::Array(items)) => items.iter().map(|v| v.to_string()).collect(),
        Some(Value::String(s)) => vec![s],
        Some(other) => vec![other.to_string()],
        None => Vec::new(),
    };
    let dims = req
        .raw_field("dimensions")
        .and_then(|r| serde_json::from_slice::<usize>(r).ok())
        .unwrap_or(8)
        .clamp(1, 4096);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"object": "embedding", "index": i, "embedding": vector(s, dims)}))
        .collect();
    let usage = Usage {
        prompt_tokens: req.estimated_prompt_tokens(),
        ..Usage::default()
    };
    let body = json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
    });
    MockAnswer {
        body: to_vec(&body),
        chunks: Vec::new(),
        usage,
    }
}

/// A unit-length vector derived from the text (FNV-1a seeded xorshift), same text same vector.
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn last_user_text(req: &ParsedRequest) -> String {
    let Some(Value::Array(msgs)) = req
        .raw_field("messages")
        .and_then(|r| serde_json::from_slice(r).ok())
    else {
        return String::new();
    };
    let Some(msg) = msgs.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    match &msg["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn prompt_text(req: &ParsedRequest) -> String {
    match req
        .raw_field("prompt")
        .and_then(|r| serde_json::from_slice::<Value>(r).ok())
    {
        Some(Value::String(s)) => s,
        Some(Value::Array(a)) => a
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

/// An answer's or a chunk's top level, in OpenAI's member order (`id`, `object`, `created`,
/// `model`, `choices`, `usage`): what clients see from OpenAI, and the order the trace's
/// quick read of an answer takes (a `json!` object would sort its keys).
#[derive(Serialize)]
struct Top<'a> {
    id: &'a str,
    object: &'a str,
    created: u64,
    model: &'a str,
    choices: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Value>,
}

fn sse(v: &impl Serialize) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&to_vec(v));
    out.extend_from_slice(b"\n\n");
    out
}

fn to_vec(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamTranslator;
    use crate::stream::openai::OpenAiPassthrough;
    use bytes::Bytes;

    fn req(s: &str) -> ParsedRequest {
        ParsedRequest::parse(Bytes::from(s.to_owned())).unwrap()
    }

    #[test]
    fn chat_answer_echoes_last_user_turn_and_streams_the_same_text() {
        let r = req(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"ping"}]}"#);
        let a = answer(Operation::ChatCompletions, &r, "mock-small", "id1", 1);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        // OpenAI's member order, so the trace's quick read takes the answer.
        let body = String::from_utf8(a.body.clone()).unwrap();
        assert!(body.starts_with(r#"{"id":"id1","object":"chat.completion","created":1,"model":"mock-small","choices":["#), "{body}");
        let facts = crate::usage::FactsRef::read(&a.body).unwrap();
        assert_eq!((facts.id, facts.model), (Some("id1"), Some("mock-small")));
        assert_eq!(facts.finish_reasons.as_slice(), ["stop"]);
        assert!(a.chunks[0].starts_with(br#"data: {"id":"id1","object":"chat.completion.chunk","created":1,"model":"mock-small","choices":["#));
        let text = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.ends_with("You said: ping"));
        assert_eq!(v["usage"]["completion_tokens"], a.usage.completion_tokens);
        let streamed: String = a
            .chunks
            .iter()
            .filter(|c| !c.starts_with(b"data: [DONE]"))
            .map(|c| {
                let v: Value = serde_json::from_slice(&c[6..c.len() - 2]).unwrap();
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(streamed, text);
        // No usage chunk unless asked; the passthrough sees a well-formed stream.
        let mut t = OpenAiPassthrough::new(false);
        let mut out = Vec::new();
        t.feed(&a.chunks.concat(), &mut out).unwrap();
        assert!(t.summary().done);
        assert_eq!(t.summary().finish_reason.as_deref(), Some("stop"));
        assert!(t.summary().usage.is_none());
    }

    #[test]
    fn max_tokens_truncates_with_length_reason() {
        let r = req(
            r#"{"model":"m","max_tokens":2,"stream_options":{"include_usage":true},"stream":true,"messages":[{"role":"user","content":"a b c d"}]}"#,
        );
        let a = answer(Operation::ChatCompletions, &r, "m", "id", 0);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(a.usage.completion_tokens, 2);
        assert!(
            String::from_utf8(a.chunks.concat())
                .unwrap()
                .contains("\"usage\"")
        );
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let r = req(r#"{"model":"e","input":["a","b"],"dimensions":16}"#);
        let a = answer(Operation::Embeddings, &r, "e", "", 0);
        let b = answer(Operation::Embeddings, &r, "e", "", 0);
        assert_eq!(a, b);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        let e0: Vec<f64> = serde_json::from_value(v["data"][0]["embedding"].clone()).unwrap();
        assert_eq!(e0.len(), 16);
        assert!((e0.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-3);
        assert_ne!(v["data"][0]["embedding"], v["data"][1]["embedding"]);
    }
}
