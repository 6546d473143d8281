//! Fast paths for well-formed OpenAI answers, tried before the full scan: the usage member
//! read from the end ([`usage_at_tail`]), and usage with the trace's facts read by a walk
//! that skips values without checking them ([`answer`]). Each gives up (`None`) on anything unusual —
//! an escaped key, a repeated field, a value of the wrong type — and the full scan decides.
//! Neither validates the rest of the body, which passes to the client untouched anyway: a
//! body broken elsewhere can still report its usage and facts.

use std::ops::Range;

use super::{AnswerFacts, Usage};
use crate::json_scan::{Scanner, Strings, special_bytes, u64_digits};

/// `usage` as the LAST member of the top-level object, where OpenAI and the servers that
/// copy it put it: found from the end and read alone, so the choices and the completion are
/// not scanned. `Some(None)`: `"usage": null`.
///
/// Why a match is the top-level member, in a valid body: `"usage"` is preceded (after
/// whitespace) by the object's `{` or a `,`, so its first quote is structural (inside a
/// string every quote is escaped, and after a closing quote only `,` `:` `}` `]` can
/// follow), and it is followed by `:`, so it is a key; its value is followed only by
/// whitespace and the body's final `}`, so no inner object closes after it.
pub(super) fn usage_at_tail(body: &[u8]) -> Option<Option<Usage>> {
    const KEY: &[u8] = b"\"usage\"";
    let inner = body.trim_ascii().strip_prefix(b"{")?.strip_suffix(b"}")?;
    let at = rfind(inner, KEY)?;
    if !matches!(inner[..at].trim_ascii_end().last(), None | Some(b',')) {
        return None;
    }
    let value = inner[at + KEY.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")?;
    let mut w = Walk { b: value, i: 0 };
    let usage = w.usage()?;
    w.ws();
    (w.i == value.len()).then_some(usage)
}

/// Where `needle` (which starts with `"`) last occurs in `hay`: quotes found eight bytes at
/// a time from the end.
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let splat = ONES * u64::from(b'"');
    let mut end = hay.len();
    while end >= 8 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&hay[end - 8..end]);
        let x = u64::from_le_bytes(word) ^ splat;
        // The high bit of each zero byte, exact for every byte (no borrow between bytes).
        let mut hits = !(((x & !HIGHS) + !HIGHS) | x) & HIGHS;
        while hits != 0 {
            let top = 63 - hits.leading_zeros() as usize;
            let at = end - 8 + top / 8;
            if hay[at..].starts_with(needle) {
                return Some(at);
            }
            hits &= !(1u64 << top);
        }
        end -= 8;
    }
    (0..end).rev().find(|&i| hay[i..].starts_with(needle))
}

/// The answer's usage, `id`, `model` and every `choices[].finish_reason`, from one walk of
/// the top level that reads only those and jumps over every other value.
pub(super) fn answer(body: &[u8]) -> Option<(Option<Usage>, AnswerFacts)> {
    let mut w = Walk { b: body, i: 0 };
    let mut f = AnswerFacts::default();
    let mut usage = None;
    let mut seen = [false; 4];
    w.object(|w, key| {
        let field = match key {
            b"id" => 0,
            b"model" => 1,
            b"choices" => 2,
            b"usage" => 3,
            _ => return w.skip_value(),
        };
        if std::mem::replace(&mut seen[field], true) {
            return None; // repeated: serde refuses the body; the full scan says how
        }
        match field {
            0 => f.id = w.opt_string()?,
            1 => f.model = w.opt_string()?,
            3 => usage = w.usage()?,
            _ => {
                // (`null` choices: serde refuses them; so does this walk, by `array`.)
                w.array(|w| {
                    let mut reason_seen = false;
                    w.object(|w, key| {
                        if key != b"finish_reason" {
                            return w.skip_value();
                        }
                        if std::mem::replace(&mut reason_seen, true) {
                            return None;
                        }
                        f.finish_reasons.extend(w.opt_string()?);
                        Some(())
                    })
                })?;
            }
        }
        Some(())
    })?;
    w.ws();
    (w.i == body.len()).then_some((usage, f))
}

/// A position in a body, moved over JSON without checking what it skips.
pub(super) struct Walk<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
}

impl Walk<'_> {
    pub(super) fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Consumes `c` after whitespace.
    pub(super) fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// Past the string whose opening quote is at `self.i`; returns where its raw content
    /// lies and whether it holds an escape.
    pub(super) fn string(&mut self) -> Option<(Range<usize>, bool)> {
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            while let Some(chunk) = self.b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
                let special = special_bytes(u64::from_le_bytes(*chunk));
                if special != 0 {
                    i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match *self.b.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        self.i = i + 1;
        Some((start..i, escaped))
    }

    /// Past one value (after whitespace), nested ones included.
    pub(super) fn skip_value(&mut self) -> Option<()> {
        self.ws();
        let mut depth = 0usize;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                }
                b',' | b':' if depth > 0 => self.i += 1,
                b',' | b':' => return None,
                _ => {
                    // A number, a literal or whitespace.
                    self.i += 1;
                    while !matches!(
                        self.b.get(self.i),
                        None | Some(b',' | b':' | b'}' | b']' | b'"' | b'{' | b'[')
                    ) {
                        self.i += 1;
                    }
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }

    /// OpenAI's usage object or `null` (the fields `read_usage` reads; a repeated one or a
    /// count that is not a `u64` gives up).
    fn usage(&mut self) -> Option<Option<Usage>> {
        if self.null() {
            return Some(None);
        }
        let mut u = Usage::default();
        let mut seen = [false; 4];
        self.object(|w, key| {
            let field = match key {
                b"prompt_tokens" => 0,
                b"completion_tokens" => 1,
                b"prompt_tokens_details" => 2,
                b"cache_creation_input_tokens" => 3,
                _ => return w.skip_value(),
            };
            if std::mem::replace(&mut seen[field], true) {
                return None;
            }
            match field {
                0 => u.prompt_tokens = w.count()?,
                1 => u.completion_tokens = w.count()?,
                2 => {
                    if !w.null() {
                        let mut cached_seen = false;
                        w.object(|w, key| {
                            if key != b"cached_tokens" {
                                return w.skip_value();
                            }
                            if std::mem::replace(&mut cached_seen, true) {
                                return None;
                            }
                            u.cache_read_tokens = w.opt_count()?.unwrap_or(0);
                            Some(())
                        })?;
                    }
                }
                _ => u.cache_creation_tokens = w.opt_count()?.unwrap_or(0),
            }
            Some(())
        })?;
        Some(Some(u))
    }

    /// A token count: a JSON number of plain digits that fits a `u64`.
    fn count(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        while matches!(
            self.b.get(self.i),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        u64_digits(&self.b[start..self.i])
    }

    fn opt_count(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.count().map(Some)
    }

    /// `null` (after whitespace), consumed.
    pub(super) fn null(&mut self) -> bool {
        self.ws();
        let hit = self.b[self.i..].starts_with(b"null");
        self.i += if hit { 4 } else { 0 };
        hit
    }

    /// A string or `null`; anything else gives up.
    fn opt_string(&mut self) -> Option<Option<String>> {
        if self.null() {
            return Some(None);
        }
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let at = self.i;
        let (raw, escaped) = self.string()?;
        if !escaped {
            return std::str::from_utf8(&self.b[raw])
                .ok()
                .map(|s| Some(s.to_owned()));
        }
        // Escapes resolved (and checked) by the scanner.
        let mut s = Scanner::new(&self.b[at..self.i], Strings::Checked);
        let text = s.read_str().ok()?;
        Some(Some(text.into_owned()))
    }

    /// An object's members: `member` gets each key (escape-free keys only) with the
    /// position at its value, and must consume the value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let (key, escaped) = self.string()?;
            if escaped || !self.eat(b':') {
                return None;
            }
            let b = self.b;
            member(self, &b[key])?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// An array's elements: `element` must consume each.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(());
        }
        loop {
            element(self)?;
            if self.eat(b']') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}
