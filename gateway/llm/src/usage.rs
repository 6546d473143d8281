//! Token usage as providers report it, and how to find it in OpenAI responses.

use serde::{Deserialize, Serialize};

/// Tokens consumed by one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

impl Usage {
    /// Total tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The `usage` object of an OpenAI response or stream chunk, if it has one.
    ///
    /// Cheap for bodies without usage: a substring check runs before any parsing.
    pub fn from_openai_json(body: &[u8]) -> Option<Self> {
        if !contains(body, b"\"usage\"") {
            return None;
        }
        serde_json::from_slice::<WithUsage>(body)
            .ok()
            .and_then(|w| w.usage)
    }
}

/// `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_from_response_and_chunk() {
        let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
        assert_eq!(
            Usage::from_openai_json(body),
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 5
            })
        );
        assert_eq!(Usage::from_openai_json(br#"{"choices":[]}"#), None);
        assert_eq!(Usage::from_openai_json(br#"{"usage":null}"#), None);
        // embeddings report only prompt tokens
        assert_eq!(
            Usage::from_openai_json(br#"{"usage":{"prompt_tokens":3,"total_tokens":3}}"#),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 0
            })
        );
    }
}
