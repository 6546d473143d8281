//! The OpenAI-compatible API as a client sees it: chat, completions, embeddings, models,
//! passthrough of unknown fields, the gateway's response headers, auth and error answers.

use anyhow::{Context, Result};
use datamind_e2e::fixture::{
    CHAT_MODEL, EMBED_MODEL, OTHER_CHAT_MODEL, OneUpstream, UPSTREAM_CHAT, UPSTREAM_EMBED,
};
use datamind_e2e::{ApiError, KEY_ALL, KEY_LIMITED, MockSpec, UPSTREAM_KEY, chat_body, header};
use serde_json::{Value, json};

async fn setup() -> Result<OneUpstream> {
    OneUpstream::start(MockSpec::named("up1")).await
}

#[tokio::test]
async fn chat_non_streaming_answers_with_gateway_headers() -> Result<()> {
    let s = setup().await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hello"))
        .await?;
    assert_eq!(resp.status(), 200);
    let rid = header(&resp, "x-request-id").context("no x-request-id header")?;
    assert!(!rid.trim().is_empty(), "empty x-request-id");
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(format!("up1/{UPSTREAM_CHAT}").as_str())
    );
    assert_eq!(header(&resp, "x-datamind-attempts").as_deref(), Some("1"));
    let body: Value = resp.json().await?;
    assert_eq!(body["object"], "chat.completion", "body: {body}");
    let content = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .with_context(|| format!("no choices[0].message.content in {body}"))?;
    assert!(!content.is_empty(), "empty content: {body}");
    assert_eq!(s.mock.stats().await?.requests, 1);
    Ok(())
}

#[tokio::test]
async fn request_id_is_echoed_or_generated_unique() -> Result<()> {
    let s = setup().await?;
    let body = chat_body(CHAT_MODEL, "hi");
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("x-request-id", "e2e-req-12345")
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-request-id").as_deref(),
        Some("e2e-req-12345")
    );

    let a = s.gateway.chat(KEY_ALL, &body).await?;
    let b = s.gateway.chat(KEY_ALL, &body).await?;
    let (a, b) = (header(&a, "x-request-id"), header(&b, "x-request-id"));
    assert!(
        a.is_some() && b.is_some(),
        "generated ids missing: {a:?} {b:?}"
    );
    assert_ne!(a, b, "two requests got the same generated id");
    Ok(())
}

#[tokio::test]
async fn unknown_fields_pass_through_model_and_auth_are_rewritten() -> Result<()> {
    let s = setup().await?;
    let body = json!({
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "pass me through"}],
        "temperature": 0.25,
        "logit_bias": {"50256": -100},
        "x_vendor_extension": {"nested": [1, "two", {"three": null}], "flag": true}
    });
    let resp = s.gateway.chat(KEY_ALL, &body).await?;
    assert_eq!(resp.status(), 200);

    let seen = s.mock.last_request().await?;
    assert_eq!(
        seen.body["model"], UPSTREAM_CHAT,
        "model not rewritten: {}",
        seen.body
    );
    for field in [
        "messages",
        "temperature",
        "logit_bias",
        "x_vendor_extension",
    ] {
        assert_eq!(
            seen.body[field], body[field],
            "field {field} changed upstream"
        );
    }
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str()),
        "upstream auth; headers: {}",
        seen.headers
    );
    assert_eq!(
        seen.header("x-extra").as_deref(),
        Some("v"),
        "provider header missing"
    );
    assert!(
        !seen.headers.to_string().contains(KEY_ALL),
        "client key leaked upstream: {}",
        seen.headers
    );
    Ok(())
}

#[tokio::test]
async fn completions_endpoint_is_proxied() -> Result<()> {
    let s = setup().await?;
    let body = json!({"model": CHAT_MODEL, "prompt": "Say hi", "max_tokens": 5});
    let resp = s.gateway.post("/v1/completions", KEY_ALL, &body).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(format!("up1/{UPSTREAM_CHAT}").as_str())
    );
    let out: Value = resp.json().await?;
    assert!(
        out.pointer("/choices/0/text")
            .and_then(Value::as_str)
            .is_some(),
        "no choices[0].text: {out}"
    );
    let seen = s.mock.last_request().await?;
    assert_eq!(seen.body["model"], UPSTREAM_CHAT);
    assert_eq!(seen.body["prompt"], "Say hi");
    assert_eq!(seen.body["max_tokens"], 5);
    Ok(())
}

#[tokio::test]
async fn embeddings_endpoint_is_proxied() -> Result<()> {
    let s = setup().await?;
    let body = json!({"model": EMBED_MODEL, "input": ["alpha", "beta"]});
    let resp = s.gateway.post("/v1/embeddings", KEY_ALL, &body).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some(format!("up1/{UPSTREAM_EMBED}").as_str())
    );
    let out: Value = resp.json().await?;
    let data = out["data"]
        .as_array()
        .with_context(|| format!("no data: {out}"))?;
    assert_eq!(data.len(), 2, "one embedding per input: {out}");
    for item in data {
        let emb = item["embedding"]
            .as_array()
            .context("embedding not an array")?;
        assert!(
            !emb.is_empty() && emb.iter().all(Value::is_number),
            "bad embedding"
        );
    }
    let seen = s.mock.last_request().await?;
    assert_eq!(seen.body["model"], UPSTREAM_EMBED);
    assert_eq!(seen.body["input"], body["input"]);
    Ok(())
}

async fn model_ids(s: &OneUpstream, key: &str) -> Result<Vec<String>> {
    let resp = s
        .gateway
        .http()
        .get(s.gateway.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    assert_eq!(body["object"], "list", "body: {body}");
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .with_context(|| format!("no data array: {body}"))?
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids)
}

#[tokio::test]
async fn models_list_shows_only_what_the_key_allows() -> Result<()> {
    let s = setup().await?;
    assert_eq!(
        model_ids(&s, KEY_ALL).await?,
        vec![OTHER_CHAT_MODEL, CHAT_MODEL, EMBED_MODEL]
    );
    assert_eq!(model_ids(&s, KEY_LIMITED).await?, vec![CHAT_MODEL]);
    Ok(())
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_and_x_api_key_works() -> Result<()> {
    let s = setup().await?;
    let url = s.gateway.url("/v1/chat/completions");
    let body = chat_body(CHAT_MODEL, "hi");

    let none = s.gateway.http().post(&url).json(&body).send().await?;
    let err = ApiError::read(none).await?;
    assert_eq!(err.status, 401, "{:?}", err.body);

    let wrong = s.gateway.chat("sk-not-a-real-key", &body).await?;
    let err = ApiError::read(wrong).await?;
    assert_eq!(err.status, 401, "{:?}", err.body);

    let models = s
        .gateway
        .http()
        .get(s.gateway.url("/v1/models"))
        .send()
        .await?;
    assert_eq!(models.status(), 401, "/v1/models without a key");

    assert_eq!(
        s.mock.stats().await?.requests,
        0,
        "rejected requests reached upstream"
    );

    let ok = s
        .gateway
        .http()
        .post(&url)
        .header("x-api-key", KEY_ALL)
        .json(&body)
        .send()
        .await?;
    assert_eq!(ok.status(), 200, "x-api-key auth");
    Ok(())
}

#[tokio::test]
async fn model_outside_key_scope_is_403_model_not_allowed() -> Result<()> {
    let s = setup().await?;
    let resp = s
        .gateway
        .chat(KEY_LIMITED, &chat_body(OTHER_CHAT_MODEL, "hi"))
        .await?;
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 403, "{:?}", err.body);
    assert_eq!(err.code_str(), "model_not_allowed");

    let emb = json!({"model": EMBED_MODEL, "input": "x"});
    let resp = s.gateway.post("/v1/embeddings", KEY_LIMITED, &emb).await?;
    assert_eq!(ApiError::read(resp).await?.status, 403);

    let ok = s
        .gateway
        .chat(KEY_LIMITED, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(ok.status(), 200, "the allowed model");
    assert_eq!(s.mock.stats().await?.requests, 1);
    Ok(())
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405() -> Result<()> {
    let s = setup().await?;
    let resp = s
        .gateway
        .post("/v1/not-a-route", KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 404, "{:?}", err.body);

    let resp = s
        .gateway
        .http()
        .get(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .send()
        .await?;
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 405, "{:?}", err.body);
    assert_eq!(s.mock.stats().await?.requests, 0);
    Ok(())
}

#[tokio::test]
async fn malformed_json_is_400() -> Result<()> {
    let s = setup().await?;
    let resp = s
        .gateway
        .http()
        .post(s.gateway.url("/v1/chat/completions"))
        .bearer_auth(KEY_ALL)
        .header("content-type", "application/json")
        .body("{\"model\": \"gpt-4o-mini\", \"messages\": [")
        .send()
        .await?;
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 400, "{:?}", err.body);
    assert_eq!(s.mock.stats().await?.requests, 0);
    Ok(())
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() -> Result<()> {
    let s = setup().await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body("no-such-model", "hi"))
        .await?;
    let err = ApiError::read(resp).await?;
    assert_eq!(err.status, 404, "{:?}", err.body);
    assert_eq!(err.code_str(), "model_not_found");
    assert_eq!(s.mock.stats().await?.requests, 0);
    Ok(())
}
