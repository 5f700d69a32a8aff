//! `relbuild cache prune`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use relbuild_core::store::{Cache, PruneOptions};

use super::new::cache_dir;
use crate::cli::{CacheCommand, GlobalArgs};
use crate::printer;

pub(crate) fn run(cmd: &CacheCommand, global: &GlobalArgs) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Prune { cache_dir: dir, older_than_days, max_size_mib } => {
            let dir = cache_dir(dir.as_ref()).context("no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME")?;
            let cache = Cache::open(&dir).with_context(|| format!("opening cache `{}`", dir.display()))?;
            let mut opts = PruneOptions::default();
            opts.older_than = older_than_days.map(|d| Duration::from_secs(d * 86_400));
            opts.max_size = max_size_mib.map(|m| m << 20);
            let report = cache.prune(&opts)?;
            printer::info(
                global.quiet,
                &format!(
                    "removed {} entries ({} bytes) from {}",
                    report.removed + report.temp_files_removed,
                    report.bytes_freed,
                    dir.display()
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
