//! Azure OpenAI: OpenAI's wire format at deployment URLs.
//!
//! `POST {base}/openai/deployments/{model}/chat/completions?api-version={v}` (also
//! `/completions`, `/embeddings`), where `model` is the deployment name and `v` the target's
//! `api_version` (default [`DEFAULT_API_VERSION`]). A base path already ending in `/openai`
//! is not doubled. Auth: an Entra ID token (`bearer_token`) as `Authorization: Bearer`, else
//! the `api-key` header. Bodies and streams are OpenAI's, so answers pass through.

use super::openai::OpenAiAdapter;
use super::{Adapter, Operation, ResponseMeta, Target, UpstreamRequest};
use crate::stream::StreamTranslator;
use crate::{LlmError, ParsedRequest, Usage};

/// The GA `api-version` used when the target sets none (supports `stream_options`).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The Azure OpenAI adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureAdapter;

impl Adapter for AzureAdapter {
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
        if let Some(t) = target.bearer_token {
            headers.push(("authorization".to_owned(), format!("Bearer {t}")));
        } else if let Some(k) = target.api_key {
            headers.push(("api-key".to_owned(), k.to_owned()));
        }
        headers.extend(target.extra_headers.iter().cloned());
        let base = target
            .base_path
            .strip_suffix("/openai")
            .unwrap_or(target.base_path);
        let deployment = super::bedrock::sigv4::uri_encode(target.model, false);
        let version = target.api_version.unwrap_or(DEFAULT_API_VERSION);
        Ok(UpstreamRequest {
            method: "POST",
            path: format!(
                "{base}/openai/deployments/{deployment}{}?api-version={version}",
                op.openai_path()
            ),
            headers,
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
