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

use super::behaviour::{Behaviour, ControlUpdate, Fault};
use super::body::{ERROR_BODY, Endpoint, MODELS_BODY, Reply};
use super::conn::ConnControl;
use super::embeddings::embeddings_body;
use super::response::MockBody;
use super::sse::{Chunked, stream_body};
use super::stats::{RequestGuard, Stats};

/// Largest request body accepted (a gateway test sends a 4 MiB prompt).
pub const MAX_BODY_BYTES: usize = 256 << 20;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// State shared by every connection of one mock server.
#[derive(Debug)]
pub struct MockState {
    name: HeaderValue,
    defaults: Mutex<Behaviour>,
    stats: Arc<Stats>,
    seq: AtomicU64,
}

impl MockState {
    /// State for a mock called `name` with the given default behaviour.
    pub fn new(name: HeaderValue, defaults: Behaviour) -> Self {
        Self {
            name,
            defaults: Mutex::new(defaults),
            stats: Arc::new(Stats::default()),
            seq: AtomicU64::new(1),
        }
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
            generate(req, &state, &conn, Some(Endpoint::Chat)).await
        }
        (&Method::POST, "/v1/completions") => {
            generate(req, &state, &conn, Some(Endpoint::Completion)).await
        }
        (&Method::POST, "/v1/embeddings") => generate(req, &state, &conn, None).await,
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
            | "/control",
        ) => state.invalid(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => state.invalid(StatusCode::NOT_FOUND, "no such endpoint"),
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

/// A generation request (`endpoint` `None` = embeddings), counted in `/stats`.
async fn generate(
    req: Request<Incoming>,
    state: &MockState,
    conn: &Arc<ConnControl>,
    endpoint: Option<Endpoint>,
) -> Response<MockBody> {
    let mut guard = state.stats.begin();
    let (parts, body) = req.into_parts();
    let behaviour = {
        let defaults = *state.defaults.lock();
        defaults.with_headers(&parts.headers)
    };
    // A body error here is the client going away mid-upload: the guard counts it cancelled.
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            guard.complete();
            return state.invalid(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        Err(_) => {
            drop(guard);
            return state.invalid(StatusCode::BAD_REQUEST, "request body aborted");
        }
    };
    state.stats.record(parts.headers, body.clone());
    let behaviour = match behaviour {
        Ok(b) => b,
        Err(e) => return finish(guard, state.invalid(StatusCode::BAD_REQUEST, &e)),
    };
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
        return finish(guard, error_response(state, &behaviour));
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let reply = match endpoint {
        Some(endpoint) => match Reply::parse(endpoint, &body, seq, created) {
            Ok(reply) => reply,
            Err(e) => return finish(guard, state.invalid(StatusCode::BAD_REQUEST, &e)),
        },
        None => {
            let body = match embeddings_body(&body) {
                Ok(body) => body,
                Err(e) => return finish(guard, state.invalid(StatusCode::BAD_REQUEST, &e)),
            };
            return full_reply(state, conn, guard, &behaviour, body).await;
        }
    };
    if !reply.stream {
        return full_reply(state, conn, guard, &behaviour, reply.full_body()).await;
    }
    let pieces = stream_body(&reply, behaviour.chunks);
    let content_chunks = pieces.len() - 1 - usize::from(reply.include_usage);
    let mut body = MockBody::stream(pieces, behaviour.ttft(), behaviour.chunk_delay());
    if behaviour.fault == Fault::DropMidStream {
        body = body.break_after(content_chunks / 2, Arc::clone(conn));
    }
    let mut resp = state.respond(StatusCode::OK, EVENT_STREAM, body.guarded(guard));
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
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
