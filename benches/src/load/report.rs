//! The result of a run, as text for a person or JSON (`--json`) for the scenario runner.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::options::Plan;
use super::process::ProcessReport;
use super::recorder::{Percentiles, Recorder};

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Target URL.
    pub url: String,
    /// `h1` or `h2c`.
    pub protocol: &'static str,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Workers / in-flight cap.
    pub concurrency: usize,
    /// Open-loop arrival rate.
    pub rate: Option<f64>,
    /// Measured wall time, seconds (to the last measured completion).
    pub elapsed_s: f64,
    /// Measured requests finished (ok + errors).
    pub requests: u64,
    /// Successful (2xx, complete) requests.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by kind (`connect`, `status 503`, `timeout`, `reset`, `other`).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub throughput: f64,
    /// Response body bytes of successful requests.
    pub body_bytes: u64,
    /// Latency, ms.
    pub latency_ms: Percentiles,
    /// Time to first chunk of SSE responses, ms.
    pub first_chunk_ms: Option<Percentiles>,
    /// Gaps between SSE chunks, ms.
    pub chunk_gap_ms: Option<Percentiles>,
    /// Target process resource use (`--pid`).
    pub process: Option<ProcessReport>,
    /// 1-minute load average when the run ended (a busy machine skews every figure).
    pub loadavg_1m: Option<f64>,
}

// === impl Report ===

impl Report {
    /// Builds the report of a finished run.
    pub fn new(
        plan: &Plan,
        rec: &Recorder,
        elapsed: Duration,
        process: Option<ProcessReport>,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        Self {
            url: plan.uri.to_string(),
            protocol: if plan.h2 { "h2c" } else { "h1" },
            mode: if plan.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            concurrency: plan.concurrency,
            rate: plan.rate,
            elapsed_s: secs,
            requests: rec.ok_count() + rec.error_count(),
            ok: rec.ok_count(),
            errors: rec.error_count(),
            errors_by_kind: rec.errors(),
            throughput: if secs > 0.0 {
                rec.ok_count() as f64 / secs
            } else {
                0.0
            },
            body_bytes: rec.body_bytes(),
            latency_ms: rec.latency(),
            first_chunk_ms: rec.first_chunk(),
            chunk_gap_ms: rec.gaps(),
            process,
            loadavg_1m: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next()?.parse().ok()),
        }
    }

    /// Writes the human-readable report.
    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let rate = self
            .rate
            .map(|r| format!(" rate={r}/s"))
            .unwrap_or_default();
        writeln!(
            out,
            "{} ({}, {} loop, c={}{rate})",
            self.url, self.protocol, self.mode, self.concurrency
        )?;
        writeln!(
            out,
            "  requests {}  ok {}  errors {}  in {:.2} s  →  {:.1} req/s",
            self.requests, self.ok, self.errors, self.elapsed_s, self.throughput
        )?;
        write_percentiles(out, "latency ms", &self.latency_ms)?;
        if let Some(p) = &self.first_chunk_ms {
            write_percentiles(out, "first chunk ms", p)?;
        }
        if let Some(p) = &self.chunk_gap_ms {
            writeln!(
                out,
                "  {:<15} p50 {:.3}  p99 {:.3}  max {:.3}  (n={})",
                "chunk gap ms", p.p50, p.p99, p.max, p.count
            )?;
        }
        if !self.errors_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .errors_by_kind
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            writeln!(out, "  errors          {}", kinds.join(", "))?;
        }
        if let Some(p) = &self.process {
            writeln!(
                out,
                "  target pids {:?}  rss peak {:.1} MiB mean {:.1} MiB  cpu {:.0} ms = {:.4} ms/req",
                p.pids, p.rss_peak_mib, p.rss_mean_mib, p.cpu_ms, p.cpu_ms_per_request
            )?;
        }
        if let Some(l) = self.loadavg_1m {
            writeln!(out, "  loadavg(1m)     {l:.2}")?;
        }
        Ok(())
    }
}

fn write_percentiles(out: &mut impl Write, label: &str, p: &Percentiles) -> std::io::Result<()> {
    writeln!(
        out,
        "  {label:<15} p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
        p.p50, p.p90, p.p99, p.p999, p.max, p.mean
    )
}
