//! Writing gateway-made responses (errors, model lists) to the client.

use bytes::Bytes;
use pingora_core::protocols::http::ServerSession;
use pingora_http::ResponseHeader;

use datamind_llm::client::anthropic;

use crate::GatewayError;
use crate::engine::ClientFormat;

/// Writes a complete JSON response. Returns false if the client could not be written to.
pub(super) async fn json(
    session: &mut ServerSession,
    status: u16,
    request_id: &str,
    body: Vec<u8>,
    extra: &[(&'static str, String)],
) -> bool {
    let Ok(mut h) = ResponseHeader::build(status, Some(4 + extra.len())) else {
        return false;
    };
    let mut ok = h.insert_header("content-type", "application/json").is_ok()
        && h.insert_header("content-length", body.len().to_string())
            .is_ok()
        && h.insert_header("x-request-id", request_id.to_owned())
            .is_ok();
    for (k, v) in extra {
        ok &= h.insert_header(*k, v.clone()).is_ok();
    }
    if !ok {
        return false;
    }
    session.write_response_header(Box::new(h)).await.is_ok()
        && session
            .write_response_body(Bytes::from(body), true)
            .await
            .is_ok()
}

/// Writes an error in the client's shape (OpenAI's, or Anthropic's on `/v1/messages`),
/// unless a response already started.
pub(super) async fn error(
    session: &mut ServerSession,
    e: &GatewayError,
    request_id: &str,
    client: ClientFormat,
    extra: &[(&'static str, String)],
) -> bool {
    if session.response_written().is_some() {
        return false;
    }
    let body = match client {
        ClientFormat::OpenAi => e.body().to_json(),
        ClientFormat::Anthropic => anthropic::error_to_anthropic(e.status(), &e.body().to_json()),
    };
    let mut headers = e.headers();
    headers.extend(
        extra
            .iter()
            .filter(|(k, _)| !headers.iter().any(|(h, _)| h == k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    json(session, e.status(), request_id, body, &headers).await
}
