//! What a run measured: latency, time-to-first-chunk and inter-chunk-gap histograms
//! (microseconds, 3 significant digits) and errors by kind. One recorder is shared by all
//! workers behind a mutex; each finished request takes the lock once.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest value the histograms hold: 10 minutes in µs (larger values are clamped).
const MAX_US: u64 = 600_000_000;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The TCP connect or the HTTP handshake failed.
    Connect,
    /// The response had a non-2xx status.
    Status(u16),
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// Any other protocol error.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Status(s) => write!(f, "status {s}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Reset => f.write_str("reset"),
            Self::Other => f.write_str("other"),
        }
    }
}

/// The timings of one successful request.
#[derive(Debug, Default)]
pub struct Sample {
    /// From the send (closed loop) or scheduled send (open loop) time to the end of the body.
    pub latency: Duration,
    /// For SSE responses: to the first body chunk, from the same origin as `latency`.
    pub first_chunk: Option<Duration>,
    /// For SSE responses: gaps between consecutive body chunks.
    pub gaps: Vec<Duration>,
}

/// Accumulated measurements.
#[derive(Debug)]
pub struct Recorder {
    latency: Histogram<u64>,
    first_chunk: Histogram<u64>,
    gaps: Histogram<u64>,
    errors: BTreeMap<ErrorKind, u64>,
    ok: u64,
    body_bytes: u64,
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

// === impl Recorder ===

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_US, 3)?)
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: histogram()?,
            first_chunk: histogram()?,
            gaps: histogram()?,
            errors: BTreeMap::new(),
            ok: 0,
            body_bytes: 0,
        })
    }

    /// Records a successful request.
    pub fn ok(&mut self, sample: &Sample, body_bytes: u64) {
        self.ok += 1;
        self.body_bytes += body_bytes;
        let _ = self.latency.record(micros(sample.latency));
        if let Some(first) = sample.first_chunk {
            let _ = self.first_chunk.record(micros(first));
        }
        for gap in &sample.gaps {
            let _ = self.gaps.record(micros(*gap));
        }
    }

    /// Records a failed request.
    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Successful requests.
    pub fn ok_count(&self) -> u64 {
        self.ok
    }

    /// Failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Response body bytes of successful requests.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Errors by kind, e.g. `{"status 503": 4, "reset": 1}`.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    /// Latency percentiles.
    pub fn latency(&self) -> Percentiles {
        percentiles(&self.latency)
    }

    /// Time-to-first-chunk percentiles (SSE responses only; `None` without any).
    pub fn first_chunk(&self) -> Option<Percentiles> {
        (!self.first_chunk.is_empty()).then(|| percentiles(&self.first_chunk))
    }

    /// Inter-chunk gap percentiles (SSE responses only).
    pub fn gaps(&self) -> Option<Percentiles> {
        (!self.gaps.is_empty()).then(|| percentiles(&self.gaps))
    }
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut r = Recorder::new().unwrap();
        for ms in 1..=1000u64 {
            let sample = Sample {
                latency: Duration::from_millis(ms),
                first_chunk: (ms <= 10).then(|| Duration::from_millis(1)),
                gaps: vec![Duration::from_micros(500); 2],
            };
            r.ok(&sample, 10);
        }
        r.error(ErrorKind::Status(503));
        r.error(ErrorKind::Status(503));
        r.error(ErrorKind::Reset);
        let l = r.latency();
        assert_eq!(l.count, 1000);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert_eq!(r.first_chunk().unwrap().count, 10);
        assert_eq!(r.gaps().unwrap().count, 2000);
        assert_eq!(r.errors()["status 503"], 2);
        assert_eq!(r.error_count(), 3);
        assert_eq!(r.body_bytes(), 10_000);
        assert!(Recorder::new().unwrap().first_chunk().is_none());
    }
}
