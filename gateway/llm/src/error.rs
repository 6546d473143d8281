//! The crate's one error type.

/// What can go wrong while reading or translating LLM traffic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LlmError {
    /// The body is not valid JSON, or not a JSON object.
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    /// A required field is missing or has the wrong type.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// The offending top-level field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The upstream stream is not in the provider's framing (e.g. a bad event-stream CRC).
    #[error("invalid upstream stream: {0}")]
    InvalidStream(String),
    /// A placement rule does not compile or names something that does not exist.
    #[error("{path}: {message}")]
    InvalidPolicy {
        /// Where, e.g. `rules[1].filter`.
        path: String,
        /// What is wrong (with `line:column` inside an expression).
        message: String,
    },
    /// A streamed event grew past the parser's limit without ending.
    #[error("stream event larger than {limit} bytes")]
    EventTooLarge {
        /// The configured maximum event size.
        limit: usize,
    },
}

impl LlmError {
    /// The request parameter the error is about, for the OpenAI error body's `param`.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Self::InvalidField { field, .. } => Some(field),
            _ => None,
        }
    }
}
