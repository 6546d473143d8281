//! Vertex AI credentials from a service-account JSON key, as pure steps the caller drives:
//!
//! 1. [`ServiceAccount::parse`] the key file once;
//! 2. [`ServiceAccount::token_request`] builds the OAuth2 JWT-bearer exchange (an RS256
//!    JWT signed with the account's key, POSTed form-encoded to its `token_uri`);
//! 3. [`AccessToken::parse`] reads the answer; [`AccessToken::needs_refresh`] says when to
//!    start the next exchange ([`REFRESH_BEFORE_SECS`] ahead of expiry, so requests keep
//!    using the current token while the refresh runs).
//!
//! The gateway does the HTTP call and caches the token; the token goes to the adapter as
//! `Target::bearer_token`. Signing is native-only (the edge worker signs with WebCrypto).

use serde::{Deserialize, Serialize};

use crate::LlmError;

/// OAuth2 scope for Vertex AI.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Refresh this long before the token expires.
pub const REFRESH_BEFORE_SECS: u64 = 300;

/// The fields of a service-account key file that the exchange needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    /// `…@….iam.gserviceaccount.com`.
    pub client_email: String,
    /// PEM private key; never logged.
    pub private_key: String,
    /// Key id, sent as the JWT `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// Token endpoint, e.g. `https://oauth2.googleapis.com/token`.
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// A token exchange to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// POST here.
    pub url: String,
    /// `application/x-www-form-urlencoded` body.
    pub body: String,
}

/// An access token and when it expires (Unix seconds).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: String,
    /// Expiry.
    pub expires_at: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

fn invalid(reason: String) -> LlmError {
    LlmError::InvalidField {
        field: "credentials",
        reason,
    }
}

impl ServiceAccount {
    /// Reads a service-account JSON key.
    pub fn parse(json: &[u8]) -> Result<Self, LlmError> {
        serde_json::from_slice(json).map_err(|e| invalid(format!("service account key: {e}")))
    }

    /// The JWT-bearer token exchange, signed at `now_unix` (valid one hour).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn token_request(&self, now_unix: u64) -> Result<TokenRequest, LlmError> {
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now_unix,
            exp: now_unix + 3600,
        };
        let key = EncodingKey::from_rsa_pem(self.private_key.as_bytes())
            .map_err(|e| invalid(format!("service account private key: {e}")))?;
        let jwt = jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| invalid(format!("signing the service account JWT: {e}")))?;
        Ok(TokenRequest {
            url: self.token_uri.clone(),
            body: format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            ),
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AccessToken {
    /// Reads the token endpoint's JSON answer, received at `now_unix`.
    pub fn parse(body: &[u8], now_unix: u64) -> Result<Self, LlmError> {
        let r: TokenResponse = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("token endpoint answer: {e}")))?;
        Ok(Self {
            token: r.access_token,
            expires_at: now_unix + r.expires_in.unwrap_or(3600),
        })
    }

    /// Time to start refreshing (the token itself stays usable until `expires_at`).
    pub fn needs_refresh(&self, now_unix: u64) -> bool {
        now_unix + REFRESH_BEFORE_SECS >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../tests/fixtures/test_sa_key.pem");
    const PUB: &str = include_str!("../../../tests/fixtures/test_sa_pub.pem");

    #[test]
    fn signs_a_verifiable_jwt_bearer_assertion() {
        let sa = ServiceAccount::parse(
            serde_json::json!({"type": "service_account", "client_email": "gw@p.iam.gserviceaccount.com",
                "private_key": KEY, "private_key_id": "k1", "token_uri": "https://oauth2.googleapis.com/token"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let now = 1_700_000_000;
        let r = sa.token_request(now).unwrap();
        assert_eq!(r.url, "https://oauth2.googleapis.com/token");
        let jwt = r
            .body
            .strip_prefix(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
            )
            .unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&["https://oauth2.googleapis.com/token"]);
        v.validate_exp = false;
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUB.as_bytes()).unwrap();
        let d = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &v).unwrap();
        assert_eq!(d.header.kid.as_deref(), Some("k1"));
        assert_eq!(d.claims["iss"], "gw@p.iam.gserviceaccount.com");
        assert_eq!(d.claims["scope"], SCOPE);
        assert_eq!(d.claims["exp"], now + 3600);
        assert!(!format!("{sa:?}").contains("PRIVATE"));
    }

    #[test]
    fn reads_token_and_schedules_refresh() {
        let t = AccessToken::parse(
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
            100,
        )
        .unwrap();
        assert_eq!(t.expires_at, 3699);
        assert!(!t.needs_refresh(3000));
        assert!(t.needs_refresh(3399));
        assert!(!format!("{t:?}").contains("ya29"));
    }
}
