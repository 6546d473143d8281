//! Compile-time checks CEL itself leaves to run time: every variable and field a rule names
//! must exist, so a typo is a config error with its position, not a failed request.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};

use super::input::{DEPLOYMENT_FIELDS, NOW_FIELDS, REQUEST_FIELDS, TENANT_FIELDS};

/// Identifiers CEL resolves to type values (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
];

/// Where a name is not allowed or does not exist: message and character offset.
pub(super) struct Unknown {
    pub message: String,
    pub offset: Option<u32>,
}

/// The fields of `request` and `deployment` an expression reads, as bit sets over
/// [`REQUEST_FIELDS`] and [`DEPLOYMENT_FIELDS`] (a bare `request` or `deployment`, e.g. passed
/// whole to a function, reads everything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// Bit `i`: `request.<REQUEST_FIELDS[i]>`.
    pub request: u64,
    /// Bit `i`: `deployment.<DEPLOYMENT_FIELDS[i]>`.
    pub deployment: u64,
}

impl Reads {
    /// Both sets together.
    pub fn union(self, other: Self) -> Self {
        Self {
            request: self.request | other.request,
            deployment: self.deployment | other.deployment,
        }
    }

    /// Whether `request.<field>` is read.
    pub fn request_field(&self, field: &str) -> bool {
        bit(REQUEST_FIELDS, field).is_some_and(|b| self.request & b != 0)
    }

    /// Whether any of `deployment.<fields>` is read.
    pub fn any_deployment_field(&self, fields: &[&str]) -> bool {
        fields
            .iter()
            .filter_map(|f| bit(DEPLOYMENT_FIELDS, f))
            .any(|b| self.deployment & b != 0)
    }
}

fn bit(fields: &[&str], field: &str) -> Option<u64> {
    fields.iter().position(|f| *f == field).map(|i| 1u64 << i)
}

/// What a walk found.
#[derive(Default)]
struct Found {
    unknown: Vec<Unknown>,
    reads: Reads,
}

/// Checks `root` against the variables `allowed` (a subset of request, deployment, now), and
/// says which fields it reads.
pub(super) fn check(root: &IdedExpr, info: &SourceInfo, allowed: &[&str]) -> (Vec<Unknown>, Reads) {
    let mut out = Found::default();
    let mut bound: Vec<String> = Vec::new();
    walk(root, info, allowed, &mut bound, &mut out);
    (out.unknown, out.reads)
}

fn walk(
    e: &IdedExpr,
    info: &SourceInfo,
    allowed: &[&str],
    bound: &mut Vec<String>,
    out: &mut Found,
) {
    let at = || info.offset_for(e.id).map(|(start, _)| start);
    match &e.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => {
            if bound.iter().any(|b| b == name) || TYPE_NAMES.contains(&name.as_str()) {
                return;
            }
            match name.as_str() {
                "request" => out.reads.request = u64::MAX,
                "deployment" => out.reads.deployment = u64::MAX,
                _ => {}
            }
            if !allowed.contains(&name.as_str()) {
                let message = match name.as_str() {
                    "deployment" => {
                        "`deployment` is not available here (`when` and `affinity.key` are \
                         evaluated once per request)"
                            .to_owned()
                    }
                    _ => format!("unknown variable `{name}` (known: {})", allowed.join(", ")),
                };
                out.unknown.push(Unknown {
                    message,
                    offset: at(),
                });
            }
        }
        Expr::Select(sel) => {
            if let Expr::Ident(var) = &sel.operand.expr
                && !bound.iter().any(|b| b == var)
                && allowed.contains(&var.as_str())
            {
                let fields = match var.as_str() {
                    "request" => REQUEST_FIELDS,
                    "deployment" => DEPLOYMENT_FIELDS,
                    _ => NOW_FIELDS,
                };
                match (var.as_str(), bit(fields, &sel.field)) {
                    ("request", Some(b)) => out.reads.request |= b,
                    ("deployment", Some(b)) => out.reads.deployment |= b,
                    _ => {}
                }
                if !fields.contains(&sel.field.as_str()) {
                    out.unknown.push(Unknown {
                        message: format!(
                            "`{var}` has no field `{}` (fields: {})",
                            sel.field,
                            fields.join(", ")
                        ),
                        offset: at(),
                    });
                }
                return;
            }
            if let Expr::Select(inner) = &sel.operand.expr
                && inner.field == "tenant"
                && matches!(&inner.operand.expr, Expr::Ident(v) if v == "request" && !bound.iter().any(|b| b == v))
                && !TENANT_FIELDS.contains(&sel.field.as_str())
            {
                out.unknown.push(Unknown {
                    message: format!(
                        "`request.tenant` has no field `{}` (fields: {})",
                        sel.field,
                        TENANT_FIELDS.join(", ")
                    ),
                    offset: at(),
                });
                return;
            }
            walk(&sel.operand, info, allowed, bound, out);
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                walk(t, info, allowed, bound, out);
            }
            for a in &call.args {
                walk(a, info, allowed, bound, out);
            }
        }
        Expr::List(list) => {
            for el in &list.elements {
                walk(el, info, allowed, bound, out);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(m) = &entry.expr {
                    walk(&m.key, info, allowed, bound, out);
                    walk(&m.value, info, allowed, bound, out);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => walk(&f.value, info, allowed, bound, out),
                    EntryExpr::MapEntry(m) => {
                        walk(&m.key, info, allowed, bound, out);
                        walk(&m.value, info, allowed, bound, out);
                    }
                }
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, info, allowed, bound, out);
            walk(&c.accu_init, info, allowed, bound, out);
            let before = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v2) = &c.iter_var2 {
                bound.push(v2.clone());
            }
            bound.push(c.accu_var.clone());
            walk(&c.loop_cond, info, allowed, bound, out);
            walk(&c.loop_step, info, allowed, bound, out);
            walk(&c.result, info, allowed, bound, out);
            bound.truncate(before);
        }
    }
}

/// 1-based line and column of a character offset in `source`.
pub(super) fn line_col(source: &str, offset: u32) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, ch) in source.chars().enumerate() {
        if i as u32 >= offset {
            break;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}
