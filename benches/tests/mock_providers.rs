//! End-to-end check of `mock-llm`'s provider wire formats: requests are built by the gateway's
//! own adapters (`datamind-llm`, including its SigV4 signer), sent over HTTP to the binary, and
//! the answers are translated back by the same adapters. Hand-made requests cover the refusals
//! (missing credentials, a wrong SigV4 signature) and the faults.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use datamind_llm::providers::{AwsCredentials, Target};
use datamind_llm::{Operation, ParsedRequest, ProviderKind, UpstreamRequest};
use serde_json::{Value, json};

const CONTENT: &str = "This is a mock reply.";

struct Mock {
    child: Child,
    addr: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn start(args: &[&str]) -> Mock {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-llm"))
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    Mock { child, addr }
}

fn chat(stream: bool, tools: bool) -> ParsedRequest {
    let mut body = json!({
        "model": "client-model",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Weather in Paris?"}],
        "max_tokens": 64,
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    if tools {
        body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
    }
    ParsedRequest::parse(Bytes::from(body.to_string())).unwrap()
}

fn target<'a>(mock: &'a Mock, base_path: &'a str, model: &'a str) -> Target<'a> {
    Target {
        base_path,
        host: &mock.addr,
        model,
        api_key: None,
        api_key_bearer: None,
        extra_headers: &[],
        api_version: None,
        bearer_token: None,
        aws: None,
        region: None,
        now_unix: None,
    }
}

/// Sends an adapter-built request; returns status, content type, body.
async fn send(mock: &Mock, req: &UpstreamRequest<'_>) -> (u16, String, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut builder = client
        .post(mock.url(&req.path.to_string()))
        .body(req.body.clone());
    for (name, value) in req.all_headers() {
        builder = builder.header(name, value);
    }
    let resp = builder.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

/// Builds, sends, and translates one request through `kind`'s adapter: the OpenAI answer
/// the gateway would give its client (a JSON body, or the SSE text of a stream).
async fn round_trip(
    mock: &Mock,
    kind: ProviderKind,
    req: &ParsedRequest,
    t: &Target<'_>,
) -> String {
    let adapter = kind.adapter().unwrap();
    let op = Operation::ChatCompletions;
    let upstream = adapter.build_request(op, req, t).unwrap();
    let (status, content_type, body) = send(mock, &upstream).await;
    assert_eq!(status, 200, "{kind:?}: {}", String::from_utf8_lossy(&body));
    if adapter.is_stream(&content_type) {
        let mut tr = adapter.stream_translator(op, req);
        let mut out = Vec::new();
        // Odd-sized slices: the translators must reassemble split events and frames.
        for piece in body.chunks(7) {
            tr.feed(piece, &mut out).unwrap();
        }
        tr.finish(&mut out);
        assert!(
            tr.summary().done || tr.summary().finish_reason.is_some(),
            "{kind:?}"
        );
        assert!(!tr.summary().error, "{kind:?}");
        String::from_utf8(out).unwrap()
    } else {
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let (out, usage) = adapter.translate_response(op, body);
        assert!(usage.is_some(), "{kind:?}: no usage");
        String::from_utf8(out).unwrap()
    }
}

/// Concatenated `delta.content` and tool-call arguments of an OpenAI SSE text.
fn stream_text(sse: &str) -> (String, String) {
    let (mut text, mut args) = (String::new(), String::new());
    for data in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(t) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            text.push_str(t);
        }
        if let Some(a) = v
            .pointer("/choices/0/delta/tool_calls/0/function/arguments")
            .and_then(Value::as_str)
        {
            args.push_str(a);
        }
    }
    (text, args)
}

fn openai(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

async fn post(mock: &Mock, path: &str, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut b = reqwest::Client::new()
        .post(mock.url(path))
        .body(body.to_owned());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.send().await.unwrap()
}

#[tokio::test]
async fn anthropic_messages() {
    let mock = start(&["--chunks", "3"]);
    let mut t = target(&mock, "/v1", "claude-x");
    t.api_key = Some("sk-ant-mock");

    let v = openai(&round_trip(&mock, ProviderKind::Anthropic, &chat(false, false), &t).await);
    assert_eq!(v["choices"][0]["message"]["content"], CONTENT);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["model"], "claude-x");
    assert_eq!(v["usage"]["completion_tokens"], 5);

    let v = openai(&round_trip(&mock, ProviderKind::Anthropic, &chat(false, true), &t).await);
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_mock1");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"location":"Paris"}"#);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    let sse = round_trip(&mock, ProviderKind::Anthropic, &chat(true, false), &t).await;
    assert_eq!(stream_text(&sse).0, "tok1 tok2 tok3 ");
    let sse = round_trip(&mock, ProviderKind::Anthropic, &chat(true, true), &t).await;
    assert_eq!(stream_text(&sse).1, r#"{"location":"Paris"}"#);

    // The raw stream: the real event order.
    let body = r#"{"model":"m","max_tokens":5,"stream":true,"messages":[]}"#;
    let auth = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
    let resp = post(&mock, "/v1/messages", &auth, body).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );

    // /last-request holds what the adapter sent.
    let last = mock.get("/last-request").await;
    assert_eq!(last["path"], "/v1/messages");
    assert_eq!(last["headers"]["x-api-key"], "k");
    assert_eq!(last["body"]["model"], "m");

    // No key → 401 authentication_error; no version → 400.
    let resp = post(
        &mock,
        "/v1/messages",
        &[("anthropic-version", "2023-06-01")],
        body,
    )
    .await;
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["type"], "authentication_error");
    let resp = post(&mock, "/v1/messages", &[("x-api-key", "k")], body).await;
    assert_eq!(resp.status(), 400);

    // Status faults answer in Anthropic's error shape.
    for (status, kind) in [("429", "rate_limit_error"), ("529", "overloaded_error")] {
        let h = [
            auth[0],
            auth[1],
            ("x-mock-status", status),
            ("x-mock-retry-after", "3"),
        ];
        let resp = post(&mock, "/v1/messages", &h, body).await;
        assert_eq!(resp.status().as_str(), status);
        assert_eq!(resp.headers()["retry-after"], "3");
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["type"], kind);
    }

    // Delays: 3 deltas 40 ms apart after a 50 ms TTFT.
    let h = [
        auth[0],
        auth[1],
        ("x-mock-ttft-ms", "50"),
        ("x-mock-chunk-delay-ms", "40"),
    ];
    let started = Instant::now();
    let text = post(&mock, "/v1/messages", &h, body)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(130),
        "{:?}",
        started.elapsed()
    );
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

    // drop-mid-stream: one of three deltas, then the connection breaks.
    let h = [auth[0], auth[1], ("x-mock-fault", "drop-mid-stream")];
    let mut resp = post(&mock, "/v1/messages", &h, body).await;
    let mut text = String::new();
    let broke = loop {
        match resp.chunk().await {
            Ok(Some(c)) => text.push_str(std::str::from_utf8(&c).unwrap()),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broke, "{text}");
    assert_eq!(text.matches("text_delta").count(), 1, "{text}");
    assert!(!text.contains("message_stop"));
    let s = mock.get("/stats").await;
    assert_eq!(s["faulted"], 1, "{s}");
    assert_eq!(s["active"], 0, "{s}");
}

#[tokio::test]
async fn gemini_vertex_and_token() {
    let mock = start(&["--chunks", "4"]);
    let mut t = target(&mock, "/v1beta", "gemini-2.0-flash");
    t.api_key = Some("AIza-mock");

    let v = openai(&round_trip(&mock, ProviderKind::Gemini, &chat(false, false), &t).await);
    assert_eq!(v["choices"][0]["message"]["content"], CONTENT);
    assert_eq!(v["model"], "gemini-2.0-flash");
    let v = openai(&round_trip(&mock, ProviderKind::Gemini, &chat(false, true), &t).await);
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let sse = round_trip(&mock, ProviderKind::Gemini, &chat(true, false), &t).await;
    assert_eq!(stream_text(&sse).0, "tok1 tok2 tok3 tok4 ");
    let last = mock.get("/last-request").await;
    assert_eq!(
        last["path"],
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(last["headers"]["x-goog-api-key"], "AIza-mock");

    // Embeddings through the adapter.
    let adapter = ProviderKind::Gemini.adapter().unwrap();
    let emb = ParsedRequest::parse(Bytes::from(r#"{"model":"e","input":"hello"}"#)).unwrap();
    let mut te = target(&mock, "/v1beta", "gemini-embedding-001");
    te.api_key = Some("AIza-mock");
    let up = adapter
        .build_request(Operation::Embeddings, &emb, &te)
        .unwrap();
    assert!(up.path.to_string().ends_with(":embedContent"));
    let (status, _, body) = send(&mock, &up).await;
    assert_eq!(status, 200);
    let (out, _) = adapter.translate_response(Operation::Embeddings, body);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);

    // Key in the query; no key at all → 403 PERMISSION_DENIED.
    let path = "/v1beta/models/g:generateContent";
    let resp = post(&mock, &format!("{path}?key=AIza"), &[], "{}").await;
    assert_eq!(resp.status(), 200);
    let resp = post(&mock, path, &[], "{}").await;
    assert_eq!(resp.status(), 403);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["status"], "PERMISSION_DENIED");
    // Without alt=sse the stream is a JSON array.
    let resp = post(
        &mock,
        "/v1beta/models/g:streamGenerateContent?key=k",
        &[],
        "{}",
    )
    .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    // A status fault in Google's error shape.
    let resp = post(
        &mock,
        &format!("{path}?key=k"),
        &[("x-mock-status", "429")],
        "{}",
    )
    .await;
    assert_eq!(resp.status(), 429);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["status"], "RESOURCE_EXHAUSTED");

    // The token endpoint: a JWT-bearer grant gives ya29.mock, counted in /stats.
    let jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhQGIifQ.c2ln";
    let form =
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}");
    let ct = [("content-type", "application/x-www-form-urlencoded")];
    let resp = post(&mock, "/token", &ct, &form).await;
    assert_eq!(resp.status(), 200);
    let tok: Value = resp.json().await.unwrap();
    assert_eq!(
        tok,
        json!({"access_token": "ya29.mock", "expires_in": 3600, "token_type": "Bearer"})
    );
    let bad = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b";
    let resp = post(&mock, "/token", &ct, bad).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(mock.get("/stats").await["token_requests"], 2);

    // Vertex with that token; without a bearer token → 401 UNAUTHENTICATED.
    let base = "/v1/projects/p/locations/us-central1/publishers/google";
    let mut tv = target(&mock, base, "gemini-2.0-flash-001");
    tv.bearer_token = Some("ya29.mock");
    let v = openai(&round_trip(&mock, ProviderKind::Vertex, &chat(false, false), &tv).await);
    assert_eq!(v["choices"][0]["message"]["content"], CONTENT);
    let sse = round_trip(&mock, ProviderKind::Vertex, &chat(true, true), &tv).await;
    assert_eq!(stream_text(&sse).1, r#"{"location":"Paris"}"#);
    assert_eq!(
        mock.get("/last-request").await["headers"]["authorization"],
        "Bearer ya29.mock"
    );
    let resp = post(
        &mock,
        &format!("{base}/models/g:generateContent"),
        &[],
        "{}",
    )
    .await;
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["status"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn bedrock_converse_with_sigv4() {
    let mock = start(&[
        "--chunks",
        "3",
        "--aws-access-key",
        "AKIDTEST",
        "--aws-secret-key",
        "s3cr3t",
    ]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    let mut t = target(&mock, "", model);
    t.aws = Some(AwsCredentials {
        access_key_id: "AKIDTEST",
        secret_access_key: "s3cr3t",
        session_token: None,
    });
    t.region = Some("us-east-1");
    t.now_unix = Some(now);

    // The gateway's signer, checked by the mock's independent verifier.
    let v = openai(&round_trip(&mock, ProviderKind::Bedrock, &chat(false, false), &t).await);
    assert_eq!(v["choices"][0]["message"]["content"], CONTENT);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let v = openai(&round_trip(&mock, ProviderKind::Bedrock, &chat(false, true), &t).await);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        r#"{"location":"Paris"}"#
    );
    let sse = round_trip(&mock, ProviderKind::Bedrock, &chat(true, false), &t).await;
    assert_eq!(stream_text(&sse).0, "tok1 tok2 tok3 ");
    assert!(sse.contains(r#""finish_reason":"stop""#), "{sse}");
    let sse = round_trip(&mock, ProviderKind::Bedrock, &chat(true, true), &t).await;
    assert_eq!(stream_text(&sse).1, r#"{"location":"Paris"}"#);
    let last = mock.get("/last-request").await;
    assert_eq!(
        last["path"],
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    );
    assert!(last["body"]["messages"].is_array());

    // The stream is binary event-stream framing.
    let adapter = ProviderKind::Bedrock.adapter().unwrap();
    let up = adapter
        .build_request(Operation::ChatCompletions, &chat(true, false), &t)
        .unwrap();
    let (status, content_type, body) = send(&mock, &up).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/vnd.amazon.eventstream");
    let total = u32::from_be_bytes(body[0..4].try_into().unwrap()) as usize;
    assert!(total < body.len());
    assert!(
        body.windows(b"messageStart".len())
            .any(|w| w == b"messageStart")
    );

    // A wrong secret: the signature does not match → 403.
    let mut wrong = t;
    wrong.aws = Some(AwsCredentials {
        access_key_id: "AKIDTEST",
        secret_access_key: "not-the-secret",
        session_token: None,
    });
    let up = adapter
        .build_request(Operation::ChatCompletions, &chat(false, false), &wrong)
        .unwrap();
    let (status, _, body) = send(&mock, &up).await;
    assert_eq!(status, 403);
    let e: Value = serde_json::from_slice(&body).unwrap();
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with("The request signature we calculated does not match"),
        "{msg}"
    );
    assert!(
        msg.contains("v1%253A0/converse"),
        "canonical path double-encoded: {msg}"
    );

    // A correctly signed request whose body was altered afterwards → 403 too.
    let mut up = adapter
        .build_request(Operation::ChatCompletions, &chat(false, false), &t)
        .unwrap();
    up.body.extend_from_slice(b" ");
    assert_eq!(send(&mock, &up).await.0, 403);

    // Unknown access key, and no Authorization at all.
    let mut stranger = t;
    stranger.aws = Some(AwsCredentials {
        access_key_id: "AKIDOTHER",
        secret_access_key: "s3cr3t",
        session_token: None,
    });
    let up = adapter
        .build_request(Operation::ChatCompletions, &chat(false, false), &stranger)
        .unwrap();
    let (status, _, body) = send(&mock, &up).await;
    assert_eq!(status, 403);
    assert!(
        String::from_utf8_lossy(&body)
            .contains("security token included in the request is invalid")
    );
    let resp = post(&mock, "/model/m/converse", &[], "{}").await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );

    // A status fault: Bedrock's error shape and type header.
    let mut up = adapter
        .build_request(Operation::ChatCompletions, &chat(false, false), &t)
        .unwrap();
    up.headers.push(("x-mock-status", "429".into()));
    let client = reqwest::Client::new();
    let mut b = client
        .post(mock.url(&up.path.to_string()))
        .body(up.body.clone());
    for (k, v) in up.all_headers() {
        b = b.header(k, v);
    }
    let resp = b.send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-amzn-errortype"], "ThrottlingException");
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["message"], "mock error");
}

#[tokio::test]
async fn azure_and_workers_ai() {
    let mock = start(&["--chunks", "2"]);

    // Azure: the OpenAI answers under the deployment path, with api-key and api-version.
    let mut t = target(&mock, "", "gpt-4o-deploy");
    t.api_key = Some("azure-key");
    let v = openai(&round_trip(&mock, ProviderKind::Azure, &chat(false, false), &t).await);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], CONTENT);
    let sse = round_trip(&mock, ProviderKind::Azure, &chat(true, false), &t).await;
    assert_eq!(stream_text(&sse).0, "tok1 tok2 ");
    let last = mock.get("/last-request").await;
    assert_eq!(
        last["path"],
        "/openai/deployments/gpt-4o-deploy/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(last["headers"]["api-key"], "azure-key");
    let path = "/openai/deployments/e/embeddings?api-version=2024-06-01";
    let resp = post(&mock, path, &[("api-key", "k")], r#"{"input":["a","b"]}"#).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let resp = post(&mock, path, &[], r#"{"input":"a"}"#).await;
    assert_eq!(resp.status(), 401);
    let resp = post(
        &mock,
        "/openai/deployments/e/embeddings",
        &[("api-key", "k")],
        "{}",
    )
    .await;
    assert_eq!(resp.status(), 404);

    // Workers AI run: the envelope, tool calls, the SSE stream.
    let base = "/client/v4/accounts/acct1/ai";
    let mut t = target(&mock, base, "@cf/meta/llama-3.1-8b-instruct");
    t.api_key = Some("cf-token");
    let v = openai(&round_trip(&mock, ProviderKind::WorkersAiRun, &chat(false, false), &t).await);
    assert_eq!(v["choices"][0]["message"]["content"], CONTENT);
    let v = openai(&round_trip(&mock, ProviderKind::WorkersAiRun, &chat(false, true), &t).await);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let sse = round_trip(&mock, ProviderKind::WorkersAiRun, &chat(true, false), &t).await;
    assert_eq!(stream_text(&sse).0, "tok1 tok2 ");
    let run = format!("{base}/run/@cf/meta/llama-3.1-8b-instruct");
    let auth = [("authorization", "Bearer cf-token")];
    let resp = post(&mock, &run, &auth, r#"{"prompt":"hi"}"#).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"result": {"response": CONTENT,
                          "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}},
               "success": true, "errors": [], "messages": []})
    );
    let text = post(&mock, &run, &auth, r#"{"prompt":"hi","stream":true}"#)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with("data: {\"response\":\"tok1 \"}\n\n"),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let resp = post(&mock, &run, &[], r#"{"prompt":"hi"}"#).await;
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["success"], false);
    // Workers AI's OpenAI-compatible routes.
    let t = target(&mock, base, "@cf/meta/llama-3.1-8b-instruct");
    let t = Target {
        api_key: Some("cf-token"),
        ..t
    };
    let v = openai(&round_trip(&mock, ProviderKind::WorkersAi, &chat(false, false), &t).await);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        mock.get("/last-request").await["path"],
        "/client/v4/accounts/acct1/ai/v1/chat/completions"
    );

    // Every one of these counted as a completed generation request.
    let s = mock.get("/stats").await;
    assert_eq!(s["requests"], s["completed"], "{s}");
    assert_eq!(s["token_requests"], 0, "{s}");
}
