//! Wall-clock time from a monotonic reading: a request reads the clock once.
//!
//! A request needs both clocks: the monotonic one for durations and deadlines, the wall
//! clock for the access log's timestamp, key expiry and cooldown instants (unix times that
//! survive in Redis and across processes). Reading both costs two clock calls, and a
//! proxied request read clocks ~30 times before this module. [`unix_ms_at`] derives the
//! wall time from an `Instant` already taken, anchored to a real wall reading that each
//! thread renews once a second, so a step of the system clock (NTP) shows within a second
//! and nothing drifts further than that.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a thread's anchor is trusted.
const REANCHOR: Duration = Duration::from_secs(1);

thread_local! {
    /// (monotonic reading, unix nanoseconds at that reading).
    static ANCHOR: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// Unix time in milliseconds at `at`, a monotonic reading taken just before (at most about
/// a second away from now). Reads the wall clock only when this thread's anchor is older
/// than a second.
pub fn unix_ms_at(at: Instant) -> u64 {
    unix_nanos_at(at) / 1_000_000
}

/// Unix time in seconds at `at` (see [`unix_ms_at`]).
pub fn unix_secs_at(at: Instant) -> u64 {
    unix_nanos_at(at) / 1_000_000_000
}

/// Unix time in nanoseconds at `at` (see [`unix_ms_at`]).
pub fn unix_nanos_at(at: Instant) -> u64 {
    ANCHOR
        .try_with(|anchor| {
            if let Some((mono, wall)) = anchor.get() {
                let derived = match at.checked_duration_since(mono) {
                    Some(ahead) if ahead < REANCHOR => Some(wall.saturating_add(nanos(ahead))),
                    Some(_) => None,
                    None => {
                        let behind = mono.duration_since(at);
                        (behind < REANCHOR).then(|| wall.saturating_sub(nanos(behind)))
                    }
                };
                if let Some(t) = derived {
                    return t;
                }
            }
            // A fresh pair of readings (once a second per thread): `at` may be far from
            // now (a long request's start), so it is placed relative to this pair.
            let now = Instant::now();
            let wall = system_nanos();
            anchor.set(Some((now, wall)));
            match now.checked_duration_since(at) {
                Some(behind) => wall.saturating_sub(nanos(behind)),
                None => wall.saturating_add(nanos(at.duration_since(now))),
            }
        })
        .unwrap_or_else(|_| system_nanos())
}

fn system_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, nanos)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_ms() -> u64 {
        system_nanos() / 1_000_000
    }

    #[test]
    fn derived_time_matches_the_wall_clock() {
        for _ in 0..3 {
            let before = system_ms();
            let t = unix_ms_at(Instant::now());
            let after = system_ms();
            assert!(before <= t + 1 && t <= after + 1, "{before} {t} {after}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn derived_times_follow_the_monotonic_clock() {
        let a = Instant::now();
        let t0 = unix_ms_at(a);
        let t1 = unix_ms_at(a + Duration::from_millis(250));
        assert!((249..=251).contains(&(t1 - t0)), "{t0} {t1}");
        if let Some(earlier) = a.checked_sub(Duration::from_millis(100)) {
            let t2 = unix_ms_at(earlier);
            assert!((99..=101).contains(&(t0 - t2)), "{t2} {t0}");
        }
        assert_eq!(unix_secs_at(a), unix_nanos_at(a) / 1_000_000_000);
    }

    #[test]
    fn an_old_anchor_is_renewed_and_an_old_instant_placed_in_the_past() {
        let a = Instant::now();
        let _ = unix_ms_at(a);
        // Five seconds past the anchor: a fresh pair of readings, not anchor + 5 s.
        let later = a + Duration::from_secs(5);
        let t = unix_ms_at(later);
        let now = system_ms();
        assert!(t.abs_diff(now + 5000) < 1000, "{t} {now}");
        let anchored = ANCHOR.with(|c| c.get()).map(|(m, _)| m).unwrap();
        assert!(anchored >= a && anchored < later);
        // A long request's start, 5 s back: 5 s before now, not now.
        if let Some(old) = Instant::now().checked_sub(Duration::from_secs(5)) {
            let t = unix_ms_at(old);
            let now = system_ms();
            assert!((4990..=5010).contains(&(now - t)), "{t} {now}");
        }
    }
}
