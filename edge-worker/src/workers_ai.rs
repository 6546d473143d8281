//! Workers AI (the `AI` binding) spoken in OpenAI's format.
//!
//! The binding takes `{messages, stream, max_tokens, temperature, …}` and answers
//! `{"response": "...", "usage": {...}}`, or, streamed, SSE events
//! `data: {"response":"tok"}` … `data: {"response":"","usage":{...}}` … `data: [DONE]`.
//! Models served through the binding's OpenAI-compatible shape (`choices`) are passed
//! through. Pure; fit for `gateway/llm` as `stream/workers_ai.rs` (the REST API of
//! Workers AI returns the same payloads inside `result`).

use datamind_llm::error_body::ErrorBody;
use datamind_llm::stream::sse::{SseEvent, SseParser};
use datamind_llm::stream::{StreamSummary, StreamTranslator};
use datamind_llm::{LlmError, Usage};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::completion::Completion;

/// Sampling fields the binding understands, copied verbatim from the client request.
const PASSED_FIELDS: &[&str] = &[
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "response_format",
];

/// The binding input for an OpenAI chat request.
pub fn ai_input(req: &Value, stream: bool) -> Value {
    let mut input = Map::new();
    for f in PASSED_FIELDS {
        if let Some(v) = req.get(*f).filter(|v| !v.is_null()) {
            input.insert((*f).to_owned(), v.clone());
        }
    }
    if !input.contains_key("max_tokens")
        && let Some(v) = req.get("max_completion_tokens").filter(|v| !v.is_null())
    {
        input.insert("max_tokens".into(), v.clone());
    }
    input.insert("stream".into(), Value::Bool(stream));
    Value::Object(input)
}

#[derive(Deserialize, Default)]
struct Output {
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<serde::de::IgnoredAny>,
}

/// Identity of the answer being produced, chosen by the worker.
#[derive(Debug, Clone)]
pub struct AnswerMeta {
    /// Completion id (`chatcmpl-…`).
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the client asked for.
    pub model: String,
    /// The request's `max_tokens`, to tell `length` from `stop`.
    pub max_tokens: Option<u64>,
}

impl AnswerMeta {
    fn finish_reason(&self, usage: Option<Usage>) -> &'static str {
        match (self.max_tokens, usage) {
            (Some(max), Some(u)) if u.completion_tokens >= max => "length",
            _ => "stop",
        }
    }
}

/// Translates a non-streamed binding output (already as JSON) to an OpenAI body.
pub fn translate_json(output: &Value, meta: &AnswerMeta) -> Vec<u8> {
    let o: Output = serde_json::from_value(output.clone()).unwrap_or_default();
    if o.choices.is_some() {
        let mut v = output.clone();
        v["model"] = Value::String(meta.model.clone());
        return serde_json::to_vec(&v).unwrap_or_default();
    }
    let content = match o.response {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Completion {
        id: meta.id.clone(),
        created: meta.created,
        model: meta.model.clone(),
        content,
        finish_reason: meta.finish_reason(o.usage).to_owned(),
        usage: o.usage,
    }
    .to_json()
}

/// Stream translator from the binding's SSE to OpenAI `chat.completion.chunk`s.
pub struct WorkersAiStream {
    meta: AnswerMeta,
    include_usage: bool,
    parser: SseParser,
    events: Vec<SseEvent>,
    sent_role: bool,
    summary: StreamSummary,
}

impl WorkersAiStream {
    /// `include_usage`: the client asked for `stream_options.include_usage`.
    pub fn new(meta: AnswerMeta, include_usage: bool) -> Self {
        Self {
            meta,
            include_usage,
            parser: SseParser::default(),
            events: Vec::new(),
            sent_role: false,
            summary: StreamSummary::default(),
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>, usage: Option<Value>) {
        let choices = if usage.is_some() {
            json!([])
        } else {
            json!([{"index": 0, "delta": delta, "finish_reason": finish}])
        };
        let mut v = json!({
            "id": self.meta.id, "object": "chat.completion.chunk", "created": self.meta.created,
            "model": self.meta.model, "choices": choices,
        });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        let reason = self.meta.finish_reason(self.summary.usage);
        self.chunk(out, json!({}), Some(reason), None);
        if self.include_usage {
            let u = self.summary.usage.unwrap_or_default();
            let usage = json!({"prompt_tokens": u.prompt_tokens,
                               "completion_tokens": u.completion_tokens,
                               "total_tokens": u.total()});
            self.chunk(out, Value::Null, None, Some(usage));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.summary.finish_reason = Some(reason.to_owned());
        self.summary.done = true;
    }

    fn forward(&mut self, out: &mut Vec<u8>) {
        for ev in std::mem::take(&mut self.events) {
            let Some(data) = ev.data else { continue };
            if self.summary.done {
                continue;
            }
            if data.as_slice() == b"[DONE]" {
                self.end(out);
                continue;
            }
            let Ok(o) = serde_json::from_slice::<Output>(&data) else {
                continue;
            };
            if let Some(u) = o.usage {
                self.summary.usage = Some(u);
            }
            if o.choices.is_some() {
                // Already OpenAI-shaped: forward the event untouched.
                out.extend_from_slice(&ev.raw);
                continue;
            }
            let text = match o.response {
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            if text.is_empty() && self.sent_role {
                continue;
            }
            let delta = if self.sent_role {
                json!({"content": text})
            } else {
                json!({"role": "assistant", "content": text})
            };
            self.sent_role = true;
            self.chunk(out, delta, None, None);
        }
    }
}

impl StreamTranslator for WorkersAiStream {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.parser.feed(input, &mut self.events)?;
        self.forward(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.parser.finish(&mut self.events);
        self.forward(out);
        if !self.summary.done {
            // Cut before `[DONE]`: say so in-band; the answer is neither cached nor stored.
            self.summary.error = true;
            out.extend(
                ErrorBody::new("api_error", None, "Workers AI stream ended early").to_sse_event(),
            );
        }
    }

    fn summary(&self) -> &StreamSummary {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completion::Accumulator;

    fn meta() -> AnswerMeta {
        AnswerMeta {
            id: "chatcmpl-e".into(),
            created: 9,
            model: "llama".into(),
            max_tokens: None,
        }
    }

    const STREAM: &[u8] = b"data: {\"response\":\"Hel\",\"p\":\"ab\"}\n\n\
data: {\"response\":\"lo\"}\r\n\r\n\
data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn input_keeps_sampling_fields_only() {
        let req = json!({"model":"m","messages":[{"role":"user","content":"x"}],
                         "temperature":0,"max_completion_tokens":5,"user":"u","stream":true});
        let i = ai_input(&req, true);
        assert_eq!(
            i,
            json!({"messages":[{"role":"user","content":"x"}],"temperature":0,"max_tokens":5,"stream":true})
        );
    }

    #[test]
    fn json_output_becomes_chat_completion() {
        let out = json!({"response":"Hi there","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}});
        let body = translate_json(&out, &meta());
        let c = Completion::from_openai_json(&body).unwrap();
        assert_eq!(c.content, "Hi there");
        assert_eq!(c.model, "llama");
        assert_eq!(c.finish_reason, "stop");
        assert_eq!(c.usage.map(|u| u.total()), Some(5));
        let m = AnswerMeta {
            max_tokens: Some(2),
            ..meta()
        };
        let c = Completion::from_openai_json(&translate_json(&out, &m)).unwrap();
        assert_eq!(c.finish_reason, "length");
    }

    #[test]
    fn stream_translates_at_every_split() {
        let mut whole = Vec::new();
        for split in 0..=STREAM.len() {
            let mut t = WorkersAiStream::new(meta(), true);
            let mut out = Vec::new();
            t.feed(&STREAM[..split], &mut out).unwrap();
            t.feed(&STREAM[split..], &mut out).unwrap();
            t.finish(&mut out);
            if split == 0 {
                whole = out.clone();
            }
            assert_eq!(out, whole, "split {split}");
            assert!(t.summary().done && !t.summary().error);
        }
        let text = String::from_utf8(whole.clone()).unwrap();
        assert!(
            text.contains(r#""delta":{"content":"Hel","role":"assistant"}"#)
                || text.contains(r#""delta":{"role":"assistant","content":"Hel"}"#)
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
        let mut acc = Accumulator::new();
        acc.feed(&whole);
        let c = acc.finish(None).unwrap();
        assert_eq!(c.content, "Hello");
        assert_eq!(c.usage.map(|u| u.total()), Some(6));
    }

    #[test]
    fn cut_stream_ends_with_an_error_event() {
        let mut t = WorkersAiStream::new(meta(), false);
        let mut out = Vec::new();
        t.feed(b"data: {\"response\":\"Hel\"}\n\n", &mut out)
            .unwrap();
        t.finish(&mut out);
        assert!(t.summary().error);
        let mut acc = Accumulator::new();
        acc.feed(&out);
        assert_eq!(acc.finish(None), None);
    }
}
