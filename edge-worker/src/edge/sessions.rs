//! Session history in D1 (schema in `migrations/0001_sessions.sql`). Every query is
//! scoped by tenant: a session id alone never reaches another tenant's rows.

use datamind_llm::Usage;
use serde::Deserialize;
use serde_json::{Value, json};
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

use super::OrInternal;
use crate::EdgeError;
use crate::session::StoredTurn;

fn num(n: u64) -> JsValue {
    // D1 has no BigInt binding: integers travel as f64 (exact below 2^53).
    JsValue::from_f64(n as f64)
}

#[derive(Deserialize)]
struct MessageRow {
    message: String,
    #[serde(default)]
    tokens: Option<f64>,
    #[serde(default)]
    created_at: Option<f64>,
}

/// The latest `max` messages of a session, oldest first.
pub async fn load(
    db: &D1Database,
    tenant: &str,
    id: &str,
    max: usize,
) -> Result<Vec<Value>, EdgeError> {
    let rows = db
        .prepare(
            "SELECT message FROM (SELECT seq, message FROM messages \
             WHERE tenant = ?1 AND session_id = ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq ASC",
        )
        .bind(&[tenant.into(), id.into(), num(max as u64)])
        .or_internal("d1 bind")?
        .all()
        .await
        .or_internal("d1 load session")?
        .results::<MessageRow>()
        .or_internal("d1 rows")?;
    Ok(rows
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.message).ok())
        .collect())
}

/// Appends turns and adds the answer's usage to the session totals, in one transaction.
pub async fn append(
    db: &D1Database,
    tenant: &str,
    id: &str,
    turns: &[StoredTurn],
    usage: Option<Usage>,
    now: u64,
    ttl: u64,
) -> Result<(), EdgeError> {
    let u = usage.unwrap_or_default();
    let mut batch = vec![
        db.prepare(
            "INSERT INTO sessions (tenant, id, created_at, updated_at, expires_at, prompt_tokens, completion_tokens, message_count) \
             VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (tenant, id) DO UPDATE SET updated_at = excluded.updated_at, \
             expires_at = excluded.expires_at, \
             prompt_tokens = sessions.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = sessions.completion_tokens + excluded.completion_tokens, \
             message_count = sessions.message_count + excluded.message_count",
        )
        .bind(&[
            tenant.into(),
            id.into(),
            num(now),
            num(now + ttl),
            num(u.prompt_tokens),
            num(u.completion_tokens),
            num(turns.len() as u64),
        ])
        .or_internal("d1 bind")?,
    ];
    for t in turns {
        batch.push(
            db.prepare(
                "INSERT INTO messages (tenant, session_id, seq, role, message, tokens, created_at) \
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE tenant = ?1 AND session_id = ?2), \
                 ?3, ?4, ?5, ?6)",
            )
            .bind(&[
                tenant.into(),
                id.into(),
                t.role.as_str().into(),
                t.message.to_string().into(),
                num(t.tokens),
                num(now),
            ])
            .or_internal("d1 bind")?,
        );
    }
    db.batch(batch).await.or_internal("d1 append session")?;
    Ok(())
}

#[derive(Deserialize)]
struct SessionRow {
    created_at: f64,
    updated_at: f64,
    expires_at: f64,
    prompt_tokens: f64,
    completion_tokens: f64,
}

/// The session as JSON (`GET /v1/sessions/{id}`), or `None`.
pub async fn read(db: &D1Database, tenant: &str, id: &str) -> Result<Option<Value>, EdgeError> {
    let Some(s) = db
        .prepare(
            "SELECT created_at, updated_at, expires_at, prompt_tokens, completion_tokens \
             FROM sessions WHERE tenant = ?1 AND id = ?2",
        )
        .bind(&[tenant.into(), id.into()])
        .or_internal("d1 bind")?
        .first::<SessionRow>(None)
        .await
        .or_internal("d1 read session")?
    else {
        return Ok(None);
    };
    let rows = db
        .prepare(
            "SELECT message, tokens, created_at FROM messages \
             WHERE tenant = ?1 AND session_id = ?2 ORDER BY seq ASC",
        )
        .bind(&[tenant.into(), id.into()])
        .or_internal("d1 bind")?
        .all()
        .await
        .or_internal("d1 read messages")?
        .results::<MessageRow>()
        .or_internal("d1 rows")?;
    let messages: Vec<Value> = rows
        .into_iter()
        .filter_map(|r| {
            let mut m: Value = serde_json::from_str(&r.message).ok()?;
            m["tokens"] = json!(r.tokens.unwrap_or(0.0) as u64);
            m["created_at"] = json!(r.created_at.unwrap_or(0.0) as u64);
            Some(m)
        })
        .collect();
    Ok(Some(json!({
        "id": id, "object": "session",
        "created_at": s.created_at as u64, "updated_at": s.updated_at as u64,
        "expires_at": s.expires_at as u64,
        "usage": {"prompt_tokens": s.prompt_tokens as u64,
                  "completion_tokens": s.completion_tokens as u64},
        "messages": messages,
    })))
}

/// Erases a session and its messages; `false` when it did not exist.
pub async fn delete(db: &D1Database, tenant: &str, id: &str) -> Result<bool, EdgeError> {
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM messages WHERE tenant = ?1 AND session_id = ?2")
                .bind(&[tenant.into(), id.into()])
                .or_internal("d1 bind")?,
            db.prepare("DELETE FROM sessions WHERE tenant = ?1 AND id = ?2")
                .bind(&[tenant.into(), id.into()])
                .or_internal("d1 bind")?,
        ])
        .await
        .or_internal("d1 delete session")?;
    let changed = results
        .iter()
        .filter_map(|r| r.meta().ok().flatten())
        .filter_map(|m| m.changes)
        .sum::<usize>();
    Ok(changed > 0)
}

/// Deletes sessions idle past their expiry (the cron trigger). Returns how many.
pub async fn prune(db: &D1Database, now: u64) -> Result<usize, EdgeError> {
    let results = db
        .batch(vec![
            db.prepare(
                "DELETE FROM messages WHERE EXISTS (SELECT 1 FROM sessions s \
                 WHERE s.tenant = messages.tenant AND s.id = messages.session_id AND s.expires_at < ?1)",
            )
            .bind(&[num(now)])
            .or_internal("d1 bind")?,
            db.prepare("DELETE FROM sessions WHERE expires_at < ?1")
                .bind(&[num(now)])
                .or_internal("d1 bind")?,
        ])
        .await
        .or_internal("d1 prune")?;
    Ok(results
        .get(1)
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0))
}
