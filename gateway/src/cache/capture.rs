//! The tee: a bounded copy of what the relay sends the client, turned into a
//! [`CachedAnswer`] only when the answer completed.

use bytes::Bytes;
use datamind_llm::Usage;

use super::{CachedAnswer, now_unix_ms};

/// A copy of the bytes sent so far, given up (and freed) once it passes `max` bytes.
#[derive(Debug)]
pub struct Capture {
    buf: Vec<u8>,
    max: usize,
    over: bool,
}

impl Capture {
    /// Copies at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
            over: false,
        }
    }

    /// Records bytes written to the client.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.over {
            return;
        }
        if self.buf.len() + bytes.len() > self.max {
            self.over = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The answer to store, unless it grew past the limit.
    pub fn finish(
        self,
        stream: bool,
        content_type: &str,
        usage: Usage,
        deployment: &str,
    ) -> Option<CachedAnswer> {
        (!self.over).then(|| CachedAnswer {
            stream,
            content_type: content_type.to_owned(),
            body: Bytes::from(self.buf),
            usage,
            deployment: deployment.to_owned(),
            stored_unix_ms: now_unix_ms(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_up_to_the_limit_and_gives_up_past_it() {
        let mut c = Capture::new(10);
        c.push(b"data: a\n\n");
        c.push(b"x");
        let a = c
            .finish(true, "text/event-stream", Usage::default(), "d")
            .unwrap();
        assert_eq!(&a.body[..], b"data: a\n\nx");
        assert!(a.stream);
        let mut c = Capture::new(10);
        c.push(b"data: a\n\n");
        c.push(b"xy");
        c.push(b"z");
        assert!(
            c.finish(true, "text/event-stream", Usage::default(), "d")
                .is_none()
        );
    }
}
