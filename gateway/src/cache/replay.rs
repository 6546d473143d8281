//! Writing a cache hit: the stored bytes, with the headers a fresh answer would carry.

use crate::server::{Downstream, ResponseHead};

use super::{CacheStatus, CachedAnswer, now_unix_ms};

/// Sends `answer` as a 200 (a JSON body, or an SSE stream replayed whole). Returns false
/// when the client could not be written to.
pub(crate) async fn write(
    session: &mut Downstream<'_>,
    request_id: &str,
    answer: &CachedAnswer,
    extra: &[(&'static str, String)],
) -> bool {
    let Some(h) = header(session.is_http2(), request_id, answer, extra) else {
        return false;
    };
    session.write_head(&h).await.is_ok()
        && session.write_body(answer.body.clone(), true).await.is_ok()
}

fn header<'a>(
    http2: bool,
    request_id: &'a str,
    answer: &'a CachedAnswer,
    extra: &'a [(&'static str, String)],
) -> Option<ResponseHead<'a>> {
    let mut h = ResponseHead::new(200);
    for (k, v) in extra {
        h.insert(k, v.as_str());
    }
    let age = now_unix_ms().saturating_sub(answer.stored_unix_ms) / 1000;
    h.insert("content-type", answer.content_type.as_str());
    h.insert("x-request-id", request_id);
    h.insert("x-datamind-cache", CacheStatus::Hit.as_str());
    h.insert("age", age.to_string());
    if answer.stream {
        h.insert("cache-control", "no-cache");
        if !http2 {
            h.insert("transfer-encoding", "chunked");
        }
    } else {
        h.insert("content-length", answer.body.len().to_string());
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

    fn get<'a>(h: &'a ResponseHead<'_>, name: &str) -> Option<&'a str> {
        h.get(name)
    }

    #[test]
    fn a_hit_carries_the_headers_of_a_fresh_answer() {
        let (whole, stream) = (answer(false), answer(true));
        let h = header(false, "rid-1", &whole, &[]).unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(get(&h, "x-datamind-cache"), Some("hit"));
        assert_eq!(get(&h, "x-request-id"), Some("rid-1"));
        assert_eq!(get(&h, "content-type"), Some("application/json"));
        assert_eq!(get(&h, "content-length"), Some("14"));
        assert_eq!(get(&h, "age"), Some("3"));
        assert_eq!(get(&h, "transfer-encoding"), None);

        let h1 = header(false, "rid-2", &stream, &[]).unwrap();
        assert_eq!(get(&h1, "content-type"), Some("text/event-stream"));
        assert_eq!(get(&h1, "transfer-encoding"), Some("chunked"));
        assert_eq!(get(&h1, "content-length"), None);
        let h2 = header(true, "rid-3", &stream, &[]).unwrap();
        assert_eq!(get(&h2, "transfer-encoding"), None);
    }
}
