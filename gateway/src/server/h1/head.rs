//! Parsing a request head (request line and header fields) with `httparse`, keeping only
//! offsets into the bytes, and deciding the body's framing from it (RFC 9112 §6).

use std::ops::Range;

/// Most header fields accepted in one request.
pub(crate) const MAX_HEADERS: usize = 128;
/// Largest request head accepted (request line and header fields).
pub(crate) const MAX_HEAD: usize = 64 << 10;

/// Why a request head cannot be served; answered with `status`, then the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadError {
    /// 400, 413 (body over the limit), 431 or 501.
    pub status: u16,
    /// What was wrong, for the client.
    pub message: &'static str,
}

impl HeadError {
    const fn new(status: u16, message: &'static str) -> Self {
        Self { status, message }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head: ranges into the head's bytes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Head {
    pub method: Range<usize>,
    /// The request target as sent (path and query).
    pub target: Range<usize>,
    /// HTTP/1.x minor version.
    pub minor: u8,
    /// Name and value of each field, in order.
    pub fields: Vec<(Range<usize>, Range<usize>)>,
    /// A bit per field name present ([`name_bit`]): a lookup of a name that is not there,
    /// as most lookups are (the request path asks for a dozen optional fields), costs a
    /// test instead of a scan.
    pub present: u64,
}

/// The bit of `name` in [`Head::present`], from its length and last byte (case folded).
#[inline(always)]
fn name_bit(name: &[u8]) -> u64 {
    let last = name.last().map_or(0, |b| b | 0x20);
    1 << ((name.len() as u64 * 7 + u64::from(last)) & 63)
}

/// What the head says about the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Semantics {
    pub framing: Framing,
    /// The client lets the connection be reused after this exchange.
    pub keepalive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Parses a head at the start of `buf` into `head`. `Ok(None)`: more bytes are needed.
/// `Ok(Some(n))`: the head is the first `n` bytes.
pub(crate) fn parse(buf: &[u8], head: &mut Head) -> Result<Option<usize>, HeadError> {
    // Left uninitialised: httparse writes only the fields it finds (no 4 KiB to zero).
    let mut fields =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let n = match req.parse_with_uninit_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD {
                Err(HeadError::new(431, "request header fields too large"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::new(431, "too many request header fields"));
        }
        Err(_) => return Err(HeadError::new(400, "malformed HTTP request")),
    };
    if n > MAX_HEAD {
        return Err(HeadError::new(431, "request header fields too large"));
    }
    let base = buf.as_ptr() as usize;
    let range = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    // httparse only returns `Complete` with the request line filled in.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::new(400, "malformed HTTP request"));
    };
    head.method = range(method.as_bytes());
    head.target = range(target.as_bytes());
    head.minor = minor;
    head.fields.clear();
    head.present = 0;
    for h in req.headers.iter() {
        head.present |= name_bit(h.name.as_bytes());
        head.fields.push((range(h.name.as_bytes()), range(h.value)));
    }
    Ok(Some(n))
}

impl Head {
    /// The first value of field `name` (case-insensitive).
    pub fn field<'b>(&self, bytes: &'b [u8], name: &str) -> Option<&'b [u8]> {
        if self.present & name_bit(name.as_bytes()) == 0 {
            return None;
        }
        self.fields
            .iter()
            .find(|(n, _)| bytes[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &bytes[v.clone()])
    }

    /// The path of the target, without the query (origin-form or absolute-form).
    pub fn path<'b>(&self, bytes: &'b [u8]) -> &'b str {
        let t = &bytes[self.target.clone()];
        let t = match t.windows(3).position(|w| w == b"://") {
            Some(i) if t.first() != Some(&b'/') => {
                let rest = &t[i + 3..];
                rest.iter()
                    .position(|&b| b == b'/')
                    .map_or(&b"/"[..], |p| &rest[p..])
            }
            _ => t,
        };
        let end = t
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(t.len());
        // httparse accepts only visible ASCII in the target.
        std::str::from_utf8(&t[..end]).unwrap_or("/")
    }

    /// Framing, reuse and `Expect` as the fields say; rejects ambiguous framing (a request
    /// smuggling vector) and transfer codings other than chunked.
    pub fn semantics(&self, bytes: &[u8]) -> Result<Semantics, HeadError> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut close = false;
        let mut keep_alive = false;
        let mut expect_continue = false;
        for (n, v) in &self.fields {
            let (name, value) = (&bytes[n.clone()], &bytes[v.clone()]);
            if name.eq_ignore_ascii_case(b"content-length") {
                let s = std::str::from_utf8(value).unwrap_or("").trim();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeadError::new(400, "invalid Content-Length"));
                }
                let n: u64 = s
                    .parse()
                    .map_err(|_| HeadError::new(400, "invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::new(400, "conflicting Content-Length fields"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"");
                if chunked || !trim(last).eq_ignore_ascii_case(b"chunked") {
                    return Err(HeadError::new(501, "unsupported Transfer-Encoding"));
                }
                if value.split(|&b| b == b',').count() > 1 {
                    return Err(HeadError::new(501, "unsupported Transfer-Encoding"));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',') {
                    let t = trim(token);
                    close |= t.eq_ignore_ascii_case(b"close");
                    keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case(b"expect") {
                expect_continue = trim(value).eq_ignore_ascii_case(b"100-continue");
            }
        }
        if chunked && length.is_some() {
            return Err(HeadError::new(
                400,
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if chunked && self.minor == 0 {
            return Err(HeadError::new(400, "chunked body in an HTTP/1.0 request"));
        }
        let framing = if chunked {
            Framing::Chunked
        } else {
            Framing::Length(length.unwrap_or(0))
        };
        let keepalive = !close && (self.minor >= 1 || keep_alive);
        Ok(Semantics {
            framing,
            keepalive,
            expect_continue,
        })
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &[u8]) -> (Head, usize) {
        let mut h = Head::default();
        let n = parse(raw, &mut h).unwrap().unwrap();
        (h, n)
    }

    #[test]
    fn parses_line_fields_and_path() {
        let raw =
            b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer k\r\n\
                    Content-Length: 7\r\n\r\n{\"a\":1}";
        let (h, n) = parsed(raw);
        assert_eq!(n, raw.len() - 7);
        assert_eq!(&raw[h.method.clone()], b"POST");
        assert_eq!(h.path(raw), "/v1/chat/completions");
        assert_eq!(h.field(raw, "authorization"), Some(&b"Bearer k"[..]));
        assert_eq!(h.field(raw, "x-missing"), None);
        let s = h.semantics(raw).unwrap();
        assert_eq!(s.framing, Framing::Length(7));
        assert!(s.keepalive && !s.expect_continue);
    }

    #[test]
    fn lookups_fold_case_and_find_only_what_is_there() {
        let raw = b"GET / HTTP/1.1\r\nX-API-KEY: a\r\ntraceParent: b\r\nx-api-kez: c\r\n\r\n";
        let (h, _) = parsed(raw);
        assert_eq!(h.field(raw, "x-api-key"), Some(&b"a"[..]));
        assert_eq!(h.field(raw, "TRACEPARENT"), Some(&b"b"[..]));
        assert_eq!(h.field(raw, "x-api-kez"), Some(&b"c"[..]));
        for absent in ["tracestate", "authorization", "x-api-ke", "x-api-keys", "a"] {
            assert_eq!(h.field(raw, absent), None, "{absent}");
        }
        // The same head parsed again into the same `Head` forgets the old names.
        let other = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut again = h.clone();
        parse(other, &mut again).unwrap();
        assert_eq!(again.field(other, "x-api-key"), None);
        assert_eq!(again.field(other, "host"), Some(&b"h"[..]));
    }

    #[test]
    fn partial_heads_wait_and_oversized_heads_fail() {
        let mut h = Head::default();
        assert_eq!(parse(b"POST /v1/x HTTP/1.1\r\nHost:", &mut h), Ok(None));
        let mut big = b"GET / HTTP/1.1\r\nx-a: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse(&big, &mut h).unwrap_err().status, 431);
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nbad header\r\n\r\n", &mut h)
                .unwrap_err()
                .status,
            400
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many, &mut h).unwrap_err().status, 431);
    }

    #[test]
    fn absolute_form_targets_give_their_path() {
        let raw = b"GET http://gw.example:8080/v1/models?a HTTP/1.1\r\n\r\n";
        assert_eq!(parsed(raw).0.path(raw), "/v1/models");
        let raw = b"GET http://gw.example HTTP/1.1\r\n\r\n";
        assert_eq!(parsed(raw).0.path(raw), "/");
    }

    #[test]
    fn framing_and_reuse_follow_rfc_9112() {
        let sem = |raw: &[u8]| parsed(raw).0.semantics(raw);
        let s =
            sem(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
                .unwrap();
        assert_eq!(s.framing, Framing::Chunked);
        assert!(s.expect_continue);
        assert_eq!(
            sem(b"GET / HTTP/1.1\r\n\r\n").unwrap().framing,
            Framing::Length(0)
        );
        assert!(
            !sem(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keepalive
        );
        assert!(!sem(b"GET / HTTP/1.0\r\n\r\n").unwrap().keepalive);
        assert!(
            sem(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keepalive
        );
        // Smuggling shapes and unknown codings are refused.
        let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(sem(both).unwrap_err().status, 400);
        let two = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(sem(two).unwrap_err().status, 400);
        assert!(sem(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").is_ok());
        assert_eq!(
            sem(b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            sem(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
                .unwrap_err()
                .status,
            501
        );
        assert_eq!(
            sem(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
                .unwrap_err()
                .status,
            501
        );
    }
}
