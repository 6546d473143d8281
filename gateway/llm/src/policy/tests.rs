//! Engine semantics: compile errors, rule selection, filter, order, exclusions, affinity.
//! The shipped example policies have their own table-driven tests in the gateway
//! (`gateway/src/conductor/tests.rs`), which load `config/examples/conductor.yaml`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

fn spec(json: &str) -> PolicySpec {
    serde_json::from_str(json).unwrap()
}

fn tenant(residency: &str) -> Arc<TenantInput> {
    let mut attrs = BTreeMap::new();
    attrs.insert("tier".to_owned(), "gold".to_owned());
    Arc::new(TenantInput::new("acme", residency, "", &attrs))
}

fn request(residency: &str, tokens: u64) -> RequestInput {
    RequestInput {
        model: "gpt-4o".into(),
        operation: "chat",
        tenant: tenant(residency),
        key: "k".into(),
        estimated_prompt_tokens: tokens,
        max_tokens: None,
        stream: false,
        tags: vec!["batch".into()],
        headers: vec![("x-priority".into(), "high".into())],
        session: String::new(),
        prefix: Default::default(),
    }
}

fn dep(name: &str, cloud: &str, region: &str, price: f64) -> DeploymentInput {
    let mut labels = BTreeMap::new();
    labels.insert("gpu".to_owned(), "h100".to_owned());
    let placement = Placement {
        cloud: cloud.into(),
        region: region.into(),
        context_window: 128_000,
        labels,
    };
    DeploymentInput::new(
        name,
        "gpt-4o",
        name,
        "openai",
        "m",
        &placement,
        (price, price * 4.0, 0.0),
        1,
        0,
    )
}

fn healthy(ttft: f64) -> Stats {
    Stats {
        healthy: true,
        ttft_p95_ms: ttft,
        ..Stats::default()
    }
}

fn names<'a>(r: &Ranking, c: &[Candidate<'a>]) -> Vec<&'a str> {
    r.order
        .iter()
        .map(|(i, _)| c[*i].deployment.name.as_str())
        .collect()
}

#[test]
fn compile_errors_name_the_rule_field_and_position() {
    let errs = Policy::compile(&spec(
        r#"{"rules":[
            {"name":"a","when":"request.tenant.residancy == 'eu'","filter":"true"},
            {"name":"b","filter":"deployment.prce < 1"},
            {"name":"c","when":"deployment.cloud == 'aws'","order":"1"},
            {"name":"d","filter":"(("},
            {"name":"e","filter":"x > 1"},
            {"name":"a","tags":{"k":"v"}},
            {"name":"f"}
        ]}"#,
    ))
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    for needle in [
        "rules[0].when: 1:15: `request.tenant` has no field `residancy`",
        "rules[1].filter: 1:11: `deployment` has no field `prce`",
        "rules[2].when: 1:1: `deployment` is not available here",
        "rules[3].filter: 1:",
        "rules[4].filter: 1:1: unknown variable `x`",
        "rules[5].name: empty, reserved or duplicate rule name \"a\"",
        "rules[6].name: the rule does nothing",
    ] {
        assert!(all.contains(needle), "missing {needle} in:\n{all}");
    }
}

#[test]
fn comprehension_variables_and_type_names_are_not_unknown() {
    Policy::compile(&spec(
        r#"{"rules":[{"name":"a",
            "when":"request.tags.exists(t, t == 'batch') && type(request.model) == string",
            "filter":"['x','y'].all(n, n != deployment.name) && has(request.max_tokens) == false"}]}"#,
    ))
    .unwrap();
}

#[test]
fn first_placement_rule_wins_and_tag_rules_accumulate() {
    let p = Policy::compile(&spec(
        r#"{"rules":[
            {"name":"tag-gold","when":"request.tenant.attributes.tier == 'gold'","tags":{"tier":"gold"}},
            {"name":"eu","when":"request.tenant.residency == 'eu'","filter":"deployment.region == 'westeurope'","tags":{"residency":"eu"}},
            {"name":"big","when":"request.estimated_prompt_tokens > 100000","filter":"deployment.cloud == 'onprem'"},
            {"name":"cheapest","order":"deployment.price_input"}
        ]}"#,
    ))
    .unwrap();
    let now = Now::default();
    let s = p.select(&request("eu", 200_000), &now);
    assert_eq!(&*s.rule_name, "eu");
    let tags: Vec<_> = s.tag_pairs().collect();
    assert_eq!(tags, vec![("tier", "gold"), ("residency", "eu")]);
    assert_eq!(&*p.select(&request("", 200_000), &now).rule_name, "big");
    assert_eq!(&*p.select(&request("", 10), &now).rule_name, "cheapest");
    let none = Policy::compile(&spec(
        r#"{"rules":[{"name":"x","when":"false","order":"1"}]}"#,
    ))
    .unwrap()
    .select(&request("", 1), &now);
    assert_eq!((&*none.rule_name, none.rule), (DEFAULT_RULE, None));
}

#[test]
fn filter_order_and_exclusions() {
    let p = Policy::compile(&spec(
        r#"{"rules":[{"name":"fast-cheap",
            "filter":"deployment.healthy && deployment.ttft_p95_ms < 800",
            "order":"deployment.price_input"}]}"#,
    ))
    .unwrap();
    let (a, b, c, d, e) = (
        dep("a", "aws", "us-east-1", 3.0),
        dep("b", "gcp", "asia-east1", 1.0),
        dep("c", "azure", "westeurope", 2.0),
        dep("d", "onprem", "dc1", 0.5),
        dep("e", "aws", "eu-west-1", 0.1),
    );
    let cooling = Stats {
        cooling_down: true,
        cooldown_left_ms: 900,
        ..healthy(10.0)
    };
    let cands = [
        Candidate {
            deployment: &a,
            stats: healthy(100.0),
            tier: 0,
        },
        Candidate {
            deployment: &b,
            stats: healthy(300.0),
            tier: 0,
        },
        Candidate {
            deployment: &c,
            stats: healthy(2000.0),
            tier: 0,
        },
        Candidate {
            deployment: &d,
            stats: cooling,
            tier: 0,
        },
        Candidate {
            deployment: &e,
            stats: healthy(50.0),
            tier: 1,
        },
    ];
    let req = request("", 10);
    let now = Now::default();
    let sel = p.select(&req, &now);
    let r = p.rank(&sel, &req, &now, &cands);
    // Fallback tier after the requested group, even though it is cheapest.
    assert_eq!(names(&r, &cands), vec!["b", "a", "e"]);
    assert_eq!(r.order[0].1, Some(1.0));
    assert_eq!(
        r.excluded,
        vec![
            (2, Exclusion::Filtered),
            (3, Exclusion::CoolingDown { left_ms: 900 })
        ]
    );
}

#[test]
fn deny_and_failing_expressions() {
    let p = Policy::compile(&spec(
        r#"{"rules":[
            {"name":"no-huge","when":"has(request.max_tokens) && request.max_tokens > 100000","deny":{"message":"max_tokens too large","status":400}},
            {"name":"bad","filter":"deployment.labels.missing == 'x'"}
        ]}"#,
    ))
    .unwrap();
    let now = Now::default();
    let mut req = request("", 1);
    req.max_tokens = Some(200_000);
    let s = p.select(&req, &now);
    assert_eq!(s.deny.as_ref().map(|d| d.status), Some(400));
    req.max_tokens = None;
    let s = p.select(&req, &now);
    assert_eq!(&*s.rule_name, "bad");
    let a = dep("a", "aws", "x", 1.0);
    let cands = [Candidate {
        deployment: &a,
        stats: healthy(1.0),
        tier: 0,
    }];
    let r = p.rank(&s, &req, &now, &cands);
    assert!(r.order.is_empty());
    assert!(matches!(&r.excluded[0].1, Exclusion::Error(m) if m.contains("missing")));
}

#[test]
fn inputs_read_as_documented() {
    let p = Policy::compile(&spec(
        r#"{"rules":[{"name":"all",
            "when":"request.model == 'gpt-4o' && request.operation == 'chat' && request.key == 'k' && !request.stream && 'batch' in request.tags && request.headers['x-priority'] == 'high' && request.session == '' && now.hour == 1 && now.minute == 2 && now.weekday == 4 && now.unix == 3720",
            "filter":"deployment.labels.gpu == 'h100' && deployment.context_window == 128000 && deployment.price_output == 12.0 && deployment.group == 'gpt-4o' && deployment.kind == 'openai' && deployment.weight == 1 && !deployment.fallback && deployment.in_flight == 7 && deployment.error_rate < 0.5 && deployment.ttft_p95_ms < 800 && deployment.latency_p95_ms == 0.0"}]}"#,
    ))
    .unwrap();
    let now = Now::from_unix_ms(3_720_000);
    let req = request("", 1);
    let sel = p.select(&req, &now);
    assert!(sel.errors.is_empty(), "{:?}", sel.errors);
    assert_eq!(&*sel.rule_name, "all");
    let a = dep("a", "onprem", "dc1", 3.0);
    let stats = Stats {
        in_flight: 7,
        ..healthy(100.0)
    };
    let cands = [Candidate {
        deployment: &a,
        stats,
        tier: 0,
    }];
    let r = p.rank(&sel, &req, &now, &cands);
    assert_eq!(r.excluded, vec![]);
    assert_eq!(names(&r, &cands), vec!["a"]);
}

#[test]
fn affinity_pins_a_session_and_spills_when_saturated() {
    let p = Policy::compile(&spec(
        r#"{"rules":[{"name":"pool","filter":"deployment.cloud == 'onprem'",
            "affinity":{"key":"request.session","load_factor":1.25}}]}"#,
    ))
    .unwrap();
    let reps: Vec<DeploymentInput> = (0..3)
        .map(|i| dep(&format!("vllm-{i}"), "onprem", "dc1", 0.0))
        .collect();
    let now = Now::default();
    let mut req = request("", 1);
    req.session = "s-42".into();
    let sel = p.select(&req, &now);
    assert_eq!(sel.affinity_key.as_deref(), Some("s-42"));
    let mut cands: Vec<Candidate<'_>> = reps
        .iter()
        .map(|d| Candidate {
            deployment: d,
            stats: healthy(1.0),
            tier: 0,
        })
        .collect();
    let first = names(&p.rank(&sel, &req, &now, &cands), &cands)[0];
    for _ in 0..3 {
        assert_eq!(names(&p.rank(&sel, &req, &now, &cands), &cands)[0], first);
    }
    let pinned = cands
        .iter()
        .position(|c| c.deployment.name == first)
        .unwrap();
    cands[pinned].stats.in_flight = 8;
    let spilled = names(&p.rank(&sel, &req, &now, &cands), &cands);
    assert_ne!(spilled[0], first);
    assert_eq!(spilled[2], first);
}

#[test]
fn expressions_from_files_compile_with_file_positions() {
    let mut s = spec(
        r#"{"rules":[
            {"name":"a","when_file":"p/when.cel","filter_file":"p/bad.cel"},
            {"name":"b","order_file":"p/missing.cel"}
        ]}"#,
    );
    let errs = s.read_files(&mut |path| match path {
        "p/when.cel" => Ok("// a comment\nrequest.model == 'gpt-4o'".into()),
        "p/bad.cel" => {
            Ok("// EU only\ndeployment.cloud == 'azure'\n  && deployment.regoin == 'x'".into())
        }
        _ => Err("No such file or directory".into()),
    });
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        ["rules[1].order_file: p/missing.cel: No such file or directory"]
    );
    let errs = Policy::compile(&s).unwrap_err();
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "rules[0].filter_file: p/bad.cel:3:16: `deployment` has no field `regoin`"
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"rules[1].order_file: p/missing.cel: not read".to_owned()),
        "{msgs:?}"
    );
    // Fixed files compile, comments and all, and behave as inline expressions.
    s.read_files(&mut |path| match path {
        "p/when.cel" => Ok("// a comment\nrequest.model == 'gpt-4o'".into()),
        "p/bad.cel" => Ok("// EU only\ndeployment.cloud == 'azure'".into()),
        _ => Ok("deployment.price_input".into()),
    });
    let p = Policy::compile(&s).unwrap();
    assert_eq!(
        p.rules()[0].filter_source(),
        Some("// EU only\ndeployment.cloud == 'azure'")
    );
    let sel = p.select(&request("", 10), &Now::default());
    assert_eq!(&*sel.rule_name, "a");
}

#[test]
fn compiled_rules_know_what_they_read() {
    let p = Policy::compile(&spec(
        r#"{"rules":[
            {"name":"a","when":"'x' in request.tags","filter":"deployment.in_flight < 3"},
            {"name":"b","when":"has(request.max_tokens)","order":"deployment.ttft_p95_ms"},
            {"name":"c","filter":"deployment.healthy && request.tenant.residency == 'eu'"}
        ]}"#,
    ))
    .unwrap();
    let r = p.reads();
    assert!(r.request_field("tags") && r.request_field("max_tokens") && r.request_field("tenant"));
    assert!(!r.request_field("headers") && !r.request_field("session"));
    let ewma: Vec<bool> = p.rules().iter().map(Rule::reads_ewma).collect();
    assert_eq!(ewma, [false, true, true]);
    let whole = Policy::compile(&spec(
        r#"{"rules":[{"name":"a","filter":"size([request]) == 1"}]}"#,
    ))
    .unwrap();
    assert!(whole.reads().request_field("session"));
}

/// The allocation-free evaluator answers exactly as the `cel` program wherever it answers,
/// and it answers for every expression of the shipped example policy.
#[test]
fn the_fast_path_agrees_with_cel() {
    const REQ_EXPRS: &[&str] = &[
        "has(request.max_tokens) && request.max_tokens > 32768",
        "request.tenant.residency == \"eu\"",
        "request.estimated_prompt_tokens > 100000",
        "request.model == \"chat-small\"",
        "\"cost\" in request.tags || (\"x-priority\" in request.headers && request.headers[\"x-priority\"] == \"low\")",
        "request.session != \"\" ? request.session : request.prefix",
        "request.tenant.attributes[\"tier\"] == \"gold\" && !request.stream",
        "now.hour >= 8 && now.weekday < 6 || now.minute == -1",
        // Not answered fast (mixed types, missing field): CEL decides.
        "request.max_tokens > 10",
        "request.estimated_prompt_tokens > 1.5",
    ];
    const DEP_EXPRS: &[&str] = &[
        "(deployment.cloud == \"azure\" && deployment.region == \"westeurope\") || deployment.cloud == \"onprem\"",
        "deployment.ttft_p95_ms",
        "deployment.cloud == \"onprem\" && deployment.context_window >= request.estimated_prompt_tokens",
        "deployment.cloud == \"cloudflare\" ? 0 : 1",
        "deployment.healthy && deployment.ttft_p95_ms < 800.0",
        "deployment.price_input + deployment.price_output",
        "deployment.cloud != \"aws\" || deployment.in_flight < 64",
        "deployment.cloud == \"aws\" ? 0 : (deployment.cloud == \"gcp\" ? 1 : 2)",
        "\"gpu\" in deployment.labels && deployment.labels[\"gpu\"] == \"h100\" && !deployment.fallback",
        "deployment.error_rate * 2.0 - 0.5 < deployment.latency_p95_ms - deployment.latency_p50_ms",
        "deployment.in_flight - deployment.queue_depth <= deployment.max_in_flight + deployment.weight",
        "deployment.in_flight < 64.0",
        "deployment.price_input + 1",
    ];
    let env = Env::stdlib();
    let mut requests = Vec::new();
    for (res, tokens, max, tags, prio, session) in [
        ("eu", 500, None, vec![], "high", ""),
        (
            "",
            120_000,
            Some(65_536),
            vec!["cost".to_owned()],
            "low",
            "s-1",
        ),
        ("", 500, Some(100), vec!["batch".to_owned()], "low", ""),
    ] {
        let mut r = request(res, tokens);
        r.max_tokens = max;
        r.tags = tags;
        r.headers = vec![("x-priority".into(), prio.into())];
        r.session = session.into();
        requests.push(r);
    }
    let deps = [
        dep("a", "aws", "us-east-1", 3.0),
        dep("b", "azure", "westeurope", 2.5),
        dep("c", "onprem", "dc1", 0.4),
        dep("d", "cloudflare", "edge", 0.03),
    ];
    let stats = [
        healthy(300.0),
        Stats {
            in_flight: 70,
            error_rate: 0.2,
            latency_p95_ms: 9.0,
            ..healthy(900.0)
        },
    ];
    let (mut fast_answers, mut total) = (0, 0);
    let mut check =
        |src: &str, allowed: &[&str], inputs: &fast::Inputs<'_>, ctx: &Context<'_, '_>| {
            let e = compile_expr(&env, src, allowed).unwrap();
            let want = e.program.execute(ctx);
            total += 1;
            if let Some(got) = e.fast.as_ref().and_then(|f| f.eval(inputs)) {
                fast_answers += 1;
                assert_eq!(
                    format!("{:?}", Ok::<_, ()>(got)),
                    format!("{want:?}"),
                    "{src}"
                );
            }
            // Bound to the deployment, the fast form answers (or gives up) the same.
            if let (Some(f), Some((d, _, _))) = (&e.fast, inputs.deployment) {
                assert_eq!(
                    format!("{:?}", f.bind(d).eval(inputs)),
                    format!("{:?}", f.eval(inputs)),
                    "{src} bound to {}",
                    d.name
                );
            }
        };
    for (ri, r) in requests.iter().enumerate() {
        let now = Now {
            unix: 1_764_000_000 + ri as i64 * 40_000,
        };
        let scope = RequestScope {
            request: RequestView(r),
            now: NowView(&now),
        };
        let mut root = Context::with_env(Arc::new(Env::stdlib()));
        root.set_variable_resolver(&scope);
        let req_inputs = fast::Inputs {
            request: r,
            now,
            deployment: None,
        };
        for src in REQ_EXPRS {
            check(src, &["request", "now"], &req_inputs, &root);
        }
        for d in &deps {
            for s in &stats {
                for fallback in [false, true] {
                    let view = DeploymentView {
                        info: d,
                        stats: s,
                        fallback,
                    };
                    let mut ctx = root.new_inner_scope();
                    ctx.set_variable_resolver(&view);
                    let inputs = fast::Inputs {
                        request: r,
                        now,
                        deployment: Some((d, s, fallback)),
                    };
                    for src in DEP_EXPRS {
                        check(src, &["request", "deployment", "now"], &inputs, &ctx);
                    }
                }
            }
        }
    }
    assert!(
        fast_answers * 10 >= total * 8,
        "{fast_answers} of {total} answered fast"
    );
    // Every expression of the shipped example has the fast form.
    for src in REQ_EXPRS.iter().take(6).chain(DEP_EXPRS.iter().take(8)) {
        let e = compile_expr(&env, src, &["request", "deployment", "now"]).unwrap();
        assert!(e.fast.is_some(), "no fast form for {src}");
    }
}
