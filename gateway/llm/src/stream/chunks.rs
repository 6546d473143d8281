//! Writes OpenAI `chat.completion.chunk` events: the output side of every translating
//! stream (Anthropic, Bedrock, Gemini, Workers AI).
//!
//! Tool calls get OpenAI indexes in the order they start (0, 1, …), whatever the
//! provider's content-block numbering; the first delta of a call carries `id`, `type` and
//! `name` with empty `arguments`, later deltas carry only `index` and argument text.

use serde::Serialize;

use crate::Usage;
use crate::error_body::ErrorBody;
use crate::providers::ResponseMeta;

/// Emits chunks for one stream.
#[derive(Debug)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    role_sent: bool,
    tools: usize,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    function: FnDelta<'a>,
}

#[derive(Serialize)]
struct FnDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl ChunkWriter {
    /// A writer; `include_usage` says whether the client asked for the final usage chunk.
    pub fn new(meta: &ResponseMeta<'_>, include_usage: bool) -> Self {
        Self {
            id: meta.id.to_owned(),
            model: meta.model.to_owned(),
            created: meta.created,
            include_usage,
            role_sent: false,
            tools: 0,
        }
    }

    /// Adopts the provider's id and model once it names them (before the first chunk).
    pub fn set_identity(&mut self, id: Option<&str>, model: Option<&str>) {
        if let Some(id) = id.filter(|s| !s.is_empty()) {
            self.id = id.to_owned();
        }
        if let Some(m) = model.filter(|s| !s.is_empty()) {
            self.model = m.to_owned();
        }
    }

    /// The id every chunk carries (the provider's once it named one).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The model every chunk names.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Number of tool calls started so far.
    pub fn tool_count(&self) -> usize {
        self.tools
    }

    fn write(&self, out: &mut Vec<u8>, delta: Delta<'_>, finish: Option<&str>) {
        let choices = [ChoiceOut {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }];
        self.write_chunk(out, &choices, None);
    }

    fn write_chunk(&self, out: &mut Vec<u8>, choices: &[ChoiceOut<'_>], usage: Option<&Usage>) {
        let c = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage: usage.map(Usage::to_openai_json),
        };
        out.extend_from_slice(b"data: ");
        // A struct of strings and numbers always serializes.
        if serde_json::to_writer(&mut *out, &c).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
    }

    /// The opening `{"role":"assistant","content":""}` chunk, once.
    pub fn role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            let d = Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            };
            self.write(out, d, None);
        }
    }

    /// A text delta.
    pub fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        self.role(out);
        let d = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.write(out, d, None);
    }

    /// Starts a tool call; returns its OpenAI index.
    pub fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str, args: &str) -> usize {
        self.role(out);
        let index = self.tools;
        self.tools += 1;
        let d = Delta {
            tool_calls: Some([ToolDelta {
                index,
                id: Some(id),
                kind: Some("function"),
                function: FnDelta {
                    name: Some(name),
                    arguments: args,
                },
            }]),
            ..Delta::default()
        };
        self.write(out, d, None);
        index
    }

    /// More argument text for the tool call at `index`.
    pub fn tool_args(&mut self, out: &mut Vec<u8>, index: usize, args: &str) {
        if args.is_empty() {
            return;
        }
        let d = Delta {
            tool_calls: Some([ToolDelta {
                index,
                id: None,
                kind: None,
                function: FnDelta {
                    name: None,
                    arguments: args,
                },
            }]),
            ..Delta::default()
        };
        self.write(out, d, None);
    }

    /// The chunk carrying `finish_reason`.
    pub fn finish(&mut self, out: &mut Vec<u8>, reason: &str) {
        self.role(out);
        self.write(out, Delta::default(), Some(reason));
    }

    /// The usage-only chunk, when the client asked for it.
    pub fn usage(&mut self, out: &mut Vec<u8>, usage: &Usage) {
        if self.include_usage {
            self.write_chunk(out, &[], Some(usage));
        }
    }

    /// `data: [DONE]`.
    pub fn done(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    /// An error event in OpenAI's stream shape.
    pub fn error(&mut self, out: &mut Vec<u8>, e: &ErrorBody) {
        out.extend_from_slice(&e.to_sse_event());
    }
}
