//! `GET /admin/spend?tenant=NAME` or `?key=KEY_ID`: what a tenant or key spent this day
//! and this month (fleet-wide when Redis is configured), with its budget. Protected by
//! the admin credential (`admin.api_key_sha256`), like the key API.

use http::StatusCode;
use pingora_core::protocols::http::ServerSession;
use serde_json::{Value, json};

use super::keys::check_admin;
use crate::GatewayError;
use crate::config::{BudgetConfig, BudgetPeriod};
use crate::limits::budget::{Scope, SpendKey, Totals};
use crate::state::Gateway;

/// Serves one `/admin/spend` request: (status, JSON body).
pub(super) async fn serve(gw: &Gateway, session: &mut ServerSession) -> (StatusCode, Vec<u8>) {
    let result = answer(gw, session).await;
    let _ = session.drain_request_body().await;
    match result {
        Ok(v) => (StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default()),
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.body().to_json(),
        ),
    }
}

async fn answer(gw: &Gateway, session: &ServerSession) -> Result<Value, GatewayError> {
    let snapshot = gw.snapshot.load_full();
    check_admin(&snapshot, session)?;
    let method = session.req_header().method.as_str();
    if method != "GET" {
        return Err(GatewayError::MethodNotAllowed {
            method: method.to_owned(),
            path: "/admin/spend".into(),
            allowed: "GET",
        });
    }
    let query = session.req_header().uri.query().unwrap_or("");
    let (scope, id) = match subject(query) {
        Some(s) => s,
        None => {
            return Err(GatewayError::BadRequest {
                message: "give one of ?tenant=NAME or ?key=KEY_ID".into(),
                param: None,
            });
        }
    };
    let budget = match scope {
        Scope::Tenant => snapshot
            .config
            .tenants
            .iter()
            .find(|t| t.name == id)
            .and_then(|t| t.budget),
        Scope::Key => snapshot
            .config
            .auth
            .keys
            .iter()
            .find(|k| k.name == id)
            .and_then(|k| k.budget),
    };
    let (dk, day, mk, month) = gw.spend.report(scope, &id).await;
    Ok(json!({
        "scope": scope.as_str(),
        "id": id,
        "day": period(&dk, &day),
        "month": period(&mk, &month),
        "budget": budget.map(|b| budget_json(&b, &day, &month)),
    }))
}

fn period(k: &SpendKey, t: &Totals) -> Value {
    json!({
        "period": k.stamp,
        "spent_usd": t.usd,
        "requests": t.requests,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
    })
}

fn budget_json(b: &BudgetConfig, day: &Totals, month: &Totals) -> Value {
    let (name, spent) = match b.period {
        BudgetPeriod::Day => ("day", day.usd),
        BudgetPeriod::Month => ("month", month.usd),
    };
    json!({
        "period": name,
        "hard_usd": b.hard_usd,
        "soft_usd": b.soft_usd,
        "spent_usd": spent,
        "remaining_usd": b.hard_usd.map(|h| (h - spent).max(0.0)),
    })
}

/// `tenant=…` or `key=…` (percent-decoded), exactly one.
fn subject(query: &str) -> Option<(Scope, String)> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let scope = match k {
            "tenant" => Scope::Tenant,
            "key" => Scope::Key,
            _ => return None,
        };
        let v = percent_decode(v)?;
        if found.is_some() || v.is_empty() {
            return None;
        }
        found = Some((scope, v));
    }
    found
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_subject_percent_decoded() {
        assert_eq!(
            subject("tenant=eu%20bank"),
            Some((Scope::Tenant, "eu bank".into()))
        );
        assert_eq!(subject("key=ci"), Some((Scope::Key, "ci".into())));
        for bad in ["", "tenant=a&key=b", "team=a", "tenant=", "tenant=%zz"] {
            assert_eq!(subject(bad), None, "{bad}");
        }
    }
}
