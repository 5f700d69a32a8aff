//! [`ImageSource`]: reading an image from a registry, a layout or an archive
//! the same way.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Error, ImageLocation, Result, TreeVersion, blocking};
use crate::digest::VerifyError;
use crate::image::{Descriptor, Digest, ImageIndex, Reference};
use crate::image::{Manifest, RawManifest};
use crate::registry::{BlobReader, Client};
use crate::store::{self, DistTree, OciArchive, OciDir};

/// An image to read: in a registry, an OCI layout directory or an
/// unpacked oci-archive.
///
/// Everything read is verified against the digest it was asked by:
/// registries stream verified (see [`Client::pull_blob`]), layout files are
/// hashed as they are read ([`VerifyingReader`]).
///
/// Layers are read as an `AsyncRead` ([`ImageSource::blob_reader`]); to
/// untar or decompress them, wrap the reader in
/// `tokio_util::io::SyncIoBridge` inside `spawn_blocking`.
#[non_exhaustive]
pub enum ImageSource {
    /// A registry image; `reference` names the top manifest by tag or digest.
    Registry {
        /// The client to pull with.
        client: Client,
        /// The image.
        reference: Reference,
    },
    /// An OCI image layout directory.
    Layout {
        /// The layout.
        dir: OciDir,
        /// The `index.json` tag; `None` when the layout holds exactly one image.
        tag: Option<String>,
    },
    /// An oci-archive, unpacked into a temporary layout that lives as long
    /// as this value.
    Archive {
        /// The unpacked archive.
        archive: OciArchive,
        /// The archive file, for messages.
        path: std::path::PathBuf,
        /// The tag; `None` when the archive holds exactly one image.
        tag: Option<String>,
    },
    /// A repository of a distribution storage tree.
    Tree {
        /// The tree.
        tree: DistTree,
        /// The repository.
        repo: String,
        /// The tag or digest; `None` is `latest`.
        version: Option<TreeVersion>,
    },
}

impl fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ImageSource").field(&self.location()).finish()
    }
}

impl ImageSource {
    /// Opens `location`: a registry needs no I/O yet, a layout is checked,
    /// an archive is unpacked (on a blocking thread) into a temporary
    /// directory.
    pub async fn open(location: &ImageLocation, client: &Client) -> Result<Self> {
        Ok(match location {
            ImageLocation::Registry(reference) => {
                Self::Registry { client: client.clone(), reference: reference.clone() }
            }
            ImageLocation::Layout { path, tag } => Self::Layout { dir: OciDir::open(path)?, tag: tag.clone() },
            ImageLocation::Archive { path, tag } => {
                let p = path.clone();
                let archive = blocking("unpacking an oci-archive", move || store::read_archive(p)).await??;
                Self::Archive { archive, path: path.clone(), tag: tag.clone() }
            }
            ImageLocation::Tree { path, repo, version } => {
                Self::Tree { tree: DistTree::open(path)?, repo: repo.clone(), version: version.clone() }
            }
        })
    }

    /// Where the image is, in [`ImageLocation`] syntax, for messages.
    pub fn location(&self) -> String {
        match self {
            Self::Registry { reference, .. } => format!("docker://{reference}"),
            Self::Layout { dir, tag } => {
                ImageLocation::Layout { path: dir.path().to_path_buf(), tag: tag.clone() }.to_string()
            }
            Self::Archive { path, tag, .. } => {
                ImageLocation::Archive { path: path.clone(), tag: tag.clone() }.to_string()
            }
            Self::Tree { tree, repo, version } => {
                ImageLocation::Tree { path: tree.path().to_path_buf(), repo: repo.clone(), version: version.clone() }
                    .to_string()
            }
        }
    }

    /// The layout behind a layout or archive source.
    fn layout(&self) -> Option<(&OciDir, Option<&str>)> {
        match self {
            Self::Registry { .. } | Self::Tree { .. } => None,
            Self::Layout { dir, tag } => Some((dir, tag.as_deref())),
            Self::Archive { archive, tag, .. } => Some((archive.dir(), tag.as_deref())),
        }
    }

    /// The top manifest, exactly as stored: an image manifest or an index.
    pub async fn manifest(&self) -> Result<RawManifest> {
        match self {
            Self::Registry { client, reference } => Ok(client.pull_manifest_raw(reference).await?),
            Self::Layout { dir, tag } => self.layout_top(dir, tag.as_deref()),
            Self::Archive { archive, tag, .. } => self.layout_top(archive.dir(), tag.as_deref()),
            Self::Tree { tree, repo, version } => {
                let digest = match version {
                    Some(TreeVersion::Digest(d)) => d.clone(),
                    Some(TreeVersion::Tag(t)) => tree.resolve(repo, t)?,
                    None => tree.resolve(repo, "latest")?,
                };
                Ok(tree.read_manifest(repo, &digest)?)
            }
        }
    }

    fn layout_top(&self, dir: &OciDir, tag: Option<&str>) -> Result<RawManifest> {
        if let Some(tag) = tag {
            return Ok(dir.resolve(tag)?);
        }
        // Without a tag, like skopeo: the layout's only image.
        let index = dir.index()?;
        match index.manifests.as_slice() {
            [only] => Ok(dir.read_manifest_as(only)?),
            all => Err(Error::AmbiguousLayout {
                location: self.location(),
                count: all.len(),
                tags: all
                    .iter()
                    .filter_map(|d| d.annotations.as_ref()?.get(store::REF_NAME_ANNOTATION).cloned())
                    .collect(),
            }),
        }
    }

    /// The manifest with `digest` in the same repository or layout, verified.
    pub async fn manifest_by_digest(&self, digest: &Digest) -> Result<RawManifest> {
        match self {
            Self::Registry { client, reference } => {
                Ok(client.pull_manifest_raw(&reference.with_digest(digest.clone())).await?)
            }
            Self::Tree { tree, repo, .. } => Ok(tree.read_manifest(repo, digest)?),
            _ => {
                let (dir, _) = self.layout().expect("not a registry source, so a layout");
                Ok(dir.read_manifest(digest)?)
            }
        }
    }

    /// The manifest `descriptor` points at, verified against its digest (and,
    /// for layouts, its size), with the descriptor's media type.
    pub async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        match self {
            Self::Registry { client, reference } => {
                Ok(client.pull_manifest_raw(&reference.with_digest(descriptor.digest.clone())).await?)
            }
            Self::Tree { tree, repo, .. } => {
                let m = tree.read_manifest(repo, &descriptor.digest)?;
                crate::digest::verify(&descriptor.digest, Some(descriptor.size), m.digest(), m.bytes().len() as u64)
                    .map_err(store::Error::from)?;
                Ok(m)
            }
            _ => {
                let (dir, _) = self.layout().expect("not a registry source, so a layout");
                Ok(dir.read_manifest_as(descriptor)?)
            }
        }
    }

    /// The parsed index, when `raw` is one.
    pub(super) fn parse_index(&self, raw: &RawManifest) -> Result<Option<ImageIndex>> {
        if !raw.media_type().is_index() {
            return Ok(None);
        }
        match raw.parse() {
            Ok(Manifest::Index(i)) => Ok(Some(i)),
            // An index media type always parses as an index.
            Ok(Manifest::Image(_)) => Ok(None),
            Err(source) => Err(Error::InvalidManifest { location: self.location(), source }),
        }
    }

    /// A small blob (a config) in memory, verified; refuses blobs over `limit` bytes.
    pub async fn blob_bytes(&self, descriptor: &Descriptor, limit: u64) -> Result<Bytes> {
        match self {
            Self::Registry { client, reference } => Ok(client.pull_blob_bytes(reference, descriptor, limit).await?),
            _ => {
                if let Self::Tree { tree, repo, .. } = self {
                    if descriptor.size > limit {
                        return Err(self.too_large(descriptor, limit));
                    }
                    let mut bytes = Vec::new();
                    let path = tree.blob_path(&descriptor.digest)?;
                    let file = tree.open_blob(repo, &descriptor.digest)?;
                    // One byte over the size is enough to tell it is wrong.
                    io::Read::read_to_end(&mut io::Read::take(file, descriptor.size + 1), &mut bytes)
                        .map_err(|source| Error::Io { path, source })?;
                    crate::digest::verify(
                        &descriptor.digest,
                        Some(descriptor.size),
                        &Digest::sha256(&bytes),
                        bytes.len() as u64,
                    )
                    .map_err(store::Error::from)?;
                    return Ok(bytes.into());
                }
                if descriptor.size > limit {
                    return Err(self.too_large(descriptor, limit));
                }
                let (dir, _) = self.layout().expect("not a registry source, so a layout");
                Ok(dir.read_blob_verified(&descriptor.digest, Some(descriptor.size))?.into())
            }
        }
    }

    /// A layer (or any blob) as a stream, verified: content that does not
    /// match the descriptor's digest and size ends in an `io::Error` (from a
    /// registry before the last chunk, from a layout at the end instead of
    /// a clean end of file), so read to the end before trusting it.
    pub async fn blob_reader(&self, descriptor: &Descriptor) -> Result<BlobReader> {
        match self {
            Self::Registry { client, reference } => Ok(Box::new(client.pull_blob_reader(reference, descriptor))),
            Self::Tree { tree, repo, .. } => {
                let file = tokio::fs::File::from_std(tree.open_blob(repo, &descriptor.digest)?);
                Ok(Box::new(VerifyingReader::new(file, descriptor)))
            }
            _ => {
                let (dir, _) = self.layout().expect("not a registry source, so a layout");
                let path = dir.blob_path(&descriptor.digest)?;
                let file = tokio::fs::File::open(&path).await.map_err(|source| {
                    if source.kind() == io::ErrorKind::NotFound {
                        Error::Store(store::Error::BlobNotFound { digest: descriptor.digest.clone(), path })
                    } else {
                        Error::Io { path, source }
                    }
                })?;
                Ok(Box::new(VerifyingReader::new(file, descriptor)))
            }
        }
    }

    fn too_large(&self, descriptor: &Descriptor, limit: u64) -> Error {
        Error::BlobTooLarge {
            location: self.location(),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            limit,
        }
    }

    /// The file holding blob `digest`, for layout, archive and tree sources.
    pub(super) fn blob_path(&self, digest: &Digest) -> Option<Result<std::path::PathBuf>> {
        if let Self::Tree { tree, repo, .. } = self {
            // Only what the repository links is served from it.
            return Some(tree.open_blob(repo, digest).and_then(|_| tree.blob_path(digest)).map_err(Error::from));
        }
        self.layout().map(|(dir, _)| dir.blob_path(digest).map_err(Error::from))
    }
}

/// An `AsyncRead` that hashes what passes and fails at the end when the
/// content does not match the descriptor's digest and size (or as soon as it
/// runs over the size), so a reader never sees a clean end of bad content.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    size: u64,
    hasher: Sha256,
    read: u64,
}

impl<R> fmt::Debug for VerifyingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingReader").field("expected", &self.expected).field("read", &self.read).finish()
    }
}

impl<R: AsyncRead + Unpin> VerifyingReader<R> {
    /// Wraps `inner`, which should yield the content `descriptor` names.
    pub fn new(inner: R, descriptor: &Descriptor) -> Self {
        Self { inner, expected: descriptor.digest.clone(), size: descriptor.size, hasher: Sha256::new(), read: 0 }
    }

    fn check(&self, found: Option<&Digest>) -> io::Result<()> {
        let found_size = self.read;
        let r = match found {
            Some(found) => crate::digest::verify(&self.expected, Some(self.size), found, found_size),
            // Over the size already: no need to hash further.
            None => {
                Err(VerifyError::SizeMismatch { digest: self.expected.clone(), expected: self.size, found: found_size })
            }
        };
        r.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyingReader<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let new = &buf.filled()[before..];
        if new.is_empty() {
            let found = Digest::from_sha256_bytes(&this.hasher.clone().finalize().into());
            return Poll::Ready(this.check(Some(&found)));
        }
        this.hasher.update(new);
        this.read += new.len() as u64;
        if this.read > this.size {
            // An error must come with no bytes.
            buf.set_filled(before);
            return Poll::Ready(this.check(None));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;
    use crate::image::MediaType;

    async fn read(data: &'static [u8], desc: &Descriptor) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        VerifyingReader::new(data, desc).read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn verifying_reader() {
        let data: &'static [u8] = b"layer content";
        let good = Descriptor::new(MediaType::OciLayer, Digest::sha256(data), data.len() as u64);
        assert_eq!(read(data, &good).await.expect("verifies"), data);
        let short = Descriptor { size: 4, ..good.clone() };
        assert_eq!(read(data, &short).await.expect_err("too long").kind(), io::ErrorKind::InvalidData);
        let wrong = Descriptor { digest: Digest::sha256(b"x"), ..good };
        let e = read(data, &wrong).await.expect_err("wrong digest");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("digest"), "{e}");
    }
}
