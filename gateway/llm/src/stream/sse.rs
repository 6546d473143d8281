//! A push parser for `text/event-stream` (the WHATWG server-sent events format).
//!
//! Lines may end in `\n`, `\r\n` or `\r`, and a chunk boundary may fall anywhere, even
//! between the `\r` and `\n` of one terminator (a trailing `\r` waits for the next byte).
//! Each complete event keeps its exact raw bytes so a proxy can forward it untouched.

use crate::LlmError;

/// The default cap on one event (raw bytes), so a broken upstream cannot grow memory forever.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 << 20;

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The exact bytes of the event, from its first line through the blank line ending it.
    pub raw: Vec<u8>,
    /// The `event:` field, if present.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; `None` for comment-only blocks (keep-alives).
    pub data: Option<Vec<u8>>,
}

/// Incremental SSE parser; feed it bytes in any split.
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Next byte of `buf` not yet scanned for a line terminator.
    scan: usize,
    /// Where the event being collected starts in `buf`.
    event_start: usize,
    event: Option<String>,
    data: Option<Vec<u8>>,
    has_lines: bool,
    max_event: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that rejects events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Self {
            buf: Vec::new(),
            scan: 0,
            event_start: 0,
            event: None,
            data: None,
            has_lines: false,
            max_event,
        }
    }

    /// Consumes `input` and appends every event it completes to `events`.
    pub fn feed(&mut self, input: &[u8], events: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.buf.extend_from_slice(input);
        while let Some(off) = self.buf[self.scan..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let j = self.scan + off;
            let term = if self.buf[j] == b'\r' {
                match self.buf.get(j + 1) {
                    None => break, // is it CR or CRLF? wait for the next byte
                    Some(b'\n') => 2,
                    Some(_) => 1,
                }
            } else {
                1
            };
            let next = j + term;
            self.line(self.scan, j, next, events);
            self.scan = next;
        }
        if self.event_start > 0 {
            self.buf.drain(..self.event_start);
            self.scan -= self.event_start;
            self.event_start = 0;
        }
        if self.buf.len() > self.max_event {
            return Err(LlmError::EventTooLarge {
                limit: self.max_event,
            });
        }
        Ok(())
    }

    /// The stream ended: a final event without its blank line is still dispatched (a proxy
    /// must not lose it), and the parser is reset.
    pub fn finish(&mut self, events: &mut Vec<SseEvent>) {
        let len = self.buf.len();
        if self.scan < len {
            let line_end = if self.buf[len - 1] == b'\r' {
                len - 1
            } else {
                len
            };
            self.line(self.scan, line_end, len, events);
        }
        if self.has_lines {
            self.dispatch(len, events);
        }
        self.buf.clear();
        self.scan = 0;
        self.event_start = 0;
    }

    /// Handles the line `buf[start..end]`, whose terminator ends at `next`.
    fn line(&mut self, start: usize, end: usize, next: usize, events: &mut Vec<SseEvent>) {
        if start == end {
            if self.has_lines {
                self.dispatch(next, events);
            } else {
                self.event_start = next; // a stray blank line carries nothing
            }
            return;
        }
        self.has_lines = true;
        let l = &self.buf[start..end];
        if l[0] == b':' {
            return;
        }
        let (name, value) = match l.iter().position(|&c| c == b':') {
            Some(p) => {
                let v = &l[p + 1..];
                (&l[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (l, &b""[..]),
        };
        match name {
            b"data" => match &mut self.data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => self.data = Some(value.to_vec()),
            },
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, next: usize, events: &mut Vec<SseEvent>) {
        let raw = self.buf[self.event_start..next].to_vec();
        self.event_start = next;
        self.has_lines = false;
        events.push(SseEvent {
            raw,
            event: self.event.take(),
            data: self.data.take(),
        });
    }
}

#[cfg(test)]
mod tests;
