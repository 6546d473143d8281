//! Where Redis is (standalone, Sentinel, Cluster) and how to open a verified connection.

use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::Connection;
use crate::GatewayError;
use crate::config::RedisConfig;

/// How to reach the configured Redis. Holds credentials: never logged (see [`Self::kind`]).
pub enum Target {
    /// One server.
    Standalone(ConnectionInfo),
    /// The master a Sentinel names; looked up again at every reconnect (failover).
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    /// Redis Cluster, discovered from seed nodes.
    Cluster(redis::cluster::ClusterClient),
}

impl Target {
    /// Builds the target from validated config.
    pub fn from_config(cfg: &RedisConfig) -> Result<Self, GatewayError> {
        let bad = |what: &str| GatewayError::Config(vec![format!("redis: {what}")]);
        if let Some(url) = &cfg.url {
            let info = url
                .as_str()
                .into_connection_info()
                .map_err(|_| bad("url: not a valid Redis URL"))?;
            let settings = credentials(info.redis_settings().clone(), cfg);
            return Ok(Self::Standalone(info.set_redis_settings(settings)));
        }
        if let Some(s) = &cfg.sentinel {
            let mut nodes = Vec::with_capacity(s.nodes.len());
            for (i, n) in s.nodes.iter().enumerate() {
                let info = n
                    .as_str()
                    .into_connection_info()
                    .map_err(|_| bad(&format!("sentinel.nodes[{i}]: not a valid Redis URL")))?;
                let info = match &s.sentinel_password {
                    Some(p) => {
                        let settings = info.redis_settings().clone().set_password(p);
                        info.set_redis_settings(settings)
                    }
                    None => info,
                };
                nodes.push(info);
            }
            let node_info = SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(credentials(RedisConnectionInfo::default(), cfg));
            let client = SentinelClient::build(
                nodes,
                s.master_name.clone(),
                Some(node_info),
                SentinelServerType::Master,
            )
            .map_err(|_| bad("sentinel: cannot build a Sentinel client"))?;
            return Ok(Self::Sentinel(tokio::sync::Mutex::new(client)));
        }
        if let Some(c) = &cfg.cluster {
            let mut b = redis::cluster::ClusterClient::builder(c.nodes.iter().map(String::as_str))
                .connection_timeout(Duration::from_millis(cfg.connect_timeout_ms))
                .response_timeout(Duration::from_millis(cfg.command_timeout_ms));
            if let Some(u) = &cfg.username {
                b = b.username(u);
            }
            if let Some(p) = &cfg.password {
                b = b.password(p);
            }
            let client = b
                .build()
                .map_err(|_| bad("cluster: cannot build a cluster client"))?;
            return Ok(Self::Cluster(client));
        }
        Err(bad("set one of url, sentinel, cluster"))
    }

    /// `standalone`, `sentinel` or `cluster` (safe to log).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "standalone",
            Self::Sentinel(_) => "sentinel",
            Self::Cluster(_) => "cluster",
        }
    }

    /// Opens a connection and checks it with `PING`, all within `timeout`. Must run on the
    /// runtime that will drive the connection.
    pub(super) async fn connect(&self, timeout: Duration) -> Result<Connection, String> {
        let attempt = async {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout));
            let mut conn = match self {
                Self::Standalone(info) => {
                    let client = redis::Client::open(info.clone()).map_err(|e| e.to_string())?;
                    Connection::Node(
                        client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                }
                Self::Sentinel(s) => {
                    let client = s
                        .lock()
                        .await
                        .async_get_client()
                        .await
                        .map_err(|e| format!("sentinel lookup: {e}"))?;
                    Connection::Node(
                        client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                }
                Self::Cluster(c) => {
                    Connection::Cluster(c.get_async_connection().await.map_err(|e| e.to_string())?)
                }
            };
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| format!("PING: {e}"))?;
            Ok(conn)
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| format!("no connection within {} ms", timeout.as_millis()))?
    }
}

/// Applies the config's `username`/`password` (they override the URL's).
fn credentials(mut s: RedisConnectionInfo, cfg: &RedisConfig) -> RedisConnectionInfo {
    if let Some(u) = &cfg.username {
        s = s.set_username(u);
    }
    if let Some(p) = &cfg.password {
        s = s.set_password(p);
    }
    s
}
