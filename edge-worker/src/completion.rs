//! One finished chat answer, however it arrived, and how to replay it.
//!
//! The edge stores answers (session history, cache entries) in one shape, [`Completion`],
//! assembled either from a non-streamed OpenAI body or from an OpenAI SSE stream as it
//! passes through ([`Accumulator`]). A cached [`Completion`] is replayed as a JSON body
//! or as an SSE stream, whichever the client asked for.
//!
//! Only plain single-choice text answers are assembled; anything else (tool calls, `n > 1`,
//! an error event, a stream cut before its finish reason) yields `None`, so it is neither
//! cached nor appended to a session. Pure; fit for `gateway/llm`.

use datamind_llm::Usage;
use datamind_llm::stream::sse::{SseEvent, SseParser};
use serde::Deserialize;
use serde_json::{Value, json};

/// A complete single-choice text answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    /// The upstream's completion id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name shown to the client.
    pub model: String,
    /// The assistant's text.
    pub content: String,
    /// Why generation stopped.
    pub finish_reason: String,
    /// Tokens, when the upstream reported them.
    pub usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    id: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    delta: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    function_call: Option<serde::de::IgnoredAny>,
}

impl Completion {
    /// Reads a non-streamed `chat.completion` body.
    pub fn from_openai_json(body: &[u8]) -> Option<Self> {
        let b: Body = serde_json::from_slice(body).ok()?;
        if b.error.is_some() || b.choices.len() != 1 {
            return None;
        }
        let choice = b.choices.into_iter().next()?;
        let msg = choice.message?;
        if msg.tool_calls.is_some() || msg.function_call.is_some() {
            return None;
        }
        Some(Self {
            id: b.id,
            created: b.created,
            model: b.model,
            content: msg.content.unwrap_or_default(),
            finish_reason: choice.finish_reason?,
            usage: b.usage,
        })
    }

    fn usage_json(&self) -> Value {
        let u = self.usage.unwrap_or_default();
        json!({
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total(),
        })
    }

    /// The `chat.completion` JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let v = json!({
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": self.content},
                         "logprobs": null, "finish_reason": self.finish_reason}],
            "usage": self.usage_json(),
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The same answer as an OpenAI SSE stream: a role+content chunk, a finish chunk, a
    /// usage chunk when the client asked for one, and `[DONE]`.
    pub fn to_sse(&self, include_usage: bool) -> Vec<u8> {
        let chunk = |choices: Value, usage: Option<Value>| {
            let mut v = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": choices,
            });
            if let Some(u) = usage {
                v["usage"] = u;
            }
            let mut out = b"data: ".to_vec();
            out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
            out.extend_from_slice(b"\n\n");
            out
        };
        let mut out = chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": self.content},
                    "finish_reason": null}]),
            None,
        );
        out.extend(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]),
            None,
        ));
        if include_usage {
            out.extend(chunk(json!([]), Some(self.usage_json())));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        out
    }
}

/// Assembles a [`Completion`] from OpenAI SSE bytes fed in any split.
#[derive(Debug, Default)]
pub struct Accumulator {
    parser: SseParser,
    events: Vec<SseEvent>,
    c: Completion,
    finished: bool,
    broken: bool,
}

impl Accumulator {
    /// A fresh accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes the next client-format bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        if self.parser.feed(bytes, &mut self.events).is_err() {
            self.broken = true;
        }
        self.drain();
    }

    fn drain(&mut self) {
        for ev in std::mem::take(&mut self.events) {
            let Some(data) = ev.data else { continue };
            if data.as_slice() == b"[DONE]" {
                continue;
            }
            let Ok(b) = serde_json::from_slice::<Body>(&data) else {
                self.broken = true;
                continue;
            };
            if b.error.is_some() {
                self.broken = true;
            }
            if self.c.id.is_empty() {
                self.c.id = b.id;
                self.c.created = b.created;
                self.c.model = b.model;
            }
            if let Some(u) = b.usage {
                self.c.usage = Some(u);
            }
            for ch in b.choices {
                if ch.index != 0 {
                    self.broken = true;
                    continue;
                }
                if let Some(d) = ch.delta {
                    if d.tool_calls.is_some() || d.function_call.is_some() {
                        self.broken = true;
                    }
                    if let Some(t) = d.content {
                        self.c.content.push_str(&t);
                    }
                }
                if let Some(r) = ch.finish_reason {
                    self.c.finish_reason = r;
                    self.finished = true;
                }
            }
        }
    }

    /// The stream ended. `usage` is what the relay's translator saw (the client-facing
    /// bytes may have had the usage chunk stripped). `None` unless the answer is complete.
    pub fn finish(mut self, usage: Option<Usage>) -> Option<Completion> {
        self.parser.finish(&mut self.events);
        self.drain();
        if self.broken || !self.finished {
            return None;
        }
        if self.c.usage.is_none() {
            self.c.usage = usage;
        }
        Some(self.c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Completion {
        Completion {
            id: "chatcmpl-1".into(),
            created: 7,
            model: "m".into(),
            content: "Hello \"edge\"\n".into(),
            finish_reason: "stop".into(),
            usage: Usage::from_openai_json(
                br#"{"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
            ),
        }
    }

    #[test]
    fn json_round_trip() {
        let c = sample();
        assert_eq!(Completion::from_openai_json(&c.to_json()), Some(c));
    }

    #[test]
    fn sse_replay_reassembles_at_every_split() {
        let c = sample();
        for include_usage in [false, true] {
            let sse = c.to_sse(include_usage);
            assert!(sse.ends_with(b"data: [DONE]\n\n"));
            for split in 0..=sse.len() {
                let mut a = Accumulator::new();
                a.feed(&sse[..split]);
                a.feed(&sse[split..]);
                let hint = if include_usage { None } else { c.usage };
                assert_eq!(a.finish(hint).as_ref(), Some(&c), "split {split}");
            }
        }
    }

    #[test]
    fn incomplete_or_unusual_answers_are_not_assembled() {
        let cut =
            b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        let mut a = Accumulator::new();
        a.feed(cut);
        assert_eq!(a.finish(None), None);

        let tools = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[]},\"finish_reason\":\"tool_calls\"}]}\n\n";
        let mut a = Accumulator::new();
        a.feed(tools);
        assert_eq!(a.finish(None), None);

        let err = b"data: {\"error\":{\"message\":\"boom\"}}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        let mut a = Accumulator::new();
        a.feed(err);
        assert_eq!(a.finish(None), None);

        assert_eq!(
            Completion::from_openai_json(br#"{"error":{"message":"x"}}"#),
            None
        );
        assert_eq!(
            Completion::from_openai_json(
                br#"{"choices":[{"index":0,"message":{"content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}"#
            ),
            None
        );
    }
}
