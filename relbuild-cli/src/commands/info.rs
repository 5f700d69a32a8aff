//! `relbuild info`: describe one release, or compare two.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
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
        let images = sizes(&client, &info, &args.filter_by_os).await?;
        info::write_size(&mut out, &info::size_report(&images), jiff::Timestamp::now())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.verify {
        verify(&client, &info).await?;
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

/// Pulls every component's manifest by its pinned digest; the client checks
/// the bytes against the digest, so a mismatch or a missing image fails.
async fn verify(client: &relbuild_core::registry::Client, info: &info::ReleaseInfo) -> Result<()> {
    use futures_util::stream::{self, StreamExt as _};
    let specs: Vec<(String, String)> = info.image_tags().map(|(t, p)| (t.name.clone(), p.to_owned())).collect();
    let results: Vec<Result<()>> = stream::iter(specs)
        .map(|(tag, pullspec)| async move {
            let reference: relbuild_core::Reference = pullspec.parse()?;
            if reference.digest().is_none() {
                bail!("image `{tag}` is not pinned by digest: `{pullspec}`");
            }
            client
                .pull_manifest_raw(&reference)
                .await
                .map_err(|e| anyhow::Error::new(e).context(format!("verifying image `{tag}`")))?;
            Ok(())
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failures: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    for f in &failures {
        printer::error(&format!("{f:#}"));
    }
    if !failures.is_empty() {
        bail!("{} of the release's images failed verification", failures.len());
    }
    Ok(())
}

/// Fetches every component's manifest (the `platform` child of a list) and
/// config, for `--size`.
async fn sizes(
    client: &relbuild_core::registry::Client,
    info: &info::ReleaseInfo,
    platform: &str,
) -> Result<Vec<info::ImageSize>> {
    use futures_util::stream::{self, StreamExt as _};
    use relbuild_core::image::{ImageConfig, Manifest};
    let specs: Vec<(String, String)> = info.image_tags().map(|(t, p)| (t.name.clone(), p.to_owned())).collect();
    let results: Vec<Result<info::ImageSize>> = stream::iter(specs)
        .map(|(tag, pullspec)| async move {
            let context = || format!("reading image `{tag}` ({pullspec})");
            let reference: relbuild_core::Reference = pullspec.parse().with_context(context)?;
            let mut manifest = client.pull_manifest(&reference).await.with_context(context)?;
            if let Manifest::Index(index) = &manifest {
                let child = index
                    .find_platform(platform)
                    .with_context(|| format!("image `{tag}` is a manifest list without `{platform}`"))?;
                manifest =
                    client.pull_manifest(&reference.with_digest(child.digest.clone())).await.with_context(context)?;
            }
            let Manifest::Image(image) = manifest else {
                bail!("image `{tag}`: nested manifest lists are not supported")
            };
            let config = client.pull_blob_bytes(&reference, &image.config, 16 << 20).await.with_context(context)?;
            let created = ImageConfig::from_slice(&config).ok().and_then(|c| c.created).and_then(|c| c.parse().ok());
            let layers = image.layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
            Ok(info::ImageSize { tag, created, layers })
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}
