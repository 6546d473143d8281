//! `datamind-gateway`: see the library's documentation and `README.md`.

use clap::Parser;

fn main() {
    let cli = datamind_gateway::cli::Cli::parse();
    std::process::exit(datamind_gateway::cli::main(cli));
}
