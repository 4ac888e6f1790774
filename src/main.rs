//! `lapor-node`: parse the command line and run it. Everything else is in the library.

use clap::Parser;

/// mimalloc instead of the system allocator: requests allocate many short-lived buffers on
/// two threads at once, which glibc's allocator served with noticeably more CPU (see
/// docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = lapor_node::cli::Cli::parse();
    match lapor_node::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
