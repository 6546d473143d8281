//! One client connection speaking HTTP/1.x: reads request heads and bodies from a buffer
//! it owns, writes each response head together with the first body bytes (one segment for a
//! whole answer), and says whether the connection can carry another request.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::head::{self, Framing, Head, HeadError, MAX_HEAD, Semantics};
use super::write::{self, BodyMode};
use crate::engine::timer::within;
use crate::http1::chunked::{Decoder, Step};
use crate::http1::transport::Transport;
use crate::server::response_head::ResponseHead;

/// Longest wait for the next request on an idle connection.
const IDLE: Duration = Duration::from_secs(60);
/// Longest wait for more of a request once it started, and for one write to drain.
const IO_WAIT: Duration = Duration::from_secs(60);
/// Body pieces up to this size are copied behind the head or chunk framing, so they leave
/// in one write; larger ones are written on their own.
const COPY_MAX: usize = 16 << 10;
/// How long, and how many bytes, a closing connection keeps reading what the client sends.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX: usize = 64 << 20;
/// Most unread request body an early answer drains to keep the connection.
const DRAIN_MAX: u64 = 256 << 10;
/// Initial read buffer.
const READ_CHUNK: usize = 8 << 10;

/// Where reading the request body stands.
#[derive(Debug)]
enum BodyLeft {
    Length(u64),
    Chunked(Decoder),
    Done,
}

/// Why a response could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteFailed;

/// An HTTP/1.x client connection between requests or inside one.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Transport,
    /// Bytes read but not consumed: the rest of a body, or pipelined requests.
    buf: BytesMut,
    /// The current request's head bytes, which `head` indexes.
    bytes: Vec<u8>,
    head: Head,
    sem: Semantics,
    body: BodyLeft,
    /// The client closed its side (or the socket failed).
    eof: bool,
    /// The connection may carry another request after this one.
    keepalive: bool,
    continue_sent: bool,
    /// Response bytes not yet written (a head waiting for its first body bytes).
    wbuf: Vec<u8>,
    /// The response's framing, once its head is written.
    mode: Option<BodyMode>,
    response_done: bool,
}

impl Conn {
    /// A connection that has not read anything yet.
    pub fn new(stream: Transport) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            bytes: Vec::with_capacity(1024),
            head: Head::default(),
            sem: Semantics {
                framing: Framing::Length(0),
                keepalive: false,
                expect_continue: false,
            },
            body: BodyLeft::Done,
            eof: false,
            keepalive: false,
            continue_sent: false,
            wbuf: Vec::with_capacity(1024),
            mode: None,
            response_done: false,
        }
    }

    /// Reads the next request head. `Ok(false)`: the client closed or stayed idle too long.
    pub async fn next_request(&mut self) -> Result<bool, HeadError> {
        self.mode = None;
        self.response_done = false;
        self.continue_sent = false;
        self.wbuf.clear();
        loop {
            if !self.buf.is_empty() {
                match head::parse(&self.buf, &mut self.head)? {
                    Some(n) => {
                        self.bytes.clear();
                        self.bytes.extend_from_slice(&self.buf[..n]);
                        let _ = self.buf.split_to(n);
                        break;
                    }
                    None if self.buf.len() > MAX_HEAD => {
                        return Err(HeadError {
                            status: 431,
                            message: "request header fields too large",
                        });
                    }
                    None => {}
                }
            }
            let wait = if self.buf.is_empty() { IDLE } else { IO_WAIT };
            if self.eof || !matches!(self.fill(wait).await, Ok(n) if n > 0) {
                return Ok(false);
            }
        }
        self.sem = self.head.semantics(&self.bytes)?;
        self.keepalive = self.sem.keepalive;
        self.body = match self.sem.framing {
            Framing::Length(0) => BodyLeft::Done,
            Framing::Length(n) => BodyLeft::Length(n),
            Framing::Chunked => BodyLeft::Chunked(Decoder::default()),
        };
        Ok(true)
    }

    /// Reads more bytes into the buffer, waiting at most `wait`. `Ok(0)` is end of stream.
    async fn fill(&mut self, wait: Duration) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        // `within` arms its timer only when the read does not find data at once.
        let r = match within(wait, self.stream.read_buf(&mut self.buf)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        };
        match r {
            Ok(0) | Err(_) => self.eof = true,
            Ok(_) => {}
        }
        r
    }

    /// Reads until the first bytes show whether the connection starts with `prefix`.
    /// `None`: the client closed or stayed silent first.
    pub async fn sniff(&mut self, prefix: &[u8]) -> Option<bool> {
        loop {
            let n = self.buf.len().min(prefix.len());
            if self.buf[..n] != prefix[..n] {
                return Some(false);
            }
            if n == prefix.len() {
                return Some(true);
            }
            let wait = if self.buf.is_empty() { IDLE } else { IO_WAIT };
            if self.eof || !matches!(self.fill(wait).await, Ok(n) if n > 0) {
                return None;
            }
        }
    }

    /// The transport and the bytes read from it so far.
    pub fn into_parts(self) -> (Transport, BytesMut) {
        (self.stream, self.buf)
    }

    /// The request method.
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.head.method.clone()]).unwrap_or("")
    }

    /// The request path, without the query.
    pub fn path(&self) -> &str {
        self.head.path(&self.bytes)
    }

    /// The first value of request field `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.head.field(&self.bytes, name)
    }

    /// Every request field (name as sent, value), in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.head
            .fields
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }

    /// The body's length, as the head's framing says (`None`: chunked).
    pub fn body_length(&self) -> Option<u64> {
        match self.sem.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        }
    }

    /// Whether the whole request body was read.
    pub fn is_body_done(&self) -> bool {
        matches!(self.body, BodyLeft::Done)
    }

    /// The next piece of the request body; `None` at its end.
    pub async fn read_body(&mut self) -> Result<Option<Bytes>, &'static str> {
        loop {
            match &mut self.body {
                BodyLeft::Done => return Ok(None),
                BodyLeft::Length(left) => {
                    if !self.buf.is_empty() {
                        let n = usize::try_from(*left)
                            .map_or(self.buf.len(), |l| l.min(self.buf.len()));
                        *left -= n as u64;
                        if *left == 0 {
                            self.body = BodyLeft::Done;
                        }
                        return Ok(Some(self.buf.split_to(n).freeze()));
                    }
                    let want = usize::try_from(*left).unwrap_or(usize::MAX).min(256 << 10);
                    if self.buf.capacity() < want {
                        self.buf.reserve(want);
                    }
                }
                BodyLeft::Chunked(d) => match d.step(&mut self.buf)? {
                    Step::Data(b) => return Ok(Some(b)),
                    Step::Done => {
                        self.body = BodyLeft::Done;
                        return Ok(None);
                    }
                    Step::More => {}
                },
            }
            match self.fill(IO_WAIT).await {
                Ok(n) if n > 0 => {}
                Ok(_) => return Err("the client closed the connection before the body ended"),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err("timed out reading the request body");
                }
                Err(_) => return Err("could not read the request body"),
            }
        }
    }

    /// The rest of a body of declared length, read into one buffer sized for it and
    /// handed out whole (no piece copied together). `None` when the body is chunked. The
    /// caller has checked the length against its limit: this reserves all of it.
    pub async fn read_body_whole(&mut self) -> Option<Result<Bytes, &'static str>> {
        let BodyLeft::Length(left) = self.body else {
            return None;
        };
        let left = usize::try_from(left).ok()?;
        if self.buf.len() < left {
            self.buf.reserve(left - self.buf.len());
        }
        while self.buf.len() < left {
            match self.fill(IO_WAIT).await {
                Ok(n) if n > 0 => {}
                Ok(_) => {
                    return Some(Err(
                        "the client closed the connection before the body ended",
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Some(Err("timed out reading the request body"));
                }
                Err(_) => return Some(Err("could not read the request body")),
            }
        }
        self.body = BodyLeft::Done;
        Some(Ok(self.buf.split_to(left).freeze()))
    }

    /// Whether the client waits for `100 Continue` (HTTP/1.1 `Expect: 100-continue`).
    pub fn expects_continue(&self) -> bool {
        self.sem.expect_continue && self.head.minor > 0
    }

    /// Sends `100 Continue` once, if the client asked for it.
    pub async fn write_continue(&mut self) -> Result<(), WriteFailed> {
        if !self.sem.expect_continue || self.continue_sent || self.head.minor == 0 {
            return Ok(());
        }
        self.continue_sent = true;
        self.send(b"HTTP/1.1 100 Continue\r\n\r\n").await
    }

    /// The connection closes after this exchange.
    pub fn close_after(&mut self) {
        self.keepalive = false;
    }

    /// Resolves when the client closes the connection. Only meaningful once the body was
    /// read; bytes that arrive meanwhile (a pipelined request) are kept.
    pub async fn gone(&mut self) {
        if self.eof {
            return;
        }
        if !self.is_body_done() || self.buf.len() > MAX_HEAD {
            return std::future::pending().await;
        }
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => self.eof = true,
            Ok(_) => std::future::pending().await,
        }
    }

    /// Whether a response head was written (or queued).
    pub fn response_started(&self) -> bool {
        self.mode.is_some()
    }

    /// Queues the response head; it leaves with the first body bytes.
    pub fn write_head(&mut self, h: &ResponseHead<'_>) -> Result<(), WriteFailed> {
        if self.mode.is_some() {
            return Err(WriteFailed);
        }
        // Answering before the body was read (an early error): a small rest is drained and
        // the connection kept; a large or unknown one means the connection closes.
        match self.body {
            BodyLeft::Done => {}
            BodyLeft::Length(left) if left <= DRAIN_MAX => {}
            _ => self.keepalive = false,
        }
        let head_request = self.method() == "HEAD";
        let (mode, keepalive) = write::head(
            &mut self.wbuf,
            h,
            self.keepalive,
            self.head.minor,
            head_request,
        )
        .map_err(|_| WriteFailed)?;
        self.mode = Some(mode);
        self.keepalive = keepalive;
        Ok(())
    }

    /// Writes a piece of the response body (and the queued head); `end` finishes it.
    pub async fn write_body(&mut self, data: &[u8], end: bool) -> Result<(), WriteFailed> {
        let Some(mode) = self.mode else {
            return Err(WriteFailed);
        };
        if self.response_done {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(WriteFailed)
            };
        }
        if end {
            self.response_done = true;
        }
        if data.len() <= COPY_MAX || mode == BodyMode::Empty {
            write::body(&mut self.wbuf, mode, data, end);
            let out = std::mem::take(&mut self.wbuf);
            let r = self.send(&out).await;
            self.wbuf = out;
            self.wbuf.clear();
            return r;
        }
        if mode == BodyMode::Chunked {
            self.wbuf
                .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        let out = std::mem::take(&mut self.wbuf);
        let r = async {
            self.send_unflushed(&out).await?;
            self.send_unflushed(data).await?;
            let mut tail = Vec::new();
            if mode == BodyMode::Chunked {
                tail.extend_from_slice(b"\r\n");
                if end {
                    tail.extend_from_slice(b"0\r\n\r\n");
                }
            }
            self.send(&tail).await
        }
        .await;
        self.wbuf = out;
        self.wbuf.clear();
        r
    }

    async fn send_unflushed(&mut self, data: &[u8]) -> Result<(), WriteFailed> {
        if data.is_empty() {
            return Ok(());
        }
        match within(IO_WAIT, self.stream.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.eof = true;
                Err(WriteFailed)
            }
        }
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), WriteFailed> {
        self.send_unflushed(data).await?;
        match within(IO_WAIT, self.stream.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.eof = true;
                Err(WriteFailed)
            }
        }
    }

    /// Ends the exchange: sends anything queued; true when the connection can carry the
    /// next request.
    pub async fn finish(&mut self) -> bool {
        match self.mode {
            Some(BodyMode::Empty) if !self.response_done => {
                if self.write_body(&[], true).await.is_err() {
                    return false;
                }
            }
            Some(_) if !self.response_done => return false,
            None => return false,
            Some(_) => {}
        }
        self.keepalive && !self.eof && self.is_body_done()
    }

    /// Answers a request whose head could not be served, then the connection closes.
    pub async fn reject(&mut self, e: &HeadError) {
        let body =
            datamind_llm::error_body::ErrorBody::new("invalid_request_error", None, e.message)
                .to_json();
        let mut h = ResponseHead::new(e.status);
        h.insert("content-type", "application/json");
        h.insert("content-length", body.len().to_string());
        self.keepalive = false;
        self.mode = None;
        self.response_done = false;
        self.wbuf.clear();
        if self.write_head(&h).is_ok() {
            let _ = self.write_body(&body, true).await;
        }
    }

    /// Closes the connection: FIN, then (when the client may still be sending) a lingering
    /// read that discards its bytes for a moment. Closing with unread bytes would send a
    /// reset, and a reset makes the client drop the answer it has not read yet.
    pub async fn close(mut self) {
        let _ = within(Duration::from_secs(1), self.stream.shutdown()).await;
        if self.eof {
            return;
        }
        let mut seen = 0usize;
        let _ = within(LINGER, async {
            while seen < LINGER_MAX {
                self.buf.clear();
                self.buf.reserve(READ_CHUNK);
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen += n,
                }
            }
        })
        .await;
    }
}
