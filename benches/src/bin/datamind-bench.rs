//! `datamind-bench`: closed- or open-loop HTTP load against a loopback target, reporting
//! throughput, latency percentiles, SSE chunk timing, errors and the target's CPU and memory.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use datamind_benches::load::{self, LoadOptions};

/// A bounded load generator for loopback targets.
#[derive(Debug, Parser)]
#[command(name = "datamind-bench", version)]
struct Cli {
    #[command(flatten)]
    load: LoadOptions,
    /// Runtime worker threads (default 1, leaving the other core to the target).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let plan = cli.load.plan()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .context("building the runtime")?;
    let report = runtime.block_on(load::run(plan))?;
    let mut out = std::io::stdout().lock();
    if cli.load.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.write_text(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
