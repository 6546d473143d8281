//! A builder for the gateway's YAML config.
//!
//! Starts from test-friendly defaults (short timeouts, two client keys, access log on
//! stdout) and lets a test add providers and model groups or override any field by JSON
//! pointer. The listen addresses are filled in by [`crate::Gateway`] when it picks ports.

use std::net::SocketAddr;

use serde_json::{Map, Value, json};

use crate::{KEY_ALL, KEY_LIMITED, sha256_hex};

/// One `models[].deployments[]` entry.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub provider: String,
    pub model: String,
    pub weight: Option<u32>,
}

/// One `models[]` entry: a client-facing model name and where it can be served.
#[derive(Clone, Debug)]
pub struct ModelGroup {
    pub name: String,
    pub strategy: Option<String>,
    pub deployments: Vec<Deployment>,
    pub fallbacks: Vec<String>,
}

// === impl ModelGroup ===

impl ModelGroup {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            strategy: None,
            deployments: Vec::new(),
            fallbacks: Vec::new(),
        }
    }

    /// Adds a deployment: `provider` serving it as `upstream_model`.
    pub fn deployment(mut self, provider: &str, upstream_model: &str) -> Self {
        self.deployments.push(Deployment {
            provider: provider.to_string(),
            model: upstream_model.to_string(),
            weight: None,
        });
        self
    }

    /// Adds a deployment with an explicit `weight` (for `weighted_round_robin`).
    pub fn weighted_deployment(
        mut self,
        provider: &str,
        upstream_model: &str,
        weight: u32,
    ) -> Self {
        self.deployments.push(Deployment {
            provider: provider.to_string(),
            model: upstream_model.to_string(),
            weight: Some(weight),
        });
        self
    }

    pub fn fallback(mut self, group: &str) -> Self {
        self.fallbacks.push(group.to_string());
        self
    }

    pub fn strategy(mut self, strategy: &str) -> Self {
        self.strategy = Some(strategy.to_string());
        self
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(s) = &self.strategy {
            m.insert("strategy".into(), json!(s));
        }
        let deployments: Vec<Value> = self
            .deployments
            .iter()
            .map(|d| {
                let mut v = json!({"provider": d.provider, "model": d.model});
                if let (Some(w), Some(obj)) = (d.weight, v.as_object_mut()) {
                    obj.insert("weight".into(), json!(w));
                }
                v
            })
            .collect();
        m.insert("deployments".into(), Value::Array(deployments));
        if !self.fallbacks.is_empty() {
            m.insert("fallbacks".into(), json!(self.fallbacks));
        }
        Value::Object(m)
    }
}

/// The whole gateway config, kept as a JSON value and rendered to YAML.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    value: Value,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self::new()
    }
}

// === impl GatewayConfig ===

impl GatewayConfig {
    /// Test defaults: no providers or models yet; keys [`KEY_ALL`] (tenant `team-a`, every
    /// model) and [`KEY_LIMITED`] (tenant `team-b`, only `gpt-4o-mini`).
    pub fn new() -> Self {
        let value = json!({
            "server": {
                "listen": "127.0.0.1:0",
                "admin_listen": "127.0.0.1:0",
                "threads": 2,
                "max_body_bytes": 33_554_432,
                "shutdown_grace_seconds": 10
            },
            "access_log": {"enabled": true, "path": "-"},
            "timeouts": {"connect_ms": 1000, "first_byte_ms": 5000, "total_ms": 30000},
            "cooldown": {"failures": 3, "seconds": 30},
            "auth": {"keys": [
                {"name": "all", "sha256": sha256_hex(KEY_ALL), "tenant": "team-a", "models": ["*"]},
                {"name": "limited", "sha256": sha256_hex(KEY_LIMITED), "tenant": "team-b",
                 "models": ["gpt-4o-mini"]}
            ]},
            "providers": [],
            "models": []
        });
        Self { value }
    }

    /// Adds an OpenAI-compatible provider at `base_url` whose key comes from
    /// `${E2E_UPSTREAM_KEY}` and which adds the header `x-extra: v`.
    pub fn openai_provider(self, name: &str, base_url: &str) -> Self {
        self.push(
            "/providers",
            json!({
                "name": name,
                "kind": "openai",
                "base_url": base_url,
                "api_key": "${E2E_UPSTREAM_KEY}",
                "headers": {"x-extra": "v"}
            }),
        )
    }

    /// Adds the built-in deterministic mock provider.
    pub fn builtin_mock_provider(self, name: &str) -> Self {
        self.push(
            "/providers",
            json!({"name": name, "kind": "mock", "latency_ms": 0, "chunk_delay_ms": 0}),
        )
    }

    /// Adds a raw provider entry.
    pub fn provider(self, provider: Value) -> Self {
        self.push("/providers", provider)
    }

    pub fn model(self, group: ModelGroup) -> Self {
        let v = group.to_value();
        self.push("/models", v)
    }

    /// Sets any field by JSON pointer (`/timeouts/first_byte_ms`, `/auth/keys/0/limits`),
    /// creating maps on the way.
    pub fn set(mut self, pointer: &str, value: Value) -> Self {
        let mut cur = &mut self.value;
        let parts: Vec<&str> = pointer.split('/').skip(1).collect();
        for (i, part) in parts.iter().enumerate() {
            // An index into an existing array (`/auth/keys/0/limits`).
            let index = part
                .parse::<usize>()
                .ok()
                .filter(|n| cur.as_array().is_some_and(|a| *n < a.len()));
            if let Some(n) = index {
                if i + 1 == parts.len() {
                    cur[n] = value;
                    return self;
                }
                cur = &mut cur[n];
                continue;
            }
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            let Some(obj) = cur.as_object_mut() else {
                return self;
            };
            if i + 1 == parts.len() {
                obj.insert((*part).to_string(), value);
                return self;
            }
            cur = obj
                .entry((*part).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        self
    }

    /// The config as JSON (before listen addresses are filled in).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// YAML with the given listen addresses.
    pub fn render(&self, api: SocketAddr, admin: SocketAddr) -> String {
        let cfg = self
            .clone()
            .set("/server/listen", json!(api.to_string()))
            .set("/server/admin_listen", json!(admin.to_string()));
        crate::yaml::to_yaml(&cfg.value)
    }

    fn push(mut self, pointer: &str, item: Value) -> Self {
        if let Some(Value::Array(items)) = self.value.pointer_mut(pointer) {
            items.push(item);
        }
        self
    }
}
