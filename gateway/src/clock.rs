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
    /// The last `Date` value formatted on this thread, and its unix second.
    static HTTP_DATE: Cell<(u64, [u8; HTTP_DATE_LEN])> = const { Cell::new((u64::MAX, [0; HTTP_DATE_LEN])) };
}

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub const HTTP_DATE_LEN: usize = 29;

/// The HTTP `Date` value (IMF-fixdate, RFC 9110) of the second that holds `at`, a monotonic
/// reading taken just before. Formatted once a second per thread; no clock read when the
/// thread's anchor is fresh (see [`unix_ms_at`]).
pub fn http_date(at: Instant) -> [u8; HTTP_DATE_LEN] {
    let secs = unix_secs_at(at);
    HTTP_DATE
        .try_with(|cache| {
            let (cached_secs, text) = cache.get();
            if cached_secs == secs {
                return text;
            }
            let text = format_http_date(secs);
            cache.set((secs, text));
            text
        })
        .unwrap_or_else(|_| format_http_date(secs))
}

/// `secs` (a Unix time) as an IMF-fixdate.
pub fn format_http_date(secs: u64) -> [u8; HTTP_DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    put_digits(&mut out, 5, 2, d);
    put_digits(&mut out, 12, 4, y.min(9999));
    put_digits(&mut out, 17, 2, rem / 3600);
    put_digits(&mut out, 20, 2, rem % 3600 / 60);
    put_digits(&mut out, 23, 2, rem % 60);
    out[8..11].copy_from_slice(MONTHS[(m - 1) as usize]);
    out
}

/// Writes the last `width` decimal digits of `v` into `out[at..at + width]`, zero-padded:
/// dates by hand, since `format!` with several arguments costs more than the rest.
pub fn put_digits(out: &mut [u8], at: usize, width: usize, mut v: u64) {
    for i in (at..at + width).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// (year, month 1–12, day 1–31) of a count of days since 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
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
    fn http_dates_match_the_rfc_and_the_wall_clock() {
        assert_eq!(&format_http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &format_http_date(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            &format_http_date(951_825_600),
            b"Tue, 29 Feb 2000 12:00:00 GMT"
        );
        assert_eq!(
            &format_http_date(1_795_758_462),
            b"Fri, 27 Nov 2026 05:47:42 GMT"
        );
        assert_eq!(
            &format_http_date(253_402_300_799),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
        // Every day of a leap year and the next, against httpdate's formatter.
        for day in 0..731u64 {
            let secs = 1_704_067_200 + day * 86_400 + day * 97 % 86_400;
            let want = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(std::str::from_utf8(&format_http_date(secs)).unwrap(), want);
        }
        let now = Instant::now();
        let wall = system_nanos() / 1_000_000_000;
        let got = http_date(now);
        let near = [wall.saturating_sub(1), wall, wall + 1].map(format_http_date);
        assert!(near.contains(&got), "{}", String::from_utf8_lossy(&got));
        assert_eq!(http_date(now), got, "the cached value");
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
