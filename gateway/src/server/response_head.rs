//! A response's status and header fields as the request path builds them: a small list of
//! borrowed or owned strings, written straight to HTTP/1.1 bytes by [`super::h1`] or turned
//! into Pingora's header for HTTP/2. No header map is built on the HTTP/1.1 path.

use std::borrow::Cow;
use std::time::Instant;

use pingora_http::ResponseHeader;

/// Status and fields of a response. Names are lowercase literals; a later `insert` of the
/// same name replaces the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// HTTP status code.
    pub status: u16,
    fields: Vec<(&'static str, Cow<'a, str>)>,
    /// A clock reading taken just before, for the `Date` field (else the writer reads one).
    pub at: Option<Instant>,
}

impl<'a> ResponseHead<'a> {
    /// An empty head with room for the fields a gateway answer usually carries.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            fields: Vec::with_capacity(12),
            at: None,
        }
    }

    /// Sets field `name` (a lowercase literal) to `value`, replacing an earlier value.
    pub fn insert(&mut self, name: &'static str, value: impl Into<Cow<'a, str>>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Every field, in insertion order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.fields.iter().map(|(n, v)| (*n, v.as_ref()))
    }

    /// Pingora's header for the same response (HTTP/2, or the admin listener).
    pub fn to_pingora(&self) -> pingora_error::Result<ResponseHeader> {
        let mut h = ResponseHeader::build(self.status, Some(self.fields.len()))?;
        for (n, v) in &self.fields {
            h.insert_header(*n, v.as_ref())?;
        }
        Ok(h)
    }
}

/// True when `v` can be a field value: no CR, LF, NUL or other control but tab.
pub(crate) fn valid_value(v: &[u8]) -> bool {
    // A fold without early exit: the compiler checks many bytes per instruction.
    v.iter()
        .fold(true, |ok, &b| ok & (b == b'\t' || (b >= 0x20 && b != 0x7f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_keeps_order() {
        let rid = String::from("r-1");
        let mut h = ResponseHead::new(200);
        h.insert("x-request-id", rid.as_str());
        h.insert("content-type", "text/plain");
        h.insert("content-type", String::from("application/json"));
        assert_eq!(h.get("Content-Type"), Some("application/json"));
        let fields: Vec<_> = h.fields().collect();
        assert_eq!(
            fields,
            [
                ("x-request-id", "r-1"),
                ("content-type", "application/json")
            ]
        );
        let p = h.to_pingora().unwrap();
        assert_eq!(p.status.as_u16(), 200);
        assert_eq!(p.headers.get("x-request-id").unwrap(), "r-1");
    }

    #[test]
    fn pingora_refuses_what_h1_would_refuse() {
        let mut h = ResponseHead::new(200);
        h.insert("x-a", "1\r\nevil: 2");
        assert!(h.to_pingora().is_err());
        assert!(!valid_value(b"1\r\nevil: 2"));
        assert!(valid_value(b"caf\xc3\xa9 \t ok"));
    }
}
