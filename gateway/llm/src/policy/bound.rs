//! Rules bound to one deployment ([`Bound`]): what a deployment's fixed fields decide in a
//! rule's `filter` and `order`, decided once per config snapshot (see `fast/fold.rs`).

use std::sync::Arc;

use cel::Env;

use super::{DeploymentInput, Expr, Policy, fast};

/// A policy's `filter` and `order` with one deployment's fixed fields (cloud, region,
/// prices, labels, …) filled in and what they decide decided: built once per deployment and
/// config snapshot by [`Policy::bind`], it spares every request the part of the rules that
/// only the deployment decides. The answers are the unbound rules' own.
pub struct Bound {
    /// The policy it was bound from (its environment is not shared with any other).
    pub(super) env: Arc<Env>,
    /// `(filter, order)` by rule index; `None` where the rule has none or no fast form.
    pub(super) rules: Box<[(Option<fast::Fast>, Option<fast::Fast>)]>,
}

impl Bound {
    /// Whether it was bound from `policy`.
    pub fn is_for(&self, policy: &Policy) -> bool {
        Arc::ptr_eq(&self.env, &policy.env)
    }
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// The rules' `filter` and `order` bound to deployment `d` (see [`Bound`]).
    pub fn bind(&self, d: &DeploymentInput) -> Bound {
        let bind = |e: &Option<Expr>| e.as_ref()?.fast.as_ref().map(|f| f.bind(d));
        Bound {
            env: self.env.clone(),
            rules: self
                .rules
                .iter()
                .map(|r| (bind(&r.filter), bind(&r.order)))
                .collect(),
        }
    }
}
