//! The OpenAI `chat.completion` body written by translating adapters.

use serde::Serialize;
use serde_json::Value;

use crate::Usage;

/// OpenAI `finish_reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Output limit reached.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Blocked by a filter.
    ContentFilter,
}

impl FinishReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// A complete assistant answer, written as an OpenAI `chat.completion`.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// Response id.
    pub id: String,
    /// Model name reported.
    pub model: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Text, if any.
    pub text: Option<String>,
    /// Tool calls: id, name, JSON arguments.
    pub tool_calls: Vec<(String, String, String)>,
    /// Finish reason wire value.
    pub finish_reason: Option<&'static str>,
    /// Usage.
    pub usage: Usage,
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    usage: Value,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
}

impl Completion {
    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let tool_calls = self
            .tool_calls
            .iter()
            .map(|(id, name, args)| {
                serde_json::json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args}})
            })
            .collect();
        let out = CompletionOut {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: &self.model,
            choices: [ChoiceOut {
                index: 0,
                message: MessageOut {
                    role: "assistant",
                    content: self.text.as_deref(),
                    tool_calls,
                },
                logprobs: None,
                finish_reason: self.finish_reason,
            }],
            usage: self.usage.to_openai_json(),
        };
        serde_json::to_vec(&out).unwrap_or_default()
    }
}
