//! The golden vector `golden/oc-n3` (see its README) served from a real
//! registry: every input image and the release oc built from them, at the
//! repositories and tags oc used.
//!
//! The vector's outputs name `127.0.0.1:5000/...`, so byte-exact tests
//! load it into a registry started with
//! [`TestRegistry::start_on_port(5000)`](crate::registry::TestRegistry::start_on_port).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use relbuild_core::image::{Descriptor, Digest, Manifest, RawManifest, Reference};
use relbuild_core::registry::Client;
use serde::Deserialize;

/// The address every pullspec of the vector names.
pub const GOLDEN_HOST: &str = "127.0.0.1:5000";

/// Case 1's release (`outputs/`), as oc pushed it.
pub const RELEASE_DIGEST: &str = "sha256:098895afb3fe9deef58971a95195b0d94c4190064e004160a1636cd7fb8ba75d";

/// Where case 1's release is pushed by [`load`].
pub const RELEASE_TAG: &str = "127.0.0.1:5000/ocp/release:4.99.0";

/// Case 2's release (`outputs-replace/`: case 1 with `foo-operator`
/// replaced), as oc pushed it.
pub const REPLACE_RELEASE_DIGEST: &str = "sha256:8bb5989d7112bef760342cf0039758794f6744da67eccfb76d42a64fe7edc015";

/// Where case 2's release is pushed by [`load`].
pub const REPLACE_RELEASE_TAG: &str = "127.0.0.1:5000/ocp/release:4.99.1";

/// The override image of case 2 (`foo-operator-alt`).
pub const OVERRIDE: &str =
    "127.0.0.1:5000/ocp/foo-operator@sha256:53a64dea3d0b615a6c86143e211251b5112498c3f8a33b84b8fc742d9d9aaaf4";

/// `testdata/golden/oc-n3`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/oc-n3")
}

/// Reads a file of the vector (`rel` is relative to [`dir`]).
pub fn read(rel: &str) -> Result<Vec<u8>> {
    let path = dir().join(rel);
    std::fs::read(&path).with_context(|| format!("reading golden file `{}`", path.display()))
}

/// One entry of `inputs/images.json` (the fields the loader needs).
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenImage {
    /// The fixture name (`foo-operator-alt` for the override).
    pub name: String,
    /// Its tag in the release.
    pub release_tag: String,
    /// `127.0.0.1:5000/ocp/<repo>@sha256:…`.
    pub pullspec: String,
    /// `<repo>:<tag> and <repo>:<tag>`: the other names it had.
    pub also_tagged_as: String,
    /// The manifest digest.
    pub manifest_digest: String,
}

/// `inputs/images.json`.
pub fn images() -> Result<Vec<GoldenImage>> {
    serde_json::from_slice(&read("inputs/images.json")?).context("parsing inputs/images.json")
}

fn blob(digest: &Digest) -> Result<Bytes> {
    let hex = digest.as_str().strip_prefix("sha256:").context("a sha256 digest")?;
    let bytes = Bytes::from(read(&format!("inputs/blobs/sha256/{hex}"))?);
    if &Digest::sha256(&bytes) != digest {
        bail!("golden blob {digest} does not match its digest");
    }
    Ok(bytes)
}

/// Pushes `blobs` (descriptor, bytes) and then `manifest` to each of `targets`.
async fn push(
    client: &Client,
    manifest: &RawManifest,
    blobs: &[(Descriptor, Bytes)],
    targets: &[Reference],
) -> Result<()> {
    for target in targets {
        for (desc, bytes) in blobs {
            client
                .push_blob(target, desc, bytes)
                .await
                .with_context(|| format!("pushing {} to {target}", desc.digest))?;
        }
        client.push_manifest(target, manifest).await.with_context(|| format!("pushing {target}"))?;
    }
    Ok(())
}

/// The manifest and every blob of one input image, from `inputs/blobs`.
fn input_image(digest: &Digest) -> Result<(RawManifest, Vec<(Descriptor, Bytes)>)> {
    let manifest = RawManifest::new(blob(digest)?, None)?;
    let Manifest::Image(m) = manifest.parse()? else { bail!("golden image {digest} is not an image manifest") };
    let mut blobs = vec![(m.config.clone(), blob(&m.config.digest)?)];
    for l in &m.layers {
        blobs.push((l.clone(), blob(&l.digest)?));
    }
    Ok((manifest, blobs))
}

/// Loads the vector into the registry at [`GOLDEN_HOST`]: every input image
/// by digest and under each name in `also_tagged_as` (so also
/// `ocp/stream:<tag>`), then oc's case-1 release (`outputs/manifest.json`,
/// `config.json`, `release-layer.tar.gz` on the CVO's layers) as
/// [`RELEASE_TAG`] and oc's case-2 release likewise as
/// [`REPLACE_RELEASE_TAG`]. Returns the case-1 release digest.
pub async fn load(client: &Client) -> Result<Digest> {
    for image in images()? {
        let digest: Digest = image.manifest_digest.parse()?;
        let (manifest, blobs) = input_image(&digest)?;
        let mut targets: Vec<Reference> = vec![image.pullspec.parse()?];
        for name in image.also_tagged_as.split(" and ") {
            targets.push(name.trim().parse().with_context(|| format!("`{name}` of {}", image.name))?);
        }
        push(client, &manifest, &blobs, &targets).await?;
    }
    push_release(client, "outputs-replace", REPLACE_RELEASE_TAG, REPLACE_RELEASE_DIGEST).await?;
    push_release(client, "outputs", RELEASE_TAG, RELEASE_DIGEST).await
}

/// Pushes the release oc wrote to `out` (its manifest, config and payload
/// layer, on the CVO's layers) as `tag`, checking its digest.
async fn push_release(client: &Client, out: &str, tag: &str, digest: &str) -> Result<Digest> {
    let manifest = RawManifest::new(read(&format!("{out}/manifest.json"))?, None)?;
    let Manifest::Image(m) = manifest.parse()? else { bail!("{out}/manifest.json is not an image manifest") };
    let config = Bytes::from(read(&format!("{out}/config.json"))?);
    let payload = Bytes::from(read(&format!("{out}/release-layer.tar.gz"))?);
    let mut blobs = vec![(m.config.clone(), config)];
    let (top, base) = m.layers.split_last().context("the release has layers")?;
    for l in base {
        blobs.push((l.clone(), blob(&l.digest)?));
    }
    blobs.push((top.clone(), payload));
    for (d, b) in &blobs {
        if Digest::sha256(b) != d.digest {
            bail!("golden release blob {} does not match its digest", d.digest);
        }
    }
    push(client, &manifest, &blobs, &[tag.parse()?]).await?;
    if manifest.digest().as_str() != digest {
        bail!("{out}/manifest.json has digest {}, expected {digest}", manifest.digest());
    }
    Ok(manifest.digest().clone())
}
