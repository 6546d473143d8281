//! Who is calling: API keys from the config, looked up by SHA-256.
//!
//! Keys are never stored or logged in clear: the table holds digests, the presented key
//! is hashed and compared in constant time, and only the key's *name* travels further.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::GatewayError;
use crate::config::AuthConfig;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name (safe to log).
    pub key_name: String,
    /// Tenant.
    pub tenant: String,
    /// Allowed client-facing models; `None` = all.
    pub models: Option<HashSet<String>>,
}

impl Caller {
    /// Whether the caller may use `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }
}

/// Keys by digest.
#[derive(Debug)]
pub struct KeyTable {
    enabled: bool,
    by_digest: HashMap<[u8; 32], Arc<Caller>>,
    anonymous: Arc<Caller>,
}

/// Lower-case hex SHA-256 of a key, as stored in the config.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl KeyTable {
    /// Builds the table from validated config.
    pub fn from_config(auth: &AuthConfig) -> Self {
        let by_digest = auth
            .keys
            .iter()
            .filter_map(|k| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&k.sha256, &mut digest).ok()?;
                let models = (!k.models.iter().any(|m| m == "*"))
                    .then(|| k.models.iter().cloned().collect());
                Some((
                    digest,
                    Arc::new(Caller {
                        key_name: k.name.clone(),
                        tenant: k.tenant.clone(),
                        models,
                    }),
                ))
            })
            .collect();
        let anonymous = Arc::new(Caller {
            key_name: "anonymous".into(),
            tenant: "anonymous".into(),
            models: None,
        });
        Self {
            enabled: auth.enabled,
            by_digest,
            anonymous,
        }
    }

    /// Authenticates from `Authorization: Bearer …` or `x-api-key`.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        x_api_key: Option<&[u8]>,
    ) -> Result<Arc<Caller>, GatewayError> {
        if !self.enabled {
            return Ok(self.anonymous.clone());
        }
        let key = match (authorization, x_api_key) {
            (Some(h), _) => {
                let h = std::str::from_utf8(h)
                    .map_err(|_| GatewayError::Unauthorized("malformed Authorization header"))?;
                match h.split_once(' ') {
                    Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
                    _ => {
                        return Err(GatewayError::Unauthorized(
                            "the Authorization header must be `Bearer <API key>`",
                        ));
                    }
                }
            }
            (None, Some(k)) => std::str::from_utf8(k)
                .map_err(|_| GatewayError::Unauthorized("malformed x-api-key header"))?
                .trim(),
            (None, None) => {
                return Err(GatewayError::Unauthorized(
                    "missing API key: send `Authorization: Bearer <API key>`",
                ));
            }
        };
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        match self.by_digest.get_key_value(&digest) {
            Some((stored, caller)) if bool::from(stored.ct_eq(&digest)) => Ok(caller.clone()),
            _ => Err(GatewayError::Unauthorized("invalid API key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn table() -> KeyTable {
        KeyTable::from_config(&AuthConfig {
            enabled: true,
            keys: vec![ApiKeyConfig {
                name: "dev".into(),
                sha256: hash_key("sk-good"),
                tenant: "t1".into(),
                models: vec!["a".into()],
            }],
        })
    }

    #[test]
    fn accepts_bearer_and_x_api_key_and_rejects_others() {
        let t = table();
        let c = t.authenticate(Some(b"Bearer sk-good"), None).unwrap();
        assert_eq!(
            (c.tenant.as_str(), c.may_use("a"), c.may_use("b")),
            ("t1", true, false)
        );
        assert!(t.authenticate(None, Some(b"sk-good")).is_ok());
        assert!(t.authenticate(Some(b"bearer sk-good"), None).is_ok());
        for bad in [
            Some(&b"Bearer sk-bad"[..]),
            Some(b"Basic sk-good"),
            Some(b"sk-good"),
        ] {
            assert_eq!(t.authenticate(bad, None).unwrap_err().status(), 401);
        }
        assert_eq!(t.authenticate(None, None).unwrap_err().status(), 401);
    }

    #[test]
    fn hash_matches_sha256sum() {
        assert_eq!(
            hash_key("sk-datamind-dev"),
            "9c2d5b58f329a00e80bee8b3814350321e9a4397744c042ab590298a524eec1d"
        );
    }
}
