//! A child process that is killed (SIGKILL, by its own PID) when its guard drops.
//!
//! Signals other than SIGKILL are sent with the system `kill` command: the workspace
//! forbids `unsafe`, so `libc::kill` is not an option.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A POSIX signal the tests send to the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Graceful shutdown: drain in-flight requests, then exit 0.
    Term,
    /// Reload the config file.
    Hup,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Hup => "-HUP",
        }
    }
}

/// A running child process plus the files its output goes to.
pub struct ChildProcess {
    child: Child,
    name: String,
    stderr_path: Option<PathBuf>,
}

// === impl ChildProcess ===

impl ChildProcess {
    /// Spawns `cmd`; `name` appears in error messages, `stderr_path` (if the caller sent
    /// stderr to a file) is quoted when the process dies unexpectedly.
    pub fn spawn(cmd: &mut Command, name: &str, stderr_path: Option<PathBuf>) -> Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {name} ({cmd:?})"))?;
        Ok(Self {
            child,
            name: name.to_string(),
            stderr_path,
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Takes the piped stdout (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends `signal` to this process (only this PID).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let status = Command::new("kill")
            .arg(signal.flag())
            .arg(self.pid().to_string())
            .status()
            .context("running `kill`")?;
        if !status.success() {
            bail!("kill {} {} failed: {status}", signal.flag(), self.pid());
        }
        Ok(())
    }

    /// `Some(status)` once the process has exited.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("waiting for {}", self.name))
    }

    /// Waits (polling, without blocking the runtime) until the process exits.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit()? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) still running after {timeout:?}",
                    self.name,
                    self.pid()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The tail of the captured stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let Some(path) = &self.stderr_path else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        tail(&text, 4000)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // `Child::kill` is SIGKILL to this PID only.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `max` bytes of `text` (on a char boundary).
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}
