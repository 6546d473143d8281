//! One `mock-llm` process: an OpenAI-compatible upstream whose behaviour a test controls.
//!
//! The mock prints exactly one stdout line, `listening on 127.0.0.1:PORT`; we read it to
//! learn the port. `/control` changes its behaviour for later requests, `/stats` counts
//! requests (and cancelled ones), `/last-request` shows the last POST it received.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::process::ChildProcess;

/// How a mock starts (each field maps to a command-line flag; `None` leaves its default).
#[derive(Clone, Debug, Default)]
pub struct MockSpec {
    pub name: String,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    /// `none`, `reset`, `stall` or `drop-mid-stream`.
    pub fault: Option<String>,
    pub ttft_ms: Option<u64>,
    pub chunks: Option<u32>,
    pub chunk_delay_ms: Option<u64>,
}

// === impl MockSpec ===

impl MockSpec {
    /// A healthy mock called `name` (its `x-mock-name`).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn fault(mut self, fault: &str) -> Self {
        self.fault = Some(fault.to_string());
        self
    }

    pub fn ttft_ms(mut self, ms: u64) -> Self {
        self.ttft_ms = Some(ms);
        self
    }

    pub fn chunks(mut self, n: u32) -> Self {
        self.chunks = Some(n);
        self
    }

    pub fn chunk_delay_ms(mut self, ms: u64) -> Self {
        self.chunk_delay_ms = Some(ms);
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["--listen".to_string(), "127.0.0.1:0".to_string()];
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(v) = value {
                args.push(flag.to_string());
                args.push(v);
            }
        };
        push("--name", Some(self.name.clone()).filter(|n| !n.is_empty()));
        push("--status", self.status.map(|v| v.to_string()));
        push("--retry-after", self.retry_after.map(|v| v.to_string()));
        push("--fault", self.fault.clone());
        push("--ttft-ms", self.ttft_ms.map(|v| v.to_string()));
        push("--chunks", self.chunks.map(|v| v.to_string()));
        push(
            "--chunk-delay-ms",
            self.chunk_delay_ms.map(|v| v.to_string()),
        );
        args
    }
}

/// The mock's `/stats` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockStats {
    pub requests: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub active: u64,
    pub last_body_bytes: u64,
}

/// The mock's `/last-request`: the headers and JSON body of the last POST it received.
#[derive(Clone, Debug)]
pub struct LastRequest {
    pub headers: Value,
    pub body: Value,
}

impl LastRequest {
    /// A header value, looked up case-insensitively (a list value yields its first item).
    pub fn header(&self, name: &str) -> Option<String> {
        let map = self.headers.as_object()?;
        let (_, value) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => items.first().and_then(Value::as_str).map(str::to_string),
            other => Some(other.to_string()),
        }
    }
}

/// A running `mock-llm`; killed when dropped.
pub struct MockLlm {
    process: ChildProcess,
    addr: SocketAddr,
    name: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

// === impl MockLlm ===

impl MockLlm {
    /// Spawns the mock and waits (≤ 10 s) for its `listening on` line.
    pub async fn start(spec: MockSpec) -> Result<Self> {
        let bin = crate::paths::mock_bin()?;
        let dir = tempfile::tempdir().context("creating mock temp dir")?;
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).context("creating mock stderr")?;
        let mut cmd = Command::new(&bin);
        cmd.args(spec.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let label = format!("mock-llm {}", spec.name);
        let mut process = ChildProcess::spawn(&mut cmd, &label, Some(stderr_path))?;
        let addr = match read_listening_line(&mut process).await {
            Ok(addr) => addr,
            Err(e) => bail!(
                "{label} did not start: {e:#}\nstderr: {}",
                process.stderr_tail()
            ),
        };
        Ok(Self {
            process,
            addr,
            name: spec.name,
            http: crate::client::http_client()?,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT/v1`, for a provider's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `POST /control` with any subset of `{status, retry_after, fault, ttft_ms, chunks,
    /// chunk_delay_ms}`.
    pub async fn control(&self, settings: Value) -> Result<()> {
        let resp = self
            .http
            .post(self.url("/control"))
            .json(&settings)
            .send()
            .await
            .with_context(|| format!("POST /control to {}", self.name))?;
        if !resp.status().is_success() {
            bail!("mock {} /control answered {}", self.name, resp.status());
        }
        Ok(())
    }

    /// Makes the mock healthy again (200, no fault, no delays).
    pub async fn heal(&self) -> Result<()> {
        self.control(json!({"status": 200, "fault": "none", "ttft_ms": 0, "chunk_delay_ms": 0}))
            .await
    }

    /// `GET /stats`.
    pub async fn stats(&self) -> Result<MockStats> {
        let v: Value = self.get_json("/stats").await?;
        let field = |k: &str| -> Result<u64> {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| anyhow!("mock /stats has no integer `{k}`: {v}"))
        };
        Ok(MockStats {
            requests: field("requests")?,
            completed: field("completed")?,
            cancelled: field("cancelled")?,
            active: field("active")?,
            last_body_bytes: field("last_body_bytes")?,
        })
    }

    /// `POST /stats/reset`.
    pub async fn reset_stats(&self) -> Result<()> {
        let resp = self
            .http
            .post(self.url("/stats/reset"))
            .send()
            .await
            .context("POST /stats/reset")?;
        if !resp.status().is_success() {
            bail!("mock {} /stats/reset answered {}", self.name, resp.status());
        }
        Ok(())
    }

    /// `GET /last-request`.
    pub async fn last_request(&self) -> Result<LastRequest> {
        let v: Value = self.get_json("/last-request").await?;
        Ok(LastRequest {
            headers: v.get("headers").cloned().unwrap_or(Value::Null),
            body: v.get("body").cloned().unwrap_or(Value::Null),
        })
    }

    /// Polls `/stats` until `pred` holds, for at most `timeout`.
    pub async fn wait_stats(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&MockStats) -> bool,
    ) -> Result<MockStats> {
        let mut last = MockStats::default();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            last = self.stats().await.unwrap_or(last);
            if pred(&last) {
                return Ok(last);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "mock {}: waited {timeout:?} for {what}; last stats {last:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get_json(&self, path: &str) -> Result<Value> {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .await
            .with_context(|| format!("GET {path} on mock {}", self.name))?;
        let status = resp.status();
        let text = resp.text().await.context("reading mock body")?;
        if !status.is_success() {
            bail!("mock {} {path} answered {status}: {text}", self.name);
        }
        serde_json::from_str(&text).with_context(|| format!("mock {path} is not JSON: {text}"))
    }
}

/// Reads the first stdout line on a thread (keeps draining after it), ≤ 10 s.
async fn read_listening_line(process: &mut ChildProcess) -> Result<SocketAddr> {
    let stdout = process
        .take_stdout()
        .ok_or_else(|| anyhow!("mock stdout was not piped"))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep the pipe open and drained for the mock's lifetime.
        for _ in lines {}
    });
    let line = match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(line)) => line,
        Ok(Err(_)) => bail!("exited (or closed stdout) before printing `listening on`"),
        Err(_) => bail!("printed nothing within 10 s"),
    };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow!("first stdout line is {line:?}, not `listening on ADDR`"))?;
    addr.parse()
        .with_context(|| format!("bad address in {line:?}"))
}
