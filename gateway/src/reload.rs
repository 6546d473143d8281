//! Hot reload and graceful drain, as one Pingora background service.
//!
//! - The config file is watched (its directory, so editors that replace the file by rename
//!   are seen too, and Kubernetes ConfigMap updates), and so are the `.cel` files of its
//!   policy; SIGHUP forces a reload. The watch is inotify's, asked only for files closed
//!   after writing, renamed in and created: a process appending to a file in the same
//!   directory (an access log beside the config) does not wake it per write. A reload parses, validates and builds a new
//!   snapshot, then swaps it in; an invalid file keeps the running config, is logged with
//!   every problem, and counts as `datamind_config_reloads_total{result="failure"}`.
//! - SIGTERM marks the gateway draining (`/readyz` turns 503, new LLM requests get 503,
//!   keep-alive ends) and exits as soon as in-flight requests finish, or when
//!   `server.shutdown_grace_seconds` runs out — whichever is first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use inotify::{Inotify, WatchMask};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};

use crate::config;
use crate::snapshot::Snapshot;
use crate::state::Gateway;

/// Watches the config and the signals.
#[derive(Debug)]
pub struct Reloader {
    gw: Arc<Gateway>,
    path: PathBuf,
}

impl Reloader {
    /// Reloads `path` into `gw`.
    pub fn new(gw: Arc<Gateway>, path: PathBuf) -> Self {
        Self { gw, path }
    }

    /// Loads, validates and swaps in the file. Returns whether the new config is live.
    pub fn reload(&self) -> bool {
        match config::load_file(&self.path) {
            Ok(new) => {
                let old = self.gw.snapshot.load();
                if new == old.config {
                    self.gw.metrics.record_reload(true);
                    tracing::info!(path = %self.path.display(), "configuration unchanged");
                    return true;
                }
                if new.server != old.config.server || new.access_log != old.config.access_log {
                    tracing::warn!(
                        "`server` and `access_log` changes take effect only after a restart"
                    );
                }
                if new.redis != old.config.redis {
                    tracing::warn!("`redis` changes take effect only after a restart");
                }
                if new.cache.store != old.config.cache.store
                    || new.cache.max_total_bytes != old.config.cache.max_total_bytes
                {
                    tracing::warn!(
                        "`cache.store` and `cache.max_total_bytes` changes take effect only after a restart"
                    );
                }
                if new.telemetry.traces != old.config.telemetry.traces {
                    tracing::warn!("`telemetry.traces` changes take effect only after a restart");
                }
                if new.telemetry.log_level != old.config.telemetry.log_level {
                    crate::telemetry::logging::set_level(new.telemetry.log_level.as_deref());
                }
                let snapshot = Snapshot::build(new, &self.gw.health, &self.gw.metrics);
                let tenants = snapshot.keys.tenants.clone();
                self.gw.snapshot.store(Arc::new(snapshot));
                self.gw.runtime_keys.set_tenants(tenants);
                self.gw.metrics.record_reload(true);
                tracing::info!(path = %self.path.display(), "configuration reloaded");
                true
            }
            Err(e) => {
                self.gw.metrics.record_reload(false);
                tracing::error!(path = %self.path.display(), error = %e, "configuration reload rejected; keeping the running configuration");
                false
            }
        }
    }

    fn start_drain(&self) {
        if self.gw.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let gw = self.gw.clone();
        let grace = Duration::from_secs(gw.snapshot.load().config.server.shutdown_grace_seconds);
        tracing::info!(
            grace_seconds = grace.as_secs(),
            in_flight = gw.requests_in_flight(),
            "SIGTERM: draining"
        );
        let spawned = std::thread::Builder::new()
            .name("drain".into())
            .spawn(move || {
                let until = Instant::now() + grace;
                // Give the listeners a moment to stop accepting before judging "idle".
                std::thread::sleep(Duration::from_millis(100));
                while gw.requests_in_flight() > 0 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let left = gw.requests_in_flight();
                if left > 0 {
                    tracing::warn!(
                        in_flight = left,
                        "grace period over; exiting with requests in flight"
                    );
                } else {
                    tracing::info!("drained; exiting");
                }
                // Let the access-log writer flush its last lines.
                std::thread::sleep(Duration::from_millis(100));
                std::process::exit(0);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the drain thread");
        }
    }
}

/// Events in `dirs` that can change a file: closed after writing, renamed in, created.
fn watch(dirs: &[PathBuf]) -> std::io::Result<inotify::EventStream<[u8; 4096]>> {
    let inotify = Inotify::init()?;
    for d in dirs {
        inotify.watches().add(
            d,
            WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO | WatchMask::CREATE,
        )?;
    }
    inotify.into_event_stream([0u8; 4096])
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
        let file_name = self.path.file_name().map(|n| n.to_owned());
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        // The policy files' directories too (those referenced at start; SIGHUP reloads any).
        let mut dirs = vec![dir.clone()];
        for f in self.gw.snapshot.load().config.policy.files() {
            if let Some(d) = dir.join(f).parent().map(Path::to_path_buf)
                && !dirs.contains(&d)
            {
                dirs.push(d);
            }
        }
        // Events that may change the config: the file itself, a policy file, or a
        // Kubernetes ConfigMap update. The kubelet never touches the mounted file names
        // (each is a symlink through `..data`); it writes a new directory and renames a
        // `..data` symlink onto the old one, so that rename is the only event an update
        // makes.
        let relevant = move |name: &std::ffi::OsStr| {
            Some(name) == file_name.as_deref()
                || name == "..data"
                || Path::new(name).extension().is_some_and(|e| e == "cel")
        };
        match watch(&dirs) {
            Ok(mut events) => {
                tokio::spawn(async move {
                    while let Some(ev) = events.next().await {
                        match ev {
                            Ok(ev) if ev.name.as_deref().is_some_and(&relevant) => {
                                let _ = tx.try_send(());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "config watch failed; reload with SIGHUP");
                                break;
                            }
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config directory; reload with SIGHUP");
            }
        }
        let (Ok(mut hup), Ok(mut term)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        self.gw.reloader_started.store(true, Ordering::Release);
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    // Debounce: editors write in several steps.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    while rx.try_recv().is_ok() {}
                    self.reload();
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading configuration");
                    self.reload();
                }
                _ = term.recv() => self.start_drain(),
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.start_drain();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_watch_sees_whole_writes_and_renames_but_not_appends() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut events = watch(&[dir.path().to_path_buf()]).unwrap();
        // An access log beside the config, held open and appended to: no event at all.
        let mut log = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let first = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
        assert_eq!(
            first.unwrap().unwrap().unwrap().name.as_deref(),
            Some(std::ffi::OsStr::new("access.log")),
            "creating a file is seen"
        );
        for _ in 0..100 {
            log.write_all(b"{\"status\":200}\n").unwrap();
            log.flush().unwrap();
        }
        // The config written whole, then replaced by rename: those are the next events.
        std::fs::write(dir.path().join("gateway.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.path().join("new.tmp"), "a: 2\n").unwrap();
        std::fs::rename(dir.path().join("new.tmp"), dir.path().join("gateway.yaml")).unwrap();
        let mut names = Vec::new();
        while names.len() < 5 {
            let ev = tokio::time::timeout(Duration::from_secs(2), events.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            names.push(ev.name.unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            names,
            [
                "gateway.yaml",
                "gateway.yaml",
                "new.tmp",
                "new.tmp",
                "gateway.yaml"
            ],
            "create and close of each file, then the rename; no event for the appends"
        );
    }
}
