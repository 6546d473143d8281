//! Criterion micro-benchmark of Conductor: one placement decision (rule selection, filter
//! and order over the group's candidates, affinity) with the shipped example policy
//! (`config/examples/conductor.yaml`), for the request shapes its rules distinguish.
//! Rules are compiled and bound to the deployments once, as the gateway does per config
//! snapshot (`Policy::bind`).
//!
//! Two measurements of the same decisions: wall time (criterion's default) and the CPU
//! time of the benchmarking thread (`policy_decision_cpu`). On a shared, loaded machine the
//! wall time includes time the thread spent waiting for a core; the thread CPU time does
//! not, so it is the one to compare with the 5 µs budget there.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datamind_llm::policy::{
    Bound, Candidate, DeploymentInput, Now, Placement, Policy, PolicySpec, RequestInput, Stats,
    TenantInput,
};
use serde::Deserialize;

const EXAMPLE: &str = include_str!("../../config/examples/conductor.yaml");

/// The parts of the example config the benchmark needs (the rest is ignored).
#[derive(Deserialize)]
struct Example {
    providers: Vec<Provider>,
    models: Vec<Group>,
    prices: BTreeMap<String, Price>,
    policy: PolicySection,
}
#[derive(Deserialize)]
struct Provider {
    name: String,
    kind: String,
    #[serde(default)]
    cloud: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}
#[derive(Deserialize)]
struct Group {
    name: String,
    deployments: Vec<Dep>,
}
#[derive(Deserialize)]
struct Dep {
    provider: String,
    model: String,
    #[serde(default)]
    context_window: u64,
}
#[derive(Deserialize)]
struct Price {
    input: f64,
    output: f64,
}
#[derive(Deserialize)]
struct PolicySection {
    rules: Vec<datamind_llm::policy::RuleSpec>,
}

fn load() -> (Policy, Vec<DeploymentInput>, Vec<DeploymentInput>) {
    let ex: Example = match serde_saphyr::from_str(EXAMPLE) {
        Ok(e) => e,
        Err(e) => unreachable!("the shipped example parses: {e}"),
    };
    let policy = match Policy::compile(&PolicySpec {
        rules: ex.policy.rules,
    }) {
        Ok(p) => p,
        Err(e) => unreachable!("the shipped example compiles: {e:?}"),
    };
    let group = |name: &str| -> Vec<DeploymentInput> {
        let g = ex.models.iter().find(|g| g.name == name);
        g.map(|g| {
            g.deployments
                .iter()
                .filter_map(|d| {
                    let p = ex.providers.iter().find(|p| p.name == d.provider)?;
                    let price = ex
                        .prices
                        .get(&d.model)
                        .map_or((0.0, 0.0, 0.0), |x| (x.input, x.output, x.input));
                    let placement = Placement {
                        cloud: p.cloud.clone(),
                        region: p.region.clone(),
                        context_window: d.context_window,
                        labels: p.labels.clone(),
                    };
                    Some(DeploymentInput::new(
                        format!("{}/{}", d.provider, d.model),
                        name,
                        p.name.as_str(),
                        p.kind.as_str(),
                        d.model.as_str(),
                        &placement,
                        price,
                        1,
                        0,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    (policy, group("chat-large"), group("chat-small"))
}

fn request(tenant: &Arc<TenantInput>, model: &str, tokens: u64, tags: &[&str]) -> RequestInput {
    RequestInput {
        model: model.into(),
        operation: "chat",
        tenant: tenant.clone(),
        key: "bench".into(),
        estimated_prompt_tokens: tokens,
        max_tokens: Some(512),
        stream: true,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        headers: Vec::new(),
        session: "session-42".into(),
        prefix: Default::default(),
    }
}

/// Live statistics that differ per deployment (TTFT grows with the index).
fn stats(i: usize) -> Stats {
    Stats {
        healthy: true,
        in_flight: (i as u64 * 7) % 20,
        error_rate: 0.01,
        latency_p50_ms: 900.0,
        latency_p95_ms: 1400.0,
        ttft_p50_ms: 150.0 + 40.0 * i as f64,
        ttft_p95_ms: 300.0 + 90.0 * i as f64,
        samples: 500,
        ..Stats::default()
    }
}

fn cands(ds: &[DeploymentInput]) -> Vec<Candidate<'_>> {
    ds.iter()
        .enumerate()
        .map(|(i, d)| Candidate {
            deployment: d,
            stats: stats(i),
            tier: 0,
        })
        .collect()
}

/// CPU time consumed by the benchmarking thread.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;
    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, i: ThreadTime) -> Duration {
        i.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1_000.0 {
            (1.0, "ns")
        } else if typical < 1_000_000.0 {
            (1e-3, "µs")
        } else {
            (1e-6, "ms")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(&self, _: f64, _: &Throughput, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v = 0.0);
        "n/a"
    }
    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn policy(c: &mut Criterion) {
    decisions(c, "policy_decision");
}

fn policy_cpu(c: &mut Criterion<ThreadCpu>) {
    decisions(c, "policy_decision_cpu");
}

fn decisions<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let (policy, large, small) = load();
    let attrs = BTreeMap::new();
    let acme = Arc::new(TenantInput::new("acme", "", "us-east-1", &attrs));
    let eu = Arc::new(TenantInput::new("eu-bank", "eu", "westeurope", &attrs));
    let large_c = (
        cands(&large),
        large.iter().map(|d| policy.bind(d)).collect(),
    );
    let small_c = (
        cands(&small),
        small.iter().map(|d| policy.bind(d)).collect(),
    );
    let now = Now::from_unix_ms(1_764_000_000_000);
    let cases = [
        (
            "default_aws_burst",
            request(&acme, "chat-large", 800, &[]),
            &large_c,
        ),
        (
            "eu_residency",
            request(&eu, "chat-large", 800, &[]),
            &large_c,
        ),
        (
            "cheapest_fast",
            request(&acme, "chat-large", 800, &["cost"]),
            &large_c,
        ),
        (
            "long_prompt_affinity",
            request(&acme, "chat-large", 120_000, &[]),
            &large_c,
        ),
        (
            "small_at_edge",
            request(&acme, "chat-small", 300, &[]),
            &small_c,
        ),
    ];
    let mut g = c.benchmark_group(group);
    for (name, req, (cs, bound)) in &cases {
        let bound: &Vec<Bound> = bound;
        g.bench_function(*name, |b| {
            b.iter(|| {
                let sel = policy.select(black_box(req), &now);
                black_box(policy.rank_bound(&sel, req, &now, cs, |i| bound.get(i)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, policy);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = policy_cpu
}
criterion_main!(benches, cpu);
