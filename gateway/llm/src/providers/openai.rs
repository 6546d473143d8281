//! OpenAI-compatible providers: OpenAI itself, vLLM, Ollama, Workers AI's `/v1` endpoint.

use super::{Adapter, Operation, ResponseMeta, Target, UpstreamRequest, concat};
use crate::stream::StreamTranslator;
use crate::stream::openai::OpenAiPassthrough;
use crate::usage::AnswerFacts;
use crate::{LlmError, ParsedRequest, Usage};

/// The adapter for OpenAI's wire format: the body passes through with `model` rewritten.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiAdapter;

impl Adapter for OpenAiAdapter {
    fn build_request(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'_>,
    ) -> Result<UpstreamRequest, LlmError> {
        let mut headers = Vec::with_capacity(4 + target.extra_headers.len());
        headers.push(("host".to_owned(), target.host.to_owned()));
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        if req.stream {
            headers.push(("accept".to_owned(), "text/event-stream".to_owned()));
        }
        if let Some(key) = target.api_key {
            headers.push(("authorization".to_owned(), concat(&["Bearer ", key])));
        }
        headers.extend(target.extra_headers.iter().cloned());
        Ok(UpstreamRequest {
            method: "POST",
            path: concat(&[target.base_path, op.openai_path()]),
            headers,
            body: req.render(target.model, op.can_stream()),
        })
    }

    fn stream_translator_with(
        &self,
        _op: Operation,
        req: &ParsedRequest,
        _meta: &ResponseMeta<'_>,
    ) -> Box<dyn StreamTranslator> {
        Box::new(OpenAiPassthrough::new(req.usage_injected()))
    }

    fn translate_response_with(
        &self,
        _op: Operation,
        body: Vec<u8>,
        _meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        let usage = Usage::from_openai_json(&body);
        (body, usage)
    }

    fn translate_response_with_facts(
        &self,
        _op: Operation,
        body: Vec<u8>,
        _meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>, Option<AnswerFacts>) {
        // The body passes through: one parse gives usage and the trace's facts.
        let (usage, facts) = Usage::with_facts_from_openai_json(&body);
        (body, usage, facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn builds_authenticated_request_with_rewritten_model() {
        let req = ParsedRequest::parse(Bytes::from_static(
            br#"{"model":"alias","stream":true,"messages":[],"seed":7}"#,
        ))
        .unwrap();
        let extra = [("x-team".to_owned(), "a".to_owned())];
        let t = Target {
            base_path: "/v1",
            host: "api.example.com",
            model: "gpt-real",
            api_key: Some("sk-up"),
            extra_headers: &extra,
            ..Target::default()
        };
        let up = OpenAiAdapter
            .build_request(Operation::ChatCompletions, &req, &t)
            .unwrap();
        assert_eq!(up.path, "/v1/chat/completions");
        assert!(
            up.headers
                .contains(&("authorization".into(), "Bearer sk-up".into()))
        );
        assert!(up.headers.contains(&("x-team".into(), "a".into())));
        assert_eq!(
            String::from_utf8(up.body).unwrap(),
            r#"{"model":"gpt-real","stream":true,"messages":[],"seed":7,"stream_options":{"include_usage":true}}"#
        );
    }
}
