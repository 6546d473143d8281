//! `datamind-gateway`: see the library's documentation and `README.md`.

use clap::Parser;

/// mimalloc: the request path allocates and frees many small buffers across threads, where
/// glibc's allocator showed up at ~12% of the gateway's CPU in profiles (see README,
/// Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = datamind_gateway::cli::Cli::parse();
    std::process::exit(datamind_gateway::cli::main(cli));
}
