//! The shipped `config/gateway.yaml` works as documented: with the demo key the built-in
//! mock answers chat (streaming and not) and embeddings; `check` accepts it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use datamind_e2e::gateway::run_gateway_command;
use datamind_e2e::paths::{read_text, workspace_root};
use datamind_e2e::sse::{SseStream, joined_content};
use datamind_e2e::{DEV_KEY, Gateway, chat_body, stream_body};
use serde_json::{Value, json};

const API_DEFAULT: &str = "127.0.0.1:8080";
const ADMIN_DEFAULT: &str = "127.0.0.1:9090";

async fn start_default() -> Result<Gateway> {
    let text = read_text(&workspace_root().join("config/gateway.yaml"))?;
    ensure!(
        text.contains(API_DEFAULT) && text.contains(ADMIN_DEFAULT),
        "config/gateway.yaml no longer listens on {API_DEFAULT} / {ADMIN_DEFAULT}"
    );
    Gateway::start_with(|api, admin| {
        text.replace(API_DEFAULT, &api.to_string())
            .replace(ADMIN_DEFAULT, &admin.to_string())
    })
    .await
}

#[tokio::test]
async fn demo_key_gets_a_chat_answer_from_builtin_mock() -> Result<()> {
    let gw = start_default().await?;
    let resp = gw
        .chat(DEV_KEY, &chat_body("gpt-4o-mini", "Hello!"))
        .await?;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    let content = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .with_context(|| format!("no content in {body}"))?;
    assert!(!content.is_empty());
    Ok(())
}

#[tokio::test]
async fn demo_key_gets_a_streamed_answer_from_builtin_mock() -> Result<()> {
    let gw = start_default().await?;
    let resp = gw
        .chat(DEV_KEY, &stream_body("gpt-4o-mini", "Hello!"))
        .await?;
    assert_eq!(resp.status(), 200);
    let events = SseStream::new(resp)
        .collect(Duration::from_secs(10))
        .await?;
    assert!(events.last().is_some_and(|e| e.is_done()), "no [DONE]");
    assert!(!joined_content(&events).is_empty(), "no streamed content");
    Ok(())
}

#[tokio::test]
async fn demo_key_gets_embeddings_and_wrong_key_is_refused() -> Result<()> {
    let gw = start_default().await?;
    let body = json!({"model": "text-embedding-3-small", "input": "hello"});
    let resp = gw.post("/v1/embeddings", DEV_KEY, &body).await?;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await?;
    assert!(
        out.pointer("/data/0/embedding")
            .is_some_and(Value::is_array),
        "no embedding: {out}"
    );
    let resp = gw
        .chat("sk-datamind-wrong", &chat_body("gpt-4o-mini", "x"))
        .await?;
    assert_eq!(resp.status(), 401);
    Ok(())
}

#[tokio::test]
async fn check_accepts_the_default_config() -> Result<()> {
    let path = workspace_root().join("config/gateway.yaml");
    let out = run_gateway_command(&["check", "--config", &path.to_string_lossy()]).await?;
    assert!(
        out.status.success(),
        "check rejected config/gateway.yaml: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
