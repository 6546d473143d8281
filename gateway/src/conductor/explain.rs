//! `POST /admin/route/explain`: what the policy would decide for a request, and why,
//! without sending anything upstream.
//!
//! ```text
//! {"request": {OpenAI body}, "tenant": "eu-bank", "key": "k", "operation": "chat",
//!  "headers": {"x-session-id": "s1"}}
//! → {"model", "rule": {name, description, when, filter, order, fallbacks} | {name: "default"},
//!    "denied": {status, message} | null, "tags": {…}, "errors": [{rule, error}],
//!    "candidates": [{rank, deployment, group, tier, sort_key, inputs}],
//!    "excluded": [{deployment, group, tier, reason, inputs}],
//!    "shadow": {rule, denied, first} | null}
//! ```
//! `inputs` are exactly the `deployment.*` values the rules saw.

use std::collections::BTreeMap;

use bytes::Bytes;
use datamind_llm::policy::{DeploymentInput, Policy, RequestInput, Stats};
use datamind_llm::{Operation, ParsedRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::GatewayError;
use crate::routing::{Evaluation, StatsNeed, evaluate};
use crate::snapshot::Snapshot;
use crate::snapshot::health::now_ms;

/// The explain request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Explain {
    request: Value,
    #[serde(default = "default_tenant")]
    tenant: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn default_tenant() -> String {
    "default".into()
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest {
        message: message.into(),
        param: None,
    }
}

/// Explains the decision for the body of an explain request.
pub fn explain(snapshot: &Snapshot, body: &[u8]) -> Result<Value, GatewayError> {
    let e: Explain =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid explain request: {e}")))?;
    let op = match e.operation.as_deref().unwrap_or("chat") {
        "chat" => Operation::ChatCompletions,
        "text_completion" | "completions" => Operation::Completions,
        "embeddings" => Operation::Embeddings,
        other => return Err(bad(format!("unknown operation \"{other}\""))),
    };
    let raw = serde_json::to_vec(&e.request).map_err(|e| bad(e.to_string()))?;
    let req = ParsedRequest::parse(Bytes::from(raw))?;
    let group = snapshot
        .groups
        .get(&req.model)
        .ok_or_else(|| GatewayError::ModelNotFound(req.model.clone()))?;
    let c = &snapshot.conductor;
    let headers: BTreeMap<String, String> = e
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let input = c.input_for(c.tenant_named(&e.tenant), &e.key, &req, op, &|h: &str| {
        headers.get(h).cloned()
    });
    let now = now_ms();
    let Some(policy) = &c.policy else {
        let plan = crate::routing::plan(snapshot, group, now);
        let candidates: Vec<Value> = plan
            .candidates
            .iter()
            .enumerate()
            .map(|(i, cand)| {
                let d = &cand.deployment;
                json!({"rank": i + 1, "deployment": &*d.id, "group": d.input.group,
                       "tier": u32::from(cand.fallback), "sort_key": null,
                       "inputs": inputs(&d.input, &d.health.stats(now, d.max_in_flight))})
            })
            .collect();
        return Ok(json!({
            "model": req.model, "rule": {"name": datamind_llm::policy::DEFAULT_RULE},
            "denied": null, "tags": {}, "errors": [], "candidates": candidates,
            "excluded": plan.cooling.iter().map(|d| json!({"deployment": &*d.id,
                "reason": "cooling down"})).collect::<Vec<_>>(),
            "shadow": shadow(snapshot, group, &input, now),
        }));
    };
    let ev = evaluate(snapshot, policy, group, &input, now, StatsNeed::All);
    let mut out = describe(policy, &ev);
    out["model"] = json!(req.model);
    out["shadow"] = shadow(snapshot, group, &input, now);
    Ok(out)
}

fn shadow(
    snapshot: &Snapshot,
    group: &std::sync::Arc<crate::snapshot::ModelGroup>,
    input: &RequestInput,
    now: u64,
) -> Value {
    let Some(p) = &snapshot.conductor.shadow else {
        return Value::Null;
    };
    let ev = evaluate(snapshot, p, group, input, now, StatsNeed::All);
    json!({
        "rule": &*ev.selection.rule_name,
        "denied": ev.selection.deny.as_ref().map(|d| json!({"status": d.status, "message": d.message})),
        "first": ev.ranking.order.first().map(|(i, _)| ev.deployments[*i].0.id.to_string()),
    })
}

fn describe(policy: &Policy, ev: &Evaluation<'_>) -> Value {
    let sel = &ev.selection;
    let rule = match policy.rule(sel) {
        Some(r) => json!({
            "name": &*r.name, "description": r.description, "when": r.when_source(),
            "filter": r.filter_source(), "order": r.order_source(), "fallbacks": r.fallbacks,
        }),
        None => json!({"name": &*sel.rule_name}),
    };
    let tags: BTreeMap<&str, &str> = sel.tag_pairs().collect();
    let candidates: Vec<Value> = ev
        .ranking
        .order
        .iter()
        .enumerate()
        .map(|(rank, (i, key))| {
            let (d, tier) = ev.deployments[*i];
            json!({"rank": rank + 1, "deployment": &*d.id, "group": d.input.group, "tier": tier,
                   "sort_key": key, "inputs": inputs(&d.input, &ev.candidates[*i].stats)})
        })
        .collect();
    let excluded: Vec<Value> = ev
        .ranking
        .excluded
        .iter()
        .map(|(i, why)| {
            let (d, tier) = ev.deployments[*i];
            json!({"deployment": &*d.id, "group": d.input.group, "tier": tier,
                   "reason": why.to_string(), "inputs": inputs(&d.input, &ev.candidates[*i].stats)})
        })
        .collect();
    json!({
        "rule": rule,
        "denied": sel.deny.as_ref().map(|d| json!({"status": d.status, "message": d.message})),
        "tags": tags,
        "errors": sel.errors.iter().map(|(r, e)| json!({"rule": &**r, "error": e})).collect::<Vec<_>>(),
        "candidates": candidates,
        "excluded": excluded,
    })
}

/// The `deployment.*` inputs as JSON.
fn inputs(d: &DeploymentInput, s: &Stats) -> Value {
    let labels: BTreeMap<&str, &str> = d
        .labels()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    json!({
        "name": d.name, "group": d.group, "provider": d.provider, "kind": d.kind,
        "cloud": d.cloud, "region": d.region, "model": d.model,
        "price_input": d.price_input, "price_output": d.price_output,
        "price_cached_input": d.price_cached_input, "context_window": d.context_window,
        "labels": labels, "weight": d.weight, "max_in_flight": d.max_in_flight,
        "healthy": s.healthy, "cooling_down": s.cooling_down,
        "cooldown_left_ms": s.cooldown_left_ms, "in_flight": s.in_flight,
        "queue_depth": s.queue_depth, "error_rate": s.error_rate,
        "latency_p50_ms": s.latency_p50_ms, "latency_p95_ms": s.latency_p95_ms,
        "ttft_p50_ms": s.ttft_p50_ms, "ttft_p95_ms": s.ttft_p95_ms, "samples": s.samples,
    })
}
