//! Budgets and spend: priced deployments, the request that would cross a hard budget is
//! refused before it is sent (the upstream never sees it), spend per tenant and key read
//! back through the admin API, and the budget metrics.

use anyhow::Result;
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream};
use datamind_e2e::{KEY_ALL, KEY_LIMITED, MockSpec, sha256_hex};
use serde_json::{Value, json};

const ADMIN: &str = "admin-e2e-budgets-3b7c";

/// `CHAT_MODEL` costs 0.1 USD per completion token; the mock answers 5 tokens, so every
/// request costs 0.5 USD, and asking `max_tokens: 5` makes its worst case 0.5 too.
async fn setup() -> Result<OneUpstream> {
    OneUpstream::start_with(MockSpec::named("up1"), |c| {
        c.set(
            "/prices",
            json!({"mock-chat-a": {"input": 0.0, "output": 100000.0}}),
        )
        .set(
            "/tenants",
            json!([{"name": "team-a",
                    "budget": {"period": "day", "hard_usd": 2.2, "soft_usd": 1.0}}]),
        )
        .set(
            "/auth/keys/1/budget",
            json!({"period": "month", "hard_usd": 0.4}),
        )
        .set("/admin", json!({"api_key_sha256": sha256_hex(ADMIN)}))
    })
    .await
}

fn body(i: usize) -> Value {
    json!({"model": CHAT_MODEL, "max_tokens": 5,
           "messages": [{"role": "user", "content": format!("spend {i}")}]})
}

#[tokio::test]
async fn the_request_that_would_cross_a_hard_budget_is_never_sent() -> Result<()> {
    let s = setup().await?;
    let gw = &s.gateway;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = gw.chat(KEY_ALL, &body(i)).await?;
        let status = r.status().as_u16();
        statuses.push(status);
        if status == 429 {
            let b: Value = r.json().await?;
            assert_eq!(b["error"]["type"], "insufficient_quota", "{b}");
            assert_eq!(b["error"]["code"], "insufficient_quota", "{b}");
            let msg = b["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains("tenant's daily budget of 2.2 USD"), "{msg}");
        } else {
            let _: Value = r.json().await?;
        }
    }
    // 4 × 0.5 = 2.0 spent; a fifth (worst case 0.5) would reach 2.5 > 2.2.
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    assert_eq!(
        s.mock.stats().await?.requests,
        4,
        "a refused request went upstream"
    );

    // A key budget smaller than one request's worst case refuses at once.
    let r = gw.chat(KEY_LIMITED, &body(9)).await?;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await?;
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("key's monthly budget")),
        "{b}"
    );
    assert_eq!(s.mock.stats().await?.requests, 4);

    // Spend through the admin API (admin credential required).
    let url = gw.admin_url("/admin/spend?tenant=team-a");
    let r = gw.http().get(&url).send().await?;
    assert_eq!(r.status(), 401);
    let r = gw.http().get(&url).bearer_auth(ADMIN).send().await?;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await?;
    assert_eq!(v["scope"], "tenant");
    assert_eq!(v["day"]["requests"], 4, "{v}");
    assert_eq!(v["day"]["completion_tokens"], 20, "{v}");
    let spent = v["day"]["spent_usd"].as_f64().unwrap_or_default();
    assert!((spent - 2.0).abs() < 1e-9, "{v}");
    assert_eq!(v["month"]["requests"], 4, "{v}");
    let remaining = v["budget"]["remaining_usd"].as_f64().unwrap_or_default();
    assert!((remaining - 0.2).abs() < 1e-9, "{v}");
    let r = gw
        .http()
        .get(gw.admin_url("/admin/spend?key=all"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    let v: Value = r.json().await?;
    assert_eq!(v["day"]["requests"], 4, "{v}");
    assert!(v["budget"].is_null(), "{v}");
    let r = gw
        .http()
        .get(gw.admin_url("/admin/spend"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(r.status(), 400);

    let m = gw
        .metrics_when("spend recorded", |m| {
            m.sum(
                "datamind_spend_usd_total",
                &[("tenant", "team-a"), ("model", CHAT_MODEL)],
            ) > 1.99
        })
        .await?;
    let left = m.sum(
        "datamind_budget_remaining_usd",
        &[("tenant", "team-a"), ("period", "day")],
    );
    assert!((left - 0.2).abs() < 1e-9, "remaining {left}");
    assert_eq!(
        m.sum(
            "datamind_ratelimit_rejections_total",
            &[("scope", "tenant"), ("dimension", "budget")]
        ),
        2.0
    );
    assert_eq!(
        m.sum(
            "datamind_budget_soft_exceeded_total",
            &[("scope", "tenant")]
        ),
        1.0,
        "soft budget reported once per period"
    );
    // The tenant of KEY_LIMITED is not listed in tenants[]: no such label.
    assert!(
        m.series("datamind_spend_usd_total")
            .iter()
            .all(|s| s.label("tenant") != Some("team-b"))
    );
    Ok(())
}
