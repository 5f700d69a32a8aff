//! The destinations of a built release (spec §1.5): a registry push, the
//! flat files (`--to-dir`), the layer blob (`--to-file`), an OCI layout and
//! the unsigned signature message.
//!
//! Local outputs are written to a temporary name next to the destination
//! and renamed into place, so a reader never sees half a file. The release
//! image itself goes to a registry or an OCI layout through the transfer
//! engine ([`release_image_source`], then [`crate::transfer::copy_image`]),
//! which writes every blob first and the manifest (or list) last.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::Error;
use super::names::PAYLOAD_DIR;
use crate::image::{Descriptor, Digest, ImageIndex, Manifest, MediaType, Platform, RawManifest, Reference};
use crate::layer::LayerInfo;
use crate::registry::Client;
use crate::transfer::{BlobOrigin, ComposedImage, ImageSource};

/// The release-manifests layer as built.
#[derive(Debug)]
pub struct Payload {
    /// Digests and sizes of the layer we wrote.
    pub info: LayerInfo,
    /// The gzipped layer we wrote (a temporary file, deleted on drop).
    pub file: tempfile::TempPath,
    /// For a canonical rebuild: the input release's identical layer (same
    /// diff ID) whose compressed blob is used instead of ours, and the
    /// input release it is read from.
    pub reused: Option<(Arc<ImageSource>, Descriptor)>,
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

/// Which manifests [`release_image_source`] offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFlavour {
    /// The Docker schema 2 manifests (and list) as built: what is pushed.
    Docker,
    /// Their conversion to OCI media types (same blobs): what an OCI layout
    /// holds, as containers/image lists only OCI manifests and indexes there.
    Oci,
}

/// The built release as an image the transfer engine copies, like any
/// other: its manifests in memory, base layers in the base image's
/// repository (so a push into the same registry mounts them), configs in
/// memory, and the payload layer in its file (or, for a canonical rebuild,
/// wherever the input release keeps the identical blob). `location` names
/// it in messages.
///
/// # Panics
///
/// When `images` is empty: there is nothing to copy.
pub fn release_image_source(
    client: &Client,
    location: &str,
    images: &[ReleaseImage],
    list: Option<&RawManifest>,
    payload: &Payload,
    flavour: ManifestFlavour,
) -> Result<ComposedImage, crate::Error> {
    let manifest = |m: &RawManifest| match flavour {
        ManifestFlavour::Docker => Ok(m.clone()),
        ManifestFlavour::Oci => to_oci_manifest(m),
    };
    let children = images.iter().map(|i| manifest(&i.manifest)).collect::<Result<Vec<_>, _>>()?;
    let top = match (list, flavour) {
        (Some(list), ManifestFlavour::Docker) => list.clone(),
        (Some(_), ManifestFlavour::Oci) => {
            let entries = children
                .iter()
                .zip(images)
                .map(|(m, image)| Descriptor { platform: image.platform.clone(), ..m.descriptor() })
                .collect();
            let index = ImageIndex {
                schema_version: 2,
                media_type: Some(MediaType::OciIndex),
                manifests: entries,
                annotations: None,
            };
            RawManifest::from_manifest(&Manifest::Index(index))?
        }
        (None, _) => children.first().expect("because `images` is not empty (see # Panics)").clone(),
    };
    let mut image = ComposedImage::new(location, top);
    if list.is_some() {
        for child in children {
            image = image.with_manifest(child);
        }
    }
    for i in images {
        for layer in &i.base_layers {
            let origin = BlobOrigin::Registry { client: client.clone(), repo: i.base.clone() };
            image = image.with_blob(layer.digest.clone(), origin);
        }
        image = image.with_blob(i.config_descriptor.digest.clone(), BlobOrigin::Memory(i.config.clone()));
    }
    let payload_origin = match &payload.reused {
        Some((source, desc)) => source.blob_origin(desc)?,
        None => BlobOrigin::File(payload.file.to_path_buf()),
    };
    Ok(image.with_blob(payload.blob().0, payload_origin))
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
pub async fn write_file(path: &Path, payload: &Payload, created: jiff::Timestamp) -> Result<(), Error> {
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
        Some((source, desc)) => {
            let mut reader = source
                .blob_reader(desc)
                .await
                .map_err(|e| Error::Push { reference: source.location(), source: Box::new(e.into()) })?;
            let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(out)?);
            // The reader fails at the end on content that does not match.
            tokio::io::copy(&mut reader, &mut file).await.map_err(out)?;
            tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(out)?;
            tmp
        }
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
