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
    /// Prompt tokens served from the provider's prompt cache (included in `prompt_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (included in `prompt_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a whole OpenAI-format answer says about itself (for the trace), read in the same
/// pass as its usage by [`Usage::with_facts_from_openai_json`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    /// The answer's `id`.
    pub id: Option<String>,
    /// The answer's `model`.
    pub model: Option<String>,
    /// Every choice's `finish_reason`, in order.
    pub finish_reasons: Vec<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<AnswerChoice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct AnswerChoice {
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// OpenAI's usage object, with its cached-token detail.
#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    /// Our extension, written by [`Usage::to_openai_json`] for Anthropic/Bedrock upstreams.
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cache_read_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_creation_tokens: u.cache_creation_input_tokens.unwrap_or(0),
        }
    }
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
            .map(Usage::from)
    }

    /// Usage and the answer's id, model and finish reasons from ONE parse of an
    /// OpenAI-format answer. Facts are `None` when the body does not have the answer's
    /// shape; usage then comes from [`Usage::from_openai_json`], as without facts.
    pub fn with_facts_from_openai_json(body: &[u8]) -> (Option<Self>, Option<AnswerFacts>) {
        match serde_json::from_slice::<Answer>(body) {
            Ok(a) => (
                a.usage.map(Usage::from),
                Some(AnswerFacts {
                    id: a.id,
                    model: a.model,
                    finish_reasons: a
                        .choices
                        .into_iter()
                        .filter_map(|c| c.finish_reason)
                        .collect(),
                }),
            ),
            Err(_) => (Self::from_openai_json(body), None),
        }
    }

    /// Usage from a provider that counts cached prompt tokens apart from the rest (Anthropic,
    /// Bedrock): `prompt_tokens` becomes the sum, as OpenAI reports it.
    pub fn from_split(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> Self {
        Self {
            prompt_tokens: input + cache_read + cache_creation,
            completion_tokens: output,
            cache_read_tokens: cache_read,
            cache_creation_tokens: cache_creation,
        }
    }

    /// The OpenAI `usage` object for a response or the final stream chunk.
    pub fn to_openai_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total(),
        });
        if self.cache_read_tokens > 0 || self.cache_creation_tokens > 0 {
            v["prompt_tokens_details"] =
                serde_json::json!({"cached_tokens": self.cache_read_tokens});
        }
        if self.cache_creation_tokens > 0 {
            v["cache_creation_input_tokens"] = self.cache_creation_tokens.into();
        }
        v
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
    fn one_parse_gives_usage_and_the_answer_facts() {
        let body = br#"{"id":"chatcmpl-1","model":"m-0613","choices":[{"message":{"content":"hi"},"finish_reason":"stop"},{"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        let (usage, facts) = Usage::with_facts_from_openai_json(body);
        assert_eq!(usage, Usage::from_openai_json(body));
        assert_eq!(
            facts,
            Some(AnswerFacts {
                id: Some("chatcmpl-1".into()),
                model: Some("m-0613".into()),
                finish_reasons: vec!["stop".into(), "length".into()],
            })
        );
        // Not the answer's shape: usage as before, no facts.
        let odd = br#"{"id":7,"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        assert_eq!(
            Usage::with_facts_from_openai_json(odd),
            (Usage::from_openai_json(odd), None)
        );
        assert_eq!(
            Usage::with_facts_from_openai_json(b"not json"),
            (None, None)
        );
    }

    #[test]
    fn reads_usage_from_response_and_chunk() {
        let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
        assert_eq!(
            Usage::from_openai_json(body),
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 5,
                ..Usage::default()
            })
        );
        assert_eq!(Usage::from_openai_json(br#"{"choices":[]}"#), None);
        assert_eq!(Usage::from_openai_json(br#"{"usage":null}"#), None);
        // embeddings report only prompt tokens
        assert_eq!(
            Usage::from_openai_json(br#"{"usage":{"prompt_tokens":3,"total_tokens":3}}"#),
            Some(Usage {
                prompt_tokens: 3,
                ..Usage::default()
            })
        );
        let cached = br#"{"usage":{"prompt_tokens":30,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":20}}}"#;
        assert_eq!(
            Usage::from_openai_json(cached).map(|u| (u.prompt_tokens, u.cache_read_tokens)),
            Some((30, 20))
        );
    }
}
