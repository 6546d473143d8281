//! Routing and the handling of one request: read the body, apply the behaviour (faults,
//! status, delays), then answer in the endpoint's shape.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use parking_lot::Mutex;
use serde_json::Value;

use super::api::{Answer, Api, ApiError, Ctx, query_param};
use super::behaviour::{Behaviour, ControlUpdate, Fault};
use super::body::{ERROR_BODY, Endpoint, MODELS_BODY, Reply, prompt_tokens};
use super::conn::ConnControl;
use super::embeddings::embeddings_body;
use super::response::MockBody;
use super::sigv4::AwsKeys;
use super::sse::{Chunked, stream_body};
use super::stats::{RequestGuard, Stats};
use super::{anthropic, bedrock, gemini, token, workers};

/// Largest request body accepted (a gateway test sends a 4 MiB prompt).
pub const MAX_BODY_BYTES: usize = 256 << 20;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// State shared by every connection of one mock server.
#[derive(Debug)]
pub struct MockState {
    name: HeaderValue,
    defaults: Mutex<Behaviour>,
    stats: Arc<Stats>,
    seq: AtomicU64,
    aws: AwsKeys,
}

impl MockState {
    /// State for a mock called `name` with the given default behaviour.
    pub fn new(name: HeaderValue, defaults: Behaviour) -> Self {
        Self {
            name,
            defaults: Mutex::new(defaults),
            stats: Arc::new(Stats::default()),
            seq: AtomicU64::new(1),
            aws: AwsKeys::default(),
        }
    }

    /// Sets the credentials Bedrock requests must be SigV4-signed with.
    pub fn set_aws_keys(&mut self, aws: AwsKeys) {
        self.aws = aws;
    }

    fn respond(
        &self,
        status: StatusCode,
        content_type: HeaderValue,
        body: MockBody,
    ) -> Response<MockBody> {
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert("x-mock-name", self.name.clone());
        resp
    }

    fn json(&self, status: StatusCode, value: &Value) -> Response<MockBody> {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.respond(status, JSON, MockBody::full(body))
    }

    fn api_error(&self, err: ApiError) -> Response<MockBody> {
        let mut resp = self.respond(err.status, JSON, MockBody::full(err.body));
        resp.headers_mut().extend(err.headers);
        resp
    }

    fn invalid(&self, status: StatusCode, message: &str) -> Response<MockBody> {
        let value = serde_json::json!({"error": {
            "message": message, "type": "invalid_request_error", "param": null, "code": null
        }});
        self.json(status, &value)
    }
}

/// Handles one request; never fails (faults are acted out through `conn`).
pub async fn handle(
    req: Request<Incoming>,
    state: Arc<MockState>,
    conn: Arc<ConnControl>,
) -> Result<Response<MockBody>, Infallible> {
    let method = req.method().clone();
    let resp = match (&method, req.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => {
            generate(req, &state, &conn, Api::OpenAi(Some(Endpoint::Chat))).await
        }
        (&Method::POST, "/v1/completions") => {
            generate(req, &state, &conn, Api::OpenAi(Some(Endpoint::Completion))).await
        }
        (&Method::POST, "/v1/embeddings") => generate(req, &state, &conn, Api::OpenAi(None)).await,
        (&Method::POST, "/token") => token_exchange(req, &state).await,
        (&Method::GET, "/v1/models") => state.respond(
            StatusCode::OK,
            JSON,
            MockBody::full(Bytes::from_static(MODELS_BODY)),
        ),
        (&Method::GET, "/healthz") => {
            state.respond(StatusCode::OK, JSON, MockBody::full(&b"{}"[..]))
        }
        (&Method::GET, "/stats") => state.json(StatusCode::OK, &state.stats.to_json()),
        (&Method::POST, "/stats/reset") => {
            state.stats.reset();
            state.json(StatusCode::OK, &state.stats.to_json())
        }
        (&Method::GET, "/last-request") => {
            state.json(StatusCode::OK, &state.stats.last_request_json())
        }
        (&Method::GET, "/last-request/body") => match state.stats.last_body() {
            Some((content_type, body)) => {
                state.respond(StatusCode::OK, content_type, MockBody::full(body))
            }
            None => state.respond(StatusCode::NO_CONTENT, JSON, MockBody::empty()),
        },
        (&Method::POST, "/control") => control(req, &state).await,
        (
            _,
            "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/models"
            | "/healthz"
            | "/stats"
            | "/stats/reset"
            | "/last-request"
            | "/control"
            | "/token",
        ) => state.invalid(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        (_, path) => match Api::route(path) {
            Some(api) if method == Method::POST => generate(req, &state, &conn, api).await,
            Some(api) => {
                state.api_error(api.error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"))
            }
            None => state.invalid(StatusCode::NOT_FOUND, "no such endpoint"),
        },
    };
    Ok(resp)
}

/// `POST /control`: changes the defaults, answers with the new ones.
async fn control(req: Request<Incoming>, state: &MockState) -> Response<MockBody> {
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return state.invalid(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let update: ControlUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(e) => return state.invalid(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut defaults = state.defaults.lock();
    if let Err(e) = defaults.apply(&update) {
        return state.invalid(StatusCode::BAD_REQUEST, &e);
    }
    let value = serde_json::to_value(*defaults).unwrap_or(Value::Null);
    drop(defaults);
    state.json(StatusCode::OK, &value)
}

/// `POST /token`: the OAuth2 JWT-bearer grant (counted in `/stats` as `token_requests`,
/// untouched by faults and not recorded as the last request).
async fn token_exchange(req: Request<Incoming>, state: &MockState) -> Response<MockBody> {
    state.stats.count_token_request();
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return state.invalid(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match token::exchange(&body) {
        Ok(v) => state.json(StatusCode::OK, &v),
        Err(v) => state.json(StatusCode::BAD_REQUEST, &v),
    }
}

/// A generation request in any provider's format, counted in `/stats`.
async fn generate(
    req: Request<Incoming>,
    state: &MockState,
    conn: &Arc<ConnControl>,
    api: Api,
) -> Response<MockBody> {
    let mut guard = state.stats.begin();
    let (mut parts, body) = req.into_parts();
    let openai = api.is_openai_shaped();
    let invalid = |status: StatusCode, message: &str| {
        if openai {
            state.invalid(status, message)
        } else {
            state.api_error(api.error(status, message))
        }
    };
    let behaviour = {
        let defaults = *state.defaults.lock();
        defaults.with_headers(&parts.headers)
    };
    // A body error here is the client going away mid-upload: the guard counts it cancelled.
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            guard.complete();
            return invalid(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        Err(_) => {
            drop(guard);
            return invalid(StatusCode::BAD_REQUEST, "request body aborted");
        }
    };
    let behaviour = match behaviour {
        Ok(b) => b,
        Err(e) => {
            state.stats.record(&parts.uri, parts.headers, body);
            return finish(guard, invalid(StatusCode::BAD_REQUEST, &e));
        }
    };
    let authorized = api.authorize(&parts, &body, &state.aws);
    let headers = std::mem::take(&mut parts.headers);
    state.stats.record(&parts.uri, headers, body.clone());
    if let Err(e) = authorized {
        return finish(guard, state.api_error(e));
    }
    match behaviour.fault {
        Fault::Reset => {
            guard.fault();
            conn.reset();
            return std::future::pending().await;
        }
        Fault::Stall => return std::future::pending().await,
        Fault::None | Fault::DropMidStream => {}
    }
    if behaviour.status != 200 {
        let resp = if openai {
            error_response(state, &behaviour)
        } else {
            let status =
                StatusCode::from_u16(behaviour.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = state.api_error(api.error(status, "mock error"));
            if let Some(secs) = behaviour.retry_after {
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        };
        return finish(guard, resp);
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let ctx = Ctx {
        seq,
        created,
        chunks: behaviour.chunks,
        prompt_tokens: prompt_tokens(body.len()),
    };
    let answer = match &api {
        Api::OpenAi(endpoint) | Api::Azure(endpoint) | Api::WorkersOpenAi(endpoint) => {
            openai_answer(*endpoint, &body, &ctx)
        }
        Api::Anthropic => anthropic::answer(&body, &ctx),
        Api::Gemini { model, method, .. } => {
            let sse = query_param(parts.uri.query().unwrap_or(""), "alt").as_deref() == Some("sse");
            gemini::answer(*method, model, sse, &body, &ctx)
        }
        Api::Bedrock { action } => bedrock::answer(*action, &body, &ctx),
        Api::WorkersRun => workers::answer(&body, &ctx),
    };
    match answer {
        Ok(Answer::Full(bytes)) => full_reply(state, conn, guard, &behaviour, bytes).await,
        Ok(Answer::Stream {
            pieces,
            break_after,
            content_type,
        }) => {
            let mut body = MockBody::stream(pieces, behaviour.ttft(), behaviour.chunk_delay());
            if behaviour.fault == Fault::DropMidStream {
                body = body.break_after(break_after, Arc::clone(conn));
            }
            let mut resp = state.respond(StatusCode::OK, content_type, body.guarded(guard));
            resp.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => finish(guard, invalid(StatusCode::BAD_REQUEST, &e)),
    }
}

/// The OpenAI answer (`endpoint` `None` = embeddings).
fn openai_answer(endpoint: Option<Endpoint>, body: &[u8], ctx: &Ctx) -> Result<Answer, String> {
    let Some(endpoint) = endpoint else {
        return embeddings_body(body).map(Answer::Full);
    };
    let reply = Reply::parse(endpoint, body, ctx.seq, ctx.created)?;
    if !reply.stream {
        return Ok(Answer::Full(reply.full_body()));
    }
    let pieces = stream_body(&reply, ctx.chunks);
    let content_chunks = pieces.len();
    Ok(Answer::sse(pieces, content_chunks / 2))
}

/// A non-streamed reply: waits for the TTFT, then sends the body (or half of it).
async fn full_reply(
    state: &MockState,
    conn: &Arc<ConnControl>,
    guard: RequestGuard,
    behaviour: &Behaviour,
    body: Bytes,
) -> Response<MockBody> {
    if behaviour.ttft_ms > 0 {
        tokio::time::sleep(behaviour.ttft()).await;
    }
    let body = if behaviour.fault == Fault::DropMidStream {
        let len = body.len() as u64;
        MockBody::stream(
            Chunked::halves(body),
            Default::default(),
            Default::default(),
        )
        .with_exact_len(len)
        .break_after(1, Arc::clone(conn))
    } else {
        MockBody::full(body)
    };
    state.respond(StatusCode::OK, JSON, body.guarded(guard))
}

fn error_response(state: &MockState, behaviour: &Behaviour) -> Response<MockBody> {
    let status =
        StatusCode::from_u16(behaviour.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = state.respond(status, JSON, MockBody::full(Bytes::from_static(ERROR_BODY)));
    if let Some(secs) = behaviour.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A response whose body is handed over at once: the request counts as completed.
fn finish(mut guard: RequestGuard, resp: Response<MockBody>) -> Response<MockBody> {
    guard.complete();
    resp
}
