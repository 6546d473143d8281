//! One attempt against an HTTP provider: connect, send, wait for the response header.

use std::time::{Duration, Instant};

use bytes::Bytes;
use datamind_llm::Adapter;
use datamind_llm::error_body::ErrorBody;
use datamind_llm::providers::{AwsCredentials, Target};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;

use super::relay::{BodySource, Reply};
use super::{AttemptError, Job, UpstreamError, client_gone, parse_retry_after, retryable_status};
use crate::snapshot::Deployment;
use crate::state::Gateway;

/// Largest upstream error body kept for relaying.
const MAX_ERROR_BODY: usize = 1 << 20;

/// Opens one attempt. `Ok` means the upstream answered with a status the client should see.
pub(super) async fn open(
    gw: &Gateway,
    d: &Deployment,
    adapter: &'static dyn Adapter,
    job: &Job<'_>,
    downstream: &mut ServerSession,
    upstream_wait: &mut Duration,
) -> Result<Reply, AttemptError> {
    let p = &d.provider;
    let peer = p.peer.as_ref().ok_or_else(|| {
        AttemptError::Network(format!("host of provider `{}` did not resolve", p.name))
    })?;
    let base_path = p.base.as_ref().map_or("", |b| b.path.as_str());
    let vertex_token = match &p.vertex_token {
        Some(v) => Some(v.token(gw).await.map_err(|e| {
            AttemptError::Network(format!(
                "vertex access token for provider `{}`: {e}",
                p.name
            ))
        })?),
        None => None,
    };
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let target = Target {
        base_path,
        host: &p.host_header,
        model: &d.model,
        api_key: p.api_key.as_deref(),
        extra_headers: &p.headers,
        api_version: p.api_version.as_deref(),
        bearer_token: vertex_token.as_deref().or(p.bearer_token.as_deref()),
        aws: p.aws.as_ref().map(|(k, s, t)| AwsCredentials {
            access_key_id: k,
            secret_access_key: s,
            session_token: t.as_deref(),
        }),
        region: p.region.as_deref(),
        now_unix: Some(now_unix),
    };
    let upreq = match adapter.build_request(job.op, job.req, &target) {
        Ok(r) => r,
        Err(e) => {
            // The request cannot be expressed for this provider (e.g. text completion on a
            // chat-only API): a client error, not the deployment's failure.
            let body =
                ErrorBody::new("invalid_request_error", None, e.to_string()).with_param(e.param());
            return Err(AttemptError::Final(UpstreamError {
                status: 400,
                upstream_status: 400,
                body: Bytes::from(body.to_json()),
                retry_after: None,
                penalize: false,
            }));
        }
    };
    let mut header = RequestHeader::build_no_case(
        upreq.method,
        upreq.path.as_bytes(),
        Some(upreq.headers.len() + 2),
    )
    .map_err(|e| AttemptError::Network(e.to_string()))?;
    for (k, v) in upreq.headers {
        header
            .insert_header(k, v)
            .map_err(|e| AttemptError::Network(e.to_string()))?;
    }
    header
        .insert_header("content-length", upreq.body.len().to_string())
        .map_err(|e| AttemptError::Network(e.to_string()))?;
    if let Ok(v) = std::str::from_utf8(job.request_id.as_bytes()) {
        let _ = header.insert_header("x-request-id", v.to_owned());
    }
    let body = Bytes::from(upreq.body);
    let first_byte = Duration::from_millis(p.timeouts.first_byte_ms);
    let attempt_deadline = job
        .deadline
        .min(Instant::now() + Duration::from_millis(p.timeouts.total_ms));

    let waited = Instant::now();
    // A pooled connection may have been closed by the upstream meanwhile: one quiet retry
    // on a fresh connection before this counts as the deployment's failure.
    let mut result = exchange(
        gw,
        peer,
        &header,
        &body,
        first_byte,
        attempt_deadline,
        downstream,
    )
    .await;
    if let Err((AttemptError::Network(_), true)) = &result {
        result = exchange(
            gw,
            peer,
            &header,
            &body,
            first_byte,
            attempt_deadline,
            downstream,
        )
        .await;
    }
    *upstream_wait += waited.elapsed();
    let mut up = result.map_err(|(e, _)| e)?;

    let (status, content_type, retry_after) = match up.response_header() {
        Some(h) => (
            h.status.as_u16(),
            h.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            parse_retry_after(h.headers.get("retry-after").map(|v| v.as_bytes())),
        ),
        None => return Err(AttemptError::Network("no response header".into())),
    };
    if status >= 400 {
        let body = read_error_body(&mut up, attempt_deadline).await;
        if up.response_done() {
            gw.connector
                .release_http_session(up, peer, Some(Duration::from_secs(60)))
                .await;
        }
        let mapped = adapter.translate_error(status, &body);
        // OpenAI-compatible upstreams already speak the client's error shape: keep their
        // message, type and code — except credential errors, which are the gateway's
        // configuration problem and must not echo anything about the upstream key.
        let keep = d.provider.kind.speaks_openai()
            && !matches!(status, 401 | 403)
            && content_type.as_deref().is_some_and(|c| c.contains("json"))
            && body.starts_with(b"{\"error\"");
        let (client_status, client_body) = if keep {
            (status, body)
        } else {
            (mapped.status, Bytes::from(mapped.body.to_json()))
        };
        let e = UpstreamError {
            status: client_status,
            upstream_status: status,
            body: client_body,
            retry_after,
            penalize: !mapped.context_window_exceeded,
        };
        return Err(
            if retryable_status(status) || mapped.context_window_exceeded {
                AttemptError::Status(e)
            } else {
                AttemptError::Final(e)
            },
        );
    }
    Ok(Reply {
        status,
        content_type,
        body: BodySource::Http {
            up: Box::new(up),
            peer: Box::new(peer.clone()),
        },
        adapter: Some(adapter),
        usage: None,
        model: d.model.clone(),
    })
}

/// Sends the request and waits for the response header, racing the client going away.
/// On failure, also says whether the connection came from the pool.
async fn exchange(
    gw: &Gateway,
    peer: &HttpPeer,
    header: &RequestHeader,
    body: &Bytes,
    first_byte: Duration,
    deadline: Instant,
    downstream: &mut ServerSession,
) -> Result<HttpSession, (AttemptError, bool)> {
    let connect_deadline = tokio::time::Instant::from_std(deadline);
    let (mut up, reused) = tokio::select! {
        r = tokio::time::timeout_at(connect_deadline, gw.connector.get_http_session(peer)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err((AttemptError::Network(format!("connect: {e}")), false)),
            Err(_) => return Err((AttemptError::Timeout("connect: request deadline".into()), false)),
        },
        _ = client_gone(downstream) => return Err((AttemptError::ClientGone, false)),
    };
    let wait = first_byte.min(deadline.saturating_duration_since(Instant::now()));
    let sent = async {
        up.write_request_header(Box::new(header.clone())).await?;
        up.write_request_body(body.clone(), true).await?;
        up.finish_request_body().await?;
        up.read_response_header().await
    };
    let r = tokio::select! {
        r = tokio::time::timeout(wait, sent) => r,
        _ = client_gone(downstream) => return Err((AttemptError::ClientGone, false)),
    };
    match r {
        Ok(Ok(())) => Ok(up),
        Ok(Err(e)) => Err((AttemptError::Network(e.to_string()), reused)),
        Err(_) => Err((
            AttemptError::Timeout(format!("no response header within {} ms", wait.as_millis())),
            false,
        )),
    }
}

async fn read_error_body(up: &mut HttpSession, deadline: Instant) -> Bytes {
    let mut buf = Vec::new();
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs(5));
    let _ = tokio::time::timeout(wait, async {
        while let Ok(Some(chunk)) = up.read_response_body().await {
            if buf.len() + chunk.len() > MAX_ERROR_BODY {
                break;
            }
            buf.extend_from_slice(&chunk);
        }
    })
    .await;
    Bytes::from(buf)
}
