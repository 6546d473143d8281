//! Counters, gauges and histograms that threads update without sharing a cache line.
//!
//! ```text
//! request thread k ─▶ shard k % SHARDS (its own 128-byte lines) ─▶ relaxed add, no lock
//! /metrics scrape  ─▶ sums every shard ─▶ the same text prometheus_client writes
//! ```
//! `prometheus_client`'s histogram takes a mutex per observation, and its counters and
//! gauges are one atomic each: with every request touching a dozen of them from both
//! worker threads, their cache lines travel between the cores on every request. Here each
//! thread adds to its own shard; a scrape (rare) adds the shards up. The API matches the
//! `prometheus_client` types they replace, and so does the exposition (tested below).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Shards per metric: threads beyond this many share shards (still correct, just shared).
pub const SHARDS: usize = 8;
/// 64-bit slots per line.
const SLOTS: usize = 16;

/// One shard's slots, alone on its cache lines (128 bytes: adjacent-line prefetch pairs
/// 64-byte lines).
#[repr(align(128))]
#[derive(Default)]
struct Line([AtomicU64; SLOTS]);

/// This thread's shard (threads are numbered by their first update).
pub fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// A monotonic counter (`prometheus_client::metrics::counter::Counter`'s API).
#[derive(Clone, Default)]
pub struct Counter(Arc<[Line; SHARDS]>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `v`.
    pub fn inc_by(&self, v: u64) {
        self.0[shard()].0[0].fetch_add(v, Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |t, l| t.wrapping_add(l.0[0].load(Relaxed)))
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Counter").field(&self.get()).finish()
    }
}

impl TypedMetric for Counter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Counter {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A gauge moved up and down by threads (in-flight counts): a `dec` may run on another
/// thread than its `inc`; the shards' sum is the value.
#[derive(Clone, Default)]
pub struct Gauge(Arc<[Line; SHARDS]>);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0[shard()].0[0].fetch_add(1, Relaxed);
    }

    /// Takes one away.
    pub fn dec(&self) {
        self.0[shard()].0[0].fetch_sub(1, Relaxed);
    }

    /// The value.
    pub fn get(&self) -> i64 {
        self.0
            .iter()
            .fold(0u64, |t, l| t.wrapping_add(l.0[0].load(Relaxed))) as i64
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

impl TypedMetric for Gauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for Gauge {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A histogram with fixed buckets (`prometheus_client`'s `Histogram::new` API; `+Inf` is
/// added). A shard holds the sum (f64 bits) in slot 0 and one count per bucket after it;
/// the total count is the buckets' sum, so `_count` always equals the `+Inf` bucket.
#[derive(Clone)]
pub struct Histogram(Arc<HistogramInner>);

struct HistogramInner {
    /// Upper bounds, the last `+Inf`.
    bounds: Box<[f64]>,
    /// Lines per shard.
    stride: usize,
    lines: Box<[Line]>,
}

impl Histogram {
    /// A histogram with these upper bounds (ascending), plus `+Inf`.
    pub fn new(buckets: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Box<[f64]> = buckets
            .into_iter()
            .chain(std::iter::once(f64::INFINITY))
            .collect();
        let stride = (bounds.len() + 1).div_ceil(SLOTS);
        let lines = (0..stride * SHARDS).map(|_| Line::default()).collect();
        Self(Arc::new(HistogramInner {
            bounds,
            stride,
            lines,
        }))
    }

    fn slot(&self, shard: usize, i: usize) -> &AtomicU64 {
        let h = &*self.0;
        &h.lines[shard * h.stride + i / SLOTS].0[i % SLOTS]
    }

    /// Counts `v` in the first bucket whose bound is at least `v` (NaN: `+Inf`).
    pub fn observe(&self, v: f64) {
        let bounds = &self.0.bounds;
        let bucket = bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(bounds.len() - 1);
        let s = shard();
        self.slot(s, 1 + bucket).fetch_add(1, Relaxed);
        let sum = self.slot(s, 0);
        // Uncontended: this thread's own shard (a shared shard only retries).
        let mut cur = sum.load(Relaxed);
        while let Err(seen) =
            sum.compare_exchange_weak(cur, (f64::from_bits(cur) + v).to_bits(), Relaxed, Relaxed)
        {
            cur = seen;
        }
    }

    /// Sum, count and per-bucket (not cumulative) counts over every shard.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let bounds = &self.0.bounds;
        let mut buckets: Vec<(f64, u64)> = bounds.iter().map(|b| (*b, 0)).collect();
        let mut sum = 0.0;
        for s in 0..SHARDS {
            sum += f64::from_bits(self.slot(s, 0).load(Relaxed));
            for (i, b) in buckets.iter_mut().enumerate() {
                b.1 += self.slot(s, 1 + i).load(Relaxed);
            }
        }
        let count = buckets.iter().map(|b| b.1).sum();
        (sum, count, buckets)
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sum, count, _) = self.snapshot();
        f.debug_struct("Histogram")
            .field("sum", &sum)
            .field("count", &count)
            .finish_non_exhaustive()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    fn text(r: &Registry) -> String {
        let mut s = String::new();
        encode(&mut s, r).unwrap();
        s
    }

    /// Written exactly as the `prometheus_client` types they replace write them.
    #[test]
    fn exposition_matches_prometheus_client() {
        use prometheus_client::metrics::{counter, gauge, histogram};
        let bounds = [0.001, 0.01, 0.1, 1.0];
        let values = [0.0005, 0.001, 0.02, 0.5, 3.0, f64::NAN, 0.02];
        let (mut ours, mut theirs) = (Registry::default(), Registry::default());
        let (h, ph) = (Histogram::new(bounds), histogram::Histogram::new(bounds));
        let (c, pc) = (Counter::default(), counter::Counter::<u64>::default());
        let (g, pg) = (Gauge::default(), gauge::Gauge::<i64>::default());
        for v in values.into_iter().filter(|v| !v.is_nan()) {
            h.observe(v);
            ph.observe(v);
        }
        c.inc_by(41);
        c.inc();
        pc.inc_by(42);
        g.inc();
        g.inc();
        g.dec();
        pg.set(1);
        ours.register("lat", "latency", h.clone());
        theirs.register("lat", "latency", ph);
        ours.register("n", "count", c.clone());
        theirs.register("n", "count", pc);
        ours.register("g", "gauge", g.clone());
        theirs.register("g", "gauge", pg);
        assert_eq!(text(&ours), text(&theirs));
        assert_eq!((c.get(), g.get()), (42, 1));
        // NaN counts in +Inf (and makes the sum NaN), as prometheus_client does.
        h.observe(f64::NAN);
        assert_eq!(h.snapshot().2.last().map(|b| b.1), Some(2));
    }

    /// Updates from many threads (more than there are shards) all count.
    #[test]
    fn concurrent_updates_add_up() {
        let (h, c, g) = (
            Histogram::new([1.0, 2.0]),
            Counter::default(),
            Gauge::default(),
        );
        let threads: Vec<_> = (0..SHARDS + 3)
            .map(|_| {
                let (h, c, g) = (h.clone(), c.clone(), g.clone());
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        h.observe(f64::from(i % 3));
                        c.inc();
                        g.inc();
                    }
                })
            })
            .collect();
        // A gauge's `dec` on another thread than its `inc` still nets out.
        for t in threads {
            t.join().unwrap();
        }
        for _ in 0..(SHARDS + 3) * 1000 - 5 {
            g.dec();
        }
        let n = ((SHARDS + 3) * 1000) as u64;
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, n);
        assert_eq!(c.get(), n);
        assert_eq!(g.get(), 5);
        // i % 3 over 0..1000: 334 zeros, 333 ones, 333 twos per thread.
        let per = (SHARDS + 3) as u64;
        assert_eq!(
            buckets.iter().map(|b| b.1).collect::<Vec<_>>(),
            [334 * per + 333 * per, 333 * per, 0]
        );
        assert_eq!(sum, (333.0 + 666.0) * per as f64);
    }
}
