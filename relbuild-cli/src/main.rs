//! The `relbuild` command: a thin wrapper around `relbuild-core`.
//!
//! Each subcommand turns its arguments into core options, makes one core
//! call and renders the result.

mod cli;
mod commands;
mod printer;
mod registry_args;
mod reporter;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    printer::init_tracing(cli.global.verbose, cli.global.quiet);
    // Core is async (registry I/O) but never builds a runtime: the binary
    // owns that choice. Multi-threaded, because layer compression and
    // hashing run on blocking threads while requests are in flight.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return printer::fail(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    let result = runtime.block_on(commands::run(cli));
    // Not dropped: when a build fails, other operators' layer reads may still
    // be running on blocking threads; shutting the runtime down under them
    // makes their next timer registration panic. The process ends here anyway.
    std::mem::forget(runtime);
    match result {
        Ok(code) => code,
        Err(e) if printer::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => printer::fail(&e),
    }
}
