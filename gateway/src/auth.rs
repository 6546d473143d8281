//! Who is calling: API keys (from the config or created at runtime), JWTs, and tenants.
//!
//! Authentication turns the request's credential into a [`Caller`], which everything after
//! it reads: the model allow-list, the key's and the tenant's limits and budget (enforced
//! by `limits`), and the tenant's residency/region (inputs of the placement policy).
//!
//! Keys are never stored or logged in clear: tables hold SHA-256 digests, the presented
//! key is hashed and compared in constant time, and only the key's *id* and *name* travel
//! further.
//!
//! - [`keys`]: config keys, looked up by digest (built with each snapshot).
//! - [`tenant`]: the tenant table.

mod credential;
pub mod keys;
pub mod tenant;

use std::collections::HashSet;
use std::sync::Arc;

pub use keys::{KeyTable, hash_key};
pub use tenant::{TenantInfo, Tenants};

use crate::config::{BudgetConfig, LimitsConfig};

/// An authenticated caller. Built once per key (or cached per token), shared by `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Stable, non-secret id: a config key's name, a runtime key's generated id, or
    /// `jwt:<issuer>:<sub>` for a JWT. Keys limits and spend.
    pub key_id: String,
    /// The key's name (safe to log).
    pub key_name: String,
    /// Tenant name.
    pub tenant: String,
    /// The tenant's attributes, limits and budget (bare when the tenant is not configured).
    pub tenant_info: Arc<TenantInfo>,
    /// Allowed client-facing models; `None` = all.
    pub models: Option<HashSet<String>>,
    /// The key's (or token's) own rate limits.
    pub limits: Arc<LimitsConfig>,
    /// The key's (or token's) own budget.
    pub budget: Option<BudgetConfig>,
}

impl Caller {
    /// Whether the caller may use `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }

    /// `None` when `models` contains `*`, else the set.
    pub fn model_set(models: &[String]) -> Option<HashSet<String>> {
        (!models.iter().any(|m| m == "*")).then(|| models.iter().cloned().collect())
    }
}
