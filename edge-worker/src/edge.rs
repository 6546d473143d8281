//! The Workers runtime side: entry points, bindings and I/O (wasm32 only).
//!
//! `fetch` authenticates, then hands chat requests to [`chat`]; `scheduled` (the cron
//! trigger) prunes expired sessions. Every failure becomes an [`EdgeError`] answered by
//! [`http::error`]; internal details are logged, never returned.

mod ai;
mod auth;
mod cache;
mod chat;
mod http;
mod relay;
mod sessions;
mod upstream;

use serde_json::json;
use worker::{
    Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent,
    console_error, console_log, event,
};

use crate::EdgeError;
use crate::config::EdgeConfig;
use crate::routing::RoutingConfig;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    match serve(req, env, ctx).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::error(&e),
    }
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let db = match env.d1("DB") {
        Ok(db) => db,
        Err(e) => return console_error!("cron: no D1 binding: {e}"),
    };
    match sessions::prune(&db, now_secs()).await {
        Ok(n) => console_log!(
            "{}",
            json!({"event": "sessions.pruned", "cron": event.cron(), "sessions": n})
        ),
        Err(e) => console_error!("cron: pruning sessions failed: {e:?}"),
    }
}

async fn serve(req: Request, env: Env, ctx: Context) -> std::result::Result<Response, EdgeError> {
    let path = req.path();
    let method = req.method();
    if path == "/healthz" {
        return http::json(200, br#"{"status":"ok"}"#.to_vec(), &[]);
    }
    let cfg = load_config(&env).await?;
    let tenant = auth::authenticate(&req, &env, &cfg).await?;
    match (method, path.as_str()) {
        (Method::Post, "/v1/chat/completions") => chat::handle(req, env, ctx, cfg, tenant).await,
        (Method::Get, "/v1/models") => models(&cfg.routing),
        (m @ (Method::Get | Method::Delete), p) if p.starts_with("/v1/sessions/") => {
            let id = &p["/v1/sessions/".len()..];
            crate::session::validate_session_id(id)?;
            let db = env.d1("DB").or_internal("D1 binding")?;
            if m == Method::Get {
                match sessions::read(&db, &tenant.id, id).await? {
                    Some(v) => http::json(200, serde_json::to_vec(&v).unwrap_or_default(), &[]),
                    None => Err(EdgeError::NotFound("session")),
                }
            } else if sessions::delete(&db, &tenant.id, id).await? {
                http::json(
                    200,
                    serde_json::to_vec(&json!({"id": id, "object": "session", "deleted": true}))
                        .unwrap_or_default(),
                    &[],
                )
            } else {
                Err(EdgeError::NotFound("session"))
            }
        }
        (m, p) => Err(EdgeError::NoRoute(format!("{m:?} {p}"))),
    }
}

fn models(routing: &RoutingConfig) -> std::result::Result<Response, EdgeError> {
    let data: Vec<_> = routing
        .listed_models()
        .into_iter()
        .map(|(id, t)| json!({"id": id, "object": "model", "created": 0, "owned_by": t.as_str()}))
        .collect();
    http::json(
        200,
        serde_json::to_vec(&json!({"object": "list", "data": data})).unwrap_or_default(),
        &[],
    )
}

/// Reads vars and secrets; a `routes` document in `CONFIG_KV` replaces `ROUTES`.
async fn load_config(env: &Env) -> std::result::Result<EdgeConfig, EdgeError> {
    let mut cfg = EdgeConfig::from_lookup(&|name| env_string(env, name)).map_err(|problems| {
        console_error!(
            "{}",
            json!({"event": "config.invalid", "problems": problems})
        );
        EdgeError::Internal
    })?;
    if let Ok(kv) = env.kv("CONFIG_KV")
        && let Ok(Some(doc)) = kv.get("routes").cache_ttl(60).text().await
    {
        match RoutingConfig::from_json(&doc) {
            Ok(r) => cfg.routing = r,
            Err(problems) => console_error!(
                "{}",
                json!({"event": "config.routes_kv_invalid", "problems": problems})
            ),
        }
    }
    Ok(cfg)
}

/// A var or secret as text; object-valued vars (TOML tables) come back as JSON.
fn env_string(env: &Env, name: &str) -> Option<String> {
    use worker::js_sys::{JSON, Reflect};
    let v = Reflect::get(env, &name.into()).ok()?;
    if v.is_undefined() || v.is_null() {
        return None;
    }
    v.as_string()
        .or_else(|| JSON::stringify(&v).ok().and_then(|s| s.as_string()))
}

/// Unix seconds.
pub(crate) fn now_secs() -> u64 {
    worker::Date::now().as_millis() / 1000
}

/// Maps runtime errors to [`EdgeError::Internal`], logging what happened.
pub(crate) trait OrInternal<T> {
    fn or_internal(self, what: &str) -> std::result::Result<T, EdgeError>;
}

impl<T, E: std::fmt::Debug> OrInternal<T> for std::result::Result<T, E> {
    fn or_internal(self, what: &str) -> std::result::Result<T, EdgeError> {
        self.map_err(|e| {
            console_error!("{what}: {e:?}");
            EdgeError::Internal
        })
    }
}
