//! One module per subcommand: arguments → core options → one core call → output.

mod cache;
mod extract;
mod info;
mod lint;
mod new;
mod release_arg;
mod verify;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Dispatches to the subcommand.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::New(args) => new::run(args, &cli.global).await,
        Command::Info(args) => info::run(args, &cli.global).await,
        Command::Extract(args) => extract::run(args, &cli.global).await,
        Command::Lint(args) => lint::run(args, &cli.global).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Cache(cmd) => cache::run(cmd, &cli.global),
        Command::Version => {
            version()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn version() -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout(), "relbuild {}", env!("CARGO_PKG_VERSION"))
}
