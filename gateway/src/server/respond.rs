//! Writing gateway-made responses (errors, model lists) to the client.

use bytes::Bytes;

use datamind_llm::client::anthropic;

use super::{Downstream, ResponseHead};
use crate::GatewayError;
use crate::engine::ClientFormat;

/// Writes a complete JSON response. Returns false if the client could not be written to.
pub(super) async fn json(
    session: &mut Downstream<'_>,
    status: u16,
    request_id: &str,
    body: Vec<u8>,
    extra: &[(&'static str, String)],
) -> bool {
    let mut h = ResponseHead::new(status);
    h.insert("content-type", "application/json");
    h.insert("content-length", body.len().to_string());
    h.insert("x-request-id", request_id);
    for (k, v) in extra {
        h.insert(k, v.as_str());
    }
    session.write_head(&h).await.is_ok()
        && session.write_body(Bytes::from(body), true).await.is_ok()
}

/// Writes an error in the client's shape (OpenAI's, or Anthropic's on `/v1/messages`),
/// unless a response already started.
pub(super) async fn error(
    session: &mut Downstream<'_>,
    e: &GatewayError,
    request_id: &str,
    client: ClientFormat,
    extra: &[(&'static str, String)],
) -> bool {
    if session.response_started() {
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
