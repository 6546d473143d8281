//! Planning: which deployments a request tries, in which order.
//!
//! The plan is the primary group's deployments ordered by its strategy, then each fallback
//! group's (breadth-first, each group once, each deployment once). Deployments cooling
//! down or at their concurrency cap are left out and counted.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::config::Strategy;
use crate::snapshot::{Deployment, ModelGroup, Snapshot, health::now_ms};

/// One deployment to try.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The deployment.
    pub deployment: Arc<Deployment>,
    /// It belongs to a fallback group, not the requested one.
    pub fallback: bool,
}

/// The ordered candidates for one request.
#[derive(Debug, Default)]
pub struct Plan {
    /// In attempt order.
    pub candidates: Vec<Candidate>,
    /// Deployments left out because they are cooling down.
    pub cooling: Vec<Arc<Deployment>>,
    /// Smallest remaining cooldown among them, in ms.
    pub min_cooldown_ms: u64,
}

/// Builds the plan for `group`.
pub fn plan(snapshot: &Snapshot, group: &Arc<ModelGroup>) -> Plan {
    let now = now_ms();
    let mut out = Plan {
        min_cooldown_ms: u64::MAX,
        ..Plan::default()
    };
    // Groups and deployments are few: linear scans beat hashing here.
    let mut queue: Vec<&Arc<ModelGroup>> = vec![group];
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
                out.cooling.push(d.clone());
                out.min_cooldown_ms = out.min_cooldown_ms.min(left);
                continue;
            }
            if d.max_in_flight.is_some_and(|m| d.health.in_flight() >= m) {
                continue;
            }
            out.candidates.push(Candidate {
                deployment: d.clone(),
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

/// The group's deployments in the order its strategy prefers.
fn order(g: &ModelGroup) -> Vec<&Arc<Deployment>> {
    let ds = &g.deployments;
    if ds.len() <= 1 {
        return ds.iter().collect();
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
    let mut v: Vec<&Arc<Deployment>> = ds[start..].iter().chain(ds[..start].iter()).collect();
    match g.strategy {
        Strategy::WeightedRoundRobin => {}
        Strategy::LeastInFlight => {
            v.sort_by_key(|d| u64::from(d.health.in_flight()) * 1_000_000 / u64::from(d.weight));
        }
        Strategy::LowestLatency => v.sort_by_key(|d| d.health.ewma_ttfb_us()),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::snapshot::HealthRegistry;
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

    fn ids(p: &Plan) -> Vec<&str> {
        p.candidates
            .iter()
            .map(|c| c.deployment.id.as_str())
            .collect()
    }

    #[test]
    fn weighted_round_robin_follows_weights_and_appends_fallbacks() {
        let s = snapshot(
            "models:\n- {name: g, deployments: [{provider: a, model: m, weight: 3}, {provider: b, model: m}], fallbacks: [f]}\n\
             - {name: f, deployments: [{provider: c, model: m}], fallbacks: [g]}\n",
        );
        let g = &s.groups["g"];
        let firsts: Vec<String> = (0..8).map(|_| ids(&plan(&s, g))[0].to_owned()).collect();
        assert_eq!(firsts.iter().filter(|x| *x == "a/m").count(), 6);
        let p = plan(&s, g);
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
        let p = plan(&s, g);
        assert_eq!(ids(&p), vec!["b/m"]);
        assert_eq!(
            p.cooling.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
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
            assert_eq!(ids(&plan(&s, l))[0], "b/m");
        }
        let t = &s.groups["t"];
        t.deployments[0]
            .health
            .record_success(Duration::from_millis(50));
        t.deployments[1]
            .health
            .record_success(Duration::from_millis(5));
        for _ in 0..4 {
            assert_eq!(ids(&plan(&s, t))[0], "b/x");
        }
    }
}
