//! Writing a cache hit: the stored bytes, with the headers a fresh answer would carry.

use pingora_core::protocols::http::ServerSession;
use pingora_http::ResponseHeader;

use super::{CacheStatus, CachedAnswer, now_unix_ms};

/// Sends `answer` as a 200 (a JSON body, or an SSE stream replayed whole). Returns false
/// when the client could not be written to.
pub async fn write(
    session: &mut ServerSession,
    request_id: &str,
    answer: &CachedAnswer,
    extra: &[(&'static str, String)],
) -> bool {
    let Some(h) = header(session.is_http2(), request_id, answer, extra) else {
        return false;
    };
    session.write_response_header(Box::new(h)).await.is_ok()
        && session
            .write_response_body(answer.body.clone(), true)
            .await
            .is_ok()
}

fn header(
    http2: bool,
    request_id: &str,
    answer: &CachedAnswer,
    extra: &[(&'static str, String)],
) -> Option<ResponseHeader> {
    let mut h = ResponseHeader::build(200, Some(7 + extra.len())).ok()?;
    for (k, v) in extra {
        h.insert_header(*k, v.as_str()).ok()?;
    }
    let age = now_unix_ms().saturating_sub(answer.stored_unix_ms) / 1000;
    h.insert_header("content-type", answer.content_type.clone())
        .ok()?;
    h.insert_header("x-request-id", request_id.to_owned())
        .ok()?;
    h.insert_header("x-datamind-cache", CacheStatus::Hit.as_str())
        .ok()?;
    h.insert_header("age", age.to_string()).ok()?;
    if answer.stream {
        h.insert_header("cache-control", "no-cache").ok()?;
        if !http2 {
            h.insert_header("transfer-encoding", "chunked").ok()?;
        }
    } else {
        h.insert_header("content-length", answer.body.len().to_string())
            .ok()?;
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn answer(stream: bool) -> CachedAnswer {
        CachedAnswer {
            stream,
            content_type: if stream {
                "text/event-stream"
            } else {
                "application/json"
            }
            .into(),
            body: Bytes::from_static(b"data: [DONE]\n\n"),
            usage: Default::default(),
            deployment: "up/m".into(),
            stored_unix_ms: now_unix_ms() - 3_500,
        }
    }

    fn get<'a>(h: &'a ResponseHeader, name: &str) -> Option<&'a str> {
        h.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_hit_carries_the_headers_of_a_fresh_answer() {
        let h = header(false, "rid-1", &answer(false), &[]).unwrap();
        assert_eq!(h.status.as_u16(), 200);
        assert_eq!(get(&h, "x-datamind-cache"), Some("hit"));
        assert_eq!(get(&h, "x-request-id"), Some("rid-1"));
        assert_eq!(get(&h, "content-type"), Some("application/json"));
        assert_eq!(get(&h, "content-length"), Some("14"));
        assert_eq!(get(&h, "age"), Some("3"));
        assert_eq!(get(&h, "transfer-encoding"), None);

        let h1 = header(false, "rid-2", &answer(true), &[]).unwrap();
        assert_eq!(get(&h1, "content-type"), Some("text/event-stream"));
        assert_eq!(get(&h1, "transfer-encoding"), Some("chunked"));
        assert_eq!(get(&h1, "content-length"), None);
        let h2 = header(true, "rid-3", &answer(true), &[]).unwrap();
        assert_eq!(get(&h2, "transfer-encoding"), None);
    }
}
