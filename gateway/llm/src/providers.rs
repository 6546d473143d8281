//! The adapter seam: one small trait, one enum of provider kinds.
//!
//! An [`Adapter`] knows how to address one provider API: where a request goes, which
//! headers authenticate it, how the body must look, and how the provider's answer and
//! stream become OpenAI's. It is pure: the gateway (or edge worker) does the I/O.
//!
//! OpenAI-compatible servers (OpenAI, vLLM, Ollama, Workers AI's `/v1`) share
//! [`openai::OpenAiAdapter`]. The `mock` kind has no adapter: the gateway answers it
//! in-process with [`crate::mock`].

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod workers_ai;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

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
    /// Anthropic's Messages API (`/v1/messages`).
    Anthropic,
    /// AWS Bedrock Converse / ConverseStream, SigV4-signed.
    Bedrock,
    /// Azure OpenAI deployments (`/openai/deployments/{model}/…?api-version=`).
    Azure,
    /// The Gemini API (`generativelanguage.googleapis.com`, `x-goog-api-key`).
    Gemini,
    /// Vertex AI's Gemini models (OAuth2 bearer token).
    Vertex,
    /// Cloudflare Workers AI's OpenAI-compatible endpoint (`{base}/v1/…`).
    WorkersAi,
    /// Cloudflare Workers AI's native endpoint (`{base}/run/@cf/…`).
    WorkersAiRun,
}

impl ProviderKind {
    /// The adapter that talks to this kind over HTTP; `None` for in-process kinds.
    pub fn adapter(self) -> Option<&'static dyn Adapter> {
        match self {
            Self::Openai => Some(&openai::OpenAiAdapter),
            Self::Mock => None,
            Self::Anthropic => Some(&anthropic::AnthropicAdapter),
            Self::Bedrock => Some(&bedrock::BedrockAdapter),
            Self::Azure => Some(&azure::AzureAdapter),
            Self::Gemini => Some(&gemini::GeminiAdapter::GEMINI),
            Self::Vertex => Some(&gemini::GeminiAdapter::VERTEX),
            Self::WorkersAi => Some(&workers_ai::WorkersAiAdapter),
            Self::WorkersAiRun => Some(&workers_ai::WorkersAiRunAdapter),
        }
    }

    /// Whether the provider answers in OpenAI's wire format (bodies and errors).
    pub fn speaks_openai(self) -> bool {
        matches!(
            self,
            Self::Openai | Self::Mock | Self::Azure | Self::WorkersAi
        )
    }

    /// The name used in telemetry (`gen_ai.provider.name`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Mock => "mock",
            Self::Anthropic => "anthropic",
            Self::Bedrock => "aws.bedrock",
            Self::Azure => "azure.ai.openai",
            Self::Gemini => "gcp.gemini",
            Self::Vertex => "gcp.vertex_ai",
            Self::WorkersAi | Self::WorkersAiRun => "cloudflare.workers_ai",
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
///
/// Fields past `extra_headers` are optional and only read by the providers that need them;
/// build with `..Target::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// Path prefix of the provider's base URL, without a trailing slash (e.g. `/v1`).
    pub base_path: &'a str,
    /// Value for the `Host` header.
    pub host: &'a str,
    /// The model name the provider knows.
    pub model: &'a str,
    /// Credential, if the provider needs one.
    pub api_key: Option<&'a str>,
    /// `Bearer {api_key}`, when the caller keeps it built (the gateway does, once per
    /// provider): adapters that send the key as a bearer token borrow it instead of building
    /// it per request. Must be exactly `"Bearer "` followed by `api_key` when set.
    pub api_key_bearer: Option<&'a str>,
    /// Extra headers configured for the provider.
    pub extra_headers: &'a [(String, String)],
    /// API version: Azure's `api-version` query, Anthropic's `anthropic-version` header.
    pub api_version: Option<&'a str>,
    /// An OAuth2 / Entra ID access token obtained by the caller (Vertex, Azure). Sent as
    /// `Authorization: Bearer` and preferred over `api_key`.
    pub bearer_token: Option<&'a str>,
    /// AWS credentials for SigV4 (Bedrock).
    pub aws: Option<AwsCredentials<'a>>,
    /// AWS region (Bedrock), e.g. `us-east-1`.
    pub region: Option<&'a str>,
    /// The time of the attempt in seconds since the Unix epoch (SigV4 needs it; the crate
    /// reads no clock).
    pub now_unix: Option<u64>,
}

// === impl Target ===

impl<'a> Target<'a> {
    /// The `Authorization` value that sends `api_key` as a bearer token: borrowed from
    /// [`Target::api_key_bearer`] when the caller built it, else built here.
    pub(crate) fn api_key_as_bearer(&self) -> Option<Cow<'a, str>> {
        match (self.api_key_bearer, self.api_key) {
            (Some(b), _) => Some(Cow::Borrowed(b)),
            (None, Some(k)) => Some(Cow::Owned(concat(&["Bearer ", k]))),
            (None, None) => None,
        }
    }

    /// The `Authorization` value for providers that take either credential as a bearer
    /// token: `bearer_token` when set, else `api_key` as in [`Target::api_key_as_bearer`].
    pub(crate) fn bearer_as_header(&self) -> Option<Cow<'a, str>> {
        match self.bearer_token {
            Some(t) => Some(bearer(t)),
            None => self.api_key_as_bearer(),
        }
    }
}

/// `Bearer {token}`, for tokens that change per request (OAuth2 / Entra ID).
pub(crate) fn bearer(token: &str) -> Cow<'static, str> {
    Cow::Owned(concat(&["Bearer ", token]))
}

/// AWS credentials, as configured or taken from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` by the caller.
#[derive(Clone, Copy, Default)]
pub struct AwsCredentials<'a> {
    /// `AKIA…` / `ASIA…`.
    pub access_key_id: &'a str,
    /// The secret key; never logged.
    pub secret_access_key: &'a str,
    /// Session token of temporary credentials.
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for AwsCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What a translated answer needs that the provider's body may lack.
#[derive(Debug, Clone, Copy)]
pub struct ResponseMeta<'a> {
    /// `created` for OpenAI bodies and chunks (seconds since the Unix epoch).
    pub created: u64,
    /// Used as the response `id` when the provider sends none (Bedrock, Gemini).
    pub id: &'a str,
    /// Used as `model` when the provider does not name one (the deployment's model).
    pub model: &'a str,
}

/// One header an adapter sets: a fixed name and a value that is static or borrowed from
/// the [`Target`] when it can be, built for the request only when it must be.
pub type Header<'a> = (&'static str, Cow<'a, str>);

/// An adapter's own headers, in order. Five fit inline (no adapter but SigV4-signed Bedrock
/// sets more), so building them allocates nothing.
pub type Headers<'a> = SmallVec<[Header<'a>; 5]>;

/// A provider request ready to send. It borrows what it can from the [`Target`] it was
/// built for (host, credentials, base path, configured headers), so the OpenAI
/// pass-through allocates only its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest<'a> {
    /// HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub path: RequestPath<'a>,
    /// The adapter's headers, besides `content-length` (which the sender sets from `body`).
    pub headers: Headers<'a>,
    /// Headers configured for the provider, sent after [`UpstreamRequest::headers`] (and
    /// not part of a SigV4 signature).
    pub extra_headers: &'a [(String, String)],
    /// The body bytes.
    pub body: Vec<u8>,
}

/// A request's path and query: `prefix` (the configured base path, borrowed) followed by
/// `rest`. Kept in two pieces so the common `{base}/chat/completions` is never joined;
/// `Display` writes the whole path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestPath<'a> {
    /// The leading piece (usually the base path).
    pub prefix: &'a str,
    /// The rest, with the query if any.
    pub rest: Cow<'a, str>,
}

// === impl UpstreamRequest ===

impl UpstreamRequest<'_> {
    /// Every header in the order it goes on the wire: [`UpstreamRequest::headers`], then
    /// [`UpstreamRequest::extra_headers`].
    pub fn all_headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter().map(|(k, v)| (*k, v.as_ref())).chain(
            self.extra_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// How many headers [`UpstreamRequest::all_headers`] yields.
    pub fn header_count(&self) -> usize {
        self.headers.len() + self.extra_headers.len()
    }

    /// The value of the first header named `name` (exact, lower-case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all_headers().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

// === impl RequestPath ===

impl<'a> RequestPath<'a> {
    /// A path held in one piece.
    pub fn whole(path: impl Into<Cow<'a, str>>) -> Self {
        Self {
            prefix: "",
            rest: path.into(),
        }
    }

    /// The two pieces, in order.
    pub fn pieces(&self) -> [&str; 2] {
        [self.prefix, &self.rest]
    }

    /// Length in bytes of the whole path.
    pub fn len(&self) -> usize {
        self.prefix.len() + self.rest.len()
    }

    /// Whether the path is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for RequestPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.prefix)?;
        f.write_str(&self.rest)
    }
}

impl PartialEq<str> for RequestPath<'_> {
    fn eq(&self, other: &str) -> bool {
        other
            .strip_prefix(self.prefix)
            .is_some_and(|rest| rest == self.rest)
    }
}

impl PartialEq<&str> for RequestPath<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

/// The pieces joined into one string, allocated once (cheaper than `format!` per request).
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// How one provider API is addressed. Implementations are pure and stateless.
pub trait Adapter: Send + Sync {
    /// Builds the provider request for one attempt. Called once per attempt, so a fallback
    /// to another deployment gets its own model name and credentials.
    ///
    /// The request borrows from `target` (host, prebuilt credentials, base path, extra
    /// headers): keep what `target` points at alive until the request is sent.
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError>;

    /// A fresh translator for one streamed response. `meta` supplies the id, model and
    /// time that non-OpenAI streams lack.
    fn stream_translator_with(
        &self,
        op: Operation,
        req: &ParsedRequest,
        meta: &ResponseMeta<'_>,
    ) -> Box<dyn StreamTranslator>;

    /// Turns a complete non-streamed provider body into the client's format, returning the
    /// body and the usage it reports; `meta` fills what the provider body lacks.
    fn translate_response_with(
        &self,
        op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>);

    /// [`Adapter::stream_translator_with`] with placeholder metadata.
    fn stream_translator(&self, op: Operation, req: &ParsedRequest) -> Box<dyn StreamTranslator> {
        self.stream_translator_with(op, req, &default_meta(&req.model))
    }

    /// [`Adapter::translate_response_with`] with placeholder metadata.
    fn translate_response(&self, op: Operation, body: Vec<u8>) -> (Vec<u8>, Option<Usage>) {
        self.translate_response_with(op, body, &default_meta(""))
    }

    /// Whether an upstream answer with this `content-type` is a stream to hand to the
    /// translator (Bedrock streams `application/vnd.amazon.eventstream`, not SSE).
    fn is_stream(&self, content_type: &str) -> bool {
        content_type.starts_with("text/event-stream")
    }

    /// Maps a provider error answer (status >= 400) to the client's OpenAI error. Called
    /// instead of `translate_response` for error statuses; never echoes credentials.
    fn translate_error(&self, status: u16, body: &[u8]) -> crate::provider_error::ProviderError {
        crate::provider_error::map(status, body)
    }
}

/// The `ResponseMeta` used by the meta-less trait methods: fixed values, so those stay pure.
pub(crate) fn default_meta(model: &str) -> ResponseMeta<'_> {
    ResponseMeta {
        created: 0,
        id: "chatcmpl-datamind",
        model,
    }
}
