//! Workers AI `/run` streams (`data: {"response":"…"}` … usage event … `data: [DONE]`) →
//! OpenAI chunks. Tool calls arrive whole and become one complete tool-call delta each.

use serde_json::Value;

use super::{run_usage, tool_call};
use crate::LlmError;
use crate::error_body::ErrorBody;
use crate::providers::ResponseMeta;
use crate::stream::chunks::ChunkWriter;
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::{StreamSummary, StreamTranslator};

/// Translator for one Workers AI `/run` stream.
#[derive(Debug)]
pub struct WorkersAiRunStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    w: ChunkWriter,
    summary: StreamSummary,
}

impl WorkersAiRunStream {
    /// A translator; `include_usage`: the client asked for the usage chunk.
    pub fn new(meta: &ResponseMeta<'_>, include_usage: bool) -> Self {
        Self {
            parser: SseParser::default(),
            events: Vec::new(),
            w: ChunkWriter::new(meta, include_usage),
            summary: StreamSummary::default(),
        }
    }

    fn handle(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if data == b"[DONE]" {
            if self.summary.done {
                return;
            }
            let reason = if self.w.tool_count() > 0 {
                "tool_calls"
            } else {
                "stop"
            };
            self.summary.finish_reason = Some(reason.to_owned());
            self.w.finish(out, reason);
            if let Some(u) = self.summary.usage {
                self.w.usage(out, &u);
            }
            self.w.done(out);
            self.summary.done = true;
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(e) = v
            .get("errors")
            .and_then(|e| e.get(0))
            .or_else(|| v.get("error"))
        {
            self.summary.error = true;
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            self.w
                .error(out, &ErrorBody::new("server_error", None, msg));
            return;
        }
        self.w.role(out);
        if let Some(t) = v.get("response").and_then(Value::as_str) {
            self.w.text(out, t);
        }
        for tc in v
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (id, name, args) = tool_call(tc, self.w.tool_count());
            self.w.tool_start(out, &id, &name, &args);
        }
        if let Some(u) = v.get("usage") {
            self.summary.usage = Some(run_usage(u));
        }
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

impl StreamTranslator for WorkersAiRunStream {
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
