//! The API listener's own HTTP/1.x server, on a raw socket: pipelining, chunked request
//! bodies, HTTP/1.0, connection reuse after early errors, and malformed or hostile heads
//! (each answered in the OpenAI error shape, never a hang or a reset).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream, one_upstream_config};
use datamind_e2e::{KEY_ALL, KEY_LIMITED, MockSpec, eventually, sha256_hex};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response read off the socket.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A raw client connection with a read buffer (responses may arrive together).
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(s: &OneUpstream) -> Result<Self> {
        Ok(Self {
            s: TcpStream::connect(s.gateway.api_addr()).await?,
            buf: Vec::new(),
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.s.write_all(bytes).await?;
        Ok(())
    }

    async fn fill(&mut self) -> Result<usize> {
        let mut chunk = [0u8; 16 << 10];
        let n = tokio::time::timeout(Duration::from_secs(10), self.s.read(&mut chunk))
            .await
            .context("no answer within 10 s")??;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one response (content-length, chunked, or until close).
    async fn response(&mut self) -> Result<Response> {
        let (status, headers, head_len) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = r.parse(&self.buf)? {
                let headers = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (r.code.unwrap_or(0), headers, n);
            }
            if self.fill().await? == 0 {
                bail!("connection closed before a response head");
            }
        };
        self.buf.drain(..head_len);
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse()?;
            while self.buf.len() < len {
                if self.fill().await? == 0 {
                    bail!("connection closed inside the body");
                }
            }
            resp.body = self.buf.drain(..len).collect();
        } else if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if self.fill().await? == 0 {
                        bail!("connection closed inside a chunk size");
                    }
                };
                let size = usize::from_str_radix(std::str::from_utf8(&self.buf[..line_end])?, 16)?;
                while self.buf.len() < line_end + 2 + size + 2 {
                    if self.fill().await? == 0 {
                        bail!("connection closed inside a chunk");
                    }
                }
                resp.body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill().await? > 0 {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(resp)
    }

    /// True when the server closed the connection (read returns 0).
    async fn closed(&mut self) -> bool {
        matches!(self.fill().await, Ok(0) | Err(_))
    }
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

fn post(body: &str, extra: &str) -> Vec<u8> {
    post_as(KEY_ALL, body, extra)
}

fn post_as(key: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A connection keeps the config snapshot it last used between requests; each request
/// checks for a newer one. A key removed by a reload is refused on a connection that used
/// it before, without reconnecting.
#[tokio::test]
async fn a_reload_applies_to_the_next_request_on_a_kept_alive_connection() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let mut c = Raw::connect(&s).await?;
    c.send(&post_as(KEY_LIMITED, &chat(CHAT_MODEL), "")).await?;
    assert_eq!(c.response().await?.status, 200);

    let only_all = serde_json::json!([
        {"name": "all", "sha256": sha256_hex(KEY_ALL), "tenant": "team-a", "models": ["*"]}
    ]);
    s.gateway
        .rewrite_config(&one_upstream_config(&s.mock).set("/auth/keys", only_all))?;
    eventually("the reload", Duration::from_secs(5), || async {
        let m = s.gateway.metrics().await?;
        Ok((m.sum("datamind_config_reloads_total", &[("result", "success")]) >= 1.0).then_some(()))
    })
    .await?;

    c.send(&post_as(KEY_LIMITED, &chat(CHAT_MODEL), "")).await?;
    let refused = c.response().await?;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()?["error"]["code"], "invalid_api_key");
    c.send(&post(&chat(CHAT_MODEL), "")).await?;
    let ok = c.response().await?;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("connection"), Some("keep-alive"));
    Ok(())
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let mut c = Raw::connect(&s).await?;
    let mut wire = post(&chat(CHAT_MODEL), "x-request-id: first\r\n");
    wire.extend_from_slice(&post(&chat("no-such-model"), "x-request-id: second\r\n"));
    wire.extend_from_slice(&post(&chat(CHAT_MODEL), "x-request-id: third\r\n"));
    c.send(&wire).await?;
    let (a, b, d) = (
        c.response().await?,
        c.response().await?,
        c.response().await?,
    );
    assert_eq!((a.status, b.status, d.status), (200, 404, 200));
    assert_eq!(a.header("x-request-id"), Some("first"));
    assert_eq!(b.header("x-request-id"), Some("second"));
    assert_eq!(d.header("x-request-id"), Some("third"));
    assert_eq!(a.json()?["object"], "chat.completion");
    assert_eq!(b.json()?["error"]["code"], "model_not_found");
    assert_eq!(d.header("connection"), Some("keep-alive"));
    Ok(())
}

#[tokio::test]
async fn chunked_request_bodies_in_small_writes_are_decoded() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let mut c = Raw::connect(&s).await?;
    let body = chat(CHAT_MODEL);
    let (left, right) = body.split_at(10);
    let wire = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {KEY_ALL}\r\n\
         transfer-encoding: chunked\r\n\r\n{:x};ext=1\r\n{left}\r\n{:x}\r\n{right}\r\n0\r\ntrailer: x\r\n\r\n",
        left.len(),
        right.len()
    );
    // A byte at a time: every parser state sees a partial buffer.
    for b in wire.as_bytes() {
        c.send(std::slice::from_ref(b)).await?;
    }
    let r = c.response().await?;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()?["object"], "chat.completion");
    // The connection is still good for the next request.
    c.send(&post(&chat(CHAT_MODEL), "")).await?;
    assert_eq!(c.response().await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn http_1_0_gets_an_answer_and_a_close() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let mut c = Raw::connect(&s).await?;
    let body = chat(CHAT_MODEL);
    c.send(
        format!(
            "POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer {KEY_ALL}\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    let r = c.response().await?;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await, "HTTP/1.0 without keep-alive closes");
    // A request shorter than the HTTP/2 preface is not left waiting for more bytes.
    let mut c = Raw::connect(&s).await?;
    c.send(b"GET / HTTP/1.0\r\n\r\n").await?;
    let r = c.response().await?;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()?["error"]["type"], "invalid_request_error");
    Ok(())
}

#[tokio::test]
async fn an_early_error_with_an_unread_body_keeps_the_connection() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let mut c = Raw::connect(&s).await?;
    let body = chat(CHAT_MODEL);
    let unauthenticated = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer sk-wrong\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send(unauthenticated.as_bytes()).await?;
    let r = c.response().await?;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()?["error"]["type"], "authentication_error");
    assert!(!String::from_utf8_lossy(&r.body).contains("sk-wrong"));
    c.send(&post(&chat(CHAT_MODEL), "")).await?;
    assert_eq!(
        c.response().await?.status,
        200,
        "the body was drained, the connection reused"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_and_hostile_heads_get_an_openai_error_and_a_close() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let huge = format!(
        "GET /v1/models HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(70 << 10)
    );
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("garbage", b"HELLO\x01 WORLD\r\n\r\n".to_vec(), 400),
        (
            "content-length and transfer-encoding",
            b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
            400,
        ),
        (
            "conflicting lengths",
            b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\n".to_vec(),
            400,
        ),
        (
            "unknown coding",
            b"POST /v1/chat/completions HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n".to_vec(),
            501,
        ),
        ("head over 64 KiB", huge.into_bytes(), 431),
    ];
    for (what, wire, status) in cases {
        let mut c = Raw::connect(&s).await?;
        c.send(&wire).await?;
        let r = c.response().await.with_context(|| what.to_owned())?;
        assert_eq!(r.status, status, "{what}");
        let e = r.json()?;
        assert_eq!(e["error"]["type"], "invalid_request_error", "{what}: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(r.header("connection"), Some("close"), "{what}");
        assert!(c.closed().await, "{what}: the connection closes");
    }
    // The gateway is unharmed.
    let mut c = Raw::connect(&s).await?;
    c.send(&post(&chat(CHAT_MODEL), "")).await?;
    assert_eq!(c.response().await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn a_bad_chunk_in_the_body_is_a_400_and_a_close() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let mut c = Raw::connect(&s).await?;
    c.send(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nauthorization: Bearer {KEY_ALL}\r\n\
             transfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let r = c.response().await?;
    assert_eq!(r.status, 400);
    assert!(
        r.json()?["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("request body")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    Ok(())
}
