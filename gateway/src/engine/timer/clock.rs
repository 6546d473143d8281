//! The shards, the tick arithmetic, and the clock thread that drives the shards.
//!
//! The clock thread sleeps [`GRAIN`], reads the monotonic clock, and moves every shard's
//! wheel to the current tick, waking what came due (outside the shard's lock). After
//! [`IDLE_TICKS`] ticks in a row with nothing armed anywhere it parks, and the next
//! [`ensure_running`] unparks it.
//!
//! Parking without losing a timer (a Dekker-style handshake through `STATE` and the shard
//! locks): the clock stores `ASLEEP`, *then* locks each shard to check it is empty; an
//! owner arms under the shard's lock, *then* loads `STATE`. Either the clock's check comes
//! after the arm (it sees the entry and stays up), or the owner's lock comes after the
//! check, and so after the store, and the owner sees `ASLEEP` and unparks the clock.
//! `Thread::unpark` before `park` is not lost (park returns at once), and a spurious
//! wake-up just finds `STATE` still `ASLEEP` and parks again.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::Waker;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, const_mutex};

use super::wheel::Wheel;

/// The clock's tick.
pub(super) const GRAIN: Duration = Duration::from_millis(10);
const GRAIN_NS: u64 = 10_000_000;

/// Shards: threads are spread over them round-robin, so two threads rarely share a lock.
const SHARDS: usize = 16;

/// In tests the last shard is kept out of the round-robin, for tests that inspect it.
#[cfg(test)]
pub(super) const TEST_SHARD: usize = SHARDS - 1;
#[cfg(test)]
const HOMES: usize = SHARDS - 1;
#[cfg(not(test))]
const HOMES: usize = SHARDS;

/// Ticks with nothing armed before the clock parks (1 s).
const IDLE_TICKS: u32 = 100;

const UNSTARTED: u8 = 0;
const RUNNING: u8 = 1;
const ASLEEP: u8 = 2;

/// A shard on its own cache lines: owners on different threads do not share one.
#[repr(align(128))]
struct Shard(Mutex<Wheel>);

static SHARD: [Shard; SHARDS] = [const { Shard(const_mutex(Wheel::new())) }; SHARDS];
static EPOCH: OnceLock<Instant> = OnceLock::new();
static STATE: AtomicU8 = AtomicU8::new(UNSTARTED);
static THREAD: Mutex<Option<Thread>> = const_mutex(None);
static NEXT_HOME: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Shard `i`'s wheel.
pub(super) fn shard(i: usize) -> &'static Mutex<Wheel> {
    &SHARD[i % SHARDS].0
}

/// The calling thread's shard, picked on its first timer. A thread being torn down (its
/// thread locals gone) uses shard 0.
pub(super) fn home() -> usize {
    HOME.try_with(|h| {
        let s = h.get();
        if s < SHARDS {
            return s;
        }
        let s = NEXT_HOME.fetch_add(1, Ordering::Relaxed) % HOMES;
        h.set(s);
        s
    })
    .unwrap_or(0)
}

/// Makes the calling thread arm on shard `s` (tests only).
#[cfg(test)]
pub(super) fn set_home(s: usize) {
    HOME.with(|h| h.set(s));
}

/// The first tick at which `wait` from now has fully passed: `ceil((now + wait) / GRAIN)`.
/// The clock fires an entry once `floor(now / GRAIN)` reaches it, so never early.
pub(super) fn deadline(wait: Duration) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    let at = Instant::now().saturating_duration_since(epoch);
    nanos(at.saturating_add(wait)).div_ceil(GRAIN_NS)
}

/// The first tick at or after `at`: `ceil(at / GRAIN)`, without reading the clock.
pub(super) fn deadline_at(at: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    nanos(at.saturating_duration_since(epoch)).div_ceil(GRAIN_NS)
}

/// The current tick, `floor(now / GRAIN)`.
fn now_tick() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    nanos(Instant::now().saturating_duration_since(epoch)) / GRAIN_NS
}

fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// Called after arming a timer: starts or unparks the clock when it is not running.
#[inline]
pub(super) fn ensure_running() {
    if STATE.load(Ordering::SeqCst) != RUNNING {
        wake_clock();
    }
}

#[cold]
fn wake_clock() {
    let mut thread = THREAD.lock();
    if let Some(t) = thread.as_ref() {
        if STATE
            .compare_exchange(ASLEEP, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            t.unpark();
        }
        return;
    }
    STATE.store(RUNNING, Ordering::SeqCst);
    match thread::Builder::new()
        .name("datamind-timer".into())
        .spawn(run)
    {
        Ok(h) => *thread = Some(h.thread().clone()),
        Err(e) => {
            // Armed timers stay on their wheels; the next arm tries again.
            STATE.store(UNSTARTED, Ordering::SeqCst);
            tracing::error!(error = %e, "the timer clock thread did not start");
        }
    }
}

/// The clock thread.
fn run() {
    let mut woken = Vec::new();
    let mut idle = 0;
    loop {
        thread::sleep(GRAIN);
        if tick(&mut woken) > 0 {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < IDLE_TICKS {
            continue;
        }
        idle = 0;
        STATE.store(ASLEEP, Ordering::SeqCst);
        if SHARD.iter().any(|s| s.0.lock().armed() > 0) {
            // Whoever armed it may already have set RUNNING; either way the clock runs.
            let _ = STATE.compare_exchange(ASLEEP, RUNNING, Ordering::SeqCst, Ordering::SeqCst);
            continue;
        }
        while STATE.load(Ordering::SeqCst) != RUNNING {
            thread::park();
        }
    }
}

/// Moves every shard to the current tick and wakes what came due; returns how many
/// timers are still armed.
fn tick(woken: &mut Vec<Waker>) -> usize {
    let now = now_tick();
    let mut armed = 0;
    for s in &SHARD {
        {
            let mut wheel = s.0.lock();
            wheel.advance(now, woken);
            armed += wheel.armed();
        }
        for w in woken.drain(..) {
            w.wake();
        }
    }
    armed
}

/// Whether the clock thread is parked (tests only).
#[cfg(test)]
pub(super) fn is_asleep() -> bool {
    STATE.load(Ordering::SeqCst) == ASLEEP
}
