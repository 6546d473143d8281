//! Unsigned integers as decimal text without `to_string`: header values such as
//! `content-length` are written for every request, and the formatting machinery and the
//! allocation cost more than the digits.

use std::borrow::Cow;

/// The decimal digits of a `u64`, held inline.
#[derive(Clone, Copy)]
pub(crate) struct Decimal {
    digits: [u8; 20],
    start: u8,
}

// === impl Decimal ===

impl Decimal {
    #[inline]
    pub(crate) fn new(n: u64) -> Self {
        let mut digits = [0u8; 20];
        let start = write_digits(&mut digits, n) as u8;
        Self { digits, start }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[usize::from(self.start)..]
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits are ever written, so this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

/// Appends the digits of `n` to `w`.
#[inline]
pub(crate) fn push(w: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let start = write_digits(&mut digits, n);
    w.extend_from_slice(&digits[start..]);
}

/// Writes the digits of `n` at the end of `out`; returns where they start.
#[inline(always)]
fn write_digits(out: &mut [u8; 20], mut n: u64) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// `n` as a header value: borrowed for the small counts that nearly every request has
/// (attempts), owned otherwise.
pub(crate) fn small(n: u64) -> Cow<'static, str> {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match SMALL.get(n as usize) {
        Some(s) if n < 10 => Cow::Borrowed(s),
        _ => Cow::Owned(Decimal::new(n).as_str().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_to_string_writes() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
            assert_eq!(small(n), n.to_string());
            let mut v = b"x".to_vec();
            push(&mut v, n);
            assert_eq!(v, format!("x{n}").into_bytes());
        }
        assert!(matches!(small(3), Cow::Borrowed("3")));
    }
}
