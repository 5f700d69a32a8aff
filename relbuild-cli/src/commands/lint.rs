//! `relbuild lint`: what the CVO would reject, with exit code 0 (clean), 1
//! (errors) or 2 (could not run).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use relbuild_core::NoReporter;
use relbuild_core::release::lint;

use super::release_arg;
use crate::cli::{GlobalArgs, LintArgs};

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

pub(crate) async fn run(args: &LintArgs, _global: &GlobalArgs) -> Result<ExitCode> {
    let path = Path::new(&args.target);
    let (files, base_has_manifests) = if path.is_dir() && !args.target.contains(':') {
        (read_dir_files(path)?, None)
    } else {
        let client = args.registry.client(Arc::new(NoReporter))?;
        let (_, loaded) = release_arg::load(&args.target, &client, "linux/amd64").await?;
        (loaded.data.files, None)
    };
    let findings = lint::lint(&files, base_has_manifests);
    let mut out = std::io::stdout().lock();
    match args.output.as_deref() {
        None => lint::write_human(&mut out, &findings)?,
        Some("json") => lint::write_json(&mut out, &findings)?,
        Some(o) => bail!("`-o {o}`: use `json`"),
    }
    Ok(ExitCode::from(lint::exit_code(&findings) as u8))
}
