//! OpenAI-format streams passed through to OpenAI-format clients.
//!
//! Events are forwarded byte for byte. On the way the translator records the answer's id
//! and model (from the first chunk), usage and the finish reasons, and — when the gateway itself added `stream_options.include_usage` —
//! removes the extra usage-only chunk the client never asked for.

use serde::Deserialize;

use super::sse::{SseEvent, SseParser};
use super::{StreamSummary, StreamTranslator};
use crate::usage::contains;
use crate::{LlmError, Usage};

/// Pass-through translator for OpenAI-compatible upstreams.
#[derive(Debug)]
pub struct OpenAiPassthrough {
    parser: SseParser,
    strip_usage_chunk: bool,
    summary: StreamSummary,
    events: Vec<SseEvent>,
    /// The first data chunk was read for id and model.
    identified: bool,
    id: Option<String>,
    model: Option<String>,
    /// One per choice that finished, in arrival order; `finish_index` holds their indexes.
    finish_reasons: Vec<String>,
    finish_index: Vec<u32>,
}

/// The first chunk's identity; nothing else of it is kept.
#[derive(Deserialize)]
struct IdentityProbe {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct ChunkProbe {
    #[serde(default)]
    choices: Option<Vec<ChoiceProbe>>,
    #[serde(default)]
    usage: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ChoiceProbe {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    finish_reason: Option<String>,
}

impl OpenAiPassthrough {
    /// `strip_usage_chunk`: drop chunks that carry only usage (the gateway injected
    /// `include_usage`, the client did not ask for it).
    pub fn new(strip_usage_chunk: bool) -> Self {
        Self {
            parser: SseParser::default(),
            strip_usage_chunk,
            summary: StreamSummary::default(),
            events: Vec::new(),
            identified: false,
            id: None,
            model: None,
            finish_reasons: Vec::new(),
            finish_index: Vec::new(),
        }
    }

    /// Records what a data payload says; returns whether the client should see it.
    fn observe(&mut self, d: &[u8]) -> bool {
        if !self.identified {
            // Once per stream: every chunk repeats the same id and model.
            self.identified = true;
            if let Ok(p) = serde_json::from_slice::<IdentityProbe>(d) {
                self.id = p.id.filter(|s| !s.is_empty());
                self.model = p.model.filter(|s| !s.is_empty());
            }
        }
        // Only chunks that can carry what we look for are parsed.
        let interesting = contains(d, b"\"usage\"")
            || contains(d, b"\"finish_reason\":\"")
            || contains(d, b"\"finish_reason\": \"")
            || contains(d, b"\"error\"");
        if !interesting {
            return true;
        }
        let Ok(c) = serde_json::from_slice::<ChunkProbe>(d) else {
            return true;
        };
        if c.usage.is_some() {
            self.summary.usage = Usage::from_openai_json(d);
        }
        if c.error.is_some() {
            self.summary.error = true;
        }
        let choices = c.choices.unwrap_or_default();
        for ch in &choices {
            if let Some(r) = &ch.finish_reason {
                self.summary.finish_reason = Some(r.clone());
                match self.finish_index.iter().position(|&i| i == ch.index) {
                    Some(at) => self.finish_reasons[at].clone_from(r),
                    None => {
                        self.finish_index.push(ch.index);
                        self.finish_reasons.push(r.clone());
                    }
                }
            }
        }
        !(self.strip_usage_chunk && c.usage.is_some() && choices.is_empty())
    }

    fn forward(&mut self, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        for ev in &events {
            let keep = match &ev.data {
                None => true,
                Some(d) if d.as_slice() == b"[DONE]" => {
                    self.summary.done = true;
                    true
                }
                Some(d) => self.observe(d),
            };
            if keep {
                out.extend_from_slice(&ev.raw);
            }
        }
        // Hand the (empty) buffer back so its capacity is reused.
        events.clear();
        self.events = events;
    }
}

impl StreamTranslator for OpenAiPassthrough {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.parser.feed(input, &mut self.events)?;
        self.forward(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.parser.finish(&mut self.events);
        self.forward(out);
    }

    fn summary(&self) -> &StreamSummary {
        &self.summary
    }

    fn response_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    fn response_model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn finish_reasons(&self) -> &[String] {
        &self.finish_reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &[u8] = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n\
data: [DONE]\n\n";

    fn run(strip: bool, split: usize) -> (Vec<u8>, StreamSummary) {
        let mut t = OpenAiPassthrough::new(strip);
        let mut out = Vec::new();
        t.feed(&UPSTREAM[..split], &mut out).unwrap();
        t.feed(&UPSTREAM[split..], &mut out).unwrap();
        t.finish(&mut out);
        assert_eq!(t.response_id(), Some("c"), "split {split}");
        assert_eq!(t.response_model(), None);
        assert_eq!(t.finish_reasons(), ["stop"], "split {split}");
        (out, t.summary().clone())
    }

    #[test]
    fn records_identity_and_every_choice_finish_reason() {
        let up = b"data: {\"id\":\"chatcmpl-9\",\"model\":\"gpt-4o-mini-2024\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}},{\"index\":1,\"delta\":{\"content\":\"b\"}}]}\n\n\
data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
data: {\"id\":\"chatcmpl-9\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";
        for split in 0..=up.len() {
            let mut t = OpenAiPassthrough::new(false);
            let mut out = Vec::new();
            assert_eq!(t.response_id(), None);
            t.feed(&up[..split], &mut out).unwrap();
            t.feed(&up[split..], &mut out).unwrap();
            t.finish(&mut out);
            assert_eq!(t.response_id(), Some("chatcmpl-9"), "split {split}");
            assert_eq!(t.response_model(), Some("gpt-4o-mini-2024"));
            assert_eq!(t.finish_reasons(), ["length", "stop"]);
            assert_eq!(t.summary().finish_reason.as_deref(), Some("stop"));
        }
    }

    #[test]
    fn keeps_stream_verbatim_when_client_asked_for_usage() {
        for split in 0..=UPSTREAM.len() {
            let (out, s) = run(false, split);
            assert_eq!(out, UPSTREAM, "split {split}");
            assert_eq!(
                s.usage,
                Some(Usage {
                    prompt_tokens: 9,
                    completion_tokens: 2,
                    ..Usage::default()
                })
            );
            assert_eq!(s.finish_reason.as_deref(), Some("stop"));
            assert!(s.done);
        }
    }

    #[test]
    fn strips_injected_usage_chunk_but_records_usage() {
        for split in 0..=UPSTREAM.len() {
            let (out, s) = run(true, split);
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains("usage"), "split {split}");
            assert!(text.ends_with("data: [DONE]\n\n"));
            assert_eq!(text.matches("data: ").count(), 3);
            assert_eq!(s.usage.map(|u| u.total()), Some(11));
        }
    }
}
