//! One module per subcommand.

mod new;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Dispatches to the subcommand.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::New(args) => new::run(args, &cli.global).await,
        Command::Version => {
            version();
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[allow(clippy::print_stdout)]
fn version() {
    println!("relbuild {}", env!("CARGO_PKG_VERSION"));
}
