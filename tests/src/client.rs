//! What a client sends and how it reads answers: request bodies, headers, OpenAI errors.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// The HTTP client every test uses: 127.0.0.1 only (proxies ignored), 15 s per request.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
        .build()
        .context("building HTTP client")
}

/// A non-streaming chat request with one user message.
pub fn chat_body(model: &str, prompt: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}]
    })
}

/// A streaming chat request (no `stream_options`).
pub fn stream_body(model: &str, prompt: &str) -> Value {
    json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": prompt}]
    })
}

/// A response header as text.
pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An OpenAI-style error answer: `{"error":{"message","type","param","code"}}`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: String,
    pub param: Value,
    pub code: Value,
    pub body: Value,
}

// === impl ApiError ===

impl ApiError {
    /// Reads the body and checks it has the OpenAI error shape (all four keys present,
    /// `message` and `type` non-empty strings).
    pub async fn read(resp: Response) -> Result<Self> {
        let status = resp.status();
        let text = resp.text().await.context("reading error body")?;
        let body: Value = serde_json::from_str(&text)
            .with_context(|| format!("{status}: error body is not JSON: {text:?}"))?;
        let err = body
            .get("error")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow!("{status}: no `error` object in {body}"))?;
        for key in ["message", "type", "param", "code"] {
            if !err.contains_key(key) {
                bail!("{status}: error object lacks `{key}`: {body}");
            }
        }
        let text_field = |k: &str| -> Result<String> {
            err.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{status}: error.{k} is not a non-empty string: {body}"))
        };
        Ok(Self {
            status,
            message: text_field("message")?,
            kind: text_field("type")?,
            param: err.get("param").cloned().unwrap_or(Value::Null),
            code: err.get("code").cloned().unwrap_or(Value::Null),
            body: body.clone(),
        })
    }

    /// `error.code` as text (empty when null).
    pub fn code_str(&self) -> &str {
        self.code.as_str().unwrap_or("")
    }
}
