//! Binding a fast form to one deployment: its fixed fields (`cloud`, `region`, prices,
//! labels, …) become literals and what they decide is decided once, per config snapshot,
//! instead of per request.
//!
//! `deployment.cloud != "aws" || deployment.in_flight < 64` bound to a GCP deployment is
//! `true`; bound to an AWS one it is `false || deployment.in_flight < 64`. The folds keep the
//! evaluator's contract exactly: a bound form answers what the unbound one answers for that
//! deployment, and gives up (`None`) where it gives up. So only folds whose result does not
//! depend on how the evaluator treats the other operand are made: a decided condition picks
//! its branch, a short-circuiting `&&`/`||` left side decides, an operator on two literals is
//! computed (when it answers); `true && x` stays as it is (`x` alone might answer a
//! non-bool where the `&&` gives up).

use super::{Coll, Fast, Field, Node, V, bin};
use crate::policy::input::DeploymentInput;

impl Fast {
    /// This form with `d`'s fixed fields filled in and folded.
    pub(in crate::policy) fn bind(&self, d: &DeploymentInput) -> Fast {
        Fast(fold(&self.0, d))
    }
}

/// A literal node's value.
fn literal(n: &Node) -> Option<V<'_>> {
    Some(match n {
        Node::Int(v) => V::Int(*v),
        Node::UInt(v) => V::UInt(*v),
        Node::Double(v) => V::Double(*v),
        Node::Bool(v) => V::Bool(*v),
        Node::Str(s) => V::Str(s),
        _ => return None,
    })
}

fn node_of(v: V<'_>) -> Node {
    match v {
        V::Int(n) => Node::Int(n),
        V::UInt(n) => Node::UInt(n),
        V::Double(n) => Node::Double(n),
        V::Bool(b) => Node::Bool(b),
        V::Str(s) => Node::Str(s.to_owned()),
    }
}

/// A field fixed for the snapshot, as the evaluator reads it.
fn fixed(f: Field, d: &DeploymentInput) -> Option<Node> {
    use Field::*;
    let int = |v: u64| Node::Int(v.min(i64::MAX as u64) as i64);
    Some(match f {
        DName => Node::Str(d.name.clone()),
        DGroup => Node::Str(d.group.clone()),
        DProvider => Node::Str(d.provider.clone()),
        DKind => Node::Str(d.kind.clone()),
        DCloud => Node::Str(d.cloud.clone()),
        DRegion => Node::Str(d.region.clone()),
        DModel => Node::Str(d.model.clone()),
        DPriceInput => Node::Double(d.price_input),
        DPriceOutput => Node::Double(d.price_output),
        DPriceCached => Node::Double(d.price_cached_input),
        DContext => int(d.context_window),
        DWeight => Node::Int(i64::from(d.weight)),
        DMaxInFlight => Node::Int(i64::from(d.max_in_flight)),
        _ => return None,
    })
}

fn fold(n: &Node, d: &DeploymentInput) -> Node {
    let sub = |a: &Node| Box::new(fold(a, d));
    match n {
        Node::Int(v) => Node::Int(*v),
        Node::UInt(v) => Node::UInt(*v),
        Node::Double(v) => Node::Double(*v),
        Node::Bool(v) => Node::Bool(*v),
        Node::Str(s) => Node::Str(s.clone()),
        Node::HasMaxTokens => Node::HasMaxTokens,
        Node::Field(f) => fixed(*f, d).unwrap_or(Node::Field(*f)),
        Node::Not(a) => match fold(a, d) {
            Node::Bool(b) => Node::Bool(!b),
            a => Node::Not(Box::new(a)),
        },
        Node::Neg(a) => {
            let a = fold(a, d);
            match literal(&a) {
                Some(V::Int(v)) if v.checked_neg().is_some() => Node::Int(-v),
                Some(V::Double(v)) => Node::Double(-v),
                _ => Node::Neg(Box::new(a)),
            }
        }
        Node::And(a, b) => match fold(a, d) {
            Node::Bool(false) => Node::Bool(false),
            a => Node::And(Box::new(a), sub(b)),
        },
        Node::Or(a, b) => match fold(a, d) {
            Node::Bool(true) => Node::Bool(true),
            a => Node::Or(Box::new(a), sub(b)),
        },
        Node::Cond(c) => match fold(&c[0], d) {
            Node::Bool(true) => fold(&c[1], d),
            Node::Bool(false) => fold(&c[2], d),
            cond => Node::Cond(Box::new([cond, fold(&c[1], d), fold(&c[2], d)])),
        },
        Node::Bin(op, a, b) => {
            let (a, b) = (fold(a, d), fold(b, d));
            match literal(&a)
                .zip(literal(&b))
                .and_then(|(x, y)| bin(*op, x, y))
            {
                Some(v) => node_of(v),
                None => Node::Bin(*op, Box::new(a), Box::new(b)),
            }
        }
        Node::In(x, c) => {
            let x = fold(x, d);
            match (&x, c) {
                (Node::Str(k), Coll::Labels) => {
                    Node::Bool(d.labels().iter().any(|(name, _)| name == k))
                }
                _ => Node::In(Box::new(x), *c),
            }
        }
        Node::Index(c, x) => {
            let x = fold(x, d);
            let found = match (&x, c) {
                (Node::Str(k), Coll::Labels) => d.labels().iter().find(|(name, _)| name == k),
                _ => None,
            };
            match found {
                Some((_, v)) => Node::Str(v.clone()),
                None => Node::Index(*c, Box::new(x)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::input::Placement;

    fn form(src: &str) -> Fast {
        let env = cel::Env::stdlib();
        let p = env.compile(src).unwrap();
        Fast::compile(p.expression()).unwrap()
    }

    fn dep(cloud: &str) -> DeploymentInput {
        let placement = Placement {
            cloud: cloud.into(),
            region: "r".into(),
            context_window: 8,
            labels: [("gpu".to_owned(), "h100".to_owned())].into(),
        };
        DeploymentInput::new(
            "p/m",
            "g",
            "p",
            "openai",
            "m",
            &placement,
            (1.0, 2.0, 0.0),
            1,
            0,
        )
    }

    #[test]
    fn fixed_fields_decide_once_and_live_ones_stay() {
        let f = form("deployment.cloud != \"aws\" || deployment.in_flight < 64");
        assert!(matches!(f.bind(&dep("gcp")).0, Node::Bool(true)));
        let aws = f.bind(&dep("aws"));
        let Node::Or(a, b) = &aws.0 else {
            panic!("{aws:?}")
        };
        assert!(matches!(**a, Node::Bool(false)));
        assert!(matches!(**b, Node::Bin(_, _, _)));
        let order = form("deployment.cloud == \"aws\" ? 0 : (deployment.cloud == \"gcp\" ? 1 : 2)");
        for (cloud, key) in [("aws", 0), ("gcp", 1), ("azure", 2)] {
            assert!(matches!(order.bind(&dep(cloud)).0, Node::Int(k) if k == key));
        }
        let labels = form("\"gpu\" in deployment.labels && deployment.labels[\"gpu\"] == \"h100\"");
        assert!(matches!(labels.bind(&dep("x")).0, Node::And(_, _)));
        let price = form("deployment.price_input + deployment.price_output");
        assert!(matches!(price.bind(&dep("x")).0, Node::Double(v) if v == 3.0));
    }

    #[test]
    fn what_the_evaluator_gives_up_on_is_not_folded_away() {
        // int + double is CEL's to answer (an error): the bound form must give up too.
        let mixed = form("deployment.price_input + 1");
        assert!(matches!(mixed.bind(&dep("x")).0, Node::Bin(_, _, _)));
        // `true && x` keeps the `&&`: `x` alone could answer a non-bool.
        let and = form("deployment.cloud == \"x\" && deployment.in_flight");
        assert!(matches!(and.bind(&dep("x")).0, Node::And(_, _)));
    }
}
