//! Reading an upstream's HTTP/1.1 answer on a connection the gateway wrote its request to:
//! the status and the few fields the engine needs, then the body by its framing (length,
//! chunked, or until close), and whether the connection can go back to the idle pool.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use super::connection::H1Conn;

use crate::http1::chunked::{Decoder, Step};

/// Most header fields accepted in an upstream answer.
const MAX_FIELDS: usize = 96;
/// Largest answer head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Read buffer growth.
const READ_CHUNK: usize = 16 << 10;

#[derive(Debug)]
enum Body {
    Length(u64),
    Chunked(Decoder),
    /// Until the upstream closes.
    Close,
    Done,
}

/// An upstream answer whose head was read.
#[derive(Debug)]
pub(crate) struct H1Answer {
    stream: H1Conn,
    buf: BytesMut,
    /// HTTP status.
    pub status: u16,
    /// `content-type`, if sent.
    pub content_type: Option<Cow<'static, str>>,
    /// `retry-after`, raw.
    pub retry_after: Option<Vec<u8>>,
    body: Body,
    keepalive: bool,
}

impl H1Answer {
    /// Reads the head of the answer (skipping `1xx` interim answers).
    pub async fn read(mut stream: H1Conn) -> Result<Self, String> {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            if !buf.is_empty()
                && let Some(answer) = parse(&mut buf)?
            {
                let Parsed {
                    status,
                    content_type,
                    retry_after,
                    body,
                    keepalive,
                } = answer;
                if (100..200).contains(&status) {
                    continue;
                }
                return Ok(Self {
                    stream,
                    buf,
                    status,
                    content_type,
                    retry_after,
                    body,
                    keepalive,
                });
            }
            if buf.len() > MAX_HEAD {
                return Err("upstream answer head too large".into());
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(READ_CHUNK);
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err("upstream closed the connection before answering".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// The next piece of the body; `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            match &mut self.body {
                Body::Done => return Ok(None),
                Body::Length(left) => {
                    if !self.buf.is_empty() {
                        let n = usize::try_from(*left)
                            .map_or(self.buf.len(), |l| l.min(self.buf.len()));
                        *left -= n as u64;
                        if *left == 0 {
                            self.body = Body::Done;
                        }
                        return Ok(Some(self.buf.split_to(n).freeze()));
                    }
                }
                Body::Close => {
                    if !self.buf.is_empty() {
                        return Ok(Some(self.buf.split().freeze()));
                    }
                }
                Body::Chunked(d) => match d.step(&mut self.buf) {
                    Ok(Step::Data(b)) => return Ok(Some(b)),
                    Ok(Step::Done) => {
                        self.body = Body::Done;
                        return Ok(None);
                    }
                    Ok(Step::More) => {}
                    Err(e) => return Err(format!("upstream body: {e}")),
                },
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(READ_CHUNK);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) if matches!(self.body, Body::Close) => {
                    self.body = Body::Done;
                    return Ok(None);
                }
                Ok(0) => return Err("upstream closed the connection inside the body".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Whether the whole body was read.
    pub fn is_done(&self) -> bool {
        matches!(self.body, Body::Done)
    }

    /// The connection, when the answer was read whole and the upstream keeps it open.
    pub fn into_reusable(self) -> Option<H1Conn> {
        (self.is_done() && self.keepalive && self.buf.is_empty()).then_some(self.stream)
    }
}

struct Parsed {
    status: u16,
    content_type: Option<Cow<'static, str>>,
    retry_after: Option<Vec<u8>>,
    body: Body,
    keepalive: bool,
}

/// Parses (and consumes) an answer head at the front of `buf`; `None` if incomplete.
fn parse(buf: &mut BytesMut) -> Result<Option<Parsed>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut r = httparse::Response::new(&mut fields);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("invalid upstream answer: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let minor = r.version.unwrap_or(1);
    let mut content_type = None;
    let mut retry_after = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = minor == 0;
    for h in r.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-type") {
            content_type = std::str::from_utf8(h.value).ok().map(media_type);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            let parsed = v
                .parse::<u64>()
                .map_err(|_| "invalid upstream Content-Length".to_owned())?;
            if length.is_some_and(|l| l != parsed) {
                return Err("conflicting upstream Content-Length".into());
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                // Another coding last: the body runs until close (RFC 9112 §6.3).
                close = true;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case(b"retry-after") {
            retry_after = Some(h.value.to_vec());
        }
    }
    let _ = buf.split_to(n);
    let body = if status < 200 || status == 204 || status == 304 {
        Body::Done
    } else if chunked {
        Body::Chunked(Decoder::default())
    } else if close && length.is_none() {
        Body::Close
    } else {
        match length {
            Some(0) => Body::Done,
            Some(l) => Body::Length(l),
            None => {
                close = true;
                Body::Close
            }
        }
    };
    Ok(Some(Parsed {
        status,
        content_type,
        retry_after,
        body,
        keepalive: !close,
    }))
}

/// A `content-type` value: the usual ones as literals, so reading them copies nothing.
fn media_type(v: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 4] = [
        "application/json",
        "text/event-stream",
        "application/json; charset=utf-8",
        "text/event-stream; charset=utf-8",
    ];
    match KNOWN.iter().find(|k| **k == v) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// An answer read from `wire` sent in pieces of `step` bytes.
    async fn answer(wire: &'static [u8], step: usize) -> (u16, Option<String>, Vec<u8>, bool) {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            for piece in wire.chunks(step) {
                server.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            // Keep the server side open unless the test closes it by ending the wire.
            if !wire.ends_with(b"<close>") {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
        let mut a = H1Answer::read(H1Conn::Pingora(Box::new(client)))
            .await
            .unwrap();
        let mut body = Vec::new();
        while let Some(b) = a.next().await.unwrap() {
            body.extend_from_slice(&b);
        }
        let ct = a.content_type.clone().map(String::from);
        (a.status, ct, body, a.into_reusable().is_some())
    }

    #[tokio::test]
    async fn length_and_chunked_answers_are_reusable() {
        for step in [1, 3, 1000] {
            let (status, ct, body, reuse) = answer(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                step,
            )
            .await;
            assert_eq!(
                (status, ct.as_deref(), &body[..], reuse),
                (200, Some("application/json"), &b"{}"[..], true)
            );
            let (status, _, body, reuse) = answer(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\ndata:\r\n3\r\n x\n\r\n0\r\n\r\n",
                step,
            )
            .await;
            assert_eq!((status, &body[..], reuse), (200, &b"data: x\n"[..], true));
        }
    }

    #[tokio::test]
    async fn close_delimited_and_connection_close_answers_are_not_reused() {
        let (status, _, body, reuse) = answer(
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\nbusy<close>",
            4,
        )
        .await;
        assert_eq!(
            (status, &body[..], reuse),
            (503, &b"busy<close>"[..], false)
        );
        let (_, _, _, reuse) = answer(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx",
            64,
        )
        .await;
        assert!(!reuse);
        let (status, _, body, reuse) = answer(b"HTTP/1.1 204 No Content\r\n\r\n", 64).await;
        assert_eq!((status, body.len(), reuse), (204, 0, true));
    }

    #[tokio::test]
    async fn a_plain_tcp_answer_is_read_and_reusable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let mut server = server.unwrap().0;
        tokio::spawn(async move {
            let wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
            for piece in wire.chunks(7) {
                server.write_all(piece).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let mut a = H1Answer::read(H1Conn::Plain(client.unwrap()))
            .await
            .unwrap();
        let mut body = Vec::new();
        while let Some(b) = a.next().await.unwrap() {
            body.extend_from_slice(&b);
        }
        assert_eq!((a.status, &body[..]), (200, &b"{}"[..]));
        assert!(matches!(a.into_reusable(), Some(H1Conn::Plain(_))));
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        let (client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
            .await
            .unwrap();
        drop(server);
        let mut a = H1Answer::read(H1Conn::Pingora(Box::new(client)))
            .await
            .unwrap();
        assert_eq!(a.next().await.unwrap().as_deref(), Some(&b"abc"[..]));
        assert!(a.next().await.is_err());
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"NOT HTTP\r\n\r\n").await.unwrap();
        assert!(
            H1Answer::read(H1Conn::Pingora(Box::new(client)))
                .await
                .is_err()
        );
    }
}
