//! Anthropic SSE events → OpenAI chunks.
//!
//! `message_start` gives id, model and input usage; `content_block_start` opens a text or
//! `tool_use` block (the latter becomes a tool call with the next OpenAI index);
//! `text_delta` and `input_json_delta` become content and argument deltas;
//! `message_delta` carries the stop reason and output usage; `message_stop` ends the
//! stream with the finish chunk, the usage chunk (if asked for) and `[DONE]`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::{MessagesUsage, finish_reason};
use crate::error_body::ErrorBody;
use crate::providers::ResponseMeta;
use crate::stream::chunks::ChunkWriter;
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::{StreamSummary, StreamTranslator};
use crate::{LlmError, Usage};

/// Translator for one Anthropic stream.
#[derive(Debug)]
pub struct AnthropicStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    w: ChunkWriter,
    /// Anthropic block index → OpenAI tool-call index.
    tools: HashMap<u64, usize>,
    input: (u64, u64, u64),
    output: u64,
    stop: Option<&'static str>,
    summary: StreamSummary,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    index: u64,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    usage: Option<MessagesUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<MessagesUsage>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

impl AnthropicStream {
    /// A translator; `include_usage`: the client asked for the usage chunk.
    pub fn new(meta: &ResponseMeta<'_>, include_usage: bool) -> Self {
        Self {
            parser: SseParser::default(),
            events: Vec::new(),
            w: ChunkWriter::new(meta, include_usage),
            tools: HashMap::new(),
            input: (0, 0, 0),
            output: 0,
            stop: None,
            summary: StreamSummary::default(),
        }
    }

    fn usage(&self) -> Usage {
        Usage::from_split(self.input.0, self.output, self.input.1, self.input.2)
    }

    fn take_usage(&mut self, u: &MessagesUsage) {
        // message_delta repeats the input counts on newer API versions; keep the largest.
        self.input.0 = self.input.0.max(u.input_tokens.unwrap_or(0));
        self.input.1 = self.input.1.max(u.cache_read_input_tokens.unwrap_or(0));
        self.input.2 = self.input.2.max(u.cache_creation_input_tokens.unwrap_or(0));
        self.output = self.output.max(u.output_tokens.unwrap_or(0));
        self.summary.usage = Some(self.usage());
    }

    fn handle(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let Ok(ev) = serde_json::from_slice::<Event>(data) else {
            return;
        };
        match ev.kind.as_str() {
            "message_start" => {
                if let Some(m) = ev.message {
                    self.w.set_identity(m.id.as_deref(), m.model.as_deref());
                    if let Some(u) = m.usage {
                        self.take_usage(&u);
                    }
                }
                self.w.role(out);
            }
            "content_block_start" => {
                let Some(b) = ev.content_block else { return };
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let id = b.get("id").and_then(Value::as_str).unwrap_or("");
                        let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                        let i = self.w.tool_start(out, id, name, "");
                        self.tools.insert(ev.index, i);
                    }
                    Some("text") => {
                        let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                        self.w.text(out, t);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(d) = ev.delta else { return };
                match d.kind.as_deref() {
                    Some("text_delta") => self.w.text(out, d.text.as_deref().unwrap_or("")),
                    Some("input_json_delta") => {
                        if let Some(&i) = self.tools.get(&ev.index) {
                            self.w
                                .tool_args(out, i, d.partial_json.as_deref().unwrap_or(""));
                        }
                    }
                    _ => {} // thinking, signature, citations
                }
            }
            "message_delta" => {
                if let Some(r) = ev.delta.and_then(|d| d.stop_reason) {
                    self.stop = Some(finish_reason(&r));
                }
                if let Some(u) = ev.usage {
                    self.take_usage(&u);
                }
            }
            "message_stop" => self.end(out),
            "error" => {
                self.summary.error = true;
                let e = ev.error.unwrap_or(Value::Null);
                let kind = e.get("type").and_then(Value::as_str).unwrap_or("api_error");
                let msg = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error");
                let (kind, code) = match kind {
                    "overloaded_error" => ("server_error", Some("overloaded")),
                    "rate_limit_error" => ("rate_limit_error", Some("rate_limit_exceeded")),
                    "invalid_request_error" => ("invalid_request_error", None),
                    _ => ("server_error", None),
                };
                self.w.error(out, &ErrorBody::new(kind, code, msg));
            }
            _ => {} // ping
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.summary.done {
            return;
        }
        let reason = self.stop.unwrap_or("stop");
        self.summary.finish_reason = Some(reason.to_owned());
        self.w.finish(out, reason);
        let u = self.usage();
        self.summary.usage = Some(u);
        self.w.usage(out, &u);
        self.w.done(out);
        self.summary.done = true;
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            if let Some(d) = &ev.data {
                self.handle(d, out);
            }
        }
        self.events = events;
        self.events.clear();
    }
}

impl StreamTranslator for AnthropicStream {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.parser.feed(input, &mut self.events)?;
        self.drain(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.parser.finish(&mut self.events);
        self.drain(out);
    }

    fn summary(&self) -> &StreamSummary {
        &self.summary
    }

    fn response_id(&self) -> Option<&str> {
        Some(self.w.id())
    }

    fn response_model(&self) -> Option<&str> {
        Some(self.w.model())
    }
}
