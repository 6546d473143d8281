//! Common setups: mocks wired behind a gateway with the names most tests use.
//!
//! - [`OneUpstream`]: one mock `up1` serving `gpt-4o-mini` (as `mock-chat-a`), `gpt-4o`
//!   (as `mock-chat-b`) and `text-embedding-3-small` (as `mock-embed-a`).
//! - [`Failover`]: `gpt-4o-mini` served by mock `up1` (as `primary-model`) with fallback
//!   group `backup-group` served by mock `up2` (as `backup-model`).

use anyhow::Result;

use crate::config::{GatewayConfig, ModelGroup};
use crate::gateway::Gateway;
use crate::mock::{MockLlm, MockSpec};

pub const CHAT_MODEL: &str = "gpt-4o-mini";
pub const OTHER_CHAT_MODEL: &str = "gpt-4o";
pub const EMBED_MODEL: &str = "text-embedding-3-small";
pub const UPSTREAM_CHAT: &str = "mock-chat-a";
pub const UPSTREAM_OTHER_CHAT: &str = "mock-chat-b";
pub const UPSTREAM_EMBED: &str = "mock-embed-a";

pub const BACKUP_GROUP: &str = "backup-group";
pub const PRIMARY_MODEL: &str = "primary-model";
pub const BACKUP_MODEL: &str = "backup-model";

/// One mock upstream behind a gateway.
pub struct OneUpstream {
    pub mock: MockLlm,
    pub gateway: Gateway,
}

// === impl OneUpstream ===

impl OneUpstream {
    pub async fn start(spec: MockSpec) -> Result<Self> {
        Self::start_with(spec, |c| c).await
    }

    /// Like [`start`](Self::start), with `tweak` applied to the config first.
    pub async fn start_with(
        spec: MockSpec,
        tweak: impl FnOnce(GatewayConfig) -> GatewayConfig,
    ) -> Result<Self> {
        let mock = MockLlm::start(spec).await?;
        let config = tweak(one_upstream_config(&mock));
        let gateway = Gateway::start(&config).await?;
        Ok(Self { mock, gateway })
    }
}

/// The [`OneUpstream`] config for `mock` (provider named after the mock).
pub fn one_upstream_config(mock: &MockLlm) -> GatewayConfig {
    let p = mock.name();
    GatewayConfig::new()
        .openai_provider(p, &mock.base_url())
        .model(ModelGroup::new(CHAT_MODEL).deployment(p, UPSTREAM_CHAT))
        .model(ModelGroup::new(OTHER_CHAT_MODEL).deployment(p, UPSTREAM_OTHER_CHAT))
        .model(ModelGroup::new(EMBED_MODEL).deployment(p, UPSTREAM_EMBED))
}

/// A primary mock with a fallback group on a backup mock.
pub struct Failover {
    pub primary: MockLlm,
    pub backup: MockLlm,
    pub gateway: Gateway,
}

// === impl Failover ===

impl Failover {
    /// `primary` is named `up1`, `backup` `up2` (whatever names the specs carry).
    pub async fn start(
        primary: MockSpec,
        backup: MockSpec,
        tweak: impl FnOnce(GatewayConfig) -> GatewayConfig,
    ) -> Result<Self> {
        let primary = MockLlm::start(MockSpec {
            name: "up1".into(),
            ..primary
        })
        .await?;
        let backup = MockLlm::start(MockSpec {
            name: "up2".into(),
            ..backup
        })
        .await?;
        let config = tweak(failover_config(&primary.base_url(), &backup.base_url()));
        let gateway = Gateway::start(&config).await?;
        Ok(Self {
            primary,
            backup,
            gateway,
        })
    }
}

/// `gpt-4o-mini` → `up1/primary-model` at `primary_url`, falling back to
/// `backup-group` → `up2/backup-model` at `backup_url`.
pub fn failover_config(primary_url: &str, backup_url: &str) -> GatewayConfig {
    GatewayConfig::new()
        .openai_provider("up1", primary_url)
        .openai_provider("up2", backup_url)
        .model(
            ModelGroup::new(CHAT_MODEL)
                .deployment("up1", PRIMARY_MODEL)
                .fallback(BACKUP_GROUP),
        )
        .model(ModelGroup::new(BACKUP_GROUP).deployment("up2", BACKUP_MODEL))
}
