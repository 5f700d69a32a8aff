//! Terminal output: tracing set-up, error rendering, exit codes.
//!
//! Nothing here panics on a failed write. `eprintln!` does, and a panic
//! inside indicatif's `suspend` poisoned its lock, so a destructor panicked
//! again during unwinding and the process aborted (`2>&1 | head -1`). A
//! closed or full stderr means nobody reads it any more: lines for it are
//! dropped and the command carries on (a push stopped half-way helps no
//! one). A closed stdout ends the command as a success, in `main`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// `--quiet`, recorded once by [`init_tracing`] so that every warning,
/// wherever it is printed from, honours it.
static QUIET: AtomicBool = AtomicBool::new(false);
/// `-v` or more: every warning, none grouped.
static EVERY_WARNING: AtomicBool = AtomicBool::new(false);

/// Logs go to stderr; stdout is for data only. `-v` shows info, `-vv` debug,
/// `-vvv` trace; `RUST_LOG` overrides.
#[allow(clippy::disallowed_methods)] // the CLI is where the environment is read
pub(crate) fn init_tracing(verbose: u8, quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    EVERY_WARNING.store(verbose > 0, Ordering::Relaxed);
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "relbuild=info,relbuild_core=info,warn",
        (false, 2) => "relbuild=debug,relbuild_core=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        // Its report of a failed write is an `eprintln!`, which panics.
        .log_internal_errors(false)
        .init();
}

/// `--quiet`: errors only.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `-v`: print every warning rather than the first few of each kind.
pub(crate) fn every_warning() -> bool {
    EVERY_WARNING.load(Ordering::Relaxed)
}

/// Writes one line to stderr, ignoring a failed write (see the module doc).
pub(crate) fn stderr_line(line: std::fmt::Arguments<'_>) {
    let _ignored = writeln!(std::io::stderr().lock(), "{line}");
}

/// Prints `error: <chain>` (each cause once, via `{:#}`) and returns exit code 1.
pub(crate) fn fail(e: &anyhow::Error) -> ExitCode {
    stderr_line(format_args!("error: {e:#}"));
    ExitCode::FAILURE
}

/// True when the error is a closed stdout (e.g. `relbuild info … | head`),
/// which is not a failure.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `info: …` on stderr, unless `--quiet`. User-facing progress notes, the
/// way oc prints them; stdout stays for data.
pub(crate) fn info(quiet: bool, message: &str) {
    if !quiet {
        stderr_line(format_args!("info: {message}"));
    }
}

/// `warning: …` on stderr, unless `--quiet` (which prints errors only).
pub(crate) fn warn(message: &str) {
    if !quiet() {
        stderr_line(format_args!("warning: {message}"));
    }
}

/// `error: …` on stderr, for problems reported before the command fails.
pub(crate) fn error(message: &str) {
    stderr_line(format_args!("error: {message}"));
}

/// `hint: …` on stderr: what to do about the error or note just printed.
pub(crate) fn hint(message: &str) {
    stderr_line(format_args!("hint: {message}"));
}
