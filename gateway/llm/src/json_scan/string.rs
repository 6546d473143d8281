//! Strings: finding the closing quote fast, checking escapes, and resolving them.

use std::borrow::Cow;
use std::ops::Range;

use super::{ScanError, ScanErrorKind, Scanner, Strings};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is zero. A borrow can only set bits *above* a true
/// zero byte, so the lowest set bit is exact.
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bit set (lowest one exact) in each byte of `w` that ends a plain run of string
/// content: `"`, `\` or a control character.
fn special_bytes(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'"')))
        | zero_bytes(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
}

impl<'a> Scanner<'a> {
    /// Moves past a string whose opening quote is consumed; returns whether it has
    /// escapes. Escapes must be well formed (`\u` with four hex digits, surrogates not
    /// checked); bytes must be UTF-8 when `strings` is [`Strings::Checked`].
    pub(super) fn skip_str_body(&mut self, strings: Strings) -> Result<bool, ScanError> {
        let bytes = self.bytes;
        let start = self.pos;
        let mut i = start;
        let mut non_ascii = 0u64;
        let mut escaped = false;
        loop {
            // Eight bytes at a time through plain content.
            while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
                let w = u64::from_le_bytes(*chunk);
                let special = special_bytes(w);
                if special != 0 {
                    let k = (special.trailing_zeros() / 8) as usize;
                    non_ascii |= w & HIGHS & ((1u64 << (8 * k)) - 1);
                    i += k;
                    break;
                }
                non_ascii |= w & HIGHS;
                i += 8;
            }
            match bytes.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape_end(i + 1)?;
                }
                Some(&b) if b < 0x20 => {
                    self.pos = i;
                    return self.err(ScanErrorKind::Syntax);
                }
                Some(&b) => {
                    non_ascii |= u64::from(b & 0x80);
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return self.err(ScanErrorKind::Eof);
                }
            }
        }
        self.pos = i + 1;
        if strings == Strings::Checked
            && non_ascii != 0
            && std::str::from_utf8(&bytes[start..i]).is_err()
        {
            return Err(ScanError {
                at: start,
                kind: ScanErrorKind::InvalidText,
            });
        }
        Ok(escaped)
    }

    /// Where the escape whose backslash precedes `i` ends.
    fn escape_end(&mut self, i: usize) -> Result<usize, ScanError> {
        let fail = |s: &mut Self, at: usize, kind| {
            s.pos = at;
            s.err(kind)
        };
        match self.bytes.get(i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
            Some(b'u') => match self.bytes.get(i + 1..i + 5) {
                Some(hex) if hex4(hex).is_some() => Ok(i + 5),
                Some(_) => fail(self, i + 1, ScanErrorKind::Syntax),
                None => fail(self, self.bytes.len(), ScanErrorKind::Eof),
            },
            Some(_) => fail(self, i, ScanErrorKind::Syntax),
            None => fail(self, i, ScanErrorKind::Eof),
        }
    }

    /// A string whose opening quote is consumed, as text (serde_json's `parse_str`):
    /// its raw range between the quotes and its value, borrowed when it has no escapes.
    pub(super) fn str_text(&mut self) -> Result<(Range<usize>, Cow<'a, str>), ScanError> {
        let start = self.pos;
        let escaped = self.skip_str_body(Strings::Unchecked)?;
        let raw = start..self.pos - 1;
        let bytes: &'a [u8] = self.bytes;
        let invalid = ScanError {
            at: start,
            kind: ScanErrorKind::InvalidText,
        };
        let text = std::str::from_utf8(&bytes[raw.clone()]).map_err(|_| invalid)?;
        if !escaped {
            return Ok((raw, Cow::Borrowed(text)));
        }
        let text = unescape(text).ok_or(invalid)?;
        Ok((raw, Cow::Owned(text)))
    }
}

/// The value of four hex digits.
fn hex4(hex: &[u8]) -> Option<u32> {
    hex.iter().try_fold(0u32, |n, &b| {
        let d = char::from(b).to_digit(16)?;
        Some(n << 4 | d)
    })
}

/// Resolves the escapes of well-formed string content; `None` for a lone surrogate.
pub(crate) fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(k) = rest.find('\\') {
        out.push_str(&rest[..k]);
        let b = rest.as_bytes();
        let (c, used) = match b.get(k + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => {
                let n = hex4(b.get(k + 2..k + 6)?)?;
                match n {
                    0xDC00..=0xDFFF => return None,
                    0xD800..=0xDBFF => {
                        if b.get(k + 6..k + 8) != Some(b"\\u") {
                            return None;
                        }
                        let low = hex4(b.get(k + 8..k + 12)?)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        let c = 0x1_0000 + ((n - 0xD800) << 10) + (low - 0xDC00);
                        (char::from_u32(c)?, 12)
                    }
                    _ => (char::from_u32(n)?, 6),
                }
            }
            _ => return None,
        };
        out.push(c);
        rest = &rest[k + used..];
    }
    out.push_str(rest);
    Some(out)
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\`,
/// the short forms `\b \f \n \r \t`, `\u00xx` (lowercase hex) for other control
/// characters; everything else verbatim.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + 1;
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}
