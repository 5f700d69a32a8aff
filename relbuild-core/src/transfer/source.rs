//! [`ImageSource`]: reading an image from any [`Source`] the same way.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use std::path::PathBuf;

use super::archive::ArchiveImage;
use super::layout::LayoutImage;
use super::registry::RegistryImage;
use super::tree::TreeImage;
use super::{Error, ImageLocation, Result, blocking};
use crate::digest::VerifyError;
use crate::image::{Descriptor, Digest, ImageIndex, Reference};
use crate::image::{Manifest, RawManifest};
use crate::registry::{BlobReader, Client};
use crate::store;

/// Where a blob's bytes can be had, as a [`Source`] tells it. The bytes
/// are not verified yet: [`ImageSource::blob_reader`] and
/// [`ImageSource::blob_bytes`] check them, and a destination checks them as
/// it receives them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BlobOrigin {
    /// In a registry repository: streamed from it, or mounted from it
    /// within the same registry.
    Registry {
        /// The client to pull with.
        client: Client,
        /// The repository holding it.
        repo: Reference,
    },
    /// A local file whose whole content is the blob.
    File(PathBuf),
    /// In memory.
    Memory(Bytes),
}

/// One kind of location to read images from: a registry, an OCI layout,
/// an oci-archive, a distribution tree, or an image assembled in memory
/// ([`ComposedImage`](super::ComposedImage)). A new kind of location is one
/// new type implementing this; everything else (verification, streaming,
/// copying) is shared through [`ImageSource`].
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Where the image is, in [`ImageLocation`] syntax, for messages.
    fn location(&self) -> String;

    /// The top manifest, exactly as stored: an image manifest or an index.
    async fn manifest(&self) -> Result<RawManifest>;

    /// The manifest `descriptor` points at (an index entry), verified
    /// against its digest.
    async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest>;

    /// Where blob `descriptor` is. Local sources check that it is there
    /// (and, for a tree, linked into the repository).
    fn blob_origin(&self, descriptor: &Descriptor) -> Result<BlobOrigin>;

    /// The registries (API hosts) blobs may come from, so that a copy into
    /// one of them can mount instead of upload.
    fn registry_hosts(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An image to read, from any [`Source`]: opened from an [`ImageLocation`]
/// (a registry, an OCI layout directory, an oci-archive or a distribution
/// tree), or wrapping a source of the caller's ([`ImageSource::new`]).
///
/// Everything read is verified against the digest it was asked by:
/// registries stream verified (see [`Client::pull_blob`]), local files are
/// hashed as they are read ([`VerifyingReader`]).
///
/// Layers are read as an `AsyncRead` ([`ImageSource::blob_reader`]); to
/// untar or decompress them, wrap the reader in
/// `tokio_util::io::SyncIoBridge` inside `spawn_blocking`.
pub struct ImageSource {
    inner: Box<dyn Source>,
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
            ImageLocation::Registry(reference) => Self::registry(client.clone(), reference.clone()),
            ImageLocation::Layout { path, tag } => Self::new(LayoutImage::open(path, tag.clone())?),
            ImageLocation::Archive { path, tag } => Self::new(ArchiveImage::open(path, tag.clone()).await?),
            ImageLocation::Tree { path, repo, version } => {
                Self::new(TreeImage::open(path, repo.clone(), version.clone())?)
            }
        })
    }

    /// The image `reference` names in a registry (no I/O yet).
    pub fn registry(client: Client, reference: Reference) -> Self {
        Self::new(RegistryImage::new(client, reference))
    }

    /// Reads from `source`.
    pub fn new(source: impl Source + 'static) -> Self {
        Self { inner: Box::new(source) }
    }

    /// Where the image is, in [`ImageLocation`] syntax, for messages.
    pub fn location(&self) -> String {
        self.inner.location()
    }

    /// The top manifest, exactly as stored: an image manifest or an index.
    pub async fn manifest(&self) -> Result<RawManifest> {
        self.inner.manifest().await
    }

    /// The manifest `descriptor` points at, verified against its digest,
    /// with the descriptor's media type.
    pub async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        self.inner.manifest_for(descriptor).await
    }

    /// Where blob `descriptor` is.
    pub fn blob_origin(&self, descriptor: &Descriptor) -> Result<BlobOrigin> {
        self.inner.blob_origin(descriptor)
    }

    /// The registries blobs may come from.
    pub fn registry_hosts(&self) -> Vec<String> {
        self.inner.registry_hosts()
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
        let origin = self.blob_origin(descriptor)?;
        if let BlobOrigin::Registry { client, repo } = &origin {
            return Ok(client.pull_blob_bytes(repo, descriptor, limit).await?);
        }
        if descriptor.size > limit {
            return Err(Error::BlobTooLarge {
                location: self.location(),
                digest: descriptor.digest.clone(),
                size: descriptor.size,
                limit,
            });
        }
        let bytes = match origin {
            BlobOrigin::Memory(b) => b,
            BlobOrigin::File(path) => {
                let size = descriptor.size;
                blocking("reading a blob", move || {
                    let mut bytes = Vec::new();
                    let file = std::fs::File::open(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                    // One byte over the size is enough to tell it is wrong.
                    io::Read::read_to_end(&mut io::Read::take(file, size + 1), &mut bytes)
                        .map_err(|source| Error::Io { path, source })?;
                    Ok::<_, Error>(Bytes::from(bytes))
                })
                .await??
            }
            BlobOrigin::Registry { .. } => unreachable!("handled above"),
        };
        crate::digest::verify(&descriptor.digest, Some(descriptor.size), &Digest::sha256(&bytes), bytes.len() as u64)
            .map_err(store::Error::from)?;
        Ok(bytes)
    }

    /// A layer (or any blob) as a stream, verified: content that does not
    /// match the descriptor's digest and size ends in an `io::Error` (from a
    /// registry before the last chunk, from a file at the end instead of
    /// a clean end of file), so read to the end before trusting it.
    pub async fn blob_reader(&self, descriptor: &Descriptor) -> Result<BlobReader> {
        Ok(match self.blob_origin(descriptor)? {
            BlobOrigin::Registry { client, repo } => Box::new(client.pull_blob_reader(&repo, descriptor)),
            BlobOrigin::File(path) => {
                let file = tokio::fs::File::open(&path).await.map_err(|source| {
                    if source.kind() == io::ErrorKind::NotFound {
                        Error::Store(store::Error::BlobNotFound {
                            digest: descriptor.digest.clone(),
                            path: path.clone(),
                        })
                    } else {
                        Error::Io { path: path.clone(), source }
                    }
                })?;
                Box::new(VerifyingReader::new(file, descriptor))
            }
            BlobOrigin::Memory(bytes) => Box::new(VerifyingReader::new(io::Cursor::new(bytes), descriptor)),
        })
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
