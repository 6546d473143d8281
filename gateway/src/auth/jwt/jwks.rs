//! An issuer's key set (JWKS), fetched over HTTP(S) and cached.
//!
//! - A token whose key is known never waits: lookups read the cached set.
//! - A stale set (older than `jwks_cache_seconds`) is refreshed in the background (one
//!   task at a time) while every request keeps using it.
//! - A token with an unknown `kid` may trigger a refetch, at most once per
//!   `jwks_min_refresh_seconds` (one fetch in flight at a time; the others wait for it),
//!   so a flood of forged tokens cannot hammer the identity provider.
//! - One fetch is bounded by `jwks_timeout_ms` and a 1 MiB body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::telemetry::metrics::Counter;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;

use crate::auth::AuthMetrics;
use crate::config::{BaseUrl, JwtIssuerConfig};

const MAX_JWKS_BYTES: usize = 1 << 20;

/// One verification key and what it may verify.
#[derive(Debug)]
pub struct VerifyKey {
    /// `kid`, if the key has one.
    pub kid: Option<String>,
    /// The JWK's `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    /// The key.
    pub key: DecodingKey,
}

#[derive(Debug, Default)]
struct Cached {
    keys: Arc<Vec<Arc<VerifyKey>>>,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// A JWKS endpoint and its cached keys.
pub struct Jwks {
    url: BaseUrl,
    path: String,
    ttl: Duration,
    min_refresh: Duration,
    timeout: Duration,
    cached: Mutex<Cached>,
    refreshing: Arc<tokio::sync::Mutex<()>>,
    fetches: AtomicU64,
    fetched_ok: Counter,
    fetch_failed: Counter,
    connector: Connector,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("host", &self.url.host)
            .field("path", &self.path)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

// === impl Jwks ===

impl Jwks {
    /// For a validated issuer with a `jwks_url`.
    pub fn new(issuer: &JwtIssuerConfig, url: &str, metrics: &AuthMetrics) -> Result<Self, String> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let parsed = BaseUrl::parse(base)?;
        let mut path = if parsed.path.is_empty() {
            "/".to_owned()
        } else {
            parsed.path.clone()
        };
        if let Some(q) = query {
            path.push('?');
            path.push_str(q);
        }
        Ok(Self {
            url: parsed,
            path,
            ttl: Duration::from_secs(issuer.jwks_cache_seconds),
            min_refresh: Duration::from_secs(issuer.jwks_min_refresh_seconds),
            timeout: Duration::from_millis(issuer.jwks_timeout_ms),
            cached: Mutex::new(Cached::default()),
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
            fetches: AtomicU64::new(0),
            fetched_ok: metrics.jwks_fetch(&issuer.issuer, true),
            fetch_failed: metrics.jwks_fetch(&issuer.issuer, false),
            connector: Connector::new(None),
        })
    }

    /// Fetch attempts so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key for `kid` that can verify `alg`, fetching the set when it is missing or
    /// stale (within the limits described in the module docs).
    pub async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Option<Arc<VerifyKey>> {
        let (keys, fresh, may_retry) = self.state();
        if let Some(k) = pick(&keys, kid, alg) {
            if !fresh && let Ok(guard) = self.refreshing.clone().try_lock_owned() {
                let this = self.clone();
                tokio::spawn(async move {
                    this.refresh().await;
                    drop(guard);
                });
            }
            return Some(k);
        }
        if !may_retry {
            return None;
        }
        let _guard = self.refreshing.lock().await;
        // Someone may have fetched while we waited.
        let (keys, _, may_retry) = self.state();
        if let Some(k) = pick(&keys, kid, alg) {
            return Some(k);
        }
        if !may_retry {
            return None;
        }
        self.refresh().await;
        pick(&self.state().0, kid, alg)
    }

    /// (keys, fresh, a refetch is allowed now).
    fn state(&self) -> (Arc<Vec<Arc<VerifyKey>>>, bool, bool) {
        let c = self.cached.lock();
        let fresh = c.fetched.is_some_and(|t| t.elapsed() < self.ttl);
        let may_retry = c
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        (c.keys.clone(), fresh, may_retry)
    }

    /// Fetches the set; on failure keeps the old one. Call with `refreshing` held.
    async fn refresh(&self) {
        self.cached.lock().last_attempt = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(host = %self.url.host, keys = keys.len(), "JWKS fetched");
                {
                    let mut c = self.cached.lock();
                    c.keys = Arc::new(keys);
                    c.fetched = Some(Instant::now());
                }
                // Counted once the set is in use, so a reader of the metric that sees the
                // fetch also sees its keys.
                self.fetched_ok.inc();
            }
            Err(e) => {
                self.fetch_failed.inc();
                tracing::warn!(host = %self.url.host, error = %e, "JWKS fetch failed");
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Arc<VerifyKey>>, String> {
        let peer = self.peer().await?;
        let mut h = RequestHeader::build_no_case("GET", self.path.as_bytes(), Some(2))
            .map_err(|e| e.to_string())?;
        let fail = |e: Box<pingora_error::Error>| e.to_string();
        h.insert_header("host", self.url.host_header())
            .map_err(fail)?;
        h.insert_header("accept", "application/json")
            .map_err(fail)?;
        let (status, body) = tokio::time::timeout(self.timeout, async {
            let (mut up, _) = self.connector.get_http_session(&peer).await?;
            up.write_request_header(Box::new(h)).await?;
            up.finish_request_body().await?;
            up.read_response_header().await?;
            let status = up.response_header().map_or(0, |r| r.status.as_u16());
            let mut buf = Vec::new();
            while let Some(chunk) = up.read_response_body().await? {
                if buf.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Ok((status, None));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok::<_, Box<pingora_error::Error>>((status, Some(buf)))
        })
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("answered {status}"));
        }
        let body = body.ok_or("key set larger than 1 MiB")?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        Ok(set.keys.iter().filter_map(from_jwk).map(Arc::new).collect())
    }

    /// Resolves the host at each fetch (an identity provider's addresses change).
    async fn peer(&self) -> Result<HttpPeer, String> {
        let addr = tokio::net::lookup_host((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|e| format!("resolving {}: {e}", self.url.host))?
            .next()
            .ok_or_else(|| format!("{} did not resolve", self.url.host))?;
        let mut peer = HttpPeer::new(addr, self.url.tls, self.url.host.clone());
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(30));
        Ok(peer)
    }
}

/// A signing key from a JWK; `None` for encryption keys and symmetric or unknown types.
fn from_jwk(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(
        jwk.algorithm,
        jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
    ) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
        None => None,
    };
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

/// The key for `kid` (or, for a token without `kid`, the only key) that can verify `alg`:
/// its type must match the algorithm's family, and a key that pins an `alg` only verifies
/// that one.
pub fn pick(keys: &[Arc<VerifyKey>], kid: Option<&str>, alg: Algorithm) -> Option<Arc<VerifyKey>> {
    let fits =
        |k: &&Arc<VerifyKey>| k.key.family() == alg.family() && k.alg.is_none_or(|a| a == alg);
    match kid {
        Some(kid) => keys
            .iter()
            .filter(fits)
            .find(|k| k.kid.as_deref() == Some(kid))
            .cloned(),
        None => {
            let mut it = keys.iter().filter(fits);
            match (it.next(), it.next()) {
                (Some(k), None) => Some(k.clone()),
                _ => None,
            }
        }
    }
}
