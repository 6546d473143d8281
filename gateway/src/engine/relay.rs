//! Writing the answer to the client: whole bodies, SSE streams, and upstream errors.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use datamind_llm::Adapter;
use datamind_llm::Usage;
use datamind_llm::client::anthropic::{self, MessagesStream};
use datamind_llm::error_body::ErrorBody;
use datamind_llm::providers::ResponseMeta;
use datamind_llm::stream::StreamTranslator;
use datamind_llm::stream::chain::Chain;
use datamind_llm::stream::openai::OpenAiPassthrough;
use pingora_core::upstreams::peer::HttpPeer;

use super::timer::until;
use super::{AttemptError, ClientFormat, Job, Outcome, UpstreamError};
use crate::GatewayError;
use crate::cache::capture::Capture;
use crate::http1::decimal;
use crate::server::{Downstream, ResponseHead};
use crate::snapshot::Deployment;
use crate::state::Gateway;

/// Largest non-streamed upstream body accepted.
const MAX_RESPONSE_BODY: usize = 64 << 20;

/// An upstream's answer, before any byte went to the client.
pub(crate) struct Reply<'a> {
    pub status: u16,
    pub content_type: Option<Cow<'static, str>>,
    pub body: BodySource<'a>,
    /// Translates the provider format; `None` when the body is already client-format.
    pub adapter: Option<&'static dyn Adapter>,
    /// Usage known up front (the in-process mock).
    pub usage: Option<Usage>,
    /// When the answer's header was in: the end of the upstream wait so far, and the start
    /// of the wait for its body.
    pub answered: Instant,
}

/// Where the answer's bytes come from.
pub(crate) enum BodySource<'a> {
    /// A provider connection.
    Http {
        up: super::upstream::Answer,
        /// Borrowed from the deployment's provider (no shared reference count touched).
        peer: &'a HttpPeer,
        pool_key: u64,
    },
    /// The in-process mock: ready chunks, with a pause before each after the first.
    Mock {
        chunks: VecDeque<Vec<u8>>,
        gap: Duration,
        first: bool,
    },
}

impl BodySource<'_> {
    /// The next piece of body; `None` at the end.
    async fn next(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Self::Http { up, .. } => up.next().await,
            Self::Mock { chunks, gap, first } => {
                if chunks.is_empty() {
                    return Ok(None);
                }
                if !*first && !gap.is_zero() {
                    tokio::time::sleep(*gap).await;
                }
                *first = false;
                Ok(chunks.pop_front().map(Bytes::from))
            }
        }
    }

    /// Returns a finished connection to the pool (`now`: a recent clock reading).
    async fn release(self, gw: &Gateway, now: Instant) {
        if let Self::Http {
            mut up,
            peer,
            pool_key,
        } = self
            && up.is_done()
        {
            super::upstream::release(gw, up, peer, pool_key, now).await;
        }
    }
}

/// Resolves when the client has gone away (connection closed or h2 stream reset).
/// Only call once the request body has been read.
pub(crate) async fn client_gone(session: &mut Downstream<'_>) {
    session.gone().await;
}

/// How a relay ended.
pub(crate) enum Relayed {
    /// The answer reached the client whole (or the client left; not the upstream's fault).
    Complete,
    /// Bytes went to the client, then the upstream broke; the client got an SSE error event.
    Broken,
}

/// Why a relay stopped before committing anything to the client.
pub(crate) enum RelayError {
    /// Nothing was sent yet: the next candidate may try.
    Retry(AttemptError),
    /// Give up with this error.
    Fatal(GatewayError),
}

impl From<GatewayError> for RelayError {
    fn from(e: GatewayError) -> Self {
        Self::Fatal(e)
    }
}

/// Relays an answer: streamed when the upstream streams, else as one body. Nothing is
/// written to the client until the first byte of the answer is in hand, so an upstream
/// that fails before that can still be replaced by the next candidate.
pub(super) async fn relay(
    gw: &Gateway,
    session: &mut Downstream<'_>,
    job: &Job<'_>,
    d: &Deployment,
    reply: Reply<'_>,
    first_byte_deadline: Instant,
    out: &mut Outcome<'_>,
) -> Result<Relayed, RelayError> {
    let ct = reply.content_type.as_deref().unwrap_or("");
    let streaming = match reply.adapter {
        Some(a) => a.is_stream(ct),
        None => ct.starts_with("text/event-stream"),
    };
    if streaming && job.op.can_stream() {
        relay_stream(gw, session, job, d, reply, first_byte_deadline, out).await
    } else {
        relay_whole(gw, session, job, d, reply, out).await
    }
}

async fn relay_whole(
    gw: &Gateway,
    session: &mut Downstream<'_>,
    job: &Job<'_>,
    d: &Deployment,
    mut reply: Reply<'_>,
    out: &mut Outcome<'_>,
) -> Result<Relayed, RelayError> {
    let mut body = Vec::new();
    let waited = reply.answered;
    // One deadline over the whole body (not one timer per chunk).
    let read = async {
        while let Some(chunk) = reply.body.next().await.map_err(|e| {
            RelayError::Retry(AttemptError::Network(format!("reading upstream body: {e}")))
        })? {
            if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Err(RelayError::Retry(AttemptError::Network(
                    "upstream response too large".into(),
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    let read = tokio::select! {
        r = until(job.deadline, read) => r,
        _ = client_gone(session) => {
            out.client_gone = true;
            out.status = 499;
            return Ok(Relayed::Complete);
        }
    };
    match read {
        Ok(r) => r?,
        Err(_) => {
            return Err(RelayError::Retry(AttemptError::Timeout(
                "request deadline passed while reading the answer".into(),
            )));
        }
    }
    let read_at = Instant::now();
    out.upstream_wait += read_at - waited;
    let (body, usage) = match reply.adapter {
        Some(a) => a.translate_response_with(job.op, body, &meta(job, &d.model)),
        None => (body, reply.usage),
    };
    out.usage = usage.unwrap_or_default();
    // Usage is known: settle limits and spend before the client sees the end.
    crate::limits::gate::finish(gw, out);
    let body = Bytes::from(body);
    // Traced: the answer's (OpenAI format) id, model and finish reasons, for the span.
    if let Some(t) = out.trace.as_mut().filter(|t| t.is_recording()) {
        t.keep_answer(&body);
    }
    let body = match job.client {
        ClientFormat::Anthropic if reply.status < 300 => {
            anthropic::from_openai_response(&body, &job.req.model).map_or(body, Bytes::from)
        }
        _ => body,
    };
    // Response cache: only a whole 200 within the entry limit is kept.
    let mut capture = job
        .capture_limit
        .filter(|max| reply.status == 200 && body.len() <= *max)
        .map(Capture::new);
    if let Some(c) = capture.as_mut() {
        c.push(&body);
    }
    out.status = reply.status;
    // The answer was whole at `read_at`; what follows (translation, the head) takes µs.
    out.ttfb = Some(read_at - job.started);
    let len = decimal::Decimal::new(body.len() as u64);
    let mut h = response_header(reply.status, job, d, out);
    h.at = Some(read_at);
    if let Some(ct) = &reply.content_type {
        h.insert("content-type", ct.as_ref());
    }
    h.insert("content-length", len.as_str());
    let written = match session.write_head(&h).await {
        Ok(()) => session.write_body(body, true).await,
        Err(e) => Err(e),
    };
    if written.is_err() {
        out.client_gone = true;
    } else if let Some(c) = capture {
        let ct = reply.content_type.as_deref().unwrap_or("application/json");
        out.captured = c.finish(false, ct, out.usage, &d.id);
    }
    reply.body.release(gw, read_at).await;
    Ok(Relayed::Complete)
}

async fn relay_stream(
    gw: &Gateway,
    session: &mut Downstream<'_>,
    job: &Job<'_>,
    d: &Deployment,
    mut reply: Reply<'_>,
    first_byte_deadline: Instant,
    out: &mut Outcome<'_>,
) -> Result<Relayed, RelayError> {
    let mut translator: Box<dyn StreamTranslator> = match reply.adapter {
        Some(a) => a.stream_translator_with(job.op, job.req, &meta(job, &d.model)),
        None => Box::new(OpenAiPassthrough::new(false)),
    };
    if job.client == ClientFormat::Anthropic {
        let to_client = MessagesStream::new(&job.req.model, job.estimated_input_tokens);
        translator = Box::new(Chain::new(translator, Box::new(to_client)));
    }
    // The head is written with the first bytes of the answer.
    let mut h = Some(());
    let mut buf = Vec::with_capacity(4096);
    let mut failure: Option<AttemptError> = None;
    // Response cache: a copy of what the client is sent, kept only if the stream completes.
    let mut capture = job
        .capture_limit
        .filter(|_| reply.status == 200)
        .map(Capture::new);
    loop {
        // Until the first byte is committed, the first-byte timeout still applies.
        let by = if h.is_some() {
            first_byte_deadline.min(job.deadline)
        } else {
            job.deadline
        };
        let waited = Instant::now();
        let next = tokio::select! {
            r = until(by, reply.body.next()) => r,
            _ = client_gone(session) => {
                out.client_gone = true;
                break;
            }
        };
        out.upstream_wait += waited.elapsed();
        let chunk = match next {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => {
                translator.finish(&mut buf);
                if !translator.summary().done && !translator.summary().error {
                    failure = Some(AttemptError::Network(
                        "upstream stream ended before its final event".into(),
                    ));
                }
                break;
            }
            Ok(Err(e)) => {
                failure = Some(AttemptError::Network(format!("upstream stream broke: {e}")));
                break;
            }
            Err(_) if h.is_some() => {
                failure = Some(AttemptError::Timeout(
                    "no stream data within the first-byte timeout".into(),
                ));
                break;
            }
            Err(_) => {
                failure = Some(AttemptError::Timeout(
                    "request deadline passed while streaming".into(),
                ));
                break;
            }
        };
        if let Err(e) = translator.feed(&chunk, &mut buf) {
            failure = Some(AttemptError::Network(format!(
                "invalid upstream stream: {e}"
            )));
            break;
        }
        if !buf.is_empty() {
            if h.take().is_some() {
                out.status = reply.status;
                let now = Instant::now();
                out.ttfb = Some(now - job.started);
                let mut header = stream_head(reply.status, job, d, out, session.is_http2());
                header.at = Some(now);
                if session.write_head(&header).await.is_err() {
                    out.client_gone = true;
                    break;
                }
            }
            if let Some(c) = capture.as_mut() {
                c.push(&buf);
            }
            if session.write_body_vec(&mut buf).await.is_err() {
                out.client_gone = true;
                break;
            }
        }
    }
    out.usage = translator
        .summary()
        .usage
        .or(reply.usage)
        .unwrap_or_default();
    if h.is_none()
        && let Some(t) = out.trace.as_mut()
    {
        // The answer reached the client (at least in part): its id, model and finish
        // reasons are the span's.
        t.note_stream(translator.as_ref());
    }
    if out.client_gone {
        out.status = 499;
        return Ok(Relayed::Complete);
    }
    if h.is_some()
        && let Some(f) = failure.take()
    {
        // Nothing reached the client: another candidate can still answer.
        return Err(RelayError::Retry(f));
    }
    // Usage is known: settle limits and spend before the client sees the end.
    crate::limits::gate::finish(gw, out);
    if h.take().is_some() {
        // A clean but empty stream: still a complete answer.
        out.status = reply.status;
        let now = Instant::now();
        out.ttfb = Some(now - job.started);
        let mut header = stream_head(reply.status, job, d, out, session.is_http2());
        header.at = Some(now);
        if session.write_head(&header).await.is_err() {
            out.client_gone = true;
            return Ok(Relayed::Complete);
        }
    }
    let relayed = match &failure {
        Some(f) => {
            let reason = super::describe(f);
            let err = ErrorBody::new("server_error", Some("upstream_error"), reason.clone());
            let ev = match job.client {
                ClientFormat::OpenAi => err.to_sse_event(),
                ClientFormat::Anthropic => {
                    let mut ev = b"event: error\ndata: ".to_vec();
                    ev.extend_from_slice(&anthropic::error_to_anthropic(502, &err.to_json()));
                    ev.extend_from_slice(b"\n\n");
                    ev
                }
            };
            buf.extend_from_slice(&ev);
            out.error = Some(reason);
            Relayed::Broken
        }
        None => Relayed::Complete,
    };
    let summary = translator.summary();
    let whole = failure.is_none() && summary.done && !summary.error;
    if let Some(c) = capture.as_mut() {
        c.push(&buf);
    }
    let written = session.write_body(Bytes::from(buf), true).await;
    if whole
        && written.is_ok()
        && let Some(c) = capture
    {
        out.captured = c.finish(true, "text/event-stream", out.usage, &d.id);
    }
    if failure.is_none() {
        reply.body.release(gw, Instant::now()).await;
    }
    Ok(relayed)
}

/// Relays an upstream error answer (already in the OpenAI error shape).
pub(super) async fn upstream_error(
    session: &mut Downstream<'_>,
    job: &Job<'_>,
    e: UpstreamError,
    out: &mut Outcome<'_>,
) -> Result<(), GatewayError> {
    let body = match job.client {
        ClientFormat::OpenAi => e.body,
        ClientFormat::Anthropic => Bytes::from(anthropic::error_to_anthropic(e.status, &e.body)),
    };
    out.status = e.status;
    out.ttfb = Some(job.started.elapsed());
    let mut h = ResponseHead::new(e.status);
    h.insert("x-request-id", job.request_id);
    for (k, v) in &out.headers {
        h.insert(k, v.as_str());
    }
    h.insert(
        "x-datamind-attempts",
        decimal::small(u64::from(out.attempts)),
    );
    h.insert(crate::conductor::ROUTE_HEADER, format!("rule={}", job.rule));
    h.insert("content-type", "application/json");
    h.insert("content-length", body.len().to_string());
    if let Some(ra) = e.retry_after {
        h.insert("retry-after", ra.as_secs().max(1).to_string());
    }
    if session.write_head(&h).await.is_ok() {
        let _ = session.write_body(body, true).await;
    }
    Ok(())
}

/// What translated answers say about themselves when the provider does not.
fn meta<'a>(job: &'a Job<'_>, model: &'a str) -> ResponseMeta<'a> {
    ResponseMeta {
        // The second the request started (from the monotonic reading it holds: no clock read).
        created: crate::clock::unix_secs_at(job.started),
        id: job.response_id,
        model,
    }
}

fn response_header<'a>(
    status: u16,
    job: &'a Job<'_>,
    d: &'a Deployment,
    out: &'a Outcome<'a>,
) -> ResponseHead<'a> {
    let mut h = ResponseHead::new(status);
    for (k, v) in &out.headers {
        h.insert(k, v.as_str());
    }
    if job.overhead_header {
        // Time in the gateway so far: everything but waiting on upstreams.
        let ms = job
            .started
            .elapsed()
            .saturating_sub(out.upstream_wait)
            .as_secs_f64()
            * 1000.0;
        h.insert("x-datamind-overhead-ms", format!("{ms:.3}"));
    }
    h.insert("x-request-id", job.request_id);
    h.insert("x-datamind-deployment", &*d.id);
    h.insert(
        "x-datamind-attempts",
        decimal::small(u64::from(out.attempts)),
    );
    let route = if job.rule == datamind_llm::policy::DEFAULT_RULE {
        Cow::Borrowed(&*d.default_route)
    } else {
        Cow::Owned(crate::conductor::route_header_value(job.rule, &d.id))
    };
    h.insert(crate::conductor::ROUTE_HEADER, route);
    h
}

/// The head of a streamed answer.
fn stream_head<'a>(
    status: u16,
    job: &'a Job<'_>,
    d: &'a Deployment,
    out: &'a Outcome<'a>,
    http2: bool,
) -> ResponseHead<'a> {
    let mut h = response_header(status, job, d, out);
    h.insert("content-type", "text/event-stream");
    h.insert("cache-control", "no-cache");
    if !http2 {
        h.insert("transfer-encoding", "chunked");
    }
    h
}
