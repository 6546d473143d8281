//! In-process counters: the limiter without Redis, and the per-replica fallback while
//! Redis is unreachable. Same algorithm as the Lua scripts in `shared.rs`.
//!
//! A per-minute limit is a sliding window of [`SLOTS`] one-second slots: admission sums
//! the slots of the last minute, so at most `limit` units are admitted in any minute
//! (at one-second granularity) and nothing refills early. Concurrency is a counter
//! decremented when the request's guard drops.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use super::{Check, Decision, Kind, Verdict};

/// Slots per window.
pub const SLOTS: i64 = 60;
/// Window length.
pub const WINDOW_MS: i64 = 60_000;
const WIDTH_MS: i64 = WINDOW_MS / SLOTS;

/// Counters by name. One lock: the critical section is a few additions.
#[derive(Debug)]
pub struct LocalStore {
    map: Mutex<Counters>,
    epoch: Instant,
}

#[derive(Debug, Default)]
struct Counters {
    windows: HashMap<String, Window>,
    in_flight: HashMap<String, u64>,
}

#[derive(Debug)]
struct Window {
    slots: [u64; SLOTS as usize],
    sum: u64,
    /// The newest slot index seen.
    last: i64,
}

// === impl Window ===

impl Window {
    fn new(cur: i64) -> Self {
        Self {
            slots: [0; SLOTS as usize],
            sum: 0,
            last: cur,
        }
    }

    fn slot(b: i64) -> usize {
        b.rem_euclid(SLOTS) as usize
    }

    /// Forgets the slots that left the window.
    fn advance(&mut self, cur: i64) {
        if cur <= self.last {
            return;
        }
        if cur - self.last >= SLOTS {
            self.slots = [0; SLOTS as usize];
            self.sum = 0;
        } else {
            for b in self.last + 1..=cur {
                let s = &mut self.slots[Self::slot(b)];
                self.sum -= *s;
                *s = 0;
            }
        }
        self.last = cur;
    }

    /// Milliseconds from `now` until `need` units fit under `limit`, or until the window
    /// is empty when `need` is 0.
    fn reset_ms(&self, cur: i64, now: i64, limit: u64, need: u64) -> i64 {
        let mut freed = 0;
        for b in cur - SLOTS + 1..=cur {
            let v = self.slots[Self::slot(b)];
            if v == 0 {
                continue;
            }
            freed += v;
            let left = self.sum - freed;
            let fits = if need == 0 {
                left == 0
            } else {
                left + need <= limit
            };
            if fits {
                return (b + SLOTS) * WIDTH_MS - now;
            }
        }
        0
    }
}

// === impl LocalStore ===

impl Default for LocalStore {
    fn default() -> Self {
        Self {
            map: Mutex::new(Counters::default()),
            epoch: Instant::now(),
        }
    }
}

impl LocalStore {
    fn now_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    /// Checks every limit and, when all pass, counts the request against each (all or
    /// nothing). `divisor` divides every limit (per-replica fallback).
    pub fn admit(&self, checks: &[Check], divisor: u64) -> Decision {
        let now = self.now_ms();
        let cur = now / WIDTH_MS;
        let mut map = self.map.lock();
        if map.windows.len() + map.in_flight.len() > 100_000 {
            map.sweep(cur);
        }
        let mut verdicts = Vec::with_capacity(checks.len());
        let mut denied = None;
        for (i, c) in checks.iter().enumerate() {
            let limit = c.limit.div_ceil(divisor.max(1)).max(1);
            let v = match c.kind {
                Kind::Window => {
                    let w = map
                        .windows
                        .entry(c.name.clone())
                        .or_insert_with(|| Window::new(cur));
                    w.advance(cur);
                    let ok = w.sum + c.cost <= limit;
                    Verdict {
                        limit,
                        used: w.sum,
                        admitted: ok,
                        reset_ms: if ok {
                            (cur + SLOTS) * WIDTH_MS - now
                        } else if c.cost > limit {
                            WINDOW_MS
                        } else {
                            w.reset_ms(cur, now, limit, c.cost)
                        },
                    }
                }
                Kind::InFlight => {
                    let n = map.in_flight.get(&c.name).copied().unwrap_or(0);
                    Verdict {
                        limit,
                        used: n,
                        admitted: n < limit,
                        reset_ms: 1000,
                    }
                }
            };
            if !v.admitted && denied.is_none() {
                denied = Some(i);
            }
            verdicts.push(v);
        }
        if denied.is_none() {
            for c in checks {
                match c.kind {
                    Kind::Window => {
                        if let Some(w) = map.windows.get_mut(&c.name) {
                            w.slots[Window::slot(cur)] += c.cost;
                            w.sum += c.cost;
                        }
                    }
                    Kind::InFlight => *map.in_flight.entry(c.name.clone()).or_insert(0) += 1,
                }
            }
        }
        Decision {
            denied,
            bucket: cur,
            verdicts,
        }
    }

    /// Settles a finished request: `delta` tokens more (or fewer, refunded to the slot
    /// they were reserved in) on each window named in `tokens`, one in-flight request
    /// fewer on each counter in `in_flight`.
    pub fn settle(&self, tokens: &[String], bucket: i64, delta: i64, in_flight: &[String]) {
        let cur = self.now_ms() / WIDTH_MS;
        let mut map = self.map.lock();
        for name in tokens {
            if let Some(w) = map.windows.get_mut(name) {
                w.advance(cur);
                if delta > 0 {
                    w.slots[Window::slot(cur)] += delta as u64;
                    w.sum += delta as u64;
                } else if delta < 0 && bucket > cur - SLOTS {
                    let s = &mut w.slots[Window::slot(bucket)];
                    let refund = (-delta as u64).min(*s);
                    *s -= refund;
                    w.sum -= refund;
                }
            }
        }
        for name in in_flight {
            if let Some(n) = map.in_flight.get_mut(name) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Counters {
    /// Drops idle counters (empty windows, nothing in flight).
    fn sweep(&mut self, cur: i64) {
        self.windows.retain(|_, w| {
            w.advance(cur);
            w.sum > 0
        });
        self.in_flight.retain(|_, n| *n > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, kind: Kind, limit: u64, cost: u64) -> Check {
        Check {
            name: name.into(),
            kind,
            limit,
            cost,
        }
    }

    #[test]
    fn admits_exactly_the_limit_all_or_nothing() {
        let s = LocalStore::default();
        let checks = [
            check("rpm", Kind::Window, 3, 1),
            check("tpm", Kind::Window, 100, 30),
        ];
        for i in 0..3 {
            let d = s.admit(&checks, 1);
            assert_eq!(d.denied, None, "request {i}");
            assert_eq!(d.verdicts[0].limit - d.verdicts[0].used - 1, 2 - i);
        }
        let d = s.admit(&checks, 1);
        assert_eq!(d.denied, Some(0));
        assert!(d.verdicts[0].reset_ms > 58_000 && d.verdicts[0].reset_ms <= 60_000);
        // The denied request consumed nothing: tokens still show 90 used.
        let d = s.admit(&[check("tpm", Kind::Window, 100, 10)], 1);
        assert_eq!((d.denied, d.verdicts[0].used), (None, 90));
        let d = s.admit(&[check("tpm", Kind::Window, 100, 1)], 1);
        assert_eq!(d.denied, Some(0));
    }

    #[test]
    fn settle_refunds_reservations_and_charges_overruns() {
        let s = LocalStore::default();
        let tpm = [check("tpm", Kind::Window, 100, 80)];
        let d = s.admit(&tpm, 1);
        assert_eq!(d.denied, None);
        s.settle(&["tpm".into()], d.bucket, -70, &[]);
        let d = s.admit(&[check("tpm", Kind::Window, 100, 90)], 1);
        assert_eq!(d.denied, None, "10 used after the refund");
        s.settle(&["tpm".into()], d.bucket, 50, &[]);
        let d = s.admit(&[check("tpm", Kind::Window, 100, 1)], 1);
        assert_eq!(
            (d.denied, d.verdicts[0].used),
            (Some(0), 150),
            "overrun counted"
        );
    }

    #[test]
    fn in_flight_slots_are_released_and_limits_divide() {
        let s = LocalStore::default();
        let c = [check("conc", Kind::InFlight, 4, 1)];
        assert_eq!(s.admit(&c, 2).denied, None);
        assert_eq!(s.admit(&c, 2).denied, None);
        assert_eq!(s.admit(&c, 2).denied, Some(0), "4 / 2 replicas = 2");
        s.settle(&[], 0, 0, &["conc".into()]);
        assert_eq!(s.admit(&c, 2).denied, None);
    }

    #[test]
    fn windows_slide() {
        let mut w = Window::new(0);
        w.slots[0] = 5;
        w.sum = 5;
        w.advance(30);
        assert_eq!(w.sum, 5);
        w.slots[Window::slot(30)] = 2;
        w.sum = 7;
        assert_eq!(w.reset_ms(30, 30_500, 6, 1), 60_000 - 30_500);
        w.advance(60);
        assert_eq!(w.sum, 2, "slot 0 left the window");
        w.advance(200);
        assert_eq!(w.sum, 0);
    }
}
