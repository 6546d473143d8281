//! The credentials the suite uses, and a scan for them in anything the gateway emits
//! (logs, spans, metrics). A match is always a leak: none of these may ever be printed.

use crate::{DEV_KEY, KEY_ALL, KEY_LIMITED, UPSTREAM_KEY};

/// Fixed credentials of the harness, plus the start every JWT shares (`{"alg":` in
/// base64url), so a bearer token from any test is caught too.
pub const KNOWN: &[&str] = &[KEY_ALL, KEY_LIMITED, UPSTREAM_KEY, DEV_KEY, "eyJhbGciOi"];

/// The first known secret in `text`.
pub fn find_in(text: &str) -> Option<&'static str> {
    KNOWN.iter().copied().find(|s| text.contains(s))
}

/// The lines of `text` that contain `secret`, with the secret masked (for the report).
pub fn lines_with(text: &str, secret: &str) -> String {
    text.lines()
        .filter(|l| l.contains(secret))
        .take(5)
        .map(|l| l.replace(secret, "<SECRET>"))
        .collect::<Vec<_>>()
        .join("\n")
}
