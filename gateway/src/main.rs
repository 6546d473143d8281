//! `datamind-gateway`: see the library's documentation and `README.md`.

use clap::Parser;

/// mimalloc: the request path allocates and frees many small buffers across threads, where
/// glibc's allocator showed up at ~12% of the gateway's CPU in profiles (see README,
/// Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    no_transparent_huge_pages();
    let cli = datamind_gateway::cli::Cli::parse();
    std::process::exit(datamind_gateway::cli::main(cli));
}

/// Turns transparent huge pages off for this process, before the runtime's threads start.
///
/// mimalloc asks for huge pages on its arena (`MADV_HUGEPAGE`) and returns freed pages to the
/// OS page by page. After a burst (1,000 streams) its regions are left sparse, and
/// `khugepaged` (with the kernel's default `max_ptes_none` of 511) later refills each 2 MiB
/// region that has one page in use into a whole huge page: the soak measured RSS rising
/// 34 → 54 MiB eleven minutes after the gateway started, at the minute `khugepaged`
/// collapsed 17 huge pages into it (`benches/results/2026-11-27T004933Z-memory.txt`). The
/// heap is a few tens of MiB, where huge pages save little TLB work; RSS that follows use is
/// worth more. A kernel without the flag (or a sandbox that refuses it) changes nothing.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}
