//! Just enough of the protobuf wire format to write OTLP trace messages
//! (`opentelemetry/proto/trace/v1/trace.proto`, `collector/trace/v1/trace_service.proto`)
//! straight from what a request collected: no intermediate `SpanData`, no per-attribute
//! `String`, no second pass to size nested messages.
//!
//! Scalar fields and attributes are written with their exact lengths computed up front;
//! a nested message of unknown size (a span, an array) reserves two bytes for its length
//! (enough for a span), writes its body, then writes the length, moving the body only when
//! the length takes another number of bytes.

use opentelemetry::{Array, Value};

/// Wire types.
const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;
const I32: u32 = 5;

// === OTLP field numbers ===

/// `ExportTraceServiceRequest.resource_spans`.
pub const REQUEST_RESOURCE_SPANS: u32 = 1;
/// `ResourceSpans.resource`, `.scope_spans`.
pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
/// `Resource.attributes`.
pub const RESOURCE_ATTRIBUTES: u32 = 1;
/// `ScopeSpans.scope`, `.spans`.
pub const SCOPE_SPANS_SCOPE: u32 = 1;
pub const SCOPE_SPANS_SPANS: u32 = 2;
/// `InstrumentationScope.name`, `.version`.
pub const SCOPE_NAME: u32 = 1;
pub const SCOPE_VERSION: u32 = 2;
/// `Span` fields.
pub const SPAN_TRACE_ID: u32 = 1;
pub const SPAN_SPAN_ID: u32 = 2;
pub const SPAN_TRACE_STATE: u32 = 3;
pub const SPAN_PARENT_SPAN_ID: u32 = 4;
pub const SPAN_NAME: u32 = 5;
pub const SPAN_KIND: u32 = 6;
pub const SPAN_START: u32 = 7;
pub const SPAN_END: u32 = 8;
pub const SPAN_ATTRIBUTES: u32 = 9;
pub const SPAN_STATUS: u32 = 15;
pub const SPAN_FLAGS: u32 = 16;
/// `Status.message`, `.code`.
pub const STATUS_MESSAGE: u32 = 2;
pub const STATUS_CODE: u32 = 3;
/// `Span.SpanKind`.
pub const KIND_SERVER: u64 = 2;
pub const KIND_CLIENT: u64 = 3;
/// `Status.StatusCode.ERROR`.
pub const STATUS_ERROR: u64 = 2;
/// `SpanFlags`: the low byte is the W3C trace flags; bit 8 says bit 9 (remote parent) is known.
pub const FLAGS_HAS_IS_REMOTE: u32 = 0x100;
pub const FLAGS_IS_REMOTE: u32 = 0x200;

// `KeyValue.key`, `.value`; `AnyValue` variants; `ArrayValue.values`.
const KV_KEY: u32 = 1;
const KV_VALUE: u32 = 2;
const ANY_STRING: u32 = 1;
const ANY_BOOL: u32 = 2;
const ANY_INT: u32 = 3;
const ANY_DOUBLE: u32 = 4;
const ANY_ARRAY: u32 = 5;
const ARRAY_VALUES: u32 = 1;

/// Bytes kept for a nested message's length while its body is written: two hold 128 to
/// 16,383 (a span's size), so a span's body stays where it was written.
const RESERVED: usize = 2;

/// Appends protobuf fields to a byte buffer.
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

/// Bytes a varint takes.
pub const fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The one-byte tag of length-delimited field `field` (< 16).
const fn len_tag(field: u32) -> u8 {
    ((field << 3) | LEN) as u8
}

const fn tag_len(field: u32) -> usize {
    varint_len(((field as u64) << 3) | LEN as u64)
}

/// Length of a length-delimited field whose payload is `n` bytes.
pub const fn len_field_len(field: u32, n: usize) -> usize {
    tag_len(field) + varint_len(n as u64) + n
}

/// Length of `AnyValue{string_value}` holding `n` bytes.
const fn any_str_len(n: usize) -> usize {
    len_field_len(ANY_STRING, n)
}

// === impl Writer ===

impl<'a> Writer<'a> {
    /// Writes at the end of `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    #[inline(always)]
    fn varint(&mut self, v: u64) {
        // Tags and most lengths and values take one byte.
        if v < 0x80 {
            self.buf.push(v as u8);
        } else {
            self.varint_long(v);
        }
    }

    fn varint_long(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    #[inline(always)]
    fn tag(&mut self, field: u32, wire: u32) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// Bytes already encoded (a framed field or several).
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A length-delimited field of `bytes` (string, bytes, or an encoded message).
    #[inline(always)]
    pub fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.tag(field, LEN);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// The header of a length-delimited field whose `n` bytes the caller writes next.
    #[inline(always)]
    pub fn len_header(&mut self, field: u32, n: usize) {
        self.tag(field, LEN);
        self.varint(n as u64);
    }

    /// A string field made of parts written back to back (no joined `String`).
    pub fn str_parts(&mut self, field: u32, parts: &[&str]) {
        let n = parts.iter().map(|p| p.len()).sum::<usize>();
        self.len_header(field, n);
        for p in parts {
            self.buf.extend_from_slice(p.as_bytes());
        }
    }

    /// A varint field (enums, unsigned integers).
    #[inline(always)]
    pub fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, VARINT);
        self.varint(v);
    }

    /// A `fixed64` field.
    #[inline(always)]
    pub fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, I64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `fixed32` field.
    #[inline(always)]
    pub fn fixed32(&mut self, field: u32, v: u32) {
        self.tag(field, I32);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A nested message of a size not known in advance, written by `body`.
    #[inline]
    pub fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer<'_>)) {
        self.tag(field, LEN);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; RESERVED]);
        body(&mut Writer {
            buf: &mut *self.buf,
        });
        let end = self.buf.len();
        let n = end - at - RESERVED;
        let used = varint_len(n as u64);
        if used != RESERVED {
            // Another length's size: the body moves over (or makes room for) the difference.
            if used > RESERVED {
                self.buf.resize(end + used - RESERVED, 0);
            }
            self.buf.copy_within(at + RESERVED..end, at + used);
            self.buf.truncate(at + used + n);
        }
        let mut v = n as u64;
        let mut i = at;
        while v >= 0x80 {
            self.buf[i] = (v as u8) | 0x80;
            v >>= 7;
            i += 1;
        }
        self.buf[i] = v as u8;
    }

    // --- attributes (`repeated KeyValue` at `field`) ---

    /// `KeyValue` header, key, and the header of its value (`value_len` bytes to follow).
    /// Inlined: with a literal key, every length but the value's is a constant.
    #[inline(always)]
    fn kv_header(&mut self, field: u32, key: &str, value_len: usize) {
        let kv_len = len_field_len(KV_KEY, key.len()) + len_field_len(KV_VALUE, value_len);
        self.len_header(field, kv_len);
        self.bytes(KV_KEY, key.as_bytes());
        self.len_header(KV_VALUE, value_len);
    }

    /// A string attribute whose key is made of `key` parts.
    pub fn attr_str_parts(&mut self, field: u32, key: &[&str], v: &str) {
        let key_len = key.iter().map(|p| p.len()).sum::<usize>();
        let value_len = any_str_len(v.len());
        self.len_header(
            field,
            len_field_len(KV_KEY, key_len) + len_field_len(KV_VALUE, value_len),
        );
        self.str_parts(KV_KEY, key);
        self.len_header(KV_VALUE, value_len);
        self.bytes(ANY_STRING, v.as_bytes());
    }

    // The attributes below take a short path when the attribute field is below 16 and the
    // whole `KeyValue` is under 128 bytes (nearly always): every tag and length is then one
    // byte, and the attribute is written in a few appends, the key's a constant-size copy.

    /// A string attribute.
    #[inline(always)]
    pub fn attr_str(&mut self, field: u32, key: &str, v: &str) {
        let (k, v) = (key.as_bytes(), v.as_bytes());
        let kv_len = 2 + k.len() + 4 + v.len();
        if field < 16 && kv_len < 128 {
            self.short_kv(field, k, kv_len);
            let any = (2 + v.len()) as u8;
            self.buf.extend_from_slice(&[
                len_tag(KV_VALUE),
                any,
                len_tag(ANY_STRING),
                v.len() as u8,
            ]);
            self.buf.extend_from_slice(v);
        } else {
            self.kv_header(field, key, any_str_len(v.len()));
            self.bytes(ANY_STRING, v);
        }
    }

    /// An integer attribute.
    #[inline(always)]
    pub fn attr_i64(&mut self, field: u32, key: &str, v: i64) {
        let any = 1 + varint_len(v as u64);
        let kv_len = 2 + key.len() + 2 + any;
        if field < 16 && kv_len < 128 {
            self.short_kv(field, key.as_bytes(), kv_len);
            self.buf
                .extend_from_slice(&[len_tag(KV_VALUE), any as u8, (ANY_INT << 3) as u8]);
        } else {
            self.kv_header(field, key, any);
            self.tag(ANY_INT, VARINT);
        }
        self.varint(v as u64);
    }

    /// A floating-point attribute.
    #[inline(always)]
    pub fn attr_f64(&mut self, field: u32, key: &str, v: f64) {
        let kv_len = 2 + key.len() + 2 + 9;
        if field < 16 && kv_len < 128 {
            self.short_kv(field, key.as_bytes(), kv_len);
            let b = v.to_bits().to_le_bytes();
            let tag = ((ANY_DOUBLE << 3) | I64) as u8;
            self.buf.extend_from_slice(&[
                len_tag(KV_VALUE),
                9,
                tag,
                b[0],
                b[1],
                b[2],
                b[3],
                b[4],
                b[5],
                b[6],
                b[7],
            ]);
        } else {
            self.kv_header(field, key, 9);
            self.fixed64(ANY_DOUBLE, v.to_bits());
        }
    }

    /// A boolean attribute.
    #[inline(always)]
    pub fn attr_bool(&mut self, field: u32, key: &str, v: bool) {
        let kv_len = 2 + key.len() + 2 + 2;
        if field < 16 && kv_len < 128 {
            self.short_kv(field, key.as_bytes(), kv_len);
            self.buf
                .extend_from_slice(&[len_tag(KV_VALUE), 2, (ANY_BOOL << 3) as u8, u8::from(v)]);
        } else {
            self.kv_header(field, key, 2);
            self.uint(ANY_BOOL, u64::from(v));
        }
    }

    /// The short path's `KeyValue` header and key (`field` < 16, `kv_len` < 128).
    #[inline(always)]
    fn short_kv(&mut self, field: u32, key: &[u8], kv_len: usize) {
        self.buf.extend_from_slice(&[
            len_tag(field),
            kv_len as u8,
            len_tag(KV_KEY),
            key.len() as u8,
        ]);
        self.buf.extend_from_slice(key);
    }

    /// A string-array attribute.
    pub fn attr_str_array<'s>(
        &mut self,
        field: u32,
        key: &str,
        items: impl Iterator<Item = &'s str> + Clone,
    ) {
        let array_len = items
            .clone()
            .map(|s| len_field_len(ARRAY_VALUES, any_str_len(s.len())))
            .sum::<usize>();
        self.kv_header(field, key, len_field_len(ANY_ARRAY, array_len));
        self.len_header(ANY_ARRAY, array_len);
        for s in items {
            self.len_header(ARRAY_VALUES, any_str_len(s.len()));
            self.bytes(ANY_STRING, s.as_bytes());
        }
    }

    /// An attribute of any OpenTelemetry value (resource attributes; written once).
    pub fn attr_value(&mut self, field: u32, key: &str, v: &Value) {
        self.message(field, |w| {
            w.bytes(KV_KEY, key.as_bytes());
            w.message(KV_VALUE, |w| w.any_value(v));
        });
    }

    fn any_value(&mut self, v: &Value) {
        match v {
            Value::Bool(b) => self.uint(ANY_BOOL, u64::from(*b)),
            Value::I64(i) => self.uint(ANY_INT, *i as u64),
            Value::F64(f) => self.fixed64(ANY_DOUBLE, f.to_bits()),
            Value::String(s) => self.bytes(ANY_STRING, s.as_str().as_bytes()),
            Value::Array(a) => self.message(ANY_ARRAY, |w| match a {
                Array::Bool(v) => v.iter().for_each(|x| {
                    w.message(ARRAY_VALUES, |w| w.uint(ANY_BOOL, u64::from(*x)));
                }),
                Array::I64(v) => v.iter().for_each(|x| {
                    w.message(ARRAY_VALUES, |w| w.uint(ANY_INT, *x as u64));
                }),
                Array::F64(v) => v.iter().for_each(|x| {
                    w.message(ARRAY_VALUES, |w| w.fixed64(ANY_DOUBLE, x.to_bits()));
                }),
                Array::String(v) => v.iter().for_each(|x| {
                    w.message(ARRAY_VALUES, |w| w.bytes(ANY_STRING, x.as_str().as_bytes()));
                }),
                other => w.message(ARRAY_VALUES, |w| {
                    w.bytes(ANY_STRING, other.to_string().as_bytes());
                }),
            }),
            other => self.bytes(ANY_STRING, other.to_string().as_bytes()),
        }
    }
}
