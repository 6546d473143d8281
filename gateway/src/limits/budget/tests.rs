use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::redis::tests::{Server, config};

fn budget(hard: f64, soft: Option<f64>) -> BudgetConfig {
    BudgetConfig {
        period: BudgetPeriod::Day,
        hard_usd: Some(hard),
        soft_usd: soft,
    }
}

fn charge<'a>(usage: &'a Usage, usd: f64) -> Charge<'a> {
    Charge {
        tenant: "team-a",
        key_id: "ci",
        model: "m",
        tenant_label: "team-a",
        usage,
        cost_usd: Some(usd),
    }
}

#[test]
fn refuses_what_would_cross_a_hard_budget_counting_requests_in_flight() {
    let t = SpendTracker::new(None, Duration::from_secs(1), Arc::new(Metrics::new()));
    let subjects = [Budgeted {
        scope: Scope::Tenant,
        id: "team-a",
        budget: budget(1.0, Some(0.5)),
    }];
    let usage = Usage::default();
    let r1 = t.admit(&subjects, 0.4).unwrap();
    let r2 = t.admit(&subjects, 0.4).unwrap();
    // 0.8 held in flight: a third worst case of 0.4 would cross 1.0.
    let e = t.admit(&subjects, 0.4).unwrap_err();
    assert!(matches!(
        e,
        GatewayError::BudgetExceeded {
            scope: "tenant",
            period: "day",
            ..
        }
    ));
    assert_eq!(e.status(), 429);
    assert_eq!(e.body().code, Some("insufficient_quota"));
    t.finish(r1, &charge(&usage, 0.3), &subjects);
    t.finish(r2, &charge(&usage, 0.3), &subjects);
    // Spent 0.6: 0.4 more fits exactly, 0.41 does not.
    assert!(t.admit(&subjects, 0.41).is_err());
    let r = t.admit(&subjects, 0.4).unwrap();
    t.finish(r, &charge(&usage, 0.4), &subjects);
    let e = t.admit(&subjects, 0.0).unwrap_err();
    assert!(
        e.to_string()
            .contains("daily budget of 1 USD would be exceeded"),
        "{e}"
    );
}

#[tokio::test]
async fn spend_is_recorded_per_key_and_tenant_and_shared_through_redis() {
    let server = Server::start();
    let rc = config(server.port);
    let (r1, r2) = (Redis::start(&rc).unwrap(), Redis::start(&rc).unwrap());
    assert!(r1.wait_up(Duration::from_secs(5)).await && r2.wait_up(Duration::from_secs(5)).await);
    let flush = Duration::from_millis(50);
    let t1 = SpendTracker::new(Some(r1), flush, Arc::new(Metrics::new()));
    let t2 = SpendTracker::new(Some(r2), flush, Arc::new(Metrics::new()));
    let subjects = [Budgeted {
        scope: Scope::Key,
        id: "ci",
        budget: budget(1.0, None),
    }];
    let usage = Usage {
        prompt_tokens: 100,
        completion_tokens: 20,
        ..Usage::default()
    };
    let r = t1.admit(&subjects, 0.5).unwrap();
    t1.finish(r, &charge(&usage, 0.75), &subjects);
    // Replica 2 learns of replica 1's spend at its next flush.
    let t2c = t2.clone();
    let mut learnt = false;
    let nothing = Usage::default();
    for _ in 0..250 {
        match t2c.admit(&subjects, 0.5) {
            Err(_) => {
                learnt = true;
                break;
            }
            // Not yet: release the probe's reservation so only real spend can refuse.
            Ok(r) => t2c.finish(
                r,
                &Charge {
                    cost_usd: None,
                    ..charge(&nothing, 0.0)
                },
                &subjects,
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(learnt, "replica 2 never saw replica 1's spend");
    let (_, day, _, month) = t2.report(Scope::Tenant, "team-a").await;
    assert_eq!(
        (day.requests, day.prompt_tokens, day.completion_tokens),
        (1, 100, 20)
    );
    assert!((month.usd - 0.75).abs() < 1e-9);
    let (_, key_day, _, _) = t1.report(Scope::Key, "ci").await;
    assert!((key_day.usd - 0.75).abs() < 1e-9);
}
