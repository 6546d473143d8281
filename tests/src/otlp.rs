//! A real OTLP trace receiver: OTLP/gRPC and OTLP/HTTP (protobuf) on one port.
//!
//! It decodes `ExportTraceServiceRequest`s with `opentelemetry-proto`'s generated types,
//! exactly as a collector would, and keeps every span (with its resource) and every export
//! call (transport, path, headers) for the test to inspect.
//!
//! - gRPC: HTTP/2 (h2c) `POST /opentelemetry.proto.collector.trace.v1.TraceService/Export`,
//!   length-prefixed message, answered with an empty response and `grpc-status: 0`.
//! - HTTP: `POST` to any path ending in `/v1/traces` (so Langfuse's
//!   `/api/public/otel/v1/traces` works too), `application/x-protobuf` body.
//!
//! With [`OtlpReceiver::require_header`], exports without that exact header value are
//! refused (401 / gRPC `UNAUTHENTICATED`), like Langfuse refuses a wrong key.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::Value;

const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// One received span, flattened for assertions.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP `SpanKind`: 2 server, 3 client.
    pub kind: i32,
    pub attributes: BTreeMap<String, Value>,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Resource attributes of the batch it came in.
    pub resource: BTreeMap<String, Value>,
    /// `grpc` or `http`.
    pub transport: &'static str,
}

impl ReceivedSpan {
    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// An integer attribute.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }
}

/// One export call as received.
#[derive(Clone, Debug)]
pub struct ExportCall {
    pub transport: &'static str,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub spans: usize,
    /// Refused for a missing or wrong required header.
    pub refused: bool,
}

#[derive(Default)]
struct State {
    spans: Vec<ReceivedSpan>,
    calls: Vec<ExportCall>,
    required: Option<(String, String)>,
}

/// The running receiver; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// === impl OtlpReceiver ===

impl OtlpReceiver {
    /// Listens on a free 127.0.0.1 port.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// Refuse exports that lack `name: value`.
    pub fn require_header(&self, name: &str, value: &str) {
        self.lock().required = Some((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// `http://ADDR` (the gRPC endpoint).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR{path}` (an HTTP endpoint; the path should end in `/v1/traces`).
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// Every export call received so far.
    pub fn calls(&self) -> Vec<ExportCall> {
        self.lock().calls.clone()
    }

    /// Waits until `pred` holds over the received spans; returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Result<Vec<ReceivedSpan>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if pred(&spans) {
                return Ok(spans);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "waited {timeout:?} for {what}; received {} spans: {:#?}",
                    spans.len(),
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let grpc = path == GRPC_PATH;
    let transport = if grpc { "grpc" } else { "http" };
    if req.method() != hyper::Method::POST || !(grpc || path.ends_with("/v1/traces")) {
        return Ok(plain(404, "not an OTLP traces endpoint"));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(400, "unreadable body")),
    };
    let refused = {
        let st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.required
            .as_ref()
            .is_some_and(|(name, value)| !headers.iter().any(|(k, v)| k == name && v == value))
    };
    let decoded = if grpc {
        decode_grpc(&body)
    } else {
        decode_http(&body)
    };
    let Ok(export) = decoded else {
        return Ok(plain(400, "not an ExportTraceServiceRequest"));
    };
    let spans = flatten(&export, transport);
    {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.calls.push(ExportCall {
            transport,
            path,
            headers,
            spans: spans.len(),
            refused,
        });
        if !refused {
            st.spans.extend(spans);
        }
    }
    Ok(match (grpc, refused) {
        (false, true) => plain(401, "invalid credentials"),
        (false, false) => Response::builder()
            .status(200)
            .header("content-type", "application/x-protobuf")
            .body(full(ExportTraceServiceResponse::default().encode_to_vec()))
            .unwrap_or_else(|_| plain(500, "")),
        (true, refused) => grpc_reply(if refused { 16 } else { 0 }),
    })
}

fn decode_http(body: &Bytes) -> Result<ExportTraceServiceRequest> {
    ExportTraceServiceRequest::decode(body.clone()).context("decoding protobuf")
}

fn decode_grpc(body: &Bytes) -> Result<ExportTraceServiceRequest> {
    let mut b = body.clone();
    if b.len() < 5 {
        bail!("short gRPC frame");
    }
    let compressed = b.get_u8();
    let len = b.get_u32() as usize;
    if compressed != 0 || b.len() < len {
        bail!("unsupported gRPC frame");
    }
    ExportTraceServiceRequest::decode(b.slice(..len)).context("decoding protobuf")
}

fn grpc_reply(status: u32) -> Response<Body> {
    let msg = ExportTraceServiceResponse::default().encode_to_vec();
    let mut framed = Vec::with_capacity(5 + msg.len());
    framed.push(0);
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(&msg);
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", status.into());
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = if status == 0 {
        vec![
            Ok(Frame::data(Bytes::from(framed))),
            Ok(Frame::trailers(trailers)),
        ]
    } else {
        vec![Ok(Frame::trailers(trailers))]
    };
    let body = StreamBody::new(futures_util::stream::iter(frames));
    Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(BodyExt::boxed(body))
        .unwrap_or_else(|_| plain(500, ""))
}

fn plain(status: u16, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(full(text.as_bytes().to_vec()))
        .unwrap_or_else(|_| Response::new(full(Vec::new())))
}

fn full(v: Vec<u8>) -> Body {
    BodyExt::boxed(Full::new(Bytes::from(v)))
}

fn flatten(req: &ExportTraceServiceRequest, transport: &'static str) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                out.push(ReceivedSpan {
                    trace_id: hex::encode(&s.trace_id),
                    span_id: hex::encode(&s.span_id),
                    parent_span_id: hex::encode(&s.parent_span_id),
                    name: s.name.clone(),
                    kind: s.kind,
                    attributes: attrs(&s.attributes),
                    status_code: s.status.as_ref().map_or(0, |st| st.code),
                    start_unix_nano: s.start_time_unix_nano,
                    end_unix_nano: s.end_time_unix_nano,
                    resource: resource.clone(),
                    transport,
                });
            }
        }
    }
    out
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, value)))
        .collect()
}

fn value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::from(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(*d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::BytesValue(b)) => Value::from(hex::encode(b)),
        _ => Value::Null,
    }
}

/// A "collector" that accepts TCP connections and never answers: exports hang until the
/// exporter's own timeout. Stops when dropped.
pub struct StalledCollector {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StalledCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StalledCollector {
    /// Listens on a free 127.0.0.1 port; every connection is held open, never read.
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
