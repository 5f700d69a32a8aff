//! Terminal output: tracing set-up, error rendering, exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

/// Logs go to stderr; stdout is for data only. `-v` shows info, `-vv` debug,
/// `-vvv` trace; `RUST_LOG` overrides.
#[allow(clippy::disallowed_methods)] // the CLI is where the environment is read
pub(crate) fn init_tracing(verbose: u8, quiet: bool) {
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
        .init();
}

/// Prints `error: <chain>` (each cause once, via `{:#}`) and returns exit code 1.
#[allow(clippy::print_stderr)]
pub(crate) fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

/// True when the error is a closed stdout (e.g. `relbuild info … | head`),
/// which is not a failure.
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `info: …` on stderr, unless `--quiet`. User-facing progress notes, the
/// way oc prints them; stdout stays for data.
#[allow(clippy::print_stderr)]
pub(crate) fn info(quiet: bool, message: &str) {
    if !quiet {
        eprintln!("info: {message}");
    }
}

/// `warning: …` on stderr, even with `--quiet`.
#[allow(clippy::print_stderr)]
pub(crate) fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// `error: …` on stderr, for problems reported before the command fails.
#[allow(clippy::print_stderr)]
pub(crate) fn error(message: &str) {
    eprintln!("error: {message}");
}

/// `hint: …` on stderr: what to do about the error or note just printed.
#[allow(clippy::print_stderr)]
pub(crate) fn hint(message: &str) {
    eprintln!("hint: {message}");
}
