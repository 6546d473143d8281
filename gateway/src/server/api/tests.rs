//! Sizes of the per-request futures. An HTTP/1.x connection's future holds room for one
//! `handle` future (idle or not), and Pingora's path boxes one per request, copying it
//! whole; these tests print the sizes and fail when they grow well past today's
//! (debug-build) figures.

use super::*;

/// The size of the future a closure of three arguments returns, without running it.
fn future_size3<A, B, C, F>(_: impl FnOnce(A, B, C) -> F) -> usize {
    std::mem::size_of::<F>()
}

fn handle_size<'a, 'b, 'c: 'b>() -> usize {
    future_size3(|api: &'a ApiApp, d: &'b mut Downstream<'c>, s: &'a Snapshot| api.handle(d, s))
}

/// [`future_size3`] for six arguments.
fn future_size6<A, B, C, D, E, G, F>(_: impl FnOnce(A, B, C, D, E, G) -> F) -> usize {
    std::mem::size_of::<F>()
}

// `'a` names the closure's argument lifetimes (clippy does not see it used).
#[allow(clippy::extra_unused_lifetimes)]
fn serve_size<'a>() -> usize {
    future_size6(
        |g: &'a Gateway,
         s: &'a Snapshot,
         d: &'a mut Downstream<'a>,
         j: &'a Job<'a>,
         p: routing::Plan<'a>,
         o: &'a mut Outcome<'a>| engine::serve(g, s, d, j, p, o),
    )
}

#[test]
fn request_futures_stay_small() {
    let handle = handle_size();
    eprintln!("ApiApp::handle future: {handle} bytes");
    eprintln!("engine::serve future: {} bytes", serve_size());
    // 5,416 bytes once the llm crate kept the request's top-level fields inline (+320);
    // 5,928 with the access-log record inline instead of boxed (+512: no allocation, and
    // the record is formatted where it was built).
    assert!(handle <= 6144, "handle future grew to {handle} bytes");
}
