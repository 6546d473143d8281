//! Conductor: placement rules in CEL, compiled once, evaluated per request.
//!
//! ```text
//! PolicySpec (config) ──compile──▶ Policy (programs, checked names)
//! per request:  Policy::select(request, now)            → Selection (rule, tags, deny?)
//!               the caller gathers candidates (the requested group, then its fallbacks,
//!               or the rule's `fallbacks`) with live Stats
//!               Policy::rank(selection, request, now, candidates) → Ranking
//!                   (try order with sort keys, and every excluded candidate with why)
//! ```
//! The same compiled rules run in the core gateway and in the edge worker: nothing here does
//! I/O or reads a clock (`now` is an input).
//!
//! ## Adding an input field
//! Add it to the struct in [`input`], to its `*_FIELDS` list, and to the view's `Indexer`
//! (`match` arm); document it in the README's Conductor section.

pub mod affinity;
mod bound;
mod check;
mod fast;
pub use bound::Bound;
pub use check::Reads;
pub mod input;
pub mod prefix;
pub mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::{Context, Env, Program, Value};

use crate::LlmError;
pub use input::{DeploymentInput, Now, Placement, RequestInput, Stats, TenantInput};
use input::{DeploymentView, NowView, RequestScope, RequestView};
pub use spec::{AffinitySpec, DenySpec, PolicySpec, RuleSpec};

/// The name reported when no rule matched.
pub const DEFAULT_RULE: &str = "default";

/// Compiled placement rules.
pub struct Policy {
    env: Arc<Env>,
    rules: Vec<Rule>,
    default_name: Arc<str>,
    reads: Reads,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Its name.
    pub name: Arc<str>,
    /// What it is for.
    pub description: Option<String>,
    when: Option<Expr>,
    /// The refusal, when it denies.
    pub deny: Option<DenySpec>,
    filter: Option<Expr>,
    order: Option<Expr>,
    /// Replacement fallback groups.
    pub fallbacks: Option<Vec<String>>,
    affinity: Option<(Expr, f64)>,
    /// Tags it adds.
    pub tags: Arc<[(String, String)]>,
    placement: bool,
    /// What its `filter` and `order` read.
    candidate_reads: Reads,
    /// Whether they read an EWMA statistic (see [`Rule::reads_ewma`]).
    ewma: bool,
}

#[derive(Debug)]
struct Expr {
    source: String,
    program: Program,
    reads: Reads,
    /// The allocation-free evaluator, when the expression has its shape.
    fast: Option<fast::Fast>,
}

impl Expr {
    /// Evaluates: `fast` (its own fast form, or one bound to the deployment) when it
    /// answers, else the `cel` program in the context `slow` builds. The context is built
    /// only then: most evaluations never need one.
    fn run(
        &self,
        fast: Option<&fast::Fast>,
        inputs: &fast::Inputs<'_>,
        slow: &dyn Fn(&Program) -> cel::ResolveResult,
    ) -> cel::ResolveResult {
        if let Some(v) = fast.and_then(|f| f.eval(inputs)) {
            return Ok(v);
        }
        slow(&self.program)
    }
}

impl Rule {
    /// The `when` expression, if any.
    pub fn when_source(&self) -> Option<&str> {
        self.when.as_ref().map(|e| e.source.as_str())
    }
    /// The `filter` expression, if any.
    pub fn filter_source(&self) -> Option<&str> {
        self.filter.as_ref().map(|e| e.source.as_str())
    }
    /// The `order` expression, if any.
    pub fn order_source(&self) -> Option<&str> {
        self.order.as_ref().map(|e| e.source.as_str())
    }
    /// Whether its `filter` or `order` reads a statistic the caller has to compute (see
    /// [`input::EWMA_FIELDS`]); when not, [`Stats`] needs only its counters and cooldown.
    pub fn reads_ewma(&self) -> bool {
        self.ewma
    }

    /// What its `filter` and `order` read.
    pub fn candidate_reads(&self) -> Reads {
        self.candidate_reads
    }
}

/// Which rule applies to a request.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Index of the placement rule, `None` for the default.
    pub rule: Option<usize>,
    /// Its name (`default` when none matched).
    pub rule_name: Arc<str>,
    /// Tags of every matched rule, in rule order.
    pub tags: Vec<Arc<[(String, String)]>>,
    /// The request is refused.
    pub deny: Option<DenySpec>,
    /// The affinity key, when the rule has affinity and the key is not empty.
    pub affinity_key: Option<String>,
    /// `when` expressions that failed to evaluate (rule name, error): the rule was skipped.
    pub errors: Vec<(Arc<str>, String)>,
}

impl Selection {
    /// Every tag, later rules last.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags
            .iter()
            .flat_map(|t| t.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// One deployment the request could go to.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// What it is.
    pub deployment: &'a DeploymentInput,
    /// How it is doing.
    pub stats: Stats,
    /// 0 for the requested group, 1… for each fallback group in order.
    pub tier: u32,
}

/// Why a candidate is not tried.
#[derive(Debug, Clone, PartialEq)]
pub enum Exclusion {
    /// The rule's filter returned false.
    Filtered,
    /// The filter or order expression failed (the candidate is left out: fail closed).
    Error(String),
    /// Cooling down after failures.
    CoolingDown {
        /// Time left, ms.
        left_ms: u64,
    },
    /// At its `max_in_flight`.
    AtCapacity,
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Filtered => f.write_str("filtered out by the rule"),
            Self::Error(e) => write!(f, "rule expression failed: {e}"),
            Self::CoolingDown { left_ms } => write!(f, "cooling down ({left_ms} ms left)"),
            Self::AtCapacity => f.write_str("at max_in_flight"),
        }
    }
}

/// The outcome of ranking: candidate indexes in try order, and the excluded ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranking {
    /// `(candidate index, sort key)` in the order to try.
    pub order: Vec<(usize, Option<f64>)>,
    /// `(candidate index, why)`.
    pub excluded: Vec<(usize, Exclusion)>,
}

impl Policy {
    /// Compiles `spec`. Every problem is reported with its path (`rules[1].filter`) and,
    /// for expressions, the line and column inside it.
    pub fn compile(spec: &PolicySpec) -> Result<Self, Vec<LlmError>> {
        let env = Arc::new(Env::stdlib());
        let mut errors = Vec::new();
        let mut rules = Vec::with_capacity(spec.rules.len());
        let mut names = std::collections::HashSet::new();
        const REQ: &[&str] = &["request", "now"];
        const DEP: &[&str] = &["request", "deployment", "now"];
        for (i, r) in spec.rules.iter().enumerate() {
            let at = format!("rules[{i}]");
            let mut problem = |field: &str, message: String| {
                errors.push(LlmError::InvalidPolicy {
                    path: format!("{at}.{field}"),
                    message,
                })
            };
            if r.name.is_empty() || r.name == DEFAULT_RULE || !names.insert(r.name.as_str()) {
                problem(
                    "name",
                    format!("empty, reserved or duplicate rule name \"{}\"", r.name),
                );
            }
            if !r
                .name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b'"')
            {
                problem(
                    "name",
                    "must be printable ASCII without spaces, `;` or `\"`".into(),
                );
            }
            let mut compile = |field: &str, src: Source<'_>, allowed: &[&str]| match src {
                Source::None => None,
                Source::Inline(src) => match compile_expr(&env, src, allowed) {
                    Ok(e) => Some(e),
                    Err(m) => {
                        problem(field, m);
                        None
                    }
                },
                // Positions are inside the file: `policies/eu.cel:3:7: …`.
                Source::File(path, Some(src)) => match compile_expr(&env, src, allowed) {
                    Ok(e) => Some(e),
                    Err(m) => {
                        problem(&format!("{field}_file"), format!("{path}:{m}"));
                        None
                    }
                },
                Source::File(path, None) => {
                    problem(&format!("{field}_file"), format!("{path}: not read"));
                    None
                }
                Source::Both => {
                    problem(field, format!("give either `{field}` or `{field}_file`"));
                    None
                }
            };
            let fs = &r.file_sources;
            let when = compile("when", Source::of(&r.when, &r.when_file, &fs.when), REQ);
            let filter = compile(
                "filter",
                Source::of(&r.filter, &r.filter_file, &fs.filter),
                DEP,
            );
            let order = compile("order", Source::of(&r.order, &r.order_file, &fs.order), DEP);
            let affinity_key = r
                .affinity
                .as_ref()
                .and_then(|a| compile("affinity.key", Source::Inline(&a.key), REQ));
            if let Some(d) = &r.deny {
                if !(400..=599).contains(&d.status) {
                    problem("deny.status", "must be 400–599".into());
                }
                let filters = r.filter.is_some() || r.filter_file.is_some();
                let orders = r.order.is_some() || r.order_file.is_some();
                if filters || orders || r.affinity.is_some() {
                    problem(
                        "deny",
                        "a denying rule cannot also filter, order or set affinity".into(),
                    );
                }
            }
            if let Some(a) = &r.affinity
                && !(a.load_factor.is_finite() && a.load_factor >= 1.0)
            {
                problem("affinity.load_factor", "must be at least 1.0".into());
            }
            let placement = r.deny.is_some()
                || r.filter.is_some()
                || r.filter_file.is_some()
                || r.order.is_some()
                || r.order_file.is_some()
                || r.fallbacks.is_some()
                || r.affinity.is_some();
            if !placement && r.tags.is_empty() {
                problem(
                    "name",
                    "the rule does nothing: give it deny, filter, order, fallbacks, affinity or tags"
                        .into(),
                );
            }
            let candidate_reads = [&filter, &order]
                .into_iter()
                .flatten()
                .fold(Reads::default(), |a, e| a.union(e.reads));
            rules.push(Rule {
                name: Arc::from(r.name.as_str()),
                description: r.description.clone(),
                when,
                deny: r.deny.clone(),
                filter,
                order,
                fallbacks: r.fallbacks.clone(),
                affinity: affinity_key.zip(r.affinity.as_ref().map(|a| a.load_factor)),
                tags: tags(&r.tags),
                placement,
                candidate_reads,
                ewma: candidate_reads.any_deployment_field(input::EWMA_FIELDS),
            });
        }
        if errors.is_empty() {
            let reads = rules
                .iter()
                .flat_map(|r| {
                    [&r.when, &r.filter, &r.order]
                        .into_iter()
                        .flatten()
                        .chain(r.affinity.as_ref().map(|a| &a.0))
                })
                .fold(Reads::default(), |a, e| a.union(e.reads));
            Ok(Self {
                env,
                rules,
                default_name: Arc::from(DEFAULT_RULE),
                reads,
            })
        } else {
            Err(errors)
        }
    }

    /// The compiled rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every field any rule reads: a caller may leave the others of [`RequestInput`] empty
    /// (e.g. not look up `x-datamind-tags` when no rule reads `request.tags`).
    pub fn reads(&self) -> Reads {
        self.reads
    }

    /// Finds the placement rule for a request: rules are tried in order; tag-only rules add
    /// their tags; the first other matching rule wins. A `when` that fails to evaluate counts
    /// as not matching and is reported in [`Selection::errors`].
    pub fn select(&self, request: &RequestInput, now: &Now) -> Selection {
        let scope = RequestScope {
            request: RequestView(request),
            now: NowView(now),
        };
        let slow = |p: &Program| {
            let mut ctx = Context::with_env(self.env.clone());
            ctx.set_variable_resolver(&scope);
            p.execute(&ctx)
        };
        let inputs = fast::Inputs {
            request,
            now: *now,
            deployment: None,
        };
        let mut sel = Selection {
            rule: None,
            rule_name: self.default_name.clone(),
            tags: Vec::new(),
            deny: None,
            affinity_key: None,
            errors: Vec::new(),
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let fast = rule
                .when
                .as_ref()
                .and_then(|w| w.fast.as_ref()?.eval_bool(&inputs));
            let matched = match (&rule.when, fast) {
                (None, _) => true,
                (Some(_), Some(b)) => b,
                (Some(w), None) => match w.run(None, &inputs, &slow) {
                    Ok(Value::Bool(b)) => b,
                    Ok(other) => {
                        sel.errors.push((
                            rule.name.clone(),
                            format!("`when` gave {other:?}, not a bool"),
                        ));
                        false
                    }
                    Err(e) => {
                        sel.errors.push((rule.name.clone(), e.to_string()));
                        false
                    }
                },
            };
            if !matched {
                continue;
            }
            if !rule.tags.is_empty() {
                sel.tags.push(rule.tags.clone());
            }
            if !rule.placement {
                continue;
            }
            sel.rule = Some(i);
            sel.rule_name = rule.name.clone();
            sel.deny = rule.deny.clone();
            if let Some((key, _)) = &rule.affinity {
                match key.run(key.fast.as_ref(), &inputs, &slow) {
                    Ok(Value::String(s)) if !s.is_empty() => {
                        sel.affinity_key = Some(s.as_str().to_owned())
                    }
                    Ok(Value::String(_)) => {}
                    Ok(other) => sel.errors.push((
                        rule.name.clone(),
                        format!("`affinity.key` gave {other:?}, not a string"),
                    )),
                    Err(e) => sel.errors.push((rule.name.clone(), e.to_string())),
                }
            }
            break;
        }
        sel
    }

    /// The placement rule of a selection.
    pub fn rule(&self, sel: &Selection) -> Option<&Rule> {
        sel.rule.and_then(|i| self.rules.get(i))
    }

    /// Orders `candidates` for a request: cooling and saturated ones are left out, then the
    /// rule's filter, then its order (ascending, stable: ties keep the given order, which is
    /// the group's strategy order), within each tier. With affinity, the first tier is
    /// ordered by bounded-load consistent hashing of the key instead.
    pub fn rank(
        &self,
        sel: &Selection,
        request: &RequestInput,
        now: &Now,
        candidates: &[Candidate<'_>],
    ) -> Ranking {
        self.rank_bound(sel, request, now, candidates, |_| None)
    }

    /// [`Self::rank`] with candidate `i`'s rules bound to its deployment by `bound(i)` (see
    /// [`Bound`]; one bound from another policy is not used). Same answers, less work.
    pub fn rank_bound<'b>(
        &self,
        sel: &Selection,
        request: &RequestInput,
        now: &Now,
        candidates: &[Candidate<'_>],
        bound: impl Fn(usize) -> Option<&'b Bound>,
    ) -> Ranking {
        let rule = self.rule(sel);
        let scope = RequestScope {
            request: RequestView(request),
            now: NowView(now),
        };
        let mut out = Ranking {
            order: Vec::with_capacity(candidates.len()),
            excluded: Vec::new(),
        };
        for (i, c) in candidates.iter().enumerate() {
            if c.stats.cooling_down {
                out.excluded.push((
                    i,
                    Exclusion::CoolingDown {
                        left_ms: c.stats.cooldown_left_ms,
                    },
                ));
                continue;
            }
            if c.stats.at_capacity {
                out.excluded.push((i, Exclusion::AtCapacity));
                continue;
            }
            let (filter, order) = match rule {
                Some(r) => (r.filter.as_ref(), r.order.as_ref()),
                None => (None, None),
            };
            if filter.is_none() && order.is_none() {
                out.order.push((i, None));
                continue;
            }
            let view = DeploymentView {
                info: c.deployment,
                stats: &c.stats,
                fallback: c.tier > 0,
            };
            let slow = |p: &Program| {
                let mut root = Context::with_env(self.env.clone());
                root.set_variable_resolver(&scope);
                let mut ctx = root.new_inner_scope();
                ctx.set_variable_resolver(&view);
                p.execute(&ctx)
            };
            let bound = sel
                .rule
                .zip(bound(i).filter(|b| b.is_for(self)))
                .and_then(|(r, b)| b.rules.get(r));
            let (filter_fast, order_fast) = match bound {
                Some((f, o)) => (f.as_ref(), o.as_ref()),
                None => (
                    filter.and_then(|f| f.fast.as_ref()),
                    order.and_then(|o| o.fast.as_ref()),
                ),
            };
            let inputs = fast::Inputs {
                request,
                now: *now,
                deployment: Some((c.deployment, &c.stats, c.tier > 0)),
            };
            if let Some(f) = filter {
                match filter_fast.and_then(|ff| ff.eval_bool(&inputs)) {
                    Some(true) => {}
                    Some(false) => {
                        out.excluded.push((i, Exclusion::Filtered));
                        continue;
                    }
                    None => match f.run(None, &inputs, &slow) {
                        Ok(Value::Bool(true)) => {}
                        Ok(Value::Bool(false)) => {
                            out.excluded.push((i, Exclusion::Filtered));
                            continue;
                        }
                        Ok(other) => {
                            out.excluded.push((
                                i,
                                Exclusion::Error(format!("filter gave {other:?}, not a bool")),
                            ));
                            continue;
                        }
                        Err(e) => {
                            out.excluded.push((i, Exclusion::Error(e.to_string())));
                            continue;
                        }
                    },
                }
            }
            let fast_key = order_fast.and_then(|o| o.eval_key(&inputs));
            let key = match order
                .filter(|_| fast_key.is_none())
                .map(|o| o.run(None, &inputs, &slow))
            {
                None => fast_key,
                Some(Ok(Value::Int(n))) => Some(n as f64),
                Some(Ok(Value::UInt(n))) => Some(n as f64),
                Some(Ok(Value::Float(n))) if !n.is_nan() => Some(n),
                Some(Ok(Value::Bool(b))) => Some(if b { 1.0 } else { 0.0 }),
                Some(Ok(other)) => {
                    out.excluded.push((
                        i,
                        Exclusion::Error(format!("order gave {other:?}, not a number")),
                    ));
                    continue;
                }
                Some(Err(e)) => {
                    out.excluded.push((i, Exclusion::Error(e.to_string())));
                    continue;
                }
            };
            out.order.push((i, key));
        }
        // Stable: equal keys keep the strategy order. Most often the candidates are one
        // tier (then only keys order them), and without `order` there are no keys.
        let by_key = |a: &(usize, Option<f64>), b: &(usize, Option<f64>)| match (a.1, b.1) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => std::cmp::Ordering::Equal,
        };
        let tier = |e: &(usize, Option<f64>)| candidates[e.0].tier;
        let first = out.order.first().map(tier);
        if out.order.iter().any(|e| Some(tier(e)) != first) {
            out.order
                .sort_by(|a, b| tier(a).cmp(&tier(b)).then_with(|| by_key(a, b)));
        } else if out.order.iter().any(|e| e.1.is_some()) {
            out.order.sort_by(by_key);
        }
        if let (Some(key), Some((_, factor))) =
            (&sel.affinity_key, rule.and_then(|r| r.affinity.as_ref()))
        {
            affinity::reorder_first_tier(key, *factor, candidates, &mut out.order);
        }
        out
    }
}

/// Where a rule's expression comes from.
enum Source<'a> {
    None,
    Inline(&'a str),
    /// The path as written, and the text once read.
    File(&'a str, Option<&'a str>),
    Both,
}

impl<'a> Source<'a> {
    fn of(inline: &'a Option<String>, file: &'a Option<String>, read: &'a Option<String>) -> Self {
        match (inline, file) {
            (None, None) => Self::None,
            (Some(s), None) => Self::Inline(s),
            (None, Some(p)) => Self::File(p, read.as_deref()),
            (Some(_), Some(_)) => Self::Both,
        }
    }
}

fn tags(t: &BTreeMap<String, String>) -> Arc<[(String, String)]> {
    t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn compile_expr(env: &Env, src: &str, allowed: &[&str]) -> Result<Expr, String> {
    let program = env.compile(src).map_err(|errs| {
        errs.errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.pos.0, e.pos.1 + 1, e.msg))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let (unknown, reads) = check::check(program.expression(), program.source_info(), allowed);
    if let Some(u) = unknown.into_iter().next() {
        let (line, col) = u.offset.map_or((1, 1), |o| check::line_col(src, o));
        return Err(format!("{line}:{col}: {}", u.message));
    }
    let fast = fast::Fast::compile(program.expression());
    Ok(Expr {
        source: src.to_owned(),
        program,
        reads,
        fast,
    })
}
