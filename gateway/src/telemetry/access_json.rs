//! The access-log line as JSON, written by hand: the same object `serde_json` would write
//! for an [`AccessRecord`] (same keys, order and skipped fields), at a fraction of the cost
//! (strings are copied in runs between the rare bytes that need escaping).

use std::fmt::Write as _;

use super::access_log::AccessRecord;
use crate::http1::decimal;

/// `,"name":` as one literal: a copy of known length, which compiles to a few moves.
macro_rules! key {
    ($w:expr, $name:literal) => {
        $w.extend_from_slice(concat!(",\"", $name, "\":").as_bytes())
    };
}

/// Appends `r` as one JSON object (no newline) to `w`.
pub fn write(r: &AccessRecord<'_>, w: &mut Vec<u8>) {
    // Digits and separators only: nothing to escape.
    w.extend_from_slice(b"{\"ts\":\"");
    w.extend_from_slice(&r.ts.rfc3339());
    w.push(b'"');
    key!(w, "request_id");
    string(w, &r.request_id);
    key!(w, "method");
    string(w, &r.method);
    key!(w, "path");
    string(w, &r.path);
    key!(w, "tenant");
    opt_string(w, r.tenant.as_deref());
    key!(w, "key_name");
    opt_string(w, r.key_name.as_deref());
    key!(w, "model");
    opt_string(w, r.model.as_deref());
    key!(w, "deployment");
    opt_string(w, r.deployment.as_deref());
    key!(w, "rule");
    opt_string(w, r.rule.as_deref());
    key!(w, "cloud");
    opt_string(w, r.cloud.as_deref());
    key!(w, "region");
    opt_string(w, r.region.as_deref());
    key!(w, "tags");
    match &r.tags {
        None => w.extend_from_slice(b"null"),
        Some(tags) => {
            w.push(b'{');
            for (i, (k, v)) in tags.iter().enumerate() {
                if i > 0 {
                    w.push(b',');
                }
                string(w, k);
                w.push(b':');
                string(w, v);
            }
            w.push(b'}');
        }
    }
    key!(w, "status");
    int(w, u64::from(r.status));
    key!(w, "attempts");
    int(w, u64::from(r.attempts));
    key!(w, "stream");
    w.extend_from_slice(if r.stream { b"true" } else { b"false" });
    key!(w, "duration_ms");
    float(w, r.duration_ms);
    key!(w, "ttfb_ms");
    match r.ttfb_ms {
        Some(v) => float(w, v),
        None => w.extend_from_slice(b"null"),
    }
    key!(w, "upstream_ms");
    float(w, r.upstream_ms);
    key!(w, "prompt_tokens");
    int(w, r.prompt_tokens);
    key!(w, "completion_tokens");
    int(w, r.completion_tokens);
    key!(w, "request_bytes");
    int(w, r.request_bytes as u64);
    key!(w, "error");
    opt_string(w, r.error.as_deref());
    if let Some(c) = r.cache {
        key!(w, "cache");
        string(w, c);
    }
    // Hex digits need no escaping.
    if let Some(t) = &r.trace_id {
        key!(w, "trace_id");
        quoted(w, t.as_bytes());
    }
    if let Some(s) = &r.span_id {
        key!(w, "span_id");
        quoted(w, s.as_bytes());
    }
    w.push(b'}');
}

/// A string known to need no escaping, in quotes.
fn quoted(w: &mut Vec<u8>, s: &[u8]) {
    w.push(b'"');
    w.extend_from_slice(s);
    w.push(b'"');
}

fn opt_string(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(w, s),
        None => w.extend_from_slice(b"null"),
    }
}

/// A JSON string: runs of plain bytes copied whole, `"`, `\` and controls escaped.
fn string(w: &mut Vec<u8>, s: &str) {
    w.push(b'"');
    let b = s.as_bytes();
    // The usual string needs no escape: say so for 8 bytes at a time (SWAR), and the
    // short tail (or the word with an escape) a byte at a time.
    let plain = |c: u8| c >= 0x20 && c != b'"' && c != b'\\';
    let mut clean = 0;
    for chunk in b.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if needs_escape(u64::from_le_bytes(word)) {
            break;
        }
        clean += 8;
    }
    w.extend_from_slice(&b[..clean]);
    let mut start = clean;
    for (i, &c) in b.iter().enumerate().skip(clean) {
        if plain(c) {
            continue;
        }
        w.extend_from_slice(&b[start..i]);
        match c {
            b'"' => w.extend_from_slice(b"\\\""),
            b'\\' => w.extend_from_slice(b"\\\\"),
            b'\n' => w.extend_from_slice(b"\\n"),
            b'\r' => w.extend_from_slice(b"\\r"),
            b'\t' => w.extend_from_slice(b"\\t"),
            0x08 => w.extend_from_slice(b"\\b"),
            0x0c => w.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                w.extend_from_slice(b"\\u00");
                w.push(HEX[usize::from(c >> 4)]);
                w.push(HEX[usize::from(c & 0xf)]);
            }
        }
        start = i + 1;
    }
    w.extend_from_slice(&b[start..]);
    w.push(b'"');
}

/// Whether any of the 8 bytes of `w` is a control character, `"` or `\\`. The classic
/// "has a byte below n" bit trick: a byte that qualifies always sets its high bit in the
/// result; a false positive happens only in a byte above one that qualifies.
#[inline(always)]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    (below(w, 0x20) | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
}

fn int(w: &mut Vec<u8>, n: u64) {
    decimal::push(w, n);
}

/// A millisecond figure. The record's figures are rounded to microseconds, so up to three
/// decimals print exactly (`12.0`, `0.219`), as `serde_json` prints them; anything else
/// falls back to Rust's shortest round-trip form.
fn float(w: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        w.extend_from_slice(b"null");
        return;
    }
    let micros = (v * 1000.0).round();
    if micros.abs() < 1e15 && (micros / 1000.0 - v).abs() < f64::EPSILON * v.abs().max(1.0) {
        let m = micros as i64;
        if m < 0 {
            w.push(b'-');
        }
        let m = m.unsigned_abs();
        int(w, m / 1000);
        let frac = m % 1000;
        w.push(b'.');
        if frac == 0 {
            w.push(b'0');
        } else {
            let d = [
                b'0' + (frac / 100) as u8,
                b'0' + (frac / 10 % 10) as u8,
                b'0' + (frac % 10) as u8,
            ];
            let end = d.iter().rposition(|&c| c != b'0').map_or(1, |p| p + 1);
            w.extend_from_slice(&d[..end]);
        }
    } else {
        let mut s = String::new();
        let _ = write!(s, "{v:?}");
        w.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::propagation::{SpanHex, TraceHex};
    use opentelemetry::trace::{SpanId, TraceId};
    use serde_json::Value;

    #[test]
    fn strings_escape_as_serde_does_at_every_position() {
        let mut cases = vec![String::new(), "é ü 日本 🎉".to_owned()];
        for c in (0u8..0x80).map(char::from).chain(['é', '\u{2028}', '🎉']) {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrstu".chars().take(at).collect();
                s.push(c);
                s.push_str("xyz0123456789");
                cases.push(s);
            }
        }
        for s in cases {
            let mut w = Vec::new();
            string(&mut w, &s);
            assert_eq!(
                String::from_utf8(w).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    fn same_as_serde(r: &AccessRecord<'_>) {
        let mut w = Vec::new();
        write(r, &mut w);
        let ours: Value = serde_json::from_slice(&w)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&w)));
        let theirs = serde_json::to_value(r).unwrap();
        assert_eq!(ours, theirs);
        // Same bytes too: keys in the same order, numbers in the same form.
        assert_eq!(
            String::from_utf8(w).unwrap(),
            serde_json::to_string(r).unwrap()
        );
    }

    #[test]
    fn matches_serde_for_a_minimal_and_a_full_record() {
        same_as_serde(&AccessRecord::default());
        let mut tags = std::collections::BTreeMap::new();
        tags.insert("tier".to_owned(), "gold".to_owned());
        tags.insert("q\"uote".to_owned(), "back\\slash".to_owned());
        same_as_serde(&AccessRecord {
            ts: crate::telemetry::access_log::Timestamp(1_795_657_200_123),
            request_id: "abc".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            tenant: Some("acme".into()),
            key_name: Some("k\u{e9}y \u{1F600}".into()),
            model: Some("gpt-4o".into()),
            deployment: Some("up/m".into()),
            rule: Some("eu".into()),
            cloud: Some("azure".into()),
            region: Some("westeurope".into()),
            tags: Some(tags),
            status: 200,
            attempts: 2,
            stream: true,
            duration_ms: 12.0,
            ttfb_ms: Some(0.219),
            upstream_ms: 1234.5,
            prompt_tokens: 17,
            completion_tokens: u64::MAX,
            request_bytes: 4096,
            error: Some("line\nbreak\ttab \u{1} \u{7f} \r \u{8} \u{c}".into()),
            cache: Some("miss"),
            trace_id: Some(TraceHex::trace(TraceId::from_bytes([0x0a; 16]))),
            tenant_is_label: true,
            operation: Some("chat"),
            span_id: Some(SpanHex::span(SpanId::from_bytes([0xb7; 8]))),
            trace: None,
        });
    }

    #[test]
    fn floats_print_like_serde() {
        for v in [
            0.0,
            0.001,
            0.2,
            0.219,
            1.5,
            12.0,
            100.25,
            59999.999,
            1e-7,
            1.0 / 3.0,
            -2.5,
        ] {
            let mut w = Vec::new();
            float(&mut w, v);
            assert_eq!(
                String::from_utf8(w).unwrap(),
                serde_json::to_string(&v).unwrap(),
                "{v}"
            );
        }
    }
}
