//! What a request cost: a deployment's [`Price`] applied to the usage it reported.
//!
//! Prices come from the config: `prices.<upstream model>` (keyed by the name the provider
//! knows, a deployment's `model`), overridden per deployment by `deployments[].price`.
//! [`resolve`] picks the one that applies when the snapshot is built; a deployment
//! without a price costs nothing (spend is then not tracked for it).

use datamind_llm::Usage;

use crate::config::{Config, DeploymentConfig, PriceConfig};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Prompt tokens (not served from a prompt cache).
    pub input: f64,
    /// Completion tokens.
    pub output: f64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input: f64,
}

impl From<&PriceConfig> for Price {
    fn from(p: &PriceConfig) -> Self {
        Self {
            input: p.input,
            output: p.output,
            cached_input: p.cached_input.unwrap_or(p.input),
        }
    }
}

impl Price {
    /// The cost of `usage` in USD. Cached prompt tokens (a part of `prompt_tokens`) are
    /// charged at `cached_input`, the rest of the prompt at `input`.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        let cached = usage.cache_read_tokens.min(usage.prompt_tokens);
        let fresh = usage.prompt_tokens - cached;
        (fresh as f64 * self.input
            + cached as f64 * self.cached_input
            + usage.completion_tokens as f64 * self.output)
            / 1_000_000.0
    }

    /// The most `input_tokens` prompt and `output_tokens` completion tokens could cost
    /// (no cache discount): what admission reserves against a budget.
    pub fn max_cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input + output_tokens as f64 * self.output) / 1_000_000.0
    }
}

/// The price of deployment `d`: its own `price`, else `prices[d.model]`.
pub fn resolve(config: &Config, d: &DeploymentConfig) -> Option<Price> {
    d.price
        .as_ref()
        .or_else(|| config.prices.get(&d.model))
        .map(Price::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_cached_prompt_tokens_at_their_own_price() {
        let p = Price::from(&PriceConfig {
            input: 2.0,
            output: 8.0,
            cached_input: Some(0.5),
        });
        let u = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
            cache_read_tokens: 400_000,
            cache_creation_tokens: 0,
        };
        // 600k fresh × 2 + 400k cached × 0.5 + 500k × 8 = 1.2 + 0.2 + 4.0
        assert!((p.cost_usd(&u) - 5.4).abs() < 1e-9);
        assert!((p.max_cost_usd(1_000_000, 1_000_000) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn cached_input_defaults_to_input_and_deployment_overrides_table() {
        let yaml = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
providers: [ { name: m, kind: mock } ]
prices:
  up-a: { input: 1.0, output: 2.0 }
models:
  - name: a
    deployments:
      - { provider: m, model: up-a }
      - { provider: m, model: up-a, price: { input: 3.0, output: 4.0, cached_input: 0.3 } }
      - { provider: m, model: up-b }
"#;
        let c = crate::config::parse_str(yaml, &|_| None).unwrap();
        let ds = &c.models[0].deployments;
        assert_eq!(
            resolve(&c, &ds[0]),
            Some(Price {
                input: 1.0,
                output: 2.0,
                cached_input: 1.0
            })
        );
        assert_eq!(resolve(&c, &ds[1]).map(|p| p.cached_input), Some(0.3));
        assert_eq!(resolve(&c, &ds[2]), None);
    }

    #[test]
    fn negative_prices_are_config_errors_with_their_path() {
        let yaml = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
providers: [ { name: m, kind: mock } ]
prices: { up-a: { input: -1.0, output: .nan } }
models:
  - { name: a, deployments: [ { provider: m, model: up-a, price: { input: 1, output: 1, cached_input: -2 } } ] }
"#;
        let err = crate::config::parse_str(yaml, &|_| None)
            .unwrap_err()
            .to_string();
        for needle in [
            "prices.up-a.input: must be a non-negative number",
            "prices.up-a.output: must be a non-negative number",
            "models[0].deployments[0].price.cached_input: must be a non-negative number",
        ] {
            assert!(err.contains(needle), "missing {needle} in:\n{err}");
        }
    }
}
