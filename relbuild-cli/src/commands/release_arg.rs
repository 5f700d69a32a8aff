//! Opening the RELEASE argument of `info`, `extract` and `lint`.

use anyhow::{Context, Result};
use relbuild_core::registry::Client;
use relbuild_core::release::info::ReleaseInfo;
use relbuild_core::release::read::{LoadedRelease, ReadOptions, read_release};
use relbuild_core::transfer::{ImageLocation, ImageSource};

/// Reads the release `spec` names (pullspec, `oci:` or `oci-archive:`).
pub(crate) async fn load(spec: &str, client: &Client, platform: &str) -> Result<(ReleaseInfo, LoadedRelease)> {
    let location: ImageLocation = spec.parse()?;
    let source = ImageSource::open(&location, client).await?;
    let mut options = ReadOptions::default();
    options.platform = platform.to_owned();
    let loaded = read_release(&source, spec, &options).await?;
    let info = ReleaseInfo::read(loaded.data.clone()).with_context(|| format!("reading release `{spec}`"))?;
    Ok((info, loaded))
}
