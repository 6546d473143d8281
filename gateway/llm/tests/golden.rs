//! Golden translation tests: one directory per case under `tests/golden/<provider>/<case>/`.
//!
//! Provider cases (`<provider>` is a `ProviderKind` name):
//! * `request.json` — the client's OpenAI request; `target.json` — the deployment
//!   (host, base_path, model, credentials, `now_unix`, optional `operation`).
//! * `provider_request.json` — the exact request built: method, path, headers, body.
//! * `response.json` → `client_response.json`: a non-streamed provider answer, translated.
//! * `stream.sse` (or `stream.jsonl` for Bedrock: one `{"event","payload"}` per frame) →
//!   `client_stream.sse` and `client_stream_summary.json`. Every stream is also fed split
//!   at every byte offset and one byte at a time; the output must not change.
//! * `error.json` (`{"status","body"}`) → `client_error.json`.
//!
//! Client cases (`anthropic_messages/<case>/`): `request.json` (Anthropic) →
//! `openai_request.json`; `openai_response.json` → `client_response.json`;
//! `openai_stream.sse` → `client_stream.sse`.
//!
//! `DATAMIND_BLESS=1 cargo test -p datamind-llm --test golden` writes the expected files;
//! review every change before committing it.

// Helpers of a test binary: a failed fixture read should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use datamind_llm::client::anthropic as messages;
use datamind_llm::providers::{AwsCredentials, ResponseMeta, Target};
use datamind_llm::stream::StreamTranslator;
use datamind_llm::stream::eventstream::{encode_event, encode_exception};
use datamind_llm::{Operation, ParsedRequest, ProviderKind};
use serde_json::{Value, json};

const CREATED: u64 = 1_700_000_000;
const ID: &str = "chatcmpl-golden";

fn bless() -> bool {
    std::env::var_os("DATAMIND_BLESS").is_some()
}

/// Compares `actual` with the file, or writes it when blessing. Returns a failure message.
fn check(dir: &Path, name: &str, actual: &[u8], json: bool) -> Option<String> {
    let path = dir.join(name);
    let expected = fs::read(&path).ok();
    let same = match (&expected, json) {
        (Some(e), true) => {
            serde_json::from_slice::<Value>(e).ok() == serde_json::from_slice::<Value>(actual).ok()
        }
        (Some(e), false) => e == actual,
        (None, _) => false,
    };
    if same {
        return None;
    }
    if bless() {
        let bytes = if json {
            let v: Value = serde_json::from_slice(actual).unwrap_or(Value::Null);
            let mut s = serde_json::to_vec_pretty(&v).unwrap();
            s.push(b'\n');
            s
        } else {
            actual.to_vec()
        };
        fs::write(&path, bytes).unwrap();
        return None;
    }
    Some(format!(
        "{}: expected\n{}\n--- got\n{}",
        path.display(),
        String::from_utf8_lossy(expected.as_deref().unwrap_or(b"<missing>")),
        String::from_utf8_lossy(actual)
    ))
}

fn read_json(path: &Path) -> Option<Value> {
    fs::read(path)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

/// Feeds `input` whole, split at every offset and byte by byte; all runs must agree.
fn run_stream(make: &dyn Fn() -> Box<dyn StreamTranslator>, input: &[u8]) -> (Vec<u8>, Value) {
    let run = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut t = make();
        let mut out = Vec::new();
        for p in pieces {
            t.feed(p, &mut out).unwrap();
        }
        t.finish(&mut out);
        let s = t.summary();
        let summary = json!({"usage": s.usage, "finish_reason": s.finish_reason,
            "done": s.done, "error": s.error});
        (out, summary)
    };
    let whole = run(&mut std::iter::once(input));
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        let got = run(&mut [a, b].into_iter());
        assert_eq!(
            String::from_utf8_lossy(&got.0),
            String::from_utf8_lossy(&whole.0),
            "split at byte {split}"
        );
        assert_eq!(got.1, whole.1, "summary, split at byte {split}");
    }
    let bytes = run(&mut input.chunks(1));
    assert_eq!(bytes.0, whole.0, "byte by byte");
    whole
}

fn provider_kind(name: &str) -> ProviderKind {
    serde_json::from_value(json!(name)).unwrap_or_else(|_| panic!("unknown provider dir {name}"))
}

fn run_provider_case(kind: ProviderKind, dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let adapter = kind.adapter().unwrap();
    let body = fs::read(dir.join("request.json")).unwrap();
    let req = ParsedRequest::parse(Bytes::from(body)).unwrap();
    let t = read_json(&dir.join("target.json")).unwrap_or(json!({}));
    let s = |k: &str| t.get(k).and_then(Value::as_str);
    let aws = t.get("aws").map(|a| AwsCredentials {
        access_key_id: a["access_key_id"].as_str().unwrap(),
        secret_access_key: a["secret_access_key"].as_str().unwrap(),
        session_token: a.get("session_token").and_then(Value::as_str),
    });
    let target = Target {
        base_path: s("base_path").unwrap_or(""),
        host: s("host").unwrap_or("upstream.example"),
        model: s("model").unwrap_or("model-x"),
        api_key: s("api_key"),
        api_key_bearer: None,
        extra_headers: &[],
        api_version: s("api_version"),
        bearer_token: s("bearer_token"),
        aws,
        region: s("region"),
        now_unix: t.get("now_unix").and_then(Value::as_u64),
    };
    let op = match s("operation") {
        Some("embeddings") => Operation::Embeddings,
        _ => Operation::ChatCompletions,
    };
    let meta = ResponseMeta {
        created: CREATED,
        id: ID,
        model: target.model,
    };
    // A caller that prebuilt `Bearer {api_key}` gets the very same request.
    let prebuilt = target.api_key.map(|k| format!("Bearer {k}"));
    let up = adapter.build_request(op, &req, &target).unwrap();
    let with_prebuilt = Target {
        api_key_bearer: prebuilt.as_deref(),
        ..target
    };
    assert_eq!(
        adapter.build_request(op, &req, &with_prebuilt).unwrap(),
        up,
        "{}: prebuilt bearer",
        dir.display()
    );
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    let headers: Vec<(&str, &str)> = up.all_headers().collect();
    let built =
        json!({"method": up.method, "path": up.path.to_string(), "headers": headers, "body": body});
    failures.extend(check(
        dir,
        "provider_request.json",
        built.to_string().as_bytes(),
        true,
    ));

    if let Ok(resp) = fs::read(dir.join("response.json")) {
        let (out, usage) = adapter.translate_response_with(op, resp, &meta);
        assert!(usage.is_some(), "{}: no usage", dir.display());
        failures.extend(check(dir, "client_response.json", &out, true));
    }
    let stream = fs::read(dir.join("stream.sse")).ok().or_else(|| {
        let lines = fs::read_to_string(dir.join("stream.jsonl")).ok()?;
        let mut wire = Vec::new();
        for l in lines.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(l).unwrap();
            let payload = serde_json::to_vec(&v["payload"]).unwrap();
            match v.get("exception").and_then(Value::as_str) {
                Some(x) => wire.extend(encode_exception(x, &payload)),
                None => wire.extend(encode_event(v["event"].as_str().unwrap(), &payload)),
            }
        }
        Some(wire)
    });
    if let Some(input) = stream {
        let make = || adapter.stream_translator_with(op, &req, &meta);
        let (out, summary) = run_stream(&make, &input);
        failures.extend(check(dir, "client_stream.sse", &out, false));
        failures.extend(check(
            dir,
            "client_stream_summary.json",
            summary.to_string().as_bytes(),
            true,
        ));
    }
    if let Some(e) = read_json(&dir.join("error.json")) {
        let body = serde_json::to_vec(&e["body"]).unwrap();
        let m = adapter.translate_error(e["status"].as_u64().unwrap() as u16, &body);
        let v: Value = serde_json::from_slice(&m.body.to_json()).unwrap();
        let got = json!({"status": m.status, "body": v,
            "context_window_exceeded": m.context_window_exceeded});
        failures.extend(check(
            dir,
            "client_error.json",
            got.to_string().as_bytes(),
            true,
        ));
    }
    failures
}

fn run_messages_case(dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let body = fs::read(dir.join("request.json")).unwrap();
    let r = messages::to_openai_request(&body).unwrap();
    failures.extend(check(dir, "openai_request.json", &r.openai_body, true));
    // The translated body must be routable.
    ParsedRequest::parse(Bytes::from(r.openai_body.clone())).unwrap();
    if let Ok(resp) = fs::read(dir.join("openai_response.json")) {
        let out = messages::from_openai_response(&resp, &r.model).unwrap();
        failures.extend(check(dir, "client_response.json", &out, true));
    }
    if let Ok(input) = fs::read(dir.join("openai_stream.sse")) {
        let make = || -> Box<dyn StreamTranslator> {
            Box::new(messages::MessagesStream::new(
                &r.model,
                r.estimated_input_tokens,
            ))
        };
        let (out, summary) = run_stream(&make, &input);
        failures.extend(check(dir, "client_stream.sse", &out, false));
        failures.extend(check(
            dir,
            "client_stream_summary.json",
            summary.to_string().as_bytes(),
            true,
        ));
    }
    failures
}

fn dirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn golden_cases() {
    // Cargo sets the variable at run time too: this checkout's fixtures, even when the test
    // binary was built in another checkout sharing the target directory.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = manifest.join("tests/golden");
    let mut failures = Vec::new();
    let mut cases = 0;
    for pdir in dirs(&root) {
        let name = pdir.file_name().unwrap().to_string_lossy().into_owned();
        for case in dirs(&pdir) {
            cases += 1;
            assert!(
                case.join("source.txt").exists(),
                "{}: no source.txt",
                case.display()
            );
            if name == "anthropic_messages" {
                failures.extend(run_messages_case(&case));
            } else {
                failures.extend(run_provider_case(provider_kind(&name), &case));
            }
        }
    }
    assert!(cases >= 10, "only {cases} golden cases found");
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
