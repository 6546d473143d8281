//! The client side of one request, whichever protocol carries it: our HTTP/1.x connection
//! ([`super::h1::Conn`]) or a Pingora session (HTTP/2, and the admin listener). The request
//! path reads the request and writes the response only through this.

use bytes::Bytes;
use pingora_core::protocols::http::ServerSession;

use super::h1::Conn;
use super::response_head::ResponseHead;

/// The response could not be written (the client went away, or the head was invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteFailed;

/// One request's client side.
pub(crate) enum Downstream<'a> {
    /// HTTP/1.x on a connection the gateway parses itself.
    H1(&'a mut Conn),
    /// A Pingora session (HTTP/2 streams; admin requests).
    Pingora(&'a mut ServerSession),
}

impl Downstream<'_> {
    /// The request method.
    pub fn method(&self) -> &str {
        match self {
            Self::H1(c) => c.method(),
            Self::Pingora(s) => s.req_header().method.as_str(),
        }
    }

    /// The request path, without the query.
    pub fn path(&self) -> &str {
        match self {
            Self::H1(c) => c.path(),
            Self::Pingora(s) => s.req_header().uri.path(),
        }
    }

    /// The first value of request header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        match self {
            Self::H1(c) => c.field(name),
            Self::Pingora(s) => s.get_header(name).map(|v| v.as_bytes()),
        }
    }

    /// Every request header field (name as sent, value), in order.
    pub fn fields(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Self::H1(c) => Box::new(c.fields()),
            Self::Pingora(s) => Box::new(
                s.req_header()
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
            ),
        }
    }

    /// Request header `name` as text, when it is visible ASCII.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .filter(|v| v.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\t'))
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The request body's declared length, when known up front. HTTP/1.x: from the head's
    /// framing, already checked (a head without `content-length` or chunked coding has
    /// none, 0); otherwise the `content-length` field.
    pub fn body_length(&self) -> Option<u64> {
        match self {
            Self::H1(c) => c.body_length(),
            Self::Pingora(_) => self
                .header_str("content-length")
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// Whether the client waits for `100 Continue` before it sends the body.
    pub fn expects_continue(&self) -> bool {
        match self {
            Self::H1(c) => c.expects_continue(),
            Self::Pingora(_) => self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue")),
        }
    }

    /// Whether the request came over HTTP/2 (no chunked framing, no `100 Continue`).
    pub fn is_http2(&self) -> bool {
        match self {
            Self::H1(_) => false,
            Self::Pingora(s) => s.is_http2(),
        }
    }

    /// Answers `Expect: 100-continue` (HTTP/1.1) so a waiting client sends its body.
    pub async fn write_continue(&mut self) -> Result<(), WriteFailed> {
        match self {
            Self::H1(c) => c.write_continue().await.map_err(|_| WriteFailed),
            Self::Pingora(s) if s.is_http2() => Ok(()),
            Self::Pingora(s) => s.write_continue_response().await.map_err(|_| WriteFailed),
        }
    }

    /// The next piece of the request body; `None` at its end.
    pub async fn read_body(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Self::H1(c) => c.read_body().await.map_err(str::to_owned),
            Self::Pingora(s) => s
                .read_request_body()
                .await
                .map_err(|e| e.etype().as_str().to_owned()),
        }
    }

    /// The rest of a body of declared length in one piece read into one buffer (HTTP/1.x);
    /// `None` where that does not apply (chunked, HTTP/2): read it piece by piece.
    pub async fn read_body_whole(&mut self) -> Option<Result<Bytes, String>> {
        match self {
            Self::H1(c) => c.read_body_whole().await.map(|r| r.map_err(str::to_owned)),
            Self::Pingora(_) => None,
        }
    }

    /// Reads and drops the rest of the request body.
    pub async fn drain_body(&mut self) {
        match self {
            Self::H1(c) => while let Ok(Some(_)) = c.read_body().await {},
            Self::Pingora(s) => {
                let _ = s.drain_request_body().await;
            }
        }
    }

    /// Whether the whole request body was read.
    pub fn is_body_done(&mut self) -> bool {
        match self {
            Self::H1(c) => c.is_body_done(),
            Self::Pingora(s) => s.is_body_done(),
        }
    }

    /// The connection closes after this exchange.
    pub fn close_after(&mut self) {
        match self {
            Self::H1(c) => c.close_after(),
            Self::Pingora(s) => s.set_keepalive(None),
        }
    }

    /// Resolves when the client has gone away (connection closed or h2 stream reset). Only
    /// call once the request body has been read.
    pub async fn gone(&mut self) {
        match self {
            Self::H1(c) => c.gone().await,
            Self::Pingora(s) => {
                if s.read_body_or_idle(true).await.is_ok() {
                    // Not a disconnect signal; nothing more to watch on this session.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Whether a response head was already written.
    pub fn response_started(&self) -> bool {
        match self {
            Self::H1(c) => c.response_started(),
            Self::Pingora(s) => s.response_written().is_some(),
        }
    }

    /// Writes the response head (on HTTP/1.1 it leaves with the first body bytes).
    pub async fn write_head(&mut self, h: &ResponseHead<'_>) -> Result<(), WriteFailed> {
        match self {
            Self::H1(c) => c.write_head(h).map_err(|_| WriteFailed),
            Self::Pingora(s) => {
                let header = h.to_pingora().map_err(|_| WriteFailed)?;
                s.write_response_header(Box::new(header))
                    .await
                    .map_err(|_| WriteFailed)
            }
        }
    }

    /// Writes the bytes in `buf` as a piece of the response body and leaves `buf` empty
    /// with room for the next piece: HTTP/1.x copies from it (no allocation per piece, the
    /// stream relay's case); Pingora's sessions take it as `Bytes` and `buf` gets a fresh
    /// allocation of the same capacity.
    pub async fn write_body_vec(&mut self, buf: &mut Vec<u8>) -> Result<(), WriteFailed> {
        match self {
            Self::H1(c) => {
                let r = c.write_body(buf, false).await.map_err(|_| WriteFailed);
                buf.clear();
                r
            }
            Self::Pingora(_) => {
                let data = std::mem::replace(buf, Vec::with_capacity(buf.capacity()));
                self.write_body(Bytes::from(data), false).await
            }
        }
    }

    /// Writes a piece of the response body; `end` finishes the response.
    pub async fn write_body(&mut self, data: Bytes, end: bool) -> Result<(), WriteFailed> {
        match self {
            Self::H1(c) => c.write_body(&data, end).await.map_err(|_| WriteFailed),
            Self::Pingora(s) => s
                .write_response_body(data, end)
                .await
                .map_err(|_| WriteFailed),
        }
    }
}
