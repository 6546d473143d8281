//! The typed inputs of placement rules and their CEL views.
//!
//! Rules see three variables:
//! - `request` ([`RequestInput`]): once per request;
//! - `deployment` ([`DeploymentInput`] with live [`Stats`]): once per candidate;
//! - `now` ([`Now`]): the evaluation time.
//!
//! The views resolve a field only when an expression reads it (no map is built per
//! request), and strings are borrowed, not copied. [`REQUEST_FIELDS`], [`TENANT_FIELDS`],
//! [`DEPLOYMENT_FIELDS`] and [`NOW_FIELDS`] list what exists; a rule naming anything else
//! does not compile.

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::ExecutionError;
use cel::common::traits::Indexer;
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelString, Type};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

/// Fields of `request`.
pub const REQUEST_FIELDS: &[&str] = &[
    "model",
    "operation",
    "tenant",
    "key",
    "estimated_prompt_tokens",
    "max_tokens",
    "stream",
    "tags",
    "headers",
    "session",
    "prefix",
];
/// Fields of `request.tenant`.
pub const TENANT_FIELDS: &[&str] = &["name", "residency", "region", "attributes"];
/// Fields of `deployment`.
pub const DEPLOYMENT_FIELDS: &[&str] = &[
    "name",
    "group",
    "provider",
    "kind",
    "cloud",
    "region",
    "model",
    "price_input",
    "price_output",
    "price_cached_input",
    "context_window",
    "labels",
    "weight",
    "fallback",
    "healthy",
    "cooling_down",
    "cooldown_left_ms",
    "in_flight",
    "max_in_flight",
    "queue_depth",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "samples",
];
/// Fields of `deployment` the caller derives from its latency and error averages (the rest
/// of [`Stats`] are counters and the cooldown): see [`super::Rule::reads_ewma`].
pub const EWMA_FIELDS: &[&str] = &[
    "healthy",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "samples",
];
/// Fields of `now`.
pub const NOW_FIELDS: &[&str] = &["unix", "hour", "minute", "weekday"];

/// Who is calling: the tenant's placement attributes. Built once per config snapshot.
#[derive(Debug)]
pub struct TenantInput {
    /// Tenant name.
    pub name: String,
    /// Data residency, e.g. `eu` (empty when unknown).
    pub residency: String,
    /// Home region, e.g. `westeurope` (empty when unknown).
    pub region: String,
    attributes: Box<dyn Val>,
    attribute_pairs: Vec<(String, String)>,
}

impl TenantInput {
    /// A tenant with its free-form attributes.
    pub fn new(
        name: impl Into<String>,
        residency: impl Into<String>,
        region: impl Into<String>,
        attributes: &BTreeMap<String, String>,
    ) -> Self {
        Self {
            name: name.into(),
            residency: residency.into(),
            region: region.into(),
            attributes: string_map(attributes.iter()),
            attribute_pairs: attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The attributes, in key order.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attribute_pairs
    }
}

/// What a rule knows about the request.
#[derive(Debug, Clone)]
pub struct RequestInput {
    /// The client-facing model asked for.
    pub model: String,
    /// `chat`, `completions` or `embeddings`.
    pub operation: &'static str,
    /// The caller's tenant.
    pub tenant: Arc<TenantInput>,
    /// The API key's name.
    pub key: String,
    /// Prompt size estimate (bytes / 4).
    pub estimated_prompt_tokens: u64,
    /// `max_tokens` / `max_completion_tokens`, when given.
    pub max_tokens: Option<u64>,
    /// A streamed answer was asked for.
    pub stream: bool,
    /// Client tags (`x-datamind-tags: a,b`).
    pub tags: Vec<String>,
    /// The headers the policy selected (`policy.headers`), names in lower case.
    pub headers: Vec<(String, String)>,
    /// A session id (`x-session-id`), or the empty string.
    pub session: String,
    /// The prompt-prefix key ([`super::prefix`]), computed when a rule reads it.
    pub prefix: super::prefix::PrefixKey,
}

/// What a deployment is: fixed for one config snapshot.
#[derive(Debug)]
pub struct DeploymentInput {
    /// `provider/model`.
    pub name: String,
    /// The model group it serves.
    pub group: String,
    /// Provider name.
    pub provider: String,
    /// Provider kind (`openai`, `bedrock`, …).
    pub kind: String,
    /// `aws`, `gcp`, `azure`, `onprem`, `cloudflare`, … (empty when not set).
    pub cloud: String,
    /// e.g. `us-east-1`, `westeurope` (empty when not set).
    pub region: String,
    /// The upstream model name.
    pub model: String,
    /// USD per million input tokens (0 when unknown).
    pub price_input: f64,
    /// USD per million output tokens (0 when unknown).
    pub price_output: f64,
    /// USD per million cached input tokens (0 when unknown).
    pub price_cached_input: f64,
    /// Context window in tokens (0 when unknown).
    pub context_window: u64,
    /// Round-robin weight.
    pub weight: u32,
    /// Concurrency cap (0 = none).
    pub max_in_flight: u32,
    labels: Box<dyn Val>,
    label_pairs: Vec<(String, String)>,
    /// The fixed fields as CEL values, built once: read without allocating.
    statics: Vec<Box<dyn Val>>,
}

/// The placement facts of a deployment that do not change with traffic.
#[derive(Debug, Default, Clone)]
pub struct Placement {
    /// Cloud.
    pub cloud: String,
    /// Region.
    pub region: String,
    /// Context window in tokens.
    pub context_window: u64,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
}

impl DeploymentInput {
    /// Describes one deployment.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        group: impl Into<String>,
        provider: impl Into<String>,
        kind: impl Into<String>,
        model: impl Into<String>,
        placement: &Placement,
        prices: (f64, f64, f64),
        weight: u32,
        max_in_flight: u32,
    ) -> Self {
        let mut d = Self {
            name: name.into(),
            group: group.into(),
            provider: provider.into(),
            kind: kind.into(),
            cloud: placement.cloud.clone(),
            region: placement.region.clone(),
            model: model.into(),
            price_input: prices.0,
            price_output: prices.1,
            price_cached_input: prices.2,
            context_window: placement.context_window,
            weight,
            max_in_flight,
            labels: string_map(placement.labels.iter()),
            label_pairs: placement
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            statics: Vec::new(),
        };
        d.statics = STATIC_FIELDS
            .iter()
            .map(|f| match deployment_static(&d, f) {
                Some(v) => v,
                None => Box::new(CelBool::from(false)) as Box<dyn Val>,
            })
            .collect();
        d
    }

    /// The labels, in key order.
    pub fn labels(&self) -> &[(String, String)] {
        &self.label_pairs
    }
}

/// Live statistics of a deployment at decision time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Not cooling down and its recent error rate is below one half.
    pub healthy: bool,
    /// Skipped after failures.
    pub cooling_down: bool,
    /// Cooldown left, ms.
    pub cooldown_left_ms: u64,
    /// Requests being served now.
    pub in_flight: u64,
    /// Requests beyond its `max_in_flight` (0 without a cap).
    pub queue_depth: u64,
    /// EWMA of the failure rate, 0..1.
    pub error_rate: f64,
    /// EWMA estimate of the median whole-attempt latency, ms.
    pub latency_p50_ms: f64,
    /// EWMA estimate of the 95th percentile latency, ms.
    pub latency_p95_ms: f64,
    /// EWMA estimate of the median time to first token, ms.
    pub ttft_p50_ms: f64,
    /// EWMA estimate of the 95th percentile time to first token, ms.
    pub ttft_p95_ms: f64,
    /// Attempts measured so far.
    pub samples: u64,
    /// At its concurrency cap.
    pub at_capacity: bool,
}

/// The evaluation time, UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Now {
    /// Unix seconds.
    pub unix: i64,
}

impl Now {
    /// From Unix milliseconds.
    pub fn from_unix_ms(ms: u64) -> Self {
        Self {
            unix: (ms / 1000) as i64,
        }
    }
    pub(super) fn hour(self) -> i64 {
        self.unix.rem_euclid(86_400) / 3_600
    }
    pub(super) fn minute(self) -> i64 {
        self.unix.rem_euclid(3_600) / 60
    }
    /// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
    pub(super) fn weekday(self) -> i64 {
        (self.unix.div_euclid(86_400) + 4).rem_euclid(7)
    }
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Box<dyn Val> {
    let map: std::collections::HashMap<CelMapKey<'static>, Box<dyn Val>> = pairs
        .map(|(k, v)| {
            (
                CelMapKey::from(k.clone()),
                Box::new(CelString::from(v.clone())) as Box<dyn Val>,
            )
        })
        .collect();
    Box::new(CelMap::from(map))
}

// === CEL views ===

static REQUEST_TYPE: Type = Type::new_struct_type("datamind.Request");
static TENANT_TYPE: Type = Type::new_struct_type("datamind.Tenant");
static DEPLOYMENT_TYPE: Type = Type::new_struct_type("datamind.Deployment");
static NOW_TYPE: Type = Type::new_struct_type("datamind.Now");

fn field_name(idx: &dyn Val) -> Result<&str, ExecutionError> {
    idx.downcast_ref::<CelString<'_>>()
        .map(|s| s.inner())
        .ok_or_else(|| ExecutionError::no_such_key("?"))
}

fn int(v: u64) -> CowVal<'static, 'static> {
    CowVal::owned(CelInt::from(v.min(i64::MAX as u64) as i64))
}
fn double(v: f64) -> CowVal<'static, 'static> {
    CowVal::owned(CelDouble::from(v))
}
fn boolean(v: bool) -> CowVal<'static, 'static> {
    CowVal::owned(CelBool::from(v))
}

macro_rules! view_val {
    ($view:ident, $ty:expr) => {
        impl Val for $view<'_> {
            fn get_type(&self) -> &Type {
                &$ty
            }
            fn cel_type() -> &'static Type {
                &$ty
            }
            fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
            where
                Self: 'v,
            {
                Some(self)
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
            where
                Self: 'v,
            {
                Box::new(*self)
            }
        }
    };
}

/// `request` (and `now`) for one evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a>(pub &'a RequestInput);
#[derive(Debug, Clone, Copy)]
struct TenantView<'a>(&'a TenantInput);
/// `deployment` for one evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeploymentView<'a> {
    pub info: &'a DeploymentInput,
    pub stats: &'a Stats,
    pub fallback: bool,
}
#[derive(Debug, Clone, Copy)]
pub(crate) struct NowView<'a>(pub &'a Now);

view_val!(RequestView, REQUEST_TYPE);
view_val!(TenantView, TENANT_TYPE);
view_val!(DeploymentView, DEPLOYMENT_TYPE);
view_val!(NowView, NOW_TYPE);

fn request_field<'a>(r: &'a RequestInput, name: &str) -> Result<CowVal<'a, 'a>, ExecutionError> {
    Ok(match name {
        "model" => CowVal::owned(CelString::from(r.model.as_str())),
        "operation" => CowVal::owned(CelString::from(r.operation)),
        "tenant" => CowVal::owned(TenantView(&r.tenant)),
        "key" => CowVal::owned(CelString::from(r.key.as_str())),
        "estimated_prompt_tokens" => int(r.estimated_prompt_tokens),
        "max_tokens" => match r.max_tokens {
            Some(m) => int(m),
            None => return Err(ExecutionError::no_such_key("max_tokens")),
        },
        "stream" => boolean(r.stream),
        "tags" => CowVal::owned(CelList::from(
            r.tags
                .iter()
                .map(|t| Box::new(CelString::from(t.as_str())) as Box<dyn Val + 'a>)
                .collect::<Vec<_>>(),
        )),
        "headers" => {
            let map: std::collections::HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = r
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        CelMapKey::from(k.as_str()),
                        Box::new(CelString::from(v.as_str())) as Box<dyn Val + 'a>,
                    )
                })
                .collect();
            CowVal::owned(CelMap::from(map))
        }
        "session" => CowVal::owned(CelString::from(r.session.as_str())),
        "prefix" => CowVal::owned(CelString::from(r.prefix.get())),
        other => return Err(ExecutionError::no_such_key(other)),
    })
}

fn tenant_field<'a>(t: &'a TenantInput, name: &str) -> Result<CowVal<'a, 'a>, ExecutionError> {
    Ok(match name {
        "name" => CowVal::owned(CelString::from(t.name.as_str())),
        "residency" => CowVal::owned(CelString::from(t.residency.as_str())),
        "region" => CowVal::owned(CelString::from(t.region.as_str())),
        "attributes" => CowVal::Borrowed(t.attributes.as_ref()),
        other => return Err(ExecutionError::no_such_key(other)),
    })
}

/// Fields of `deployment` that do not change with traffic, in `statics` order.
const STATIC_FIELDS: [&str; 12] = [
    "name",
    "group",
    "provider",
    "kind",
    "cloud",
    "region",
    "model",
    "price_input",
    "price_output",
    "price_cached_input",
    "context_window",
    "weight",
];

fn deployment_static(d: &DeploymentInput, name: &str) -> Option<Box<dyn Val>> {
    let s = |v: &str| Some(Box::new(CelString::from(v.to_owned())) as Box<dyn Val>);
    match name {
        "name" => s(&d.name),
        "group" => s(&d.group),
        "provider" => s(&d.provider),
        "kind" => s(&d.kind),
        "cloud" => s(&d.cloud),
        "region" => s(&d.region),
        "model" => s(&d.model),
        "price_input" => Some(Box::new(CelDouble::from(d.price_input))),
        "price_output" => Some(Box::new(CelDouble::from(d.price_output))),
        "price_cached_input" => Some(Box::new(CelDouble::from(d.price_cached_input))),
        "context_window" => Some(Box::new(CelInt::from(
            d.context_window.min(i64::MAX as u64) as i64,
        ))),
        "weight" => Some(Box::new(CelInt::from(i64::from(d.weight)))),
        _ => None,
    }
}

fn deployment_field<'a>(
    d: &'a DeploymentInput,
    s: &'a Stats,
    fallback: bool,
    name: &str,
) -> Result<CowVal<'a, 'a>, ExecutionError> {
    if let Some(i) = STATIC_FIELDS.iter().position(|f| *f == name)
        && let Some(v) = d.statics.get(i)
    {
        return Ok(CowVal::Borrowed(v.as_ref()));
    }
    Ok(match name {
        "labels" => CowVal::Borrowed(d.labels.as_ref()),
        "max_in_flight" => int(u64::from(d.max_in_flight)),
        "fallback" => boolean(fallback),
        "healthy" => boolean(s.healthy),
        "cooling_down" => boolean(s.cooling_down),
        "cooldown_left_ms" => int(s.cooldown_left_ms),
        "in_flight" => int(s.in_flight),
        "queue_depth" => int(s.queue_depth),
        "error_rate" => double(s.error_rate),
        "latency_p50_ms" => double(s.latency_p50_ms),
        "latency_p95_ms" => double(s.latency_p95_ms),
        "ttft_p50_ms" => double(s.ttft_p50_ms),
        "ttft_p95_ms" => double(s.ttft_p95_ms),
        "samples" => int(s.samples),
        other => return Err(ExecutionError::no_such_key(other)),
    })
}

fn now_field(n: Now, name: &str) -> Result<CowVal<'static, 'static>, ExecutionError> {
    let v = match name {
        "unix" => n.unix,
        "hour" => n.hour(),
        "minute" => n.minute(),
        "weekday" => n.weekday(),
        other => return Err(ExecutionError::no_such_key(other)),
    };
    Ok(CowVal::owned(CelInt::from(v)))
}

macro_rules! view_indexer {
    ($view:ident, |$this:ident, $name:ident| $body:expr) => {
        impl Indexer for $view<'_> {
            fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
            where
                Self: 'v,
            {
                let $this = *self;
                let $name = field_name(idx)?;
                $body
            }
            fn steal<'v>(
                self: Box<Self>,
                idx: &dyn Val,
            ) -> Result<Box<dyn Val + 'v>, ExecutionError>
            where
                Self: 'v,
            {
                self.get(idx).map(CowVal::into_owned)
            }
        }
    };
}

view_indexer!(RequestView, |v, name| request_field(v.0, name));
view_indexer!(TenantView, |v, name| tenant_field(v.0, name));
view_indexer!(DeploymentView, |v, name| deployment_field(
    v.info, v.stats, v.fallback, name
));
view_indexer!(NowView, |v, name| now_field(*v.0, name));

/// Resolves `request` and `now`.
pub(crate) struct RequestScope<'a> {
    pub request: RequestView<'a>,
    pub now: NowView<'a>,
}

// CEL looks a qualified name such as `deployment.cloud` up whole first, then by its
// prefixes: answering the whole name here skips the second lookup and the field selection.

impl VariableResolver for RequestScope<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        if let Some(field) = variable.strip_prefix("request.") {
            let r = self.request.0;
            return match field.strip_prefix("tenant.") {
                Some(t) => tenant_field(&r.tenant, t).ok(),
                None => request_field(r, field).ok(),
            };
        }
        if let Some(field) = variable.strip_prefix("now.") {
            return now_field(*self.now.0, field).ok();
        }
        match variable {
            "request" => Some(CowVal::Borrowed(&self.request)),
            "now" => Some(CowVal::Borrowed(&self.now)),
            _ => None,
        }
    }
}

impl VariableResolver for DeploymentView<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        if let Some(field) = variable.strip_prefix("deployment.") {
            return deployment_field(self.info, self.stats, self.fallback, field).ok();
        }
        (variable == "deployment").then_some(CowVal::Borrowed(self))
    }
}
