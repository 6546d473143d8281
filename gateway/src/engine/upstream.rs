//! One attempt against an HTTP provider: connect (plain HTTP/1.1 by the gateway itself, TLS and
//! HTTP/2 through Pingora), send, wait for the response header.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::server::Downstream;
use bytes::Bytes;
use datamind_llm::Adapter;
use datamind_llm::error_body::ErrorBody;
use datamind_llm::providers::UpstreamRequest;
use datamind_llm::providers::{AwsCredentials, Target};
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use tokio::io::AsyncWriteExt;

use super::answer::H1Answer;
use super::connection::{self, H1Conn};
use super::relay::{BodySource, Reply};
use super::timer::{until, within};
use super::{AttemptError, Job, UpstreamError, client_gone, parse_retry_after, retryable_status};
use crate::http1::decimal;
use crate::snapshot::Deployment;
use crate::state::Gateway;
use crate::telemetry::trace::Propagation;

/// Largest upstream error body kept for relaying.
const MAX_ERROR_BODY: usize = 1 << 20;
/// Request bodies up to this size leave in one write with the head (see
/// `Outgoing::h1_wire_parts`).
const INLINE_BODY_MAX: usize = 64 << 10;

/// Opens one attempt. `Ok` means the upstream answered with a status the client should see.
pub(super) async fn open<'d>(
    gw: &Gateway,
    d: &'d Deployment,
    adapter: &'static dyn Adapter,
    job: &Job<'_>,
    downstream: &mut Downstream<'_>,
    upstream_wait: &mut Duration,
    propagation: Option<&Propagation>,
) -> Result<Reply<'d>, AttemptError> {
    let p = &d.provider;
    let peer = p.peer.as_ref().ok_or_else(|| {
        AttemptError::Network(format!("host of provider `{}` did not resolve", p.name))
    })?;
    let base_path = p.base.as_ref().map_or("", |b| b.path.as_str());
    let vertex_token = match &p.vertex_token {
        // Boxed (here and on the other rare paths below): an inline HTTP client future would
        // make every request's future kilobytes larger, and futures are moved by copying.
        Some(v) => Some(Box::pin(v.token(gw)).await.map_err(|e| {
            AttemptError::Network(format!(
                "vertex access token for provider `{}`: {e}",
                p.name
            ))
        })?),
        None => None,
    };
    // SigV4 signs the time (Bedrock); nobody else needs a clock read here.
    let now_unix = p.aws.is_some().then(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_secs())
    });
    let target = Target {
        base_path,
        host: &p.host_header,
        model: &d.model,
        api_key: p.api_key.as_deref(),
        api_key_bearer: p.api_key_bearer.as_deref(),
        extra_headers: &p.headers,
        api_version: p.api_version.as_deref(),
        bearer_token: vertex_token.as_deref().or(p.bearer_token.as_deref()),
        aws: p.aws.as_ref().map(|(k, s, t)| AwsCredentials {
            access_key_id: k,
            secret_access_key: s,
            session_token: t.as_deref(),
        }),
        region: p.region.as_deref(),
        now_unix,
    };
    let upreq = match adapter.build_request(job.op, job.req, &target) {
        Ok(r) => r,
        Err(e) => {
            // The request cannot be expressed for this provider (e.g. text completion on a
            // chat-only API): a client error, not the deployment's failure.
            let body =
                ErrorBody::new("invalid_request_error", None, e.to_string()).with_param(e.param());
            return Err(AttemptError::Final(UpstreamError {
                status: 400,
                upstream_status: 400,
                body: Bytes::from(body.to_json()),
                retry_after: None,
                penalize: false,
            }));
        }
    };
    let request = Outgoing {
        upreq,
        request_id: job.request_id,
        propagation,
    };
    let first_byte = Duration::from_millis(p.timeouts.first_byte_ms);
    let waited = Instant::now();
    let attempt_deadline = job
        .deadline
        .min(waited + Duration::from_millis(p.timeouts.total_ms));

    // A pooled connection may have been closed by the upstream meanwhile: one quiet retry
    // on a fresh connection before this counts as the deployment's failure.
    let key = p.pool_key;
    let mut result = exchange(
        gw,
        peer,
        key,
        &request,
        (first_byte, waited, attempt_deadline),
        downstream,
    )
    .await;
    if let Err((AttemptError::Network(_), true)) = &result {
        let now = Instant::now();
        result = exchange(
            gw,
            peer,
            key,
            &request,
            (first_byte, now, attempt_deadline),
            downstream,
        )
        .await;
    }
    let answered = Instant::now();
    *upstream_wait += answered - waited;
    let mut up = result.map_err(|(e, _)| e)?;

    let (status, content_type, retry_after) = match &mut up {
        Answer::H1(a) => (
            a.status,
            a.content_type.take(),
            parse_retry_after(a.retry_after.as_deref()),
        ),
        Answer::Other(s) => match s.response_header() {
            Some(h) => (
                h.status.as_u16(),
                h.headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.to_owned().into()),
                parse_retry_after(h.headers.get("retry-after").map(|v| v.as_bytes())),
            ),
            None => return Err(AttemptError::Network("no response header".into())),
        },
    };
    if status >= 400 {
        let body = Box::pin(read_error_body(&mut up, attempt_deadline)).await;
        if up.is_done() {
            Box::pin(release(gw, up, peer, key, answered)).await;
        }
        let mapped = adapter.translate_error(status, &body);
        // OpenAI-compatible upstreams already speak the client's error shape: keep their
        // message, type and code — except credential errors, which are the gateway's
        // configuration problem and must not echo anything about the upstream key.
        let keep = d.provider.kind.speaks_openai()
            && !matches!(status, 401 | 403)
            && content_type.as_deref().is_some_and(|c| c.contains("json"))
            && body.starts_with(b"{\"error\"");
        let (client_status, client_body) = if keep {
            (status, body)
        } else {
            (mapped.status, Bytes::from(mapped.body.to_json()))
        };
        let e = UpstreamError {
            status: client_status,
            upstream_status: status,
            body: client_body,
            retry_after,
            penalize: !mapped.context_window_exceeded,
        };
        return Err(
            if retryable_status(status) || mapped.context_window_exceeded {
                AttemptError::Status(e)
            } else {
                AttemptError::Final(e)
            },
        );
    }
    Ok(Reply {
        status,
        content_type,
        body: BodySource::Http {
            up,
            peer,
            pool_key: key,
        },
        adapter: Some(adapter),
        usage: None,
        answered,
    })
}

/// Sends the request and waits for the response header, racing the client going away.
/// `timing` is (first-byte timeout, a clock reading just taken, the attempt's deadline).
/// On failure, also says whether the connection came from the pool.
async fn exchange(
    gw: &Gateway,
    peer: &HttpPeer,
    pool_key: u64,
    request: &Outgoing<'_>,
    (first_byte, now, deadline): (Duration, Instant, Instant),
    downstream: &mut Downstream<'_>,
) -> Result<Answer, (AttemptError, bool)> {
    let (up, reused) = match gw.h1_pool.take(pool_key, now) {
        Some(stream) => (Connection::H1(stream), true),
        None => {
            let connect_wait = deadline.saturating_duration_since(now);
            let plain = connection::plain_addr(peer);
            tokio::select! {
                r = connect(gw, peer, plain, connect_wait) => match r {
                    Ok(c) => c,
                    Err(e) => return Err((e, false)),
                },
                _ = client_gone(downstream) => return Err((AttemptError::ClientGone, false)),
            }
        }
    };
    // After a connect, the clock has moved on.
    let now = if reused { now } else { Instant::now() };
    let header_by = deadline.min(now + first_byte);
    let wait = header_by.saturating_duration_since(now);
    // Pinned where it is made: `until` and `select!` then move a pointer, not the future.
    let sent = std::pin::pin!(async move {
        match up {
            Connection::H1(mut stream) => {
                // Header and body leave in one write (Pingora's client would flush the
                // header on its own first): one segment and one wake-up of the upstream
                // instead of two.
                let (wire, body) = request.h1_wire_parts().map_err(|e| e.to_owned())?;
                stream
                    .write_all(&wire)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                if !body.is_empty() {
                    stream
                        .write_all(body)
                        .await
                        .map_err(|e| format!("write: {e}"))?;
                }
                stream.flush().await.map_err(|e| format!("write: {e}"))?;
                let answer = H1Answer::read(stream).await?;
                Ok(Answer::H1(Box::new(answer)))
            }
            Connection::Other(mut up) => {
                let (header, body) = request.pingora().map_err(|e| e.to_string())?;
                let r = async {
                    up.write_request_header(Box::new(header)).await?;
                    up.write_request_body(body, true).await?;
                    up.finish_request_body().await?;
                    up.read_response_header().await
                };
                r.await.map_err(|e| e.to_string())?;
                Ok(Answer::Other(up))
            }
        }
    });
    let r = tokio::select! {
        r = until(header_by, sent) => r,
        _ = client_gone(downstream) => return Err((AttemptError::ClientGone, false)),
    };
    match r {
        Ok(Ok(up)) => Ok(up),
        Ok(Err(e)) => Err((AttemptError::Network(e), reused)),
        Err(_) => Err((
            AttemptError::Timeout(format!("no response header within {} ms", wait.as_millis())),
            false,
        )),
    }
}

/// Opens a connection: plain HTTP/1.1 ourselves (`plain` is the address), anything else
/// (TLS, HTTP/2) through Pingora's connector. Also says whether it was reused.
async fn connect(
    gw: &Gateway,
    peer: &HttpPeer,
    plain: Option<SocketAddr>,
    wait: Duration,
) -> Result<(Connection, bool), AttemptError> {
    if let Some(addr) = plain {
        let conn = connection::connect(peer, addr, wait).await?;
        return Ok((Connection::H1(conn), false));
    }
    match within(wait, Box::pin(gw.connector.get_http_session(peer))).await {
        Ok(Ok((HttpSession::H1(h1), reused))) => {
            Ok((Connection::H1(H1Conn::Pingora(h1.into_inner())), reused))
        }
        Ok(Ok((session, reused))) => Ok((Connection::Other(Box::new(session)), reused)),
        Ok(Err(e)) => Err(AttemptError::Network(format!("connect: {e}"))),
        Err(_) => Err(AttemptError::Timeout("connect: request deadline".into())),
    }
}

/// A connection for one attempt: an HTTP/1.1 connection (ours to write on) or a Pingora
/// session (HTTP/2).
enum Connection {
    H1(H1Conn),
    Other(Box<HttpSession>),
}

/// An upstream's answer in progress: read by the gateway (HTTP/1.1) or by Pingora (HTTP/2).
pub(crate) enum Answer {
    H1(Box<H1Answer>),
    Other(Box<HttpSession>),
}

impl Answer {
    /// The next piece of the body; `None` at its end.
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Self::H1(a) => a.next().await,
            Self::Other(s) => s.read_response_body().await.map_err(|e| e.to_string()),
        }
    }

    /// Whether the whole body was read.
    pub(super) fn is_done(&mut self) -> bool {
        match self {
            Self::H1(a) => a.is_done(),
            Self::Other(s) => s.response_done(),
        }
    }
}

/// Returns a finished exchange's connection for reuse: HTTP/1.1 connections to our idle
/// pool (see `pool.rs`), other sessions to Pingora's. `now` is a recent clock reading.
pub(super) async fn release(
    gw: &Gateway,
    up: Answer,
    peer: &HttpPeer,
    pool_key: u64,
    now: Instant,
) {
    match up {
        Answer::H1(a) => {
            if let Some(stream) = a.into_reusable() {
                gw.h1_pool.put(pool_key, stream, now);
            }
        }
        Answer::Other(s) => {
            Box::pin(
                gw.connector
                    .release_http_session(*s, peer, Some(IDLE_TIMEOUT)),
            )
            .await
        }
    }
}

/// How long an idle upstream connection is kept.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

async fn read_error_body(up: &mut Answer, deadline: Instant) -> Bytes {
    let mut buf = Vec::new();
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs(5));
    let _ = within(wait, async {
        while let Ok(Some(chunk)) = up.next().await {
            if buf.len() + chunk.len() > MAX_ERROR_BODY {
                break;
            }
            buf.extend_from_slice(&chunk);
        }
    })
    .await;
    Bytes::from(buf)
}

/// One attempt's request, ready to be put on the wire once the connection's protocol is known.
struct Outgoing<'a> {
    upreq: UpstreamRequest<'a>,
    request_id: &'a str,
    /// W3C trace context for the upstream, when the request is traced.
    propagation: Option<&'a Propagation>,
}

impl Outgoing<'_> {
    /// The whole HTTP/1.1 request (head and body) as one buffer. Header names and values are
    /// checked so nothing from the config or a model name can split the request.
    #[cfg(test)]
    fn h1_wire(&self) -> Result<Vec<u8>, &'static str> {
        let (mut w, rest) = self.h1_wire_parts()?;
        w.extend_from_slice(rest);
        Ok(w)
    }

    /// The request's bytes as (head, body that follows it): a body up to
    /// [`INLINE_BODY_MAX`] is copied behind the head (one write, one segment); a larger one
    /// is written from where it lies rather than copied (a 1 MiB prompt: a memcpy of it
    /// cost more than the second write).
    fn h1_wire_parts(&self) -> Result<(Vec<u8>, &[u8]), &'static str> {
        let u = &self.upreq;
        let [prefix, rest] = u.path.pieces();
        if !valid_target(&[prefix, rest]) {
            return Err("request path contains a forbidden character");
        }
        let head: usize = u.all_headers().map(|(k, v)| k.len() + v.len() + 4).sum();
        let trace = self.propagation.map_or(0, |p| {
            70 + p.tracestate.as_ref().map_or(0, |t| t.len() + 14)
        });
        let inline = u.body.len() <= INLINE_BODY_MAX;
        let mut w = Vec::with_capacity(
            u.path.len()
                + head
                + self.request_id.len()
                + 64
                + trace
                + if inline { u.body.len() } else { 0 },
        );
        w.extend_from_slice(u.method.as_bytes());
        w.push(b' ');
        w.extend_from_slice(prefix.as_bytes());
        w.extend_from_slice(rest.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\n");
        for (k, v) in u.all_headers() {
            if !valid_name(k.as_bytes()) || !valid_value(v.as_bytes()) {
                return Err("invalid upstream request header");
            }
            push_header(&mut w, k.as_bytes(), v.as_bytes());
        }
        w.extend_from_slice(b"content-length: ");
        decimal::push(&mut w, u.body.len() as u64);
        w.extend_from_slice(b"\r\n");
        if valid_value(self.request_id.as_bytes()) {
            push_header(&mut w, b"x-request-id", self.request_id.as_bytes());
        }
        if let Some(p) = self.propagation {
            // Written straight from the trace: no header strings to build.
            push_header(&mut w, b"traceparent", p.traceparent.as_bytes());
            if let Some(ts) = p
                .tracestate
                .as_deref()
                .filter(|t| valid_value(t.as_bytes()))
            {
                push_header(&mut w, b"tracestate", ts.as_bytes());
            }
        }
        w.extend_from_slice(b"\r\n");
        if !inline {
            return Ok((w, &u.body));
        }
        w.extend_from_slice(&u.body);
        Ok((w, &[]))
    }

    /// The request as Pingora's header and body (HTTP/2).
    fn pingora(&self) -> pingora_error::Result<(RequestHeader, Bytes)> {
        let u = &self.upreq;
        let path = u.path.to_string();
        let mut header =
            RequestHeader::build_no_case(u.method, path.as_bytes(), Some(u.header_count() + 2))?;
        for (k, v) in u.all_headers() {
            header.insert_header(k.to_owned(), v.to_owned())?;
        }
        header.insert_header("content-length", u.body.len().to_string())?;
        if valid_value(self.request_id.as_bytes()) {
            header.insert_header("x-request-id", self.request_id.to_owned())?;
        }
        if let Some(p) = self.propagation {
            header.insert_header("traceparent", p.traceparent.as_str())?;
            if let Some(ts) = p
                .tracestate
                .as_deref()
                .filter(|t| valid_value(t.as_bytes()))
            {
                header.insert_header("tracestate", ts)?;
            }
        }
        Ok((header, Bytes::copy_from_slice(&u.body)))
    }
}

fn push_header(w: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    w.extend_from_slice(k);
    w.extend_from_slice(b": ");
    w.extend_from_slice(v);
    w.extend_from_slice(b"\r\n");
}

/// RFC 9110 token characters, one entry per byte value: a name is checked with one table
/// lookup per byte (it runs for every header of every upstream request).
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// A header name: RFC 9110 token characters only.
fn valid_name(k: &[u8]) -> bool {
    !k.is_empty() && k.iter().all(|&b| TOKEN[usize::from(b)])
}

/// Visible ASCII, spaces, tabs and obs-text; never CR, LF or NUL.
fn valid_value(v: &[u8]) -> bool {
    crate::server::response_head::valid_value(v)
}

/// The request target, given in pieces: not empty, no spaces or control characters.
fn valid_target(pieces: &[&str]) -> bool {
    pieces.iter().any(|p| !p.is_empty())
        && pieces
            .iter()
            .all(|p| p.bytes().all(|b| b > 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        for name in [
            "content-type",
            "x-api-key",
            "X_Custom.1",
            "a!#$%&'*+-.^_`|~z",
        ] {
            assert!(valid_name(name.as_bytes()), "{name}");
        }
        for name in [
            "",
            "bad name",
            "a:b",
            "a\r\nb",
            "caf\u{e9}",
            "a(b)",
            "a\"b",
            "a/b",
        ] {
            assert!(!valid_name(name.as_bytes()), "{name:?}");
        }
        // The table agrees with the definition for every byte.
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(valid_name(&[b]), want, "{b}");
        }
    }
    use datamind_llm::providers::RequestPath;

    fn outgoing<'a>(path: &str, headers: &[(&'static str, &'static str)]) -> Outgoing<'a> {
        Outgoing {
            upreq: UpstreamRequest {
                method: "POST",
                path: RequestPath::whole(path.to_owned()),
                headers: headers.iter().map(|(k, v)| (*k, (*v).into())).collect(),
                extra_headers: &[],
                body: b"{\"a\":1}".to_vec(),
            },
            request_id: "req-1",
            propagation: None,
        }
    }

    #[test]
    fn a_large_body_follows_the_head_uncopied() {
        let mut o = outgoing("/v1/chat/completions", &[("host", "up:8000")]);
        o.upreq.body = vec![b'x'; INLINE_BODY_MAX + 1];
        let (head, body) = o.h1_wire_parts().unwrap();
        let head = String::from_utf8(head).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}\r\n", INLINE_BODY_MAX + 1)));
        assert_eq!(body.len(), INLINE_BODY_MAX + 1);
        assert!(std::ptr::eq(body, &o.upreq.body[..]));
        let mut small = outgoing("/v1/chat/completions", &[("host", "up:8000")]);
        small.upreq.body = vec![b'y'; INLINE_BODY_MAX];
        let (whole, rest) = small.h1_wire_parts().unwrap();
        assert!(rest.is_empty() && whole.ends_with(&[b'y'; 16]));
    }

    #[test]
    fn h1_wire_is_one_request() {
        let o = outgoing(
            "/v1/chat/completions",
            &[("host", "up:8000"), ("authorization", "Bearer k")],
        );
        let wire = o.h1_wire().unwrap();
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "POST /v1/chat/completions HTTP/1.1\r\nhost: up:8000\r\nauthorization: Bearer k\r\n\
             content-length: 7\r\nx-request-id: req-1\r\n\r\n{\"a\":1}"
        );
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(&o.h1_wire().unwrap()).unwrap().is_complete());
    }

    #[test]
    fn h1_wire_carries_the_trace_context_and_drops_a_bad_tracestate() {
        let good = Propagation {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            tracestate: Some("vendor=1".into()),
        };
        let bad = Propagation {
            traceparent: good.traceparent,
            tracestate: Some("a=1\r\nevil: 2".into()),
        };
        let mut o = outgoing("/v1/x", &[]);
        o.propagation = Some(&good);
        let wire = String::from_utf8(o.h1_wire().unwrap()).unwrap();
        assert!(wire.contains(
            "\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
        ));
        assert!(wire.contains("\r\ntracestate: vendor=1\r\n"));
        o.propagation = Some(&bad);
        let wire = String::from_utf8(o.h1_wire().unwrap()).unwrap();
        assert!(!wire.contains("tracestate") && !wire.contains("evil"));
    }

    #[test]
    fn h1_wire_joins_a_path_in_pieces_and_checks_each() {
        let mut o = outgoing("", &[]);
        o.upreq.path = RequestPath {
            prefix: "/base",
            rest: "/v1/chat/completions".into(),
        };
        let wire = String::from_utf8(o.h1_wire().unwrap()).unwrap();
        assert!(wire.starts_with("POST /base/v1/chat/completions HTTP/1.1\r\n"));
        o.upreq.path.prefix = "/a b";
        assert!(o.h1_wire().is_err());
        o.upreq.path = RequestPath::default();
        assert!(o.h1_wire().is_err(), "an empty target");
    }

    #[test]
    fn h1_wire_sends_extra_headers_after_the_adapters() {
        let extra = [("x-team".to_owned(), "a".to_owned())];
        let mut o = outgoing("/v1/x", &[("host", "up")]);
        o.upreq.extra_headers = &extra;
        let wire = String::from_utf8(o.h1_wire().unwrap()).unwrap();
        assert!(wire.contains("\r\nhost: up\r\nx-team: a\r\ncontent-length: 7\r\n"));
    }

    #[test]
    fn h1_wire_refuses_request_splitting() {
        assert!(outgoing("/v1/a b", &[]).h1_wire().is_err());
        assert!(
            outgoing("/v1/x", &[("x-a", "1\r\nevil: 2")])
                .h1_wire()
                .is_err()
        );
        assert!(outgoing("/v1/x", &[("bad name", "1")]).h1_wire().is_err());
        assert!(
            outgoing("/v1/x", &[("x-a", "caf\u{e9} \t ok")])
                .h1_wire()
                .is_ok()
        );
    }
}
