//! Timeouts on the request path.
//!
//! Tokio wakes its IO driver (an `eventfd` write, and one more trip through `epoll_wait`)
//! whenever a timer is set earlier than the driver's next wake-up, which at low concurrency
//! is every timer: two extra syscalls per request at concurrency 1. Pingora's timer wheel
//! never does (a clock thread fires 10 ms buckets), but it keeps each bucket until it fires
//! even when every waiter is gone, so a wait of minutes would hold a bucket per 10 ms of
//! the window. Waits up to [`FAST_MAX`] (connect, first byte) use Pingora's wheel: at most
//! 6,000 buckets per thread, reached within a minute and flat after. Longer ones (the
//! total request deadline) use tokio's timer, which frees an entry when its future drops.

use std::future::Future;
use std::time::Duration;

use pingora_timeout::fast_timeout::fast_timeout;

/// The longest wait put on Pingora's timer wheel.
pub(crate) const FAST_MAX: Duration = Duration::from_secs(60);

/// The wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// `f`, unless `wait` passes first.
pub(crate) async fn within<F: Future>(wait: Duration, f: F) -> Result<F::Output, TimedOut> {
    if wait <= FAST_MAX {
        fast_timeout(wait, f).await.map_err(|_| TimedOut)
    } else {
        tokio::time::timeout(wait, f).await.map_err(|_| TimedOut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_and_long_waits_both_time_out_and_both_pass_ready_values() {
        let pending = std::future::pending::<()>();
        assert_eq!(
            within(Duration::from_millis(20), pending).await,
            Err(TimedOut)
        );
        assert_eq!(within(Duration::from_secs(3600), async { 7 }).await, Ok(7));
        assert_eq!(within(Duration::from_millis(5), async { 8 }).await, Ok(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_uses_tokio_time() {
        // Paused tokio time auto-advances: only a tokio timer can fire here at once.
        let r = within(
            FAST_MAX + Duration::from_secs(1),
            std::future::pending::<()>(),
        )
        .await;
        assert_eq!(r, Err(TimedOut));
    }
}
