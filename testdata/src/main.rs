//! `relbuild-testdata`: run a loopback registry, or generate the synthetic
//! release stream into one.
//!
//! ```text
//! relbuild-testdata serve [--port-file F]             # a registry until Ctrl-C
//! relbuild-testdata generate --registry HOST:PORT --operators 200 --out is.yaml
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use relbuild_testdata::registry::TestRegistry;

#[derive(Debug, Parser)]
#[command(version, about = "Loopback registry and fixture generator for relbuild")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start Debian's docker-registry on 127.0.0.1 with temporary storage and
    /// keep it running until interrupted. Prints `127.0.0.1:PORT`.
    Serve {
        /// Also write `127.0.0.1:PORT` to this file once the registry answers.
        #[arg(long)]
        port_file: Option<PathBuf>,
    },
}

#[allow(clippy::print_stdout)]
fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { port_file } => {
            let reg = TestRegistry::start().context("starting the registry")?;
            println!("{}", reg.host());
            if let Some(f) = port_file {
                std::fs::write(&f, reg.host()).with_context(|| format!("writing {}", f.display()))?;
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // Stop on Ctrl-C or SIGTERM (what `kill` and scripts send), so the
            // registry child and its storage are always cleaned up.
            rt.block_on(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r,
                    _ = term.recv() => Ok(()),
                }
            })?;
            drop(reg);
            Ok(())
        }
    }
}
