//! Reading a request body, bounded by `server.max_body_bytes`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::Downstream;
use crate::GatewayError;

/// How long leftover body is drained after an early error, so the client reads our answer
/// instead of a connection reset.
const DRAIN_AFTER_ERROR: Duration = Duration::from_secs(2);

/// Bodies declared larger than this are read in one piece (see [`read`]).
const WHOLE_ABOVE: usize = 64 << 10;

/// Reads the whole body, or fails with 413 as soon as it is known to exceed `limit`.
pub(super) async fn read(
    session: &mut Downstream<'_>,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    let declared = session
        .body_length()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    // Only now, with the size known to fit, invite a client that waits for it to send.
    if session.expects_continue() && session.write_continue().await.is_err() {
        return Err(GatewayError::BadRequest {
            message: "could not answer Expect: 100-continue".into(),
            param: None,
        });
    }
    // A large body of known length is read into one buffer of its size: pieced together
    // from the reads, a 1 MiB prompt was a megabyte copied.
    if declared.is_some_and(|n| n > WHOLE_ABOVE)
        && let Some(r) = session.read_body_whole().await
    {
        return r.map_err(|e| GatewayError::BadRequest {
            message: format!("could not read the request body: {e}"),
            param: None,
        });
    }
    let mut buf: Option<BytesMut> = None;
    loop {
        match session.read_body().await {
            Ok(Some(chunk)) => {
                let have = buf.as_ref().map_or(0, BytesMut::len);
                if have + chunk.len() > limit {
                    return Err(GatewayError::BodyTooLarge { limit });
                }
                // The usual body arrives whole in one piece: keep it without a copy.
                if buf.is_none() && declared == Some(chunk.len()) {
                    return Ok(chunk);
                }
                buf.get_or_insert_with(|| {
                    BytesMut::with_capacity(declared.unwrap_or(16 * 1024).min(limit))
                })
                .extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.map_or_else(Bytes::new, BytesMut::freeze)),
            Err(e) => {
                return Err(GatewayError::BadRequest {
                    message: format!("could not read the request body: {e}"),
                    param: None,
                });
            }
        }
    }
}

/// After answering early (401, 404, 413, …): discard what is left of the body for a short
/// while so the connection can be reused, or mark it for closing.
pub(super) async fn discard_rest(session: &mut Downstream<'_>, limit: usize) {
    if session.is_body_done() {
        return;
    }
    let mut seen = 0usize;
    let drained = tokio::time::timeout(DRAIN_AFTER_ERROR, async {
        while let Ok(Some(chunk)) = session.read_body().await {
            seen += chunk.len();
            if seen > limit.saturating_mul(2) {
                return false;
            }
        }
        true
    })
    .await;
    if drained != Ok(true) {
        session.close_after();
    }
}
