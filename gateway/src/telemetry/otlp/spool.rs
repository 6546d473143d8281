//! Where finished requests leave their spans for the exporter: a few shards, each a
//! growing batch buffer behind its own lock, that the exporter thread collects on its timer.
//!
//! ```text
//! request thread ─lock own shard─▶ encode spans at the end of `filling`
//!                                   (≥ max_batch spans: `filling` moves to `full`)
//! exporter, every tick ─lock each shard─▶ takes `full`, and `filling` once it is older than
//!                                          the schedule delay ─▶ frames and sends each batch
//! ```
//! Why not a channel of one buffer per request: every request then allocates a buffer the
//! exporter frees on another thread, the exporter copies each one into its batch and again
//! into the export request, and a blocked receiver would need a wake-up per request. Here a
//! request appends to a buffer its own thread reuses (a worker thread is the only user of its
//! shard, so the lock is an uncontended atomic), nothing wakes the exporter, and a batch's
//! buffer starts with room for the export request's framing, so it is sent without a copy.
//!
//! Bounded: at most `limit` requests' spans wait here or in an export under way (counted in
//! `pending`); past that a request's spans are dropped and the caller counts them.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shards: worker threads are spread over them (round robin, by first use).
const SHARDS: usize = 16;

/// Spans of several requests, framed `ScopeSpans.spans` fields after `headroom` bytes kept
/// free for the export request's framing.
#[derive(Debug)]
pub(crate) struct Batch {
    /// `headroom` unused bytes, then the spans.
    pub bytes: Vec<u8>,
    /// Spans held.
    pub spans: u64,
    /// Requests whose spans these are.
    pub requests: usize,
}

/// The spans waiting for export (shared by request threads and the exporter).
#[derive(Debug)]
pub(crate) struct Spool {
    shards: Box<[Mutex<Shard>]>,
    /// Requests whose spans are in a shard or in an export under way.
    pending: AtomicUsize,
    limit: usize,
    max_batch: u64,
    headroom: usize,
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Shard {
    filling: Option<Filling>,
    full: Vec<Batch>,
    /// Capacity for the next buffer: a little over the size the last full one reached.
    capacity: usize,
}

// === impl Shard ===

impl Shard {
    /// The filling batch is complete: it waits in `full` for the exporter.
    fn seal(&mut self) {
        if let Some(f) = self.filling.take() {
            // Room for the next batch to grow as large without moving.
            self.capacity = next_capacity(self.capacity, f.batch.bytes.len());
            self.full.push(f.batch);
        }
    }
}

#[derive(Debug)]
struct Filling {
    batch: Batch,
    since: Instant,
}

thread_local! {
    /// This thread's shard (`usize::MAX`: not chosen yet).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Hands out shards to threads in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn my_shard() -> usize {
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

// === impl Spool ===

impl Spool {
    /// Holds at most `limit` requests' spans; batches close at `max_batch` spans; every
    /// batch starts with `headroom` free bytes.
    pub(crate) fn new(limit: usize, max_batch: usize, headroom: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            pending: AtomicUsize::new(0),
            limit,
            max_batch: max_batch.max(1) as u64,
            headroom,
            closed: AtomicBool::new(false),
        }
    }

    /// Appends one request's `spans` spans, written by `encode` at the end of the buffer.
    /// `false` when the spool is full: nothing was written.
    pub(crate) fn push(&self, spans: u32, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.limit {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let spans = u64::from(spans);
        let mut shard = self.shards[my_shard()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let shard = &mut *shard;
        // A batch never holds more than `max_batch` spans (unless one request has more).
        if shard
            .filling
            .as_ref()
            .is_some_and(|f| f.batch.spans + spans > self.max_batch)
        {
            shard.seal();
        }
        let (headroom, capacity) = (self.headroom, shard.capacity.max(self.headroom + 4096));
        let f = shard.filling.get_or_insert_with(|| Filling {
            batch: Batch {
                bytes: buffer(headroom, capacity),
                spans: 0,
                requests: 0,
            },
            since: Instant::now(),
        });
        encode(&mut f.batch.bytes);
        f.batch.spans += spans;
        f.batch.requests += 1;
        if f.batch.spans >= self.max_batch {
            shard.seal();
        }
        true
    }

    /// The batches ready for export: every full one, and every filling one that waited
    /// `delay` (all of them when `everything`). Their requests stay counted until `done`.
    pub(crate) fn take(&self, now: Instant, delay: Duration, everything: bool) -> Vec<Batch> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            out.append(&mut shard.full);
            let due = shard
                .filling
                .as_ref()
                .is_some_and(|f| everything || now.saturating_duration_since(f.since) >= delay);
            if due && let Some(f) = shard.filling.take() {
                // Under light traffic batches leave before they fill: size the next one
                // after this one, so that it does not grow by reallocating either.
                shard.capacity = next_capacity(shard.capacity, f.batch.bytes.len());
                out.push(f.batch);
            }
        }
        out
    }

    /// The export of a batch of `requests` requests is over (sent or not): they no longer
    /// count.
    pub(crate) fn done(&self, requests: usize) {
        self.pending.fetch_sub(requests, Ordering::Relaxed);
    }

    /// No more spans will come: the exporter sends what is left and stops.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether `close` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Bytes kept free at the start of every batch.
    pub(crate) fn headroom(&self) -> usize {
        self.headroom
    }
}

/// Capacity for the next buffer of a shard whose last batch reached `len` bytes: a quarter
/// more, plus room for one more request's spans (each `encode` reserves that much), and
/// never much below the previous capacity, so that traffic that comes and goes does not
/// make every other batch reallocate (a move of the whole batch) as it fills.
fn next_capacity(prev: usize, len: usize) -> usize {
    (len + len / 4 + 8 * 1024).max(prev - prev / 8)
}

/// An empty batch buffer: `headroom` zeros, room for `capacity` bytes in all.
fn buffer(headroom: usize, capacity: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(capacity);
    v.resize(headroom, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(s: &Spool, spans: u32, byte: u8) -> bool {
        s.push(spans, |b| b.extend_from_slice(&[byte; 3]))
    }

    #[test]
    fn batches_close_at_max_batch_and_keep_their_headroom() {
        let s = Spool::new(100, 4, 7);
        assert!(push(&s, 2, 1));
        assert!(push(&s, 2, 2));
        assert!(push(&s, 2, 3));
        // The first two requests filled a batch; the third waits for the delay.
        let now = Instant::now();
        let got = s.take(now, Duration::from_secs(60), false);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].spans, got[0].requests), (4, 2));
        assert_eq!(got[0].bytes, [&[0u8; 7][..], &[1; 3], &[2; 3]].concat());
        let later = now + Duration::from_secs(61);
        let rest = s.take(later, Duration::from_secs(60), false);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].bytes[7..], [3; 3]);
        assert!(s.take(later, Duration::ZERO, true).is_empty());
    }

    #[test]
    fn the_next_buffer_fits_the_last_batch_and_shrinks_slowly() {
        assert!(next_capacity(0, 100_000) >= 125_000 + 1024);
        let big = next_capacity(0, 400_000);
        let after_small = next_capacity(big, 1_000);
        assert!(after_small >= big * 7 / 8, "{after_small} vs {big}");
        let mut c = big;
        for _ in 0..64 {
            c = next_capacity(c, 1_000);
        }
        assert!(c < 16 * 1024, "shrinks back under light traffic: {c}");
    }

    #[test]
    fn a_request_that_would_overfill_a_batch_starts_the_next() {
        let s = Spool::new(100, 4, 0);
        assert!(push(&s, 3, 1));
        assert!(push(&s, 2, 2));
        let got = s.take(Instant::now(), Duration::ZERO, true);
        let spans: Vec<u64> = got.iter().map(|b| b.spans).collect();
        assert_eq!(spans, [3, 2]);
    }

    #[test]
    fn a_full_spool_refuses_until_exports_are_done() {
        let s = Spool::new(2, 100, 0);
        assert!(push(&s, 1, 1));
        assert!(push(&s, 1, 2));
        assert!(!push(&s, 1, 3), "over the limit");
        let got = s.take(Instant::now(), Duration::ZERO, true);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].bytes,
            [[1; 3], [2; 3]].concat(),
            "the refused one left nothing"
        );
        assert!(!push(&s, 1, 4), "taken but not yet exported still counts");
        s.done(got[0].requests);
        assert!(push(&s, 1, 5));
    }

    #[test]
    fn threads_fill_their_own_batches() {
        let s = std::sync::Arc::new(Spool::new(1000, 1000, 0));
        let threads: Vec<_> = (0..4u8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        assert!(push(&s, 1, i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got = s.take(Instant::now(), Duration::ZERO, true);
        assert_eq!(got.iter().map(|b| b.requests).sum::<usize>(), 40);
        for b in &got {
            // One thread per shard here (4 threads, 16 shards): a batch holds one byte value.
            assert!(b.bytes.iter().all(|&x| x == b.bytes[0]));
        }
    }
}
