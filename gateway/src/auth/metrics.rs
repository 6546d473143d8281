//! Authentication metrics, registered into the gateway's registry by
//! `telemetry::Metrics::new`:
//!
//! - `datamind_auth_total{method="api_key|jwt", result="ok|invalid|expired|revoked"}`:
//!   credentials checked (`invalid` covers missing, malformed, unknown and every failed JWT
//!   check but expiry).
//! - `datamind_jwks_fetches_total{issuer, result="ok|error"}`: key-set fetches.

use crate::telemetry::metrics::Counter;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::GatewayError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    method: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    issuer: String,
    result: &'static str,
}

/// How a credential was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Config or runtime API key (also: no or malformed credential).
    ApiKey,
    /// JWT.
    Jwt,
}

const RESULTS: [&str; 4] = ["ok", "invalid", "expired", "revoked"];

/// Handles to the authentication metrics (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct AuthMetrics {
    /// `[method][result]`, resolved once so the request path only touches an atomic.
    by_outcome: [[Counter; 4]; 2],
    fetches: Family<FetchLabels, Counter>,
}

impl AuthMetrics {
    /// Registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        let auth = Family::<AuthLabels, Counter>::default();
        let fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "auth",
            "Credentials checked, by method (api_key, jwt) and result (ok, invalid, expired, revoked)",
            auth.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches by issuer and result (ok, error)",
            fetches.clone(),
        );
        let by_outcome = ["api_key", "jwt"].map(|method| {
            RESULTS.map(|result| auth.get_or_create(&AuthLabels { method, result }).clone())
        });
        Self {
            by_outcome,
            fetches,
        }
    }

    /// Counts one authentication.
    pub fn record(&self, method: Method, outcome: Result<(), &GatewayError>) {
        let result = match outcome {
            Ok(()) => 0,
            Err(GatewayError::Unauthorized(m)) if m.contains("expired") => 2,
            Err(GatewayError::Unauthorized(m)) if m.contains("revoked") => 3,
            Err(_) => 1,
        };
        self.by_outcome[method as usize][result].inc();
    }

    /// The fetch counter of `issuer` for `ok` (`true`) or `error`.
    pub fn jwks_fetch(&self, issuer: &str, ok: bool) -> Counter {
        self.fetches
            .get_or_create(&FetchLabels {
                issuer: issuer.to_owned(),
                result: if ok { "ok" } else { "error" },
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_result() {
        let mut r = Registry::with_prefix("datamind");
        let m = AuthMetrics::register(&mut r);
        m.record(Method::ApiKey, Ok(()));
        m.record(
            Method::Jwt,
            Err(&GatewayError::Unauthorized("the JWT has expired")),
        );
        m.record(
            Method::ApiKey,
            Err(&GatewayError::Unauthorized("the API key has been revoked")),
        );
        m.jwks_fetch("https://idp", true).inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for needle in [
            "datamind_auth_total{method=\"api_key\",result=\"ok\"} 1",
            "datamind_auth_total{method=\"jwt\",result=\"expired\"} 1",
            "datamind_auth_total{method=\"api_key\",result=\"revoked\"} 1",
            "datamind_auth_total{method=\"jwt\",result=\"invalid\"} 0",
            "datamind_jwks_fetches_total{issuer=\"https://idp\",result=\"ok\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
