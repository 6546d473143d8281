//! Validation of the `redis` block and the price table (`prices`, `deployments[].price`).

use super::Problems;
use crate::config::{Config, PriceConfig, RedisConfig};

/// Adds every problem of the Redis and pricing settings to `p`.
pub(super) fn check(c: &Config, p: &mut Problems) {
    if let Some(r) = &c.redis {
        check_redis(p, r);
    }
    let l = &c.limiter;
    for (name, v) in [
        ("replicas", u64::from(l.replicas)),
        ("default_max_tokens", l.default_max_tokens),
        ("spend_flush_ms", l.spend_flush_ms),
    ] {
        if v == 0 {
            p.add(format!("limiter.{name}"), "must be at least 1");
        }
    }
    for (model, price) in &c.prices {
        check_price(p, &format!("prices.{model}"), price);
    }
    for (i, m) in c.models.iter().enumerate() {
        for (j, d) in m.deployments.iter().enumerate() {
            if let Some(price) = &d.price {
                check_price(p, &format!("models[{i}].deployments[{j}].price"), price);
            }
        }
    }
}

fn check_price(p: &mut Problems, at: &str, price: &PriceConfig) {
    for (name, v) in [
        ("input", Some(price.input)),
        ("output", Some(price.output)),
        ("cached_input", price.cached_input),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            p.add(
                format!("{at}.{name}"),
                "must be a non-negative number (USD per million tokens)",
            );
        }
    }
}

fn check_redis(p: &mut Problems, r: &RedisConfig) {
    let kinds = [r.url.is_some(), r.sentinel.is_some(), r.cluster.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        p.add(
            "redis",
            "set exactly one of `url` (standalone), `sentinel` or `cluster`",
        );
    }
    if let Some(u) = &r.url {
        check_url(p, "redis.url", u);
    }
    if let Some(s) = &r.sentinel {
        if s.master_name.is_empty() {
            p.add("redis.sentinel.master_name", "must not be empty");
        }
        if s.nodes.is_empty() {
            p.add("redis.sentinel.nodes", "at least one Sentinel is required");
        }
        for (i, n) in s.nodes.iter().enumerate() {
            check_url(p, &format!("redis.sentinel.nodes[{i}]"), n);
        }
    }
    if let Some(cl) = &r.cluster {
        if cl.nodes.is_empty() {
            p.add("redis.cluster.nodes", "at least one seed node is required");
        }
        for (i, n) in cl.nodes.iter().enumerate() {
            check_url(p, &format!("redis.cluster.nodes[{i}]"), n);
        }
    }
    for (name, v) in [
        ("connect_timeout_ms", r.connect_timeout_ms),
        ("command_timeout_ms", r.command_timeout_ms),
        ("reconnect_max_ms", r.reconnect_max_ms),
    ] {
        if v == 0 {
            p.add(format!("redis.{name}"), "must be greater than 0");
        }
    }
    if r.key_prefix.contains(['{', '}']) {
        p.add(
            "redis.key_prefix",
            "must not contain `{` or `}` (the gateway places its own cluster hash tags)",
        );
    }
}

/// Reports a malformed Redis URL without echoing it (it may carry a password).
fn check_url(p: &mut Problems, at: &str, url: &str) {
    if !url.starts_with("redis://") {
        p.add(
            at,
            "must start with redis:// (TLS to Redis is not supported yet)",
        );
    } else if redis::parse_redis_url(url).is_none() {
        p.add(at, "not a valid Redis URL");
    }
}
