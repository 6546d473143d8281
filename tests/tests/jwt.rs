//! JWT / OIDC credentials against the real gateway: valid RS256 and ES256 tokens through
//! a JWKS served on loopback, the attack suite (each a 401 `invalid_api_key`, never a
//! crash), and the rate limit on key-set refetches triggered by unknown `kid`s.

use std::time::Duration;

use anyhow::Result;
use datamind_e2e::identity::{HttpsJwks, JwksServer, SigningKey, b64url, unix_now};
use datamind_e2e::{ApiError, Gateway, GatewayConfig, ModelGroup, chat_body};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISS: &str = "https://idp.e2e.test";
const AUD: &str = "datamind-gateway";
const MODEL: &str = "gpt-4o-mini";
const OTHER: &str = "gpt-4o";

fn config(jwks_url: &str, min_refresh: u64) -> GatewayConfig {
    config_with(jwks_url, min_refresh, 600)
}

fn config_with(jwks_url: &str, min_refresh: u64, cache_seconds: u64) -> GatewayConfig {
    GatewayConfig::new()
        .builtin_mock_provider("m")
        .model(ModelGroup::new(MODEL).deployment("m", "mock-small"))
        .model(ModelGroup::new(OTHER).deployment("m", "mock-big"))
        .set(
            "/auth/jwt",
            json!({"issuers": [{
                "issuer": ISS,
                "audiences": [AUD],
                "algorithms": ["RS256", "ES256"],
                "jwks_url": jwks_url,
                "jwks_min_refresh_seconds": min_refresh,
                "jwks_cache_seconds": cache_seconds,
                "leeway_seconds": 5,
                "claims": {"tenant": "org", "models": "models"}
            }]}),
        )
}

fn claims(sub: &str) -> Value {
    let now = unix_now();
    json!({"iss": ISS, "aud": AUD, "sub": sub, "iat": now, "exp": now + 300,
           "org": "acme", "models": [MODEL]})
}

async fn send(gw: &Gateway, token: &str, model: &str) -> Result<(u16, Option<ApiError>)> {
    let resp = gw.chat(token, &chat_body(model, "hi")).await?;
    let status = resp.status().as_u16();
    if status == 200 {
        let _ = resp.bytes().await?;
        return Ok((200, None));
    }
    Ok((status, Some(ApiError::read(resp).await?)))
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_from_a_jwks_are_accepted() -> Result<()> {
    let rsa = SigningKey::rs256("rsa-1")?;
    let ec = SigningKey::es256("ec-1")?;
    let jwks = JwksServer::start(vec![rsa.jwk(), ec.jwk()]).await?;
    let gw = Gateway::start(&config(&jwks.url(), 30)).await?;
    assert_eq!(jwks.fetches(), 0, "the key set is fetched lazily");
    for key in [&rsa, &ec] {
        let token = key.sign(&claims("alice"))?;
        let (status, err) = send(&gw, &token, MODEL).await?;
        assert_eq!(status, 200, "{:?}: {:?}", key.alg, err.map(|e| e.body));
        // The models claim is the allow-list.
        assert_eq!(send(&gw, &token, OTHER).await?.0, 403);
    }
    assert_eq!(jwks.fetches(), 1, "one fetch serves every key of the set");

    // The tenant claim reaches the access log as the tenant; the key id names the subject.
    let resp = gw
        .http()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(rsa.sign(&claims("bob"))?)
        .header("x-request-id", "jwt-log-1")
        .json(&chat_body(MODEL, "hi"))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let line = gw.access_log_line("jwt-log-1").await?;
    assert_eq!(line["tenant"], "acme", "{line}");
    assert_eq!(line["key_name"], format!("jwt:{ISS}:bob"), "{line}");
    Ok(())
}

#[tokio::test]
async fn attack_suite_is_refused_with_401() -> Result<()> {
    let rsa = SigningKey::rs256("rsa-1")?;
    let jwks = JwksServer::start(vec![rsa.jwk()]).await?;
    let mut gw = Gateway::start(&config(&jwks.url(), 30)).await?;
    let good = claims("mallory");
    let now = unix_now();
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        c
    };
    let valid = rsa.sign(&good)?;
    let parts: Vec<&str> = valid.split('.').collect();
    let mut attacks: Vec<(&str, String)> = vec![
        ("expired", rsa.sign(&with(json!({"exp": now - 60})))?),
        (
            "nbf in the future",
            rsa.sign(&with(json!({"nbf": now + 3600})))?,
        ),
        (
            "wrong audience",
            rsa.sign(&with(json!({"aud": "someone-else"})))?,
        ),
        (
            "wrong issuer",
            rsa.sign(&with(json!({"iss": "https://evil.example"})))?,
        ),
        (
            "no exp",
            rsa.sign(&json!({"iss": ISS, "aud": AUD, "sub": "m", "org": "acme"}))?,
        ),
        ("unknown kid", rsa.sign_as("rsa-unknown", &good)?),
    ];
    // alg none, with and without a signature segment.
    let none_header = b64url(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    attacks.push(("alg none", format!("{none_header}.{}.", parts[1])));
    attacks.push((
        "alg none signed",
        format!("{none_header}.{}.{}", parts[1], parts[2]),
    ));
    // HS256 with the RSA public key (PEM) as the HMAC secret: the classic key confusion.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &good,
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
    )?;
    attacks.push(("HS256 with the RSA public key", confused));
    // Tampered payload: a different tenant under the original signature.
    let evil = with(json!({"org": "root", "models": ["*"]}));
    attacks.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            parts[0],
            b64url(evil.to_string().as_bytes()),
            parts[2]
        ),
    ));
    attacks.push((
        "oversized",
        rsa.sign(&with(json!({"pad": "x".repeat(9000)})))?,
    ));
    attacks.push(("garbage segments", "eyJhbGciOi.eyJzdWIi.c2ln".to_owned()));

    for (what, token) in &attacks {
        let (status, err) = send(&gw, token, MODEL).await?;
        let err = err.ok_or_else(|| anyhow::anyhow!("{what}: accepted"))?;
        assert_eq!(status, 401, "{what}: {}", err.body);
        assert_eq!(err.code_str(), "invalid_api_key", "{what}: {}", err.body);
        assert!(
            !err.message.contains(token.as_str()),
            "{what}: the error echoes the token"
        );
    }
    // The process is alive and the valid token still works.
    assert!(gw.try_exit()?.is_none(), "the gateway exited");
    assert_eq!(send(&gw, &valid, MODEL).await?.0, 200);
    // Refusals are counted by method and result. All but the unsigned `alg: none` token
    // (an empty third segment is not JWT-shaped, so it is refused as an unknown API key)
    // went the JWT way.
    let m = gw
        .metrics_when("the JWT outcomes", |m| {
            m.sum(
                "datamind_auth_total",
                &[("method", "jwt"), ("result", "ok")],
            ) >= 1.0
        })
        .await?;
    let jwt = |result| {
        m.sum(
            "datamind_auth_total",
            &[("method", "jwt"), ("result", result)],
        )
    };
    assert_eq!(jwt("expired"), 1.0, "{}", m.text);
    assert_eq!(
        jwt("invalid") + jwt("expired"),
        attacks.len() as f64 - 1.0,
        "{}",
        m.text
    );

    // Tokens never reach the access log or stderr.
    let out = format!(
        "{}\n{}",
        gw.stdout_text(),
        std::fs::read_to_string(gw.dir().join("stderr.log"))?
    );
    for (what, token) in attacks.iter().chain([&("valid", valid.clone())]) {
        let sig = token.rsplit('.').next().unwrap_or_default();
        assert!(
            sig.len() < 8 || !out.contains(sig),
            "{what}: token leaked into the output"
        );
    }
    Ok(())
}

#[tokio::test]
async fn unknown_kids_refetch_the_key_set_at_most_once_per_interval() -> Result<()> {
    let old = SigningKey::rs256("old")?;
    let new = SigningKey::es256("new")?;
    let jwks = JwksServer::start(vec![old.jwk()]).await?;
    let gw = Gateway::start(&config(&jwks.url(), 2)).await?;
    assert_eq!(send(&gw, &old.sign(&claims("a"))?, MODEL).await?.0, 200);
    assert_eq!(jwks.fetches(), 1);

    // A flood of tokens with made-up kids, concurrently: at most one refetch. (The key is
    // looked up before the signature is checked, so the headers are swapped on one token
    // instead of signing 40 times.)
    let signed = old.sign(&claims("a"))?;
    let (_, rest) = signed.split_once('.').unwrap_or_default();
    let mut flood = Vec::new();
    for i in 0..40 {
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"bogus-{i}"}}"#);
        let token = format!("{}.{rest}", b64url(header.as_bytes()));
        let gw = &gw;
        flood.push(async move { send(gw, &token, MODEL).await });
    }
    for r in futures_util::future::join_all(flood).await {
        assert_eq!(r?.0, 401);
    }
    assert!(
        jwks.fetches() <= 2,
        "{} fetches for a flood of unknown kids",
        jwks.fetches()
    );

    // The identity provider rotates in a new key: once the interval has passed, the first
    // token naming it refetches the set and is accepted.
    jwks.set_keys(vec![old.jwk(), new.jwk()]).await;
    let before = jwks.fetches();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, err) = send(&gw, &new.sign(&claims("b"))?, MODEL).await?;
    assert_eq!(status, 200, "{:?}", err.map(|e| e.body));
    assert_eq!(jwks.fetches(), before + 1);
    assert_eq!(send(&gw, &new.sign(&claims("c"))?, MODEL).await?.0, 200);
    assert_eq!(jwks.fetches(), before + 1, "a known kid does not refetch");
    let m = gw.metrics().await?;
    assert_eq!(
        m.sum(
            "datamind_jwks_fetches_total",
            &[("issuer", ISS), ("result", "ok")]
        ),
        jwks.fetches() as f64,
        "{}",
        m.text
    );
    Ok(())
}

#[tokio::test]
async fn static_pem_keys_and_api_keys_side_by_side() -> Result<()> {
    let ec = SigningKey::es256("pem-1")?;
    let cfg = GatewayConfig::new()
        .builtin_mock_provider("m")
        .model(ModelGroup::new(MODEL).deployment("m", "mock-small"))
        .set(
            "/auth/jwt",
            json!({"issuers": [{"issuer": ISS, "audiences": [AUD], "algorithms": ["ES256"],
                   "keys": [{"kid": "pem-1", "pem": ec.public_pem}], "default_tenant": "jwt-users"}]}),
        );
    let gw = Gateway::start(&cfg).await?;
    let mut c = claims("carol");
    c.as_object_mut().map(|o| o.remove("org"));
    assert_eq!(send(&gw, &ec.sign(&c)?, MODEL).await?.0, 200);
    // API keys keep working next to JWTs.
    assert_eq!(send(&gw, datamind_e2e::KEY_ALL, MODEL).await?.0, 200);
    let (status, err) = send(&gw, "sk-not-a-key", MODEL).await?;
    assert_eq!(status, 401, "{:?}", err.map(|e| e.body));
    Ok(())
}

#[tokio::test]
async fn a_stale_key_set_is_refreshed_in_the_background() -> Result<()> {
    let old = SigningKey::es256("old")?;
    let new = SigningKey::es256("new")?;
    let jwks = JwksServer::start(vec![old.jwk()]).await?;
    let gw = Gateway::start(&config_with(&jwks.url(), 1, 1)).await?;
    assert_eq!(send(&gw, &old.sign(&claims("a"))?, MODEL).await?.0, 200);
    assert_eq!(jwks.fetches(), 1);

    // The identity provider retires the old key. Once the cached set is stale, a request
    // still gets the answer from it while the set is refetched in the background.
    jwks.set_keys(vec![new.jwk()]).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(send(&gw, &old.sign(&claims("b"))?, MODEL).await?.0, 200);
    // The identity provider saw the refetch; the gateway counts it once the new set is in
    // use (the provider's count alone raced the set's installation).
    datamind_e2e::eventually("the background refetch", Duration::from_secs(3), || async {
        let installed = gw.metrics().await?.sum(
            "datamind_jwks_fetches_total",
            &[("issuer", ISS), ("result", "ok")],
        );
        Ok((jwks.fetches() == 2 && installed == 2.0).then_some(()))
    })
    .await?;
    let (status, err) = send(&gw, &old.sign(&claims("c"))?, MODEL).await?;
    assert_eq!(status, 401, "a retired key still verifies");
    let err = err.map(|e| e.message).unwrap_or_default();
    assert!(err.contains("key is unknown"), "{err}");
    assert_eq!(send(&gw, &new.sign(&claims("d"))?, MODEL).await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn the_key_set_is_fetched_over_https() -> Result<()> {
    let ec = SigningKey::es256("tls-1")?;
    let jwks = HttpsJwks::start(vec![ec.jwk()]).await?;
    let ca = jwks.ca_file();
    let cfg = config(&jwks.url(), 30);
    let gw = Gateway::start_with_env(|a, b| cfg.render(a, b), &[("SSL_CERT_FILE", &ca)]).await?;
    let (status, err) = send(&gw, &ec.sign(&claims("tls"))?, MODEL).await?;
    assert_eq!(
        status,
        200,
        "{:?}\n{}",
        err.map(|e| e.body),
        gw.stderr_tail()
    );
    let m = gw.metrics().await?;
    assert_eq!(
        m.sum(
            "datamind_jwks_fetches_total",
            &[("issuer", ISS), ("result", "ok")]
        ),
        1.0
    );

    // Without trusting that CA, the fetch fails (certificates are verified) and so does
    // the token.
    let untrusting = Gateway::start(&cfg).await?;
    let (status, _) = send(&untrusting, &ec.sign(&claims("tls"))?, MODEL).await?;
    assert_eq!(status, 401);
    let m = untrusting.metrics().await?;
    assert_eq!(
        m.sum(
            "datamind_jwks_fetches_total",
            &[("issuer", ISS), ("result", "error")]
        ),
        1.0,
        "{}",
        m.text
    );
    Ok(())
}

#[tokio::test]
async fn limits_from_the_token_and_its_tenant_are_enforced() -> Result<()> {
    let ec = SigningKey::es256("lim-1")?;
    let jwks = JwksServer::start(vec![ec.jwk()]).await?;
    let cfg = config(&jwks.url(), 30).set(
        "/tenants",
        json!([{"name": "small-org", "limits": {"rpm": 3}}]),
    );
    let gw = Gateway::start(&cfg).await?;

    // The token's own limits claim: two requests a minute for this subject.
    let mut c = claims("rate-limited");
    c["limits"] = json!({"rpm": 2});
    let token = ec.sign(&c)?;
    assert_eq!(send(&gw, &token, MODEL).await?.0, 200);
    assert_eq!(send(&gw, &token, MODEL).await?.0, 200);
    let (status, err) = send(&gw, &token, MODEL).await?;
    assert_eq!(status, 429, "{:?}", err.map(|e| e.body));

    // The tenant named by the claim brings its own limit, shared by all its subjects.
    let mut statuses = Vec::new();
    for sub in ["u1", "u2", "u3", "u4"] {
        let mut c = claims(sub);
        c["org"] = json!("small-org");
        statuses.push(send(&gw, &ec.sign(&c)?, MODEL).await?.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    Ok(())
}
