//! Request counters (`GET /stats`) and the last generation request (`GET /last-request`).
//!
//! Every generation request holds a [`RequestGuard`] from arrival until its response body is
//! finished; a guard dropped unfinished means the client went away (or its connection died),
//! which is how a test sees that a gateway cancelled its upstream request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Uri};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

/// Counters shared by all connections.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    faulted: AtomicU64,
    active: AtomicU64,
    last_body_bytes: AtomicU64,
    token_requests: AtomicU64,
    last_request: Mutex<Option<(Uri, HeaderMap, Bytes)>>,
    prefix_cache: super::prefix_cache::PrefixCache,
}

/// How a request ended, decided when its guard drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Still running: dropping the guard now means the client went away.
    Running,
    /// The whole response was handed to the connection.
    Completed,
    /// The mock deliberately broke the exchange (reset, drop-mid-stream).
    Faulted,
}

/// Marks one generation request as in flight; counts it when dropped.
#[derive(Debug)]
pub struct RequestGuard {
    stats: Arc<Stats>,
    outcome: Outcome,
}

// === impl Stats ===

impl Stats {
    /// Counts a new request and returns its guard.
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        RequestGuard {
            stats: Arc::clone(self),
            outcome: Outcome::Running,
        }
    }

    /// Stores the target, headers and body of the latest generation request (the previous one
    /// is dropped).
    pub fn record(&self, uri: &Uri, headers: HeaderMap, body: Bytes) {
        self.last_body_bytes.store(body.len() as u64, Relaxed);
        self.prefix_cache.observe(&body);
        *self.last_request.lock() = Some((uri.clone(), headers, body));
    }

    /// Counts a `POST /token` call.
    pub fn count_token_request(&self) {
        self.token_requests.fetch_add(1, Relaxed);
    }

    /// Zeroes the counters (requests in flight stay counted in `active`).
    pub fn reset(&self) {
        for c in [
            &self.requests,
            &self.completed,
            &self.cancelled,
            &self.faulted,
            &self.last_body_bytes,
            &self.token_requests,
        ] {
            c.store(0, Relaxed);
        }
        self.prefix_cache.reset();
    }

    /// `GET /stats` body. `requests = completed + cancelled + faulted + active` between resets.
    pub fn to_json(&self) -> Value {
        let (hits, misses) = self.prefix_cache.counts();
        json!({
            "prefix_cache_hits": hits,
            "prefix_cache_misses": misses,
            "requests": self.requests.load(Relaxed),
            "completed": self.completed.load(Relaxed),
            "cancelled": self.cancelled.load(Relaxed),
            "faulted": self.faulted.load(Relaxed),
            "active": self.active.load(Relaxed),
            "last_body_bytes": self.last_body_bytes.load(Relaxed),
            "token_requests": self.token_requests.load(Relaxed),
        })
    }

    /// The last generation request's exact body bytes and its content type.
    pub fn last_body(&self) -> Option<(HeaderValue, Bytes)> {
        let guard = self.last_request.lock();
        let (_, headers, body) = guard.as_ref()?;
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        Some((content_type, body.clone()))
    }

    /// `GET /last-request` body: the path with its query, lowercased headers (repeated ones
    /// joined with ", ") and the body parsed as JSON (a string when it is not JSON); `null`
    /// before any request.
    pub fn last_request_json(&self) -> Value {
        let guard = self.last_request.lock();
        let Some((uri, headers, body)) = guard.as_ref() else {
            return Value::Null;
        };
        let mut map = Map::new();
        for name in headers.keys() {
            let joined = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            map.insert(name.as_str().to_owned(), Value::String(joined));
        }
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
        json!({"path": path, "headers": map, "body": body})
    }
}

// === impl RequestGuard ===

impl RequestGuard {
    /// The response was fully handed over.
    pub fn complete(&mut self) {
        self.outcome = Outcome::Completed;
    }

    /// The mock broke the exchange on purpose.
    pub fn fault(&mut self) {
        self.outcome = Outcome::Faulted;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let counter = match self.outcome {
            Outcome::Running => &self.stats.cancelled,
            Outcome::Completed => &self.stats.completed,
            Outcome::Faulted => &self.stats.faulted,
        };
        counter.fetch_add(1, Relaxed);
        self.stats.active.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_each_outcome() {
        let stats = Arc::new(Stats::default());
        let mut a = stats.begin();
        let mut b = stats.begin();
        let c = stats.begin();
        assert_eq!(stats.to_json()["active"], 3);
        a.complete();
        b.fault();
        drop((a, b, c));
        let s = stats.to_json();
        assert_eq!(
            (
                &s["requests"],
                &s["completed"],
                &s["faulted"],
                &s["cancelled"],
                &s["active"]
            ),
            (&json!(3), &json!(1), &json!(1), &json!(1), &json!(0))
        );
        stats.reset();
        assert_eq!(stats.to_json()["requests"], 0);
    }

    #[test]
    fn last_request_keeps_headers_and_body() {
        let stats = Stats::default();
        assert_eq!(stats.last_request_json(), Value::Null);
        let mut headers = HeaderMap::new();
        headers.insert("Authorization", "Bearer x".parse().unwrap());
        let uri: Uri = "/v1beta/models/g:generateContent?key=k".parse().unwrap();
        stats.record(&uri, headers, Bytes::from_static(br#"{"model":"m"}"#));
        let v = stats.last_request_json();
        assert_eq!(v["path"], "/v1beta/models/g:generateContent?key=k");
        assert_eq!(v["headers"]["authorization"], "Bearer x");
        assert_eq!(v["body"]["model"], "m");
        assert_eq!(stats.to_json()["last_body_bytes"], 13);
        stats.record(&uri, HeaderMap::new(), Bytes::from_static(b"plain"));
        assert_eq!(stats.last_request_json()["body"], "plain");
    }
}
