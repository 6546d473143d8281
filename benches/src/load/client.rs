//! One client connection and one request/response exchange, timed. Uses hyper's connection
//! handshakes directly (no pool, no reqwest) so the generator itself stays cheap.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::options::Plan;
use super::recorder::{ErrorKind, Sample};

/// A ready-to-use connection to the target.
#[derive(Debug)]
pub enum Connection {
    /// HTTP/1.1 keep-alive: one request at a time.
    H1(http1::SendRequest<Full<Bytes>>),
    /// HTTP/2 prior knowledge: shared by several workers.
    H2(http2::SendRequest<Full<Bytes>>),
}

// === impl Connection ===

impl Connection {
    /// Connects (TCP_NODELAY) and performs the HTTP handshake.
    pub async fn open(plan: &Plan) -> Result<Self, ErrorKind> {
        let stream = TcpStream::connect(plan.addr)
            .await
            .map_err(|_| ErrorKind::Connect)?;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        if plan.h2 {
            let (send, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(16 << 20)
                .handshake(io)
                .await
                .map_err(|_| ErrorKind::Connect)?;
            tokio::spawn(conn);
            Ok(Self::H2(send))
        } else {
            let (send, conn) = http1::handshake(io).await.map_err(|_| ErrorKind::Connect)?;
            tokio::spawn(conn);
            Ok(Self::H1(send))
        }
    }

    /// Another handle on the same connection (HTTP/2 only: HTTP/1.1 carries one request at a
    /// time, so its workers never share).
    pub fn share(&self) -> Option<Self> {
        match self {
            Self::H1(_) => None,
            Self::H2(s) => Some(Self::H2(s.clone())),
        }
    }

    /// Whether the connection can no longer carry requests.
    pub fn is_closed(&self) -> bool {
        match self {
            Self::H1(s) => s.is_closed(),
            Self::H2(s) => s.is_closed(),
        }
    }

    /// Sends one request and reads the whole response, filling `sample` with timings measured
    /// from `origin`. Returns the response body size. A non-2xx status is an error, reported
    /// after its body was read so the connection stays usable.
    pub async fn exchange(
        &mut self,
        plan: &Plan,
        origin: Instant,
        sample: &mut Sample,
    ) -> Result<u64, ErrorKind> {
        match tokio::time::timeout(plan.timeout, self.exchange_inner(plan, origin, sample)).await {
            Ok(result) => result,
            Err(_) => Err(ErrorKind::Timeout),
        }
    }

    async fn exchange_inner(
        &mut self,
        plan: &Plan,
        origin: Instant,
        sample: &mut Sample,
    ) -> Result<u64, ErrorKind> {
        let mut req = Request::new(Full::new(plan.body.clone()));
        *req.method_mut() = plan.method.clone();
        *req.headers_mut() = plan.headers.clone();
        let resp = match self {
            Self::H1(send) => {
                *req.uri_mut() = plan.path.clone();
                send.ready().await.map_err(|e| classify(&e))?;
                send.send_request(req).await
            }
            Self::H2(send) => {
                *req.uri_mut() = plan.uri.clone();
                send.ready().await.map_err(|e| classify(&e))?;
                send.send_request(req).await
            }
        }
        .map_err(|e| classify(&e))?;

        let status = resp.status();
        let sse = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        let mut last: Option<Instant> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            bytes += data.len() as u64;
            if sse {
                let now = Instant::now();
                match last {
                    None => sample.first_chunk = Some(now - origin),
                    Some(prev) => sample.gaps.push(now - prev),
                }
                last = Some(now);
            }
        }
        sample.latency = origin.elapsed();
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(ErrorKind::Status(status.as_u16()))
        }
    }
}

/// Maps a hyper error to the kind reported.
fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_parse() || e.is_user() {
        ErrorKind::Other
    } else {
        // Closed, canceled, incomplete message, I/O errors and h2 resets: the peer broke off.
        ErrorKind::Reset
    }
}

/// Sleeps a little after a failed connect so a dead target does not spin the generator.
pub const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
