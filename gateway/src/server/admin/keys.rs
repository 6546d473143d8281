//! The admin key API: create, list, show, rotate and revoke runtime API keys.
//!
//! ```text
//! POST   /admin/keys                {name, tenant?, models?, limits?, budget?, expires_at?, metadata?}
//!                                   → 201 {id, key, …}   (the clear key, shown this once)
//! GET    /admin/keys                → 200 {object: "list", data: [{id, name, status, …}]}
//! GET    /admin/keys/{id}           → 200 {id, name, status, …}
//! POST   /admin/keys/{id}/rotate    → 200 {id, key, …}   (the old key stops working)
//! POST   /admin/keys/{id}/revoke    → 200 {…, status: "revoked"}   (also DELETE /admin/keys/{id})
//! ```
//! Every call needs `Authorization: Bearer <admin key>` whose SHA-256 is
//! `admin.api_key_sha256`; without that setting the API answers 403 to everything. Views
//! never include a digest, and the clear key only in the create/rotate answer.

use std::collections::{BTreeMap, HashSet};

use http::StatusCode;
use pingora_core::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::GatewayError;
use crate::auth::keys::digest;
use crate::auth::secret::{new_api_key, new_key_id};
use crate::auth::{RuntimeKey, hash_key, now_secs};
use crate::config::{BudgetConfig, LimitsConfig, parse_rfc3339};
use crate::snapshot::Snapshot;
use crate::state::Gateway;
use crate::telemetry::access_log::rfc3339_ms;

/// Admin request bodies are small.
const MAX_BODY: usize = 64 * 1024;

/// `POST /admin/keys` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    #[serde(default = "default_tenant")]
    tenant: String,
    #[serde(default = "all_models")]
    models: Vec<String>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    budget: Option<BudgetConfig>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn default_tenant() -> String {
    "default".into()
}
fn all_models() -> Vec<String> {
    vec!["*".into()]
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest {
        message: message.into(),
        param: None,
    }
}

/// Serves one `/admin/keys…` request: (status, JSON body).
pub(super) async fn serve(gw: &Gateway, session: &mut ServerSession) -> (StatusCode, Vec<u8>) {
    let snapshot = gw.snapshot.load_full();
    let result = route(gw, &snapshot, session).await;
    let _ = session.drain_request_body().await;
    match result {
        Ok((status, v)) => (status, serde_json::to_vec(&v).unwrap_or_default()),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.body().to_json(),
        ),
    }
}

pub(super) fn check_admin(
    snapshot: &Snapshot,
    session: &ServerSession,
) -> Result<(), GatewayError> {
    let Some(expected) = snapshot.config.admin.api_key_sha256.as_deref() else {
        return Err(GatewayError::Forbidden(
            "the admin API is disabled: set admin.api_key_sha256",
        ));
    };
    let mut want = [0u8; 32];
    hex::decode_to_slice(expected, &mut want)
        .map_err(|_| GatewayError::Forbidden("the admin API is misconfigured"))?;
    let presented = session
        .get_header("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or(GatewayError::Unauthorized(
            "missing admin credential: send `Authorization: Bearer <admin key>`",
        ))?;
    if bool::from(digest(presented).ct_eq(&want)) {
        Ok(())
    } else {
        Err(GatewayError::Unauthorized("invalid admin credential"))
    }
}

async fn route(
    gw: &Gateway,
    snapshot: &Snapshot,
    session: &mut ServerSession,
) -> Result<(StatusCode, Value), GatewayError> {
    check_admin(snapshot, session)?;
    let method = session.req_header().method.as_str().to_owned();
    let path = session.req_header().uri.path().to_owned();
    let rest = path
        .strip_prefix("/admin/keys")
        .unwrap_or_default()
        .trim_end_matches('/');
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let not_allowed = |allowed: &'static str| GatewayError::MethodNotAllowed {
        method: method.clone(),
        path: path.clone(),
        allowed,
    };
    let keys = &gw.runtime_keys;
    let now = now_secs();
    match (method.as_str(), segments.as_slice()) {
        ("GET", []) => {
            keys.sync(false).await?;
            let data: Vec<Value> = keys.records().iter().map(|k| view(k, now)).collect();
            Ok((StatusCode::OK, json!({"object": "list", "data": data})))
        }
        ("POST", []) => {
            let body =
                super::super::body::read(&mut super::super::Downstream::Pingora(session), MAX_BODY)
                    .await?;
            let req: CreateKey = serde_json::from_slice(&body)
                .map_err(|e| bad(format!("invalid key request: {e}")))?;
            let record = new_record(req, snapshot, now)?;
            let (record, clear) = record;
            let record = keys.create(record).await?;
            tracing::info!(key_id = %record.id, tenant = %record.tenant, "runtime API key created");
            Ok((StatusCode::CREATED, with_key(view(&record, now), &clear)))
        }
        (_, []) => Err(not_allowed("GET, POST")),
        ("GET", [id]) => {
            let k = keys.get(id).await?.ok_or_else(|| missing(id))?;
            Ok((StatusCode::OK, view(&k, now)))
        }
        ("DELETE", [id]) | ("POST", [id, "revoke"]) => {
            let k = keys
                .update(id, |k| {
                    k.revoked_at.get_or_insert(now);
                })
                .await?
                .ok_or_else(|| missing(id))?;
            tracing::info!(key_id = %k.id, "runtime API key revoked");
            Ok((StatusCode::OK, view(&k, now)))
        }
        ("POST", [id, "rotate"]) => {
            let current = keys.get(id).await?.ok_or_else(|| missing(id))?;
            if current.revoked_at.is_some() {
                return Err(bad("a revoked key cannot be rotated"));
            }
            let clear = new_api_key()?;
            let sha = hash_key(&clear);
            let k = keys
                .update(id, |k| k.rotate(sha.clone(), now))
                .await?
                .ok_or_else(|| missing(id))?;
            tracing::info!(key_id = %k.id, "runtime API key rotated");
            Ok((StatusCode::OK, with_key(view(&k, now), &clear)))
        }
        (_, [_]) => Err(not_allowed("GET, DELETE")),
        (_, [_, "rotate" | "revoke"]) => Err(not_allowed("POST")),
        _ => Err(GatewayError::NotFound { method, path }),
    }
}

fn missing(id: &str) -> GatewayError {
    GatewayError::ResourceNotFound(format!("no API key with id `{id}`"))
}

/// Validates a create request against the running config; returns the record and the
/// clear key.
fn new_record(
    req: CreateKey,
    snapshot: &Snapshot,
    now: i64,
) -> Result<(RuntimeKey, String), GatewayError> {
    if req.name.trim().is_empty() || req.name.len() > 128 {
        return Err(bad("name: must be 1 to 128 characters"));
    }
    if req.tenant.is_empty() || req.tenant.len() > 128 {
        return Err(bad("tenant: must be 1 to 128 characters"));
    }
    let groups: HashSet<&str> = snapshot.groups.keys().map(String::as_str).collect();
    let mut problems = Vec::new();
    for (j, m) in req.models.iter().enumerate() {
        if m != "*" && !groups.contains(m.as_str()) {
            problems.push(format!("models[{j}]: unknown model \"{m}\""));
        }
    }
    problems.extend(
        crate::config::check_key_fields(&req.limits, req.budget.as_ref(), &groups)
            .into_iter()
            .map(|p| p.to_string()),
    );
    let expires_at = match &req.expires_at {
        None => None,
        Some(s) => {
            let t = parse_rfc3339(s).ok_or_else(|| {
                bad(format!(
                    "expires_at: \"{s}\" is not an RFC 3339 date-time (e.g. 2027-01-01T00:00:00Z)"
                ))
            })?;
            if t <= now {
                return Err(bad("expires_at: must be in the future"));
            }
            Some(t)
        }
    };
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    let clear = new_api_key()?;
    let record = RuntimeKey {
        id: new_key_id()?,
        name: req.name,
        sha256: hash_key(&clear),
        previous_sha256: Vec::new(),
        tenant: req.tenant,
        models: req.models,
        limits: req.limits,
        budget: req.budget,
        expires_at,
        metadata: req.metadata,
        created_at: now,
        rotated_at: None,
        revoked_at: None,
        revision: 0,
    };
    Ok((record, clear))
}

/// What the API shows of a key: never a digest.
fn view(k: &RuntimeKey, now: i64) -> Value {
    let ts = |t: Option<i64>| t.map(|t| rfc3339_ms(u64::try_from(t).unwrap_or(0) * 1000));
    json!({
        "object": "api_key",
        "id": k.id,
        "name": k.name,
        "tenant": k.tenant,
        "models": k.models,
        "limits": k.limits,
        "budget": k.budget,
        "metadata": k.metadata,
        "status": k.status(now),
        "created_at": ts(Some(k.created_at)),
        "expires_at": ts(k.expires_at),
        "rotated_at": ts(k.rotated_at),
        "revoked_at": ts(k.revoked_at),
    })
}

fn with_key(mut v: Value, clear: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("key".into(), Value::String(clear.to_owned()));
    }
    v
}
