//! The two calls `server::api` makes: [`admit`] after the model lookup (budgets, then rate
//! limits) and [`finish`] when the request is over (reconcile tokens, record spend).

use std::sync::Arc;

use datamind_llm::{Operation, ParsedRequest};

use super::budget::{Budgeted, Charge, Reservation, Scope};
use super::{Admission, Ask, rules};
use crate::GatewayError;
use crate::auth::Caller;
use crate::engine::Outcome;
use crate::snapshot::{ModelGroup, Snapshot};
use crate::state::Gateway;

/// What an admitted request holds until it finishes.
#[derive(Debug)]
pub struct Hold {
    caller: Arc<Caller>,
    model: String,
    tenant_label: String,
    rate: Option<Admission>,
    budget: Reservation,
}

/// Checks `caller`'s budgets and rate limits for `req` on `group`. On success the hold
/// (if any applies) is kept in `out.limits` and the `x-ratelimit-*` headers in
/// `out.headers`; on refusal the error carries them. Does nothing at all for a caller
/// without limits or budgets on an unpriced model.
pub async fn admit(
    gw: &Gateway,
    snapshot: &Snapshot,
    caller: &Arc<Caller>,
    req: &ParsedRequest,
    op: Operation,
    group: &ModelGroup,
    out: &mut Outcome<'_>,
) -> Result<(), GatewayError> {
    let has_limits = rules::any(caller);
    let has_budget = caller.budget.is_some() || caller.tenant_info.budget.is_some();
    let priced = group.deployments.iter().any(|d| d.price.is_some());
    if !has_limits && !has_budget && !priced {
        return Ok(());
    }
    let cfg = &snapshot.config.limiter;
    let prompt = req.estimated_prompt_tokens();
    let completion = match op {
        Operation::Embeddings => 0,
        _ => req.max_tokens.unwrap_or(cfg.default_max_tokens),
    };
    let budgets = budgets(caller);
    let budget = if has_budget {
        let worst = group
            .deployments
            .iter()
            .filter_map(|d| d.price)
            .map(|p| p.max_cost_usd(prompt, completion))
            .fold(0.0, f64::max);
        gw.spend.admit(&budgets, worst)?
    } else {
        Reservation::default()
    };
    let rate = if has_limits {
        let ask = Ask {
            model: &group.name,
            reserve_tokens: prompt + completion,
            lease_ttl_ms: snapshot.config.timeouts.total_ms + 5_000,
        };
        match gw.limiter.admit(cfg, caller, ask).await {
            Ok(a) => a,
            Err(e) => {
                let charge = Charge {
                    tenant: &caller.tenant,
                    key_id: &caller.key_id,
                    model: &group.name,
                    tenant_label: "",
                    usage: &Default::default(),
                    cost_usd: None,
                };
                gw.spend.finish(budget, &charge, &budgets);
                return Err(e);
            }
        }
    } else {
        None
    };
    if let Some(a) = &rate {
        out.headers.extend(a.headers.iter().cloned());
    }
    let listed = snapshot
        .config
        .tenants
        .iter()
        .any(|t| *t.name == *caller.tenant);
    out.limits = Some(Hold {
        caller: caller.clone(),
        model: group.name.to_string(),
        tenant_label: if listed {
            caller.tenant.to_string()
        } else {
            "other".to_owned()
        },
        rate,
        budget,
    });
    Ok(())
}

/// Ends the request's hold (once; later calls do nothing). The engine calls it as soon
/// as the usage is known, before the last byte goes to the client, so the client's next
/// request already sees the settled counters; `server::api` calls it again at the end
/// for every other exit path. The token reservation is reconciled with the real usage
/// (kept whole when the usage is unknown though an upstream answered), in-flight slots are
/// freed, and the answering deployment's price × usage is recorded as spend.
pub fn finish(gw: &Gateway, out: &mut Outcome<'_>) {
    let Some(hold) = out.limits.take() else {
        return;
    };
    let answered = out.deployment.is_some();
    let total = out.usage.prompt_tokens + out.usage.completion_tokens;
    if let Some(mut a) = hold.rate {
        a.record_usage(match (total, answered) {
            (0, true) => None,
            (t, _) => Some(t),
        });
    }
    let cost = out
        .price
        .filter(|_| answered)
        .map(|p| p.cost_usd(&out.usage));
    let c = &hold.caller;
    let charge = Charge {
        tenant: &c.tenant,
        key_id: &c.key_id,
        model: &hold.model,
        tenant_label: &hold.tenant_label,
        usage: &out.usage,
        cost_usd: cost,
    };
    gw.spend.finish(hold.budget, &charge, &budgets(c));
}

fn budgets(c: &Caller) -> Vec<Budgeted<'_>> {
    let mut v = Vec::new();
    if let Some(b) = c.budget {
        v.push(Budgeted {
            scope: Scope::Key,
            id: &c.key_id,
            budget: b,
        });
    }
    if let Some(b) = c.tenant_info.budget {
        v.push(Budgeted {
            scope: Scope::Tenant,
            id: &c.tenant,
            budget: b,
        });
    }
    v
}
