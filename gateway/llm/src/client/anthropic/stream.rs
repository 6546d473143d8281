//! OpenAI chunks → Anthropic Messages stream events.
//!
//! The first chunk opens `message_start` (input tokens estimated until the provider
//! reports them). Content deltas open a `text` block, each new tool call (new OpenAI
//! `index`) closes the open block and opens a `tool_use` block with its `id` and `name`;
//! argument text goes out as `input_json_delta`. `[DONE]` closes the open block and writes
//! `message_delta` (stop reason and the provider's usage) and `message_stop`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{stop_reason, usage_json};
use crate::stream::sse::{SseEvent, SseParser};
use crate::stream::{StreamSummary, StreamTranslator};
use crate::{LlmError, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Tool(u64),
}

/// Translator for one OpenAI stream going to an Anthropic client.
#[derive(Debug)]
pub struct MessagesStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    model: String,
    estimated_input: u64,
    started: bool,
    open: Option<Block>,
    next_block: u64,
    /// OpenAI tool index → Anthropic block index.
    tools: HashMap<u64, u64>,
    finish: Option<String>,
    summary: StreamSummary,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolDelta>>,
}

#[derive(Deserialize)]
struct ToolDelta {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FnDelta>,
}

#[derive(Deserialize)]
struct FnDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *out, data).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

impl MessagesStream {
    /// `model`: the name the client asked for; `estimated_input_tokens`: for `message_start`.
    pub fn new(model: &str, estimated_input_tokens: u64) -> Self {
        Self {
            parser: SseParser::default(),
            events: Vec::new(),
            model: model.to_owned(),
            estimated_input: estimated_input_tokens,
            started: false,
            open: None,
            next_block: 0,
            tools: HashMap::new(),
            finish: None,
            summary: StreamSummary::default(),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>, id: Option<&str>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({"id": id.unwrap_or("msg_datamind"), "type": "message",
            "role": "assistant", "model": self.model, "content": [], "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": self.estimated_input, "output_tokens": 0}});
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            let index = self.next_block - 1;
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn open(&mut self, out: &mut Vec<u8>, b: Block, block: Value) -> u64 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(b);
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn handle(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if data == b"[DONE]" {
            self.end(out);
            return;
        }
        let Ok(c) = serde_json::from_slice::<Chunk>(data) else {
            return;
        };
        if let Some(e) = c.error {
            self.summary.error = true;
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            let kind = match e.get("type").and_then(Value::as_str) {
                Some("rate_limit_error") => "rate_limit_error",
                Some("invalid_request_error") => "invalid_request_error",
                _ => "api_error",
            };
            event(
                out,
                "error",
                &json!({"type": "error", "error": {"type": kind, "message": msg}}),
            );
            return;
        }
        if let Some(u) = Usage::from_openai_json(data) {
            self.summary.usage = Some(u);
        }
        self.start(out, c.id.as_deref());
        for ch in c.choices {
            if let Some(d) = ch.delta {
                if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                    if self.open != Some(Block::Text) {
                        self.open(out, Block::Text, json!({"type": "text", "text": ""}));
                    }
                    let index = self.next_block - 1;
                    event(
                        out,
                        "content_block_delta",
                        &json!({"type": "content_block_delta",
                        "index": index, "delta": {"type": "text_delta", "text": t}}),
                    );
                }
                for tc in d.tool_calls.into_iter().flatten() {
                    self.tool_delta(out, tc);
                }
            }
            if let Some(r) = ch.finish_reason {
                self.finish = Some(r);
            }
        }
    }

    fn tool_delta(&mut self, out: &mut Vec<u8>, tc: ToolDelta) {
        let f = tc.function.unwrap_or(FnDelta {
            name: None,
            arguments: None,
        });
        if !self.tools.contains_key(&tc.index) {
            let block = json!({"type": "tool_use", "id": tc.id.unwrap_or_default(),
                "name": f.name.unwrap_or_default(), "input": {}});
            let b = self.open(out, Block::Tool(tc.index), block);
            self.tools.insert(tc.index, b);
        }
        let Some(args) = f.arguments.filter(|a| !a.is_empty()) else {
            return;
        };
        // Anthropic blocks cannot reopen: arguments of an earlier call arriving after a
        // later one started (no known provider does this) cannot be placed and are dropped.
        if self.open == Some(Block::Tool(tc.index)) {
            let index = self.tools[&tc.index];
            event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta",
                "index": index, "delta": {"type": "input_json_delta", "partial_json": args}}),
            );
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.summary.done {
            return;
        }
        self.start(out, None);
        self.close(out);
        let reason = stop_reason(self.finish.as_deref());
        self.summary.finish_reason = self.finish.clone();
        let usage = usage_json(&self.summary.usage.unwrap_or_default());
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
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

impl StreamTranslator for MessagesStream {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.parser.feed(input, &mut self.events)?;
        self.drain(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.parser.finish(&mut self.events);
        self.drain(out);
        // Some OpenAI-compatible servers end without `[DONE]` after the finish chunk.
        if self.finish.is_some() && !self.summary.error {
            self.end(out);
        }
    }

    fn summary(&self) -> &StreamSummary {
        &self.summary
    }
}
