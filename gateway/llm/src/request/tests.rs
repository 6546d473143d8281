use super::*;
use serde_json::{Value, json};

fn parse(v: &str) -> Result<ParsedRequest, LlmError> {
    ParsedRequest::parse(Bytes::from(v.to_owned()))
}

#[test]
fn finds_model_stream_and_limits() {
    let r = parse(r#"{"model":"gpt","stream":true,"max_tokens":64,"messages":[]}"#).unwrap();
    assert_eq!(r.model, "gpt");
    assert!(r.stream);
    assert!(!r.include_usage);
    assert_eq!(r.max_tokens, Some(64));
    assert!(r.usage_injected());
}

#[test]
fn rejects_bad_json_and_missing_model() {
    assert!(matches!(
        parse("{\"model\":"),
        Err(LlmError::InvalidJson(_))
    ));
    assert!(matches!(parse("[1,2]"), Err(LlmError::InvalidJson(_))));
    assert_eq!(
        parse(r#"{"messages":[]}"#).unwrap_err().param(),
        Some("model")
    );
    assert_eq!(parse(r#"{"model":7}"#).unwrap_err().param(), Some("model"));
    assert_eq!(
        parse(r#"{"model":"m","stream":"yes"}"#)
            .unwrap_err()
            .param(),
        Some("stream")
    );
}

#[test]
fn render_rewrites_model_and_keeps_unknown_fields_verbatim() {
    let src = r#"{"model":"alias","x_custom":{"a":[1,2.50,"\u00e9"]},"messages":[{"role":"user","content":"hi"}]}"#;
    let r = parse(src).unwrap();
    let out = String::from_utf8(r.render("upstream-m", true)).unwrap();
    assert_eq!(
        out,
        r#"{"model":"upstream-m","x_custom":{"a":[1,2.50,"\u00e9"]},"messages":[{"role":"user","content":"hi"}]}"#
    );
}

#[test]
fn render_injects_include_usage_only_for_streams_that_did_not_ask() {
    let r = parse(r#"{"model":"m","stream":true}"#).unwrap();
    let v: Value = serde_json::from_slice(&r.render("u", true)).unwrap();
    assert_eq!(v["stream_options"], json!({"include_usage": true}));

    let r = parse(r#"{"model":"m","stream":true,"stream_options":{"x":1}}"#).unwrap();
    let v: Value = serde_json::from_slice(&r.render("u", true)).unwrap();
    assert_eq!(v["stream_options"], json!({"x": 1, "include_usage": true}));

    let r =
        parse(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
    assert!(!r.usage_injected());
    let r = parse(r#"{"model":"m"}"#).unwrap();
    let v: Value = serde_json::from_slice(&r.render("u", true)).unwrap();
    assert!(v.get("stream_options").is_none());
}

#[test]
fn escaped_keys_and_values_survive() {
    let r = parse(r#"{"mod\u0065l":"a\"b","k\n":1}"#).unwrap();
    assert_eq!(r.model, "a\"b");
    let v: Value = serde_json::from_slice(&r.render("x\"y", false)).unwrap();
    assert_eq!(v["model"], "x\"y");
    assert_eq!(v["k\n"], 1);
}

#[test]
fn large_prompt_round_trips() {
    let big = "x".repeat(4 << 20);
    let src = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{big}"}}]}}"#);
    let r = parse(&src).unwrap();
    let out = r.render("m2", false);
    assert_eq!(out.len(), src.len() + 1);
    assert_eq!(
        r.raw_field("messages").map(<[u8]>::len),
        Some(src.len() - 25)
    );
}
