//! Conductor's metrics: decisions by rule, shadow-policy agreement.

use crate::telemetry::metrics::Counter;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    rule: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DisagreementLabels {
    rule: String,
    shadow_rule: String,
}

/// What a placement decision led to, for `datamind_route_decisions_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOutcome {
    /// Candidates were planned.
    Placed = 0,
    /// The rule denied the request.
    Denied,
    /// No deployment satisfied the rule.
    NoCandidate,
}

impl RouteOutcome {
    const ALL: [Self; 3] = [Self::Placed, Self::Denied, Self::NoCandidate];
    fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Denied => "denied",
            Self::NoCandidate => "no_candidate",
        }
    }
}

/// The route families.
#[derive(Debug, Clone, Default)]
pub struct RouteMetrics {
    decisions: Family<DecisionLabels, Counter>,
    shadow: Family<ShadowLabels, Counter>,
    disagreements: Family<DisagreementLabels, Counter>,
}

/// One rule's decision counters, resolved once per config snapshot.
#[derive(Debug, Clone, Default)]
pub struct RuleCounters([Counter; 3]);

impl RuleCounters {
    /// Counts one decision.
    pub fn record(&self, outcome: RouteOutcome) {
        self.0[outcome as usize].inc();
    }
}

impl RouteMetrics {
    /// Registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "route_decisions",
            "Placement decisions by Conductor rule and outcome (placed, denied, no_candidate)",
            m.decisions.clone(),
        );
        registry.register(
            "route_shadow_evaluations",
            "Shadow-policy evaluations by result (agree, disagree)",
            m.shadow.clone(),
        );
        registry.register(
            "route_shadow_disagreements",
            "Shadow-policy disagreements by active rule and shadow rule",
            m.disagreements.clone(),
        );
        m
    }

    /// The counters of one rule.
    pub fn for_rule(&self, rule: &str) -> RuleCounters {
        let mut out = RuleCounters::default();
        for o in RouteOutcome::ALL {
            let c = self
                .decisions
                .get_or_create(&DecisionLabels {
                    rule: rule.to_owned(),
                    outcome: o.as_str(),
                })
                .clone();
            out.0[o as usize] = c;
        }
        out
    }

    /// The agree / disagree counters.
    pub fn shadow_counters(&self) -> (Counter, Counter) {
        let agree = self
            .shadow
            .get_or_create(&ShadowLabels { result: "agree" })
            .clone();
        let disagree = self
            .shadow
            .get_or_create(&ShadowLabels { result: "disagree" })
            .clone();
        (agree, disagree)
    }

    /// Counts a disagreement between two rules (rare: resolved on use).
    pub fn record_disagreement(&self, rule: &str, shadow_rule: &str) {
        self.disagreements
            .get_or_create(&DisagreementLabels {
                rule: rule.to_owned(),
                shadow_rule: shadow_rule.to_owned(),
            })
            .inc();
    }
}
