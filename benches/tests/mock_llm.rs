//! End-to-end check of the `mock-llm` binary: start it, talk HTTP, assert on what a client sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The running binary; killed on drop.
struct Mock {
    child: Child,
    base: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    Mock {
        child,
        base: format!("http://{addr}"),
    }
}

async fn stats(client: &reqwest::Client, mock: &Mock) -> Value {
    let resp = client
        .get(format!("{}/stats", mock.base))
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

#[tokio::test]
async fn stream_fault_and_stats() {
    let mock = start(&["--name", "up1", "--chunks", "4"]);
    let client = reqwest::Client::new();
    let chat = format!("{}/v1/chat/completions", mock.base);

    // A stream with the usage event.
    let body = r#"{"model":"gpt-x","stream":true,"stream_options":{"include_usage":true}}"#;
    let resp = client.post(&chat).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-name"], "up1");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.len(), 4 + 1 + 1, "{text}");
    assert_eq!(events[5], "data: [DONE]");
    let usage: Value = serde_json::from_str(events[4].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(usage["model"], "gpt-x");

    // An error status with Retry-After, per request.
    let resp = client
        .post(&chat)
        .header("x-mock-status", "503")
        .header("x-mock-retry-after", "2")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "2");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "server_error");

    // A reset never answers.
    let reset = client
        .post(&chat)
        .header("x-mock-fault", "reset")
        .body("{}")
        .send()
        .await;
    assert!(reset.is_err(), "{reset:?}");

    // A stalled request whose client gives up is counted as cancelled.
    let stalled = client
        .post(&chat)
        .header("x-mock-fault", "stall")
        .timeout(Duration::from_millis(300))
        .body("{}")
        .send()
        .await;
    assert!(stalled.is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        let s = stats(&client, &mock).await;
        if s["cancelled"] == 1 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(s["requests"], 4, "{s}");
    assert_eq!(s["completed"], 2, "{s}");
    assert_eq!(s["faulted"], 1, "{s}");
    assert_eq!(s["cancelled"], 1, "{s}");
    assert_eq!(s["active"], 0, "{s}");
    assert_eq!(s["last_body_bytes"], 2, "{s}");

    // /control changes the defaults for later requests.
    let resp = client
        .post(format!("{}/control", mock.base))
        .body(r#"{"status":429}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client.post(&chat).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());

    let last: Value = client
        .get(format!("{}/last-request", mock.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["body"], serde_json::json!({}));
    assert_eq!(last["headers"]["content-length"], "2");
}

#[tokio::test]
async fn client_leaving_mid_stream_is_cancelled() {
    let mock = start(&["--chunk-delay-ms", "100"]);
    let client = reqwest::Client::new();
    let mut resp = client
        .post(format!("{}/v1/chat/completions", mock.base))
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: {"));
    assert_eq!(stats(&client, &mock).await["active"], 1);
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        let s = stats(&client, &mock).await;
        if s["cancelled"] == 1 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (&s["cancelled"], &s["active"], &s["completed"]),
        (&1.into(), &0.into(), &0.into()),
        "{s}"
    );
}

#[tokio::test]
async fn drop_mid_stream_sends_half_then_breaks() {
    let mock = start(&["--fault", "drop-mid-stream", "--chunks", "6"]);
    let client = reqwest::Client::new();
    let mut resp = client
        .post(format!("{}/v1/chat/completions", mock.base))
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let broke = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broke, "the stream ended cleanly: {text}");
    assert_eq!(text.matches("data: ").count(), 3, "{text}");
    assert!(!text.contains("[DONE]"));
    assert_eq!(stats(&client, &mock).await["faulted"], 1);
}
