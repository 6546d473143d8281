//! A direct evaluator for the common shape of placement rules: field reads of `request`,
//! `deployment` and `now`, literals, comparisons, `&&` `||` `!`, `? :`, arithmetic, `in`
//! over `request.tags` and the string maps, `has(request.max_tokens)`.
//!
//! Why: the `cel` interpreter resolves every `deployment.x` by building the dotted name as a
//! `String` and looks functions up by formatted type names, so allocation is about half of a
//! rule's cost. This walks the checked AST once per evaluation over the typed inputs, without
//! allocating. It is an accelerator, not a second semantics: whenever the answer is not a
//! plain success on same-typed operands (a missing `max_tokens`, an int compared with a
//! double, an overflow, a string concatenation, any construct not listed above), it gives up
//! and the caller runs the `cel` program, so results and errors are always CEL's own.
//! `tests.rs` checks both paths agree on the shipped example policies.

use cel::common::ast::{Expr, IdedExpr, LiteralValue};
use cel::objects::Value;

use super::input::{DeploymentInput, Now, RequestInput, Stats};

mod fold;

/// A compiled fast form of one expression.
#[derive(Debug)]
pub(super) struct Fast(Node);

#[derive(Debug)]
enum Node {
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
    Str(String),
    Field(Field),
    HasMaxTokens,
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<[Node; 3]>),
    Bin(Op, Box<Node>, Box<Node>),
    /// `x in <string list or map>`.
    In(Box<Node>, Coll),
    /// `<map>[x]`.
    Index(Coll, Box<Node>),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
}

#[derive(Debug, Clone, Copy)]
enum Coll {
    Tags,
    Headers,
    Attributes,
    Labels,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Model,
    Operation,
    Key,
    Tokens,
    MaxTokens,
    Stream,
    Session,
    Prefix,
    TenantName,
    TenantResidency,
    TenantRegion,
    DName,
    DGroup,
    DProvider,
    DKind,
    DCloud,
    DRegion,
    DModel,
    DPriceInput,
    DPriceOutput,
    DPriceCached,
    DContext,
    DWeight,
    DFallback,
    DHealthy,
    DCooling,
    DCooldownLeft,
    DInFlight,
    DMaxInFlight,
    DQueue,
    DErrorRate,
    DLatP50,
    DLatP95,
    DTtftP50,
    DTtftP95,
    DSamples,
    NowUnix,
    NowHour,
    NowMinute,
    NowWeekday,
}

/// What an expression reads.
pub(super) struct Inputs<'a> {
    pub request: &'a RequestInput,
    pub now: Now,
    pub deployment: Option<(&'a DeploymentInput, &'a Stats, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum V<'a> {
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
    Str(&'a str),
}

impl Fast {
    /// The fast form of `e`, when every part of it is supported.
    pub(super) fn compile(e: &IdedExpr) -> Option<Self> {
        node(e).map(Self)
    }

    /// The value, or `None`: then run the `cel` program.
    pub(super) fn eval(&self, i: &Inputs<'_>) -> Option<Value> {
        Some(match eval(&self.0, i)? {
            V::Int(n) => Value::Int(n),
            V::UInt(n) => Value::UInt(n),
            V::Double(n) => Value::Float(n),
            V::Bool(b) => Value::Bool(b),
            V::Str(s) => Value::String(std::sync::Arc::new(s.to_owned())),
        })
    }

    /// The value when it is a bool (`when`, `filter`), without building a [`Value`]; `None`:
    /// run the `cel` program (which answers the same non-bool, or fails the same way).
    pub(super) fn eval_bool(&self, i: &Inputs<'_>) -> Option<bool> {
        boolean(&self.0, i)
    }

    /// The value as a sort key (`order`): a number or a bool as `rank` reads them (NaN is
    /// not a key). `None`: run the `cel` program.
    pub(super) fn eval_key(&self, i: &Inputs<'_>) -> Option<f64> {
        match operand(&self.0, i)? {
            V::Int(n) => Some(n as f64),
            V::UInt(n) => Some(n as f64),
            V::Double(n) if !n.is_nan() => Some(n),
            V::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
}

fn field(var: &str, name: &str) -> Option<Field> {
    use Field::*;
    Some(match (var, name) {
        ("request", "model") => Model,
        ("request", "operation") => Operation,
        ("request", "key") => Key,
        ("request", "estimated_prompt_tokens") => Tokens,
        ("request", "max_tokens") => MaxTokens,
        ("request", "stream") => Stream,
        ("request", "session") => Session,
        ("request", "prefix") => Prefix,
        ("tenant", "name") => TenantName,
        ("tenant", "residency") => TenantResidency,
        ("tenant", "region") => TenantRegion,
        ("deployment", f) => match f {
            "name" => DName,
            "group" => DGroup,
            "provider" => DProvider,
            "kind" => DKind,
            "cloud" => DCloud,
            "region" => DRegion,
            "model" => DModel,
            "price_input" => DPriceInput,
            "price_output" => DPriceOutput,
            "price_cached_input" => DPriceCached,
            "context_window" => DContext,
            "weight" => DWeight,
            "fallback" => DFallback,
            "healthy" => DHealthy,
            "cooling_down" => DCooling,
            "cooldown_left_ms" => DCooldownLeft,
            "in_flight" => DInFlight,
            "max_in_flight" => DMaxInFlight,
            "queue_depth" => DQueue,
            "error_rate" => DErrorRate,
            "latency_p50_ms" => DLatP50,
            "latency_p95_ms" => DLatP95,
            "ttft_p50_ms" => DTtftP50,
            "ttft_p95_ms" => DTtftP95,
            "samples" => DSamples,
            _ => return None,
        },
        ("now", "unix") => NowUnix,
        ("now", "hour") => NowHour,
        ("now", "minute") => NowMinute,
        ("now", "weekday") => NowWeekday,
        _ => return None,
    })
}

/// `request.tags`, `request.headers`, `request.tenant.attributes`, `deployment.labels`.
fn coll(e: &IdedExpr) -> Option<Coll> {
    match path(e)? {
        ("request", "tags") => Some(Coll::Tags),
        ("request", "headers") => Some(Coll::Headers),
        ("tenant", "attributes") => Some(Coll::Attributes),
        ("deployment", "labels") => Some(Coll::Labels),
        _ => None,
    }
}

/// `request.x`, `deployment.x`, `now.x` as (`request`, `x`); `request.tenant.x` as
/// (`tenant`, `x`).
fn path(e: &IdedExpr) -> Option<(&str, &str)> {
    let Expr::Select(s) = &e.expr else {
        return None;
    };
    if s.test {
        return None;
    }
    match &s.operand.expr {
        Expr::Ident(v) => Some((v.as_str(), s.field.as_str())),
        Expr::Select(inner)
            if !inner.test
                && inner.field == "tenant"
                && matches!(&inner.operand.expr, Expr::Ident(v) if v == "request") =>
        {
            Some(("tenant", s.field.as_str()))
        }
        _ => None,
    }
}

fn node(e: &IdedExpr) -> Option<Node> {
    Some(match &e.expr {
        Expr::Literal(l) => match l {
            LiteralValue::Int(n) => Node::Int(*n.inner()),
            LiteralValue::UInt(n) => Node::UInt(*n.inner()),
            LiteralValue::Double(n) => Node::Double(*n.inner()),
            LiteralValue::Boolean(b) => Node::Bool(*b.inner()),
            LiteralValue::String(s) => Node::Str(s.inner().to_owned()),
            _ => return None,
        },
        Expr::Select(s) if s.test => {
            let Expr::Ident(v) = &s.operand.expr else {
                return None;
            };
            if v != "request" || s.field != "max_tokens" {
                return None;
            }
            Node::HasMaxTokens
        }
        Expr::Select(_) => {
            let (var, name) = path(e)?;
            Node::Field(field(var, name)?)
        }
        Expr::Call(c) if c.target.is_none() => {
            let arg = |i: usize| c.args.get(i).and_then(node).map(Box::new);
            let bin = |op| Some(Node::Bin(op, arg(0)?, arg(1)?));
            match (c.func_name.as_str(), c.args.len()) {
                ("!_", 1) => Node::Not(arg(0)?),
                ("-_", 1) => Node::Neg(arg(0)?),
                ("_&&_", 2) => Node::And(arg(0)?, arg(1)?),
                ("_||_", 2) => Node::Or(arg(0)?, arg(1)?),
                ("_?_:_", 3) => Node::Cond(Box::new([
                    node(&c.args[0])?,
                    node(&c.args[1])?,
                    node(&c.args[2])?,
                ])),
                ("_==_", 2) => bin(Op::Eq)?,
                ("_!=_", 2) => bin(Op::Ne)?,
                ("_<_", 2) => bin(Op::Lt)?,
                ("_<=_", 2) => bin(Op::Le)?,
                ("_>_", 2) => bin(Op::Gt)?,
                ("_>=_", 2) => bin(Op::Ge)?,
                ("_+_", 2) => bin(Op::Add)?,
                ("_-_", 2) => bin(Op::Sub)?,
                ("_*_", 2) => bin(Op::Mul)?,
                ("@in", 2) => Node::In(arg(0)?, coll(&c.args[1])?),
                ("_[_]", 2) => match coll(&c.args[0])? {
                    Coll::Tags => return None,
                    m => Node::Index(m, arg(1)?),
                },
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn int(v: u64) -> V<'static> {
    V::Int(v.min(i64::MAX as u64) as i64)
}

fn read<'a>(f: Field, i: &Inputs<'a>) -> Option<V<'a>> {
    use Field::*;
    let r = i.request;
    let dep = || i.deployment;
    Some(match f {
        Model => V::Str(&r.model),
        Operation => V::Str(r.operation),
        Key => V::Str(&r.key),
        Tokens => int(r.estimated_prompt_tokens),
        MaxTokens => int(r.max_tokens?),
        Stream => V::Bool(r.stream),
        Session => V::Str(&r.session),
        Prefix => V::Str(r.prefix.get()),
        TenantName => V::Str(&r.tenant.name),
        TenantResidency => V::Str(&r.tenant.residency),
        TenantRegion => V::Str(&r.tenant.region),
        NowUnix => V::Int(i.now.unix),
        NowHour => V::Int(i.now.hour()),
        NowMinute => V::Int(i.now.minute()),
        NowWeekday => V::Int(i.now.weekday()),
        d => {
            let (d_in, s, fallback) = dep()?;
            match d {
                DName => V::Str(&d_in.name),
                DGroup => V::Str(&d_in.group),
                DProvider => V::Str(&d_in.provider),
                DKind => V::Str(&d_in.kind),
                DCloud => V::Str(&d_in.cloud),
                DRegion => V::Str(&d_in.region),
                DModel => V::Str(&d_in.model),
                DPriceInput => V::Double(d_in.price_input),
                DPriceOutput => V::Double(d_in.price_output),
                DPriceCached => V::Double(d_in.price_cached_input),
                DContext => int(d_in.context_window),
                DWeight => V::Int(i64::from(d_in.weight)),
                DMaxInFlight => V::Int(i64::from(d_in.max_in_flight)),
                DFallback => V::Bool(fallback),
                DHealthy => V::Bool(s.healthy),
                DCooling => V::Bool(s.cooling_down),
                DCooldownLeft => int(s.cooldown_left_ms),
                DInFlight => int(s.in_flight),
                DQueue => int(s.queue_depth),
                DErrorRate => V::Double(s.error_rate),
                DLatP50 => V::Double(s.latency_p50_ms),
                DLatP95 => V::Double(s.latency_p95_ms),
                DTtftP50 => V::Double(s.ttft_p50_ms),
                DTtftP95 => V::Double(s.ttft_p95_ms),
                DSamples => int(s.samples),
                _ => return None,
            }
        }
    })
}

fn pairs<'a>(c: Coll, i: &Inputs<'a>) -> Option<&'a [(String, String)]> {
    Some(match c {
        Coll::Headers => &i.request.headers,
        Coll::Attributes => i.request.tenant.attributes(),
        Coll::Labels => i.deployment?.0.labels(),
        Coll::Tags => return None,
    })
}

fn boolean(n: &Node, i: &Inputs<'_>) -> Option<bool> {
    match operand(n, i)? {
        V::Bool(b) => Some(b),
        _ => None,
    }
}

/// [`eval`], with literals and field reads (half the nodes of a rule) answered here,
/// without the call: the evaluator's cost is mostly calls.
#[inline(always)]
fn operand<'a>(n: &'a Node, i: &Inputs<'a>) -> Option<V<'a>> {
    match n {
        Node::Int(v) => Some(V::Int(*v)),
        Node::Double(v) => Some(V::Double(*v)),
        Node::Bool(v) => Some(V::Bool(*v)),
        Node::Str(s) => Some(V::Str(s)),
        Node::Field(f) => read(*f, i),
        _ => eval(n, i),
    }
}

fn eval<'a>(n: &'a Node, i: &Inputs<'a>) -> Option<V<'a>> {
    Some(match n {
        Node::Int(v) => V::Int(*v),
        Node::UInt(v) => V::UInt(*v),
        Node::Double(v) => V::Double(*v),
        Node::Bool(v) => V::Bool(*v),
        Node::Str(s) => V::Str(s),
        Node::Field(f) => read(*f, i)?,
        Node::HasMaxTokens => V::Bool(i.request.max_tokens.is_some()),
        Node::Not(a) => V::Bool(!boolean(a, i)?),
        Node::Neg(a) => match eval(a, i)? {
            V::Int(v) => V::Int(v.checked_neg()?),
            V::Double(v) => V::Double(-v),
            _ => return None,
        },
        // Short-circuit only on a decided left side; anything else is CEL's to answer.
        Node::And(a, b) => V::Bool(boolean(a, i)? && boolean(b, i)?),
        Node::Or(a, b) => V::Bool(boolean(a, i)? || boolean(b, i)?),
        Node::Cond(c) => {
            if boolean(&c[0], i)? {
                operand(&c[1], i)?
            } else {
                operand(&c[2], i)?
            }
        }
        Node::Bin(op, a, b) => bin(*op, operand(a, i)?, operand(b, i)?)?,
        Node::In(x, Coll::Tags) => {
            let V::Str(x) = operand(x, i)? else {
                return None;
            };
            V::Bool(i.request.tags.iter().any(|t| t == x))
        }
        Node::In(x, c) => {
            let V::Str(x) = operand(x, i)? else {
                return None;
            };
            V::Bool(pairs(*c, i)?.iter().any(|(k, _)| k == x))
        }
        Node::Index(c, x) => {
            let V::Str(x) = operand(x, i)? else {
                return None;
            };
            V::Str(pairs(*c, i)?.iter().find(|(k, _)| k == x)?.1.as_str())
        }
    })
}

fn bin<'a>(op: Op, a: V<'a>, b: V<'a>) -> Option<V<'a>> {
    use std::cmp::Ordering;
    // Strings are mostly compared for equality: a length check settles most.
    if let (V::Str(x), V::Str(y), Op::Eq | Op::Ne) = (a, b, op) {
        return Some(V::Bool((x == y) == matches!(op, Op::Eq)));
    }
    let ord: Option<Ordering> = match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(&y)),
        (V::UInt(x), V::UInt(y)) => Some(x.cmp(&y)),
        (V::Double(x), V::Double(y)) => x.partial_cmp(&y),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(&y)),
        // Mixed types: CEL's rules (and errors) apply.
        _ => return None,
    };
    Some(match op {
        Op::Eq => V::Bool(ord? == Ordering::Equal),
        Op::Ne => V::Bool(ord? != Ordering::Equal),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            if matches!(a, V::Bool(_)) {
                return None;
            }
            let o = ord?;
            V::Bool(match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        Op::Add | Op::Sub | Op::Mul => match (a, b) {
            (V::Int(x), V::Int(y)) => V::Int(match op {
                Op::Add => x.checked_add(y)?,
                Op::Sub => x.checked_sub(y)?,
                _ => x.checked_mul(y)?,
            }),
            (V::UInt(x), V::UInt(y)) => V::UInt(match op {
                Op::Add => x.checked_add(y)?,
                Op::Sub => x.checked_sub(y)?,
                _ => x.checked_mul(y)?,
            }),
            (V::Double(x), V::Double(y)) => V::Double(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                _ => x * y,
            }),
            _ => return None,
        },
    })
}
