//! [`ImageDestination`]: writing an image to any [`Destination`] the same way.

use std::fmt;
use std::fs::File;

use super::archive::ArchiveTarget;
use super::layout::LayoutTarget;
use super::registry::RegistryTarget;
use super::tree::TreeTarget;
use super::{BlobAction, BlobOrigin, Error, ImageLocation, ImageSource, Result, blocking};
use crate::image::{Descriptor, RawManifest};
use crate::progress::Reporter;
use crate::registry::Client;
use crate::store::{self, BlobWriter};

/// One kind of location to write images to: a registry, an OCI layout, an
/// oci-archive or a distribution tree. A copy calls it in a fixed order:
/// [`put_blob`](Self::put_blob) for every blob (concurrently, each blob of
/// one [`blob_store`](Self::blob_store) once per run), then
/// [`link_blobs`](Self::link_blobs) with the image's blobs, then
/// [`put_manifest`](Self::put_manifest) for an index's children, and
/// [`publish`](Self::publish) with the top manifest last, which makes the
/// image visible under its tag. Nothing is published unless everything
/// before it succeeded.
#[async_trait::async_trait]
pub trait Destination: Send + Sync {
    /// Where it is, in [`ImageLocation`] syntax, for messages.
    fn location(&self) -> String;

    /// The store blobs land in: blobs copied into the same store by
    /// several images of one run are copied once.
    fn blob_store(&self) -> String;

    /// How many blobs may be copied into it at once from `src`, when the
    /// caller asks for `wanted`.
    fn max_concurrent(&self, _src: &ImageSource, wanted: usize) -> usize {
        wanted
    }

    /// Makes blob `descriptor` of `src` present, verified: skipped when it is
    /// there, mounted where the store can, else streamed.
    async fn put_blob(&self, src: &ImageSource, descriptor: &Descriptor, reporter: &dyn Reporter)
    -> Result<BlobAction>;

    /// Called once per image when all its blobs are in place (another
    /// image of the run may have copied them).
    async fn link_blobs(&self, _blobs: &[Descriptor]) -> Result<()> {
        Ok(())
    }

    /// Writes a manifest that the top one names (an index's child), by digest.
    async fn put_manifest(&self, manifest: &RawManifest) -> Result<()>;

    /// Writes the top manifest and makes it visible under the destination's tag.
    async fn publish(&self, top: &RawManifest) -> Result<()>;
}

/// Where a copy writes: any [`Destination`], opened from an
/// [`ImageLocation`] or given ([`ImageDestination::new`]).
///
/// - A registry repository: the top manifest goes to the reference's tag
///   (`latest` when it has neither tag nor digest) or, with a digest only,
///   by digest (which must then be the top manifest's).
/// - An OCI image layout directory (created if needed; other images in it
///   are kept), the top manifest tagged when a tag is given.
/// - An oci-archive file, written whole (replacing any file there) from a
///   temporary layout beside it once everything is copied.
/// - A repository of a distribution storage tree (created if needed): blob
///   data and `_layers` links first, then manifests and their revision
///   links, the tag last.
pub struct ImageDestination {
    inner: Box<dyn Destination>,
}

impl fmt::Debug for ImageDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ImageDestination").field(&self.location()).finish()
    }
}

impl ImageDestination {
    /// The destination for `location`; creates a layout or tree directory
    /// if needed.
    pub fn open(location: &ImageLocation, client: &Client) -> Result<Self> {
        Ok(match location {
            ImageLocation::Registry(reference) => Self::new(RegistryTarget::new(client.clone(), reference.clone())),
            ImageLocation::Layout { path, tag } => Self::new(LayoutTarget::create(path, tag.clone())?),
            ImageLocation::Archive { path, tag } => Self::new(ArchiveTarget::create(path, tag.clone())?),
            ImageLocation::Tree { path, repo, version } => {
                Self::new(TreeTarget::create(path, repo.clone(), version.clone())?)
            }
        })
    }

    /// Writes to `destination`.
    pub fn new(destination: impl Destination + 'static) -> Self {
        Self { inner: Box::new(destination) }
    }

    /// Where it is, in [`ImageLocation`] syntax, for messages.
    pub fn location(&self) -> String {
        self.inner.location()
    }

    pub(super) fn inner(&self) -> &dyn Destination {
        self.inner.as_ref()
    }
}

/// Where a local store ([`receive_local`]) writes blobs: a fresh
/// temporary file, or one that continues an interrupted copy's partial file.
pub(super) trait LocalStore: Sync {
    /// A writer for a new blob.
    fn blob_writer(&self) -> store::Result<BlobWriter>;
    /// A writer for blob `expected` that resumes its partial file.
    fn resumable_writer(&self, expected: &Descriptor) -> store::Result<BlobWriter>;
}

impl LocalStore for store::DistTree {
    fn blob_writer(&self) -> store::Result<BlobWriter> {
        store::DistTree::blob_writer(self)
    }
    fn resumable_writer(&self, expected: &Descriptor) -> store::Result<BlobWriter> {
        store::DistTree::resumable_writer(self, expected)
    }
}

impl LocalStore for store::OciDir {
    fn blob_writer(&self) -> store::Result<BlobWriter> {
        store::OciDir::blob_writer(self)
    }
    fn resumable_writer(&self, expected: &Descriptor) -> store::Result<BlobWriter> {
        store::OciDir::resumable_writer(self, expected)
    }
}

/// Stores blob `desc` from `origin` into `store` (a layout or a tree),
/// verified before it gets its name; the local stores' one way of receiving
/// a blob. From a registry the blob is fetched into a partial file that an
/// interrupted run leaves behind and the next run continues with a `Range`
/// request; a partial file whose content does not verify is deleted and
/// the blob fetched whole once more.
pub(super) async fn receive_local(store: &dyn LocalStore, origin: BlobOrigin, desc: &Descriptor) -> Result<()> {
    let desc = desc.clone();
    match origin {
        BlobOrigin::Registry { client, repo } => {
            let mut fresh = false;
            loop {
                let writer = if fresh { store.blob_writer()? } else { store.resumable_writer(&desc)? };
                let (offset, partial) = (writer.len(), writer.temp_path().to_path_buf());
                let fetched = if offset == desc.size {
                    // Complete, but killed before it was renamed.
                    Ok(writer)
                } else {
                    let prefix = writer.prefix_hasher();
                    client.pull_blob_to_writer_from(&repo, &desc, writer, offset, prefix).await
                };
                let result = match fetched {
                    Ok(writer) => {
                        let d = desc.clone();
                        blocking("storing a blob", move || writer.complete_verified_as(&d)).await?.map_err(Error::from)
                    }
                    Err(e) => Err(e.into()),
                };
                match result {
                    // Resumed content that does not verify: the kept part was bad.
                    Err(e) if offset > 0 && !fresh && is_mismatch(&e) => {
                        discard(&partial);
                        fresh = true;
                        tracing::debug!(digest = %desc.digest, error = %e, "a resumed blob did not verify; fetching it whole");
                    }
                    Err(e) => {
                        if is_mismatch(&e) {
                            discard(&partial);
                        }
                        return Err(e);
                    }
                    Ok(_) => return Ok(()),
                }
            }
        }
        BlobOrigin::File(path) => {
            let writer = store.blob_writer()?;
            blocking("copying a blob", move || {
                let mut file = File::open(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
                writer.copy_from(&mut file, Some(&desc))?;
                Ok::<_, Error>(())
            })
            .await??;
        }
        BlobOrigin::Memory(bytes) => {
            let writer = store.blob_writer()?;
            blocking("storing a blob", move || writer.copy_from(&mut bytes.as_ref(), Some(&desc))).await??;
        }
    }
    Ok(())
}

/// True when `e` says content did not match its digest or size.
fn is_mismatch(e: &Error) -> bool {
    match e {
        Error::Registry(r) => r.is_digest_mismatch(),
        Error::Store(store::Error::Verify(_)) => true,
        _ => false,
    }
}

/// Deletes a partial file whose content did not verify, so that no run
/// resumes it (already gone when it was a plain temporary file).
fn discard(partial: &std::path::Path) {
    let _ignored = std::fs::remove_file(partial);
}
