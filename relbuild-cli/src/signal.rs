//! SIGINT and SIGTERM: the command stops, its temporary files go, and the
//! exit code is the shell's `128 + signal number`.

use std::process::ExitCode;

/// The signal that stopped the command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interrupted {
    name: &'static str,
    number: u8,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}; temporary files were removed", self.name)
    }
}

impl std::error::Error for Interrupted {}

/// Resolves on the first SIGINT or SIGTERM (never, when the handlers
/// cannot be installed: then the default action, termination, stays).
pub(crate) async fn interrupted() -> Interrupted {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => Interrupted { name: "SIGINT", number: 2 },
        _ = term.recv() => Interrupted { name: "SIGTERM", number: 15 },
    }
}

/// Prints `error: interrupted by …` and returns `128 + signal number`.
pub(crate) fn exit(e: &anyhow::Error) -> ExitCode {
    let code = e.downcast_ref::<Interrupted>().map_or(1, |i| 128 + i.number);
    crate::printer::error(&e.to_string());
    ExitCode::from(code)
}
