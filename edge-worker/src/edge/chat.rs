//! `POST /v1/chat/completions`: session history → cache → route → answer → tee.

use bytes::Bytes;
use datamind_llm::stream::StreamTranslator;
use datamind_llm::stream::openai::OpenAiPassthrough;
use datamind_llm::{LlmError, ParsedRequest};
use futures_channel::oneshot;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use worker::{Context, Env, Request, Response, console_error, console_log};

use super::relay::{Relay, Upstream};
use super::upstream::Origin;
use super::{OrInternal, ai, cache, http, now_secs, sessions, upstream};
use crate::EdgeError;
use crate::auth::{Tenant, tenant_headers};
use crate::cache_key::{CacheOptIn, cache_key, is_cacheable};
use crate::completion::Completion;
use crate::config::EdgeConfig;
use crate::routing::{Decision, Target};
use crate::session::{merge_history, turns_to_store, validate_session_id};
use crate::workers_ai::{AnswerMeta, WorkersAiStream, ai_input, translate_json};

/// An upstream's answer before it is sent to the client.
enum Answer {
    /// A whole body (non-streamed answers and upstream errors).
    Json { status: u16, body: Vec<u8> },
    /// A stream still to be relayed; `pending` is the first chunk when already read.
    Stream {
        upstream: Upstream,
        pending: Option<Vec<u8>>,
        translator: Box<dyn StreamTranslator>,
    },
}

/// What to do with a complete answer once the client has it.
struct AfterAnswer {
    env: Env,
    tenant: String,
    session: Option<(String, Vec<Value>)>,
    cache_key: Option<String>,
    cache_ttl: u64,
    session_ttl: u64,
}

impl AfterAnswer {
    fn wanted(&self) -> bool {
        self.session.is_some() || self.cache_key.is_some()
    }

    async fn run(self, answer: Completion, fill_cache: bool) {
        if let Some((id, new_turns)) = &self.session {
            let turns = turns_to_store(new_turns, &answer);
            match self.env.d1("DB") {
                Ok(db) => {
                    let r = sessions::append(
                        &db,
                        &self.tenant,
                        id,
                        &turns,
                        answer.usage,
                        now_secs(),
                        self.session_ttl,
                    )
                    .await;
                    if r.is_err() {
                        console_error!(
                            "session append failed for a session of tenant {}",
                            self.tenant
                        );
                    }
                }
                Err(e) => console_error!("session append: no D1 binding: {e}"),
            }
        }
        if fill_cache && let Some(key) = &self.cache_key {
            cache::store(&self.env, key, &answer, self.cache_ttl).await;
        }
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Handles one chat completion request for `tenant`.
pub async fn handle(
    mut req: Request,
    env: Env,
    ctx: Context,
    cfg: EdgeConfig,
    tenant: Tenant,
) -> Result<Response, EdgeError> {
    let declared = header(&req, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) {
        return Err(EdgeError::TooLarge(cfg.max_body_bytes));
    }
    let body = req.bytes().await.or_internal("read body")?;
    if body.len() > cfg.max_body_bytes {
        return Err(EdgeError::TooLarge(cfg.max_body_bytes));
    }
    let first = ParsedRequest::parse(Bytes::from(body))?;
    let mut obj: Map<String, Value> = serde_json::from_slice(first.body())
        .map_err(|e| EdgeError::from(LlmError::InvalidJson(e.to_string())))?;

    let session_id = header(&req, "x-session-id").filter(|s| !s.is_empty());
    let mut new_turns = Vec::new();
    let parsed = match &session_id {
        Some(id) => {
            validate_session_id(id)?;
            let db = env.d1("DB").or_internal("D1 binding")?;
            let history = sessions::load(&db, &tenant.id, id, cfg.session_max_messages).await?;
            new_turns = merge_history(&mut obj, history)?;
            ParsedRequest::parse(Bytes::from(
                serde_json::to_vec(&obj).or_internal("encode body")?,
            ))?
        }
        None => first,
    };
    let value = Value::Object(obj);
    let decision = cfg.routing.place(
        &parsed,
        &tenant.id,
        &|name: &str| header(&req, name),
        worker::Date::now().as_millis(),
    )?;

    let opt = CacheOptIn::from_header(header(&req, "x-datamind-cache").as_deref());
    let key = is_cacheable(&value, opt).then(|| cache_key(&tenant.id, "chat", &value));
    let after = AfterAnswer {
        env: env.clone(),
        tenant: tenant.id.clone(),
        session: session_id.map(|id| (id, new_turns)),
        cache_key: key.clone(),
        cache_ttl: cfg.cache_ttl,
        session_ttl: cfg.session_ttl,
    };
    if let Some(k) = &key
        && let Some((hit, tier)) = cache::lookup(&env, k, cfg.cache_ttl).await
    {
        let h = [
            ("x-datamind-cache", "hit"),
            ("x-datamind-cache-tier", tier),
            ("x-datamind-route", "cache"),
        ];
        let resp = if parsed.stream {
            http::sse_bytes(hit.to_sse(parsed.include_usage), &h)
        } else {
            http::json(200, hit.to_json(), &h)
        };
        if after.session.is_some() {
            ctx.wait_until(after.run(hit, false));
        }
        return resp;
    }

    let (answer, route) = dispatch(&env, &cfg, &decision, &parsed, &value, &tenant).await?;
    console_log!(
        "{}",
        json!({"event": "chat", "tenant": tenant.id, "model": parsed.model, "route": route,
               "stream": parsed.stream, "cache": key.as_ref().map(|_| "miss")})
    );
    let mut extra = vec![("x-datamind-route", route.as_str())];
    if let Some(rule) = &decision.policy_rule {
        extra.push(("x-datamind-rule", rule.as_str()));
    }
    if key.is_some() {
        extra.push(("x-datamind-cache", "miss"));
    }
    match answer {
        Answer::Json { status, body } => {
            if status == 200
                && after.wanted()
                && let Some(c) = Completion::from_openai_json(&body)
            {
                ctx.wait_until(after.run(c, true));
            }
            http::json(status, body, &extra)
        }
        Answer::Stream {
            upstream,
            pending,
            translator,
        } => {
            let tee = after.wanted().then(|| {
                let (tx, rx) = oneshot::channel::<Completion>();
                ctx.wait_until(async move {
                    if let Ok(c) = rx.await {
                        after.run(c, true).await;
                    }
                });
                tx
            });
            let relay = Relay::new(upstream, pending, translator, tee);
            Ok(Response::from_stream(relay.into_stream())
                .or_internal("stream response")?
                .with_headers(http::sse_headers(&extra)?))
        }
    }
}

/// Sends the request where `decision` says; Workers AI failing before its first byte
/// falls back to the core gateway when configured.
async fn dispatch(
    env: &Env,
    cfg: &EdgeConfig,
    decision: &Decision,
    parsed: &ParsedRequest,
    value: &Value,
    tenant: &Tenant,
) -> Result<(Answer, String), EdgeError> {
    match decision.target {
        Target::WorkersAi => match workers_ai(env, decision, parsed, value).await {
            Ok(a) => Ok((a, "workers_ai".into())),
            Err(e) if cfg.routing.fallback_to_core && cfg.core_url.is_some() => {
                console_log!(
                    "{}",
                    json!({"event": "fallback", "from": "workers_ai", "to": "core", "error": e.to_string()})
                );
                let a = core(cfg, parsed, &parsed.model, tenant).await?;
                Ok((a, "core;fallback-from=workers_ai".into()))
            }
            Err(e) => Err(e),
        },
        Target::Core => Ok((
            core(cfg, parsed, &decision.upstream_model, tenant).await?,
            "core".into(),
        )),
        Target::Cloud => {
            let (Some(base), Some(key)) = (&cfg.cloud_base_url, &cfg.cloud_api_key) else {
                return Err(EdgeError::NotConfigured("cloud"));
            };
            let origin = Origin {
                name: "cloud",
                base_url: base,
                api_key: Some(key),
                extra_headers: Vec::new(),
            };
            let resp = upstream::send(&origin, parsed, &decision.upstream_model).await?;
            Ok((openai_answer(resp, parsed, "cloud").await?, "cloud".into()))
        }
    }
}

async fn core(
    cfg: &EdgeConfig,
    parsed: &ParsedRequest,
    model: &str,
    tenant: &Tenant,
) -> Result<Answer, EdgeError> {
    let Some(core_url) = &cfg.core_url else {
        return Err(EdgeError::NotConfigured("core"));
    };
    let base = format!("{core_url}/v1");
    let extra_headers = cfg
        .edge_signing_key
        .as_deref()
        .map(|k| tenant_headers(k.as_bytes(), &tenant.id, now_secs()))
        .unwrap_or_else(|| vec![("x-datamind-tenant".to_owned(), tenant.id.clone())]);
    let origin = Origin {
        name: "core",
        base_url: &base,
        api_key: cfg.core_api_key.as_deref(),
        extra_headers,
    };
    let resp = upstream::send(&origin, parsed, model).await?;
    openai_answer(resp, parsed, "core").await
}

async fn openai_answer(
    mut resp: Response,
    parsed: &ParsedRequest,
    name: &'static str,
) -> Result<Answer, EdgeError> {
    let status = resp.status_code();
    if !(200..300).contains(&status) || !parsed.stream {
        let body = resp.bytes().await.map_err(|e| {
            console_error!("{name} body: {e}");
            EdgeError::Upstream(name)
        })?;
        return Ok(Answer::Json { status, body });
    }
    let stream = resp.stream().map_err(|e| {
        console_error!("{name} stream: {e}");
        EdgeError::Upstream(name)
    })?;
    Ok(Answer::Stream {
        upstream: Box::pin(stream),
        pending: None,
        translator: Box::new(OpenAiPassthrough::new(parsed.usage_injected())),
    })
}

fn new_id() -> String {
    let r = (worker::js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
    format!("chatcmpl-{r:014x}{:x}", worker::Date::now().as_millis())
}

async fn workers_ai(
    env: &Env,
    decision: &Decision,
    parsed: &ParsedRequest,
    value: &Value,
) -> Result<Answer, EdgeError> {
    let meta = AnswerMeta {
        id: new_id(),
        created: now_secs(),
        model: parsed.model.clone(),
        max_tokens: parsed.max_tokens,
    };
    let input = ai_input(value, parsed.stream);
    if !parsed.stream {
        let out = ai::run_json(env, &decision.upstream_model, &input).await?;
        return Ok(Answer::Json {
            status: 200,
            body: translate_json(&out, &meta),
        });
    }
    let mut upstream: Upstream =
        Box::pin(ai::run_stream(env, &decision.upstream_model, &input).await?);
    // Commit to Workers AI only with its first byte in hand, so a failure can still fall back.
    let first = match upstream.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => {
            console_error!("workers ai first chunk: {e}");
            return Err(EdgeError::Upstream("workers_ai"));
        }
        None => return Err(EdgeError::Upstream("workers_ai")),
    };
    Ok(Answer::Stream {
        upstream,
        pending: Some(first),
        translator: Box::new(WorkersAiStream::new(meta, parsed.include_usage)),
    })
}
