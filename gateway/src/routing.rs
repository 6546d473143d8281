//! Planning: which deployments a request tries, in which order.
//!
//! Without placement rules the plan is the primary group's deployments ordered by its
//! strategy, then each fallback group's (breadth-first, each group once, each deployment
//! once). Deployments cooling down or at their concurrency cap are left out and counted.
//!
//! With rules ([`place`]), Conductor's policy picks the rule, may deny, replaces the fallback
//! chain, filters candidates and orders them within each group (strategy order breaks ties);
//! a shadow policy is evaluated on the same candidates and compared.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use datamind_llm::policy::{Candidate as PolicyCandidate, Exclusion, Now, Policy, Ranking};
use datamind_llm::policy::{RequestInput, Selection};
use smallvec::SmallVec;

use crate::GatewayError;
use crate::config::Strategy;
use crate::snapshot::{Deployment, ModelGroup, Snapshot};
use crate::telemetry::metrics::route::RouteOutcome;

/// The decision recorded with a request: header, access log, span attributes, metric.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// The rule that placed the request (`default` when none matched).
    pub rule: Arc<str>,
    /// Tags of the matched rules, in rule order.
    pub tags: Vec<Arc<[(String, String)]>>,
    /// Deployments the rule excluded (filter or failing expression).
    pub excluded: usize,
    /// The shadow policy's rule and whether it chose the same first deployment.
    pub shadow: Option<(Arc<str>, bool)>,
}

impl RouteInfo {
    /// Every tag, later rules last.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags
            .iter()
            .flat_map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// One policy evaluation over a request's candidates (also what the explain endpoint shows).
#[derive(Debug)]
pub struct Evaluation<'s> {
    /// The matched rule, tags, deny.
    pub selection: Selection,
    /// Every deployment considered with its tier (0 = requested group).
    pub deployments: Vec<(&'s Arc<Deployment>, u32)>,
    /// What the policy saw of them (live statistics included), same order.
    pub candidates: Vec<PolicyCandidate<'s>>,
    /// Try order and exclusions (indexes into `deployments`).
    pub ranking: Ranking,
}

/// How much of each candidate's [`datamind_llm::policy::Stats`] to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsNeed {
    /// What the matched rule reads: the averages only when its `filter`/`order` reads one.
    Rule,
    /// Everything (the explain endpoint shows every input).
    All,
}

/// Evaluates `policy` for `request` on `group`: nothing is sent anywhere.
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    policy: &Policy,
    group: &'s Arc<ModelGroup>,
    request: &RequestInput,
    now_ms: u64,
    need: StatsNeed,
) -> Evaluation<'s> {
    let now = Now::from_unix_ms(now_ms);
    let selection = policy.select(request, &now);
    if selection.deny.is_some() {
        return Evaluation {
            selection,
            deployments: Vec::new(),
            candidates: Vec::new(),
            ranking: Ranking::default(),
        };
    }
    let rule = policy.rule(&selection);
    let fallbacks = rule.and_then(|r| r.fallbacks.as_deref());
    let deployments = gather(snapshot, group, fallbacks);
    let averages = need == StatsNeed::All || rule.is_some_and(|r| r.reads_ewma());
    let candidates: Vec<PolicyCandidate<'s>> = deployments
        .iter()
        .map(|(d, tier)| PolicyCandidate {
            deployment: &d.input,
            stats: if averages {
                d.health.stats(now_ms, d.max_in_flight)
            } else {
                d.health.counters(now_ms, d.max_in_flight)
            },
            tier: *tier,
        })
        .collect();
    let ranking = policy.rank_bound(&selection, request, &now, &candidates, |i| {
        deployments[i].0.bound.of(policy)
    });
    Evaluation {
        selection,
        deployments,
        candidates,
        ranking,
    }
}

/// Plans a request: by the policy when rules are configured, else by [`plan`].
pub fn place<'s>(
    snapshot: &'s Snapshot,
    group: &'s Arc<ModelGroup>,
    request: Option<&RequestInput>,
    now: u64,
) -> Result<(Plan<'s>, Option<RouteInfo>), GatewayError> {
    let c = &snapshot.conductor;
    let Some(request) = request else {
        return Ok((plan(snapshot, group, now), None));
    };
    let shadow = c
        .shadow
        .as_ref()
        .map(|p| evaluate(snapshot, p, group, request, now, StatsNeed::Rule));
    let Some(policy) = &c.policy else {
        // Shadow only: the groups' strategies decide, the shadow is compared with them.
        let p = plan(snapshot, group, now);
        let info = shadow.map(|s| {
            let first = p.candidates.first().map(|c| c.deployment.id.as_ref());
            compare(snapshot, "default", None, first, &s)
        });
        return Ok((p, info.map(|shadow| default_info(Some(shadow)))));
    };
    let e = evaluate(snapshot, policy, group, request, now, StatsNeed::Rule);
    let rule_index = e.selection.rule;
    for (rule, err) in &e.selection.errors {
        tracing::warn!(rule = %rule, error = %err, "placement rule `when` failed; rule skipped");
    }
    let first = e
        .ranking
        .order
        .first()
        .map(|(i, _)| e.deployments[*i].0.id.as_ref());
    let shadow = shadow.map(|s| {
        compare(
            snapshot,
            &e.selection.rule_name,
            e.selection.deny.as_ref().map(|d| d.status),
            first,
            &s,
        )
    });
    let info = RouteInfo {
        rule: e.selection.rule_name.clone(),
        tags: e.selection.tags.clone(),
        excluded: e
            .ranking
            .excluded
            .iter()
            .filter(|(_, x)| matches!(x, Exclusion::Filtered | Exclusion::Error(_)))
            .count(),
        shadow,
    };
    if let Some(d) = &e.selection.deny {
        c.record(rule_index, RouteOutcome::Denied);
        return Err(GatewayError::PolicyDenied {
            rule: info.rule.to_string(),
            status: d.status,
            message: d.message.clone(),
        });
    }
    let mut out = Plan {
        min_cooldown_ms: u64::MAX,
        ..Plan::default()
    };
    let mut waiting = false;
    for (i, x) in &e.ranking.excluded {
        match x {
            Exclusion::CoolingDown { left_ms } => {
                out.cooling.push(e.deployments[*i].0);
                out.min_cooldown_ms = out.min_cooldown_ms.min(*left_ms);
                waiting = true;
            }
            Exclusion::AtCapacity => waiting = true,
            Exclusion::Filtered => {}
            Exclusion::Error(err) => tracing::warn!(
                rule = %info.rule,
                deployment = %e.deployments[*i].0.id,
                error = %err,
                "placement expression failed; deployment excluded"
            ),
        }
    }
    out.candidates = e
        .ranking
        .order
        .iter()
        .map(|(i, _)| {
            let (d, tier) = e.deployments[*i];
            Candidate {
                deployment: d,
                fallback: tier > 0,
            }
        })
        .collect();
    if out.candidates.is_empty() && !waiting {
        c.record(rule_index, RouteOutcome::NoCandidate);
        return Err(GatewayError::NoPlacement {
            model: request.model.clone(),
            rule: info.rule.to_string(),
            excluded: info.excluded,
        });
    }
    c.record(rule_index, RouteOutcome::Placed);
    Ok((out, Some(info)))
}

fn default_info(shadow: Option<(Arc<str>, bool)>) -> RouteInfo {
    RouteInfo {
        rule: Arc::from(datamind_llm::policy::DEFAULT_RULE),
        tags: Vec::new(),
        excluded: 0,
        shadow,
    }
}

/// Compares the shadow's choice with the active one: same denial status, or same first
/// deployment. Counts and logs disagreements.
fn compare(
    snapshot: &Snapshot,
    rule: &str,
    denied: Option<u16>,
    first: Option<&str>,
    shadow: &Evaluation<'_>,
) -> (Arc<str>, bool) {
    let shadow_denied = shadow.selection.deny.as_ref().map(|d| d.status);
    let shadow_first = shadow
        .ranking
        .order
        .first()
        .map(|(i, _)| shadow.deployments[*i].0.id.as_ref());
    let agree = match (denied, shadow_denied) {
        (None, None) => first == shadow_first,
        (a, b) => a == b,
    };
    let shadow_rule = &shadow.selection.rule_name;
    if !agree {
        tracing::info!(
            rule,
            shadow_rule = %shadow_rule,
            deployment = first.unwrap_or("-"),
            shadow_deployment = shadow_first.unwrap_or("-"),
            "shadow policy disagrees"
        );
    }
    snapshot.conductor.record_shadow(agree, rule, shadow_rule);
    (shadow_rule.clone(), agree)
}

/// The deployments a request may use, with their tier: the requested group's in strategy
/// order, then each fallback group's (the rule's `fallbacks`, else the groups' own chain,
/// breadth-first). Each group and each deployment appear once.
fn gather<'s>(
    snapshot: &'s Snapshot,
    group: &'s Arc<ModelGroup>,
    fallbacks: Option<&[String]>,
) -> Vec<(&'s Arc<Deployment>, u32)> {
    let mut out: Vec<(&'s Arc<Deployment>, u32)> = Vec::with_capacity(group.deployments.len());
    if fallbacks.is_none() && group.fallbacks.is_empty() {
        // The common case, one group: no queue to walk.
        let mut ordered = Ordered::new();
        order_into(group, &mut ordered);
        for d in ordered {
            if !out.iter().any(|(o, _)| o.id == d.id) {
                out.push((d, 0));
            }
        }
        return out;
    }
    let mut queue: Vec<&'s Arc<ModelGroup>> = vec![group];
    if let Some(f) = fallbacks {
        queue.extend(f.iter().filter_map(|n| snapshot.groups.get(n)));
    }
    let mut i = 0;
    let mut tier = 0;
    while i < queue.len() {
        let g = queue[i];
        i += 1;
        if queue[..i - 1].iter().any(|q| Arc::ptr_eq(q, g)) {
            continue;
        }
        for d in order(g) {
            if !out.iter().any(|(o, _)| o.id == d.id) {
                out.push((d, tier));
            }
        }
        tier += 1;
        if fallbacks.is_none() {
            queue.extend(g.fallbacks.iter().filter_map(|f| snapshot.groups.get(f)));
        }
    }
    out
}

/// One deployment to try.
#[derive(Debug, Clone)]
pub struct Candidate<'s> {
    /// The deployment, borrowed from the snapshot the request holds (no reference count
    /// shared by the worker threads is touched).
    pub deployment: &'s Arc<Deployment>,
    /// It belongs to a fallback group, not the requested one.
    pub fallback: bool,
}

/// The ordered candidates for one request.
#[derive(Debug, Default)]
pub struct Plan<'s> {
    /// In attempt order. Inline: a plan rarely has more than a few.
    pub candidates: SmallVec<[Candidate<'s>; 4]>,
    /// Deployments left out because they are cooling down.
    pub cooling: Vec<&'s Arc<Deployment>>,
    /// Smallest remaining cooldown among them, in ms.
    pub min_cooldown_ms: u64,
}

/// Builds the plan for `group` at `now` (unix ms: cooldowns end at wall-clock instants).
pub fn plan<'s>(snapshot: &'s Snapshot, group: &'s Arc<ModelGroup>, now: u64) -> Plan<'s> {
    let mut out = Plan {
        min_cooldown_ms: u64::MAX,
        ..Plan::default()
    };
    // Groups and deployments are few: linear scans beat hashing here, and the queue stays
    // inline (no allocation per request).
    let mut queue: SmallVec<[&Arc<ModelGroup>; 4]> = smallvec::smallvec![group];
    let mut i = 0;
    while i < queue.len() {
        let g = queue[i];
        i += 1;
        if queue[..i - 1].iter().any(|q| Arc::ptr_eq(q, g)) {
            continue;
        }
        for d in order(g) {
            if out.candidates.iter().any(|c| c.deployment.id == d.id)
                || out.cooling.iter().any(|c| c.id == d.id)
            {
                continue;
            }
            let left = d.health.cooldown_left_ms(now);
            if left > 0 {
                out.cooling.push(d);
                out.min_cooldown_ms = out.min_cooldown_ms.min(left);
                continue;
            }
            if d.max_in_flight.is_some_and(|m| d.health.in_flight() >= m) {
                continue;
            }
            out.candidates.push(Candidate {
                deployment: d,
                fallback: i > 1,
            });
        }
        for f in &g.fallbacks {
            if let Some(fg) = snapshot.groups.get(f) {
                queue.push(fg);
            }
        }
    }
    out
}

/// A group's deployments in try order; inline up to a typical group's size, so ordering
/// them allocates nothing per request.
type Ordered<'g> = SmallVec<[&'g Arc<Deployment>; 8]>;

/// The group's deployments in the order its strategy prefers.
fn order(g: &ModelGroup) -> Ordered<'_> {
    let mut v = Ordered::new();
    order_into(g, &mut v);
    v
}

/// [`order`] into `v` (empty).
fn order_into<'g>(g: &'g ModelGroup, v: &mut Ordered<'g>) {
    let ds = &g.deployments;
    if ds.len() <= 1 {
        v.extend(ds.iter());
        return;
    }
    let tick = g.cursor.fetch_add(1, Relaxed);
    let start = match g.strategy {
        Strategy::WeightedRoundRobin => {
            let total: u64 = ds.iter().map(|d| u64::from(d.weight)).sum();
            let mut point = tick % total.max(1);
            ds.iter()
                .position(|d| {
                    let w = u64::from(d.weight);
                    if point < w {
                        true
                    } else {
                        point -= w;
                        false
                    }
                })
                .unwrap_or(0)
        }
        _ => (tick % ds.len() as u64) as usize,
    };
    // Rotate so ties fall to a different deployment each time.
    v.extend(ds[start..].iter().chain(ds[..start].iter()));
    match g.strategy {
        Strategy::WeightedRoundRobin => {}
        Strategy::LeastInFlight => {
            v.sort_by_key(|d| u64::from(d.health.in_flight()) * 1_000_000 / u64::from(d.weight));
        }
        Strategy::LowestLatency => v.sort_by_key(|d| d.health.ewma_ttfb_us()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::snapshot::HealthRegistry;
    use crate::snapshot::health::now_ms;
    use crate::telemetry::Metrics;
    use std::time::Duration;

    fn snapshot(yaml_models: &str) -> Snapshot {
        let yaml = format!(
            "server: {{listen: '127.0.0.1:1', admin_listen: '127.0.0.1:2'}}\nauth: {{enabled: false}}\n\
             providers: [{{name: a, kind: mock}}, {{name: b, kind: mock}}, {{name: c, kind: mock}}]\n{yaml_models}"
        );
        let cfg = parse_str(&yaml, &|_| None).unwrap();
        Snapshot::build(cfg, &HealthRegistry::default(), &Metrics::new())
    }

    fn ids<'a>(p: &Plan<'a>) -> Vec<&'a str> {
        p.candidates
            .iter()
            .map(|c| c.deployment.id.as_ref())
            .collect()
    }

    #[test]
    fn weighted_round_robin_follows_weights_and_appends_fallbacks() {
        let s = snapshot(
            "models:\n- {name: g, deployments: [{provider: a, model: m, weight: 3}, {provider: b, model: m}], fallbacks: [f]}\n\
             - {name: f, deployments: [{provider: c, model: m}], fallbacks: [g]}\n",
        );
        let g = &s.groups["g"];
        let firsts: Vec<String> = (0..8)
            .map(|_| ids(&plan(&s, g, now_ms()))[0].to_owned())
            .collect();
        assert_eq!(firsts.iter().filter(|x| *x == "a/m").count(), 6);
        let p = plan(&s, g, now_ms());
        assert_eq!(
            p.candidates.len(),
            3,
            "cycle g->f->g visits each group once"
        );
        assert_eq!(ids(&p)[2], "c/m");
        assert!(p.candidates[2].fallback && !p.candidates[0].fallback);
    }

    #[test]
    fn cooling_deployments_are_skipped_and_reported() {
        let s = snapshot(
            "models:\n- {name: g, deployments: [{provider: a, model: m}, {provider: b, model: m}]}\n",
        );
        let g = &s.groups["g"];
        g.deployments[0]
            .health
            .record_failure(1, Duration::from_secs(5), None);
        let p = plan(&s, g, now_ms());
        assert_eq!(ids(&p), vec!["b/m"]);
        assert_eq!(
            p.cooling.iter().map(|d| d.id.as_ref()).collect::<Vec<_>>(),
            vec!["a/m"]
        );
        assert!(p.min_cooldown_ms > 4_000);
    }

    #[test]
    fn least_in_flight_and_lowest_latency_prefer_the_idle_and_fast() {
        let s = snapshot(
            "models:\n- {name: l, strategy: least_in_flight, deployments: [{provider: a, model: m}, {provider: b, model: m}]}\n\
             - {name: t, strategy: lowest_latency, deployments: [{provider: a, model: x}, {provider: b, model: x}]}\n",
        );
        let l = &s.groups["l"];
        let _busy = l.deployments[0].health.start();
        for _ in 0..4 {
            assert_eq!(ids(&plan(&s, l, now_ms()))[0], "b/m");
        }
        let t = &s.groups["t"];
        t.deployments[0]
            .health
            .record_success(Duration::from_millis(50));
        t.deployments[1]
            .health
            .record_success(Duration::from_millis(5));
        for _ in 0..4 {
            assert_eq!(ids(&plan(&s, t, now_ms()))[0], "b/x");
        }
    }
}
