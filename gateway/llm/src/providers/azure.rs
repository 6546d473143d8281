//! Azure OpenAI: OpenAI's wire format at deployment URLs.
//!
//! `POST {base}/openai/deployments/{model}/chat/completions?api-version={v}` (also
//! `/completions`, `/embeddings`), where `model` is the deployment name and `v` the target's
//! `api_version` (default [`DEFAULT_API_VERSION`]). A base path already ending in `/openai`
//! is not doubled. Auth: an Entra ID token (`bearer_token`) as `Authorization: Bearer`, else
//! the `api-key` header. Bodies and streams are OpenAI's, so answers pass through.

use super::openai::OpenAiAdapter;
use std::borrow::Cow;

use super::{
    Adapter, Headers, Operation, RequestPath, ResponseMeta, Target, UpstreamRequest, bearer,
};
use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

/// The GA `api-version` used when the target sets none (supports `stream_options`).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The Azure OpenAI adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureAdapter;

impl Adapter for AzureAdapter {
    fn build_request<'a>(
        &self,
        op: Operation,
        req: &ParsedRequest,
        target: &Target<'a>,
    ) -> Result<UpstreamRequest<'a>, LlmError> {
        let mut headers = Headers::new();
        headers.push(("host", Cow::Borrowed(target.host)));
        headers.push(("content-type", Cow::Borrowed("application/json")));
        if req.stream {
            headers.push(("accept", Cow::Borrowed("text/event-stream")));
        }
        if let Some(t) = target.bearer_token {
            headers.push(("authorization", bearer(t)));
        } else if let Some(k) = target.api_key {
            headers.push(("api-key", Cow::Borrowed(k)));
        }
        let base = target
            .base_path
            .strip_suffix("/openai")
            .unwrap_or(target.base_path);
        let deployment = super::bedrock::sigv4::uri_encode(target.model, false);
        let version = target.api_version.unwrap_or(DEFAULT_API_VERSION);
        Ok(UpstreamRequest {
            method: "POST",
            path: RequestPath {
                prefix: base,
                rest: Cow::Owned(format!(
                    "/openai/deployments/{deployment}{}?api-version={version}",
                    op.openai_path()
                )),
            },
            headers,
            extra_headers: target.extra_headers,
            body: req.render(target.model, op.can_stream()),
        })
    }

    fn stream_translator_with(
        &self,
        op: Operation,
        req: &ParsedRequest,
        meta: &ResponseMeta<'_>,
    ) -> Box<dyn StreamTranslator> {
        OpenAiAdapter.stream_translator_with(op, req, meta)
    }

    fn translate_response_with(
        &self,
        op: Operation,
        body: Vec<u8>,
        meta: &ResponseMeta<'_>,
    ) -> (Vec<u8>, Option<Usage>) {
        OpenAiAdapter.translate_response_with(op, body, meta)
    }
}
