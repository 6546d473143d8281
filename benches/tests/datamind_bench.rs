//! End-to-end check of `datamind-bench` against `mock-llm`: the counts and timings it reports
//! match what the mock was told to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct Mock(Child, String);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mock(args: &[&str]) -> Mock {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-llm"))
        .args(["--threads", "1"])
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
    Mock(child, format!("http://{addr}/v1/chat/completions"))
}

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_datamind-bench"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn closed_loop_stream_and_errors() {
    let m = mock(&["--chunks", "5", "--chunk-delay-ms", "2"]);
    let r = bench(&[
        "--url",
        &m.1,
        "--requests",
        "40",
        "-c",
        "4",
        "--stream",
        "--pid",
        &m.0.id().to_string(),
    ]);
    assert_eq!(r["ok"], 40, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["first_chunk_ms"]["count"], 40, "{r}");
    // 5 content chunks + [DONE] arrive as 6 frames: 5 gaps each, the 2 ms delays among them.
    assert!(
        r["chunk_gap_ms"]["count"].as_u64().unwrap() >= 40 * 4,
        "{r}"
    );
    assert!(r["latency_ms"]["p50"].as_f64().unwrap() >= 8.0, "{r}");
    assert!(r["process"]["rss_peak_mib"].as_f64().unwrap() > 0.0, "{r}");

    let r = bench(&[
        "--url",
        &m.1,
        "--requests",
        "10",
        "-c",
        "2",
        "-H",
        "x-mock-status: 503",
    ]);
    assert_eq!(r["errors_by_kind"]["status 503"], 10, "{r}");
    let r = bench(&[
        "--url",
        &m.1,
        "--requests",
        "6",
        "-c",
        "2",
        "-H",
        "x-mock-fault: reset",
    ]);
    assert_eq!(r["errors_by_kind"]["reset"], 6, "{r}");
}

#[test]
fn open_loop_h2_is_bounded() {
    let m = mock(&[]);
    let r = bench(&[
        "--url",
        &m.1,
        "--h2",
        "--rate",
        "200",
        "--duration",
        "0.5",
        "-c",
        "8",
    ]);
    assert_eq!(r["protocol"], "h2c");
    assert_eq!(r["mode"], "open");
    let ok = r["ok"].as_u64().unwrap();
    assert!((90..=101).contains(&ok), "{r}");
}

#[test]
fn refuses_other_hosts() {
    let out = Command::new(env!("CARGO_BIN_EXE_datamind-bench"))
        .args(["--url", "http://192.168.1.1:80/", "--requests", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("non-loopback"));
}
