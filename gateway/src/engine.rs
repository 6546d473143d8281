//! The attempt loop: one engine for streaming and non-streaming LLM requests.
//!
//! ```text
//! plan ──▶ for each candidate:
//!            open (connect, send, wait for the response header, racing client disconnect)
//!              ├─ connect error / timeout / 429 / 5xx ─▶ mark deployment, next candidate
//!              └─ answer ─▶ relay (stream chunk by chunk, or whole body) ─▶ done
//!          nothing left ─▶ last upstream error response, or 502/504
//! ```
//! Nothing is retried once a byte went to the client: a stream that breaks after that ends
//! with an SSE error event. A client that goes away cancels the upstream request at once,
//! whether it was waiting for the first token or reading the stream.

pub use pool::{H1Pool, PoolSweeper};
pub(crate) use upstream::IDLE_TIMEOUT;

mod answer;
mod connection;
mod mock;
mod pool;
mod relay;
pub(crate) mod timer;
mod upstream;
pub mod vertex_token;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::Downstream;
use bytes::Bytes;
use datamind_llm::{Operation, ParsedRequest, Usage};

use crate::GatewayError;
use crate::routing::Plan;
use crate::snapshot::{Deployment, Snapshot};
use crate::state::Gateway;
use crate::telemetry::metrics::AttemptOutcome;

pub(crate) use relay::client_gone;
use relay::{RelayError, Relayed};

/// The API format the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientFormat {
    /// OpenAI chat/completions/embeddings.
    #[default]
    OpenAi,
    /// Anthropic Messages (`/v1/messages`): translated to OpenAI's format on the way in and
    /// back on the way out, so any provider can serve it.
    Anthropic,
}

/// What the engine learnt while serving one request (for logs and metrics).
#[derive(Debug, Default)]
pub struct Outcome<'s> {
    /// The client's API format.
    pub client: ClientFormat,
    /// Status sent to the client.
    pub status: u16,
    /// Deployment that answered (its id, borrowed from the request's snapshot).
    pub deployment: Option<&'s str>,
    /// Attempts made.
    pub attempts: u32,
    /// Time from request start to the first byte written to the client.
    pub ttfb: Option<Duration>,
    /// Time spent waiting on upstreams.
    pub upstream_wait: Duration,
    /// Token usage.
    pub usage: Usage,
    /// Failure description (no secrets).
    pub error: Option<String>,
    /// The model group the request matched.
    pub group: Option<&'s crate::snapshot::ModelGroup>,
    /// The client went away before the answer was complete.
    pub client_gone: bool,
    /// The complete 200 answer copied for the response cache (when `Job::capture_limit`).
    pub captured: Option<crate::cache::CachedAnswer>,
    /// Conductor's decision: the rule that placed the request and its tags (span
    /// attributes, access log). `None` when no placement rule is configured.
    pub route: Option<crate::routing::RouteInfo>,
    /// The request's trace context (`None`: tracing off and no client `traceparent`).
    pub trace: Option<Box<crate::telemetry::trace::RequestTrace>>,
    /// Extra response headers every answer to this request carries, whoever writes it
    /// (relayed answers, upstream errors, gateway errors): rate limits, routing, cache.
    pub headers: Vec<(&'static str, String)>,
    /// The answering deployment's price (for spend).
    pub price: Option<crate::pricing::Price>,
    /// Rate-limit and budget holds, released by `limits::gate::finish`.
    pub limits: Option<crate::limits::gate::Hold>,
    /// When the answer was complete to the client, if the engine read the clock then: the
    /// request's duration ends here (the caller reads the clock otherwise).
    pub finished: Option<Instant>,
}

/// Why an attempt did not produce an answer.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// TCP/TLS connect failed, or the connection broke before an answer.
    Network(String),
    /// No response header within the first-byte timeout (or the total deadline).
    Timeout(String),
    /// The upstream answered with a retryable status (or a context-window error another
    /// deployment may fit).
    Status(UpstreamError),
    /// The upstream answered with an error that no other deployment would change (a bad
    /// request): relayed at once.
    Final(UpstreamError),
    /// The client disconnected.
    ClientGone,
}

/// An upstream error answer, already in the client's (OpenAI) error shape.
#[derive(Debug)]
pub(crate) struct UpstreamError {
    /// Status for the client.
    pub status: u16,
    /// What the provider answered.
    pub upstream_status: u16,
    /// OpenAI-shaped error JSON.
    pub body: Bytes,
    pub retry_after: Option<Duration>,
    /// Whether the failure counts against the deployment's health (a prompt too long for
    /// its context window does not).
    pub penalize: bool,
}

/// The request, as the engine sees it.
pub(crate) struct Job<'a> {
    pub client: ClientFormat,
    /// Anthropic clients: estimated input tokens for `message_start`.
    pub estimated_input_tokens: u64,
    pub op: Operation,
    pub req: &'a ParsedRequest,
    pub request_id: &'a str,
    /// `id` of translated answers: `chatcmpl-<request id>`.
    pub response_id: &'a str,
    pub started: Instant,
    pub deadline: Instant,
    /// Response cache: copy the answer (up to this many bytes) into `Outcome::captured`.
    pub capture_limit: Option<usize>,
    /// The placement rule, for the `x-datamind-route` header.
    pub rule: &'a str,
    /// Send `x-datamind-overhead-ms` (`telemetry.overhead_header`).
    pub overhead_header: bool,
}

/// Serves `job` along `plan`, writing the whole response to `session`.
pub(crate) async fn serve<'s>(
    gw: &Gateway,
    snapshot: &Snapshot,
    session: &mut Downstream<'_>,
    job: &Job<'_>,
    plan: Plan<'s>,
    out: &mut Outcome<'s>,
) -> Result<(), GatewayError> {
    for d in &plan.cooling {
        d.metrics.record(AttemptOutcome::CooldownSkip);
    }
    if plan.candidates.is_empty() {
        let retry_after = plan.min_cooldown_ms.div_ceil(1000).clamp(1, 3600);
        return Err(GatewayError::NoCapacity {
            model: job.req.model.clone(),
            retry_after,
        });
    }
    let cooldown = &snapshot.config.cooldown;
    let mut last: Option<AttemptError> = None;
    let n = plan.candidates.len();
    for (i, cand) in plan.candidates.iter().enumerate() {
        let attempt_start = Instant::now();
        if attempt_start >= job.deadline {
            break;
        }
        let d: &Arc<Deployment> = cand.deployment;
        out.attempts += 1;
        let mut in_flight = d.health.start();
        let propagation = out
            .trace
            .as_mut()
            .map(|t| t.begin_attempt(d, attempt_start));
        let waited_before = out.upstream_wait;
        let opened = match d.provider.kind.adapter() {
            Some(adapter) => {
                let prop = propagation.as_ref();
                upstream::open(gw, d, adapter, job, session, &mut out.upstream_wait, prop).await
            }
            None => mock::open(d, job, session, &mut out.upstream_wait).await,
        };
        // Time to the answer's header: what `open` spent waiting on the upstream.
        let ttfb = out.upstream_wait.saturating_sub(waited_before);
        in_flight.first_byte();
        let first_byte_deadline =
            attempt_start + Duration::from_millis(d.provider.timeouts.first_byte_ms);
        let err = match opened {
            Ok(reply) => {
                out.deployment = Some(&*d.id);
                let status = Some(reply.status);
                out.price = d.price;
                match relay::relay(gw, session, job, d, reply, first_byte_deadline, out).await {
                    Ok(Relayed::Complete) => {
                        let now = Instant::now();
                        out.finished = Some(now);
                        let took = now - attempt_start;
                        d.health.record_success_timed(ttfb, took);
                        d.metrics.record(AttemptOutcome::Success);
                        end_attempt(out, d, job, took, AttemptOutcome::Success, status, None);
                        return Ok(());
                    }
                    Ok(Relayed::Broken) => {
                        d.health.record_failure(
                            cooldown.failures,
                            Duration::from_secs(cooldown.seconds),
                            None,
                        );
                        d.metrics.record(AttemptOutcome::Failure);
                        end_attempt(
                            out,
                            d,
                            job,
                            attempt_start.elapsed(),
                            AttemptOutcome::Failure,
                            status,
                            Some("stream_broken"),
                        );
                        return Ok(());
                    }
                    Err(RelayError::Fatal(e)) => {
                        end_attempt(
                            out,
                            d,
                            job,
                            attempt_start.elapsed(),
                            AttemptOutcome::Failure,
                            status,
                            Some("internal"),
                        );
                        return Err(e);
                    }
                    Err(RelayError::Retry(e)) => {
                        out.deployment = None;
                        e
                    }
                }
            }
            Err(AttemptError::ClientGone) => {
                end_attempt(
                    out,
                    d,
                    job,
                    attempt_start.elapsed(),
                    AttemptOutcome::Failure,
                    None,
                    Some("cancelled"),
                );
                out.client_gone = true;
                out.status = 499;
                out.error = Some("client disconnected before the answer".into());
                return Ok(());
            }
            Err(AttemptError::Final(e)) => {
                // The deployment works; the request is at fault.
                d.health.record_success(ttfb);
                d.metrics.record(AttemptOutcome::Success);
                let code = e.upstream_status.to_string();
                end_attempt(
                    out,
                    d,
                    job,
                    attempt_start.elapsed(),
                    AttemptOutcome::Success,
                    Some(e.upstream_status),
                    Some(&code),
                );
                out.error = Some(format!("upstream status {}", e.upstream_status));
                return relay::upstream_error(session, job, e, out).await;
            }
            Err(e) => e,
        };
        let (retry_after, penalize) = match &err {
            AttemptError::Status(s) => (s.retry_after, s.penalize),
            _ => (None, true),
        };
        let cooled = penalize
            && d.health.record_failure(
                cooldown.failures,
                Duration::from_secs(cooldown.seconds),
                retry_after,
            );
        let outcome = match plan.candidates.get(i + 1) {
            None => AttemptOutcome::Failure,
            Some(next) if next.fallback && !cand.fallback => AttemptOutcome::Fallback,
            Some(_) => AttemptOutcome::Retry,
        };
        d.metrics.record(outcome);
        let (status, kind) = match &err {
            AttemptError::Status(s) | AttemptError::Final(s) => {
                (Some(s.upstream_status), s.upstream_status.to_string())
            }
            AttemptError::Network(_) => (None, "network".to_owned()),
            AttemptError::Timeout(_) => (None, "timeout".to_owned()),
            AttemptError::ClientGone => (None, "cancelled".to_owned()),
        };
        end_attempt(
            out,
            d,
            job,
            attempt_start.elapsed(),
            outcome,
            status,
            Some(&kind),
        );
        tracing::warn!(
            request_id = job.request_id,
            trace_id = out.trace.as_ref().map(|t| t.trace_id().to_string()),
            deployment = %d.id,
            attempt = i + 1,
            of = n,
            cooled_down = cooled,
            error = %describe(&err),
            "upstream attempt failed"
        );
        last = Some(err);
    }
    match last {
        Some(AttemptError::Status(e) | AttemptError::Final(e)) => {
            out.error = Some(format!("upstream status {}", e.upstream_status));
            relay::upstream_error(session, job, e, out).await
        }
        Some(AttemptError::Timeout(r)) => Err(GatewayError::UpstreamFailed {
            attempts: out.attempts,
            reason: r,
            timeout: true,
        }),
        Some(AttemptError::Network(r)) => Err(GatewayError::UpstreamFailed {
            attempts: out.attempts,
            reason: r,
            timeout: false,
        }),
        Some(AttemptError::ClientGone) | None => Err(GatewayError::UpstreamFailed {
            attempts: out.attempts,
            reason: "request deadline passed".into(),
            timeout: true,
        }),
    }
}

/// Ends the current attempt's span, when the request is traced.
/// Ends one attempt in telemetry: `gen_ai_client_*` metrics (duration; token usage when it
/// answered) and, when the request is traced, its span.
fn end_attempt(
    out: &mut Outcome<'_>,
    d: &Deployment,
    job: &Job<'_>,
    took: Duration,
    o: AttemptOutcome,
    status: Option<u16>,
    error: Option<&str>,
) {
    let answered = o == AttemptOutcome::Success && error.is_none();
    d.metrics.genai.record(
        crate::telemetry::metrics::genai::operation_name(job.op),
        took.as_secs_f64(),
        error,
        answered.then_some(&out.usage),
    );
    if let Some(t) = out.trace.as_mut() {
        t.end_attempt(took, o.as_str(), status, error);
    }
}

pub(crate) fn describe(e: &AttemptError) -> String {
    match e {
        AttemptError::Network(r) => format!("network: {r}"),
        AttemptError::Timeout(r) => format!("timeout: {r}"),
        AttemptError::Status(s) | AttemptError::Final(s) => format!("status {}", s.upstream_status),
        AttemptError::ClientGone => "client gone".into(),
    }
}

/// Whether an upstream status is worth another deployment.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429) || status >= 500
}

/// Parses `Retry-After` (delta seconds; dates are ignored), capped at an hour.
pub(crate) fn parse_retry_after(v: Option<&[u8]>) -> Option<Duration> {
    let s = std::str::from_utf8(v?).ok()?.trim();
    let secs: f64 = s.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes of the attempt's futures, which the request's future holds one of at a time.
    #[test]
    fn attempt_futures_stay_small() {
        fn size7<A, B, C, D, E, G, H, F>(_: impl FnOnce(A, B, C, D, E, G, H) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        // `'a` names the closures' argument lifetimes (clippy does not see it used).
        #[allow(clippy::extra_unused_lifetimes)]
        fn sizes<'a>() -> (usize, usize) {
            let open = size7(
                |g: &'a Gateway,
                 d: &'a Deployment,
                 a: &'static dyn datamind_llm::Adapter,
                 j: &'a Job<'a>,
                 s: &'a mut Downstream<'a>,
                 w: &'a mut Duration,
                 p: Option<&'a crate::telemetry::trace::Propagation>| {
                    upstream::open(g, d, a, j, s, w, p)
                },
            );
            let relay = size7(
                |g: &'a Gateway,
                 s: &'a mut Downstream<'a>,
                 j: &'a Job<'a>,
                 d: &'a Deployment,
                 r: relay::Reply<'a>,
                 f: Instant,
                 o: &'a mut Outcome<'a>| relay::relay(g, s, j, d, r, f, o),
            );
            (open, relay)
        }
        let (open, relay) = sizes();
        eprintln!("upstream::open future: {open} bytes, relay::relay future: {relay} bytes");
        assert!(open <= 2560 && relay <= 2048, "open {open}, relay {relay}");
    }

    #[test]
    fn retry_policy() {
        assert!(retryable_status(429) && retryable_status(503) && retryable_status(500));
        assert!(!retryable_status(400) && !retryable_status(404) && !retryable_status(200));
        assert_eq!(parse_retry_after(Some(b"2")), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(Some(b"0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(Some(b"Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
