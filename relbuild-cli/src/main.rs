//! The `relbuild` command: a thin wrapper around `relbuild-core`.
//!
//! Each subcommand turns its arguments into core options, makes one core
//! call and renders the result.

mod cli;
mod commands;
mod printer;
mod registry_args;
mod reporter;
mod signal;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // `exit` prints the error or help, ignoring a closed stream.
        Err(e) => cli::without_unrelated_suggestion(e, &args).exit(),
    };
    printer::init_tracing(cli.global.verbose, cli.global.quiet);
    // Core is async (registry I/O) but never builds a runtime: the binary
    // owns that choice. One async thread: the async side is I/O-bound, and
    // everything CPU-bound (decompression, untarring, hashing, compression,
    // YAML checks) already runs on blocking threads or threads of its own.
    // A multi-threaded scheduler only added cross-thread wake-ups: a cold
    // build of the benchmark stream used 7-16 % more CPU with it
    // (benches/README.md).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return printer::fail(&anyhow::Error::new(e).context("starting the async runtime")),
    };
    // Core returns only once the blocking work it started has stopped, so
    // the runtime shuts down cleanly here, also after a failed build.
    // SIGINT or SIGTERM drops the command's future, so its temporary files
    // (cache pack, payload layer, half-written outputs) are removed, and
    // dropping the runtime waits for the blocking work that holds others.
    let result = runtime.block_on(async {
        tokio::select! {
            r = commands::run(cli) => r,
            signal = signal::interrupted() => Err(signal.into()),
        }
    });
    drop(runtime);
    match result {
        Ok(code) => code,
        Err(e) if e.is::<signal::Interrupted>() => signal::exit(&e),
        Err(e) if printer::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => printer::fail(&e),
    }
}
