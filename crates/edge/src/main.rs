use clap::Parser;

/// jemalloc, whose background threads give memory back to the system within seconds of a burst
/// of large request bodies, even from threads that stay idle afterwards; the system allocator and
/// mimalloc kept hundreds of MiB (docs/benchmarks.md). It also serves C's `malloc` (the
/// `unprefixed_malloc_on_supported_platforms` feature), so SQLite's page caches go back too: in
/// glibc's per-thread arenas they stayed resident after their connections had closed.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("warning: jemalloc background threads are off ({e}): memory is given back more slowly");
    }
    edge::cli::main(edge::cli::Cli::parse()).await
}
