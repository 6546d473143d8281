//! The provider wire formats besides OpenAI: which API a path belongs to, how that API
//! authenticates, what its errors look like, and the [`Answer`] every format builds.
//!
//! Routes (all `POST`, on the same listener as the OpenAI ones):
//! - Azure OpenAI `/openai/deployments/{d}/{chat/completions|completions|embeddings}?api-version=`
//! - Anthropic `/v1/messages`
//! - Gemini API `/{v1beta|v1|v1alpha}/models/{model}:{method}` and Vertex
//!   `/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}`
//! - Bedrock `/model/{modelId}/{converse|converse-stream|invoke}` (SigV4)
//! - Workers AI `/client/v4/accounts/{a}/ai/run/{model}` and `…/ai/v1/{OpenAI path}`

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::body::Endpoint;
use super::sigv4::{self, AwsKeys, Signed};
use super::sse::Chunked;

/// Arguments of every mock tool call.
pub const TOOL_ARGS: &str = r#"{"location":"Paris"}"#;

/// `text/event-stream`.
pub const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// A built reply.
#[derive(Debug)]
pub enum Answer {
    /// A JSON body sent at once (after the TTFT).
    Full(Bytes),
    /// A body sent piece by piece.
    Stream {
        /// The pieces.
        pieces: Chunked,
        /// Pieces sent before a drop-mid-stream fault breaks the connection.
        break_after: usize,
        /// `Content-Type` of the stream.
        content_type: HeaderValue,
    },
}

impl Answer {
    /// An SSE stream.
    pub fn sse(pieces: Chunked, break_after: usize) -> Self {
        Self::Stream {
            pieces,
            break_after,
            content_type: EVENT_STREAM,
        }
    }
}

/// Per-request inputs of every format.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Sequence number, for ids.
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
    /// Content chunks of a text stream.
    pub chunks: u32,
    /// Prompt tokens charged (body bytes / 4).
    pub prompt_tokens: u64,
}

/// Cuts `s` (ASCII) into `n` (at least 1, at most `s.len()`) nearly equal pieces.
pub fn split_args(s: &str, n: u32) -> Vec<&str> {
    let n = (n.max(1) as usize).min(s.len().max(1));
    let step = s.len().div_ceil(n);
    let mut out = Vec::with_capacity(n);
    let mut rest = s;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at(step.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Which Gemini method a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiMethod {
    /// `:generateContent`
    Generate,
    /// `:streamGenerateContent` (SSE with `?alt=sse`, else a streamed JSON array)
    Stream,
    /// `:embedContent`
    Embed,
    /// `:batchEmbedContents`
    BatchEmbed,
}

/// Which Bedrock runtime action a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedrockAction {
    /// `/converse`
    Converse,
    /// `/converse-stream`
    ConverseStream,
    /// `/invoke` (embedding models: Titan, Cohere)
    Invoke,
}

/// The API a generation request is addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// The original OpenAI routes (`None` = embeddings); no authentication.
    OpenAi(Option<Endpoint>),
    /// Azure OpenAI: the OpenAI answers, `api-key` (or Entra bearer) and `api-version` required.
    Azure(Option<Endpoint>),
    /// Workers AI's OpenAI-compatible routes: the OpenAI answers, bearer token required.
    WorkersOpenAi(Option<Endpoint>),
    /// Anthropic Messages.
    Anthropic,
    /// Gemini API (`vertex: false`) or Vertex AI.
    Gemini {
        /// Vertex path (bearer token) rather than the Gemini API (API key).
        vertex: bool,
        /// The model named in the path.
        model: String,
        /// The method.
        method: GeminiMethod,
    },
    /// Bedrock runtime.
    Bedrock {
        /// The action.
        action: BedrockAction,
    },
    /// Workers AI's native `run` route.
    WorkersRun,
}

fn openai_op(rest: &str) -> Option<Option<Endpoint>> {
    match rest {
        "chat/completions" => Some(Some(Endpoint::Chat)),
        "completions" => Some(Some(Endpoint::Completion)),
        "embeddings" => Some(None),
        _ => None,
    }
}

/// Splits `/{seg}/…` off the front of `s`: `(seg, rest after the slash)`.
fn segment(s: &str) -> Option<(&str, &str)> {
    let (seg, rest) = s.split_once('/')?;
    (!seg.is_empty()).then_some((seg, rest))
}

fn gemini_method(rest: &str) -> Option<(String, GeminiMethod)> {
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    let method = match method {
        "generateContent" => GeminiMethod::Generate,
        "streamGenerateContent" => GeminiMethod::Stream,
        "embedContent" => GeminiMethod::Embed,
        "batchEmbedContents" => GeminiMethod::BatchEmbed,
        _ => return None,
    };
    Some((sigv4::percent_decode(model), method))
}

impl Api {
    /// The API of a path, if it is one of the provider routes (the original OpenAI paths are
    /// routed by the caller).
    pub fn route(path: &str) -> Option<Self> {
        if path == "/v1/messages" {
            return Some(Self::Anthropic);
        }
        if let Some(rest) = path.strip_prefix("/openai/deployments/") {
            let (_deployment, op) = segment(rest)?;
            return openai_op(op).map(Self::Azure);
        }
        if let Some(rest) = path.strip_prefix("/client/v4/accounts/") {
            let (_account, rest) = segment(rest)?;
            let rest = rest.strip_prefix("ai/")?;
            if let Some(model) = rest.strip_prefix("run/") {
                return (!model.is_empty()).then_some(Self::WorkersRun);
            }
            return openai_op(rest.strip_prefix("v1/")?).map(Self::WorkersOpenAi);
        }
        if let Some(rest) = path.strip_prefix("/model/") {
            let (_model, action) = segment(rest)?;
            let action = match action {
                "converse" => BedrockAction::Converse,
                "converse-stream" => BedrockAction::ConverseStream,
                "invoke" => BedrockAction::Invoke,
                _ => return None,
            };
            return Some(Self::Bedrock { action });
        }
        let (version, rest) = segment(path.strip_prefix('/')?)?;
        if let Some(rest) = rest.strip_prefix("models/") {
            if !matches!(version, "v1beta" | "v1" | "v1alpha") {
                return None;
            }
            let (model, method) = gemini_method(rest)?;
            return Some(Self::Gemini {
                vertex: false,
                model,
                method,
            });
        }
        if !matches!(version, "v1" | "v1beta1") {
            return None;
        }
        let rest = rest.strip_prefix("projects/")?;
        let (_project, rest) = segment(rest)?;
        let rest = rest.strip_prefix("locations/")?;
        let (_location, rest) = segment(rest)?;
        let rest = rest.strip_prefix("publishers/google/models/")?;
        let (model, method) = gemini_method(rest)?;
        Some(Self::Gemini {
            vertex: true,
            model,
            method,
        })
    }

    /// Whether errors use the OpenAI shape.
    pub fn is_openai_shaped(&self) -> bool {
        matches!(
            self,
            Self::OpenAi(_) | Self::Azure(_) | Self::WorkersOpenAi(_)
        )
    }

    /// Checks the request's credentials the way the provider does.
    pub fn authorize(&self, parts: &Parts, body: &[u8], aws: &AwsKeys) -> Result<(), ApiError> {
        let h = &parts.headers;
        let present = |name: &str| h.get(name).is_some_and(|v| !v.as_bytes().is_empty());
        let bearer = h
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| !t.trim().is_empty());
        let query = parts.uri.query().unwrap_or("");
        match self {
            Self::OpenAi(_) => Ok(()),
            Self::Azure(_) => {
                if !(present("api-key") || bearer) {
                    return Err(ApiError::json(
                        StatusCode::UNAUTHORIZED,
                        &json!({"error": {"code": "401", "message": "Access denied due to \
                            invalid subscription key or wrong API endpoint. Make sure to provide \
                            a valid key for an active subscription and use a correct regional \
                            API endpoint for your resource."}}),
                    ));
                }
                if query_param(query, "api-version").is_none_or(|v| v.is_empty()) {
                    return Err(ApiError::json(
                        StatusCode::NOT_FOUND,
                        &json!({"error": {"code": "404", "message": "Resource not found"}}),
                    ));
                }
                Ok(())
            }
            Self::WorkersOpenAi(_) | Self::WorkersRun => {
                if bearer {
                    Ok(())
                } else {
                    Err(self.error(StatusCode::UNAUTHORIZED, "Authentication error"))
                }
            }
            Self::Anthropic => {
                if !(present("x-api-key") || bearer) {
                    return Err(
                        self.error(StatusCode::UNAUTHORIZED, "x-api-key header is required")
                    );
                }
                if !present("anthropic-version") {
                    return Err(self.error(
                        StatusCode::BAD_REQUEST,
                        "anthropic-version: header is required",
                    ));
                }
                Ok(())
            }
            Self::Gemini { vertex: true, .. } => {
                if bearer {
                    Ok(())
                } else {
                    Err(self.error(
                        StatusCode::UNAUTHORIZED,
                        "Request is missing required authentication credential. Expected OAuth \
                         2 access token, login cookie or other valid authentication credential.",
                    ))
                }
            }
            Self::Gemini { vertex: false, .. } => {
                let key = present("x-goog-api-key")
                    || query_param(query, "key").is_some_and(|k| !k.is_empty());
                if key || bearer {
                    Ok(())
                } else {
                    Err(self.error(
                        StatusCode::FORBIDDEN,
                        "Method doesn't allow unregistered callers (callers without established \
                         identity). Please use API Key or other form of API consumer identity \
                         to call this API.",
                    ))
                }
            }
            Self::Bedrock { .. } if bearer => Ok(()),
            Self::Bedrock { .. } => {
                let signed = Signed {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query,
                    headers: h,
                    authority: parts.uri.authority().map(|a| a.as_str()),
                    body,
                };
                sigv4::verify(&signed, aws, "bedrock").map_err(|e| {
                    let (kind, message) = e.describe();
                    let mut err =
                        ApiError::json(StatusCode::FORBIDDEN, &json!({ "message": message }));
                    err.push_header("x-amzn-errortype", kind);
                    err
                })
            }
        }
    }

    /// The provider's error answer for `status` with `message` (non-OpenAI APIs).
    pub fn error(&self, status: StatusCode, message: &str) -> ApiError {
        let code = status.as_u16();
        match self {
            Self::OpenAi(_) | Self::Azure(_) | Self::WorkersOpenAi(_) => ApiError::json(
                status,
                &json!({"error": {"message": message, "type": "invalid_request_error",
                    "param": null, "code": null}}),
            ),
            Self::Anthropic => ApiError::json(status, &super::anthropic::error_body(code, message)),
            Self::Gemini { .. } => ApiError::json(
                status,
                &json!({"error": {"code": code, "message": message,
                    "status": google_status(code)}}),
            ),
            Self::Bedrock { .. } => {
                let mut err = ApiError::json(status, &json!({ "message": message }));
                err.push_header("x-amzn-errortype", bedrock_error_type(code));
                err
            }
            Self::WorkersRun => ApiError::json(
                status,
                &json!({"result": null, "success": false,
                    "errors": [{"code": workers_error_code(code), "message": message}],
                    "messages": []}),
            ),
        }
    }
}

/// `google.rpc.Code` name for an HTTP status.
pub fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

fn bedrock_error_type(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

fn workers_error_code(status: u16) -> u32 {
    match status {
        400 => 5006,
        401 | 403 => 10000,
        429 => 3040,
        _ => 3043,
    }
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| sigv4::percent_decode(v))
    })
}

/// An error answer: status, JSON body, extra headers.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Bytes,
    /// Extra headers (`x-amzn-errortype`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a JSON body.
    pub fn json(status: StatusCode, body: &Value) -> Self {
        Self {
            status,
            body: Bytes::from(body.to_string()),
            headers: Vec::new(),
        }
    }

    fn push_header(&mut self, name: &'static str, value: &'static str) {
        self.headers.push((
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ctx(chunks: u32) -> Ctx {
        Ctx {
            seq: 1,
            created: 1_700_000_000,
            chunks,
            prompt_tokens: 7,
        }
    }

    /// Event names (empty when none), parsed data, and the number of pieces of an SSE answer.
    pub(crate) fn events(a: &Answer) -> (Vec<String>, Vec<Value>, usize) {
        let Answer::Stream { pieces, .. } = a else {
            panic!("not a stream")
        };
        let text = String::from_utf8(pieces.bytes.to_vec()).unwrap();
        let (mut names, mut datas) = (Vec::new(), Vec::new());
        for block in text.split_terminator("\n\n") {
            let mut name = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    datas.push(serde_json::from_str(d).unwrap_or(Value::String(d.to_owned())));
                }
            }
            names.push(name);
        }
        (names, datas, pieces.len())
    }

    #[test]
    fn routes() {
        assert_eq!(Api::route("/v1/messages"), Some(Api::Anthropic));
        assert_eq!(
            Api::route("/openai/deployments/gpt-4o/chat/completions"),
            Some(Api::Azure(Some(Endpoint::Chat)))
        );
        assert_eq!(
            Api::route("/openai/deployments/e/embeddings"),
            Some(Api::Azure(None))
        );
        assert_eq!(Api::route("/openai/deployments//embeddings"), None);
        assert_eq!(
            Api::route("/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
            Some(Api::Gemini {
                vertex: false,
                model: "gemini-2.0-flash".into(),
                method: GeminiMethod::Stream
            })
        );
        assert_eq!(
            Api::route(
                "/v1/projects/p/locations/us-central1/publishers/google/models/g-1:generateContent"
            ),
            Some(Api::Gemini {
                vertex: true,
                model: "g-1".into(),
                method: GeminiMethod::Generate
            })
        );
        assert_eq!(Api::route("/v1beta/models/g:countTokens"), None);
        assert_eq!(
            Api::route("/model/anthropic.claude-3%3A0/converse-stream"),
            Some(Api::Bedrock {
                action: BedrockAction::ConverseStream
            })
        );
        assert_eq!(
            Api::route("/client/v4/accounts/abc/ai/run/@cf/meta/llama-3.1-8b-instruct"),
            Some(Api::WorkersRun)
        );
        assert_eq!(
            Api::route("/client/v4/accounts/abc/ai/v1/chat/completions"),
            Some(Api::WorkersOpenAi(Some(Endpoint::Chat)))
        );
        assert_eq!(Api::route("/v1/chat/completions"), None);
        assert_eq!(Api::route("/nothing"), None);
    }

    #[test]
    fn split_args_covers_the_string() {
        assert_eq!(split_args(TOOL_ARGS, 4).concat(), TOOL_ARGS);
        assert_eq!(split_args(TOOL_ARGS, 4).len(), 4);
        assert_eq!(split_args(TOOL_ARGS, 0), [TOOL_ARGS]);
        assert_eq!(split_args("ab", 9), ["a", "b"]);
        assert_eq!(
            query_param("alt=sse&key=a%2Bb", "key").as_deref(),
            Some("a+b")
        );
    }

    #[test]
    fn error_shapes() {
        let e = Api::Anthropic.error(StatusCode::from_u16(529).unwrap(), "mock error");
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "overloaded_error");
        let g = Api::Gemini {
            vertex: true,
            model: "m".into(),
            method: GeminiMethod::Generate,
        };
        let v: Value =
            serde_json::from_slice(&g.error(StatusCode::TOO_MANY_REQUESTS, "x").body).unwrap();
        assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(v["error"]["code"], 429);
        let b = Api::Bedrock {
            action: BedrockAction::Converse,
        }
        .error(StatusCode::TOO_MANY_REQUESTS, "x");
        assert_eq!(b.headers[0].1, "ThrottlingException");
    }
}
