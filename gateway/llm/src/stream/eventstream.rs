//! A push decoder for the binary AWS event-stream framing (`application/vnd.amazon.eventstream`,
//! Bedrock's ConverseStream), built on `aws-smithy-eventstream`'s frame decoder.
//!
//! Each frame is a 12-byte prelude (total length, headers length, CRC), headers, payload and
//! a message CRC; a chunk boundary may fall anywhere. Bad CRCs are errors.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::BytesMut;

use crate::LlmError;

/// The largest frame accepted (AWS's own limit is 16 MiB).
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// `:message-type`: `event`, `exception` or `error`.
    pub message_type: String,
    /// `:event-type`, or `:exception-type` / `:error-code` for failures.
    pub event_type: String,
    /// The payload (JSON for Bedrock).
    pub payload: Vec<u8>,
}

/// Incremental decoder; feed it bytes in any split.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    frames: MessageFrameDecoder,
    buf: BytesMut,
    in_frame: bool,
}

impl EventStreamDecoder {
    /// Consumes `input` and appends every message it completes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<EventMessage>) -> Result<(), LlmError> {
        self.buf.extend_from_slice(input);
        loop {
            // Once the frame decoder has taken a prelude, `buf` starts mid-frame.
            if !self.in_frame && self.buf.len() >= 4 {
                let total =
                    u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if total as usize > MAX_FRAME_BYTES {
                    return Err(LlmError::EventTooLarge {
                        limit: MAX_FRAME_BYTES,
                    });
                }
            }
            let had_prelude = self.in_frame || self.buf.len() >= 12;
            let frame = self
                .frames
                .decode_frame(&mut self.buf)
                .map_err(|e| LlmError::InvalidStream(e.to_string()))?;
            let DecodedFrame::Complete(m) = frame else {
                self.in_frame = had_prelude;
                return Ok(());
            };
            self.in_frame = false;
            let header = |name: &str| {
                m.headers()
                    .iter()
                    .find(|h| h.name().as_str() == name)
                    .and_then(|h| h.value().as_string().ok())
                    .map(|s| s.as_str().to_owned())
            };
            let message_type = header(":message-type").unwrap_or_else(|| "event".into());
            let event_type = header(":event-type")
                .or_else(|| header(":exception-type"))
                .or_else(|| header(":error-code"))
                .unwrap_or_default();
            let mut payload = m.payload().to_vec();
            if payload.is_empty()
                && let Some(msg) = header(":error-message")
            {
                payload =
                    serde_json::to_vec(&serde_json::json!({ "message": msg })).unwrap_or_default();
            }
            out.push(EventMessage {
                message_type,
                event_type,
                payload,
            });
        }
    }

    /// Bytes received that do not yet form a whole frame (a truncated stream if non-zero at
    /// the end).
    pub fn pending(&self) -> usize {
        self.buf.len() + if self.in_frame { 12 } else { 0 }
    }
}

/// Encodes one event frame (for tests and the mock upstream).
pub fn encode_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// Encodes one exception frame, e.g. `throttlingException` (for tests and the mock upstream).
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

fn encode_frame(string_headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    // Layout: prelude (total, headers len, prelude CRC), headers, payload, message CRC.
    let mut headers = Vec::new();
    for &(name, value) in string_headers {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7); // string
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// CRC-32 (IEEE), bitwise: only used to encode test and mock frames.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

    /// Frames written by the AWS library, decoded by ours at every split.
    #[test]
    fn decodes_aws_written_frames_at_every_split() {
        let mut wire = Vec::new();
        for (t, p) in [
            ("messageStart", r#"{"role":"assistant"}"#),
            ("messageStop", r#"{"stopReason":"end_turn"}"#),
        ] {
            let m = Message::new(p.as_bytes().to_vec())
                .add_header(Header::new(
                    ":event-type",
                    HeaderValue::String(t.to_owned().into()),
                ))
                .add_header(Header::new(
                    ":message-type",
                    HeaderValue::String("event".to_owned().into()),
                ));
            aws_smithy_eventstream::frame::write_message_to(&m, &mut wire).unwrap();
        }
        // our encoder agrees with the library on the layout
        let ours = encode_event("messageStart", br#"{"role":"assistant"}"#);
        let m = aws_smithy_eventstream::frame::read_message_from(&mut &ours[..]).unwrap();
        assert_eq!(m.payload().as_ref(), br#"{"role":"assistant"}"#);
        for split in 0..=wire.len() {
            let mut d = EventStreamDecoder::default();
            let mut out = Vec::new();
            d.feed(&wire[..split], &mut out).unwrap();
            d.feed(&wire[split..], &mut out).unwrap();
            assert_eq!(out.len(), 2, "split {split}");
            assert_eq!(out[1].event_type, "messageStop");
            assert_eq!(out[0].payload, br#"{"role":"assistant"}"#);
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn rejects_a_corrupted_frame() {
        let mut f = encode_event("messageStart", b"{}");
        let n = f.len();
        f[n - 6] ^= 1;
        let mut out = Vec::new();
        assert!(matches!(
            EventStreamDecoder::default().feed(&f, &mut out),
            Err(LlmError::InvalidStream(_))
        ));
    }
}
