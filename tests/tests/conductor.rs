//! Conductor: CEL placement rules driving real traffic. Live statistics change decisions
//! (a slowed deployment loses traffic, a cooled-down one is skipped), EU residency holds
//! even when every EU deployment fails, and every decision is visible (header, access
//! log, metrics, explain endpoint, shadow-policy counters).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::gateway::run_gateway_command;
use datamind_e2e::{
    Gateway, GatewayConfig, KEY_ALL, MockLlm, MockSpec, ModelGroup, Signal, chat_body, header,
    sha256_hex,
};
use serde_json::{Value, json};

const MODEL: &str = "chat";
const EU_KEY: &str = "sk-e2e-eu-bank-3c9d";
const ADMIN_KEY: &str = "sk-e2e-admin-conductor-8e1f";

/// Two OpenAI-compatible mocks, `eu` (Azure westeurope) and `us` (AWS us-east-1), serving
/// one group; tenant `eu-bank` is EU-resident; `rules` is the policy.
fn config(eu: &MockLlm, us: &MockLlm, rules: Value) -> GatewayConfig {
    GatewayConfig::new()
        .provider(
            json!({"name": "eu", "kind": "openai", "base_url": eu.base_url(),
            "api_key": "${E2E_UPSTREAM_KEY}", "cloud": "azure", "region": "westeurope"}),
        )
        .provider(
            json!({"name": "us", "kind": "openai", "base_url": us.base_url(),
            "api_key": "${E2E_UPSTREAM_KEY}", "cloud": "aws", "region": "us-east-1",
            "labels": {"tier": "primary"}}),
        )
        .model(
            ModelGroup::new(MODEL)
                .deployment("eu", "m")
                .deployment("us", "m")
                .fallback("backup"),
        )
        .model(ModelGroup::new("backup").deployment("us", "m2"))
        .set(
            "/tenants",
            json!([{"name": "eu-bank", "residency": "eu", "region": "westeurope"}]),
        )
        .set(
            "/auth/keys",
            json!([
                {"name": "all", "sha256": sha256_hex(KEY_ALL), "tenant": "team-a", "models": ["*"]},
                {"name": "eu", "sha256": sha256_hex(EU_KEY), "tenant": "eu-bank", "models": ["*"]}
            ]),
        )
        .set("/admin", json!({"api_key_sha256": sha256_hex(ADMIN_KEY)}))
        .set("/cooldown", json!({"failures": 1, "seconds": 30}))
        .set("/policy/rules", rules)
}

async fn mocks() -> Result<(MockLlm, MockLlm)> {
    Ok((
        MockLlm::start(MockSpec::named("eu")).await?,
        MockLlm::start(MockSpec::named("us")).await?,
    ))
}

fn eu_rule() -> Value {
    json!({"name": "eu-residency", "when": "request.tenant.residency == \"eu\"",
           "filter": "deployment.cloud == \"azure\" && deployment.region == \"westeurope\"",
           "tags": {"residency": "eu"}})
}

async fn explain(gw: &Gateway, body: Value) -> Result<Value> {
    let resp = gw
        .http()
        .post(gw.admin_url("/admin/route/explain"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    anyhow::ensure!(status == 200, "explain answered {status}: {v}");
    Ok(v)
}

fn route_of(resp: &reqwest::Response) -> String {
    header(resp, "x-datamind-route").unwrap_or_default()
}

#[tokio::test]
async fn a_slowed_deployment_loses_traffic() -> Result<()> {
    let (eu, us) = mocks().await?;
    let rule = json!([{"name": "fast-only", "filter": "deployment.ttft_p95_ms < 200.0"}]);
    let gw = Gateway::start(&config(&eu, &us, rule)).await?;
    let mut served: HashMap<String, u32> = HashMap::new();
    for _ in 0..6 {
        let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hi")).await?;
        assert_eq!(resp.status(), 200);
        *served
            .entry(header(&resp, "x-datamind-deployment").unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        served.contains_key("eu/m") && served.contains_key("us/m"),
        "both deployments serve while fast: {served:?}"
    );
    us.control(json!({"ttft_ms": 400})).await?;
    let mut after: HashMap<String, u32> = HashMap::new();
    for _ in 0..12 {
        let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hi")).await?;
        assert_eq!(resp.status(), 200);
        assert!(route_of(&resp).starts_with("rule=fast-only; deployment="));
        *after
            .entry(header(&resp, "x-datamind-deployment").unwrap_or_default())
            .or_default() += 1;
    }
    // One slow answer is enough for its TTFT p95 to cross the bound.
    assert!(
        after.get("us/m").copied().unwrap_or(0) <= 1,
        "the slowed deployment kept traffic: {after:?}"
    );
    let v = explain(&gw, json!({"request": chat_body(MODEL, "hi")})).await?;
    let slow = v["excluded"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["deployment"] == "us/m"))
        .context("us/m not excluded")?;
    assert_eq!(slow["reason"], "filtered out by the rule");
    assert!(
        slow["inputs"]["ttft_p95_ms"].as_f64().unwrap_or(0.0) >= 200.0,
        "{slow}"
    );
    assert_eq!(v["candidates"][0]["deployment"], "eu/m");
    Ok(())
}

#[tokio::test]
async fn a_cooled_down_deployment_is_skipped() -> Result<()> {
    let (eu, us) = mocks().await?;
    eu.control(json!({"status": 500})).await?;
    let rule = json!([{"name": "prefer-eu", "order": "deployment.provider == \"eu\" ? 0 : 1"}]);
    let gw = Gateway::start(&config(&eu, &us, rule)).await?;
    let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hi")).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-datamind-attempts").as_deref(), Some("2"));
    assert_eq!(route_of(&resp), "rule=prefer-eu; deployment=us/m");
    let tried = eu.stats().await?.requests;
    for _ in 0..3 {
        let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hi")).await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-datamind-attempts").as_deref(), Some("1"));
        assert_eq!(route_of(&resp), "rule=prefer-eu; deployment=us/m");
    }
    assert_eq!(
        eu.stats().await?.requests,
        tried,
        "cooled-down deployment was tried"
    );
    let v = explain(&gw, json!({"request": chat_body(MODEL, "hi")})).await?;
    let cooled = &v["excluded"][0];
    assert_eq!(cooled["deployment"], "eu/m");
    assert!(
        cooled["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cooling down"),
        "{cooled}"
    );
    assert_eq!(cooled["inputs"]["cooling_down"], true);
    Ok(())
}

#[tokio::test]
async fn an_eu_tenant_never_reaches_a_non_eu_deployment() -> Result<()> {
    let (eu, us) = mocks().await?;
    let gw = Gateway::start(&config(&eu, &us, json!([eu_rule()]))).await?;
    // Healthy: EU tenant on the EU deployment, others anywhere.
    for _ in 0..3 {
        let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(route_of(&resp), "rule=eu-residency; deployment=eu/m");
    }
    let resp = gw
        .http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(EU_KEY)
        .header("x-request-id", "eu-audit-1")
        .json(&chat_body(MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let line = gw.access_log_line("eu-audit-1").await?;
    assert_eq!(line["tenant"], "eu-bank");
    assert_eq!(line["rule"], "eu-residency");
    assert_eq!(line["deployment"], "eu/m");
    assert_eq!(line["cloud"], "azure");
    assert_eq!(line["region"], "westeurope");
    assert_eq!(line["tags"]["residency"], "eu");

    // Every EU deployment fails: a clear error, never the US deployments (nor the
    // fallback group, which is all US).
    eu.control(json!({"status": 503})).await?;
    us.reset_stats().await?;
    let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
    assert_eq!(resp.status(), 503);
    assert_eq!(route_of(&resp), "rule=eu-residency");
    // Now cooling down: refused at once, with the rule named.
    let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "no_capacity", "{body}");
    assert_eq!(
        us.stats().await?.requests,
        0,
        "EU data reached a US deployment"
    );
    // Other tenants still get served (by the US deployment).
    let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hi")).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(route_of(&resp), "rule=default; deployment=us/m");
    Ok(())
}

#[tokio::test]
async fn a_rule_with_no_eligible_deployment_or_a_deny_answers_clearly() -> Result<()> {
    let (eu, us) = mocks().await?;
    let rules = json!([
        {"name": "no-huge", "when": "has(request.max_tokens) && request.max_tokens > 1000",
         "deny": {"status": 400, "message": "max_tokens above 1000 is not served"}},
        {"name": "gpu-only", "when": "\"gpu\" in request.tags",
         "filter": "\"gpu\" in deployment.labels"}
    ]);
    let gw = Gateway::start(&config(&eu, &us, rules)).await?;
    let mut body = chat_body(MODEL, "hi");
    body["max_tokens"] = json!(5000);
    let resp = gw.chat(KEY_ALL, &body).await?;
    assert_eq!(resp.status(), 400);
    assert_eq!(route_of(&resp), "rule=no-huge");
    let err: Value = resp.json().await?;
    assert_eq!(err["error"]["code"], "policy_denied");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_tokens above 1000"),
        "{err}"
    );
    let resp = gw
        .http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("x-datamind-tags", "batch, gpu")
        .json(&chat_body(MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 503);
    let err: Value = resp.json().await?;
    assert_eq!(err["error"]["code"], "no_eligible_deployment", "{err}");
    assert_eq!(eu.stats().await?.requests + us.stats().await?.requests, 0);
    let m = gw
        .metrics_when("decision counters", |m| {
            m.sum(
                "datamind_route_decisions_total",
                &[("rule", "gpu-only"), ("outcome", "no_candidate")],
            ) == 1.0
        })
        .await?;
    assert_eq!(
        m.sum(
            "datamind_route_decisions_total",
            &[("rule", "no-huge"), ("outcome", "denied")]
        ),
        1.0
    );
    Ok(())
}

#[tokio::test]
async fn policy_config_errors_are_reported_with_their_location() -> Result<()> {
    let (eu, us) = mocks().await?;
    let bad = config(
        &eu,
        &us,
        json!([{"name": "typo", "filter": "deployment.regoin == \"westeurope\""},
               {"name": "syntax", "order": "deployment.price_input +"}]),
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        bad.render("127.0.0.1:1".parse()?, "127.0.0.1:2".parse()?),
    )?;
    let out = run_gateway_command(&["check", "--config", &path.to_string_lossy()]).await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("policy.rules[0].filter: 1:11: `deployment` has no field `regoin`"),
        "{text}"
    );
    assert!(text.contains("policy.rules[1].order: 1:"), "{text}");

    // A running gateway keeps its policy when a reload brings a broken one.
    let good = config(&eu, &us, json!([eu_rule()]));
    let gw = Gateway::start(&good).await?;
    gw.rewrite_config(&bad)?;
    gw.signal(Signal::Hup)?;
    gw.metrics_when("a failed reload", |m| {
        m.sum("datamind_config_reloads_total", &[("result", "failure")]) >= 1.0
    })
    .await?;
    let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
    assert_eq!(route_of(&resp), "rule=eu-residency; deployment=eu/m");
    Ok(())
}

/// A rule's filter in a `.cel` file: editing the file reloads the policy; a broken file is
/// reported with its path and position and the running policy stays.
#[tokio::test]
async fn a_policy_file_edit_reloads_and_a_broken_one_keeps_the_running_policy() -> Result<()> {
    let (eu, us) = mocks().await?;
    let policies = tempfile::tempdir()?;
    let file = policies.path().join("eu_only.cel");
    std::fs::write(
        &file,
        "// EU tenants: Azure only\ndeployment.cloud == \"azure\"\n",
    )?;
    let rule = json!([{"name": "eu-files", "when": "request.tenant.residency == \"eu\"",
        "filter_file": file.to_string_lossy()}]);
    let gw = Gateway::start(&config(&eu, &us, rule)).await?;
    let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
    assert_eq!(route_of(&resp), "rule=eu-files; deployment=eu/m");

    // Broken: the reload fails (watcher, or SIGHUP), the running policy keeps serving.
    std::fs::write(
        &file,
        "deployment.cloud == \"azure\"\n  && deployment.regoin == \"x\"\n",
    )?;
    gw.signal(Signal::Hup)?;
    gw.metrics_when("a failed reload", |m| {
        m.sum("datamind_config_reloads_total", &[("result", "failure")]) >= 1.0
    })
    .await?;
    let log = gw.stderr_text() + &gw.stdout_text();
    assert!(
        log.contains("eu_only.cel:2:16: `deployment` has no field `regoin`"),
        "{}",
        gw.stderr_tail()
    );
    let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
    assert_eq!(route_of(&resp), "rule=eu-files; deployment=eu/m");

    // Fixed to a different filter: the edit alone (file watch) brings it in.
    std::fs::write(&file, "deployment.cloud == \"aws\"\n")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let resp = gw.chat(EU_KEY, &chat_body(MODEL, "hi")).await?;
        if route_of(&resp) == "rule=eu-files; deployment=us/m" {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the edited policy file was not reloaded: {}",
            gw.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn explain_shows_the_rule_the_ranking_and_the_exclusions() -> Result<()> {
    let (eu, us) = mocks().await?;
    let rules = json!([eu_rule(),
        {"name": "cheap-first", "description": "by label", "order": "\"tier\" in deployment.labels && deployment.labels.tier == \"primary\" ? 0 : 1"}]);
    let gw = Gateway::start(&config(&eu, &us, rules)).await?;
    let unauthorized = gw
        .http()
        .post(gw.admin_url("/admin/route/explain"))
        .json(&json!({"request": chat_body(MODEL, "hi")}))
        .send()
        .await?;
    assert_eq!(unauthorized.status(), 401);

    let v = explain(
        &gw,
        json!({"tenant": "eu-bank", "request": chat_body(MODEL, "hi")}),
    )
    .await?;
    assert_eq!(v["rule"]["name"], "eu-residency");
    assert_eq!(v["tags"]["residency"], "eu");
    let ranked: Vec<&str> = v["candidates"]
        .as_array()
        .context("candidates")?
        .iter()
        .filter_map(|c| c["deployment"].as_str())
        .collect();
    assert_eq!(ranked, vec!["eu/m"]);
    let excluded: Vec<(&str, &str)> = v["excluded"]
        .as_array()
        .context("excluded")?
        .iter()
        .map(|x| {
            (
                x["deployment"].as_str().unwrap_or_default(),
                x["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        excluded,
        vec![
            ("us/m", "filtered out by the rule"),
            ("us/m2", "filtered out by the rule")
        ]
    );
    assert_eq!(v["excluded"][0]["inputs"]["cloud"], "aws");
    assert_eq!(v["excluded"][1]["tier"], 1, "fallback group is tier 1");

    let v = explain(&gw, json!({"request": chat_body(MODEL, "hi")})).await?;
    assert_eq!(v["rule"]["name"], "cheap-first");
    assert_eq!(v["rule"]["description"], "by label");
    assert_eq!(v["candidates"][0]["deployment"], "us/m");
    assert_eq!(v["candidates"][0]["sort_key"], 0.0);
    assert_eq!(v["candidates"][1]["deployment"], "eu/m");
    // Nothing went upstream.
    assert_eq!(eu.stats().await?.requests + us.stats().await?.requests, 0);
    Ok(())
}

#[tokio::test]
async fn a_shadow_policy_counts_disagreements_without_changing_traffic() -> Result<()> {
    let (eu, us) = mocks().await?;
    let config = config(
        &eu,
        &us,
        json!([{"name": "prefer-eu", "order": "deployment.provider == \"eu\" ? 0 : 1"}]),
    )
    .set(
        "/policy/shadow",
        json!({"rules": [
            {"name": "prefer-us", "when": "request.model == \"chat\"",
             "order": "deployment.provider == \"us\" ? 0 : 1"}]}),
    );
    let gw = Gateway::start(&config).await?;
    for _ in 0..4 {
        let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hi")).await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(route_of(&resp), "rule=prefer-eu; deployment=eu/m");
    }
    let resp = gw.chat(KEY_ALL, &chat_body("backup", "hi")).await?;
    assert_eq!(resp.status(), 200);
    let m = gw
        .metrics_when("shadow counters", |m| {
            m.sum(
                "datamind_route_shadow_evaluations_total",
                &[("result", "disagree")],
            ) == 4.0
        })
        .await?;
    assert_eq!(
        m.sum(
            "datamind_route_shadow_evaluations_total",
            &[("result", "agree")]
        ),
        1.0,
        "the backup group has one deployment: both policies agree"
    );
    assert_eq!(
        m.sum(
            "datamind_route_shadow_disagreements_total",
            &[("rule", "prefer-eu"), ("shadow_rule", "prefer-us")]
        ),
        4.0
    );
    assert_eq!(
        m.sum(
            "datamind_route_decisions_total",
            &[("rule", "prefer-eu"), ("outcome", "placed")]
        ),
        5.0
    );
    assert_eq!(us.stats().await?.requests, 1, "only the backup request");
    datamind_e2e::eventually(
        "a disagreement log line",
        Duration::from_secs(3),
        || async {
            Ok(gw
                .stderr_tail()
                .contains("shadow policy disagrees")
                .then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// Five conversations of four turns each (one shared system prompt), interleaved, through a
/// pool of three replicas that simulate vLLM's prefix cache; with `sessions` each carries
/// `x-session-id`. Returns the pool's hit rate.
async fn prefix_hit_rate(rules: Value, sessions: bool) -> Result<f64> {
    let mut pool = Vec::new();
    let mut config = GatewayConfig::new();
    let mut group = ModelGroup::new("pool");
    for i in 0..3 {
        let m = MockLlm::start(MockSpec::named(&format!("vllm-{i}"))).await?;
        config = config.provider(json!({"name": format!("vllm-{i}"), "kind": "openai",
            "base_url": m.base_url(), "cloud": "onprem", "region": "dc1"}));
        group = group.deployment(&format!("vllm-{i}"), "llama");
        pool.push(m);
    }
    let config = config
        .model(group.strategy("weighted_round_robin"))
        .set(
            "/auth/keys",
            json!([{"name": "all", "sha256": sha256_hex(KEY_ALL), "tenant": "team-a"}]),
        )
        .set("/policy/rules", rules);
    let gw = Gateway::start(&config).await?;
    let system = json!({"role": "system", "content": "You answer questions about the fleet."});
    let mut history: Vec<Vec<Value>> = vec![vec![system]; 5];
    for turn in 0..4 {
        for (s, h) in history.iter_mut().enumerate() {
            h.push(json!({"role": "user", "content": format!("session {s} question {turn}")}));
            let mut req = gw
                .http()
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(KEY_ALL);
            if sessions {
                req = req.header("x-session-id", format!("session-{s}"));
            }
            let resp = req
                .json(&json!({"model": "pool", "messages": h}))
                .send()
                .await?;
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await?;
            h.push(body["choices"][0]["message"].clone());
        }
    }
    let (mut hits, mut misses) = (0.0, 0.0);
    for m in &pool {
        let v: Value = gw.http().get(m.url("/stats")).send().await?.json().await?;
        hits += v["prefix_cache_hits"].as_f64().context("hits")?;
        misses += v["prefix_cache_misses"].as_f64().context("misses")?;
    }
    anyhow::ensure!(hits + misses == 20.0, "{hits} hits + {misses} misses");
    Ok(hits / (hits + misses))
}

#[tokio::test]
async fn session_affinity_raises_the_prefix_cache_hit_rate() -> Result<()> {
    let round_robin = prefix_hit_rate(json!([]), true).await?;
    let affinity = prefix_hit_rate(
        json!([{"name": "pool-affinity",
        "affinity": {"key": "request.session", "load_factor": 1.25}}]),
        true,
    )
    .await?;
    eprintln!("prefix-cache hit rate: affinity {affinity:.2}, round-robin {round_robin:.2}");
    // Every turn after the first finds its conversation on the same replica.
    assert!(affinity >= 0.75, "affinity hit rate {affinity}");
    assert!(round_robin <= 0.5, "round-robin hit rate {round_robin}");
    Ok(())
}

/// Without session ids, the gateway's own prompt-prefix key (`request.prefix`: the system
/// prompt and first question) keeps each conversation on one replica.
#[tokio::test]
async fn prefix_affinity_without_session_ids_raises_the_hit_rate() -> Result<()> {
    let rules = json!([{"name": "pool-affinity", "affinity": {
        "key": "request.session != \"\" ? request.session : request.prefix",
        "load_factor": 1.25}}]);
    let round_robin = prefix_hit_rate(json!([]), false).await?;
    let prefix = prefix_hit_rate(rules, false).await?;
    eprintln!(
        "prefix-cache hit rate without session ids: prefix affinity {prefix:.2}, round-robin {round_robin:.2}"
    );
    assert!(prefix >= 0.75, "prefix affinity hit rate {prefix}");
    assert!(round_robin <= 0.5, "round-robin hit rate {round_robin}");
    Ok(())
}
