//! `relbuild info`: describe one release, or compare two.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use relbuild_core::release::info::{self, DiffOptions, ImageColumns};

use super::release_arg;
use crate::cli::{GlobalArgs, InfoArgs};
use crate::printer;
use crate::reporter::BarReporter;

pub(crate) async fn run(args: &InfoArgs, _global: &GlobalArgs) -> Result<ExitCode> {
    let releases = args.releases()?;
    let client = args.registry.client(Arc::new(BarReporter::without_bars()))?;
    let mut out = std::io::stdout().lock();
    if let [from, to] = releases.as_slice() {
        let (from, _) = release_arg::load(from, &client, &args.filter_by_os).await?;
        let (to, _) = release_arg::load(to, &client, &args.filter_by_os).await?;
        let diff = info::diff(&from, &to);
        match args.output.as_deref() {
            Some("json") => info::write_diff_json(&mut out, &diff)?,
            None => info::write_diff(
                &mut out,
                &diff,
                DiffOptions { commits: args.commits, manifests: true, now: jiff::Timestamp::now() },
            )?,
            Some(o) => bail!("`-o {o}`: comparing two releases supports only `-o json`"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (info, _) = release_arg::load(releases[0], &client, &args.filter_by_os).await?;
    for w in &info.warnings {
        printer::warn(w);
    }
    if let Some(tag) = &args.image_for {
        info::write_image_for(&mut out, &info, tag)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.size {
        let images = info::image_sizes(&client, &info, &args.filter_by_os).await?;
        info::write_size(&mut out, &info::size_report(&images), jiff::Timestamp::now())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.verify {
        let report = info::verify_images(&client, &info).await;
        if !report.is_ok() {
            let failed = report.failures.len();
            for e in report.failures {
                printer::error(&format!("{:#}", anyhow::Error::new(e)));
            }
            bail!("{failed} of the release's images failed verification");
        }
        info::write_verify_line(&mut out, &info)?;
        return Ok(ExitCode::SUCCESS);
    }
    match args.output.as_deref() {
        Some("json") => info::write_json(&mut out, &info)?,
        Some("name") => info::write_names(&mut out, &info)?,
        Some("pullspec") => info::write_pullspecs(&mut out, &info)?,
        Some("digest") => {
            let problems = info::write_digests(&mut out, &info)?;
            for p in &problems {
                printer::error(p);
            }
            if !problems.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Some(o) => bail!("`-o {o}`: use one of `json`, `name`, `pullspec`, `digest`"),
        None if args.contents => info::write_contents(&mut out, &info)?,
        None if args.show_platforms => info::write_platforms(&mut out, &info)?,
        None => {
            let columns = if args.pullspecs {
                ImageColumns::PullSpec
            } else if args.commits {
                ImageColumns::Commits
            } else if args.commit_urls {
                ImageColumns::CommitUrls
            } else {
                ImageColumns::Digest
            };
            info::write_describe(&mut out, &info, columns)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
