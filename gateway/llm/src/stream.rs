//! Streaming: a push parser for server-sent events and the translators that turn a
//! provider's stream into what the client asked for.
//!
//! Both are fed whatever bytes the network delivered (`feed(&[u8])`) and return whole
//! events only; state lives in the value, so they fit Pingora's chunk-at-a-time flow and
//! the edge worker's `ReadableStream` alike.

pub mod chain;
pub mod chunks;
pub mod eventstream;
pub mod openai;
pub mod sse;

use crate::Usage;

/// What a translator has learnt from the stream so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Usage reported by the provider (zero until its usage event arrives).
    pub usage: Option<Usage>,
    /// The final `finish_reason` seen, if any.
    pub finish_reason: Option<String>,
    /// The provider's terminal marker (`[DONE]` or equivalent) arrived.
    pub done: bool,
    /// The provider sent an error event in the stream.
    pub error: bool,
}

/// Turns one provider's streamed bytes into client-format SSE bytes.
///
/// Contract: `feed` may be called with any split of the stream (down to single bytes) and
/// produces the same concatenated output as one call with the whole stream; `finish` is
/// called once when the upstream body ends and flushes anything held back.
pub trait StreamTranslator: Send {
    /// Consumes the next bytes from the provider and appends client bytes to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), crate::LlmError>;
    /// The upstream ended; appends any remaining client bytes to `out`.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// What has been observed so far.
    fn summary(&self) -> &StreamSummary;
    /// The answer's id as the client sees it (OpenAI `id` of the chunks), once the stream
    /// named it; `None` before that or when the format has none. Borrowed: reading it
    /// costs nothing per chunk.
    fn response_id(&self) -> Option<&str> {
        None
    }
    /// The model the answer's chunks name, once known.
    fn response_model(&self) -> Option<&str> {
        None
    }
    /// Every choice's finish reason seen so far, in the order they arrived (one entry per
    /// choice; single-choice streams: the summary's `finish_reason`).
    fn finish_reasons(&self) -> &[String] {
        self.summary().finish_reason.as_slice()
    }
}
