//! Live statistics of one deployment: in flight, latency, failures, cooldown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;

/// Shared, lock-free health of one deployment.
#[derive(Debug)]
pub struct Health {
    in_flight: AtomicU32,
    consecutive_failures: AtomicU32,
    /// Unix milliseconds until which the deployment is skipped.
    cooldown_until_ms: AtomicU64,
    /// EWMA of time to first byte, microseconds (0 = never measured).
    ewma_ttfb_us: AtomicU64,
    in_flight_gauge: Gauge,
}

/// Decrements in-flight when dropped.
#[derive(Debug)]
pub struct InFlightGuard(Arc<Health>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
        self.0.in_flight_gauge.dec();
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
            in_flight: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            cooldown_until_ms: AtomicU64::new(0),
            ewma_ttfb_us: AtomicU64::new(0),
            in_flight_gauge: gauge,
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Counts a request until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.fetch_add(1, Relaxed);
        self.in_flight_gauge.inc();
        InFlightGuard(self.clone())
    }

    /// Milliseconds of cooldown left (0 = available).
    pub fn cooldown_left_ms(&self, now_ms: u64) -> u64 {
        self.cooldown_until_ms.load(Relaxed).saturating_sub(now_ms)
    }

    /// Recent time to first byte in microseconds (0 = unknown).
    pub fn ewma_ttfb_us(&self) -> u64 {
        self.ewma_ttfb_us.load(Relaxed)
    }

    /// An attempt got a good answer after `ttfb`.
    pub fn record_success(&self, ttfb: Duration) {
        self.consecutive_failures.store(0, Relaxed);
        let sample = ttfb.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.ewma_ttfb_us.load(Relaxed);
        // alpha = 1/8: smooth, yet a slow deployment shows within a handful of requests
        let new = if old == 0 {
            sample.max(1)
        } else {
            (old * 7 + sample) / 8
        };
        self.ewma_ttfb_us.store(new.max(1), Relaxed);
    }

    /// An attempt failed. After `threshold` failures in a row (or at once when the upstream
    /// named a `Retry-After`), the deployment cools down. Returns whether it now is.
    pub fn record_failure(
        &self,
        threshold: u32,
        cooldown: Duration,
        retry_after: Option<Duration>,
    ) -> bool {
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
        let h = Arc::new(Health::new(Gauge::default()));
        h.record_failure(2, Duration::from_secs(1), None);
        h.record_success(Duration::from_millis(8));
        assert!(!h.record_failure(2, Duration::from_secs(1), None));
        assert_eq!(h.ewma_ttfb_us(), 8_000);
        let g = h.start();
        assert_eq!(h.in_flight(), 1);
        drop(g);
        assert_eq!(h.in_flight(), 0);
    }
}
