//! A real `redis-server` (Debian package `redis-server`, installed by `scripts/setup.sh`)
//! on a free loopback port, with no persistence, stopped (SIGKILL to its own PID) when the
//! guard drops.
//!
//! [`RedisServer::kill`] and [`RedisServer::restart`] simulate an outage and recovery on
//! the same port, so gateways configured with [`RedisServer::url`] reconnect by themselves.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::gateway::free_addr;
use crate::process::ChildProcess;

/// One `redis-server` process.
pub struct RedisServer {
    process: Option<ChildProcess>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

// === impl RedisServer ===

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub async fn start() -> Result<Self> {
        let mut last = anyhow::anyhow!("never tried");
        for _ in 0..3 {
            let addr = free_addr()?;
            let mut s = Self {
                process: None,
                addr,
                dir: tempfile::tempdir().context("creating redis temp dir")?,
            };
            match s.spawn().await {
                Ok(()) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn spawn(&mut self) -> Result<()> {
        let log = self.dir.path().join("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.addr.port().to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .arg("--dir")
        .arg(self.dir.path())
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut process = ChildProcess::spawn(&mut cmd, "redis-server", Some(log))
            .context("is redis-server installed? (scripts/setup.sh installs it)")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = process.try_exit()? {
                bail!(
                    "redis-server exited with {status}: {}",
                    process.stderr_tail()
                );
            }
            if self.ping().await.is_ok() {
                self.process = Some(process);
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("redis-server on {} never answered PING", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ChildProcess::pid)
    }

    /// Kills the server (SIGKILL to its PID) and waits until it is gone.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut p) = self.process.take() {
            drop_kill(&mut p).await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await?;
        self.spawn().await
    }

    /// Sends one command (inline protocol) and returns the first line of the reply.
    pub async fn command(&self, args: &[&str]) -> Result<String> {
        let mut stream = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(self.addr),
        )
        .await
        .context("connect timed out")??;
        let mut line = args.join(" ");
        line.push_str("\r\n");
        stream.write_all(line.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut reply))
            .await
            .context("reply timed out")??;
        let reply = reply.trim_end().to_string();
        if let Some(rest) = reply.strip_prefix('$') {
            if rest == "-1" {
                return Ok(String::new());
            }
            let mut value = String::new();
            reader.read_line(&mut value).await?;
            return Ok(value.trim_end().to_string());
        }
        Ok(reply)
    }

    /// `PING` answered `+PONG`.
    pub async fn ping(&self) -> Result<()> {
        let r = self.command(&["PING"]).await?;
        if r != "+PONG" {
            bail!("PING answered {r:?}");
        }
        Ok(())
    }

    /// The keys matching `pattern` (`KEYS`, for assertions on small test data sets).
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream
            .write_all(format!("KEYS {pattern}\r\n").as_bytes())
            .await?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).await?;
        let n: usize = header
            .trim_end()
            .strip_prefix('*')
            .with_context(|| format!("KEYS answered {header:?}"))?
            .parse()?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let (mut len, mut key) = (String::new(), String::new());
            reader.read_line(&mut len).await?;
            reader.read_line(&mut key).await?;
            keys.push(key.trim_end().to_string());
        }
        Ok(keys)
    }
}

async fn drop_kill(p: &mut ChildProcess) -> Result<()> {
    // SIGKILL to this PID only, then reap it.
    let pid = p.pid();
    let status = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .context("running `kill`")?;
    if !status.success() {
        bail!("kill -KILL {pid} failed: {status}");
    }
    p.wait_exit(Duration::from_secs(5)).await?;
    Ok(())
}
