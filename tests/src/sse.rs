//! Server-Sent Events as a client sees them: parsed incrementally, each event stamped
//! with the moment its terminating blank line arrived.
//!
//! Follows the SSE line rules that matter for OpenAI streams: lines end in `\n` or `\r\n`;
//! `data:` lines (one optional space after the colon) are joined with `\n`; a blank line
//! dispatches the event; comments (`:`) and other fields are ignored; an event without data
//! is dropped.

use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// One dispatched event.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub data: String,
    pub at: Instant,
}

// === impl SseEvent ===

impl SseEvent {
    /// The OpenAI end-of-stream marker.
    pub fn is_done(&self) -> bool {
        self.data.trim() == "[DONE]"
    }

    /// The data as JSON (`[DONE]` is an error).
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.data)
            .with_context(|| format!("SSE data is not JSON: {:?}", self.data))
    }

    /// `choices[0].delta.content` of a chat chunk, if any.
    pub fn delta_content(&self) -> Option<String> {
        let v = self.json().ok()?;
        v.pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Whether this chunk carries a non-null `usage` object.
    pub fn has_usage(&self) -> bool {
        self.json()
            .ok()
            .and_then(|v| v.get("usage").cloned())
            .is_some_and(|u| u.is_object())
    }

    /// Whether this event is an in-band error (`{"error":{...}}`).
    pub fn is_error(&self) -> bool {
        self.json()
            .ok()
            .and_then(|v| v.get("error").cloned())
            .is_some_and(|e| e.is_object())
    }
}

/// Incremental line-based SSE parser (pure; feed it bytes in any split).
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
    has_data: bool,
}

// === impl SseParser ===

impl SseParser {
    /// Feeds bytes; returns the data of every event completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, &mut out);
            } else {
                self.line.push(b);
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.data).join("\n"));
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        let line = String::from_utf8_lossy(line);
        if let Some(rest) = line.strip_prefix("data:") {
            self.data
                .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            self.has_data = true;
        } else if line == "data" {
            self.data.push(String::new());
            self.has_data = true;
        }
    }
}

/// Parses a complete SSE body into event data strings.
pub fn parse_events(body: &str) -> Vec<String> {
    SseParser::default().feed(body.as_bytes())
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Reads events from a streaming HTTP response as they arrive.
pub struct SseStream {
    body: ByteStream,
    parser: SseParser,
    ready: std::collections::VecDeque<SseEvent>,
    ended: bool,
}

// === impl SseStream ===

impl SseStream {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: Box::pin(resp.bytes_stream()),
            parser: SseParser::default(),
            ready: Default::default(),
            ended: false,
        }
    }

    /// The next event, `None` at end of body; fails after `timeout` or on a body error.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<SseEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Ok(Some(ev));
            }
            if self.ended {
                return Ok(None);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .map_err(|_| anyhow!("no SSE event within {timeout:?}"))?;
            match chunk {
                Some(Ok(bytes)) => {
                    let at = Instant::now();
                    for data in self.parser.feed(&bytes) {
                        self.ready.push_back(SseEvent { data, at });
                    }
                }
                Some(Err(e)) => return Err(anyhow!(e).context("reading SSE body")),
                None => self.ended = true,
            }
        }
    }

    /// Every event until `[DONE]` (included) or the end of the body, within `timeout`.
    /// A body error after some events is returned as an error.
    pub async fn collect(mut self, timeout: Duration) -> Result<Vec<SseEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Ok(Some(ev)) => {
                    let done = ev.is_done();
                    events.push(ev);
                    if done {
                        return Ok(events);
                    }
                }
                Ok(None) => return Ok(events),
                Err(e) => {
                    let got: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
                    return Err(e.context(format!("after events {got:?}")));
                }
            }
        }
    }

    /// Like [`collect`](Self::collect), but a body error ends the list instead of failing.
    pub async fn collect_lenient(mut self, timeout: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Ok(Some(ev)) => {
                    let done = ev.is_done();
                    events.push(ev);
                    if done {
                        return events;
                    }
                }
                Ok(None) | Err(_) => return events,
            }
        }
    }
}

/// The concatenated `delta.content` of chat chunks.
pub fn joined_content(events: &[SseEvent]) -> String {
    events.iter().filter_map(SseEvent::delta_content).collect()
}

#[cfg(test)]
mod tests {
    use super::{SseParser, parse_events};

    const STREAM: &str = "data: {\"a\":1}\n\n: comment\n\ndata: {\"b\":\r\ndata: 2}\r\n\r\nevent: x\ndata:[DONE]\n\n";

    #[test]
    fn parses_whole_body() {
        assert_eq!(
            parse_events(STREAM),
            vec!["{\"a\":1}", "{\"b\":\n2}", "[DONE]"]
        );
    }

    #[test]
    fn same_events_at_every_split() {
        let bytes = STREAM.as_bytes();
        let whole = parse_events(STREAM);
        for cut in 0..=bytes.len() {
            let mut p = SseParser::default();
            let mut got = p.feed(&bytes[..cut]);
            got.extend(p.feed(&bytes[cut..]));
            assert_eq!(got, whole, "split at {cut}");
        }
    }

    #[test]
    fn incomplete_event_is_not_dispatched() {
        assert!(parse_events("data: {\"a\":1}\n").is_empty());
    }
}
