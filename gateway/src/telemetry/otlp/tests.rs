//! Unit tests of the OTLP pipeline: settings, sampling, and the hand-written encoding
//! decoded with the generated OTLP types.

use super::*;
use datamind_llm::Usage;

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn off_unless_configured_or_an_endpoint_variable_is_set() {
    let t = TracesConfig::default();
    assert!(!enabled(&t, env(&[])));
    assert!(enabled(
        &t,
        env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
    ));
    assert!(enabled(
        &t,
        env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces"
        )])
    ));
    assert!(!enabled(
        &t,
        env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true")
        ])
    ));
    assert!(!enabled(
        &t,
        env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "none")
        ])
    ));
    let off = TracesConfig {
        enabled: Some(false),
        ..TracesConfig::default()
    };
    assert!(!enabled(
        &off,
        env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
    ));
    let on = TracesConfig {
        enabled: Some(true),
        ..TracesConfig::default()
    };
    assert!(enabled(&on, env(&[])));
}

#[test]
fn protocol_and_service_name_fall_back_to_the_standard_variables() {
    let t = TracesConfig::default();
    let s = settings(&t, env(&[]));
    assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(s.service_name.as_deref(), Some("datamind-gateway"));
    let s = settings(
        &t,
        env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "gw-eu"),
        ]),
    );
    assert_eq!(s.protocol, OtlpProtocol::Grpc);
    assert_eq!(s.service_name.as_deref(), Some("gw-eu"));
    let s = settings(
        &t,
        env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ]),
    );
    assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
    let pinned = TracesConfig {
        protocol: Some(OtlpProtocol::Grpc),
        ..TracesConfig::default()
    };
    assert_eq!(
        settings(
            &pinned,
            env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])
        )
        .protocol,
        OtlpProtocol::Grpc
    );
}

/// The hand-written encoding decodes with the generated OTLP types into exactly the
/// spans the README documents.
#[test]
fn encoded_batch_decodes_as_otlp_with_every_attribute() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message as _;

    const CONFIG: &str = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
providers: [ { name: up, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: x } ]
models: [ { name: gpt-4o-mini, deployments: [ { provider: up, model: mock-chat-a } ] } ]
"#;
    let config = crate::config::parse_str(CONFIG, &|_| None).unwrap();
    let snapshot = crate::snapshot::Snapshot::build(
        config,
        &crate::snapshot::HealthRegistry::default(),
        &Metrics::new(),
    );
    let d = snapshot.groups["gpt-4o-mini"].deployments[0].clone();
    let req = datamind_llm::ParsedRequest::parse(bytes::Bytes::from_static(
        br#"{"model":"gpt-4o-mini","max_tokens":20,"temperature":0.5,"messages":[]}"#,
    ))
    .unwrap();
    let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".as_slice();
    let t0 = std::time::Instant::now();
    let mut t = *begin(None, Some(tp), Some(b"k=v"), t0).unwrap();
    // Tracing off: only propagation. Make a recording trace the way `begin` would.
    assert!(!t.is_recording());
    t = RequestTrace::recording(parse_traceparent(tp), Some("k=v".into()), t0);
    t.note_request(datamind_llm::Operation::ChatCompletions, &req, false);
    t.begin_attempt(&d, t0 + Duration::from_millis(1));
    t.end_attempt(Duration::from_millis(2), "retry", Some(503), Some("503"));
    t.begin_attempt(&d, t0 + Duration::from_millis(3));
    // The whole answer is kept as it is and read when the spans are encoded.
    t.keep_answer(&bytes::Bytes::from_static(
        br#"{"id":"chatcmpl-7","model":"mock-chat-a-0613","choices":[{"finish_reason":"stop"},{"finish_reason":"length"}]}"#,
    ));
    t.end_attempt(Duration::from_millis(4), "success", Some(200), None);
    let rec = AccessRecord {
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        request_id: "req-1".into(),
        model: Some("gpt-4o-mini".into()),
        tenant: Some("team-a".into()),
        deployment: Some((*d.id).into()),
        rule: Some("default".into()),
        tags: Some([("tier".to_owned(), "gold".to_owned())].into()),
        status: 200,
        attempts: 2,
        ..AccessRecord::default()
    };
    let usage = Usage {
        prompt_tokens: 12,
        completion_tokens: 9,
        cache_read_tokens: 3,
        ..Usage::default()
    };
    let server_id = t.span_id();
    let settings = ExportSettings {
        protocol: OtlpProtocol::HttpProtobuf,
        endpoint: None,
        headers: HashMap::new(),
        service_name: Some("gw-test".into()),
        timeout: Duration::from_secs(1),
    };
    // As the spool does: spans after the headroom the framing is written into.
    let frame = BatchFrame::new(&settings);
    let mut buf = vec![0xee; frame.headroom()];
    assert_eq!(t.span_count(), 3);
    t.finish(usage, 0.25, Duration::from_millis(7));
    assert_eq!(t.encode(&mut buf, &rec), 3);
    let body = frame.request(buf, frame.headroom());
    let decoded = ExportTraceServiceRequest::decode(body).unwrap();
    assert_eq!(decoded.resource_spans.len(), 1);
    let rs = &decoded.resource_spans[0];
    let attr = |attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue], k: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    let resource = &rs.resource.as_ref().unwrap().attributes;
    assert_eq!(
        attr(resource, "service.name"),
        Some(Any::StringValue("gw-test".into()))
    );
    assert!(attr(resource, "service.version").is_some());
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "datamind-gateway");
    assert_eq!(ss.spans.len(), 3);

    let server = &ss.spans[0];
    assert_eq!(server.name, "chat gpt-4o-mini");
    assert_eq!(server.kind, 2);
    assert_eq!(
        hex::encode(&server.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(hex::encode(&server.span_id), server_id.as_str());
    assert_eq!(hex::encode(&server.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(server.trace_state, "k=v");
    assert_eq!(server.flags, 0x301);
    // The server span ends when the request did (`finish`), not when it is encoded.
    assert_eq!(
        server.end_time_unix_nano - server.start_time_unix_nano,
        7_000_000
    );
    assert!(server.start_time_unix_nano > 1_700_000_000_000_000_000);
    let a = &server.attributes;
    let s = |v: &str| Some(Any::StringValue(v.into()));
    assert_eq!(attr(a, "gen_ai.operation.name"), s("chat"));
    assert_eq!(attr(a, "gen_ai.request.model"), s("gpt-4o-mini"));
    assert_eq!(
        attr(a, "gen_ai.request.stream"),
        Some(Any::BoolValue(false))
    );
    assert_eq!(attr(a, "gen_ai.provider.name"), s("openai"));
    assert_eq!(attr(a, "gen_ai.response.model"), s("mock-chat-a-0613"));
    assert_eq!(attr(a, "gen_ai.response.id"), s("chatcmpl-7"));
    assert_eq!(
        attr(a, "gen_ai.request.max_tokens"),
        Some(Any::IntValue(20))
    );
    assert_eq!(
        attr(a, "gen_ai.request.temperature"),
        Some(Any::DoubleValue(0.5))
    );
    assert_eq!(
        attr(a, "gen_ai.usage.input_tokens"),
        Some(Any::IntValue(12))
    );
    assert_eq!(
        attr(a, "gen_ai.usage.output_tokens"),
        Some(Any::IntValue(9))
    );
    assert_eq!(
        attr(a, "gen_ai.usage.cache_read.input_tokens"),
        Some(Any::IntValue(3))
    );
    assert_eq!(attr(a, "gen_ai.usage.cache_creation.input_tokens"), None);
    assert_eq!(attr(a, "caller.tenant"), s("team-a"));
    assert_eq!(attr(a, "datamind.deployment"), s(&d.id));
    assert_eq!(attr(a, "datamind.attempts"), Some(Any::IntValue(2)));
    assert_eq!(attr(a, "datamind.route.rule"), s("default"));
    assert_eq!(attr(a, "datamind.route.tag.tier"), s("gold"));
    assert_eq!(
        attr(a, "datamind.overhead_ms"),
        Some(Any::DoubleValue(0.25))
    );
    assert_eq!(
        attr(a, "http.response.status_code"),
        Some(Any::IntValue(200))
    );
    assert_eq!(attr(a, "error.type"), None);
    let Some(Any::ArrayValue(reasons)) = attr(a, "gen_ai.response.finish_reasons") else {
        panic!("no finish reasons");
    };
    let reasons: Vec<_> = reasons.values.iter().map(|v| v.value.clone()).collect();
    assert_eq!(reasons, vec![s("stop"), s("length")]);
    assert_eq!(server.status.as_ref().map_or(0, |s| s.code), 0);

    let (retry, ok) = (&ss.spans[1], &ss.spans[2]);
    for (span, outcome) in [(retry, "retry"), (ok, "success")] {
        assert_eq!(span.kind, 3);
        assert_eq!(span.name, "chat mock-chat-a");
        assert_eq!(span.trace_id, server.trace_id);
        assert_eq!(span.parent_span_id, server.span_id);
        assert_eq!(span.flags, 0x101);
        assert_eq!(
            attr(&span.attributes, "datamind.attempt.outcome"),
            s(outcome)
        );
        assert_eq!(attr(&span.attributes, "server.address"), s("127.0.0.1"));
        assert_eq!(
            attr(&span.attributes, "server.port"),
            Some(Any::IntValue(9))
        );
    }
    // Attempt spans sit where their instants put them, relative to the server span.
    let at = |span: &opentelemetry_proto::tonic::trace::v1::Span| {
        (
            span.start_time_unix_nano - server.start_time_unix_nano,
            span.end_time_unix_nano - span.start_time_unix_nano,
        )
    };
    assert_eq!(at(retry), (1_000_000, 2_000_000));
    assert_eq!(at(ok), (3_000_000, 4_000_000));
    let status = retry.status.as_ref().unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "503"));
    assert_eq!(attr(&retry.attributes, "error.type"), s("503"));
    assert_eq!(ok.status.as_ref().map_or(0, |s| s.code), 0);
}

#[test]
fn long_nested_messages_get_multi_byte_lengths() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
    use prost::Message as _;
    for n in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_100_000] {
        let long = "x".repeat(n);
        let mut buf = Vec::new();
        proto::Writer::new(&mut buf).attr_value(1, "k", &opentelemetry::Value::from(long.clone()));
        // A KeyValue field 1 of a message is what `repeated KeyValue` looks like: decode
        // the payload after the field header.
        let mut framed = Vec::new();
        proto::Writer::new(&mut framed).attr_str(1, "k", &long);
        assert_eq!(buf, framed, "{n}");
        let mut rest = &buf[1..];
        let len = prost::encoding::decode_varint(&mut rest).unwrap();
        assert_eq!(len as usize, rest.len(), "{n}");
        let kv = KeyValue::decode(rest).unwrap();
        assert_eq!(
            kv.value,
            Some(AnyValue {
                value: Some(Any::StringValue(long))
            })
        );
    }
}

#[test]
fn begin_follows_the_parent_flag_and_passes_context_on_when_off() {
    let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".as_slice();
    let now = std::time::Instant::now();
    assert!(begin(None, None, None, now).is_none());
    let t = begin(None, Some(tp), Some(b"k=v"), now).unwrap();
    assert!(!t.is_recording());
    assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

/// Writes one attribute.
type WriteAttr<'a> = dyn Fn(&mut proto::Writer<'_>) + 'a;

#[test]
fn attributes_decode_on_both_sides_of_the_one_byte_length_path() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
    use prost::Message as _;
    // Keys from empty to past the 128-byte `KeyValue` limit of the short path, in fields
    // below and above 16, with every value kind.
    for key_len in [
        0, 1, 100, 110, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 130,
    ] {
        let key = "k".repeat(key_len);
        for field in [9, 20] {
            let cases: [(&WriteAttr<'_>, Any); 5] = [
                (
                    &|w| w.attr_str(field, &key, "v"),
                    Any::StringValue("v".into()),
                ),
                (&|w| w.attr_i64(field, &key, 7), Any::IntValue(7)),
                (&|w| w.attr_i64(field, &key, -300), Any::IntValue(-300)),
                (&|w| w.attr_f64(field, &key, 0.25), Any::DoubleValue(0.25)),
                (&|w| w.attr_bool(field, &key, true), Any::BoolValue(true)),
            ];
            for (write, want) in cases {
                let mut buf = Vec::new();
                write(&mut proto::Writer::new(&mut buf));
                let mut rest = buf.as_slice();
                let tag = prost::encoding::decode_varint(&mut rest).unwrap();
                assert_eq!(tag, u64::from(field) << 3 | 2, "{key_len} {field}");
                let len = prost::encoding::decode_varint(&mut rest).unwrap();
                assert_eq!(len as usize, rest.len(), "{key_len} {field} {want:?}");
                let kv = KeyValue::decode(rest).unwrap();
                assert_eq!(kv.key, key);
                assert_eq!(kv.value, Some(AnyValue { value: Some(want) }));
            }
        }
    }
}

/// A whole answer gives the server span its id and finish reasons whether the quick read
/// takes it (copied on the request's thread) or not (kept and read when encoded).
#[test]
fn answers_in_any_member_order_give_the_span_their_facts() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;
    use prost::Message as _;
    // The last: facts longer than the trace's inline buffer (the answer is kept instead).
    let long = format!("x-1{}", "é".repeat(100));
    let bodies: [(Vec<u8>, &str); 4] = [
        (br#"{"id":"x-1","object":"chat.completion","model":"m","choices":[{"finish_reason":"stop"},{"finish_reason":"length"}]}"#.to_vec(), "x-1"),
        (br#"{"choices":[{"finish_reason":"stop"},{"finish_reason":"length"}],"model":"m","id":"x-1"}"#.to_vec(), "x-1"),
        (br#"{"id":"x\u002d1","model":"m","choices":[{"finish_reason":"stop"},{"finish_reason":"length"}]}"#.to_vec(), "x-1"),
        (format!(r#"{{"id":"{long}","model":"m","choices":[{{"finish_reason":"stop"}},{{"finish_reason":"length"}}]}}"#).into_bytes(), &long),
    ];
    for (body, id) in &bodies {
        let mut t = RequestTrace::recording(None, None, std::time::Instant::now());
        t.keep_answer(&bytes::Bytes::copy_from_slice(body));
        t.finish(Usage::default(), 0.1, Duration::from_millis(1));
        let mut buf = Vec::new();
        assert_eq!(t.encode(&mut buf, &AccessRecord::default()), 1);
        let spans = ScopeSpans::decode(&buf[..]).unwrap().spans;
        let attr = |k: &str| {
            spans[0]
                .attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        let show = String::from_utf8_lossy(body);
        assert_eq!(
            attr("gen_ai.response.id"),
            Some(Any::StringValue((*id).into())),
            "{show}"
        );
        let Some(Any::ArrayValue(reasons)) = attr("gen_ai.response.finish_reasons") else {
            panic!("no finish reasons: {show}");
        };
        let reasons: Vec<_> = reasons.values.into_iter().filter_map(|v| v.value).collect();
        assert_eq!(
            reasons,
            [
                Any::StringValue("stop".into()),
                Any::StringValue("length".into())
            ],
            "{show}"
        );
    }
}
