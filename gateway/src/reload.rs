//! Hot reload and graceful drain, as one Pingora background service.
//!
//! - The config file is watched (its directory, so editors that replace the file by rename
//!   are seen too), and so are the `.cel` files of its policy; SIGHUP forces a reload. A reload parses, validates and builds a new
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
use notify::{RecursiveMode, Watcher};
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
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev
                && ev.paths.iter().any(|p| {
                    p.file_name() == file_name.as_deref()
                        || p.file_name().is_some_and(|n| n == "..data")
                        || p.extension().is_some_and(|e| e == "cel")
                })
            {
                let _ = tx.try_send(());
            }
        });
        let _watcher = match watcher {
            Ok(mut w) => match dirs
                .iter()
                .try_for_each(|d| w.watch(d, RecursiveMode::NonRecursive))
            {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the config directory; reload with SIGHUP");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher; reload with SIGHUP");
                None
            }
        };
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
