//! Table-driven tests of the shipped example policy (`config/examples/conductor.yaml`):
//! request + deployment statistics → expected decision.

use std::collections::HashMap;
use std::sync::Arc;

use datamind_llm::policy::{
    Candidate, DeploymentInput, Exclusion, Now, Policy, PolicySpec, RequestInput, Stats,
    TenantInput,
};

use crate::config::{Config, parse_str_at};

const EXAMPLE: &str = include_str!("../../../config/examples/conductor.yaml");
/// The same policy with every expression in a `config/policies/*.cel` file.
const EXAMPLE_FILES: &str = include_str!("../../../config/examples/conductor-files.yaml");

fn examples_dir() -> std::path::PathBuf {
    // At run time first (see `tests/src/paths.rs`): this checkout, not the one that built it.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            std::path::PathBuf::from,
        )
        .join("../config/examples")
}

fn example() -> Config {
    example_from(EXAMPLE)
}

fn example_from(text: &str) -> Config {
    parse_str_at(
        text,
        &|name| {
            Some(if name.ends_with("_SHA256") {
                // Distinct valid digests per variable.
                crate::auth::hash_key(name)
            } else {
                format!("test-{}", name.to_ascii_lowercase())
            })
        },
        &examples_dir(),
    )
    .unwrap()
}

struct Topology {
    config: Config,
    groups: HashMap<String, Vec<DeploymentInput>>,
}

fn topology() -> Topology {
    topology_of(example())
}

fn topology_of(config: Config) -> Topology {
    let mut groups = HashMap::new();
    for m in &config.models {
        let ds = m
            .deployments
            .iter()
            .map(|d| {
                let p = config
                    .providers
                    .iter()
                    .find(|p| p.name == d.provider)
                    .unwrap();
                let price = crate::pricing::resolve(&config, d)
                    .map_or((0.0, 0.0, 0.0), |p| (p.input, p.output, p.cached_input));
                super::deployment_input(&d.provider, &m.name, p, d, price)
            })
            .collect();
        groups.insert(m.name.clone(), ds);
    }
    Topology { config, groups }
}

/// A deployment (by provider name) and how its statistics differ.
type StatsEdit = (&'static str, fn(&mut Stats));

/// One row: a request, the stats that differ from "healthy, 100 ms TTFT p95", and what
/// the policy must decide.
struct Case {
    name: &'static str,
    model: &'static str,
    tenant: &'static str,
    tokens: u64,
    max_tokens: Option<u64>,
    tags: &'static [&'static str],
    headers: &'static [(&'static str, &'static str)],
    session: &'static str,
    stats: &'static [StatsEdit],
    rule: &'static str,
    expect: Expect,
}

enum Expect {
    Denied(u16),
    /// The try order, by provider name (deployment names here are providers).
    Order(&'static [&'static str]),
    /// Only the first choice matters (the rest is strategy order).
    First(&'static str),
    /// Nothing eligible.
    Nothing,
}

const BASE: Case = Case {
    name: "",
    model: "chat-large",
    tenant: "acme",
    tokens: 500,
    max_tokens: None,
    tags: &[],
    headers: &[],
    session: "",
    stats: &[],
    rule: "",
    expect: Expect::Nothing,
};

fn run(t: &Topology, policy: &Policy, c: &Case) -> (String, Result<Vec<String>, u16>) {
    let tenant = t
        .config
        .tenants
        .iter()
        .find(|x| x.name == c.tenant)
        .map(|x| {
            TenantInput::new(
                x.name.as_str(),
                x.residency.clone().unwrap_or_default(),
                x.region.clone().unwrap_or_default(),
                &x.attributes,
            )
        })
        .unwrap();
    let req = RequestInput {
        model: c.model.into(),
        operation: "chat",
        tenant: Arc::new(tenant),
        key: "k".into(),
        estimated_prompt_tokens: c.tokens,
        max_tokens: c.max_tokens,
        stream: false,
        tags: c.tags.iter().map(|s| (*s).to_owned()).collect(),
        headers: c
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        session: c.session.into(),
        prefix: Default::default(),
    };
    let now = Now::from_unix_ms(1_764_000_000_000);
    let sel = policy.select(&req, &now);
    assert!(sel.errors.is_empty(), "{}: {:?}", c.name, sel.errors);
    if let Some(d) = &sel.deny {
        return (sel.rule_name.to_string(), Err(d.status));
    }
    let deps = &t.groups[c.model];
    let cands: Vec<Candidate<'_>> = deps
        .iter()
        .map(|d| {
            let mut s = Stats {
                healthy: true,
                ttft_p50_ms: 80.0,
                ttft_p95_ms: 100.0,
                samples: 50,
                ..Stats::default()
            };
            for (name, f) in c.stats {
                if *name == d.name {
                    f(&mut s);
                }
            }
            Candidate {
                deployment: d,
                stats: s,
                tier: 0,
            }
        })
        .collect();
    let r = policy.rank(&sel, &req, &now, &cands);
    // Bound to the deployments, the rules answer the same.
    let bound: Vec<_> = deps.iter().map(|d| policy.bind(d)).collect();
    let rb = policy.rank_bound(&sel, &req, &now, &cands, |i| bound.get(i));
    assert_eq!(r, rb, "{}: bound ranking", c.name);
    for (_, why) in &r.excluded {
        assert!(!matches!(why, Exclusion::Error(_)), "{}: {why}", c.name);
    }
    let order = r
        .order
        .iter()
        .map(|(i, _)| cands[*i].deployment.name.clone())
        .collect();
    (sel.rule_name.to_string(), Ok(order))
}

fn check(policy: &Policy, cases: &[Case]) {
    check_on(&topology(), policy, cases)
}

fn check_on(t: &Topology, policy: &Policy, cases: &[Case]) {
    for c in cases {
        let (rule, got) = run(t, policy, c);
        assert_eq!(rule, c.rule, "{}: rule", c.name);
        match (&c.expect, &got) {
            (Expect::Denied(s), Err(g)) => assert_eq!(s, g, "{}", c.name),
            (Expect::Order(want), Ok(g)) => assert_eq!(want.to_vec(), *g, "{}", c.name),
            (Expect::First(want), Ok(g)) => {
                assert_eq!(Some(*want), g.first().map(String::as_str), "{}", c.name)
            }
            (Expect::Nothing, Ok(g)) => assert!(g.is_empty(), "{}: {g:?}", c.name),
            (_, g) => panic!("{}: got {g:?}", c.name),
        }
    }
}

fn slow(s: &mut Stats) {
    s.ttft_p95_ms = 2_500.0;
    s.ttft_p50_ms = 1_800.0;
}
fn cooling(s: &mut Stats) {
    s.cooling_down = true;
    s.healthy = false;
    s.cooldown_left_ms = 20_000;
}
fn busy(s: &mut Stats) {
    s.in_flight = 64;
}
fn loaded(s: &mut Stats) {
    s.in_flight = 40;
}
fn failing(s: &mut Stats) {
    s.error_rate = 0.8;
    s.healthy = false;
}

#[test]
fn the_example_policy_decides_as_documented() {
    let t = topology();
    let policy = Policy::compile(&t.config.policy.spec()).unwrap();
    check(&policy, &example_cases());
}

/// `conductor-files.yaml` (expressions in `config/policies/*.cel`) decides exactly as the
/// inline example, active and shadow.
#[test]
fn the_example_policy_from_cel_files_decides_the_same() {
    let t = topology_of(example_from(EXAMPLE_FILES));
    let inline = example();
    assert_eq!(t.config.policy.rules.len(), inline.policy.rules.len());
    assert!(
        t.config
            .policy
            .rules
            .iter()
            .all(|r| r.when.is_none() && r.filter.is_none() && r.order.is_none())
    );
    let policy = Policy::compile(&t.config.policy.spec()).unwrap();
    check_on(&t, &policy, &example_cases());
    let shadow = Policy::compile(t.config.policy.shadow.as_ref().unwrap()).unwrap();
    check_on(&t, &shadow, &shadow_cases());
}

fn example_cases() -> Vec<Case> {
    vec![
        Case {
            name: "oversized output is refused with 400",
            max_tokens: Some(65_536),
            rule: "oversized-output",
            expect: Expect::Denied(400),
            ..BASE
        },
        Case {
            name: "EU tenant: Azure westeurope and on-prem only, fastest first",
            tenant: "eu-bank",
            stats: &[("vllm-h100-1", slow)],
            rule: "eu-residency",
            expect: Expect::Order(&["azure-weu", "vllm-h100-0", "vllm-h100-2", "vllm-h100-1"]),
            ..BASE
        },
        Case {
            name: "EU tenant whose EU deployments all cool down gets nothing else",
            tenant: "eu-bank",
            stats: &[
                ("azure-weu", cooling),
                ("vllm-h100-0", cooling),
                ("vllm-h100-1", cooling),
                ("vllm-h100-2", cooling),
            ],
            rule: "eu-residency",
            expect: Expect::Nothing,
            ..BASE
        },
        Case {
            name: "EU tenant with a long prompt stays EU (first rule wins)",
            tenant: "eu-bank",
            tokens: 120_000,
            rule: "eu-residency",
            expect: Expect::First("azure-weu"),
            ..BASE
        },
        Case {
            name: "long prompt goes on-prem, pinned by session",
            tokens: 120_000,
            session: "sess-7",
            rule: "long-prompt-onprem",
            expect: Expect::First("vllm-h100-2"),
            ..BASE
        },
        Case {
            name: "the pinned replica saturated: the session spills",
            tokens: 120_000,
            session: "sess-7",
            stats: &[("vllm-h100-2", busy)],
            rule: "long-prompt-onprem",
            expect: Expect::Order(&["vllm-h100-0", "vllm-h100-1", "vllm-h100-2"]),
            ..BASE
        },
        Case {
            name: "prompt beyond the pool's context window: nothing eligible",
            tokens: 150_000,
            rule: "long-prompt-onprem",
            expect: Expect::Nothing,
            ..BASE
        },
        Case {
            name: "small model: Workers AI first",
            model: "chat-small",
            rule: "small-at-edge",
            expect: Expect::First("workers-ai"),
            ..BASE
        },
        Case {
            name: "cost tag: cheapest healthy under 800 ms",
            tags: &["cost"],
            rule: "cheapest-fast",
            expect: Expect::Order(&[
                "vllm-h100-0",
                "vllm-h100-1",
                "vllm-h100-2",
                "vertex-asia",
                "azure-weu",
                "bedrock-use1",
                "bedrock-euw1",
            ]),
            ..BASE
        },
        Case {
            name: "low priority header: slow and failing deployments drop out",
            headers: &[("x-priority", "low")],
            stats: &[
                ("vllm-h100-0", slow),
                ("vllm-h100-1", failing),
                ("vllm-h100-2", cooling),
            ],
            rule: "cheapest-fast",
            expect: Expect::Order(&["vertex-asia", "azure-weu", "bedrock-use1", "bedrock-euw1"]),
            ..BASE
        },
        Case {
            name: "default traffic: AWS first",
            rule: "aws-burst-to-gcp",
            expect: Expect::First("bedrock-use1"),
            ..BASE
        },
        Case {
            name: "AWS saturated: burst to GCP",
            stats: &[("bedrock-use1", busy), ("bedrock-euw1", busy)],
            rule: "aws-burst-to-gcp",
            expect: Expect::First("vertex-asia"),
            ..BASE
        },
        Case {
            name: "one AWS region saturated: the other AWS region",
            stats: &[("bedrock-use1", busy)],
            rule: "aws-burst-to-gcp",
            expect: Expect::First("bedrock-euw1"),
            ..BASE
        },
    ]
}

fn shadow_cases() -> Vec<Case> {
    vec![Case {
        name: "AWS at 40 in flight: the shadow spills, the active policy would not",
        stats: &[("bedrock-use1", loaded), ("bedrock-euw1", loaded)],
        rule: "aws-burst-to-gcp-32",
        expect: Expect::First("vertex-asia"),
        ..BASE
    }]
}

#[test]
fn the_example_shadow_policy_bursts_earlier() {
    let t = topology();
    let shadow = t.config.policy.shadow.clone().unwrap_or_default();
    let shadow: PolicySpec = shadow;
    let policy = Policy::compile(&shadow).unwrap();
    check(&policy, &shadow_cases());
    let active = Policy::compile(&t.config.policy.spec()).unwrap();
    check(
        &active,
        &[Case {
            name: "AWS at 40 in flight: active keeps AWS",
            stats: &[("bedrock-use1", loaded), ("bedrock-euw1", loaded)],
            rule: "aws-burst-to-gcp",
            expect: Expect::First("bedrock-use1"),
            ..BASE
        }],
    );
}
