//! The background task that keeps a gateway's runtime-key index in step with a shared
//! store (Redis): it polls the store's version every [`INTERVAL`] and reloads the records
//! when another gateway wrote. With the in-memory store it does nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use super::RuntimeKeys;

/// How often the shared store is polled: the bound on how long a key created, rotated or
/// revoked on one gateway takes to reach the others (plus one Redis round trip).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Polls the store of `keys`.
#[derive(Debug)]
pub struct KeySync {
    keys: Arc<RuntimeKeys>,
}

impl KeySync {
    /// A sync task for `keys`.
    pub fn new(keys: Arc<RuntimeKeys>) -> Self {
        Self { keys }
    }
}

#[async_trait]
impl BackgroundService for KeySync {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if !self.keys.shared() {
            return;
        }
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match self.keys.sync(false).await {
                        Ok(_) if failing => {
                            failing = false;
                            tracing::info!("runtime keys: in step with the shared store again");
                        }
                        Ok(_) => {}
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "runtime keys: cannot reach the shared store; using the last loaded keys");
                        }
                        Err(_) => {}
                    }
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}
