//! Writing a response head as HTTP/1.1 bytes and framing body pieces (length, chunked, or
//! until close), with the `date` and `connection` fields a server adds.

use crate::server::response_head::{ResponseHead, valid_value};

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyMode {
    /// No body (1xx, 204, 304, or an answer to HEAD).
    Empty,
    /// `content-length` bytes.
    Length,
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (HTTP/1.0 streams, or no length known).
    Close,
}

/// Appends the status line and fields of `head` to `w`. `keepalive` is whether the exchange
/// allows reuse; the result says how the body is framed and whether the connection stays.
pub(crate) fn head(
    w: &mut Vec<u8>,
    head: &ResponseHead<'_>,
    keepalive: bool,
    minor: u8,
    head_request: bool,
) -> Result<(BodyMode, bool), &'static str> {
    let status = head.status;
    if !(100..=999).contains(&status) {
        return Err("invalid response status");
    }
    let chunked = head
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mode = if status < 200 || status == 204 || status == 304 || head_request {
        BodyMode::Empty
    } else if chunked && minor >= 1 {
        BodyMode::Chunked
    } else if !chunked && head.get("content-length").is_some() {
        BodyMode::Length
    } else {
        BodyMode::Close
    };
    let keepalive = keepalive && mode != BodyMode::Close;
    w.extend_from_slice(b"HTTP/1.1 ");
    w.extend_from_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    w.extend_from_slice(reason.as_bytes());
    w.extend_from_slice(b"\r\n");
    for (name, value) in head.fields() {
        let skip = matches!(name, "connection" | "date" | "keep-alive")
            || (name == "transfer-encoding" && mode != BodyMode::Chunked)
            || (name == "content-length" && mode == BodyMode::Close);
        if skip {
            continue;
        }
        if !valid_value(value.as_bytes()) {
            return Err("invalid response header value");
        }
        field(w, name.as_bytes(), value.as_bytes());
    }
    let date = crate::clock::http_date(head.at.unwrap_or_else(std::time::Instant::now));
    field(w, b"date", &date);
    field(
        w,
        b"connection",
        if keepalive { b"keep-alive" } else { b"close" },
    );
    w.extend_from_slice(b"\r\n");
    Ok((mode, keepalive))
}

/// Appends one body piece in `mode`'s framing; `end` closes a chunked body.
pub(crate) fn body(w: &mut Vec<u8>, mode: BodyMode, data: &[u8], end: bool) {
    match mode {
        BodyMode::Empty => {}
        BodyMode::Length | BodyMode::Close => w.extend_from_slice(data),
        BodyMode::Chunked => {
            if !data.is_empty() {
                hex(w, data.len());
                w.extend_from_slice(b"\r\n");
                w.extend_from_slice(data);
                w.extend_from_slice(b"\r\n");
            }
            if end {
                w.extend_from_slice(b"0\r\n\r\n");
            }
        }
    }
}

fn field(w: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    w.extend_from_slice(name);
    w.extend_from_slice(b": ");
    w.extend_from_slice(value);
    w.extend_from_slice(b"\r\n");
}

fn hex(w: &mut Vec<u8>, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        w.push(b"0123456789abcdef"[(n >> (i * 4)) & 0xf]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(wire: &[u8]) -> (u16, Vec<(String, String)>) {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut fields);
        assert!(r.parse(wire).unwrap().is_complete());
        let f = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        (r.code.unwrap(), f)
    }

    fn get<'a>(f: &'a [(String, String)], n: &str) -> Option<&'a str> {
        f.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_length_answer_keeps_the_connection() {
        let mut h = ResponseHead::new(200);
        h.insert("content-type", "application/json");
        h.insert("content-length", "2");
        let mut w = Vec::new();
        assert_eq!(
            head(&mut w, &h, true, 1, false),
            Ok((BodyMode::Length, true))
        );
        body(&mut w, BodyMode::Length, b"{}", true);
        assert!(w.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(w.ends_with(b"\r\n\r\n{}"));
        let (status, f) = parse(&w);
        assert_eq!(status, 200);
        assert_eq!(get(&f, "connection"), Some("keep-alive"));
        assert_eq!(get(&f, "content-length"), Some("2"));
        assert!(get(&f, "date").is_some_and(|d| d.ends_with(" GMT")));

        // A reading the caller holds gives the date, formatted as `httpdate` would.
        let mut h = ResponseHead::new(200);
        let at = std::time::Instant::now();
        h.at = Some(at);
        let mut w = Vec::new();
        head(&mut w, &h, true, 1, false).unwrap();
        let (_, f) = parse(&w);
        let want = String::from_utf8(crate::clock::http_date(at).to_vec()).unwrap();
        assert_eq!(get(&f, "date"), Some(want.as_str()));
        let parsed = httpdate::parse_http_date(&want).unwrap();
        let off = parsed.elapsed().unwrap_or_default();
        assert!(off < std::time::Duration::from_secs(2), "{want}");
    }

    #[test]
    fn streams_are_chunked_on_1_1_and_close_delimited_on_1_0() {
        let mut h = ResponseHead::new(200);
        h.insert("transfer-encoding", "chunked");
        let mut w = Vec::new();
        assert_eq!(
            head(&mut w, &h, true, 1, false),
            Ok((BodyMode::Chunked, true))
        );
        let start = w.len();
        body(&mut w, BodyMode::Chunked, &[b'x'; 26], false);
        body(&mut w, BodyMode::Chunked, b"", true);
        assert_eq!(&w[start..start + 4], b"1a\r\n");
        assert!(w.ends_with(b"\r\n0\r\n\r\n"));

        let mut w = Vec::new();
        assert_eq!(
            head(&mut w, &h, true, 0, false),
            Ok((BodyMode::Close, false))
        );
        let (_, f) = parse(&w);
        assert_eq!(get(&f, "transfer-encoding"), None);
        assert_eq!(get(&f, "connection"), Some("close"));
    }

    #[test]
    fn bodiless_statuses_and_bad_values() {
        let mut w = Vec::new();
        let h = ResponseHead::new(204);
        assert_eq!(
            head(&mut w, &h, true, 1, false),
            Ok((BodyMode::Empty, true))
        );
        let mut h = ResponseHead::new(429);
        h.insert("retry-after", "1\r\nx: y");
        assert!(head(&mut Vec::new(), &h, true, 1, false).is_err());
        let mut w = Vec::new();
        let h = ResponseHead::new(599);
        head(&mut w, &h, false, 1, false).unwrap();
        assert!(w.starts_with(b"HTTP/1.1 599 Unknown\r\n"));
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for (n, s) in [
            (0usize, "0"),
            (1, "1"),
            (15, "f"),
            (16, "10"),
            (65535, "ffff"),
        ] {
            let mut w = Vec::new();
            hex(&mut w, n);
            assert_eq!(w, s.as_bytes());
        }
    }
}
