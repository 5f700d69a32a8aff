//! `relbuild extract`: the payload files, verbatim by default.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use relbuild_core::release::extract::{ExtractOptions, select};
use relbuild_core::release::include::{Capabilities, InclusionFilter};
use relbuild_core::release::output::{TreeFile, write_tree};

use super::release_arg;
use crate::cli::{ExtractArgs, GlobalArgs};
use crate::printer;
use crate::reporter::BarReporter;

fn options(args: &ExtractArgs) -> Result<ExtractOptions> {
    let included = args.included.then(|| InclusionFilter {
        profile: Some(args.profile.clone()),
        feature_set: Some(args.feature_set.clone().unwrap_or_default()),
        capabilities: args.capabilities.as_ref().map(|caps| Capabilities {
            known: caps.iter().cloned().collect(),
            enabled: caps.iter().cloned().collect(),
        }),
        ..InclusionFilter::default()
    });
    let credentials_requests = match (args.credentials_requests, &args.cloud) {
        (false, _) => None,
        (true, None) => Some(None),
        (true, Some(c)) => Some(Some(c.parse()?)),
    };
    let mut o = ExtractOptions::default();
    o.normalize = args.normalize;
    o.included = included;
    o.credentials_requests = credentials_requests;
    Ok(o)
}

pub(crate) async fn run(args: &ExtractArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let release = args.release()?;
    let opts = options(args)?;
    let client = args.registry.client(Arc::new(BarReporter::without_bars()))?;
    let (info, loaded) = release_arg::load(release, &client, &args.filter_by_os).await?;
    let files = &loaded.data.files;
    if let Some(name) = &args.file {
        let Some((_, data)) = files.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            bail!("`{release}` has no file `{name}` in release-manifests/; it has: {}", names.join(", "));
        };
        let mut out = std::io::stdout().lock();
        out.write_all(data)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(to) = &args.to else { bail!("give --to DIR or --file NAME") };
    let selection = select(files, &opts)?;
    for l in &selection.left_out {
        tracing::debug!("left out {}: {}", l.file, l.reason);
    }
    let tree: Vec<TreeFile> =
        selection.files.into_iter().map(|(name, data)| TreeFile { name, data, mtime: None }).collect();
    write_tree(to, &tree)?;
    printer::info(
        global.quiet,
        &format!(
            "Extracted release payload from digest {} created at {}: {} files to {}",
            loaded.manifest.digest(),
            info.created().map(|t| t.to_string()).unwrap_or_default(),
            tree.len(),
            to.display()
        ),
    );
    Ok(ExitCode::SUCCESS)
}
