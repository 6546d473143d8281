//! Numbers: the JSON grammar, and `u64` as serde_json reads it.

use super::{ScanError, ScanErrorKind, Scanner};

impl Scanner<'_> {
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    pub(super) fn skip_number(&mut self) -> Result<(), ScanError> {
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                    return self.err(ScanErrorKind::Syntax);
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(_) => return self.err(ScanErrorKind::Syntax),
            None => return self.err(ScanErrorKind::Eof),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.err(ScanErrorKind::Syntax);
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err(ScanErrorKind::Syntax);
            }
        }
        Ok(())
    }

    /// Reads an unsigned integer (after whitespace) as serde_json reads a `u64`: digits
    /// only (no sign, fraction or exponent) and no more than `u64::MAX`. Other numbers and
    /// other values are [`ScanErrorKind::Type`] errors; malformed ones are syntax errors.
    pub(crate) fn read_u64(&mut self) -> Result<u64, ScanError> {
        let start = {
            self.peek()?;
            self.pos
        };
        match self.bytes[start] {
            b'-' | b'0'..=b'9' => {}
            _ => return self.err(ScanErrorKind::Type),
        }
        self.skip_number()?;
        match u64_digits(&self.bytes[start..self.pos]) {
            Some(n) => Ok(n),
            None => Err(ScanError {
                at: start,
                kind: ScanErrorKind::Type,
            }),
        }
    }
}

/// The value of a JSON number written as plain decimal digits that fits a `u64`.
pub(crate) fn u64_digits(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 || (raw.len() > 1 && raw[0] == b'0') {
        return None;
    }
    raw.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}
