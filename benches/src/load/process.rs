//! Sampling the target's resource use from /proc: RSS (`VmRSS` in /proc/PID/status) and CPU
//! time (utime + stime in /proc/PID/stat), summed over the given processes and their
//! descendants (so an nginx master brings its workers), every 100 ms.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Sampling period.
pub const PERIOD: Duration = Duration::from_millis(100);

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on every Linux ABI we run on).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of every sampled process.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// When it was taken.
    pub at: Instant,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// User + system CPU time, clock ticks.
    pub cpu_ticks: u64,
}

/// Resource use over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// Root PIDs sampled.
    pub pids: Vec<u32>,
    /// Largest RSS seen, MiB.
    pub rss_peak_mib: f64,
    /// Mean RSS, MiB.
    pub rss_mean_mib: f64,
    /// CPU time used during the window, ms.
    pub cpu_ms: f64,
    /// CPU time per completed request, ms.
    pub cpu_ms_per_request: f64,
    /// Readings taken.
    pub samples: usize,
}

/// Reads every root PID and its descendants once; `None` when no process could be read.
pub fn read(pids: &[u32]) -> Option<Reading> {
    let mut all = BTreeSet::new();
    let mut queue: Vec<u32> = pids.to_vec();
    while let Some(pid) = queue.pop() {
        if all.insert(pid) {
            queue.extend(children(pid));
        }
    }
    let mut reading = Reading {
        at: Instant::now(),
        rss_kib: 0,
        cpu_ticks: 0,
    };
    let mut any = false;
    for pid in all {
        if let (Some(rss), Some(cpu)) = (rss_kib(pid), cpu_ticks(pid)) {
            reading.rss_kib += rss;
            reading.cpu_ticks += cpu;
            any = true;
        }
    }
    any.then_some(reading)
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// `VmRSS:   1234 kB` → 1234. Kernel threads and zombies have none.
fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime: fields 14 and 15 of /proc/PID/stat, counted after the `(comm)` field,
/// which may itself contain spaces and parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Summarises the readings taken in `[from, ..]`, charging CPU to `requests`.
pub fn summarise(
    pids: &[u32],
    readings: &[Reading],
    from: Instant,
    requests: u64,
) -> Option<ProcessReport> {
    let window: Vec<&Reading> = readings.iter().filter(|r| r.at >= from).collect();
    let (first, last) = (window.first()?, window.last()?);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let cpu_ms = (last.cpu_ticks.saturating_sub(first.cpu_ticks)) as f64 * 1000.0 / TICKS_PER_SEC;
    Some(ProcessReport {
        pids: pids.to_vec(),
        rss_peak_mib: mib(window.iter().map(|r| r.rss_kib).max().unwrap_or(0)),
        rss_mean_mib: mib(window.iter().map(|r| r.rss_kib).sum::<u64>() / window.len() as u64),
        cpu_ms,
        cpu_ms_per_request: if requests == 0 {
            0.0
        } else {
            cpu_ms / requests as f64
        },
        samples: window.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2048));
        assert_eq!(parse_rss_kib("Name:\tkthread\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = read(&[std::process::id()]).unwrap();
        assert!(me.rss_kib > 0);
        assert!(read(&[u32::MAX]).is_none());
    }

    #[test]
    fn summary_over_the_window() {
        let t0 = Instant::now();
        let r = |ms: u64, rss: u64, cpu: u64| Reading {
            at: t0 + Duration::from_millis(ms),
            rss_kib: rss,
            cpu_ticks: cpu,
        };
        let readings = [r(0, 99_999, 0), r(100, 1024, 10), r(200, 3072, 30)];
        let s = summarise(&[1], &readings, t0 + Duration::from_millis(50), 100).unwrap();
        assert_eq!(s.rss_peak_mib, 3.0);
        assert_eq!(s.rss_mean_mib, 2.0);
        assert_eq!(s.cpu_ms, 200.0);
        assert_eq!(s.cpu_ms_per_request, 2.0);
    }
}
