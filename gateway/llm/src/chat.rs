//! OpenAI chat-completions, typed: what translating adapters read from a client request
//! and the answer they write back.
//!
//! Only the fields a translation needs are typed; the OpenAI-compatible adapter never uses
//! this module (it forwards the client body verbatim).

use serde::Deserialize;
use serde_json::Value;

use crate::{LlmError, ParsedRequest};

/// The `max_tokens` sent to providers that require one (Anthropic) when the client gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// A chat-completions request.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The conversation.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Function tools.
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// `"auto" | "none" | "required" | {"type":"function","function":{"name"}}`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// `false` asks for at most one tool call.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// One stop sequence or several.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Legacy output limit.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Output limit (wins over `max_tokens`).
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Kept as the client wrote it so numbers round-trip exactly.
    #[serde(default)]
    pub temperature: Option<Value>,
    /// Kept as the client wrote it.
    #[serde(default)]
    pub top_p: Option<Value>,
    /// End-user id.
    #[serde(default)]
    pub user: Option<String>,
    /// Embeddings input: a string or an array of strings.
    #[serde(default)]
    pub input: Option<Value>,
    /// Embeddings: requested vector size.
    #[serde(default)]
    pub dimensions: Option<u64>,
}

/// One message.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text or parts; `null` on assistant turns that only call tools.
    #[serde(default)]
    pub content: Option<Content>,
    /// Tool calls made by an assistant turn.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `tool` messages: the call answered.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// Message content.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<Part>),
}

/// One content part (`text` or `image_url`; others are rejected by the adapters).
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// Part type.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `text`.
    #[serde(default)]
    pub text: Option<String>,
    /// For `image_url`.
    #[serde(default)]
    pub image_url: Option<ImageUrl>,
}

/// `{"url": "https://…" | "data:image/png;base64,…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageUrl {
    /// The URL.
    pub url: String,
}

/// An image as providers want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image<'a> {
    /// Inline bytes, base64 as received.
    Base64 {
        /// e.g. `image/png`.
        media_type: &'a str,
        /// Base64 text.
        data: &'a str,
    },
    /// A remote URL.
    Url(&'a str),
}

/// A tool call in an assistant message.
#[derive(Debug, Clone, Deserialize)]
pub struct ToolCall {
    /// Call id.
    pub id: String,
    /// The function called.
    pub function: FunctionCall,
}

/// Function name and JSON-encoded arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// A tool definition.
#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    /// The function.
    pub function: FunctionDef,
}

/// A function's name, description and JSON Schema.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionDef {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// `stop`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `tool_choice`, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This function.
    Function(String),
}

// === impl ChatRequest ===

impl ChatRequest {
    /// Reads the typed view of a client body.
    pub fn parse(req: &ParsedRequest) -> Result<Self, LlmError> {
        serde_json::from_slice(req.body()).map_err(|e| LlmError::InvalidField {
            field: "messages",
            reason: e.to_string(),
        })
    }

    /// The output limit the client asked for.
    pub fn max_output(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Stop sequences, empty when none.
    pub fn stop_sequences(&self) -> Vec<String> {
        match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        }
    }

    /// The tool choice, if given.
    pub fn tool_choice(&self) -> Result<Option<ToolChoice>, LlmError> {
        let bad = || LlmError::InvalidField {
            field: "tool_choice",
            reason: "must be auto, none, required or a function".into(),
        };
        Ok(match &self.tool_choice {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(match s.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                _ => return Err(bad()),
            }),
            Some(v) => Some(ToolChoice::Function(
                v.pointer("/function/name")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?
                    .to_owned(),
            )),
        })
    }

    /// The function name of the call `id`, searched in assistant turns before `before`.
    pub fn tool_name(&self, before: usize, id: &str) -> Option<&str> {
        self.messages[..before].iter().rev().find_map(|m| {
            m.tool_calls
                .as_ref()?
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.function.name.as_str())
        })
    }

    /// Embeddings input as a list of strings.
    pub fn input_texts(&self) -> Result<Vec<String>, LlmError> {
        match &self.input {
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()),
            _ => Err(LlmError::InvalidField {
                field: "input",
                reason: "must be a string or an array of strings".into(),
            }),
        }
    }
}

// === impl Content ===

impl Content {
    /// All text parts joined (images skipped).
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(p) => p
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

impl Part {
    /// The image of an `image_url` part.
    pub fn image(&self) -> Option<Image<'_>> {
        self.image_url.as_ref().map(|u| parse_image(&u.url))
    }
}

/// Splits a `data:<type>;base64,<data>` URL; anything else is a remote URL.
pub fn parse_image(url: &str) -> Image<'_> {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((head, data)) = rest.split_once(',')
        && let Some(media_type) = head.strip_suffix(";base64")
    {
        return Image::Base64 { media_type, data };
    }
    Image::Url(url)
}

/// An error for content a provider cannot take.
pub fn unsupported(field: &'static str, what: &str) -> LlmError {
    LlmError::InvalidField {
        field,
        reason: format!("{what} is not supported by this provider"),
    }
}

mod completion;

pub use completion::{Completion, FinishReason};

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn parses_images_tool_choice_and_tool_names() {
        assert_eq!(
            parse_image("data:image/png;base64,iVBO"),
            Image::Base64 {
                media_type: "image/png",
                data: "iVBO"
            }
        );
        assert_eq!(
            parse_image("https://x/y.png"),
            Image::Url("https://x/y.png")
        );
        let r = ParsedRequest::parse(Bytes::from_static(
            br#"{"model":"m","tool_choice":{"type":"function","function":{"name":"f"}},
            "messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"ok"}],"stop":"END"}"#,
        ))
        .unwrap();
        let c = ChatRequest::parse(&r).unwrap();
        assert_eq!(
            c.tool_choice().unwrap(),
            Some(ToolChoice::Function("f".into()))
        );
        assert_eq!(c.tool_name(1, "c1"), Some("get"));
        assert_eq!(c.tool_name(0, "c1"), None);
        assert_eq!(c.stop_sequences(), vec!["END".to_owned()]);
    }
}
