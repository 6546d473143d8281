//! Tests of what [`Conductor::request_input`] fills in: the headers rules read, found
//! in one pass as a lookup by name would find them, and the tenant, built once per snapshot
//! for the configured keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use datamind_llm::{Operation, ParsedRequest};
use http::{HeaderMap, HeaderValue};

use crate::auth::{Caller, TenantInfo};
use crate::conductor::Conductor;
use crate::config::parse_str;
use crate::telemetry::Metrics;

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { keys: [ { name: k, sha256: "0000000000000000000000000000000000000000000000000000000000000000", tenant: plain },
                { name: e, sha256: "1111111111111111111111111111111111111111111111111111111111111111", tenant: eu } ] }
tenants: [ { name: eu, residency: eu } ]
providers: [ { name: a, kind: mock } ]
models: [ { name: m, deployments: [ { provider: a, model: m } ] } ]
policy:
  headers: [x-priority, x-team]
  rules:
    - { name: tagged, when: '"cost" in request.tags', tags: { seen: "yes" } }
    - name: sticky
      when: 'request.headers["x-priority"] == "low" || request.tenant.residency == "eu"'
      affinity: { key: request.session }
"#;

fn conductor() -> Conductor {
    let config = parse_str(CONFIG, &|_| None).unwrap();
    Conductor::build(&config, &Metrics::new())
}

fn caller(tenant: &str, info: TenantInfo) -> Caller {
    Caller {
        key_id: "k".into(),
        key_name: "k".into(),
        tenant: tenant.into(),
        tenant_info: Arc::new(info),
        models: None,
        limits: Arc::default(),
        budget: None,
    }
}

/// A header map's fields as the listener hands them over.
fn fields(h: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    h.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
}

fn request() -> ParsedRequest {
    ParsedRequest::parse(Bytes::from_static(br#"{"model":"m","messages":[]}"#)).unwrap()
}

#[test]
fn headers_are_found_in_one_pass_as_by_name() {
    let c = conductor();
    let mut h = HeaderMap::new();
    h.insert("x-datamind-tags", HeaderValue::from_static("cost, batch,"));
    h.append("x-priority", HeaderValue::from_static("low"));
    h.append("x-priority", HeaderValue::from_static("high"));
    h.insert("x-session-id", HeaderValue::from_static("s-1"));
    h.insert("x-other", HeaderValue::from_static("ignored"));
    // Not text: a lookup by name finds no value, and neither does the pass.
    h.insert("x-team", HeaderValue::from_bytes(b"\xffteam").unwrap());
    let caller = caller("plain", TenantInfo::bare("plain"));
    let input = c.request_input(&caller, &request(), Operation::ChatCompletions, fields(&h));
    assert_eq!(input.tags, vec!["cost", "batch"]);
    assert_eq!(
        input.headers,
        vec![("x-priority".to_owned(), "low".to_owned())]
    );
    assert_eq!(input.session, "s-1");
    let none = c.request_input(
        &caller,
        &request(),
        Operation::ChatCompletions,
        fields(&HeaderMap::new()),
    );
    assert!(input.key.is_empty() && none.tags.is_empty() && none.headers.is_empty());
    assert_eq!(none.session, "");
}

#[test]
fn tenants_are_built_once_unless_the_caller_carries_more() {
    let c = conductor();
    let req = request();
    let h = HeaderMap::new();
    let input = |caller: &Caller| {
        c.request_input(caller, &req, Operation::ChatCompletions, fields(&h))
            .tenant
    };
    let plain = caller("plain", TenantInfo::bare("plain"));
    assert!(
        Arc::ptr_eq(&input(&plain), &input(&plain)),
        "a key's bare tenant is shared"
    );
    let eu = caller("eu", TenantInfo::bare("eu"));
    assert_eq!(input(&eu).residency, "eu", "the configured tenant wins");
    let mut info = TenantInfo::bare("plain");
    info.region = Some("westeurope".into());
    info.attributes = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
    let rich = input(&caller("plain", info));
    assert_eq!(rich.region, "westeurope");
    assert_eq!(rich.attributes(), [("tier".to_owned(), "gold".to_owned())]);
    let unknown = input(&caller("other", TenantInfo::bare("other")));
    assert_eq!(unknown.name, "other");
}
