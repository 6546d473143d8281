//! Every provider kind end to end: the gateway speaks each provider's wire format to
//! `mock-llm` (which checks auth headers, and SigV4 for real) and answers the client in
//! OpenAI's format — whole, streamed, with tool calls, and with provider errors mapped.

use anyhow::{Context, Result};
use datamind_e2e::{
    ApiError, Gateway, GatewayConfig, KEY_ALL, MockLlm, MockSpec, ModelGroup, chat_body, header,
    stream_body,
};
use serde_json::{Value, json};

const MODEL: &str = "gpt-4o-mini";

/// The provider entry for `kind`, pointed at `mock`.
fn provider(kind: &str, name: &str, mock: &MockLlm) -> (Value, &'static str) {
    let root = mock.url("");
    let p = match kind {
        "anthropic" => json!({"name": name, "kind": kind, "base_url": format!("{root}/v1"),
                              "api_key": "sk-ant-upstream"}),
        "gemini" => json!({"name": name, "kind": kind, "base_url": format!("{root}/v1beta"),
                           "api_key": "gm-upstream"}),
        "vertex" => json!({"name": name, "kind": kind,
                           "base_url": format!("{root}/v1/projects/p1/locations/us-central1/publishers/google"),
                           "bearer_token": "ya29.upstream"}),
        "bedrock" => json!({"name": name, "kind": kind, "base_url": root, "region": "us-east-1",
                            "aws_access_key_id": "AKIDMOCK", "aws_secret_access_key": "mock-secret"}),
        "azure" => json!({"name": name, "kind": kind, "base_url": root, "api_key": "az-upstream"}),
        "workers_ai_run" => json!({"name": name, "kind": kind,
                                   "base_url": format!("{root}/client/v4/accounts/acct/ai"),
                                   "api_key": "cf-upstream"}),
        other => json!({"name": name, "kind": other, "base_url": mock.base_url(), "api_key": "x"}),
    };
    let model = match kind {
        "bedrock" => "anthropic.claude-3-haiku-20240307-v1:0",
        "workers_ai_run" => "@cf/meta/llama-3.1-8b-instruct",
        "gemini" | "vertex" => "gemini-2.0-flash",
        _ => "upstream-model",
    };
    (p, model)
}

async fn gateway_for(kind: &str, spec: MockSpec) -> Result<(MockLlm, Gateway)> {
    let mock = MockLlm::start(spec).await?;
    let (p, model) = provider(kind, "up", &mock);
    let cfg = GatewayConfig::new()
        .provider(p)
        .model(ModelGroup::new(MODEL).deployment("up", model));
    let gw = Gateway::start(&cfg).await?;
    Ok((mock, gw))
}

const KINDS: [&str; 6] = [
    "anthropic",
    "gemini",
    "vertex",
    "bedrock",
    "azure",
    "workers_ai_run",
];

#[tokio::test]
async fn every_provider_answers_in_openai_format() -> Result<()> {
    for kind in KINDS {
        let (_mock, gw) = gateway_for(kind, MockSpec::named(kind)).await?;
        let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hello")).await?;
        assert_eq!(
            resp.status(),
            200,
            "{kind}: {:?}",
            header(&resp, "content-type")
        );
        let body: Value = resp.json().await?;
        assert_eq!(body["object"], "chat.completion", "{kind}: {body}");
        let text = body
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(text.contains("mock reply"), "{kind}: {body}");
        assert!(
            body.pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                .is_some(),
            "{kind}: {body}"
        );
        if kind != "workers_ai_run" {
            assert!(
                body["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0,
                "{kind}: {body}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_provider_streams_openai_chunks() -> Result<()> {
    for kind in KINDS {
        let (_mock, gw) = gateway_for(kind, MockSpec::named(kind).chunks(4)).await?;
        let resp = gw
            .post("/v1/chat/completions", KEY_ALL, &stream_body(MODEL, "hi"))
            .await?;
        assert_eq!(resp.status(), 200, "{kind}");
        let text = resp.text().await?;
        assert!(text.trim_end().ends_with("data: [DONE]"), "{kind}: {text}");
        let mut content = String::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if line == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(line).with_context(|| format!("{kind}: {line}"))?;
            assert_eq!(v["object"], "chat.completion.chunk", "{kind}: {line}");
            if let Some(c) = v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                content.push_str(c);
            }
        }
        assert!(
            !content.trim().is_empty(),
            "{kind}: no streamed content in {text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn anthropic_tool_use_becomes_openai_tool_calls() -> Result<()> {
    let (_mock, gw) = gateway_for("anthropic", MockSpec::named("a")).await?;
    let mut body = chat_body(MODEL, "Weather in Paris?");
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
    let resp = gw.chat(KEY_ALL, &body).await?;
    let v: Value = resp.json().await?;
    assert_eq!(
        v.pointer("/choices/0/finish_reason"),
        Some(&json!("tool_calls")),
        "{v}"
    );
    let call = v
        .pointer("/choices/0/message/tool_calls/0")
        .context("no tool call")?;
    assert_eq!(call["function"]["name"], "get_weather", "{v}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("null"))?;
    assert_eq!(args["location"], "Paris", "{v}");
    Ok(())
}

#[tokio::test]
async fn provider_rate_limit_maps_to_openai_429() -> Result<()> {
    let (_mock, gw) =
        gateway_for("anthropic", MockSpec::named("a").status(429).retry_after(1)).await?;
    let err = ApiError::read(gw.chat(KEY_ALL, &chat_body(MODEL, "x")).await?).await?;
    assert_eq!(err.status.as_u16(), 429, "{err:?}");
    assert_eq!(err.code_str(), "rate_limit_exceeded", "{err:?}");
    Ok(())
}

#[tokio::test]
async fn wrong_aws_secret_is_a_gateway_auth_error_without_leaks() -> Result<()> {
    let mock = MockLlm::start(MockSpec::named("b")).await?;
    let (mut p, model) = provider("bedrock", "up", &mock);
    p["aws_secret_access_key"] = json!("wrong-secret-value");
    let cfg = GatewayConfig::new()
        .provider(p)
        .model(ModelGroup::new(MODEL).deployment("up", model));
    let gw = Gateway::start(&cfg).await?;
    let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "x")).await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    assert_eq!(status, 502, "{text}");
    assert!(text.contains("upstream_auth_failed"), "{text}");
    assert!(
        !text.contains("wrong-secret-value") && !text.contains("AKIDMOCK"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn anthropic_primary_falls_back_to_gemini() -> Result<()> {
    let primary = MockLlm::start(MockSpec::named("ant").status(529)).await?;
    let backup = MockLlm::start(MockSpec::named("gem")).await?;
    let (pa, ma) = provider("anthropic", "ant", &primary);
    let (pg, mg) = provider("gemini", "gem", &backup);
    let cfg = GatewayConfig::new()
        .provider(pa)
        .provider(pg)
        .model(
            ModelGroup::new(MODEL)
                .deployment("ant", ma)
                .fallback("backup"),
        )
        .model(ModelGroup::new("backup").deployment("gem", mg));
    let gw = Gateway::start(&cfg).await?;
    for body in [chat_body(MODEL, "x"), stream_body(MODEL, "x")] {
        let resp = gw.chat(KEY_ALL, &body).await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header(&resp, "x-datamind-deployment").as_deref(),
            Some(format!("gem/{mg}").as_str())
        );
        assert_eq!(header(&resp, "x-datamind-attempts").as_deref(), Some("2"));
        let text = resp.text().await?;
        assert!(!text.contains("\"error\""), "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn vertex_service_account_token_is_exchanged_once_and_cached() -> Result<()> {
    let mock = MockLlm::start(MockSpec::named("vx")).await?;
    let dir = tempfile::tempdir()?;
    let key = std::fs::read_to_string(
        datamind_e2e::paths::workspace_root().join("gateway/llm/tests/fixtures/test_sa_key.pem"),
    )?;
    let sa = json!({"type": "service_account", "client_email": "gw@proj.iam.gserviceaccount.com",
                    "private_key": key, "private_key_id": "k1", "token_uri": mock.url("/token")});
    let sa_path = dir.path().join("sa.json");
    std::fs::write(&sa_path, sa.to_string())?;
    let (mut p, model) = provider("vertex", "up", &mock);
    p.as_object_mut().context("object")?.remove("bearer_token");
    p["service_account_file"] = json!(sa_path.to_string_lossy());
    let cfg = GatewayConfig::new()
        .provider(p)
        .model(ModelGroup::new(MODEL).deployment("up", model));
    let gw = Gateway::start(&cfg).await?;
    for _ in 0..3 {
        let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "hello")).await?;
        assert_eq!(resp.status(), 200, "{}", resp.text().await?);
    }
    let stats: Value = reqwest::get(mock.url("/stats")).await?.json().await?;
    assert_eq!(
        stats["token_requests"], 1,
        "one exchange, then the cached token: {stats}"
    );
    let last: Value = reqwest::get(mock.url("/last-request"))
        .await?
        .json()
        .await?;
    assert_eq!(
        last["headers"]["authorization"], "Bearer ya29.mock",
        "{last}"
    );
    Ok(())
}

/// The official `openai` SDK, unmodified, served by non-OpenAI upstreams through the gateway:
/// chat, streaming (with and without usage), tool calls (whole and streamed) and errors.
#[tokio::test]
async fn openai_sdk_is_served_by_anthropic_gemini_and_bedrock_upstreams() -> Result<()> {
    let python = datamind_e2e::paths::venv_python()?;
    for kind in ["anthropic", "gemini", "bedrock"] {
        let (_mock, gw) = gateway_for(kind, MockSpec::named(kind).chunks(4)).await?;
        let mut cmd = tokio::process::Command::new(&python);
        cmd.args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python/test_openai_sdk.py",
        ])
        .args(["-k", "chat or bad_key or unknown_model"])
        .current_dir(datamind_e2e::paths::workspace_root())
        .env("DATAMIND_GATEWAY_URL", gw.url(""))
        .env("DATAMIND_API_KEY", KEY_ALL)
        .env("DATAMIND_CHAT_MODEL", MODEL)
        .env("DATAMIND_TOOL_CALLS", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
        let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .context("pytest timed out")??;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{kind}: pytest failed:\n{report}");
        assert!(
            report.contains("6 passed"),
            "{kind}: expected 6 SDK tests to pass:\n{report}"
        );
    }
    Ok(())
}

/// Every error class from every provider kind, in that provider's own error format (the
/// mock answers in it), reaches the OpenAI client with the right status and code; 429
/// keeps `Retry-After`; credential failures are the gateway's 502 and never echo a key.
#[tokio::test]
async fn every_error_class_from_every_provider_maps_to_openai_errors() -> Result<()> {
    // (upstream status, client status, code for providers not speaking OpenAI's format)
    let classes: [(u16, u16, &str); 8] = [
        (400, 400, ""),
        (401, 502, "upstream_auth_failed"),
        (403, 502, "upstream_auth_failed"),
        (404, 404, "model_not_found"),
        (413, 413, "request_too_large"),
        (500, 500, ""),
        (503, 503, "overloaded"),
        // Last: its Retry-After rightly cools the deployment down.
        (429, 429, "rate_limit_exceeded"),
    ];
    let kinds = std::iter::once("openai").chain(KINDS);
    for kind in kinds {
        let mock = MockLlm::start(MockSpec::named(kind)).await?;
        let (p, model) = provider(kind, "up", &mock);
        let secret = p
            .get("api_key")
            .or(p.get("bearer_token"))
            .or(p.get("aws_secret_access_key"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        // No cooldown: every request must reach the upstream and show its own error.
        let cfg = GatewayConfig::new()
            .provider(p)
            .model(ModelGroup::new(MODEL).deployment("up", model))
            .set("/cooldown/failures", json!(1_000_000));
        let gw = Gateway::start(&cfg).await?;
        let openai_shaped = matches!(kind, "openai" | "azure");
        for (upstream, client, code) in classes {
            mock.control(
                json!({"status": upstream, "retry_after": if upstream == 429 { 7 } else { 0 }}),
            )
            .await?;
            let resp = gw.chat(KEY_ALL, &chat_body(MODEL, "x")).await?;
            let resp_status = resp.status().as_u16();
            let retry_after = header(&resp, "retry-after");
            let text = resp.text().await?;
            let err: Value = serde_json::from_str(&text)
                .with_context(|| format!("{kind} {upstream}: not JSON: {text}"))?;
            let got = err["error"]["code"].as_str().unwrap_or("");
            let kind_of_error = err
                .pointer("/error/type")
                .and_then(Value::as_str)
                .with_context(|| format!("{kind} {upstream}: not an OpenAI error: {text}"))?;
            assert!(!kind_of_error.is_empty(), "{kind} {upstream}: {text}");
            assert!(
                secret.is_empty() || !text.contains(&secret),
                "{kind} {upstream} leaks the upstream credential: {text}"
            );
            assert_eq!(resp_status, client, "{kind} {upstream}: {text}");
            if !code.is_empty() && (!openai_shaped || matches!(upstream, 401 | 403)) {
                assert_eq!(got, code, "{kind} {upstream}: {text}");
            }
            if upstream == 429 {
                assert_eq!(retry_after.as_deref(), Some("7"), "{kind}: {text}");
            }
        }
        mock.heal().await?;
    }
    Ok(())
}
