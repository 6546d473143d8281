//! The OpenAI-compatible API listener.
//!
//! Per request: route → authenticate → read the body (bounded) → parse → find the model
//! group → plan → [`crate::engine::serve`] → access log and metrics. Every error is written
//! in the OpenAI shape by [`super::respond::error`].

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use datamind_llm::cache_key::CacheDirectives;
use datamind_llm::client::anthropic;
use datamind_llm::{Operation, ParsedRequest};
use pingora_core::apps::{
    HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream,
};
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use serde_json::json;

use super::{Downstream, body, respond};
use crate::cache::{self, CacheStatus};
use crate::engine::{self, ClientFormat, Job, Outcome};
use crate::snapshot::Snapshot;
use crate::state::Gateway;
use crate::telemetry::AccessRecord;
use crate::telemetry::access_log::Timestamp;
use crate::telemetry::metrics::RequestSample;
use crate::{GatewayError, routing};

/// The API application, one per listener.
#[derive(Debug)]
pub struct ApiApp {
    gw: Arc<Gateway>,
    options: HttpServerOptions,
}

/// What the response cache decided for one request.
enum CacheStep {
    /// Replay this stored answer.
    Hit(cache::CachedAnswer),
    /// Go upstream; store the answer under the plan (if any); report the status (if on).
    Go(Option<cache::CachePlan>, Option<CacheStatus>),
}

enum Route {
    Llm(Operation),
    /// Anthropic's Messages API, served by any provider.
    Messages,
    CountTokens,
    Models,
}

impl ApiApp {
    /// The API over the shared state. Plain-text listeners accept h2c as well as HTTP/1.1.
    pub fn new(gw: Arc<Gateway>) -> Self {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        Self { gw, options }
    }

    /// The swappable config snapshot requests are served under.
    pub(super) fn snapshots(&self) -> &arc_swap::ArcSwap<Snapshot> {
        &self.gw.snapshot
    }

    /// Whether the gateway is draining for shutdown (connections close after their request).
    pub(super) fn draining(&self) -> bool {
        self.gw.draining.load(Ordering::Acquire)
    }

    /// Serves one request under `snapshot` (the connection's current one); false when the
    /// client went away (the connection is not reused).
    pub(super) async fn handle(&self, session: &mut Downstream<'_>, snapshot: &Snapshot) -> bool {
        let started = Instant::now();
        let ts = crate::clock::unix_ms_at(started);
        self.gw.metrics.requests_in_flight().inc();
        let ids = request_ids(session);
        let request_id = &ids[RESPONSE_ID_PREFIX.len()..];
        // Who made the request, once authenticated: the record names its tenant and key by
        // reference when the request ends.
        let mut caller = None;
        let mut rec = AccessRecord {
            ts: Timestamp(ts),
            request_id: Cow::Borrowed(request_id),
            method: known(session.method(), &["POST", "GET"]),
            path: known(session.path(), &API_PATHS),
            ..AccessRecord::default()
        };
        let mut out = Outcome {
            client: if rec.path.starts_with("/v1/messages") {
                ClientFormat::Anthropic
            } else {
                ClientFormat::OpenAi
            },
            ..Outcome::default()
        };
        out.trace = crate::telemetry::otlp::begin(
            self.gw.traces.get(),
            session.header("traceparent"),
            session.header("tracestate"),
            started,
        );

        let result = self
            .route(
                session,
                snapshot,
                &ids,
                &mut caller,
                &mut rec,
                &mut out,
                started,
            )
            .await;
        if let Err(e) = result {
            out.status = e.status();
            rec.error = Some(e.to_string());
            if !respond::error(session, &e, request_id, out.client, &out.headers).await {
                out.client_gone = true;
            }
            body::discard_rest(session, snapshot.config.server.max_body_bytes).await;
        }
        if out.status == 0 {
            out.status = 500;
        }
        crate::limits::gate::finish(&self.gw, &mut out);
        if let Some(c) = &caller {
            rec.tenant = Some(Cow::Borrowed(&*c.tenant));
            rec.key_name = Some(Cow::Borrowed(&*c.key_name));
            // Metric label: tenants of keys are configured; a JWT's tenant only when listed.
            rec.tenant_is_label = !c.key_id.starts_with("jwt:")
                || snapshot.config.tenants.iter().any(|t| *t.name == *c.tenant);
        }
        if let Some(g) = &out.group {
            // The group's name is the requested model.
            rec.model = Some(Cow::Borrowed(&*g.name));
        }
        let duration = out.finished.unwrap_or_else(Instant::now) - started;
        let overhead = duration.saturating_sub(out.upstream_wait).as_secs_f64();
        match &out.group {
            Some(g) => {
                let sample = RequestSample {
                    status: out.status,
                    duration_s: duration.as_secs_f64(),
                    ttft_s: out.ttfb.map(|t| t.as_secs_f64()),
                    overhead_s: overhead,
                    tokens: (out.usage.prompt_tokens, out.usage.completion_tokens),
                    op: rec.operation.unwrap_or(""),
                    stream: rec.stream,
                    tenant: match rec.tenant.as_deref() {
                        Some(t) if rec.tenant_is_label => Some(t),
                        Some(_) => Some("other"),
                        None => None,
                    },
                };
                self.gw
                    .metrics
                    .record_model_request(&g.metrics, &g.name, &sample);
            }
            None => self.gw.metrics.record_unmatched_request(
                out.status,
                duration.as_secs_f64(),
                overhead,
            ),
        }
        crate::conductor::log_fields(snapshot, &out, &mut rec);
        rec.status = out.status;
        rec.deployment = out.deployment.map(Cow::Borrowed);
        rec.attempts = out.attempts;
        rec.duration_ms = ms(duration);
        rec.ttfb_ms = out.ttfb.map(ms);
        rec.upstream_ms = ms(out.upstream_wait);
        rec.prompt_tokens = out.usage.prompt_tokens;
        rec.completion_tokens = out.usage.completion_tokens;
        if rec.error.is_none() {
            rec.error = out.error;
        }
        if let Some(mut t) = out.trace.take() {
            rec.trace_id = Some(t.trace_id());
            if t.is_recording() {
                rec.span_id = Some(t.span_id());
                if let Some(traces) = self.gw.traces.get() {
                    t.finish(out.usage, overhead * 1000.0, duration);
                    // Encoded by the access-log thread, sent an owned copy of the record.
                    if self.gw.access_log.takes_spans() {
                        rec.trace = Some(t);
                    } else {
                        traces.submit(&mut t, &rec);
                    }
                }
            }
        }
        if !self.gw.access_log.log(&mut rec) {
            self.gw.metrics.record_access_log_drop();
        }
        self.gw.metrics.requests_in_flight().dec();
        !out.client_gone
    }

    /// The request's phases up to the answer; `ids` as [`request_ids`] makes them. The
    /// authenticated caller is left in `caller_out` (the access log names it at the end).
    #[allow(clippy::too_many_arguments)]
    async fn route<'s>(
        &self,
        session: &mut Downstream<'_>,
        snapshot: &'s Snapshot,
        ids: &str,
        caller_out: &mut Option<crate::auth::CallerRef<'s>>,
        rec: &mut AccessRecord<'_>,
        out: &mut Outcome<'s>,
        started: Instant,
    ) -> Result<(), GatewayError> {
        let request_id = &ids[RESPONSE_ID_PREFIX.len()..];
        let route = match (&*rec.method, &*rec.path) {
            ("POST", "/v1/chat/completions") => Route::Llm(Operation::ChatCompletions),
            ("POST", "/v1/completions") => Route::Llm(Operation::Completions),
            ("POST", "/v1/embeddings") => Route::Llm(Operation::Embeddings),
            ("GET", "/v1/models") => Route::Models,
            ("POST", "/v1/messages") => Route::Messages,
            ("POST", "/v1/messages/count_tokens") => Route::CountTokens,
            (
                m,
                p @ ("/v1/chat/completions"
                | "/v1/completions"
                | "/v1/embeddings"
                | "/v1/messages"
                | "/v1/messages/count_tokens"),
            ) => {
                return Err(GatewayError::MethodNotAllowed {
                    method: m.into(),
                    path: p.into(),
                    allowed: "POST",
                });
            }
            (m, p @ "/v1/models") => {
                return Err(GatewayError::MethodNotAllowed {
                    method: m.into(),
                    path: p.into(),
                    allowed: "GET",
                });
            }
            (m, p) => {
                return Err(GatewayError::NotFound {
                    method: m.into(),
                    path: p.into(),
                });
            }
        };
        let caller = crate::auth::authenticate(
            &self.gw,
            snapshot,
            session.header("authorization"),
            session.header("x-api-key"),
            crate::clock::unix_secs_at(started) as i64,
        )
        .await?;
        let caller: &Arc<crate::auth::Caller> = caller_out.insert(caller);
        let op = match route {
            Route::Models => {
                let data: Vec<_> = snapshot
                    .group_order
                    .iter()
                    .filter(|m| caller.may_use(m))
                    .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "datamind"}))
                    .collect();
                let body = serde_json::to_vec(&json!({"object": "list", "data": data}))
                    .unwrap_or_default();
                session.drain_body().await;
                out.status = 200;
                if !respond::json(session, 200, request_id, body, &[]).await {
                    out.client_gone = true;
                }
                return Ok(());
            }
            Route::CountTokens => {
                let bytes = body::read(session, snapshot.config.server.max_body_bytes).await?;
                let body = anthropic::count_tokens_response(&bytes);
                out.status = 200;
                if !respond::json(session, 200, request_id, body, &[]).await {
                    out.client_gone = true;
                }
                return Ok(());
            }
            Route::Messages => Operation::ChatCompletions,
            Route::Llm(op) => op,
        };
        if self.gw.draining.load(Ordering::Acquire) {
            return Err(GatewayError::ShuttingDown);
        }
        let bytes = body::read(session, snapshot.config.server.max_body_bytes).await?;
        rec.request_bytes = bytes.len();
        let mut estimated_input_tokens = 0;
        let bytes = if out.client == ClientFormat::Anthropic {
            let m = anthropic::to_openai_request(&bytes)?;
            estimated_input_tokens = m.estimated_input_tokens;
            Bytes::from(m.openai_body)
        } else {
            bytes
        };
        let req = ParsedRequest::parse(bytes)?;
        rec.operation = Some(crate::telemetry::metrics::genai::operation_name(op));
        if let Some(t) = out.trace.as_mut() {
            let content = (self.gw.traces.get()).is_some_and(|x| x.records_content(&caller.tenant));
            t.note_request(op, &req, content);
        }
        rec.stream = req.stream && op.can_stream();
        // A matched group's name is logged when the request ends (`handle`); a refused
        // request's model is copied here.
        let Some(group) = snapshot.groups.get(&req.model) else {
            rec.model = Some(Cow::Owned(req.model.clone()));
            return Err(GatewayError::ModelNotFound(req.model.clone()));
        };
        if !caller.may_use(&req.model) {
            rec.model = Some(Cow::Owned(req.model.clone()));
            return Err(GatewayError::ModelNotAllowed(req.model.clone()));
        }
        out.group = Some(group);
        crate::limits::gate::admit(&self.gw, snapshot, caller, &req, op, group, out).await?;
        let step = self
            .cache_plan(session, snapshot, &caller.tenant, op, out.client, &req)
            .await;
        let (cache_plan, cache_status) = match step {
            CacheStep::Hit(answer) => {
                // A hit counts as a request (RPM); its token reservation is refunded
                // whole by `limits::gate::finish` (no deployment answered).
                rec.cache = Some(CacheStatus::Hit.as_str());
                out.status = 200;
                out.ttfb = Some(started.elapsed());
                if !cache::replay::write(session, request_id, &answer, &out.headers).await {
                    out.client_gone = true;
                }
                return Ok(());
            }
            CacheStep::Go(plan, status) => (plan, status),
        };
        if let Some(status) = cache_status {
            rec.cache = Some(status.as_str());
            out.headers
                .push(("x-datamind-cache", status.as_str().to_owned()));
        }
        let conductor = &snapshot.conductor;
        // Scoped: the rules' input is not kept in the request's future across the awaits below.
        let placed = {
            let input = conductor
                .is_active()
                .then(|| conductor.request_input(caller, &req, op, session.fields()));
            let now_ms = crate::clock::unix_ms_at(started);
            routing::place(snapshot, group, input.as_ref(), now_ms)
        };
        if let Err(
            GatewayError::PolicyDenied { rule, .. } | GatewayError::NoPlacement { rule, .. },
        ) = &placed
        {
            rec.rule = Some(rule.clone());
        }
        let (plan, route) = placed?;
        // Shared with `out.route`, not copied.
        let rule = route.as_ref().map(|r| Arc::clone(&r.rule));
        out.route = route;
        let total = Duration::from_millis(snapshot.config.timeouts.total_ms);
        let job = Job {
            client: out.client,
            estimated_input_tokens,
            response_id: ids,
            op,
            req: &req,
            request_id,
            started,
            deadline: started + total,
            capture_limit: cache_plan
                .as_ref()
                .filter(|p| p.store)
                .map(|p| p.max_entry_bytes),
            rule: rule
                .as_deref()
                .unwrap_or(datamind_llm::policy::DEFAULT_RULE),
            overhead_header: snapshot.config.telemetry.overhead_header,
        };
        let served = engine::serve(&self.gw, snapshot, session, &job, plan, out).await;
        if let (Some(p), Some(answer)) = (&cache_plan, out.captured.take()) {
            self.gw.cache.store(p, answer).await;
        }
        served
    }

    /// The response cache's part of a request: a hit to replay, or how to go on.
    async fn cache_plan(
        &self,
        session: &Downstream<'_>,
        snapshot: &Snapshot,
        tenant: &str,
        op: Operation,
        client: ClientFormat,
        req: &ParsedRequest,
    ) -> CacheStep {
        if !snapshot.config.cache.enabled {
            // The whole cost of an unused cache: this test.
            return CacheStep::Go(None, None);
        }
        let directives = CacheDirectives::from_headers(
            session.header("x-datamind-cache"),
            session.header("cache-control"),
        );
        let cache = &self.gw.cache;
        match cache.plan(&snapshot.config.cache, directives, tenant, op, client, req) {
            None => CacheStep::Go(None, None),
            Some(Err(status)) => {
                cache.metrics().request(status);
                CacheStep::Go(None, Some(status))
            }
            Some(Ok(plan)) => match cache.lookup(&plan).await {
                Some(answer) => {
                    cache.metrics().request(CacheStatus::Hit);
                    CacheStep::Hit(answer)
                }
                None => {
                    cache.metrics().request(CacheStatus::Miss);
                    CacheStep::Go(Some(plan), Some(CacheStatus::Miss))
                }
            },
        }
    }
}

#[async_trait]
impl HttpServerApp for ApiApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "could not read a request");
                return None;
            }
        }
        let closing = *shutdown.borrow() || self.gw.draining.load(Ordering::Acquire);
        session.set_keepalive(if closing { None } else { Some(75) });
        session.set_read_timeout(Some(Duration::from_secs(60)));
        // Pingora moves this future by value once per request on a kept-alive connection:
        // the request's own state lives in a box so what is copied stays small.
        let snapshot = self.gw.snapshot.load_full();
        if !Box::pin(self.handle(&mut Downstream::Pingora(&mut session), &snapshot)).await {
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match Box::pin(session.finish()).await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            _ => None,
        }
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

/// What comes before the request id in the id of translated answers.
const RESPONSE_ID_PREFIX: &str = "chatcmpl-";

/// `chatcmpl-<request id>`: the id of translated answers and, after [`RESPONSE_ID_PREFIX`],
/// the request id — one string for both. The request id is the client's `x-request-id`
/// when it is sane (≤ 128 visible ASCII), else a new one.
fn request_ids(session: &Downstream<'_>) -> String {
    if let Some(v) = session.header("x-request-id")
        && !v.is_empty()
        && v.len() <= 128
        && v.iter().all(|b| b.is_ascii_graphic())
    {
        let mut ids = String::with_capacity(RESPONSE_ID_PREFIX.len() + v.len());
        ids.push_str(RESPONSE_ID_PREFIX);
        ids.push_str(&String::from_utf8_lossy(v));
        return ids;
    }
    let mut id = String::with_capacity(RESPONSE_ID_PREFIX.len() + 32);
    id.push_str(RESPONSE_ID_PREFIX);
    for n in [fastrand::u64(..), fastrand::u64(..)] {
        for i in (0..16).rev() {
            id.push(char::from(
                b"0123456789abcdef"[(n >> (i * 4)) as usize & 0xf],
            ));
        }
    }
    id
}

/// The paths the API serves: logged as these literals rather than copied per request.
const API_PATHS: [&str; 6] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
];

/// `s` as the literal it equals in `known`, else a copy.
fn known(s: &str, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s.to_owned()),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
