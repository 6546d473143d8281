//! Benchmark tooling for the DataMind gateway.
//!
//! - [`mock`]: the `mock-llm` upstream — an OpenAI-compatible server that is much cheaper than
//!   any gateway, with faults (`reset`, `stall`, `drop-mid-stream`, error statuses) and
//!   counters (`/stats`) that end-to-end tests assert on. Start reading at [`mock::MockServer`].
//! - [`load`]: the `datamind-bench` load generator — closed or open loop, HTTP/1.1 or h2c,
//!   SSE chunk timing, HDR percentiles, target CPU/RSS from /proc. Start at [`load::run`].
//! - The binaries in `src/bin/` are thin CLIs over these modules: `mock-llm`, `datamind-bench`.
//! - Outside the library: `run.sh` (scenarios across DataMind, nginx and peers installed by
//!   `peers/setup.sh`; `--smoke` for a quick check), `benches/llm.rs` (criterion micro-benches of
//!   `datamind-llm`), and `README.md` with every CLI and the mock's exact semantics.
//!
//! To add a mock endpoint: build its body in a module next to [`mock::body`], route it in
//! [`mock::routes::handle`], and count it with a guard if tests need to see cancellations.
//! To add a scenario: one line in `SCENARIOS` in `run.sh` (name, mock `/control` JSON, bench
//! arguments).

pub mod load;
pub mod mock;
