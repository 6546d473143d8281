//! `mock-llm`: a fast mock OpenAI-compatible upstream (plus the Azure, Anthropic, Gemini /
//! Vertex, Bedrock and Workers AI wire formats). Prints `listening on ADDR`, then serves until
//! killed. See `datamind_benches::mock` for endpoints and faults.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use datamind_benches::mock::{AwsKeys, Behaviour, Fault, MockServer};

/// A mock OpenAI-compatible upstream with scriptable faults.
#[derive(Debug, Parser)]
#[command(name = "mock-llm", version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Sent back in the `x-mock-name` header of every response.
    #[arg(long, default_value = "mock")]
    name: String,
    /// Default HTTP status of generation requests; not 200 = OpenAI error body.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// `Retry-After` seconds sent with error statuses.
    #[arg(long)]
    retry_after: Option<u32>,
    /// Default fault: none, reset, stall or drop-mid-stream.
    #[arg(long, default_value = "none")]
    fault: Fault,
    /// Delay before the first byte (non-stream) or first chunk (stream), in ms.
    #[arg(long, default_value_t = 0)]
    ttft_ms: u64,
    /// Content chunks per stream.
    #[arg(long, default_value_t = 20)]
    chunks: u32,
    /// Delay between stream chunks, in ms.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// AWS access key id Bedrock requests must be SigV4-signed with.
    #[arg(long, default_value = "AKIDMOCK")]
    aws_access_key: String,
    /// AWS secret key the mock recomputes Bedrock SigV4 signatures with.
    #[arg(long, default_value = "mock-secret")]
    aws_secret_key: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut defaults = Behaviour::default();
    let update = serde_json::json!({
        "status": cli.status, "retry_after": cli.retry_after, "fault": cli.fault,
        "ttft_ms": cli.ttft_ms, "chunks": cli.chunks, "chunk_delay_ms": cli.chunk_delay_ms,
    });
    defaults
        .apply(&serde_json::from_value(update)?)
        .map_err(anyhow::Error::msg)?;

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async {
        let server = MockServer::bind(cli.listen, &cli.name, defaults)
            .await
            .with_context(|| format!("binding {}", cli.listen))?
            .with_aws_keys(AwsKeys {
                access_key: cli.aws_access_key,
                secret_key: cli.aws_secret_key,
            });
        let addr = server.local_addr()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        drop(out);
        server.serve().await;
        Ok(())
    })
}
