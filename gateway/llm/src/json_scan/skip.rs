//! Skipping a whole value without recursion: open containers are bits in [`Frames`].

use std::ops::Range;

use super::{ScanError, ScanErrorKind, Scanner};

/// Open containers inside one [`Scanner::skip_value`]: one bit each (1 = object), the
/// newest 64 in `top`, older full words in `spill` (allocated only past 64 levels).
#[derive(Default)]
struct Frames {
    top: u64,
    len: usize,
    spill: Vec<u64>,
}

const OBJECT: u64 = 1;
const ARRAY: u64 = 0;

// === impl Frames ===

impl Frames {
    fn push(&mut self, frame: u64) {
        if self.len > 0 && self.len.is_multiple_of(64) {
            self.spill.push(self.top);
            self.top = 0;
        }
        self.top = (self.top << 1) | frame;
        self.len += 1;
    }

    fn pop(&mut self) {
        self.top >>= 1;
        self.len -= 1;
        if self.len > 0 && self.len.is_multiple_of(64) {
            self.top = self.spill.pop().unwrap_or(0);
        }
    }

    fn innermost(&self) -> u64 {
        self.top & 1
    }
}

// === impl Scanner ===

impl Scanner<'_> {
    /// Skips one value (after whitespace) and returns its byte range. Strings are checked
    /// as the scanner's [`Strings`] mode says.
    pub(crate) fn skip_value(&mut self) -> Result<Range<usize>, ScanError> {
        let start = {
            self.peek()?;
            self.pos
        };
        let mut frames = Frames::default();
        loop {
            // A value starts here (whitespace skipped).
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.enter(frames.len)?;
                    self.pos += 1;
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.pos += 1;
                    } else {
                        frames.push(if open == b'{' { OBJECT } else { ARRAY });
                        if open == b'{' {
                            self.skip_member_key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.pos += 1;
                    self.str_body(self.strings)?;
                }
                b'-' | b'0'..=b'9' => self.skip_number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return self.err(ScanErrorKind::Syntax),
            }
            // A value ended: close containers until one expects another member.
            loop {
                if frames.len == 0 {
                    return Ok(start..self.pos);
                }
                let b = self.peek()?;
                let object = frames.innermost() == OBJECT;
                match (b, object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.skip_member_key()?;
                        break;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        frames.pop();
                    }
                    _ => return self.err(ScanErrorKind::Syntax),
                }
            }
        }
    }

    /// `"key":` inside a skipped object.
    #[inline]
    fn skip_member_key(&mut self) -> Result<(), ScanError> {
        self.expect(b'"')?;
        self.str_body(self.strings)?;
        self.expect(b':')
    }

    #[inline]
    pub(super) fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            // serde_json fails at the first wrong byte; where exactly does not matter here.
            self.err(if end > self.bytes.len() {
                ScanErrorKind::Eof
            } else {
                ScanErrorKind::Syntax
            })
        }
    }
}
