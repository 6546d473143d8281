//! The built-in `mock` provider, answered in-process with the same timing behaviour as a
//! real upstream: a delay before the first token, a gap between chunks, and cancellation
//! when the client goes away.

use std::time::{Duration, Instant};

use crate::server::Downstream;
use datamind_llm::mock;

use super::relay::{BodySource, Reply};
use super::{AttemptError, Job, client_gone};
use crate::snapshot::Deployment;

/// Opens a mock "attempt": waits the configured latency, then has the answer ready.
pub(super) async fn open(
    d: &Deployment,
    job: &Job<'_>,
    downstream: &mut Downstream<'_>,
    upstream_wait: &mut Duration,
) -> Result<Reply<'static>, AttemptError> {
    let p = &d.provider;
    let started = Instant::now();
    if !p.mock_latency.is_zero() {
        let first_byte = Duration::from_millis(p.timeouts.first_byte_ms);
        tokio::select! {
            _ = tokio::time::sleep(p.mock_latency.min(first_byte)) => {}
            _ = client_gone(downstream) => return Err(AttemptError::ClientGone),
        }
        if p.mock_latency > first_byte {
            *upstream_wait += started.elapsed();
            return Err(AttemptError::Timeout(format!(
                "no response header within {} ms",
                first_byte.as_millis()
            )));
        }
    }
    let created = crate::clock::unix_secs_at(started);
    let answer = mock::answer(job.op, job.req, &d.model, job.response_id, created);
    let answered = Instant::now();
    *upstream_wait += answered - started;
    let stream = job.req.stream && job.op.can_stream();
    let (content_type, chunks) = if stream {
        ("text/event-stream", answer.chunks.into())
    } else {
        ("application/json", vec![answer.body].into())
    };
    Ok(Reply {
        status: 200,
        content_type: Some(content_type.into()),
        body: BodySource::Mock {
            chunks,
            gap: p.mock_chunk_delay,
            first: true,
        },
        adapter: None,
        usage: Some(answer.usage),
        answered,
    })
}
