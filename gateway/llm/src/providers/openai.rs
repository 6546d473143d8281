//! OpenAI-compatible providers: OpenAI itself, vLLM, Ollama, Workers AI's `/v1` endpoint.

use std::borrow::Cow;

use super::{Adapter, Headers, Operation, RequestPath, ResponseMeta, Target, UpstreamRequest};
use crate::stream::StreamTranslator;
use crate::stream::openai::OpenAiPassthrough;
use crate::{LlmError, ParsedRequest, Usage};

/// The adapter for OpenAI's wire format: the body passes through with `model` rewritten.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiAdapter;

impl Adapter for OpenAiAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        let path = RequestPath {
            prefix: target.base_path,
            rest: Cow::Borrowed(op.openai_path()),
        };
        Ok(pass_through(op, req, target, path))
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
}

/// The OpenAI request at `path`: everything but the body borrowed or static, so the only
/// allocation is the rendered body (and the bearer value, when the caller did not prebuild
/// it). Workers AI's OpenAI-compatible endpoint shares it with its own path.
pub(crate) fn pass_through<'a>(
    op: Operation,
    req: &ParsedRequest,
    target: &Target<'a>,
    path: RequestPath<'a>,
) -> UpstreamRequest<'a> {
    let mut headers = Headers::new();
    headers.push(("host", Cow::Borrowed(target.host)));
    headers.push(("content-type", Cow::Borrowed("application/json")));
    if req.stream {
        headers.push(("accept", Cow::Borrowed("text/event-stream")));
    }
    if let Some(auth) = target.api_key_as_bearer() {
        headers.push(("authorization", auth));
    }
    UpstreamRequest {
        method: "POST",
        path,
        headers,
        extra_headers: target.extra_headers,
        body: req.render(target.model, op.can_stream()),
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
        assert_eq!(up.path.to_string(), "/v1/chat/completions");
        assert_eq!(
            up.all_headers().collect::<Vec<_>>(),
            [
                ("host", "api.example.com"),
                ("content-type", "application/json"),
                ("accept", "text/event-stream"),
                ("authorization", "Bearer sk-up"),
                ("x-team", "a"),
            ]
        );
        assert_eq!(
            String::from_utf8(up.body).unwrap(),
            r#"{"model":"gpt-real","stream":true,"messages":[],"seed":7,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn borrows_everything_but_the_body_from_the_target() {
        let req =
            ParsedRequest::parse(Bytes::from_static(br#"{"model":"a","messages":[]}"#)).unwrap();
        let t = Target {
            base_path: "/v1",
            host: "h",
            model: "m",
            api_key: Some("k"),
            api_key_bearer: Some("Bearer k"),
            ..Target::default()
        };
        let up = OpenAiAdapter
            .build_request(Operation::Embeddings, &req, &t)
            .unwrap();
        assert_eq!(up.path.pieces(), ["/v1", "/embeddings"]);
        assert!(matches!(up.path.rest, Cow::Borrowed(_)));
        assert!(
            up.headers
                .iter()
                .all(|(_, v)| matches!(v, Cow::Borrowed(_)))
        );
        assert!(!up.headers.spilled());
        assert_eq!(up.header("authorization"), Some("Bearer k"));
        // Without a prebuilt value the same header is built.
        let t = Target {
            api_key_bearer: None,
            ..t
        };
        let built = OpenAiAdapter
            .build_request(Operation::Embeddings, &req, &t)
            .unwrap();
        assert_eq!(built, up);
    }

    #[test]
    fn request_path_compares_and_prints_whole() {
        let p = RequestPath {
            prefix: "/base",
            rest: Cow::Borrowed("/v1/x?y=1"),
        };
        assert_eq!(p, "/base/v1/x?y=1");
        assert_ne!(p, "/base/v1/x");
        assert_ne!(p, "/bas");
        assert_eq!(p.to_string(), "/base/v1/x?y=1");
        assert_eq!(p.len(), 14);
        assert_eq!(RequestPath::whole("/a"), "/a");
        assert!(RequestPath::default().is_empty());
    }
}
