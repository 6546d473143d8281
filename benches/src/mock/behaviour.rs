//! What the mock does with a request: status, fault and timing, from CLI defaults,
//! `POST /control` updates and per-request `x-mock-*` headers (in that order).

use std::str::FromStr;
use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// A deliberate misbehaviour of the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Close the TCP connection (SO_LINGER 0, so the peer sees a RST) without answering.
    Reset,
    /// Never answer; hold the connection until the client goes away.
    Stall,
    /// Send half the chunks (half the body when not streaming), then close the connection.
    DropMidStream,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "reset" => Ok(Self::Reset),
            "stall" => Ok(Self::Stall),
            "drop-mid-stream" => Ok(Self::DropMidStream),
            other => Err(format!(
                "unknown fault {other:?} (expected none|reset|stall|drop-mid-stream)"
            )),
        }
    }
}

/// How to answer one request. Small and `Copy`: read once per request from the shared defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Behaviour {
    /// HTTP status; anything but 200 answers with an OpenAI error body.
    pub status: u16,
    /// `Retry-After` seconds sent with error statuses.
    pub retry_after: Option<u32>,
    /// Deliberate misbehaviour.
    pub fault: Fault,
    /// Delay before the first byte of a non-streamed body, or before the first chunk of a stream.
    pub ttft_ms: u64,
    /// Number of content chunks in a stream.
    pub chunks: u32,
    /// Delay between stream chunks.
    pub chunk_delay_ms: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: 200,
            retry_after: None,
            fault: Fault::None,
            ttft_ms: 0,
            chunks: 20,
            chunk_delay_ms: 0,
        }
    }
}

/// Body of `POST /control`: any subset of the defaults to change for later requests.
/// `retry_after: 0` (or null) removes the header.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlUpdate {
    status: Option<u16>,
    #[serde(default, deserialize_with = "nullable")]
    retry_after: Option<Option<u32>>,
    fault: Option<Fault>,
    ttft_ms: Option<u64>,
    chunks: Option<u32>,
    chunk_delay_ms: Option<u64>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

// === impl Behaviour ===

impl Behaviour {
    /// Applies a `POST /control` update; reports an invalid status.
    pub fn apply(&mut self, update: &ControlUpdate) -> Result<(), String> {
        if let Some(status) = update.status {
            self.status = valid_status(status)?;
        }
        if let Some(retry_after) = update.retry_after {
            self.retry_after = retry_after.filter(|s| *s > 0);
        }
        if let Some(fault) = update.fault {
            self.fault = fault;
        }
        if let Some(ttft) = update.ttft_ms {
            self.ttft_ms = ttft;
        }
        if let Some(chunks) = update.chunks {
            self.chunks = chunks;
        }
        if let Some(delay) = update.chunk_delay_ms {
            self.chunk_delay_ms = delay;
        }
        Ok(())
    }

    /// Returns these defaults overridden by the request's `x-mock-*` headers.
    /// A malformed header value is an error (the mock answers 400 so a typo is not silent).
    pub fn with_headers(mut self, headers: &HeaderMap) -> Result<Self, String> {
        if !headers.keys().any(|k| k.as_str().starts_with("x-mock-")) {
            return Ok(self);
        }
        if let Some(v) = header(headers, "x-mock-status")? {
            self.status = valid_status(parse(v, "x-mock-status")?)?;
        }
        if let Some(v) = header(headers, "x-mock-retry-after")? {
            self.retry_after = Some(parse::<u32>(v, "x-mock-retry-after")?).filter(|s| *s > 0);
        }
        if let Some(v) = header(headers, "x-mock-fault")? {
            self.fault = v.parse()?;
        }
        if let Some(v) = header(headers, "x-mock-ttft-ms")? {
            self.ttft_ms = parse(v, "x-mock-ttft-ms")?;
        }
        if let Some(v) = header(headers, "x-mock-chunks")? {
            self.chunks = parse(v, "x-mock-chunks")?;
        }
        if let Some(v) = header(headers, "x-mock-chunk-delay-ms")? {
            self.chunk_delay_ms = parse(v, "x-mock-chunk-delay-ms")?;
        }
        Ok(self)
    }

    /// Delay before the first byte or chunk.
    pub fn ttft(&self) -> Duration {
        Duration::from_millis(self.ttft_ms)
    }

    /// Delay between chunks.
    pub fn chunk_delay(&self) -> Duration {
        Duration::from_millis(self.chunk_delay_ms)
    }
}

fn valid_status(status: u16) -> Result<u16, String> {
    if (100..=999).contains(&status) && status != 101 {
        Ok(status)
    } else {
        Err(format!("invalid status {status}"))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| format!("{name}: not ASCII")),
    }
}

fn parse<T: FromStr>(value: &str, name: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: invalid value {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_override_defaults() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-status", "503".parse().unwrap());
        headers.insert("x-mock-retry-after", "2".parse().unwrap());
        headers.insert("x-mock-fault", "drop-mid-stream".parse().unwrap());
        headers.insert("x-mock-chunks", "4".parse().unwrap());
        let b = Behaviour::default().with_headers(&headers).unwrap();
        assert_eq!(b.status, 503);
        assert_eq!(b.retry_after, Some(2));
        assert_eq!(b.fault, Fault::DropMidStream);
        assert_eq!(b.chunks, 4);
        assert_eq!(b.ttft_ms, 0);
    }

    #[test]
    fn bad_header_is_an_error() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-fault", "explode".parse().unwrap());
        assert!(Behaviour::default().with_headers(&headers).is_err());
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-ttft-ms", "soon".parse().unwrap());
        assert!(Behaviour::default().with_headers(&headers).is_err());
    }

    #[test]
    fn control_updates_a_subset() {
        let mut b = Behaviour::default();
        let u: ControlUpdate =
            serde_json::from_str(r#"{"status":503,"retry_after":2,"fault":"stall"}"#).unwrap();
        b.apply(&u).unwrap();
        assert_eq!(
            (b.status, b.retry_after, b.fault),
            (503, Some(2), Fault::Stall)
        );
        assert_eq!(b.chunks, 20);
        let u: ControlUpdate = serde_json::from_str(r#"{"retry_after":null}"#).unwrap();
        b.apply(&u).unwrap();
        assert_eq!(b.retry_after, None);
        assert_eq!(b.status, 503);
        assert!(serde_json::from_str::<ControlUpdate>(r#"{"stauts":1}"#).is_err());
    }
}
