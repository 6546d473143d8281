//! `streamGenerateContent?alt=sse` → OpenAI chunks.
//!
//! Every event is a whole `GenerateContentResponse` holding the next piece of the answer:
//! text parts become content deltas, each `functionCall` part becomes one complete tool
//! call (Gemini does not split arguments), `finishReason` becomes the finish chunk and the
//! last `usageMetadata` the usage chunk. Gemini has no end marker, so the usage chunk and
//! `[DONE]` are written when the upstream body ends after a finish reason.

use serde_json::Value;

use super::{call_id, finish_reason, usage};
use crate::LlmError;
use crate::error_body::ErrorBody;
use crate::providers::ResponseMeta;
use crate::stream::chunks::ChunkWriter;
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::{StreamSummary, StreamTranslator};

/// Translator for one Gemini stream.
#[derive(Debug)]
pub struct GeminiStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    w: ChunkWriter,
    identified: bool,
    finished: bool,
    summary: StreamSummary,
}

impl GeminiStream {
    /// A translator; `include_usage`: the client asked for the usage chunk.
    pub fn new(meta: &ResponseMeta<'_>, include_usage: bool) -> Self {
        Self {
            parser: SseParser::default(),
            events: Vec::new(),
            w: ChunkWriter::new(meta, include_usage),
            identified: false,
            finished: false,
            summary: StreamSummary::default(),
        }
    }

    fn handle(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(e) = v.get("error") {
            self.summary.error = true;
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            let kind = match e.get("code").and_then(Value::as_u64) {
                Some(429) => "rate_limit_error",
                Some(400..=499) => "invalid_request_error",
                _ => "server_error",
            };
            self.w.error(out, &ErrorBody::new(kind, None, msg));
            return;
        }
        let rid = v.get("responseId").and_then(Value::as_str);
        if !self.identified {
            self.identified = true;
            self.w
                .set_identity(rid, v.get("modelVersion").and_then(Value::as_str));
            self.w.role(out);
        }
        if let Some(u) = v.get("usageMetadata") {
            self.summary.usage = Some(usage(u));
        }
        let cand = v.pointer("/candidates/0");
        let parts = cand
            .and_then(|c| c.pointer("/content/parts"))
            .and_then(Value::as_array);
        for p in parts.into_iter().flatten() {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                self.w.text(out, t);
            } else if let Some(fc) = p.get("functionCall") {
                let id = call_id(fc, rid, self.w.tool_count());
                let name = fc.get("name").and_then(Value::as_str).unwrap_or("");
                let args = fc
                    .get("args")
                    .map_or_else(|| "{}".to_owned(), Value::to_string);
                self.w.tool_start(out, &id, name, &args);
            }
        }
        let reason = match cand
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str)
        {
            Some(r) if self.w.tool_count() > 0 && finish_reason(r) == "stop" => Some("tool_calls"),
            Some(r) => Some(finish_reason(r)),
            None if v.pointer("/promptFeedback/blockReason").is_some() => Some("content_filter"),
            None => None,
        };
        if let Some(r) = reason
            && !self.finished
        {
            self.finished = true;
            self.summary.finish_reason = Some(r.to_owned());
            self.w.finish(out, r);
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

impl StreamTranslator for GeminiStream {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.parser.feed(input, &mut self.events)?;
        self.drain(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.parser.finish(&mut self.events);
        self.drain(out);
        if self.finished && !self.summary.done {
            if let Some(u) = self.summary.usage {
                self.w.usage(out, &u);
            }
            self.w.done(out);
            self.summary.done = true;
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
