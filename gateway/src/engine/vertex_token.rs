//! Vertex AI access tokens from a service-account key: a signed JWT exchanged at the
//! account's `token_uri`, cached until five minutes before expiry.
//!
//! One request at a time refreshes (single flight); while a still-valid token is being
//! refreshed, other requests keep using it, so only the request that finds no valid token
//! at all waits for the exchange.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use datamind_llm::providers::gemini::vertex_auth::{AccessToken, ServiceAccount};
use parking_lot::Mutex;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;

use crate::config::{BaseUrl, Timeouts};
use crate::state::Gateway;

/// A service account and its cached token.
pub struct VertexToken {
    account: ServiceAccount,
    token_url: BaseUrl,
    peer: Option<HttpPeer>,
    cached: Mutex<Option<AccessToken>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for VertexToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VertexToken")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl VertexToken {
    /// Reads the key file; the error names the file and what is wrong (never the key).
    pub fn load(path: &str, timeouts: &Timeouts) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read \"{path}\": {e}"))?;
        let account = ServiceAccount::parse(&bytes).map_err(|e| format!("\"{path}\": {e}"))?;
        let token_url = BaseUrl::parse(&account.token_uri)?;
        let peer = crate::snapshot::make_peer(&token_url, timeouts, false);
        Ok(Self {
            account,
            token_url,
            peer,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// A valid access token, exchanging a new one when needed.
    pub async fn token(&self, gw: &Gateway) -> Result<String, String> {
        let cached = self.cached.lock().clone();
        let t = now();
        match cached {
            Some(tok) if !tok.needs_refresh(t) => return Ok(tok.token),
            Some(tok) if tok.expires_at > t => {
                // Still valid: refresh only if nobody else is already doing it.
                let Ok(_guard) = self.refreshing.try_lock() else {
                    return Ok(tok.token);
                };
                return Ok(self.exchange(gw).await.unwrap_or(tok.token));
            }
            _ => {}
        }
        let _guard = self.refreshing.lock().await;
        if let Some(tok) = self.cached.lock().clone()
            && !tok.needs_refresh(now())
        {
            return Ok(tok.token);
        }
        self.exchange(gw).await
    }

    async fn exchange(&self, gw: &Gateway) -> Result<String, String> {
        let t = now();
        let req = self
            .account
            .token_request(t)
            .map_err(|e| format!("signing the token request: {e}"))?;
        let peer = self.peer.as_ref().ok_or("token_uri host did not resolve")?;
        let path = if self.token_url.path.is_empty() {
            "/".to_owned()
        } else {
            self.token_url.path.clone()
        };
        let mut h = RequestHeader::build_no_case("POST", path.as_bytes(), Some(3))
            .map_err(|e| e.to_string())?;
        let fail = |e: Box<pingora_error::Error>| e.to_string();
        h.insert_header("host", self.token_url.host_header())
            .map_err(fail)?;
        h.insert_header("content-type", "application/x-www-form-urlencoded")
            .map_err(fail)?;
        h.insert_header("content-length", req.body.len().to_string())
            .map_err(fail)?;
        let body = Bytes::from(req.body);
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let (mut up, _) = gw.connector.get_http_session(peer).await?;
            up.write_request_header(Box::new(h)).await?;
            up.write_request_body(body, true).await?;
            up.finish_request_body().await?;
            up.read_response_header().await?;
            let status = up.response_header().map_or(0, |r| r.status.as_u16());
            let mut buf = Vec::new();
            while let Some(chunk) = up.read_response_body().await? {
                buf.extend_from_slice(&chunk);
            }
            Ok::<_, Box<pingora_error::Error>>((status, buf))
        })
        .await
        .map_err(|_| "token exchange timed out".to_owned())?
        .map_err(|e| format!("token exchange: {e}"))?;
        if answer.0 != 200 {
            return Err(format!("token endpoint answered {}", answer.0));
        }
        let tok = AccessToken::parse(&answer.1, t).map_err(|e| format!("token answer: {e}"))?;
        *self.cached.lock() = Some(tok.clone());
        tracing::info!(account = %self.account.client_email, expires_at = tok.expires_at, "vertex access token refreshed");
        Ok(tok.token)
    }
}
