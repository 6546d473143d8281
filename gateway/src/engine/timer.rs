//! Timeouts on the request path: [`within`] a wait, or [`until`] a deadline.
//!
//! Every I/O wait of a proxied request (client reads and writes, connect, the upstream
//! exchange, relaying the body) runs under [`within`], a few times per request, so its
//! cost is per-request CPU. What it must do, and how:
//!
//! - **Nothing when the wait is not needed.** [`Within`] polls the inner future first and
//!   arms no timer until it returns `Pending`; most reads and writes are ready at once.
//! - **No syscalls.** Tokio's timer wakes its I/O driver (an `eventfd` write and one more
//!   `epoll_wait`) whenever a timer is set earlier than the driver's next wake-up, which at
//!   low concurrency is every timer: two extra syscalls per request. Here a timer is an
//!   entry in an in-process wheel; one clock thread (`clock.rs`) reads the monotonic clock
//!   every 10 ms ([`GRAIN`](clock::GRAIN)) and wakes what came due. Arming and cancelling
//!   take an uncontended lock and touch no kernel. The clock parks after a second with no
//!   timer anywhere, so an idle gateway does not tick; the first timer after that unparks
//!   it (one syscall per idle period, not per request).
//! - **Flat memory, any wait.** Timers sit on hashed wheels (`wheel.rs`): a slab of
//!   entries, each on a doubly linked list of its deadline's slot, so cancelling on drop
//!   is O(1) and frees the entry for the next timer at once. Memory is the peak number of
//!   live timers, whatever the waits (a 60 s keep-alive wait on each of 10k connections is
//!   10k entries, reused request after request). A wait longer than one turn of the wheel
//!   (10.24 s) is passed over on the earlier turns.
//! - **Precision.** A timer fires at the first tick at or after `now + wait` (ticks are
//!   whole multiples of [`GRAIN`](clock::GRAIN) since a fixed epoch, read from the
//!   monotonic clock when the timer is armed), so never early; it is late by under one
//!   grain of rounding plus one grain of clock period, plus any delay in scheduling the
//!   clock thread. [`until`] takes the deadline as an `Instant` the caller already has, so
//!   arming it reads no clock at all (one clock read fewer per upstream exchange).
//! - **Any executor, any thread.** The wheels are 16 process-wide shards, each behind its
//!   own lock; a thread arms on its home shard (picked round-robin on first use) and the
//!   entry records which shard it is on, so a task that moves to another thread
//!   (work-stealing) re-polls and cancels on the right shard, and a thread that exits
//!   leaves nothing behind. Wakers are `Send`: the clock wakes them from its own thread,
//!   which works for Pingora's no-steal runtimes as for tokio's work-stealing one.
//!
//! Correctness, the parts that are easy to get wrong:
//!
//! - An entry belongs to its [`Within`] from arming until the `Within` frees it (on
//!   completion, time-out or drop). Firing only marks it fired and takes the waker, so a
//!   slab index is never reused under an owner that still holds it.
//! - Waking a timer and re-polling its owner race only through the shard's lock: the
//!   clock marks the entry fired under the lock, then wakes; the owner's poll reads the
//!   mark under the lock. A re-poll with a different waker swaps it in under the lock, and
//!   if the entry fired in between, the poll returns the time-out itself rather than wait
//!   for a wake that went to the old waker.
//! - Wakers are cloned, woken and dropped only outside the shard locks: those run executor
//!   code, which could drop a future holding a timer and so reach the same lock again.
//! - The clock never loses a timer armed while it goes to sleep: see the handshake in
//!   `clock.rs`.
//! - The clock thread starts with the first timer and is not forked: a process that forks
//!   after arming a timer (the gateway never daemonizes) would have no clock in the child.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use wheel::Refresh;

mod clock;
mod wheel;

#[cfg(test)]
mod tests;

/// The wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// `f`, unless `wait` passes first. A zero `wait` still gives `f` one poll.
pub(crate) fn within<F: Future>(wait: Duration, f: F) -> Within<F> {
    Within {
        inner: f,
        timer: Timer(State::Unarmed(wait)),
    }
}

/// `f`, unless `deadline` passes first. Arming reads no clock; a deadline already past
/// fires on the clock's next tick (at most one grain later), after `f` had its polls.
pub(crate) fn until<F: Future>(deadline: Instant, f: F) -> Within<F> {
    Within {
        inner: f,
        timer: Timer(State::UnarmedUntil(deadline)),
    }
}

pin_project! {
    /// The future [`within`] and [`until`] return.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Within<F> {
        #[pin]
        inner: F,
        timer: Timer,
    }
}

/// The timer of one [`Within`]; frees its entry when dropped.
#[derive(Debug)]
struct Timer(State);

#[derive(Debug, Clone, Copy)]
enum State {
    /// Not armed yet: the inner future has not returned `Pending`.
    Unarmed(Duration),
    /// The same, with the deadline as an instant.
    UnarmedUntil(Instant),
    /// Entry `index` on shard `shard`'s wheel.
    Armed { shard: usize, index: u32 },
    /// Fired or cancelled; the entry is freed.
    Done,
}

// === impl Within ===

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.inner.poll(cx) {
            this.timer.cancel();
            return Poll::Ready(Ok(v));
        }
        this.timer.poll_expired(cx).map(Err)
    }
}

// === impl Timer ===

impl Timer {
    /// Arms the timer on the first call; later, `Ready` once it has fired, else keeps the
    /// stored waker current.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<TimedOut> {
        match self.0 {
            State::Unarmed(wait) => {
                if wait.is_zero() {
                    self.0 = State::Done;
                    return Poll::Ready(TimedOut);
                }
                self.arm(clock::deadline(wait), cx)
            }
            State::UnarmedUntil(at) => self.arm(clock::deadline_at(at), cx),
            State::Armed { shard, index } => {
                let wheel = clock::shard(shard);
                let refreshed = wheel.lock().refresh(index, cx.waker());
                let fired = match refreshed {
                    Refresh::Waiting => false,
                    Refresh::Fired => true,
                    Refresh::NewWaker => {
                        let new = cx.waker().clone();
                        let swapped = wheel.lock().swap_waker(index, new);
                        // The old waker (or the unused new one) is dropped here, unlocked.
                        swapped.is_err()
                    }
                };
                if fired {
                    self.0 = State::Done;
                    Poll::Ready(TimedOut)
                } else {
                    Poll::Pending
                }
            }
            State::Done => Poll::Ready(TimedOut),
        }
    }

    /// Puts the timer on its thread's wheel at tick `deadline`.
    fn arm(&mut self, deadline: u64, cx: &mut Context<'_>) -> Poll<TimedOut> {
        let shard = clock::home();
        let waker = cx.waker().clone();
        let index = clock::shard(shard).lock().arm(waker, deadline);
        clock::ensure_running();
        self.0 = State::Armed { shard, index };
        Poll::Pending
    }

    /// Frees the entry, if armed.
    fn cancel(&mut self) {
        if let State::Armed { shard, index } = std::mem::replace(&mut self.0, State::Done) {
            let waker = clock::shard(shard).lock().release(index);
            drop(waker);
        }
    }

    /// Where the entry is, when armed (tests only).
    #[cfg(test)]
    fn armed_at(&self) -> Option<(usize, u32)> {
        match self.0 {
            State::Armed { shard, index } => Some((shard, index)),
            _ => None,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.cancel();
    }
}
