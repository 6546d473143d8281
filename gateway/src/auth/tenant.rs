//! Tenants: who a caller belongs to, and the attributes placement and limits read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{BudgetConfig, LimitsConfig, TenantConfig};

/// One tenant as requests see it. A tenant that is not in the config is *bare*: no
/// residency, region, attributes, limits or budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantInfo {
    /// Tenant name.
    pub name: String,
    /// Data residency, e.g. `eu`.
    pub residency: Option<String>,
    /// Home region.
    pub region: Option<String>,
    /// Further placement attributes.
    pub attributes: BTreeMap<String, String>,
    /// Tenant-wide rate limits.
    pub limits: LimitsConfig,
    /// Tenant-wide budget.
    pub budget: Option<BudgetConfig>,
}

impl TenantInfo {
    /// A tenant with only a name.
    pub fn bare(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

impl From<&TenantConfig> for TenantInfo {
    fn from(t: &TenantConfig) -> Self {
        Self {
            name: t.name.clone(),
            residency: t.residency.clone(),
            region: t.region.clone(),
            attributes: t.attributes.clone(),
            limits: t.limits.clone(),
            budget: t.budget,
        }
    }
}

/// The configured tenants by name.
#[derive(Debug, Default)]
pub struct Tenants(HashMap<String, Arc<TenantInfo>>);

impl Tenants {
    /// Builds the table from validated config.
    pub fn from_config(tenants: &[TenantConfig]) -> Self {
        Self(
            tenants
                .iter()
                .map(|t| (t.name.clone(), Arc::new(TenantInfo::from(t))))
                .collect(),
        )
    }

    /// The configured tenant, if any.
    pub fn get(&self, name: &str) -> Option<&Arc<TenantInfo>> {
        self.0.get(name)
    }

    /// The configured tenant, or a bare one (allocates; callers cache the result).
    pub fn resolve(&self, name: &str) -> Arc<TenantInfo> {
        self.get(name)
            .cloned()
            .unwrap_or_else(|| Arc::new(TenantInfo::bare(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_tenants_carry_attributes_and_others_are_bare() {
        let t = Tenants::from_config(&[TenantConfig {
            name: "eu-bank".into(),
            residency: Some("eu".into()),
            region: Some("westeurope".into()),
            attributes: BTreeMap::from([("tier".into(), "gold".into())]),
            limits: LimitsConfig {
                rpm: Some(10),
                ..LimitsConfig::default()
            },
            budget: None,
        }]);
        let eu = t.resolve("eu-bank");
        assert_eq!(eu.residency.as_deref(), Some("eu"));
        assert_eq!(eu.limits.rpm, Some(10));
        assert_eq!(eu.attributes["tier"], "gold");
        assert_eq!(*t.resolve("other"), TenantInfo::bare("other"));
    }
}
