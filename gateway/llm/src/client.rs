//! Client-facing APIs other than OpenAI's, translated to and from OpenAI's.

pub mod anthropic;
