//! A small, strict JSON scanner: walks a document in place, without building values.
//!
//! The gateway reads a handful of fields from bodies it otherwise passes through untouched
//! (the client request's `model`, an answer's `usage`). Deserializing those bodies with
//! serde builds or walks far more than needed; this scanner skips what the caller does not
//! ask for and hands back byte ranges and borrowed strings for what it does.
//!
//! It accepts exactly what serde_json accepts (RFC 8259: no trailing commas, no leading
//! zeros, no `NaN`, no control characters in strings, only the standard escapes), and it
//! reproduces the two ways serde_json treats strings:
//!
//! - strings *read* as text ([`Scanner::read_str`], object keys) must be UTF-8 and their
//!   `\u` escapes must pair surrogates, as serde_json's `parse_str`;
//! - strings *skipped* inside [`Scanner::skip_value`] are checked for UTF-8 only in
//!   [`Strings::Checked`] mode (serde_json's `RawValue`), not in [`Strings::Unchecked`]
//!   mode (serde_json's `IgnoredAny`); lone surrogates in skipped strings are accepted.
//!
//! Nothing recurses: nesting is tracked in a bit stack, so a hostile body cannot overflow
//! the call stack. Nesting is limited by [`Scanner::with_max_depth`] (unlimited by default,
//! as serde_json is for skipped values).
//!
//! Errors say where and what, but not serde_json's wording: a caller that must report
//! serde_json's exact message re-parses the (rare) rejected body with serde_json.
//!
//! ```text
//! Scanner::new(body, Strings::Checked)
//!   .begin_object()            '{'
//!   .next_key(&mut first)      "key" ':'   (None after '}')
//!   .skip_value() / read_str() / read_u64() / read_null() / begin_array() …
//!   .finish()                  only whitespace left
//! ```

use std::borrow::Cow;
use std::ops::Range;

mod number;
mod skip;
mod string;
mod structs;

pub(crate) use number::u64_digits;
pub(crate) use string::{contains, special_bytes, write_str};

#[cfg(test)]
pub(crate) mod testgen;
#[cfg(test)]
mod tests;

/// How [`Scanner::skip_value`] treats the bytes of the strings it skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strings {
    /// Skipped strings must be UTF-8 (serde_json's `RawValue`).
    Checked,
    /// Skipped strings may hold any bytes but control characters (serde_json's
    /// `IgnoredAny`).
    Unchecked,
}

/// Why a document was rejected, and at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte offset where the problem was found.
    pub at: usize,
    /// What is wrong.
    pub kind: ScanErrorKind,
}

/// What is wrong with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanErrorKind {
    /// The input ended inside a value.
    Eof,
    /// A byte that JSON does not allow here.
    Syntax,
    /// A string that is not UTF-8, or a `\u` escape that is a lone surrogate.
    InvalidText,
    /// Nesting deeper than the scanner's limit.
    TooDeep,
    /// Valid JSON, but not of the type the caller asked for (e.g. a float for a `u64`).
    Type,
    /// An object gives the same field twice where serde's derive rejects duplicates.
    DuplicateField,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ScanErrorKind::Eof => "unexpected end of input",
            ScanErrorKind::Syntax => "unexpected byte",
            ScanErrorKind::InvalidText => "invalid UTF-8 or lone surrogate in a string",
            ScanErrorKind::TooDeep => "nesting too deep",
            ScanErrorKind::Type => "value of the wrong type",
            ScanErrorKind::DuplicateField => "duplicate field",
        };
        write!(f, "{what} at byte {}", self.at)
    }
}

/// An object key (checked as text: UTF-8, surrogates paired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// The bytes between the quotes, escapes as written.
    pub raw: Range<usize>,
    /// The key with its escapes resolved; `None` when it has none (the raw bytes are the
    /// key).
    pub unescaped: Option<String>,
}

// === impl Key ===

impl Key {
    /// The key's text, from the scanned document's bytes.
    pub(crate) fn text<'k>(&'k self, bytes: &'k [u8]) -> &'k [u8] {
        match &self.unescaped {
            Some(text) => text.as_bytes(),
            None => &bytes[self.raw.clone()],
        }
    }
}

/// A cursor over one JSON document.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    strings: Strings,
    /// Containers opened by the caller (`begin_object`/`begin_array`) and not yet closed.
    depth: usize,
    max_depth: usize,
}

// === impl Scanner ===

impl<'a> Scanner<'a> {
    /// A scanner at the start of `bytes`, with no nesting limit.
    pub(crate) fn new(bytes: &'a [u8], strings: Strings) -> Self {
        Self {
            bytes,
            pos: 0,
            strings,
            depth: 0,
            max_depth: usize::MAX,
        }
    }

    /// Rejects documents that nest arrays and objects deeper than `max_depth` levels
    /// (the outermost container is level 1) with [`ScanErrorKind::TooDeep`].
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    fn err<T>(&self, kind: ScanErrorKind) -> Result<T, ScanError> {
        Err(ScanError { at: self.pos, kind })
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline]
    fn peek(&mut self) -> Result<u8, ScanError> {
        // Compact JSON has no whitespace between tokens.
        if let Some(&b) = self.bytes.get(self.pos)
            && b > b' '
        {
            return Ok(b);
        }
        self.peek_past_whitespace()
    }

    fn peek_past_whitespace(&mut self) -> Result<u8, ScanError> {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                _ => return Ok(b),
            }
        }
        self.err(ScanErrorKind::Eof)
    }

    /// Consumes `byte` (after whitespace) or fails.
    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), ScanError> {
        if self.peek()? == byte {
            self.pos += 1;
            Ok(())
        } else {
            self.err(ScanErrorKind::Syntax)
        }
    }

    fn enter(&mut self, extra: usize) -> Result<(), ScanError> {
        if self.depth.saturating_add(extra) >= self.max_depth {
            return self.err(ScanErrorKind::TooDeep);
        }
        Ok(())
    }

    /// Succeeds when only whitespace is left.
    pub(crate) fn finish(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            Err(_) => Ok(()),
            Ok(_) => self.err(ScanErrorKind::Syntax),
        }
    }

    /// Byte offset of the next unread byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes being scanned.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Consumes `{` (after whitespace); walk the members with [`Scanner::next_key`].
    pub(crate) fn begin_object(&mut self) -> Result<(), ScanError> {
        if self.peek()? != b'{' {
            return self.err(ScanErrorKind::Type);
        }
        self.enter(0)?;
        self.pos += 1;
        self.depth += 1;
        Ok(())
    }

    /// The next member's key (its `:` consumed; the caller then consumes the value), or
    /// `None` once the closing `}` is consumed. `first` starts true after
    /// [`Scanner::begin_object`] and is kept by this method.
    #[inline]
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Result<Option<Key>, ScanError> {
        let mut b = self.peek()?;
        if *first {
            *first = false;
        } else if b == b',' {
            self.pos += 1;
            b = self.peek()?;
            if b != b'"' {
                return self.err(ScanErrorKind::Syntax);
            }
        } else if b != b'}' {
            return self.err(ScanErrorKind::Syntax);
        }
        match b {
            b'}' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(None)
            }
            b'"' => {
                self.pos += 1;
                let (raw, unescaped) = self.str_text()?;
                self.expect(b':')?;
                Ok(Some(Key { raw, unescaped }))
            }
            _ => self.err(ScanErrorKind::Syntax),
        }
    }

    /// Consumes `[` (after whitespace); walk the elements with [`Scanner::next_element`].
    pub(crate) fn begin_array(&mut self) -> Result<(), ScanError> {
        if self.peek()? != b'[' {
            return self.err(ScanErrorKind::Type);
        }
        self.enter(0)?;
        self.pos += 1;
        self.depth += 1;
        Ok(())
    }

    /// True when another element follows (the caller then consumes it); false once the
    /// closing `]` is consumed. `first` starts true after [`Scanner::begin_array`].
    #[inline]
    pub(crate) fn next_element(&mut self, first: &mut bool) -> Result<bool, ScanError> {
        let b = self.peek()?;
        if b == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        if *first {
            *first = false;
            return Ok(true);
        }
        if b != b',' {
            return self.err(ScanErrorKind::Syntax);
        }
        self.pos += 1;
        if self.peek()? == b']' {
            // `[1,]`
            return self.err(ScanErrorKind::Syntax);
        }
        Ok(true)
    }

    /// Consumes `null` (after whitespace) if it comes next.
    #[inline]
    pub(crate) fn read_null(&mut self) -> Result<bool, ScanError> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads a string (after whitespace) as text: UTF-8, surrogates paired. Borrowed
    /// unless it has escapes.
    pub(crate) fn read_str(&mut self) -> Result<Cow<'a, str>, ScanError> {
        if self.peek()? != b'"' {
            return self.err(ScanErrorKind::Type);
        }
        self.pos += 1;
        self.str_value()
    }
}
