//! Provider error answers → the client's OpenAI error, in one pure function.
//!
//! | provider status / kind                  | client status | `type` / `code`                          |
//! |-----------------------------------------|---------------|------------------------------------------|
//! | context window exceeded (any status)    | 400           | `invalid_request_error` / `context_length_exceeded` |
//! | 400, 422                                | 400           | `invalid_request_error`                  |
//! | 401, 403 (the gateway's credentials)    | 502           | `server_error` / `upstream_auth_failed`   |
//! | 404                                     | 404           | `invalid_request_error` / `model_not_found` |
//! | 413                                     | 413           | `invalid_request_error` / `request_too_large` |
//! | 429 (and Bedrock throttling)            | 429           | `rate_limit_error` / `rate_limit_exceeded` |
//! | 529 (Anthropic overloaded), 503         | 503           | `server_error` / `overloaded`             |
//! | other 5xx                               | same          | `server_error`                           |
//!
//! Messages of 401/403 answers are never relayed (they may quote the key); other messages
//! are relayed with anything shaped like a credential masked.

use serde_json::Value;

use crate::error_body::ErrorBody;

/// A provider error, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// Status for the client.
    pub status: u16,
    /// The OpenAI error body.
    pub body: ErrorBody,
    /// The prompt did not fit the model's context window: a group may fall back to a
    /// deployment with a larger one.
    pub context_window_exceeded: bool,
}

/// Maps `status` and `body` from any supported provider.
pub fn map(status: u16, body: &[u8]) -> ProviderError {
    let (message, kind) = extract(body);
    let context = is_context_window_error(&message, kind.as_deref());
    let msg = || {
        if message.is_empty() {
            format!("upstream answered {status}")
        } else {
            mask_secrets(&message)
        }
    };
    let throttled = kind
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case("ThrottlingException") || k == "rate_limit_error");
    let (st, body) = if context {
        (
            400,
            ErrorBody::new(
                "invalid_request_error",
                Some("context_length_exceeded"),
                msg(),
            ),
        )
    } else if status == 401 || status == 403 {
        (
            502,
            ErrorBody::new(
                "server_error",
                Some("upstream_auth_failed"),
                format!(
                    "the provider rejected the gateway's credentials ({status}); \
                     this is a gateway configuration problem"
                ),
            ),
        )
    } else if status == 429 || throttled {
        (
            429,
            ErrorBody::new("rate_limit_error", Some("rate_limit_exceeded"), msg()),
        )
    } else if status == 404 {
        (
            404,
            ErrorBody::new("invalid_request_error", Some("model_not_found"), msg()),
        )
    } else if status == 413 {
        (
            413,
            ErrorBody::new("invalid_request_error", Some("request_too_large"), msg()),
        )
    } else if status == 529 || status == 503 {
        (
            503,
            ErrorBody::new("server_error", Some("overloaded"), msg()),
        )
    } else if status >= 500 {
        (status, ErrorBody::new("server_error", None, msg()))
    } else {
        (400, ErrorBody::new("invalid_request_error", None, msg()))
    };
    ProviderError {
        status: st,
        body,
        context_window_exceeded: context,
    }
}

/// The message and error kind/code in the provider's error shape:
/// OpenAI/Azure/vLLM `{"error":{"message","type","code"}}`, Anthropic
/// `{"type":"error","error":{"type","message"}}`, Gemini `{"error":{"code","message","status"}}`,
/// Bedrock `{"message"}` (+ `__type`), Workers AI `{"errors":[{"message"}]}`.
fn extract(body: &[u8]) -> (String, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return (text.chars().take(500).collect(), None);
    };
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if let Some(e) = v.get("error") {
        if let Some(m) = e.as_str() {
            return (m.to_owned(), None);
        }
        let kind = s(e.get("code"))
            .or_else(|| s(e.get("status")))
            .or_else(|| s(e.get("type")));
        return (s(e.get("message")).unwrap_or_default(), kind);
    }
    if let Some(m) = s(v.get("message")).or_else(|| s(v.get("Message"))) {
        let kind = s(v.get("__type")).map(|t| t.rsplit('#').next().unwrap_or(&t).to_owned());
        return (m, kind);
    }
    if let Some(e) = v.pointer("/errors/0") {
        return (s(e.get("message")).unwrap_or_default(), None);
    }
    (String::new(), None)
}

/// Context-window overflow, as each provider words it.
pub fn is_context_window_error(message: &str, kind: Option<&str>) -> bool {
    if kind == Some("context_length_exceeded") {
        return true;
    }
    let m = message.to_ascii_lowercase();
    const NEEDLES: &[&str] = &[
        "context_length_exceeded",
        "maximum context length",
        "context length",
        "context window",
        "prompt is too long",
        "exceed context limit",
        "input is too long",
        "too many input tokens",
        "exceeds the maximum number of tokens",
        "reduce the length of the messages",
        "input token count",
    ];
    NEEDLES.iter().any(|n| m.contains(n))
}

/// Masks tokens that look like credentials (`sk-…`, `AKIA…`, `AIza…`, `Bearer …`).
pub fn mask_secrets(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mask_next = false;
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
        let secret = mask_next
            || (w.len() >= 12
                && ["sk-", "AKIA", "ASIA", "AIza", "ya29.", "xai-", "gsk_"]
                    .iter()
                    .any(|p| w.starts_with(p)));
        mask_next = w.eq_ignore_ascii_case("bearer");
        if secret && !w.is_empty() {
            out.push_str(&word.replace(w, "[redacted]"));
        } else {
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_context_window_errors_from_each_provider() {
        let cases: &[(u16, &str)] = &[
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#,
            ),
            (
                400,
                r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            ),
            (
                400,
                r#"{"message":"Input is too long for requested model."}"#,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
            ),
            (413, r#"{"message":"too many input tokens"}"#),
        ];
        for (st, b) in cases {
            let e = map(*st, b.as_bytes());
            assert!(e.context_window_exceeded, "{b}");
            assert_eq!(e.status, 400);
            assert_eq!(e.body.code, Some("context_length_exceeded"));
        }
    }

    #[test]
    fn auth_errors_become_gateway_errors_without_the_message() {
        let e = map(
            401,
            br#"{"error":{"message":"Incorrect API key provided: sk-abc123456789xyz","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert_eq!(e.status, 502);
        assert_eq!(e.body.code, Some("upstream_auth_failed"));
        assert!(!e.body.message.contains("sk-"));
    }

    #[test]
    fn maps_each_class() {
        let t = |st: u16, b: &str| {
            let e = map(st, b.as_bytes());
            (e.status, e.body.kind, e.body.code)
        };
        assert_eq!(
            t(
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#
            ),
            (429, "rate_limit_error", Some("rate_limit_exceeded"))
        );
        assert_eq!(
            t(
                400,
                r#"{"message":"Too many requests","__type":"com.amazon#ThrottlingException"}"#
            ),
            (429, "rate_limit_error", Some("rate_limit_exceeded"))
        );
        assert_eq!(
            t(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            (503, "server_error", Some("overloaded"))
        );
        assert_eq!(
            t(404, "{}"),
            (404, "invalid_request_error", Some("model_not_found"))
        );
        assert_eq!(t(500, "oops"), (500, "server_error", None));
        assert_eq!(
            t(
                400,
                r#"{"errors":[{"code":5006,"message":"bad input"}],"success":false}"#
            ),
            (400, "invalid_request_error", None)
        );
    }

    #[test]
    fn masks_credentials_in_relayed_messages() {
        assert_eq!(
            mask_secrets("key AKIAIOSFODNN7EXAMPLE, token Bearer abc.def"),
            "key [redacted], token Bearer [redacted]"
        );
    }
}
