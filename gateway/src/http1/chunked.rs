//! Decoding a `Transfer-Encoding: chunked` body (RFC 9112 §7.1), a push parser over a
//! connection's read buffer: it consumes what it can and says when it needs more bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk-size line (size and extensions) accepted.
const MAX_LINE: usize = 4096;
/// Most trailer bytes accepted (trailers are read and dropped).
const MAX_TRAILERS: usize = 16 << 10;

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete next piece: read more.
    More,
    /// The last chunk and the trailers were read.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
    Done,
}

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Self { state: State::Size }
    }
}

impl Decoder {
    /// Consumes from the front of `buf` as far as the next piece of data or the end.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, &'static str> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Size => {
                    let Some(line) = line_len(buf, MAX_LINE)? else {
                        return Ok(Step::More);
                    };
                    let size = parse_size(&buf[..line])?;
                    buf.advance(line + 2);
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(Step::Data(data));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF");
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers(seen) => {
                    let Some(line) = line_len(buf, MAX_TRAILERS - seen)? else {
                        return Ok(Step::More);
                    };
                    buf.advance(line + 2);
                    self.state = if line == 0 {
                        State::Done
                    } else {
                        State::Trailers(seen + line + 2)
                    };
                }
            }
        }
    }
}

/// Length of the line at the front of `buf` (without its CRLF), if complete.
fn line_len(buf: &[u8], max: usize) -> Result<Option<usize>, &'static str> {
    match memchr_crlf(buf) {
        Some(n) if n <= max => Ok(Some(n)),
        Some(_) => Err("chunk line too long"),
        None if buf.len() > max + 1 => Err("chunk line too long"),
        None => Ok(None),
    }
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The hexadecimal size before any `;extension`.
fn parse_size(line: &[u8]) -> Result<u64, &'static str> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 {
        return Err("invalid chunk size");
    }
    let mut n = 0u64;
    for &b in digits {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err("invalid chunk size"),
        };
        n = n * 16 + u64::from(d);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes; returns the body or the error.
    fn decode(wire: &[u8], step: usize) -> Result<Vec<u8>, &'static str> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut pieces = wire.chunks(step);
        loop {
            match d.step(&mut buf)? {
                Step::Data(b) => body.extend_from_slice(&b),
                Step::Done => return Ok(body),
                Step::More => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return Err("truncated"),
                },
            }
        }
    }

    #[test]
    fn decodes_at_any_split() {
        let wire = b"7;ext=1\r\n{\"a\":1}\r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
        for step in [1, 2, 3, 5, 7, 64] {
            assert_eq!(
                decode(wire, step).unwrap(),
                b"{\"a\":1}0123456789",
                "step {step}"
            );
        }
        assert_eq!(decode(b"0\r\n\r\n", 1).unwrap(), b"");
    }

    #[test]
    fn leaves_what_follows_the_body_in_the_buffer() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n"[..]);
        assert_eq!(d.step(&mut buf), Ok(Step::Data(Bytes::from_static(b"a"))));
        assert_eq!(d.step(&mut buf), Ok(Step::Done));
        assert_eq!(d.state, State::Done);
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn refuses_malformed_framing() {
        assert_eq!(decode(b"z\r\n", 4), Err("invalid chunk size"));
        assert_eq!(decode(b"\r\n", 4), Err("invalid chunk size"));
        assert_eq!(
            decode(b"1\r\nab\r\n", 8),
            Err("chunk data not followed by CRLF")
        );
        assert_eq!(
            decode(b"1000000000000000\r\n", 32),
            Err("invalid chunk size")
        );
        let long = [b'1'; MAX_LINE + 8];
        assert_eq!(decode(&long, 1024), Err("chunk line too long"));
        assert_eq!(decode(b"3\r\nab", 2), Err("truncated"));
    }
}
