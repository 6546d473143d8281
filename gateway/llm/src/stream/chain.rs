//! Two translators in a row: e.g. Bedrock → OpenAI chunks → Anthropic events, for a
//! `/v1/messages` client served by Bedrock.

use super::{StreamSummary, StreamTranslator};
use crate::LlmError;

/// Feeds the first translator's output into the second. The summary (usage, finish
/// reason, end marker), response id and model are the first's: it is the one that read
/// the provider.
pub struct Chain {
    first: Box<dyn StreamTranslator>,
    second: Box<dyn StreamTranslator>,
    mid: Vec<u8>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").finish_non_exhaustive()
    }
}

impl Chain {
    /// `first` reads the provider; `second` writes for the client.
    pub fn new(first: Box<dyn StreamTranslator>, second: Box<dyn StreamTranslator>) -> Self {
        Self {
            first,
            second,
            mid: Vec::new(),
        }
    }
}

impl StreamTranslator for Chain {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LlmError> {
        self.mid.clear();
        self.first.feed(input, &mut self.mid)?;
        if !self.mid.is_empty() {
            self.second.feed(&self.mid, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.mid.clear();
        self.first.finish(&mut self.mid);
        if !self.mid.is_empty() && self.second.feed(&self.mid, out).is_err() {
            self.mid.clear();
        }
        self.second.finish(out);
    }

    fn summary(&self) -> &StreamSummary {
        self.first.summary()
    }

    fn response_id(&self) -> Option<&str> {
        self.first.response_id()
    }

    fn response_model(&self) -> Option<&str> {
        self.first.response_model()
    }

    fn finish_reasons(&self) -> &[String] {
        self.first.finish_reasons()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::anthropic::MessagesStream;
    use crate::providers::ResponseMeta;
    use crate::providers::anthropic::AnthropicStream;

    /// An Anthropic client served by an Anthropic upstream through the OpenAI middle format:
    /// the tool call's id, name and arguments survive both translations at every split.
    #[test]
    fn anthropic_to_openai_to_anthropic_keeps_tool_calls() {
        let up = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"lookup\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"rust\\\"}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        )
        .as_bytes();
        let meta = ResponseMeta {
            created: 1,
            id: "x",
            model: "m",
        };
        let run = |split: usize| {
            let mut c = Chain::new(
                Box::new(AnthropicStream::new(&meta, true)),
                Box::new(MessagesStream::new("claude-client", 3)),
            );
            let mut out = Vec::new();
            c.feed(&up[..split], &mut out).unwrap();
            c.feed(&up[split..], &mut out).unwrap();
            c.finish(&mut out);
            (String::from_utf8(out).unwrap(), c.summary().clone())
        };
        let (whole, summary) = run(up.len());
        assert!(whole.contains(r#""id":"toolu_9","input":{},"name":"lookup","type":"tool_use""#));
        let args: String = whole
            .split("\"partial_json\":\"")
            .skip(1)
            .map(|s| s.split("\",\"type\"").next().unwrap_or(""))
            .collect();
        assert_eq!(args, r#"{\"q\": \"rust\"}"#);
        assert!(whole.contains(r#""stop_reason":"tool_use""#));
        assert!(
            whole.contains(r#""cache_read_input_tokens":5,"input_tokens":10,"output_tokens":7"#)
        );
        assert!(whole.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        assert!(summary.done);
        assert_eq!(summary.usage.map(|u| u.prompt_tokens), Some(15));
        let mut c = Chain::new(
            Box::new(AnthropicStream::new(&meta, true)),
            Box::new(MessagesStream::new("claude-client", 3)),
        );
        assert_eq!(c.response_id(), Some("x"));
        c.feed(up, &mut Vec::new()).unwrap();
        assert_eq!(c.response_id(), Some("msg_1"));
        assert_eq!(c.response_model(), Some("claude"));
        assert_eq!(c.finish_reasons(), ["tool_calls"]);
        for split in 0..=up.len() {
            assert_eq!(run(split).0, whole, "split {split}");
        }
    }
}
