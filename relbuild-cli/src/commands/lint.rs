//! `relbuild lint`: what the CVO would reject, with exit code 0 (clean), 1
//! (errors) or 2 (could not run).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use relbuild_core::release::lint;

use super::release_arg;
use crate::cli::{GlobalArgs, LintArgs};
use crate::printer;
use crate::reporter::BarReporter;

/// The regular files directly in `dir`, sorted by name.
fn read_dir_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading directory `{}`", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(entry.path()).with_context(|| format!("reading `{}`", entry.path().display()))?;
        files.push((name, data));
    }
    files.sort();
    Ok(files)
}

/// Exit code 2: the lint could not run (unreadable input, registry error,
/// bad flag), as opposed to 1, which means it ran and found errors.
const COULD_NOT_RUN: u8 = 2;

pub(crate) async fn run(args: &LintArgs, _global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(o) = args.output.as_deref().filter(|o| *o != "json") {
        printer::error(&format!("`-o {o}`: use `json`"));
        return Ok(ExitCode::from(COULD_NOT_RUN));
    }
    let files = match payload_files(args).await {
        Ok(files) => files,
        Err(e) => {
            printer::error(&format!("{e:#}"));
            return Ok(ExitCode::from(COULD_NOT_RUN));
        }
    };
    let findings = lint::lint(&files, None);
    let mut out = std::io::stdout().lock();
    match args.output.as_deref() {
        Some("json") => lint::write_json(&mut out, &findings)?,
        _ => {
            lint::write_human(&mut out, &findings)?;
            writeln!(out, "{}", summary(&findings, files.len()))?;
        }
    }
    Ok(ExitCode::from(lint::exit_code(&findings) as u8))
}

/// `N errors, M warnings in K files`, the last line of the human output.
fn summary(findings: &[lint::Finding], files: usize) -> String {
    let errors = findings.iter().filter(|f| f.severity == lint::Severity::Error).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {} in {}", plural(errors, "error"), plural(findings.len() - errors, "warning"), plural(files, "file"))
}

/// The payload files of the release or directory named by the argument.
async fn payload_files(args: &LintArgs) -> Result<Vec<(String, Vec<u8>)>> {
    let path = Path::new(&args.target);
    if path.is_dir() && !args.target.contains(':') {
        return read_dir_files(path);
    }
    let client = args.registry.client(Arc::new(BarReporter::without_bars()))?;
    let (_, loaded) = release_arg::load(&args.target, &client, "linux/amd64").await?;
    Ok(loaded.data.files)
}
