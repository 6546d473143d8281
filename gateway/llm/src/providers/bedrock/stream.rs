//! ConverseStream events (binary event-stream frames carrying JSON) → OpenAI chunks.
//!
//! `messageStart` → role chunk; `contentBlockStart` with `toolUse` → a new tool call;
//! `contentBlockDelta` `text` / `toolUse.input` → content / argument deltas; `messageStop`
//! → finish chunk; `metadata` → usage chunk (if asked for) and `[DONE]`. Exception frames
//! become an OpenAI error event.

use std::collections::HashMap;

use serde_json::Value;

use super::{finish_reason, usage};
use crate::LlmError;
use crate::error_body::ErrorBody;
use crate::providers::ResponseMeta;
use crate::stream::chunks::ChunkWriter;
use crate::stream::eventstream::{EventMessage, EventStreamDecoder};
use crate::stream::{StreamSummary, StreamTranslator};

/// Translator for one ConverseStream response.
#[derive(Debug)]
pub struct BedrockStream {
    decoder: EventStreamDecoder,
    messages: Vec<EventMessage>,
    w: ChunkWriter,
    tools: HashMap<u64, usize>,
    stopped: bool,
    summary: StreamSummary,
}

impl BedrockStream {
    /// A translator; `include_usage`: the client asked for the usage chunk.
    pub fn new(meta: &ResponseMeta<'_>, include_usage: bool) -> Self {
        Self {
            decoder: EventStreamDecoder::default(),
            messages: Vec::new(),
            w: ChunkWriter::new(meta, include_usage),
            tools: HashMap::new(),
            stopped: false,
            summary: StreamSummary::default(),
        }
    }

    fn handle(&mut self, m: &EventMessage, out: &mut Vec<u8>) {
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        if m.message_type != "event" {
            self.summary.error = true;
            let msg = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            let e = match m.event_type.as_str() {
                "throttlingException" => {
                    ErrorBody::new("rate_limit_error", Some("rate_limit_exceeded"), msg)
                }
                "validationException" => {
                    let ctx = crate::provider_error::is_context_window_error(msg, None);
                    let code = ctx.then_some("context_length_exceeded");
                    ErrorBody::new("invalid_request_error", code, msg)
                }
                _ => ErrorBody::new("server_error", None, msg),
            };
            self.w.error(out, &e);
            return;
        }
        let index = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match m.event_type.as_str() {
            "messageStart" => self.w.role(out),
            "contentBlockStart" => {
                if let Some(t) = v.pointer("/start/toolUse") {
                    let id = t.get("toolUseId").and_then(Value::as_str).unwrap_or("");
                    let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                    let i = self.w.tool_start(out, id, name, "");
                    self.tools.insert(index, i);
                }
            }
            "contentBlockDelta" => {
                if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                    self.w.text(out, t);
                } else if let Some(a) = v.pointer("/delta/toolUse/input").and_then(Value::as_str)
                    && let Some(&i) = self.tools.get(&index)
                {
                    self.w.tool_args(out, i, a);
                }
            }
            "messageStop" => {
                let r = v
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .map_or("stop", finish_reason);
                self.summary.finish_reason = Some(r.to_owned());
                self.stopped = true;
                self.w.finish(out, r);
            }
            "metadata" => {
                if let Some(u) = v.get("usage") {
                    let u = usage(u);
                    self.summary.usage = Some(u);
                    self.w.usage(out, &u);
                }
                self.end(out);
            }
            _ => {}
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if !self.summary.done {
            self.summary.done = true;
            self.w.done(out);
        }
    }
}

impl StreamTranslator for BedrockStream {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.decoder.feed(input, &mut self.messages)?;
        let messages = std::mem::take(&mut self.messages);
        for m in &messages {
            self.handle(m, out);
        }
        self.messages = messages;
        self.messages.clear();
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        // The answer is whole once messageStop arrived, even if metadata never did.
        if self.stopped && self.decoder.pending() == 0 {
            self.end(out);
        }
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
