//! One `datamind-gateway` process on free ports, with its config and stdout in a temp dir.
//!
//! Ready means admin `GET /readyz` answers 200 (polled for up to 20 s). If the process
//! dies before that (say, a port taken between our probe and its bind), we retry on new
//! ports, twice.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Response;
use serde_json::Value;

use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::process::{ChildProcess, Signal, tail};
use crate::{UPSTREAM_KEY, paths};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running gateway; SIGKILLed when dropped (unless it already exited).
pub struct Gateway {
    process: ChildProcess,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    stdout_path: PathBuf,
    api: SocketAddr,
    admin: SocketAddr,
    http: reqwest::Client,
}

// === impl Gateway ===

impl Gateway {
    /// Starts a gateway on `config` (listen addresses filled in) and waits until ready.
    pub async fn start(config: &GatewayConfig) -> Result<Self> {
        Self::start_with(|api, admin| config.render(api, admin)).await
    }

    /// Starts a gateway on the YAML `render(api, admin)` returns.
    pub async fn start_with(render: impl Fn(SocketAddr, SocketAddr) -> String) -> Result<Self> {
        Self::start_with_env(render, &[]).await
    }

    /// Like [`start_with`](Self::start_with), with extra environment variables (e.g. the
    /// standard `OTEL_*` ones).
    pub async fn start_with_env(
        render: impl Fn(SocketAddr, SocketAddr) -> String,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let mut last = anyhow!("never tried");
        for _ in 0..3 {
            let api = free_addr()?;
            let admin = free_addr()?;
            match Self::try_start(&render(api, admin), api, admin, env).await {
                Ok(gw) => return Ok(gw),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn try_start(
        yaml: &str,
        api: SocketAddr,
        admin: SocketAddr,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let bin = paths::gateway_bin()?;
        let dir = tempfile::tempdir().context("creating gateway temp dir")?;
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, yaml).context("writing gateway config")?;
        let stdout_path = dir.path().join("stdout.log");
        let stderr_path = dir.path().join("stderr.log");
        let stdout = std::fs::File::create(&stdout_path).context("creating stdout file")?;
        let stderr = std::fs::File::create(&stderr_path).context("creating stderr file")?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(&config_path)
            .env("E2E_UPSTREAM_KEY", UPSTREAM_KEY)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let process = ChildProcess::spawn(&mut cmd, "datamind-gateway", Some(stderr_path))?;
        let mut gw = Self {
            process,
            dir,
            config_path,
            stdout_path,
            api,
            admin,
            http: crate::client::http_client()?,
        };
        gw.wait_ready().await?;
        Ok(gw)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let probe = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()?;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let url = self.admin_url("/readyz");
        loop {
            if let Some(status) = self.process.try_exit()? {
                bail!(
                    "gateway exited with {status} before it was ready\nstderr: {}\nstdout: {}\nconfig:\n{}",
                    self.process.stderr_tail(),
                    tail(&self.stdout_text(), 2000),
                    std::fs::read_to_string(&self.config_path).unwrap_or_default()
                );
            }
            if let Ok(resp) = probe.get(&url).send().await
                && resp.status().is_success()
                && self.api_accepts().await
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "gateway not ready ({url} never answered 200) within {READY_TIMEOUT:?}\nstderr: {}",
                    self.process.stderr_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the API listener accepts a TCP connection. Pingora binds each service on
    /// its own thread, so the admin listener can answer `/readyz` a moment before the API
    /// listener is bound; a test must not start in that gap.
    async fn api_accepts(&self) -> bool {
        matches!(
            tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(self.api)
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// `http://API_ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// `http://ADMIN_ADDR{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The shared HTTP client (15 s timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `POST {path}` with a JSON body and `Authorization: Bearer key`.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Result<Response> {
        self.http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))
    }

    /// `POST /v1/chat/completions`.
    pub async fn chat(&self, key: &str, body: &Value) -> Result<Response> {
        self.post("/v1/chat/completions", key, body).await
    }

    /// `GET /metrics` on the admin listener, parsed.
    pub async fn metrics(&self) -> Result<Metrics> {
        let resp = self
            .http
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .context("GET /metrics")?;
        let status = resp.status();
        let text = resp.text().await.context("reading /metrics")?;
        if !status.is_success() {
            bail!("/metrics answered {status}: {text}");
        }
        Ok(Metrics::parse(&text))
    }

    /// Scrapes `/metrics` until `pred` holds (≤ 3 s) and returns that scrape.
    ///
    /// Metrics are recorded when a request is logged, which may be a moment after the
    /// client read the last byte, so a test waits for the state it expects.
    pub async fn metrics_when(
        &self,
        what: &str,
        pred: impl Fn(&Metrics) -> bool,
    ) -> Result<Metrics> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let m = self.metrics().await?;
            if pred(&m) {
                return Ok(m);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("metrics never showed {what} within 3 s:\n{}", m.text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the gateway wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Everything the gateway wrote to stderr so far (its process log).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Fails when a credential the suite uses appears in anything the gateway printed.
    pub fn assert_no_secrets(&self) {
        let out = format!("{}\n{}", self.stdout_text(), self.stderr_text());
        let found = crate::secrets::find_in(&out);
        assert!(
            found.is_none(),
            "a secret appears in the gateway's logs:\n{}",
            found.map_or(String::new(), |s| crate::secrets::lines_with(&out, s))
        );
    }

    /// The access log: every stdout line that is a JSON object with a `request_id`.
    pub fn access_log(&self) -> Vec<Value> {
        self.stdout_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .filter(|v| v.get("request_id").is_some())
            .collect()
    }

    /// Polls the access log (≤ 5 s) for the line whose `request_id` is `id`.
    pub async fn access_log_line(&self, id: &str) -> Result<Value> {
        crate::eventually(
            &format!("an access log line with request_id {id:?}"),
            Duration::from_secs(5),
            || async move {
                Ok(self
                    .access_log()
                    .into_iter()
                    .find(|l| l.get("request_id").and_then(Value::as_str) == Some(id)))
            },
        )
        .await
        .map_err(|e| anyhow!("{e:#}\nstdout: {}", tail(&self.stdout_text(), 3000)))
    }

    /// The config file the gateway watches.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The gateway's temp dir (config, stdout, stderr).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Overwrites the watched config file in place with `config` (same listen addresses).
    pub fn rewrite_config(&self, config: &GatewayConfig) -> Result<()> {
        self.rewrite_config_text(&config.render(self.api, self.admin))
    }

    /// Overwrites the watched config file in place with raw text.
    pub fn rewrite_config_text(&self, text: &str) -> Result<()> {
        std::fs::write(&self.config_path, text).context("rewriting gateway config")
    }

    pub fn signal(&self, signal: Signal) -> Result<()> {
        self.process.signal(signal)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `Some(status)` once the process has exited.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        self.process.try_exit()
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.process.wait_exit(timeout).await
    }

    /// The tail of stderr (for failure messages).
    pub fn stderr_tail(&self) -> String {
        self.process.stderr_tail()
    }
}

/// A 127.0.0.1 address that was free a moment ago (bind to port 0, read it, release it).
pub fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    listener.local_addr().context("reading local addr")
}

/// Runs the gateway binary with `args` (e.g. `check --config X`), bounded by 20 s.
pub async fn run_gateway_command(args: &[&str]) -> Result<std::process::Output> {
    let bin = paths::gateway_bin()?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .env("E2E_UPSTREAM_KEY", UPSTREAM_KEY);
    tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .map_err(|_| anyhow!("datamind-gateway {args:?} did not finish within 20 s"))?
        .with_context(|| format!("running datamind-gateway {args:?}"))
}

/// Every gateway of every test is checked on the way out: no credential in its logs (the
/// issue's "no secret in any log line during the whole suite"). Skipped while a test is
/// already failing, so the first failure stays the one reported.
impl Drop for Gateway {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_secrets();
        }
    }
}
