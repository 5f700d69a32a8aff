//! The destinations of a built release (spec §1.5): a registry push, the
//! flat files (`--to-dir`), the layer blob (`--to-file`), an OCI layout and
//! the unsigned signature message.
//!
//! Local outputs are written to a temporary name next to the destination
//! and renamed into place, so a reader never sees half a file. A push sends
//! every blob first and the manifest (or list) last.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;

use super::Error;
use super::names::PAYLOAD_DIR;
use crate::image::{Descriptor, Digest, ImageIndex, Manifest, MediaType, Platform, RawManifest, Reference};
use crate::layer::LayerInfo;
use crate::registry::{Client, RegistryBlob};
use crate::store::OciDir;

/// The release-manifests layer as built.
#[derive(Debug)]
pub struct Payload {
    /// Digests and sizes of the layer we wrote.
    pub info: LayerInfo,
    /// The gzipped layer we wrote (a temporary file, deleted on drop).
    pub file: tempfile::TempPath,
    /// For a canonical rebuild: the input release's identical layer (same
    /// diff ID) whose compressed blob is used instead of ours.
    pub reused: Option<(Reference, Descriptor)>,
}

impl Payload {
    /// The digest and size of the blob the release uses.
    pub fn blob(&self) -> (Digest, u64) {
        match &self.reused {
            Some((_, d)) => (d.digest.clone(), d.size),
            None => (self.info.digest.clone(), self.info.size),
        }
    }
}

/// One platform's release image.
#[derive(Debug, Clone)]
pub struct ReleaseImage {
    /// The platform, for a list entry.
    pub platform: Option<Platform>,
    /// The base image (its repository is where base layers come from).
    pub base: Reference,
    /// The base manifest's digest (the `base-image-digest` label).
    pub base_digest: Digest,
    /// The base layers as the base manifest lists them.
    pub base_layers: Vec<Descriptor>,
    /// The release manifest.
    pub manifest: RawManifest,
    /// The release config.
    pub config: Bytes,
    /// Its descriptor.
    pub config_descriptor: Descriptor,
    /// The payload layer's descriptor in this manifest.
    pub payload: Descriptor,
}

/// One destination [`new_release`](super::new_release) wrote, and the
/// digest of what it holds there. The registry and the OCI layout hold
/// different manifests (Docker schema 2 and its OCI-typed conversion), so
/// their digests differ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Written {
    /// `--to-image`: the manifest (or list) at the tag; under `--dry-run`
    /// what would have been pushed.
    Image {
        /// The destination, with its tag.
        reference: Reference,
        /// The manifest's digest.
        digest: Digest,
        /// False under `--dry-run`.
        pushed: bool,
    },
    /// `--to-oci-layout`: the OCI manifest (or index) tagged in the layout.
    OciLayout {
        /// The layout directory.
        path: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: String,
        /// The manifest's digest.
        digest: Digest,
    },
    /// `--to-file`: the gzipped payload layer.
    File {
        /// The file.
        path: PathBuf,
        /// The layer blob's digest.
        digest: Digest,
    },
    /// `--to-dir`: the payload's files.
    Dir {
        /// The directory.
        path: PathBuf,
        /// How many files were written.
        files: usize,
    },
}

impl Written {
    /// The digest of what the destination holds (none for a directory).
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Self::Image { digest, .. } | Self::OciLayout { digest, .. } | Self::File { digest, .. } => Some(digest),
            Self::Dir { .. } => None,
        }
    }

    /// True for the destinations that hold a release image (registry, OCI layout).
    pub fn holds_image(&self) -> bool {
        matches!(self, Self::Image { .. } | Self::OciLayout { .. })
    }

    /// The destination as the other commands take it: a pullspec,
    /// `oci:DIR:TAG`, or a path.
    pub fn location(&self) -> String {
        match self {
            Self::Image { reference, .. } => reference.to_string(),
            Self::OciLayout { path, tag, .. } => format!("oci:{}:{tag}", path.display()),
            Self::File { path, .. } | Self::Dir { path, .. } => path.display().to_string(),
        }
    }
}

/// Pushes a release to `dest` (which carries the tag): base layers mounted
/// from their repository (or copied from another registry), the payload
/// layer and configs uploaded, existing blobs skipped; then the child
/// manifests by digest and finally the manifest or list by tag.
#[tracing::instrument(skip_all, fields(dest = %dest))]
pub async fn push_release(
    client: &Client,
    dest: &Reference,
    images: &[ReleaseImage],
    list: Option<&RawManifest>,
    payload: &Payload,
    concurrency: usize,
) -> Result<(), crate::Error> {
    type BlobFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), crate::Error>> + Send + 'a>>;
    let mut seen = std::collections::BTreeSet::new();
    let mut jobs: Vec<BlobFuture<'_>> = Vec::new();
    for image in images {
        for layer in &image.base_layers {
            if !seen.insert(layer.digest.clone()) {
                continue;
            }
            let source = RegistryBlob { client: client.clone(), repo: image.base.clone(), descriptor: layer.clone() };
            jobs.push(Box::pin(async move {
                client.mount_blob(dest, &image.base, layer, &source).await?;
                Ok(())
            }));
        }
        if seen.insert(image.config_descriptor.digest.clone()) {
            jobs.push(Box::pin(async move {
                client.push_blob(dest, &image.config_descriptor, &image.config).await?;
                Ok(())
            }));
        }
    }
    let (digest, size) = payload.blob();
    if seen.insert(digest.clone()) {
        let desc = images.first().map_or_else(
            || Descriptor::new(crate::image::MediaType::DockerLayerGzip, digest.clone(), size),
            |i| i.payload.clone(),
        );
        jobs.push(Box::pin(async move {
            match &payload.reused {
                Some((repo, _)) => {
                    let source = RegistryBlob { client: client.clone(), repo: repo.clone(), descriptor: desc.clone() };
                    client.mount_blob(dest, repo, &desc, &source).await?;
                }
                None => {
                    let path: PathBuf = payload.file.to_path_buf();
                    client.push_blob(dest, &desc, &path).await?;
                }
            }
            Ok(())
        }));
    }
    let mut results = futures_util::stream::iter(jobs).buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    drop(results);
    if let Some(list) = list {
        for image in images {
            client.push_manifest(&dest.with_digest(image.manifest.digest().clone()), &image.manifest).await?;
        }
        client.push_manifest(dest, list).await?;
    } else if let Some(image) = images.first() {
        client.push_manifest(dest, &image.manifest).await?;
    }
    Ok(())
}

/// `--to-dir`: every regular file directly under `release-manifests/` of
/// the payload layer, written as `dir/<name>` (mode 0644, the entry's
/// mtime). The files are written to a temporary directory first; a new
/// `dir` is renamed into place, an existing one receives each file by rename.
pub fn write_dir(dir: &Path, payload_gz: &Path) -> Result<usize, Error> {
    let files = payload_files(payload_gz)?;
    write_tree(dir, &files)?;
    Ok(files.len())
}

/// Every regular file directly under `release-manifests/` of the gzipped
/// payload layer at `payload_gz`, in tar order.
pub fn payload_files(payload_gz: &Path) -> Result<Vec<TreeFile>, Error> {
    let file =
        std::fs::File::open(payload_gz).map_err(|source| Error::Output { path: payload_gz.to_path_buf(), source })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let bad = |e: io::Error| Error::Output { path: payload_gz.to_path_buf(), source: e };
    let mut files = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some(name) = path.strip_prefix(&format!("{PAYLOAD_DIR}/")).filter(|n| !n.contains('/') && !n.is_empty())
        else {
            continue;
        };
        let mtime = entry.header().mtime().map_err(bad)?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        files.push(TreeFile { name: name.to_owned(), data, mtime: Some(mtime) });
    }
    Ok(files)
}

/// A file for [`write_tree`].
#[derive(Debug, Clone)]
pub struct TreeFile {
    /// The file name (no `/`).
    pub name: String,
    /// The content.
    pub data: Vec<u8>,
    /// The modification time to set, seconds since the epoch.
    pub mtime: Option<u64>,
}

/// Writes flat files (mode 0644) into `dir` so that it appears complete or
/// not at all: everything is written into a temporary directory beside
/// `dir`, which is then renamed into place. When `dir` already exists and is
/// not empty, each finished file is renamed into it instead.
pub fn write_tree(dir: &Path, files: &[TreeFile]) -> Result<(), Error> {
    let out = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Output { path, source }
    };
    let parent = parent_of(dir);
    std::fs::create_dir_all(&parent).map_err(out(&parent))?;
    let tmp = tempfile::Builder::new().prefix(".relbuild-out-").tempdir_in(&parent).map_err(out(&parent))?;
    for f in files {
        if f.name.is_empty() || f.name.contains('/') || f.name == "." || f.name == ".." {
            return Err(Error::Output {
                path: dir.join(&f.name),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a plain file name"),
            });
        }
        let dest = tmp.path().join(&f.name);
        let mut file = std::fs::File::create(&dest).map_err(out(&dest))?;
        file.write_all(&f.data).map_err(out(&dest))?;
        set_mode(&file, 0o644).map_err(out(&dest))?;
        if let Some(mtime) = f.mtime {
            file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime)).map_err(out(&dest))?;
        }
    }
    let empty_existing = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    if empty_existing {
        std::fs::remove_dir(dir).map_err(out(dir))?;
    }
    if !dir.exists() {
        let tmp = tmp.keep();
        std::fs::rename(&tmp, dir).map_err(out(dir))?;
    } else {
        for f in files {
            std::fs::rename(tmp.path().join(&f.name), dir.join(&f.name)).map_err(out(&dir.join(&f.name)))?;
        }
    }
    Ok(())
}

/// `--to-file`: the gzipped layer blob exactly as pushed, mode 0750, mtime
/// the release creation time.
pub async fn write_file(
    client: &Client,
    path: &Path,
    payload: &Payload,
    created: jiff::Timestamp,
) -> Result<(), Error> {
    let out = |source| Error::Output { path: path.to_path_buf(), source };
    let parent = parent_of(path);
    let tmp = tempfile::Builder::new().prefix(".relbuild-to-file-").tempfile_in(&parent).map_err(out)?;
    let tmp = match &payload.reused {
        None => {
            let mut tmp = tmp;
            let mut src = std::fs::File::open(&payload.file).map_err(out)?;
            io::copy(&mut src, tmp.as_file_mut()).map_err(out)?;
            tmp
        }
        Some((repo, desc)) => client
            .pull_blob_to_writer(repo, desc, tmp)
            .await
            .map_err(|e| Error::Push { reference: repo.to_string(), source: Box::new(e.into()) })?,
    };
    set_mode(tmp.as_file(), 0o750).map_err(out)?;
    let secs = u64::try_from(created.as_second()).unwrap_or(0);
    tmp.as_file().set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).map_err(out)?;
    crate::durable::persist(tmp, path).map_err(out)?;
    Ok(())
}

/// `manifest` with OCI media types (manifest, config and layers), as OCI
/// layout readers (containers/image) only list OCI manifests and indexes.
fn to_oci_manifest(manifest: &RawManifest) -> Result<RawManifest, crate::Error> {
    let oci = |t: &MediaType| t.to_oci().unwrap_or_else(|| t.clone());
    let converted = match manifest.parse()? {
        Manifest::Image(mut m) => {
            m.media_type = Some(MediaType::OciManifest);
            m.config.media_type = oci(&m.config.media_type);
            for l in &mut m.layers {
                l.media_type = oci(&l.media_type);
            }
            Manifest::Image(m)
        }
        Manifest::Index(mut i) => {
            i.media_type = Some(MediaType::OciIndex);
            Manifest::Index(i)
        }
    };
    Ok(RawManifest::from_manifest(&converted)?)
}

/// `--to-oci-layout`: the whole release image (base blobs copied from the
/// registry) in an OCI image layout at `dir`, tagged `tag`. The manifests
/// are converted to OCI media types (the blobs are the same), so their
/// digests differ from the pushed Docker schema 2 ones. Returns the
/// descriptor of the tagged manifest (or index).
///
/// # Panics
///
/// When `images` is empty: there is nothing to tag.
pub async fn write_oci_layout(
    client: &Client,
    dir: &Path,
    tag: &str,
    images: &[ReleaseImage],
    list: Option<&RawManifest>,
    payload: &Payload,
) -> Result<Descriptor, Error> {
    let wrap = |e: crate::Error| Error::OciLayout { path: dir.to_path_buf(), source: Box::new(e) };
    let layout = OciDir::create(dir).map_err(|e| wrap(e.into()))?;
    for image in images {
        for layer in &image.base_layers {
            if layout.has_blob(&layer.digest) {
                continue;
            }
            let w = layout.blob_writer().map_err(|e| wrap(e.into()))?;
            let w = client.pull_blob_to_writer(&image.base, layer, w).await.map_err(|e| wrap(e.into()))?;
            w.complete_verified_as(layer).map_err(|e| wrap(e.into()))?;
        }
        layout.write_blob(&image.config).map_err(|e| wrap(e.into()))?;
    }
    if let Some(image) = images.first()
        && !layout.has_blob(&image.payload.digest)
    {
        match &payload.reused {
            None => {
                let f = std::fs::File::open(&payload.file)
                    .map_err(|source| Error::Output { path: payload.file.to_path_buf(), source })?;
                layout.copy_blob_from(io::BufReader::new(f), Some(&image.payload)).map_err(|e| wrap(e.into()))?;
            }
            Some((repo, desc)) => {
                let w = layout.blob_writer().map_err(|e| wrap(e.into()))?;
                let w = client.pull_blob_to_writer(repo, desc, w).await.map_err(|e| wrap(e.into()))?;
                w.complete_verified_as(desc).map_err(|e| wrap(e.into()))?;
            }
        }
    }
    let top = match list {
        Some(_) => {
            let mut entries = Vec::new();
            for image in images {
                let m = to_oci_manifest(&image.manifest).map_err(wrap)?;
                let mut d = layout.write_manifest_blob(&m).map_err(|e| wrap(e.into()))?;
                d.platform.clone_from(&image.platform);
                entries.push(d);
            }
            let index = ImageIndex {
                schema_version: 2,
                media_type: Some(MediaType::OciIndex),
                manifests: entries,
                annotations: None,
            };
            let index = RawManifest::from_manifest(&Manifest::Index(index)).map_err(|e| wrap(e.into()))?;
            layout.write_manifest(&index, Some(tag), None).map_err(|e| wrap(e.into()))?
        }
        None => {
            let image = images.first().expect("because `images` is not empty (see # Panics)");
            let m = to_oci_manifest(&image.manifest).map_err(wrap)?;
            layout.write_manifest(&m, Some(tag), None).map_err(|e| wrap(e.into()))?
        }
    };
    Ok(top)
}

#[derive(Serialize)]
struct Signature<'a> {
    critical: Critical<'a>,
    optional: Optional<'a>,
}

#[derive(Serialize)]
struct Critical<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    image: SignedImage<'a>,
    identity: Identity,
}

#[derive(Serialize)]
struct SignedImage<'a> {
    #[serde(rename = "docker-manifest-digest")]
    digest: &'a str,
}

#[derive(Serialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

#[derive(Serialize)]
struct Optional<'a> {
    creator: &'a str,
    timestamp: i64,
}

/// The unsigned "atomic container signature" message for `digest` pushed
/// to repository `repo` (spec §1.5), as oc writes it (2-space indent).
pub fn signature_message(repo: &Reference, digest: &Digest, creator: &str, timestamp: jiff::Timestamp) -> Vec<u8> {
    let sig = Signature {
        critical: Critical {
            kind: "atomic container signature",
            image: SignedImage { digest: digest.as_str() },
            identity: Identity { reference: format!("{}@{digest}", repo.name()) },
        },
        optional: Optional { creator, timestamp: timestamp.as_second() },
    };
    crate::image::gojson::to_vec_indent(&sig, "  ").expect("a struct of strings and integers always serialises")
}

/// Writes `bytes` to `path` through a temporary file and a durable rename:
/// the content is synced before the rename and the directory after it, so
/// after a crash `path` holds its old content or all of the new.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let out = |source| Error::Output { path: path.to_path_buf(), source };
    let mut tmp = tempfile::Builder::new().prefix(".relbuild-").tempfile_in(parent_of(path)).map_err(out)?;
    tmp.write_all(bytes).map_err(out)?;
    set_mode(tmp.as_file(), 0o644).map_err(out)?;
    crate::durable::persist(tmp, path).map_err(out)?;
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn set_mode(f: &std::fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &std::fs::File, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_like_oc() {
        let repo: Reference = "127.0.0.1:5000/ocp/release:4.99.0".parse().expect("valid");
        let digest: Digest =
            "sha256:098895afb3fe9deef58971a95195b0d94c4190064e004160a1636cd7fb8ba75d".parse().expect("valid");
        let got = signature_message(
            &repo,
            &digest,
            "oc-adm-release-new/6b8e30c5b39aa742147846341a203905e04834f3",
            "2025-01-02T03:04:05Z".parse().expect("time"),
        );
        let want =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/golden/oc-n3/outputs/release.signature"))
                .expect("golden");
        assert_eq!(String::from_utf8_lossy(&got).trim_end(), String::from_utf8_lossy(&want).trim_end());
    }
}
