//! The adapter seam: one small trait, one enum of provider kinds.
//!
//! An [`Adapter`] knows how to address one provider API: where a request goes, which
//! headers authenticate it, how the body must look, and how the provider's answer and
//! stream become OpenAI's. It is pure: the gateway (or edge worker) does the I/O.
//!
//! OpenAI-compatible servers (OpenAI, vLLM, Ollama, Workers AI's `/v1`) share
//! [`openai::OpenAiAdapter`]. The `mock` kind has no adapter: the gateway answers it
//! in-process with [`crate::mock`].

pub mod openai;

use serde::{Deserialize, Serialize};

use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

/// Which API family a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Any OpenAI-compatible HTTP API.
    Openai,
    /// The built-in deterministic mock, answered in-process.
    Mock,
}

impl ProviderKind {
    /// The adapter that talks to this kind over HTTP; `None` for in-process kinds.
    pub fn adapter(self) -> Option<&'static dyn Adapter> {
        match self {
            Self::Openai => Some(&openai::OpenAiAdapter),
            Self::Mock => None,
        }
    }

    /// The name used in telemetry (`gen_ai.provider.name`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Mock => "mock",
        }
    }
}

/// The client-facing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
}

impl Operation {
    /// The OpenAI path below the API base (`/v1`).
    pub fn openai_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
        }
    }

    /// `gen_ai.operation.name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat",
            Self::Completions => "text_completion",
            Self::Embeddings => "embeddings",
        }
    }

    /// Whether the operation can stream.
    pub fn can_stream(self) -> bool {
        !matches!(self, Self::Embeddings)
    }
}

/// Where and how to reach one deployment, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Path prefix of the provider's base URL, without a trailing slash (e.g. `/v1`).
    pub base_path: &'a str,
    /// Value for the `Host` header.
    pub host: &'a str,
    /// The model name the provider knows.
    pub model: &'a str,
    /// Credential, if the provider needs one.
    pub api_key: Option<&'a str>,
    /// Extra headers configured for the provider.
    pub extra_headers: &'a [(String, String)],
}

/// A provider request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// Headers besides `content-length` (which the sender sets from `body`).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// How one provider API is addressed. Implementations are pure and stateless.
pub trait Adapter: Send + Sync {
    /// Builds the provider request for one attempt. Called once per attempt, so a fallback
    /// to another deployment gets its own model name and credentials.
    fn build_request(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, LlmError>;

    /// A fresh translator for one streamed response.
    fn stream_translator(&self, op: Operation, req: &ParsedRequest) -> Box<dyn StreamTranslator>;

    /// Turns a complete non-streamed provider body into the client's format, returning the
    /// body and the usage it reports.
    fn translate_response(&self, op: Operation, body: Vec<u8>) -> (Vec<u8>, Option<Usage>);
}
