//! Sending an encoded `ExportTraceServiceRequest` to the collector: OTLP/HTTP (protobuf
//! body, `POST …/v1/traces`) or OTLP/gRPC (`TraceService/Export`, the same bytes as the
//! message). The body is already protobuf, so nothing is converted here.
//!
//! Endpoint, headers and protocol follow the OTLP exporter specification: the config's
//! value first, then `OTEL_EXPORTER_OTLP_TRACES_*`, then `OTEL_EXPORTER_OTLP_*` (a generic
//! HTTP endpoint gets `/v1/traces` appended), then the defaults (`http://localhost:4318`,
//! `http://localhost:4317`). Header values from the variables are URL-decoded and
//! override configured ones of the same name.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_http::{HttpClient, hyper::HyperClient};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::ExportSettings;
use crate::config::OtlpProtocol;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A connection to the collector, built once on the exporter thread.
pub(super) enum Transport {
    Http {
        client: Box<dyn HttpClient>,
        uri: http::Uri,
        headers: http::HeaderMap,
    },
    Grpc {
        grpc: tonic::client::Grpc<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
}

// === impl Transport ===

impl Transport {
    /// Builds the transport (no connection is made yet). Must run inside a tokio runtime.
    pub(super) fn build(
        s: &ExportSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let headers = resolve_headers(&s.headers, &env)?;
        match s.protocol {
            OtlpProtocol::HttpProtobuf => {
                let url = http_endpoint(s.endpoint.as_deref(), &env);
                let uri: http::Uri = url
                    .parse()
                    .map_err(|e| format!("invalid OTLP endpoint `{url}`: {e}"))?;
                // https (e.g. Langfuse cloud) with the system's roots; plain http otherwise.
                let client: Box<dyn HttpClient> = match hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                {
                    Ok(tls) => Box::new(HyperClient::new(
                        tls.https_or_http().enable_http1().build(),
                        s.timeout,
                        None,
                    )),
                    Err(e) => {
                        tracing::warn!(error = %e, "no system CA roots: OTLP over https will fail");
                        Box::new(HyperClient::with_default_connector(s.timeout, None))
                    }
                };
                let mut map = http::HeaderMap::with_capacity(headers.len() + 1);
                map.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-protobuf"),
                );
                for (k, v) in headers {
                    map.insert(k, v);
                }
                Ok(Self::Http {
                    client,
                    uri,
                    headers: map,
                })
            }
            OtlpProtocol::Grpc => {
                let url = grpc_endpoint(s.endpoint.as_deref(), &env);
                let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                    .map_err(|e| format!("invalid OTLP endpoint `{url}`: {e}"))?
                    .timeout(s.timeout);
                let mut map = http::HeaderMap::with_capacity(headers.len());
                for (k, v) in headers {
                    map.insert(k, v);
                }
                Ok(Self::Grpc {
                    grpc: tonic::client::Grpc::new(endpoint.connect_lazy()),
                    metadata: tonic::metadata::MetadataMap::from_headers(map),
                })
            }
        }
    }

    /// Sends one export request; `Err` describes why it was not accepted.
    pub(super) async fn send(&mut self, body: Bytes) -> Result<(), String> {
        match self {
            Self::Http {
                client,
                uri,
                headers,
            } => {
                let mut req = http::Request::new(body);
                *req.method_mut() = http::Method::POST;
                *req.uri_mut() = uri.clone();
                *req.headers_mut() = headers.clone();
                let resp = client.send_bytes(req).await.map_err(|e| e.to_string())?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("collector answered HTTP {}", resp.status()))
                }
            }
            Self::Grpc { grpc, metadata } => {
                grpc.ready().await.map_err(|e| e.to_string())?;
                let mut req = tonic::Request::new(body);
                *req.metadata_mut() = metadata.clone();
                grpc.unary(req, PathAndQuery::from_static(EXPORT_PATH), RawCodec)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("collector answered gRPC {:?}: {}", s.code(), s.message()))
            }
        }
    }
}

/// The traces URL for OTLP/HTTP.
pub(super) fn http_endpoint(
    configured: Option<&str>,
    env: &impl Fn(&str) -> Option<String>,
) -> String {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(e) = configured.filter(|e| !e.is_empty()) {
        return e.to_owned();
    }
    if let Some(e) = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return e.trim().to_owned();
    }
    let base = set("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|| "http://localhost:4318".into());
    format!("{}/v1/traces", base.trim().trim_end_matches('/'))
}

/// The collector URL for OTLP/gRPC.
pub(super) fn grpc_endpoint(
    configured: Option<&str>,
    env: &impl Fn(&str) -> Option<String>,
) -> String {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    configured
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .or_else(|| set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .map_or_else(|| "http://localhost:4317".into(), |e| e.trim().to_owned())
}

/// Configured headers, then those of `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (or, when unset,
/// `OTEL_EXPORTER_OTLP_HEADERS`): `k=v,k2=v2`, values URL-decoded. Names are lower-cased
/// (gRPC metadata requires it). Never logs a value.
fn resolve_headers(
    configured: &HashMap<String, String>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
    let mut out = Vec::new();
    let mut add = |k: &str, v: &str, from: &str| -> Result<(), String> {
        let name = http::HeaderName::from_bytes(k.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("{from}: header name `{k}` is not valid"))?;
        let val = http::HeaderValue::from_str(v)
            .map_err(|_| format!("{from}: header `{k}` has an invalid value"))?;
        out.retain(|(n, _): &(http::HeaderName, _)| *n != name);
        out.push((name, val));
        Ok(())
    };
    for (k, v) in configured {
        add(k, v, "telemetry.traces.headers")?;
    }
    let var = [
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ]
    .into_iter()
    .find_map(|k| env(k).map(|v| (k, v)));
    if let Some((from, list)) = var {
        for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let v = url_decode(v.trim());
            if !k.trim().is_empty() && !v.is_empty() {
                add(k, &v, from)?;
            }
        }
    }
    Ok(out)
}

/// `%XX` escapes decoded; a malformed escape leaves the value as it was.
fn url_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(c) => {
                    out.push(c);
                    i += 3;
                    continue;
                }
                None => return v.to_owned(),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| v.to_owned())
}

/// A gRPC codec for bytes that already are the protobuf message; the answer
/// (`ExportTraceServiceResponse`) is read and ignored.
struct RawCodec;

struct RawEncoder;

struct IgnoreDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = IgnoreDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> IgnoreDecoder {
        IgnoreDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for IgnoreDecoder {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoints_follow_config_then_signal_then_generic_variables() {
        assert_eq!(
            http_endpoint(None, &env(&[])),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            http_endpoint(
                None,
                &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")])
            ),
            "http://c:4318/v1/traces"
        );
        let both = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
        ];
        assert_eq!(http_endpoint(None, &env(&both)), "http://t:1/custom");
        assert_eq!(
            http_endpoint(Some("http://cfg/v1/traces"), &env(&both)),
            "http://cfg/v1/traces"
        );
        assert_eq!(grpc_endpoint(None, &env(&[])), "http://localhost:4317");
        assert_eq!(grpc_endpoint(None, &env(&both)), "http://t:1/custom");
    }

    #[test]
    fn variable_headers_are_url_decoded_and_override_the_config() {
        let configured = HashMap::from([
            ("Authorization".to_owned(), "Basic cfg".to_owned()),
            ("x-team".to_owned(), "a".to_owned()),
        ]);
        let h = resolve_headers(
            &configured,
            &env(&[(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Basic%20env, x-extra = 1,broken",
            )]),
        )
        .unwrap();
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| n.as_str() == k)
                .map(|(_, v)| v.to_str().unwrap_or(""))
        };
        assert_eq!(get("authorization"), Some("Basic env"));
        assert_eq!(get("x-team"), Some("a"));
        assert_eq!(get("x-extra"), Some("1"));
        assert_eq!(h.len(), 3);
        assert_eq!(url_decode("v%XX1"), "v%XX1");
    }
}
