//! Token usage as providers report it, and how to find it in OpenAI responses.
//!
//! OpenAI answers pass through the gateway untouched; their usage (and, for the trace, id,
//! model and finish reasons) is read with `json_scan`, which walks the top level and skips
//! everything else without building it. The readers keep the results serde gave when these
//! were `#[serde(default)]` structs, down to invalid bodies (`usage/tests.rs` compares).

use serde::{Deserialize, Serialize};

use crate::json_scan::{ScanError, Scanner, Strings};

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

/// serde's field order for the answer (a JSON array gives the fields in this order).
const ANSWER_FIELDS: &[&str] = &["id", "model", "choices", "usage"];
const CHOICE_FIELDS: &[&str] = &["finish_reason"];
/// OpenAI's usage object; `cache_creation_input_tokens` is our extension, written by
/// [`Usage::to_openai_json`] for Anthropic/Bedrock upstreams.
const USAGE_FIELDS: &[&str] = &[
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cache_creation_input_tokens",
];
const DETAILS_FIELDS: &[&str] = &["cached_tokens"];

// The readers below accept and reject exactly what serde_json did when these bodies were
// deserialized into `#[serde(default)]` structs (`{"usage": Option<OpenAiUsage>}` and the
// answer with `id`, `model`, `choices[].finish_reason`, `usage`): unknown members skipped
// without checking their strings, known strings checked, repeated known fields rejected, a
// struct also accepted as an array of its fields. `usage/tests.rs` holds those structs and
// compares.

/// `{"usage": …}`: the whole body must be valid. Also where the usage value starts.
fn scan_usage(body: &[u8]) -> Result<(Option<Usage>, usize), ScanError> {
    let mut s = Scanner::new(body, Strings::Unchecked);
    let (mut usage, mut at) = (None, 0);
    s.read_struct(&["usage"], |s, _| {
        at = s.pos();
        usage = read_usage(s)?;
        Ok(())
    })?;
    s.finish()?;
    Ok((usage, at))
}

/// The bytes before `at` end in `"usage"` and a colon, as they do when the usage member's
/// key is written without escapes: then the body holds `"usage"`, no search needed.
fn after_literal_usage_key(body: &[u8], at: usize) -> bool {
    body[..at]
        .trim_ascii_end()
        .strip_suffix(b":")
        .is_some_and(|key| key.trim_ascii_end().ends_with(b"\"usage\""))
}

/// The answer's usage and facts: the whole body must be valid.
fn scan_answer(body: &[u8]) -> Result<(Option<Usage>, AnswerFacts), ScanError> {
    let mut s = Scanner::new(body, Strings::Unchecked);
    let (mut usage, mut facts) = (None, AnswerFacts::default());
    s.read_struct(ANSWER_FIELDS, |s, field| {
        match field {
            0 => facts.id = read_opt_string(s)?,
            1 => facts.model = read_opt_string(s)?,
            2 => {
                s.begin_array()?;
                let mut first = true;
                while s.next_element(&mut first)? {
                    s.read_struct(CHOICE_FIELDS, |s, _| {
                        facts.finish_reasons.extend(read_opt_string(s)?);
                        Ok(())
                    })?;
                }
            }
            _ => usage = read_usage(s)?,
        }
        Ok(())
    })?;
    s.finish()?;
    Ok((usage, facts))
}

/// `null` or OpenAI's usage object.
fn read_usage(s: &mut Scanner<'_>) -> Result<Option<Usage>, ScanError> {
    if s.read_null()? {
        return Ok(None);
    }
    let mut u = Usage::default();
    s.read_struct(USAGE_FIELDS, |s, field| {
        match field {
            0 => u.prompt_tokens = s.read_u64()?,
            1 => u.completion_tokens = s.read_u64()?,
            2 => {
                if !s.read_null()? {
                    s.read_struct(DETAILS_FIELDS, |s, _| {
                        u.cache_read_tokens = read_opt_u64(s)?.unwrap_or(0);
                        Ok(())
                    })?;
                }
            }
            _ => u.cache_creation_tokens = read_opt_u64(s)?.unwrap_or(0),
        }
        Ok(())
    })?;
    Ok(Some(u))
}

fn read_opt_u64(s: &mut Scanner<'_>) -> Result<Option<u64>, ScanError> {
    if s.read_null()? {
        return Ok(None);
    }
    s.read_u64().map(Some)
}

fn read_opt_string(s: &mut Scanner<'_>) -> Result<Option<String>, ScanError> {
    if s.read_null()? {
        return Ok(None);
    }
    s.read_str().map(|t| Some(t.into_owned()))
}

impl Usage {
    /// Total tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// The `usage` object of an OpenAI response or stream chunk, if it has one.
    ///
    /// Only `usage` is read. When it is the top-level object's last member (as OpenAI
    /// writes it) it is found from the end and nothing else is scanned; otherwise the whole
    /// body is scanned, checked and not built. As always, a body
    /// must hold the bytes `"usage"` to have usage (so `{"us\u0061ge":…}` has none): the
    /// member's own key shows it, or else the body is searched.
    pub fn from_openai_json(body: &[u8]) -> Option<Self> {
        if let Some(usage) = quick::usage_at_tail(body) {
            return usage;
        }
        let (usage, at) = scan_usage(body).ok()?;
        let usage = usage?;
        (after_literal_usage_key(body, at) || contains(body, b"\"usage\"")).then_some(usage)
    }

    /// Usage and the answer's id, model and finish reasons from ONE scan of an
    /// OpenAI-format answer. Facts are `None` when the body does not have the answer's
    /// shape; usage then comes from [`Usage::from_openai_json`], as without facts.
    pub fn with_facts_from_openai_json(body: &[u8]) -> (Option<Self>, Option<AnswerFacts>) {
        if let Some((usage, facts)) = quick::answer(body) {
            return (usage, Some(facts));
        }
        match scan_answer(body) {
            Ok((usage, facts)) => (usage, Some(facts)),
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

pub(crate) use crate::json_scan::contains;

mod facts;
mod quick;

pub use facts::FactsRef;
#[cfg(test)]
mod tests;
