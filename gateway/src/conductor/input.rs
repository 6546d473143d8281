//! What rules see of a request ([`RequestInput`]), built per request from the caller, the
//! parsed body and the headers: only the fields some rule reads, the headers found in one
//! pass, the tenant built once per snapshot.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use datamind_llm::policy::prefix::PrefixKey;
use datamind_llm::policy::{Reads, RequestInput, TenantInput};
use datamind_llm::{Operation, ParsedRequest};

use super::Conductor;
use crate::auth::Caller;
use crate::config::Config;

/// The tenants rules see, by name: the configured ones (`true`), and the bare tenants of the
/// configured keys (`false`: what a caller of an unconfigured tenant carries).
pub(super) type Tenants = ById<(Arc<TenantInput>, bool)>;

/// A table looked up per request by a short name (tenant, deployment id), built once per
/// snapshot: FNV-hashed ([`Fnv`]).
pub(super) type ById<T> = HashMap<String, T, BuildHasherDefault<Fnv>>;

use crate::fnv::Fnv;

impl Conductor {
    /// The caller's tenant as rules see it: the configured tenant, else what the caller
    /// carries (a bare tenant has no attributes).
    pub fn tenant(&self, caller: &Caller) -> Arc<TenantInput> {
        let t = &caller.tenant_info;
        let bare = t.residency.is_none() && t.region.is_none() && t.attributes.is_empty();
        match self.tenants.get(&*caller.tenant) {
            Some((input, configured)) if *configured || bare => input.clone(),
            _ => Arc::new(TenantInput::new(
                &*caller.tenant,
                t.residency.clone().unwrap_or_default(),
                t.region.clone().unwrap_or_default(),
                &t.attributes,
            )),
        }
    }

    /// A configured tenant by name (bare when unknown).
    pub fn tenant_named(&self, name: &str) -> Arc<TenantInput> {
        self.tenants
            .get(name)
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| Arc::new(TenantInput::new(name, "", "", &BTreeMap::new())))
    }

    /// What rules see of a request with `headers`. Only what some rule reads is filled in:
    /// the key name, tags, selected headers and session of a policy that reads none of them
    /// stay empty (no header lookups, no copies); the ones read are found in one pass over
    /// the headers (a lookup by name costs more than the pass).
    pub fn request_input<'h>(
        &self,
        caller: &Caller,
        req: &ParsedRequest,
        op: Operation,
        headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>,
    ) -> RequestInput {
        let reads = self.reads;
        let (tags, session) = (reads.request_field("tags"), reads.request_field("session"));
        let selected = reads.request_field("headers");
        let mut found = Found::default();
        if tags || session || selected {
            for (name, value) in headers {
                // Like a lookup by name: the first value counts, even when not text.
                // Names as sent (HTTP/1.1 keeps the client's case); configured ones are
                // lowercase.
                let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
                let text = || header_text(value);
                if tags && is(TAGS_HEADER) && found.tags.is_none() {
                    found.tags = Some(text());
                }
                if session && is(SESSION_HEADER) && found.session.is_none() {
                    found.session = Some(text());
                }
                if selected
                    && let Some(i) = self.headers.iter().position(|h| is(h))
                    && !found.headers.iter().any(|(j, _)| *j == i)
                {
                    found.headers.push((i, text()));
                }
            }
        }
        let lookup = |name: &str| {
            let value = match name {
                TAGS_HEADER if tags => found.tags.flatten(),
                SESSION_HEADER if session => found.session.flatten(),
                n => found
                    .headers
                    .iter()
                    .find(|(i, _)| self.headers[*i] == n)
                    .and_then(|(_, v)| *v),
            };
            value.map(str::to_owned)
        };
        self.input_with(
            self.tenant(caller),
            &caller.key_name,
            req,
            op,
            &lookup,
            reads,
        )
    }

    /// What rules see of a request from `tenant` with key `key`, every field filled in (the
    /// explain endpoint shows them all).
    pub fn input_for(
        &self,
        tenant: Arc<TenantInput>,
        key: &str,
        req: &ParsedRequest,
        op: Operation,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> RequestInput {
        let all = Reads {
            request: u64::MAX,
            deployment: u64::MAX,
        };
        self.input_with(tenant, key, req, op, header, all)
    }

    fn input_with(
        &self,
        tenant: Arc<TenantInput>,
        key: &str,
        req: &ParsedRequest,
        op: Operation,
        header: &dyn Fn(&str) -> Option<String>,
        reads: Reads,
    ) -> RequestInput {
        let read = |field: &str| reads.request_field(field);
        RequestInput {
            model: req.model.clone(),
            operation: op.as_str(),
            tenant,
            key: if read("key") {
                key.to_owned()
            } else {
                String::new()
            },
            estimated_prompt_tokens: req.estimated_prompt_tokens(),
            max_tokens: req.max_tokens,
            stream: req.stream,
            tags: read("tags")
                .then(|| header(TAGS_HEADER))
                .flatten()
                .map(|v| {
                    v.split(',')
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            headers: if read("headers") {
                self.headers
                    .iter()
                    .filter_map(|h| header(h).map(|v| (h.clone(), v)))
                    .collect()
            } else {
                Vec::new()
            },
            session: read("session")
                .then(|| header(SESSION_HEADER))
                .flatten()
                .unwrap_or_default(),
            prefix: if read("prefix") {
                PrefixKey::of(req, self.prefix_bytes)
            } else {
                PrefixKey::default()
            },
        }
    }
}

const TAGS_HEADER: &str = "x-datamind-tags";
const SESSION_HEADER: &str = "x-session-id";

/// The request headers rules read, found in one pass (first value of each).
#[derive(Default)]
struct Found<'h> {
    tags: Option<Option<&'h str>>,
    session: Option<Option<&'h str>>,
    /// `(index in policy.headers, value)`.
    headers: Vec<(usize, Option<&'h str>)>,
}

pub(super) fn tenants(config: &Config) -> Tenants {
    config
        .tenants
        .iter()
        .map(|t| {
            let input = TenantInput::new(
                t.name.as_str(),
                t.residency.clone().unwrap_or_default(),
                t.region.clone().unwrap_or_default(),
                &t.attributes,
            );
            (t.name.clone(), (Arc::new(input), true))
        })
        .chain(config.auth.keys.iter().map(|k| {
            let bare = TenantInput::new(k.tenant.as_str(), "", "", &BTreeMap::new());
            (k.tenant.clone(), (Arc::new(bare), false))
        }))
        .chain(std::iter::once((
            "anonymous".to_owned(),
            (
                Arc::new(TenantInput::new("anonymous", "", "", &BTreeMap::new())),
                false,
            ),
        )))
        .fold(HashMap::default(), |mut m, (name, t)| {
            // A configured tenant wins over a key's bare one.
            m.entry(name).or_insert(t);
            m
        })
}

/// A header value as text, as `http::HeaderValue::to_str` has it: visible ASCII and tabs.
fn header_text(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}
