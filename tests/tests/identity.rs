//! Virtual API keys and tenants as a client and an operator see them: the admin key API
//! (create, use, list, rotate, revoke, expiry), its credential, config-key expiry,
//! runtime keys across a reload and shared by gateways on one Redis, and keys never showing
//! up in the gateway's output.

use std::time::Duration;

use anyhow::Result;
use datamind_e2e::identity::{AdminApi, rfc3339, unix_now};
use datamind_e2e::{
    ApiError, Gateway, GatewayConfig, KEY_ALL, ModelGroup, RedisServer, chat_body, eventually,
    sha256_hex,
};
use serde_json::{Value, json};

const ADMIN_KEY: &str = "adm-e2e-3c9f1b7d";
const MODEL: &str = "gpt-4o-mini";
const OTHER: &str = "gpt-4o";

fn config() -> GatewayConfig {
    GatewayConfig::new()
        .builtin_mock_provider("m")
        .model(ModelGroup::new(MODEL).deployment("m", "mock-small"))
        .model(ModelGroup::new(OTHER).deployment("m", "mock-big"))
        .set("/admin/api_key_sha256", json!(sha256_hex(ADMIN_KEY)))
        .set(
            "/tenants",
            json!([{"name": "eu-bank", "residency": "eu", "region": "westeurope",
                    "limits": {"rpm": 1000}, "budget": {"period": "month", "hard_usd": 50}}]),
        )
}

async fn chat_status(gw: &Gateway, key: &str, model: &str) -> Result<(u16, Option<ApiError>)> {
    let resp = gw.chat(key, &chat_body(model, "hi")).await?;
    let status = resp.status().as_u16();
    if status == 200 {
        let _ = resp.bytes().await?;
        return Ok((200, None));
    }
    Ok((status, Some(ApiError::read(resp).await?)))
}

async fn assert_refused(gw: &Gateway, key: &str, why: &str) -> Result<()> {
    let (status, err) = chat_status(gw, key, MODEL).await?;
    let err = err.ok_or_else(|| anyhow::anyhow!("key was accepted; expected {why}"))?;
    assert_eq!(status, 401, "{}", err.body);
    assert_eq!(err.code_str(), "invalid_api_key", "{}", err.body);
    assert_eq!(err.kind, "authentication_error");
    assert!(
        err.message.contains(why),
        "message {:?} lacks {why:?}",
        err.message
    );
    assert!(!err.message.contains(key), "the error echoes the key");
    Ok(())
}

#[tokio::test]
async fn admin_api_create_use_list_rotate_revoke() -> Result<()> {
    let gw = Gateway::start(&config()).await?;
    let admin = AdminApi {
        gateway: &gw,
        admin_key: ADMIN_KEY,
    };
    let (id, key) = admin
        .create(
            &json!({"name": "ci-bot", "tenant": "eu-bank", "models": [MODEL],
                        "limits": {"rpm": 60}, "metadata": {"owner": "alice"}}),
        )
        .await?;
    assert!(key.starts_with("sk-dm-") && key.len() > 40, "{key}");

    // Use: allowed model works, others are 403, tenant lands in the access log.
    let resp = gw
        .http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-request-id", "identity-use-1")
        .json(&chat_body(MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let line = gw.access_log_line("identity-use-1").await?;
    assert_eq!(line["tenant"], "eu-bank", "{line}");
    assert_eq!(chat_status(&gw, &key, OTHER).await?.0, 403);

    // List and show: metadata, no clear key, no digest.
    let (status, list) = admin.call("GET", "/admin/keys", None).await?;
    assert_eq!(status, 200);
    let entry = list["data"]
        .as_array()
        .and_then(|d| d.iter().find(|k| k["id"] == id.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(entry["name"], "ci-bot", "{list}");
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["limits"]["rpm"], 60);
    assert_eq!(entry["metadata"]["owner"], "alice");
    let text = list.to_string();
    assert!(
        !text.contains(&key) && !text.contains(&sha256_hex(&key)),
        "{text}"
    );
    assert!(entry.get("key").is_none(), "{entry}");

    // Rotate: old key refused (as revoked), new key works.
    let (status, rotated) = admin
        .call("POST", &format!("/admin/keys/{id}/rotate"), None)
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap_or_default().to_owned();
    assert!(new_key.starts_with("sk-dm-") && new_key != key);
    assert_refused(&gw, &key, "revoked").await?;
    assert_eq!(chat_status(&gw, &new_key, MODEL).await?.0, 200);

    // Revoke: refused, listed as revoked, cannot be rotated back.
    let (status, revoked) = admin
        .call("POST", &format!("/admin/keys/{id}/revoke"), None)
        .await?;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")));
    assert_refused(&gw, &new_key, "revoked").await?;
    let (status, _) = admin
        .call("POST", &format!("/admin/keys/{id}/rotate"), None)
        .await?;
    assert_eq!(status, 400);
    let (status, shown) = admin
        .call("GET", &format!("/admin/keys/{id}"), None)
        .await?;
    assert_eq!((status, shown["status"].as_str()), (200, Some("revoked")));
    let (status, _) = admin
        .call("DELETE", "/admin/keys/key_doesnotexist", None)
        .await?;
    assert_eq!(status, 404);

    // Bad requests name the field.
    let (status, err) = admin
        .call(
            "POST",
            "/admin/keys",
            Some(&json!({"name": "x", "models": ["ghost"]})),
        )
        .await?;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ghost"),
        "{err}"
    );
    let (status, _) = admin
        .call(
            "POST",
            "/admin/keys",
            Some(&json!({"name": "x", "limits": {"rpm": 0}})),
        )
        .await?;
    assert_eq!(status, 400);
    let (status, err) = admin
        .call(
            "POST",
            "/admin/keys",
            Some(&json!({"name": "x", "expires_at": "2020-01-01T00:00:00Z"})),
        )
        .await?;
    assert_eq!(status, 400, "{err}");
    let (status, err) = admin
        .call(
            "POST",
            "/admin/keys",
            Some(&json!({"name": "x", "bogus": 1})),
        )
        .await?;
    assert_eq!(status, 400, "{err}");

    let m = gw
        .metrics_when("revoked keys counted", |m| {
            m.sum(
                "datamind_auth_total",
                &[("method", "api_key"), ("result", "revoked")],
            ) >= 2.0
        })
        .await?;
    assert!(
        m.sum(
            "datamind_auth_total",
            &[("method", "api_key"), ("result", "ok")]
        ) >= 3.0
    );

    // Neither clear keys nor their digests ever reach stdout (access log) or stderr.
    let out = format!(
        "{}\n{}",
        gw.stdout_text(),
        std::fs::read_to_string(gw.dir().join("stderr.log"))?
    );
    for secret in [
        &key,
        &new_key,
        &sha256_hex(&key),
        &sha256_hex(&new_key),
        &ADMIN_KEY.to_owned(),
    ] {
        assert!(
            !out.contains(secret.as_str()),
            "a key or digest leaked into the output"
        );
    }
    Ok(())
}

#[tokio::test]
async fn runtime_keys_expire() -> Result<()> {
    let gw = Gateway::start(&config()).await?;
    let admin = AdminApi {
        gateway: &gw,
        admin_key: ADMIN_KEY,
    };
    let soon = rfc3339(unix_now() + 2);
    let (_, key) = admin
        .create(&json!({"name": "short", "expires_at": soon}))
        .await?;
    assert_eq!(chat_status(&gw, &key, MODEL).await?.0, 200);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_refused(&gw, &key, "expired").await?;
    let (_, list) = admin.call("GET", "/admin/keys", None).await?;
    assert_eq!(list["data"][0]["status"], "expired", "{list}");
    Ok(())
}

#[tokio::test]
async fn admin_credential_is_required() -> Result<()> {
    // No admin credential configured: the API refuses everything.
    let gw = Gateway::start(
        &GatewayConfig::new()
            .builtin_mock_provider("m")
            .model(ModelGroup::new(MODEL).deployment("m", "mock-small")),
    )
    .await?;
    for key in [ADMIN_KEY, KEY_ALL] {
        let (status, body) = AdminApi {
            gateway: &gw,
            admin_key: key,
        }
        .call("GET", "/admin/keys", None)
        .await?;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["type"], "permission_error");
    }
    assert_eq!(
        gw.http()
            .get(gw.admin_url("/healthz"))
            .send()
            .await?
            .status(),
        200
    );

    let gw = Gateway::start(&config()).await?;
    let (status, body) = AdminApi {
        gateway: &gw,
        admin_key: "wrong",
    }
    .call("POST", "/admin/keys", Some(&json!({"name": "x"})))
    .await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let resp = gw.http().get(gw.admin_url("/admin/keys")).send().await?;
    assert_eq!(resp.status(), 401);
    // An API key is not an admin credential.
    let (status, _) = AdminApi {
        gateway: &gw,
        admin_key: KEY_ALL,
    }
    .call("GET", "/admin/keys", None)
    .await?;
    assert_eq!(status, 401);
    assert_eq!(
        gw.http()
            .get(gw.admin_url("/metrics"))
            .send()
            .await?
            .status(),
        200
    );
    Ok(())
}

#[tokio::test]
async fn runtime_keys_survive_a_reload_and_config_keys_expire() -> Result<()> {
    let expired = "sk-e2e-expired-55aa";
    let keys = json!([
        {"name": "all", "sha256": sha256_hex(KEY_ALL), "tenant": "team-a"},
        {"name": "old", "sha256": sha256_hex(expired), "expires_at": "2020-01-01T00:00:00Z"}
    ]);
    let cfg = config().set("/auth/keys", keys);
    let gw = Gateway::start(&cfg).await?;
    assert_refused(&gw, expired, "expired").await?;

    let admin = AdminApi {
        gateway: &gw,
        admin_key: ADMIN_KEY,
    };
    let (_, key) = admin
        .create(&json!({"name": "survivor", "tenant": "eu-bank"}))
        .await?;
    assert_eq!(chat_status(&gw, &key, MODEL).await?.0, 200);
    // A key of a tenant the config does not list yet.
    let (_, late) = admin
        .create(&json!({"name": "late", "tenant": "late-tenant"}))
        .await?;

    // A reload that adds a model and that tenant (one request a minute): the runtime keys
    // still work, may use the new model, and carry the new tenant's limits.
    let tenants = json!([{"name": "eu-bank", "residency": "eu"},
                         {"name": "late-tenant", "limits": {"rpm": 1}}]);
    gw.rewrite_config(
        &cfg.clone()
            .set("/tenants", tenants)
            .model(ModelGroup::new("reloaded").deployment("m", "mock-small")),
    )?;
    eventually("the reloaded model", Duration::from_secs(5), || async {
        Ok((chat_status(&gw, KEY_ALL, "reloaded").await?.0 == 200).then_some(()))
    })
    .await?;
    assert_eq!(chat_status(&gw, &key, "reloaded").await?.0, 200);
    assert_eq!(chat_status(&gw, &key, MODEL).await?.0, 200);
    assert_eq!(chat_status(&gw, &late, MODEL).await?.0, 200);
    let (status, err) = chat_status(&gw, &late, MODEL).await?;
    assert_eq!(
        status,
        429,
        "the reloaded tenant's limit: {:?}",
        err.map(|e| e.body)
    );
    Ok(())
}

/// The runtime-key propagation bound (the store is polled every second), with slack for a
/// loaded CI machine.
const PROPAGATION: Duration = Duration::from_secs(5);

#[tokio::test]
async fn gateways_sharing_redis_share_runtime_keys() -> Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = config().set("/redis", json!({"url": redis.url()}));
    let (a, b) = tokio::try_join!(Gateway::start(&cfg), Gateway::start(&cfg))?;
    let on_a = AdminApi {
        gateway: &a,
        admin_key: ADMIN_KEY,
    };
    let on_b = AdminApi {
        gateway: &b,
        admin_key: ADMIN_KEY,
    };
    let (id, key) = on_a
        .create(&json!({"name": "fleet", "tenant": "eu-bank", "models": [MODEL]}))
        .await?;
    assert_eq!(
        chat_status(&a, &key, MODEL).await?.0,
        200,
        "at once on the creating gateway"
    );
    eventually("the key to work on gateway B", PROPAGATION, || async {
        Ok((chat_status(&b, &key, MODEL).await?.0 == 200).then_some(()))
    })
    .await?;
    let (_, listed) = on_b.call("GET", "/admin/keys", None).await?;
    assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed}");

    // Redis holds the digest, never the key.
    let record = redis
        .command(&["HGET", "datamind:keys:{runtime}records", &id])
        .await?;
    assert!(
        record.contains(&sha256_hex(&key)),
        "no record for {id}: {record:?}"
    );
    assert!(!record.contains(&key), "the clear key is stored in Redis");

    // Rotate on B, revoke on A: both reach the other gateway within the bound.
    let (status, rotated) = on_b
        .call("POST", &format!("/admin/keys/{id}/rotate"), None)
        .await?;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap_or_default().to_owned();
    eventually("the old key to be refused on A", PROPAGATION, || async {
        Ok((chat_status(&a, &key, MODEL).await?.0 == 401).then_some(()))
    })
    .await?;
    assert_eq!(chat_status(&a, &new_key, MODEL).await?.0, 200);
    let (status, _) = on_a
        .call("POST", &format!("/admin/keys/{id}/revoke"), None)
        .await?;
    assert_eq!(status, 200);
    assert_refused(&a, &new_key, "revoked").await?;
    eventually(
        "the revoked key to be refused on B",
        PROPAGATION,
        || async { Ok((chat_status(&b, &new_key, MODEL).await?.0 == 401).then_some(())) },
    )
    .await?;
    assert_refused(&b, &new_key, "revoked").await?;

    // A gateway started later loads the keys from Redis.
    let (_, later) = on_a.create(&json!({"name": "later"})).await?;
    let c = Gateway::start(&cfg).await?;
    eventually("a new gateway to load the keys", PROPAGATION, || async {
        Ok((chat_status(&c, &later, MODEL).await?.0 == 200).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn runtime_key_limits_are_enforced() -> Result<()> {
    let gw = Gateway::start(&config()).await?;
    let admin = AdminApi {
        gateway: &gw,
        admin_key: ADMIN_KEY,
    };
    let (_, key) = admin
        .create(&json!({"name": "metered", "limits": {"rpm": 1}}))
        .await?;
    assert_eq!(chat_status(&gw, &key, MODEL).await?.0, 200);
    let (status, err) = chat_status(&gw, &key, MODEL).await?;
    assert_eq!(status, 429, "{:?}", err.map(|e| e.body));
    // Another key of the same tenant is not affected by this key's limit.
    let (_, other) = admin.create(&json!({"name": "other"})).await?;
    assert_eq!(chat_status(&gw, &other, MODEL).await?.0, 200);
    Ok(())
}
