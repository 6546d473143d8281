//! Building responses: JSON, SSE and OpenAI-shaped errors.

use worker::{Headers, Response};

use super::OrInternal;
use crate::EdgeError;

fn headers(content_type: &str, extra: &[(&str, &str)]) -> Result<Headers, EdgeError> {
    let h = Headers::new();
    h.set("content-type", content_type).or_internal("headers")?;
    for (k, v) in extra {
        h.set(k, v).or_internal("headers")?;
    }
    Ok(h)
}

/// A JSON body with `status` and extra headers.
pub fn json(status: u16, body: Vec<u8>, extra: &[(&str, &str)]) -> Result<Response, EdgeError> {
    Ok(Response::from_bytes(body)
        .or_internal("response")?
        .with_status(status)
        .with_headers(headers("application/json", extra)?))
}

/// A complete SSE body (cache replays).
pub fn sse_bytes(body: Vec<u8>, extra: &[(&str, &str)]) -> Result<Response, EdgeError> {
    Ok(Response::from_bytes(body)
        .or_internal("response")?
        .with_headers(sse_headers(extra)?))
}

/// Headers for an event stream.
pub fn sse_headers(extra: &[(&str, &str)]) -> Result<Headers, EdgeError> {
    let h = headers("text/event-stream; charset=utf-8", extra)?;
    h.set("cache-control", "no-cache").or_internal("headers")?;
    Ok(h)
}

/// The one place an [`EdgeError`] becomes a response.
pub fn error(e: &EdgeError) -> worker::Result<Response> {
    let h = Headers::new();
    h.set("content-type", "application/json")?;
    if e.status() == 401 {
        h.set("www-authenticate", "Bearer")?;
    }
    Ok(Response::from_bytes(e.body().to_json())?
        .with_status(e.status())
        .with_headers(h))
}
