//! The response body the mock hands to hyper: a pre-built buffer released piece by piece,
//! with the TTFT and inter-chunk delays, the drop-mid-stream fault, and the request's
//! [`RequestGuard`] (marked complete when the last piece is handed over).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::conn::ConnControl;
use super::sse::Chunked;
use super::stats::RequestGuard;

/// How long the connection is given to flush the pieces already sent before a
/// drop-mid-stream fault closes it.
const FLUSH_GRACE: Duration = Duration::from_millis(10);

/// A mock response body.
pub struct MockBody {
    pieces: Chunked,
    next: usize,
    /// Content-Length to advertise (non-streamed bodies), even when the fault truncates it.
    exact_len: Option<u64>,
    gap: Duration,
    /// Pieces to send before breaking the connection (drop-mid-stream).
    break_after: Option<(usize, Arc<ConnControl>)>,
    breaking: bool,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// When the previous piece was due: gaps are measured from it, not from when the timer
    /// fired, so timer lateness does not accumulate over a stream.
    last_due: Option<Instant>,
    /// Return `Pending` once after each piece so the connection flushes it as its own write.
    yield_once: bool,
    guard: Option<RequestGuard>,
}

// === impl MockBody ===

impl MockBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::new(Chunked::whole(Bytes::new()), None)
    }

    /// A body sent in one piece with a Content-Length.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let len = bytes.len() as u64;
        let mut body = Self::new(Chunked::whole(bytes), None);
        body.exact_len = Some(len);
        body
    }

    /// A streamed body: waits `ttft`, then sends each piece `gap` apart, flushing each one.
    pub fn stream(pieces: Chunked, ttft: Duration, gap: Duration) -> Self {
        let mut body = Self::new(pieces, None);
        body.gap = gap;
        if !ttft.is_zero() {
            body.arm(ttft);
        }
        body
    }

    fn new(pieces: Chunked, guard: Option<RequestGuard>) -> Self {
        Self {
            pieces,
            next: 0,
            exact_len: None,
            gap: Duration::ZERO,
            break_after: None,
            breaking: false,
            timer: None,
            armed: false,
            last_due: None,
            yield_once: false,
            guard,
        }
    }

    /// Advertises a Content-Length (for a truncated non-streamed body).
    pub fn with_exact_len(mut self, len: u64) -> Self {
        self.exact_len = Some(len);
        self
    }

    /// Attaches the request's guard: completed when the last piece is handed over,
    /// counted as cancelled if the body is dropped before that.
    pub fn guarded(mut self, guard: RequestGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Breaks the connection after `pieces` pieces (the drop-mid-stream fault).
    pub fn break_after(mut self, pieces: usize, conn: Arc<ConnControl>) -> Self {
        self.break_after = Some((pieces, conn));
        self
    }

    fn arm(&mut self, delay: Duration) {
        self.arm_at(Instant::now() + delay);
    }

    fn arm_at(&mut self, deadline: Instant) {
        self.last_due = Some(deadline);
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.armed = true;
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed {
            if let Some(timer) = self.timer.as_mut() {
                ready!(timer.as_mut().poll(cx));
            }
            self.armed = false;
        }
        Poll::Ready(())
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        ready!(this.poll_timer(cx));
        if this.yield_once {
            this.yield_once = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this
            .break_after
            .as_ref()
            .is_some_and(|(at, _)| this.next == *at)
        {
            if !this.breaking {
                this.breaking = true;
                this.arm(FLUSH_GRACE);
                ready!(this.poll_timer(cx));
            }
            if let Some((_, conn)) = this.break_after.take() {
                conn.close();
            }
            if let Some(guard) = this.guard.as_mut() {
                guard.fault();
            }
            this.guard = None;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "mock fault: drop-mid-stream",
            ))));
        }
        if this.next >= this.pieces.len() {
            return Poll::Ready(None);
        }
        let piece = this.pieces.piece(this.next);
        this.next += 1;
        if this.next == this.pieces.len() {
            if let Some(guard) = this.guard.as_mut() {
                guard.complete();
            }
            this.guard = None;
        } else if this.gap.is_zero() {
            this.yield_once = true;
        } else {
            let due = this.last_due.unwrap_or_else(Instant::now) + this.gap;
            this.arm_at(due.max(Instant::now()));
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.pieces.len() && self.break_after.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::stats::Stats;
    use http_body_util::BodyExt;

    fn pieces() -> Chunked {
        Chunked {
            bytes: Bytes::from_static(b"aabbcc"),
            ends: vec![2, 4, 6],
        }
    }

    #[tokio::test]
    async fn yields_every_piece_then_completes() {
        let stats = Arc::new(Stats::default());
        let gap = Duration::from_millis(2);
        let mut body = MockBody::stream(pieces(), Duration::ZERO, gap).guarded(stats.begin());
        let start = Instant::now();
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            got.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(got, ["aa", "bb", "cc"]);
        assert!(start.elapsed() >= gap * 2);
        drop(body);
        assert_eq!(stats.to_json()["completed"], 1);
    }

    #[tokio::test]
    async fn dropped_early_counts_cancelled_and_break_faults() {
        let stats = Arc::new(Stats::default());
        let mut body =
            MockBody::stream(pieces(), Duration::ZERO, Duration::ZERO).guarded(stats.begin());
        let _ = body.frame().await;
        drop(body);
        assert_eq!(stats.to_json()["cancelled"], 1);

        let conn = Arc::new(ConnControl::default());
        let mut body = MockBody::stream(pieces(), Duration::ZERO, Duration::ZERO)
            .guarded(stats.begin())
            .break_after(1, conn);
        assert!(body.frame().await.unwrap().is_ok());
        assert!(body.frame().await.unwrap().is_err());
        drop(body);
        assert_eq!(stats.to_json()["faulted"], 1);
    }

    #[test]
    fn full_body_has_exact_size() {
        let body = MockBody::full(&b"abc"[..]);
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(MockBody::empty().is_end_stream());
    }
}
