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

#[test]
fn errors_carry_serde_json_messages() {
    let err = |body: &str| parse(body).unwrap_err().to_string();
    assert_eq!(
        err("{\"model\":"),
        "invalid JSON body: EOF while parsing a value at line 1 column 9"
    );
    assert_eq!(
        err("[1,2]"),
        "invalid JSON body: invalid type: sequence, expected a JSON object at line 1 column 0"
    );
    assert_eq!(
        err("{\"model\":\"m\",}"),
        "invalid JSON body: trailing comma at line 1 column 14"
    );
    assert_eq!(
        err("{\"model\":\"m\"} x"),
        "invalid JSON body: trailing characters at line 1 column 15"
    );
}

#[test]
fn deep_values_are_skipped_without_recursion() {
    // serde_json never limited the depth of the raw values it skipped; neither does the
    // scanner, and it keeps its open containers in bits, not on the call stack.
    let deep = format!(
        r#"{{"model":"m","x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = parse(&deep).unwrap();
    assert_eq!(r.raw_field("x").map(<[u8]>::len), Some(200_000));
}

// === the serde_json implementation this parser replaced: the differential reference ===

mod reference {
    use std::borrow::Cow;
    use std::ops::Range;

    use serde::Deserialize;
    use serde::de::{self, MapAccess, Visitor};
    use serde_json::value::RawValue;

    use crate::LlmError;

    struct TopLevel<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

    impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = TopLevel<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                        out.push((key, map.next_value()?));
                    }
                    Ok(TopLevel(out))
                }
            }
            d.deserialize_map(V)
        }
    }

    #[derive(Deserialize, Default)]
    struct StreamOptions {
        #[serde(default)]
        include_usage: Option<bool>,
    }

    #[derive(Debug, PartialEq)]
    pub(super) struct Parsed {
        pub fields: Vec<(String, Range<usize>)>,
        pub model: String,
        pub stream: bool,
        pub include_usage: bool,
        pub max_tokens: Option<u64>,
        pub rendered: Vec<u8>,
        pub rendered_injected: Vec<u8>,
    }

    pub(super) fn parse(body: &[u8]) -> Result<Parsed, LlmError> {
        let top: TopLevel<'_> =
            serde_json::from_slice(body).map_err(|e| LlmError::InvalidJson(e.to_string()))?;
        let base = body.as_ptr() as usize;
        let mut fields = Vec::new();
        let (mut model, mut stream, mut include_usage, mut max_tokens) = (None, false, false, None);
        for (key, raw) in &top.0 {
            let text = raw.get();
            let start = text.as_ptr() as usize - base;
            match key.as_ref() {
                "model" => {
                    model = Some(serde_json::from_str::<String>(text).map_err(|_| {
                        LlmError::InvalidField {
                            field: "model",
                            reason: "must be a string".into(),
                        }
                    })?);
                }
                "stream" => {
                    stream = serde_json::from_str::<Option<bool>>(text)
                        .map_err(|_| LlmError::InvalidField {
                            field: "stream",
                            reason: "must be a boolean".into(),
                        })?
                        .unwrap_or(false);
                }
                "stream_options" => {
                    let so: Option<StreamOptions> =
                        serde_json::from_str(text).map_err(|_| LlmError::InvalidField {
                            field: "stream_options",
                            reason: "must be an object".into(),
                        })?;
                    include_usage = so.and_then(|s| s.include_usage).unwrap_or(false);
                }
                "max_tokens" | "max_completion_tokens" => {
                    max_tokens = serde_json::from_str::<Option<u64>>(text).map_err(|_| {
                        LlmError::InvalidField {
                            field: "max_tokens",
                            reason: "must be a non-negative integer".into(),
                        }
                    })?;
                }
                _ => {}
            }
            fields.push((key.to_string(), start..start + text.len()));
        }
        let model = model
            .filter(|m| !m.is_empty())
            .ok_or(LlmError::InvalidField {
                field: "model",
                reason: "is required".into(),
            })?;
        let mut parsed = Parsed {
            fields,
            model,
            stream,
            include_usage,
            max_tokens,
            rendered: Vec::new(),
            rendered_injected: Vec::new(),
        };
        parsed.rendered = render(&parsed, body, super::RENDER_MODEL, false);
        parsed.rendered_injected = render(&parsed, body, super::RENDER_MODEL, true);
        Ok(parsed)
    }

    fn render(p: &Parsed, body: &[u8], model: &str, inject_usage: bool) -> Vec<u8> {
        let inject = inject_usage && p.stream && !p.include_usage;
        let mut out = vec![b'{'];
        let mut saw_options = false;
        for (i, (key, value)) in p.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&serde_json::to_vec(key).unwrap());
            out.push(b':');
            match key.as_str() {
                "model" => out.extend_from_slice(&serde_json::to_vec(model).unwrap()),
                "stream_options" if inject => {
                    saw_options = true;
                    let mut v: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_slice(&body[value.clone()]).unwrap_or_default();
                    v.insert("include_usage".into(), serde_json::Value::Bool(true));
                    out.extend_from_slice(&serde_json::to_vec(&v).unwrap());
                }
                _ => out.extend_from_slice(&body[value.clone()]),
            }
        }
        if inject && !saw_options {
            if !p.fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
        }
        out.push(b'}');
        out
    }
}

const RENDER_MODEL: &str = "up\"stream\u{1}é";

fn ours(body: &[u8]) -> Result<reference::Parsed, LlmError> {
    let r = ParsedRequest::parse(Bytes::copy_from_slice(body))?;
    let fields = r
        .fields
        .iter()
        .map(|f| {
            let key = String::from_utf8(f.key.text(body).to_vec()).unwrap();
            (key, f.value.clone())
        })
        .collect();
    Ok(reference::Parsed {
        fields,
        rendered: r.render(RENDER_MODEL, false),
        rendered_injected: r.render(RENDER_MODEL, true),
        model: r.model,
        stream: r.stream,
        include_usage: r.include_usage,
        max_tokens: r.max_tokens,
    })
}

/// Same result (fields, values, the error and its message, the rendered body) as the serde
/// implementation for the tricky corpus and thousands of generated and mutated bodies; and
/// the scanner alone accepts exactly the bodies serde_json accepts, so the serde fallback
/// only ever runs for invalid bodies.
#[test]
fn differential_against_the_serde_implementation() {
    let mut docs = crate::json_scan::testgen::corpus(0x4e9_0e57, 4000);
    let with_model: Vec<Vec<u8>> = docs
        .iter()
        .filter(|d| d.first() == Some(&b'{'))
        .map(|d| {
            let mut v = br#"{"model":"m","#.to_vec();
            v.extend_from_slice(&d[1..]);
            v
        })
        .collect();
    docs.extend(with_model);
    // A typical body cut at every byte.
    let typical = br#"{"model":"gpt","messages":[{"role":"user","content":"h\u00e9llo \ud83d\ude00"}],"stream":true,"stream_options":{"include_usage":false},"max_tokens":64}"#;
    docs.extend((0..=typical.len()).map(|cut| typical[..cut].to_vec()));
    let (mut ok, mut invalid_json) = (0, 0);
    for doc in &docs {
        let show = String::from_utf8_lossy(doc);
        let want = reference::parse(doc);
        assert_eq!(ours(doc), want, "{show}");
        ok += usize::from(want.is_ok());
        invalid_json += usize::from(matches!(want, Err(LlmError::InvalidJson(_))));
        let scanned = split_top_level(doc).map_err(|_| ());
        let serde = fallback::split_top_level(doc).map_err(|_| ());
        assert_eq!(
            scanned.is_ok(),
            serde.is_ok(),
            "scanner: {scanned:?}: {show}"
        );
    }
    assert!(ok > 1000 && invalid_json > 1000, "{ok} {invalid_json}");
}
