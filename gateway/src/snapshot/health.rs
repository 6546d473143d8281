//! Live statistics of one deployment: in flight, waiting for a first byte, latency and time
//! to first byte (EWMA mean and deviation), error rate, failures, cooldown.
//!
//! Conductor rules read these as `deployment.*` ([`Health::stats`]). Percentiles are
//! estimated from an exponentially weighted mean and variance (α = 1/8, so roughly the last
//! 16 attempts weigh): p50 ≈ mean, p95 ≈ mean + 1.645 σ. That reacts within a few requests
//! when a deployment slows down, at the cost of assuming a roughly normal spread.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::telemetry::metrics::Gauge;
use crate::telemetry::metrics::sharded::{SHARDS, shard};
use datamind_llm::policy::Stats;
use parking_lot::Mutex;

/// Weight of a new sample in the latency EWMAs.
const ALPHA: f64 = 1.0 / 8.0;
/// Weight of a new attempt in the error-rate EWMA.
const ERR_ALPHA: f64 = 1.0 / 16.0;
/// z-score of the 95th percentile of a normal distribution.
const Z95: f64 = 1.645;

/// Live health of one deployment, shared by every worker thread.
///
/// What each request changes (in flight, waiting, the averages) lives in per-thread shards,
/// each on its own cache lines: a request updates only its thread's shard, so the two
/// worker threads never pass these lines back and forth; readers (placement, rules,
/// `/metrics`) add the shards up. What requests only read (the cooldown, the failure
/// streak) sits apart from them and is written on failures alone.
#[derive(Debug)]
pub struct Health {
    consecutive_failures: AtomicU32,
    /// Unix milliseconds until which the deployment is skipped.
    cooldown_until_ms: AtomicU64,
    in_flight_gauge: Gauge,
    /// Mirrors the waiting count for `datamind_deployment_queue_depth`.
    queue_gauge: Gauge,
    shards: Box<[Shard; SHARDS]>,
}

/// One thread's share of a deployment's health, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    /// Attempts in flight that started on this thread (may go below 0 when an attempt
    /// ends on another thread; only the sum means anything).
    in_flight: AtomicI64,
    /// Attempts sent that have no response header yet (the upstream's queue, as seen here).
    waiting: AtomicI64,
    /// EWMA of time to first byte, microseconds (0 = never measured).
    ewma_ttfb_us: AtomicU64,
    live: Mutex<Live>,
}

/// EWMA state behind [`Stats`].
#[derive(Debug, Default, Clone, Copy)]
struct Live {
    latency: Ewma,
    ttft: Ewma,
    error_rate: f64,
    samples: u64,
}

impl Live {
    /// The shards' states as one: means averaged over the shards that have samples (their
    /// spread added to the variance), error rates weighted alike, samples summed.
    fn merge(parts: impl Iterator<Item = Live>) -> Live {
        let parts: smallvec::SmallVec<[Live; SHARDS]> = parts.filter(|l| l.samples > 0).collect();
        let n = parts.len() as f64;
        if parts.len() <= 1 {
            return parts.first().copied().unwrap_or_default();
        }
        let ewma = |get: fn(&Live) -> Ewma| {
            let seeded: smallvec::SmallVec<[Ewma; SHARDS]> =
                parts.iter().map(get).filter(|e| e.seeded).collect();
            if seeded.is_empty() {
                return Ewma::default();
            }
            let k = seeded.len() as f64;
            let mean = seeded.iter().map(|e| e.mean).sum::<f64>() / k;
            let var = seeded
                .iter()
                .map(|e| e.var + (e.mean - mean).powi(2))
                .sum::<f64>()
                / k;
            Ewma {
                mean,
                var,
                seeded: true,
            }
        };
        Live {
            latency: ewma(|l| l.latency),
            ttft: ewma(|l| l.ttft),
            error_rate: parts.iter().map(|l| l.error_rate).sum::<f64>() / n,
            samples: parts.iter().map(|l| l.samples).sum(),
        }
    }
}

/// Exponentially weighted mean and variance (West's incremental form), in ms.
#[derive(Debug, Default, Clone, Copy)]
struct Ewma {
    mean: f64,
    var: f64,
    seeded: bool,
}

impl Ewma {
    fn add(&mut self, x: f64) {
        if !self.seeded {
            *self = Self {
                mean: x,
                var: 0.0,
                seeded: true,
            };
            return;
        }
        let diff = x - self.mean;
        let incr = ALPHA * diff;
        self.mean += incr;
        self.var = (1.0 - ALPHA) * (self.var + diff * incr);
    }
    fn p50(&self) -> f64 {
        self.mean
    }
    fn p95(&self) -> f64 {
        self.mean + Z95 * self.var.max(0.0).sqrt()
    }
}

/// Decrements in-flight (and waiting, until the first byte) when dropped, in the shard
/// it counted them in.
#[derive(Debug)]
pub struct InFlightGuard<'a> {
    health: &'a Health,
    shard: usize,
    waiting: bool,
}

impl InFlightGuard<'_> {
    /// The upstream answered (or the attempt ended): it no longer waits in its queue.
    pub fn first_byte(&mut self) {
        if std::mem::take(&mut self.waiting) {
            self.health.shards[self.shard].waiting.fetch_sub(1, Relaxed);
            self.health.queue_gauge.dec();
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.first_byte();
        self.health.shards[self.shard]
            .in_flight
            .fetch_sub(1, Relaxed);
        self.health.in_flight_gauge.dec();
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Health {
    /// Fresh health, reporting in-flight to `gauge`.
    pub fn new(gauge: Gauge) -> Self {
        Self {
            consecutive_failures: AtomicU32::new(0),
            cooldown_until_ms: AtomicU64::new(0),
            in_flight_gauge: gauge,
            queue_gauge: Gauge::default(),
            shards: Box::default(),
        }
    }

    /// Also reports the queue depth to `gauge`.
    pub fn with_queue_gauge(mut self, gauge: Gauge) -> Self {
        self.queue_gauge = gauge;
        self
    }

    /// The statistics placement rules read, at `now_ms`.
    pub fn stats(&self, now_ms: u64, max_in_flight: Option<u32>) -> Stats {
        let live = self.live();
        let left = self.cooldown_left_ms(now_ms);
        let in_flight = self.in_flight();
        Stats {
            healthy: left == 0 && live.error_rate < 0.5,
            cooling_down: left > 0,
            cooldown_left_ms: left,
            in_flight: u64::from(in_flight),
            queue_depth: self.waiting(),
            error_rate: live.error_rate,
            latency_p50_ms: live.latency.p50(),
            latency_p95_ms: live.latency.p95(),
            ttft_p50_ms: live.ttft.p50(),
            ttft_p95_ms: live.ttft.p95(),
            samples: live.samples,
            at_capacity: max_in_flight.is_some_and(|m| in_flight >= m),
        }
    }

    /// [`Self::stats`] without the averages (no lock taken): the counters and the cooldown
    /// only; `healthy` is "not cooling down", the EWMA fields are 0. For rules that read no
    /// [`datamind_llm::policy::input::EWMA_FIELDS`].
    pub fn counters(&self, now_ms: u64, max_in_flight: Option<u32>) -> Stats {
        let left = self.cooldown_left_ms(now_ms);
        let in_flight = self.in_flight();
        Stats {
            healthy: left == 0,
            cooling_down: left > 0,
            cooldown_left_ms: left,
            in_flight: u64::from(in_flight),
            queue_depth: self.waiting(),
            at_capacity: max_in_flight.is_some_and(|m| in_flight >= m),
            ..Stats::default()
        }
    }

    /// An attempt succeeded: first byte after `ttfb`, complete after `total`.
    pub fn record_success_timed(&self, ttfb: Duration, total: Duration) {
        self.success(ttfb, total);
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        let n: i64 = self.shards.iter().map(|s| s.in_flight.load(Relaxed)).sum();
        u32::try_from(n.max(0)).unwrap_or(u32::MAX)
    }

    /// Attempts waiting for their first byte now.
    fn waiting(&self) -> u64 {
        let n: i64 = self.shards.iter().map(|s| s.waiting.load(Relaxed)).sum();
        u64::try_from(n).unwrap_or(0)
    }

    /// The averages, all shards together.
    fn live(&self) -> Live {
        Live::merge(self.shards.iter().map(|s| *s.live.lock()))
    }

    /// Counts a request until the guard drops.
    pub fn start(&self) -> InFlightGuard<'_> {
        let shard = shard();
        let mine = &self.shards[shard];
        mine.in_flight.fetch_add(1, Relaxed);
        mine.waiting.fetch_add(1, Relaxed);
        self.queue_gauge.inc();
        self.in_flight_gauge.inc();
        InFlightGuard {
            health: self,
            shard,
            waiting: true,
        }
    }

    /// Milliseconds of cooldown left (0 = available).
    pub fn cooldown_left_ms(&self, now_ms: u64) -> u64 {
        self.cooldown_until_ms.load(Relaxed).saturating_sub(now_ms)
    }

    /// Recent time to first byte in microseconds (0 = unknown): the mean of the threads'
    /// averages.
    pub fn ewma_ttfb_us(&self) -> u64 {
        let (sum, n) = self
            .shards
            .iter()
            .map(|s| s.ewma_ttfb_us.load(Relaxed))
            .filter(|&v| v > 0)
            .fold((0u64, 0u64), |(sum, n), v| (sum.saturating_add(v), n + 1));
        sum.checked_div(n).unwrap_or(0)
    }

    /// An attempt got a good answer after `ttfb` (its whole duration unknown).
    pub fn record_success(&self, ttfb: Duration) {
        self.success(ttfb, ttfb);
    }

    fn success(&self, ttfb: Duration, total: Duration) {
        // Read first: a store, even of the same 0, takes the line from the other core.
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
        let shard = &self.shards[shard()];
        let sample = ttfb.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = shard.ewma_ttfb_us.load(Relaxed);
        // alpha = 1/8: smooth, yet a slow deployment shows within a handful of requests
        let new = if old == 0 {
            sample.max(1)
        } else {
            (old * 7 + sample) / 8
        };
        shard.ewma_ttfb_us.store(new.max(1), Relaxed);
        let mut live = shard.live.lock();
        live.ttft.add(ttfb.as_secs_f64() * 1000.0);
        live.latency.add(total.as_secs_f64() * 1000.0);
        live.error_rate *= 1.0 - ERR_ALPHA;
        live.samples += 1;
    }

    /// An attempt failed. After `threshold` failures in a row (or at once when the upstream
    /// named a `Retry-After`), the deployment cools down. Returns whether it now is.
    pub fn record_failure(
        &self,
        threshold: u32,
        cooldown: Duration,
        retry_after: Option<Duration>,
    ) -> bool {
        {
            let mut live = self.shards[shard()].live.lock();
            live.error_rate = live.error_rate * (1.0 - ERR_ALPHA) + ERR_ALPHA;
            live.samples += 1;
        }
        let n = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        let period = match retry_after {
            Some(ra) => Some(ra),
            None if n >= threshold => Some(cooldown),
            None => None,
        };
        if let Some(p) = period {
            self.cooldown_until_ms
                .store(now_ms() + p.as_millis() as u64, Relaxed);
            self.consecutive_failures.store(0, Relaxed);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cools_down_after_threshold_and_on_retry_after() {
        let h = Health::new(Gauge::default());
        let cd = Duration::from_secs(30);
        assert!(!h.record_failure(3, cd, None));
        assert!(!h.record_failure(3, cd, None));
        assert!(h.record_failure(3, cd, None));
        let now = now_ms();
        assert!(h.cooldown_left_ms(now) > 29_000);
        let h = Health::new(Gauge::default());
        assert!(h.record_failure(3, cd, Some(Duration::from_secs(2))));
        assert!((1_000..=2_000).contains(&h.cooldown_left_ms(now_ms())));
    }

    #[test]
    fn success_resets_failures_and_tracks_latency() {
        let h = Health::new(Gauge::default());
        h.record_failure(2, Duration::from_secs(1), None);
        h.record_success(Duration::from_millis(8));
        assert!(!h.record_failure(2, Duration::from_secs(1), None));
        assert_eq!(h.ewma_ttfb_us(), 8_000);
        let mut g = h.start();
        assert_eq!(h.in_flight(), 1);
        assert_eq!(h.stats(now_ms(), Some(1)).queue_depth, 1);
        assert!(h.stats(now_ms(), Some(1)).at_capacity);
        g.first_byte();
        assert_eq!(h.stats(now_ms(), None).queue_depth, 0);
        drop(g);
        assert_eq!(h.in_flight(), 0);
    }

    #[test]
    fn threads_count_in_their_own_shards_and_readers_see_the_sum() {
        let h = Health::new(Gauge::default());
        std::thread::scope(|s| {
            let guards: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let mut g = h.start();
                        g.first_byte();
                        h.record_success_timed(
                            Duration::from_millis(10),
                            Duration::from_millis(20),
                        );
                        g
                    })
                })
                .map(|t| t.join().unwrap())
                .collect();
            // Three threads' attempts in flight, none waiting; ended here, on a fourth.
            assert_eq!(h.in_flight(), 3);
            assert_eq!(h.stats(now_ms(), None).queue_depth, 0);
            let one = h.start();
            assert_eq!(h.stats(now_ms(), Some(4)).queue_depth, 1);
            assert!(h.stats(now_ms(), Some(4)).at_capacity);
            drop(guards);
            drop(one);
        });
        assert_eq!(h.in_flight(), 0);
        let st = h.stats(now_ms(), None);
        assert_eq!(st.samples, 3);
        assert!((st.ttft_p50_ms - 10.0).abs() < 0.01 && (st.latency_p50_ms - 20.0).abs() < 0.01);
        assert_eq!(h.ewma_ttfb_us(), 10_000);
    }

    #[test]
    fn merged_averages_weigh_each_thread_and_keep_the_spread_between_them() {
        let one = |ms: f64, err: f64| {
            let mut l = Live::default();
            l.ttft.add(ms);
            l.latency.add(ms);
            l.error_rate = err;
            l.samples = 5;
            l
        };
        let m = Live::merge([one(10.0, 0.0), one(30.0, 1.0), Live::default()].into_iter());
        assert_eq!(m.samples, 10);
        assert!((m.ttft.p50() - 20.0).abs() < 1e-9);
        // Two threads 10 ms apart: σ = 10 ms, p95 = 20 + 1.645·10.
        assert!((m.ttft.p95() - 36.45).abs() < 1e-9, "{}", m.ttft.p95());
        assert!((m.error_rate - 0.5).abs() < 1e-9);
        let alone = Live::merge([Live::default(), one(7.0, 0.25)].into_iter());
        assert_eq!(
            (alone.ttft.p50(), alone.error_rate, alone.samples),
            (7.0, 0.25, 5)
        );
    }

    #[test]
    fn stats_track_a_slowdown_within_a_few_attempts() {
        let h = Health::new(Gauge::default());
        for _ in 0..20 {
            h.record_success_timed(Duration::from_millis(10), Duration::from_millis(50));
        }
        let s = h.stats(now_ms(), None);
        assert!((s.ttft_p50_ms - 10.0).abs() < 0.01 && (s.ttft_p95_ms - 10.0).abs() < 0.01);
        assert!((s.latency_p50_ms - 50.0).abs() < 0.01);
        assert!(s.healthy && s.error_rate == 0.0 && s.samples == 20);
        for _ in 0..4 {
            h.record_success_timed(Duration::from_millis(500), Duration::from_millis(600));
        }
        let s = h.stats(now_ms(), None);
        assert!(s.ttft_p95_ms > 400.0, "p95 {}", s.ttft_p95_ms);
        assert!(s.ttft_p50_ms > 150.0 && s.ttft_p50_ms < s.ttft_p95_ms);
        for _ in 0..12 {
            h.record_failure(100, Duration::from_secs(1), None);
        }
        let s = h.stats(now_ms(), None);
        assert!(s.error_rate > 0.5 && !s.healthy && !s.cooling_down);
    }
}
