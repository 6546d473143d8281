//! W3C Trace Context: the `traceparent` and `tracestate` headers.
//!
//! Accepted from clients (a valid `traceparent` makes the gateway's server span a child of
//! the caller's span, and its sampled flag decides whether the trace is recorded) and sent
//! to upstreams on every attempt, naming that attempt's span as the parent.
//! Spec: <https://www.w3.org/TR/trace-context/>. Parsing is strict and allocation-free;
//! anything malformed is ignored (a new trace starts), never an error for the client.

use opentelemetry::trace::{SpanId, TraceId};

/// Longest `tracestate` passed on (the spec's 32 members × 16 bytes is ~512).
const MAX_TRACESTATE: usize = 512;

/// The caller's span, from a valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteParent {
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The caller's span.
    pub span_id: SpanId,
    /// The caller recorded it (flag `01`).
    pub sampled: bool,
}

/// Parses a `traceparent` header value (version `00`, or a later version's first four
/// fields as the spec asks). All-zero ids are invalid.
pub fn parse_traceparent(v: &[u8]) -> Option<RemoteParent> {
    let v = trim(v);
    // version(2) - trace-id(32) - parent-id(16) - flags(2)
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = hex_u128(&v[0..2])? as u8;
    if version == 0xff
        || (version == 0 && v.len() != 55)
        || (version > 0 && v.len() > 55 && v[55] != b'-')
    {
        return None;
    }
    let trace = hex_u128(&v[3..35])?;
    let span = hex_u128(&v[36..52])? as u64;
    let flags = hex_u128(&v[53..55])? as u8;
    if trace == 0 || span == 0 {
        return None;
    }
    Some(RemoteParent {
        trace_id: TraceId::from(trace),
        span_id: SpanId::from(span),
        sampled: flags & 1 == 1,
    })
}

/// A `tracestate` value worth passing on: bounded, printable ASCII.
pub fn accept_tracestate(v: &[u8]) -> Option<String> {
    let v = trim(v);
    (!v.is_empty() && v.len() <= MAX_TRACESTATE && v.iter().all(|b| (0x20..0x7f).contains(b)))
        .then(|| String::from_utf8_lossy(v).into_owned())
}

/// A `traceparent` value naming `span_id` as the parent, held inline: it is written for
/// every upstream attempt, so it allocates nothing and runs no formatting machinery.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Traceparent([u8; 55]);

// === impl Traceparent ===

impl Traceparent {
    /// `00-{trace id}-{span id}-{01 when sampled, else 00}`.
    pub fn new(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        Self::with_trace_hex(&HexId::trace(trace_id), span_id, sampled)
    }

    /// The same, from the trace id's hex already at hand.
    pub fn with_trace_hex(trace: &TraceHex, span_id: SpanId, sampled: bool) -> Self {
        let mut b = *b"00-00000000000000000000000000000000-0000000000000000-00";
        b[3..35].copy_from_slice(trace.as_bytes());
        hex_into(&mut b[36..52], &span_id.to_bytes());
        if sampled {
            b[54] = b'1';
        }
        Self(b)
    }

    /// The header value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The header value as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for Traceparent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Traceparent {
    /// A valid `traceparent` as is; anything else becomes an all-zero (invalid) one.
    fn from(s: &str) -> Self {
        match parse_traceparent(s.as_bytes()) {
            Some(p) => Self::new(p.trace_id, p.span_id, p.sampled),
            None => Self(*b"00-00000000000000000000000000000000-0000000000000000-00"),
        }
    }
}

/// A trace id (`N` = 32) or span id (`N` = 16) as the lower-case hex text logs carry, held
/// inline: naming a request's ids in its access-log line allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexId<const N: usize>([u8; N]);

/// A trace id as text.
pub type TraceHex = HexId<32>;
/// A span id as text.
pub type SpanHex = HexId<16>;

// === impl HexId ===

impl HexId<32> {
    /// The text of a trace id.
    pub fn trace(id: TraceId) -> Self {
        let mut b = [0; 32];
        hex_into(&mut b, &id.to_bytes());
        Self(b)
    }
}

impl HexId<16> {
    /// The text of a span id.
    pub fn span(id: SpanId) -> Self {
        let mut b = [0; 16];
        hex_into(&mut b, &id.to_bytes());
        Self(b)
    }
}

impl<const N: usize> HexId<N> {
    /// The hex digits, as bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever written, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Display for HexId<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> std::fmt::Debug for HexId<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> serde::Serialize for HexId<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<const N: usize> PartialEq<&str> for HexId<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Writes the lower-case hex of `bytes` into `out` (twice as long).
#[inline]
/// Lower-case hex of `bytes` (a multiple of eight long) into `out`, eight bytes at a time:
/// the nibbles spread one to a byte in a `u128`, then all made digits at once.
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    debug_assert!(bytes.len().is_multiple_of(8) && out.len() >= 2 * bytes.len());
    const NIBBLES: u128 = 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    for (out, eight) in out.chunks_exact_mut(16).zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(eight);
        let mut v = u128::from(u64::from_be_bytes(word));
        v = (v | (v << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
        v = (v | (v << 4)) & NIBBLES;
        // 1 in each byte whose nibble is 10 or more (`n + 6` reaches bit 4).
        let letters = ((v + 6 * ONES) >> 4) & ONES;
        let digits = v + u128::from(b'0') * ONES + letters * u128::from(b'a' - b'0' - 10);
        out.copy_from_slice(&digits.to_be_bytes());
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Lower-case hex only, as the spec requires.
fn hex_u128(s: &[u8]) -> Option<u128> {
    let mut n: u128 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        n = (n << 4) | u128::from(d);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn hex_ids_match_the_formatter() {
        let mut rng = fastrand::Rng::with_seed(7);
        for n in [0, 1, 9, 10, 15, 16, 0xab, u128::MAX, u128::MAX / 3]
            .into_iter()
            .chain((0..500).map(|_| rng.u128(..)))
        {
            let trace = HexId::trace(TraceId::from(n));
            assert_eq!(trace.as_str(), format!("{n:032x}"));
            let span = HexId::span(SpanId::from(n as u64));
            assert_eq!(span.as_str(), format!("{:016x}", n as u64));
        }
    }

    #[test]
    fn parses_the_spec_example_and_formats_it_back() {
        let p = parse_traceparent(TP.as_bytes()).unwrap();
        assert!(p.sampled);
        assert_eq!(p.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(Traceparent::new(p.trace_id, p.span_id, true).as_str(), TP);
        assert_eq!(HexId::trace(p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(HexId::span(p.span_id).to_string(), "00f067aa0ba902b7");
        assert_eq!(
            serde_json::to_string(&HexId::span(p.span_id)).unwrap(),
            r#""00f067aa0ba902b7""#
        );
        let unsampled = TP.replace("-01", "-00");
        assert!(!parse_traceparent(unsampled.as_bytes()).unwrap().sampled);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn every_byte_formats_as_two_hex_digits() {
        for b in 0..=255u8 {
            let bytes = [b, 0, 255, b, 1, b.wrapping_mul(7), 0x7f, b];
            let mut out = [0u8; 16];
            hex_into(&mut out, &bytes);
            let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        }
        let id = TraceId::from(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10_u128);
        let tp = Traceparent::new(id, SpanId::from(0xfeu64), false);
        assert_eq!(
            tp.as_str(),
            "00-0102030405060708090a0b0c0d0e0f10-00000000000000fe-00"
        );
        assert_eq!(Traceparent::from(tp.as_str()), tp);
    }

    #[test]
    fn later_versions_keep_the_known_fields() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        assert!(parse_traceparent(v.as_bytes()).is_some());
    }

    #[test]
    fn tracestate_is_bounded_and_printable() {
        assert_eq!(
            accept_tracestate(b" congo=t61rcWkgMzE "),
            Some("congo=t61rcWkgMzE".into())
        );
        assert_eq!(accept_tracestate(b""), None);
        assert_eq!(accept_tracestate(b"a=\x01"), None);
        assert_eq!(accept_tracestate(&[b'a'; 600]), None);
    }
}
