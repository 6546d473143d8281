//! The limiter over its stores: in-process, and against a real `redis-server` (shared by
//! two limiters, as two replicas would), including Redis going away.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::auth::TenantInfo;
use crate::config::{LimiterConfig, LimitsConfig, RedisFailureMode};
use crate::redis::tests::{Server, config};

fn caller(limits: LimitsConfig) -> Caller {
    Caller {
        key_id: "ci".into(),
        key_name: "ci".into(),
        tenant: "team-a".into(),
        tenant_info: Arc::new(TenantInfo::bare("team-a")),
        models: None,
        limits: Arc::new(limits),
        budget: None,
    }
}

fn ask(tokens: u64) -> Ask<'static> {
    Ask {
        model: "m",
        reserve_tokens: tokens,
        lease_ttl_ms: 10_000,
    }
}

fn header<'a>(a: &'a Admission, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn in_process_rpm_tokens_and_concurrency() {
    let l = Limiter::new(None, &LimiterConfig::default(), Arc::new(Metrics::new()));
    let cfg = LimiterConfig::default();
    let c = caller(LimitsConfig {
        rpm: Some(5),
        tpm: Some(1000),
        max_concurrent: Some(2),
        ..LimitsConfig::default()
    });
    assert_eq!(l.mode(), Mode::Local);
    let a1 = l.admit(&cfg, &c, ask(100)).await.unwrap().unwrap();
    assert_eq!(header(&a1, "x-ratelimit-limit-requests"), Some("5"));
    assert_eq!(header(&a1, "x-ratelimit-remaining-requests"), Some("4"));
    assert_eq!(header(&a1, "x-ratelimit-remaining-tokens"), Some("900"));
    let _a2 = l.admit(&cfg, &c, ask(100)).await.unwrap().unwrap();
    let e = l.admit(&cfg, &c, ask(100)).await.unwrap_err();
    assert!(
        matches!(
            e,
            GatewayError::RateLimited {
                scope: "key",
                dimension: "concurrent",
                ..
            }
        ),
        "{e:?}"
    );
    let mut a1 = a1;
    a1.record_usage(Some(10));
    drop(a1);
    // One slot free again, and 90 of the 100 reserved tokens refunded.
    let a3 = l.admit(&cfg, &c, ask(100)).await.unwrap().unwrap();
    assert_eq!(header(&a3, "x-ratelimit-remaining-tokens"), Some("790"));
    assert_eq!(header(&a3, "x-ratelimit-remaining-requests"), Some("2"));
    let e = l.admit(&cfg, &c, ask(2000)).await;
    assert!(
        matches!(
            e,
            Err(GatewayError::RateLimited {
                too_large: true,
                ..
            })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn no_rules_no_admission() {
    let l = Limiter::new(None, &LimiterConfig::default(), Arc::new(Metrics::new()));
    let c = caller(LimitsConfig::default());
    assert!(!rules::any(&c));
    assert!(
        l.admit(&LimiterConfig::default(), &c, ask(1))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn replicas_share_limits_in_redis_and_fall_back_when_it_is_gone() {
    let mut server = Server::start();
    let rc = config(server.port);
    let cfg = LimiterConfig {
        replicas: 2,
        ..LimiterConfig::default()
    };
    let r1 = crate::redis::Redis::start(&rc).unwrap();
    let r2 = crate::redis::Redis::start(&rc).unwrap();
    assert!(r1.wait_up(Duration::from_secs(5)).await && r2.wait_up(Duration::from_secs(5)).await);
    let l1 = Limiter::new(Some(r1.clone()), &cfg, Arc::new(Metrics::new()));
    let l2 = Limiter::new(Some(r2), &cfg, Arc::new(Metrics::new()));
    let c = caller(LimitsConfig {
        rpm: Some(10),
        tpm: Some(1000),
        max_concurrent: Some(3),
        ..LimitsConfig::default()
    });
    let mut held = Vec::new();
    let mut admitted = 0;
    for i in 0..20 {
        let l = if i % 2 == 0 { &l1 } else { &l2 };
        match l.admit(&cfg, &c, ask(10)).await {
            Ok(Some(mut a)) => {
                admitted += 1;
                a.record_usage(Some(10));
                held.push(a);
                if held.len() == 3 {
                    held.clear();
                    // Settling happens in the background: give it a moment.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(None) => unreachable!("limits apply"),
            Err(GatewayError::RateLimited { dimension, .. }) => {
                assert_eq!(dimension, "requests", "request {i}");
            }
            Err(e) => panic!("request {i}: {e}"),
        }
    }
    assert_eq!(admitted, 10, "10 per minute across both replicas");
    assert_eq!(l1.mode(), Mode::Shared);

    server.kill();
    // The first call notices; from then on each replica enforces 10 / 2 = 5 by itself.
    let mut admitted = 0;
    for _ in 0..8 {
        if let Ok(Some(a)) = l1.admit(&cfg, &c, ask(10)).await {
            admitted += 1;
            drop(a);
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(l1.mode(), Mode::LocalFallback);

    let closed = LimiterConfig {
        on_redis_failure: RedisFailureMode::Closed,
        ..cfg.clone()
    };
    let e = l1.admit(&closed, &c, ask(10)).await.unwrap_err();
    assert_eq!(e.status(), 503);
    assert_eq!(l1.mode(), Mode::FailClosed);

    let _server = Server::start_on(server.port);
    assert!(r1.wait_up(Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(l1.mode(), Mode::Shared, "the watcher follows the reconnect");
    let a = l1.admit(&cfg, &c, ask(10)).await.unwrap().unwrap();
    assert_eq!(
        header(&a, "x-ratelimit-remaining-requests"),
        Some("9"),
        "fresh Redis"
    );
}

#[tokio::test]
async fn every_scope_in_one_script_and_spend_flush_work_under_redis_cluster() {
    use crate::config::{BudgetConfig, BudgetPeriod, ModelLimitsConfig};
    use crate::limits::budget::{Budgeted, Charge, Scope as SpendScope, SpendTracker};

    let cluster = crate::redis::tests::Cluster::start();
    let redis = crate::redis::Redis::start(&cluster.config()).unwrap();
    assert!(
        redis.wait_up(Duration::from_secs(10)).await,
        "cluster never connected"
    );
    let cfg = LimiterConfig::default();
    let l = Limiter::new(Some(redis.clone()), &cfg, Arc::new(Metrics::new()));
    let mut limits = LimitsConfig {
        rpm: Some(4),
        max_concurrent: Some(10),
        ..LimitsConfig::default()
    };
    limits.models.insert(
        "m".into(),
        ModelLimitsConfig {
            tpm: Some(1000),
            ..ModelLimitsConfig::default()
        },
    );
    let mut c = caller(limits);
    c.tenant_info = Arc::new(TenantInfo {
        name: "team-a".into(),
        limits: LimitsConfig {
            rpm: Some(100),
            ..LimitsConfig::default()
        },
        ..TenantInfo::default()
    });
    // Several tenants, so their tags land on different masters.
    for tenant in ["team-a", "team-b", "team-c", "team-d"] {
        c.tenant = tenant.into();
        let mut admitted = 0;
        for _ in 0..6 {
            if let Ok(Some(a)) = l.admit(&cfg, &c, ask(10)).await {
                admitted += 1;
                drop(a);
            }
        }
        assert_eq!(admitted, 4, "tenant {tenant}");
    }
    assert_eq!(l.mode(), Mode::Shared);

    let t = SpendTracker::new(
        Some(redis),
        Duration::from_millis(50),
        Arc::new(Metrics::new()),
    );
    let usage = datamind_llm::Usage {
        prompt_tokens: 10,
        completion_tokens: 2,
        ..datamind_llm::Usage::default()
    };
    let budget = BudgetConfig {
        period: BudgetPeriod::Day,
        hard_usd: Some(100.0),
        soft_usd: None,
    };
    for (i, tenant) in ["team-a", "team-b", "team-c"].iter().enumerate() {
        let subjects = [Budgeted {
            scope: SpendScope::Tenant,
            id: tenant,
            budget,
        }];
        let r = t.admit(&subjects, 1.0).unwrap();
        let charge = Charge {
            tenant,
            key_id: &format!("key-{i}"),
            model: "m",
            tenant_label: tenant,
            usage: &usage,
            cost_usd: Some(0.25),
        };
        t.finish(r, &charge, &subjects);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for tenant in ["team-a", "team-b", "team-c"] {
        let (_, day, _, _) = t.report(SpendScope::Tenant, tenant).await;
        assert!((day.usd - 0.25).abs() < 1e-9, "{tenant}: {day:?}");
        assert_eq!(day.requests, 1);
    }
}
