//! Streamed (SSE) bodies: every chunk of a reply is written into one buffer up front, and
//! the response body hands out slices of it, so a stream costs one allocation.

use bytes::Bytes;

use super::body::{Endpoint, Reply};

/// A whole response body cut into the pieces that are written (and flushed) one at a time.
#[derive(Debug, Clone)]
pub struct Chunked {
    /// All bytes of the body.
    pub bytes: Bytes,
    /// End offset of each piece in `bytes`, increasing; the last is `bytes.len()`.
    pub ends: Vec<usize>,
}

// === impl Chunked ===

impl Chunked {
    /// A body sent as one piece (no piece at all when empty).
    pub fn whole(bytes: Bytes) -> Self {
        let ends = if bytes.is_empty() {
            vec![]
        } else {
            vec![bytes.len()]
        };
        Self { bytes, ends }
    }

    /// A body cut in two halves (used to truncate a non-streamed body mid-way).
    pub fn halves(bytes: Bytes) -> Self {
        let ends = vec![bytes.len() / 2, bytes.len()];
        Self { bytes, ends }
    }

    /// Piece `i`.
    pub fn piece(&self, i: usize) -> Bytes {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.slice(start..self.ends[i])
    }

    /// Number of pieces.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no pieces.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Builds a [`Chunked`] body: bytes are appended to the current piece until [`cut`] ends it.
///
/// The provider formats use it to group framing events with content: the events before the
/// first content delta travel with it, the closing events with the last one, so a stream of
/// `n` deltas is `n` pieces and `--ttft-ms` / `--chunk-delay-ms` mean what they mean for the
/// OpenAI stream.
///
/// [`cut`]: PieceWriter::cut
#[derive(Debug, Default)]
pub struct PieceWriter {
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl PieceWriter {
    /// Appends bytes to the current piece.
    pub fn push(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Appends an SSE event: `event: NAME` (when given), `data: DATA`, blank line.
    pub fn sse(&mut self, event: Option<&str>, data: &[u8]) {
        if let Some(name) = event {
            self.push(b"event: ");
            self.push(name.as_bytes());
            self.push(b"\n");
        }
        self.push(b"data: ");
        self.push(data);
        self.push(b"\n\n");
    }

    /// Ends the current piece (a no-op when it is empty).
    pub fn cut(&mut self) {
        if self.ends.last().copied().unwrap_or(0) < self.out.len() {
            self.ends.push(self.out.len());
        }
    }

    /// The body; whatever follows the last cut becomes the last piece.
    pub fn finish(mut self) -> Chunked {
        self.cut();
        Chunked {
            bytes: Bytes::from(self.out),
            ends: self.ends,
        }
    }
}

/// The SSE body for a streamed reply: `chunks` content events (`"tok1 "`, `"tok2 "`, …; the first
/// carries the assistant role, the last `finish_reason: "stop"`), a usage event when
/// `include_usage`, then `data: [DONE]`. `chunks` is raised to at least 1. The body is cut into
/// `chunks` pieces; the last one carries the final content event, the usage event and `[DONE]`.
pub fn stream_body(reply: &Reply, chunks: u32) -> Chunked {
    let chunks = chunks.max(1);
    let per_chunk = 200 + reply.model_json.len();
    let mut out = String::with_capacity(per_chunk * (chunks as usize + 1) + 16);
    let mut ends = Vec::with_capacity(chunks as usize + 2);
    for i in 1..=chunks {
        out.push_str("data: {");
        reply.write_head(&mut out, true);
        let last = i == chunks;
        match reply.endpoint {
            Endpoint::Chat => {
                out.push_str(r#","choices":[{"index":0,"delta":{"#);
                if i == 1 {
                    out.push_str(r#""role":"assistant","#);
                }
                push_token(&mut out, "content", i);
                out.push('}');
            }
            Endpoint::Completion => {
                out.push_str(r#","choices":[{"index":0,"#);
                push_token(&mut out, "text", i);
                out.push_str(r#","logprobs":null"#);
            }
        }
        out.push_str(if last {
            r#","finish_reason":"stop"}]}"#
        } else {
            r#","finish_reason":null}]}"#
        });
        out.push_str("\n\n");
        if !last {
            ends.push(out.len());
        }
    }
    // The usage event and `[DONE]` travel with the last content event, as OpenAI sends them:
    // a client sees the end of the stream one write after its last token, not one interval later.
    if reply.include_usage {
        out.push_str("data: {");
        reply.write_head(&mut out, true);
        out.push_str(r#","choices":[],"#);
        reply.write_usage(&mut out, u64::from(chunks));
        out.push_str("}\n\n");
    }
    out.push_str("data: [DONE]\n\n");
    ends.push(out.len());
    Chunked {
        bytes: Bytes::from(out),
        ends,
    }
}

fn push_token(out: &mut String, field: &str, i: u32) {
    use std::fmt::Write as _;
    let _ = write!(out, r#""{field}":"tok{i} ""#);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The SSE events of the whole body, each with its trailing blank line.
    fn events(c: &Chunked) -> Vec<String> {
        String::from_utf8(c.bytes.to_vec())
            .unwrap()
            .split_inclusive("\n\n")
            .map(str::to_owned)
            .collect()
    }

    fn json_of(event: &str) -> Value {
        let data = event
            .strip_prefix("data: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        serde_json::from_str(data).unwrap()
    }

    fn reply(endpoint: Endpoint, body: &str) -> Reply {
        Reply::parse(endpoint, body.as_bytes(), 3, 42).unwrap()
    }

    #[test]
    fn chat_stream_has_role_tokens_stop_usage_done() {
        let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        let c = stream_body(&reply(Endpoint::Chat, body), 3);
        let ev = events(&c);
        assert_eq!(ev.len(), 5);
        let first = json_of(&ev[0]);
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["id"], "chatcmpl-mock-3");
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(first["choices"][0]["delta"]["content"], "tok1 ");
        assert!(first["choices"][0]["finish_reason"].is_null());
        let second = json_of(&ev[1]);
        assert!(second["choices"][0]["delta"].get("role").is_none());
        let last = json_of(&ev[2]);
        assert_eq!(last["choices"][0]["delta"]["content"], "tok3 ");
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        let usage = json_of(&ev[3]);
        assert_eq!(usage["choices"], Value::Array(vec![]));
        let p = (body.len() / 4) as u64;
        assert_eq!(usage["usage"]["completion_tokens"], 3);
        assert_eq!(usage["usage"]["total_tokens"], p + 3);
        assert_eq!(ev[4], "data: [DONE]\n\n");
    }

    #[test]
    fn no_usage_event_unless_asked() {
        let c = stream_body(&reply(Endpoint::Chat, r#"{"stream":true}"#), 20);
        let ev = events(&c);
        assert_eq!(ev.len(), 21);
        assert!(ev.iter().all(|e| !e.contains("usage")));
    }

    #[test]
    fn completion_stream_uses_text() {
        let c = stream_body(&reply(Endpoint::Completion, r#"{"stream":true}"#), 2);
        let ev = events(&c);
        let first = json_of(&ev[0]);
        assert_eq!(first["object"], "text_completion");
        assert_eq!(first["choices"][0]["text"], "tok1 ");
        assert_eq!(json_of(&ev[1])["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn one_piece_per_content_event_and_the_end_travels_with_the_last() {
        let body = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        let c = stream_body(&reply(Endpoint::Chat, body), 4);
        assert_eq!(c.len(), 4);
        let last = String::from_utf8(c.piece(3).to_vec()).unwrap();
        assert!(last.starts_with("data: {"), "{last}");
        assert!(last.contains(r#""finish_reason":"stop""#), "{last}");
        assert!(last.contains(r#""usage""#), "{last}");
        assert!(last.ends_with("data: [DONE]\n\n"), "{last}");
        let second = String::from_utf8(c.piece(1).to_vec()).unwrap();
        assert_eq!(second.matches("\n\n").count(), 1, "{second}");
    }

    #[test]
    fn pieces_cover_the_body() {
        let c = stream_body(&reply(Endpoint::Chat, "{}"), 0);
        assert_eq!(c.len(), 1);
        let joined: Vec<u8> = (0..c.len()).flat_map(|i| c.piece(i).to_vec()).collect();
        assert_eq!(joined, c.bytes.to_vec());
        let h = Chunked::halves(Bytes::from_static(b"abcdef"));
        assert_eq!(
            (h.piece(0), h.piece(1)),
            (Bytes::from("abc"), Bytes::from("def"))
        );
    }
}
