//! Two translators in a row: e.g. Bedrock → OpenAI chunks → Anthropic events, for a
//! `/v1/messages` client served by Bedrock.

use super::{StreamSummary, StreamTranslator};
use crate::LlmError;

/// Feeds the first translator's output into the second. The summary (usage, finish
/// reason, end marker) is the first's: it is the one that read the provider.
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
}
