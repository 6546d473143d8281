//! API keys from the config, looked up by SHA-256 digest.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Caller, Tenants};
use crate::GatewayError;
use crate::config::{AuthConfig, TenantConfig, parse_rfc3339};
use crate::fnv::Prehashed;

/// A key's digest, as the tables index it.
pub type Digest32 = [u8; 32];

/// One configured key.
#[derive(Debug)]
struct Entry {
    caller: Arc<Caller>,
    /// Unix seconds after which the key is refused.
    expires_at: Option<i64>,
}

/// The config's keys by digest, and its tenants.
#[derive(Debug)]
pub struct KeyTable {
    enabled: bool,
    /// By SHA-256 digest: already uniformly distributed.
    by_digest: HashMap<Digest32, Entry, BuildHasherDefault<Prehashed>>,
    anonymous: Arc<Caller>,
    /// The configured tenants.
    pub tenants: Arc<Tenants>,
}

/// Lower-case hex SHA-256 of a key, as stored in the config.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// SHA-256 of a presented key.
pub fn digest(key: &str) -> Digest32 {
    Sha256::digest(key.as_bytes()).into()
}

/// Unix time in seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// === impl KeyTable ===

impl KeyTable {
    /// Builds the table from validated config.
    pub fn from_config(auth: &AuthConfig, tenants: &[TenantConfig]) -> Self {
        let tenants = Arc::new(Tenants::from_config(tenants));
        let by_digest = auth
            .keys
            .iter()
            .filter_map(|k| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&k.sha256, &mut digest).ok()?;
                let caller = Caller {
                    key_id: k.name.clone(),
                    key_name: k.name.as_str().into(),
                    tenant: k.tenant.as_str().into(),
                    tenant_info: tenants.resolve(&k.tenant),
                    models: Caller::model_set(&k.models),
                    limits: Arc::new(k.limits.clone()),
                    budget: k.budget,
                };
                let expires_at = k.expires_at.as_deref().and_then(parse_rfc3339);
                Some((
                    digest,
                    Entry {
                        caller: Arc::new(caller),
                        expires_at,
                    },
                ))
            })
            .collect();
        let anonymous = Arc::new(Caller {
            key_id: "anonymous".into(),
            key_name: "anonymous".into(),
            tenant: "anonymous".into(),
            tenant_info: tenants.resolve("anonymous"),
            models: None,
            limits: Arc::default(),
            budget: None,
        });
        Self {
            enabled: auth.enabled,
            by_digest,
            anonymous,
            tenants,
        }
    }

    /// Whether a credential is required.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The caller when auth is disabled.
    pub fn anonymous(&self) -> &Arc<Caller> {
        &self.anonymous
    }

    /// The configured key with this digest: `Ok(None)` when there is none, an error when it
    /// has expired.
    pub fn lookup(
        &self,
        digest: &Digest32,
        now: i64,
    ) -> Result<Option<&Arc<Caller>>, GatewayError> {
        match self.by_digest.get_key_value(digest) {
            Some((stored, e)) if bool::from(stored.ct_eq(digest)) => {
                if e.expires_at.is_some_and(|t| now >= t) {
                    return Err(GatewayError::Unauthorized("the API key has expired"));
                }
                Ok(Some(&e.caller))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiKeyConfig, LimitsConfig};

    fn key(name: &str, secret: &str, expires_at: Option<&str>) -> ApiKeyConfig {
        ApiKeyConfig {
            name: name.into(),
            sha256: hash_key(secret),
            tenant: "t1".into(),
            models: vec!["a".into()],
            limits: LimitsConfig {
                rpm: Some(5),
                ..LimitsConfig::default()
            },
            budget: None,
            expires_at: expires_at.map(str::to_owned),
            metadata: Default::default(),
        }
    }

    /// What [`crate::auth::authenticate`] does for config keys.
    impl KeyTable {
        fn authenticate(
            &self,
            authorization: Option<&[u8]>,
            x_api_key: Option<&[u8]>,
        ) -> Result<Arc<Caller>, GatewayError> {
            let key = crate::auth::credential::presented(authorization, x_api_key)?;
            self.lookup(&digest(key), now_secs())?
                .cloned()
                .ok_or(GatewayError::Unauthorized("invalid API key"))
        }
    }

    fn table() -> KeyTable {
        let tenants = [TenantConfig {
            name: "t1".into(),
            residency: Some("eu".into()),
            region: None,
            attributes: Default::default(),
            limits: LimitsConfig::default(),
            budget: None,
        }];
        KeyTable::from_config(
            &AuthConfig {
                enabled: true,
                keys: vec![
                    key("dev", "sk-good", None),
                    key("old", "sk-old", Some("2020-01-01T00:00:00Z")),
                ],
                jwt: Default::default(),
            },
            &tenants,
        )
    }

    #[test]
    fn accepts_bearer_and_x_api_key_and_rejects_others() {
        let t = table();
        let c = t.authenticate(Some(b"Bearer sk-good"), None).unwrap();
        assert_eq!(
            (&*c.tenant, c.may_use("a"), c.may_use("b")),
            ("t1", true, false)
        );
        assert_eq!(c.key_id, "dev");
        assert_eq!(c.limits.rpm, Some(5));
        assert_eq!(c.tenant_info.residency.as_deref(), Some("eu"));
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
    fn expired_keys_are_refused_with_a_clear_message() {
        let e = table()
            .authenticate(Some(b"Bearer sk-old"), None)
            .unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.body().code, Some("invalid_api_key"));
        assert!(e.to_string().contains("expired"), "{e}");
    }

    #[test]
    fn hash_matches_sha256sum() {
        assert_eq!(
            hash_key("sk-datamind-dev"),
            "9c2d5b58f329a00e80bee8b3814350321e9a4397744c042ab590298a524eec1d"
        );
    }
}
