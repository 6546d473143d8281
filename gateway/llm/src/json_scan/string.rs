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
pub(crate) fn special_bytes(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'"')))
        | zero_bytes(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
}

/// [`Scanner::str_body`] found a backslash.
pub(super) const ESCAPED: u8 = 1;
/// [`Scanner::str_body`] may have seen a byte above 0x7F (never missed; may be a false
/// alarm from bytes after the closing quote).
pub(super) const NON_ASCII: u8 = 2;

impl<'a> Scanner<'a> {
    /// Moves past a string whose opening quote is consumed and returns what it holds
    /// ([`ESCAPED`], [`NON_ASCII`]). Escapes must be well formed (`\u` with four hex
    /// digits, surrogates not checked); bytes must be UTF-8 when `strings` is
    /// [`Strings::Checked`].
    #[inline(always)]
    pub(super) fn str_body(&mut self, strings: Strings) -> Result<u8, ScanError> {
        let bytes = self.bytes;
        let start = self.pos;
        let mut i = start;
        let mut seen = 0u64;
        let mut flags = 0;
        loop {
            // Eight bytes at a time through plain content; after four plain words (long
            // content, a prompt), 32 bytes a block with one branch each: the four words'
            // tests compile to vector instructions. A block with a special byte is left to
            // the word loop, which finds where. Short strings never pay for a block test.
            let mut plain = 0;
            while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
                let w = u64::from_le_bytes(*chunk);
                seen |= w;
                let special = special_bytes(w);
                if special != 0 {
                    i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
                plain += 1;
                if plain == 4 {
                    while let Some(block) = bytes.get(i..).and_then(<[u8]>::first_chunk::<32>) {
                        let (mut any, mut all) = (0, 0);
                        for word in block.chunks_exact(8) {
                            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
                            all |= w;
                            any |= special_bytes(w);
                        }
                        if any != 0 {
                            break;
                        }
                        seen |= all;
                        i += 32;
                    }
                }
            }
            match bytes.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    flags |= ESCAPED;
                    i = self.escape_end(i + 1)?;
                }
                Some(&b) if b < 0x20 => {
                    self.pos = i;
                    return self.err(ScanErrorKind::Syntax);
                }
                Some(&b) => {
                    seen |= u64::from(b);
                    i += 1;
                }
                None => {
                    self.pos = i;
                    return self.err(ScanErrorKind::Eof);
                }
            }
        }
        self.pos = i + 1;
        if seen & HIGHS != 0 {
            flags |= NON_ASCII;
            if strings == Strings::Checked && std::str::from_utf8(&bytes[start..i]).is_err() {
                return Err(ScanError {
                    at: start,
                    kind: ScanErrorKind::InvalidText,
                });
            }
        }
        Ok(flags)
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

    /// A string whose opening quote is consumed, checked as text (serde_json's
    /// `parse_str`: UTF-8, surrogates paired): its raw range between the quotes, and its
    /// value when it has escapes (without, the raw bytes are the value).
    #[inline]
    pub(super) fn str_text(&mut self) -> Result<(Range<usize>, Option<String>), ScanError> {
        let start = self.pos;
        let flags = self.str_body(Strings::Checked)?;
        let raw = start..self.pos - 1;
        if flags & ESCAPED == 0 {
            return Ok((raw, None));
        }
        let invalid = ScanError {
            at: start,
            kind: ScanErrorKind::InvalidText,
        };
        // Checked above: UTF-8.
        let text = std::str::from_utf8(&self.bytes[raw.clone()]).map_err(|_| invalid)?;
        let text = unescape(text).ok_or(invalid)?;
        Ok((raw, Some(text)))
    }

    /// [`Scanner::str_text`] as a string, borrowed when it has no escapes.
    pub(super) fn str_value(&mut self) -> Result<Cow<'a, str>, ScanError> {
        let start = self.pos;
        let (raw, unescaped) = self.str_text()?;
        if let Some(text) = unescaped {
            return Ok(Cow::Owned(text));
        }
        let bytes: &'a [u8] = self.bytes;
        std::str::from_utf8(&bytes[raw])
            .map(Cow::Borrowed)
            .map_err(|_| ScanError {
                at: start,
                kind: ScanErrorKind::InvalidText,
            })
    }
}

/// `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    let found = |at: usize| match rest.first() {
        // The second byte, compared inline, rules out nearly every candidate.
        Some(second) => hay.get(at + 1) == Some(second) && hay[at..].starts_with(needle),
        None => hay[at] == first,
    };
    let splat = ONES * u64::from(first);
    let mut i = 0;
    while let Some(chunk) = hay.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let mut hits = zero_bytes(u64::from_le_bytes(*chunk) ^ splat);
        while hits != 0 {
            if found(i + (hits.trailing_zeros() / 8) as usize) {
                return true;
            }
            hits &= hits - 1;
        }
        i += 8;
    }
    (i..hay.len()).any(found)
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
