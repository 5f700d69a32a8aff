//! An OCI image layout directory as a [`Source`] and a [`Destination`].

use std::path::Path;
use std::sync::Arc;

use super::destination::receive_local;
use super::{BlobAction, BlobOrigin, Destination, Error, ImageLocation, ImageSource, Result, Source};
use crate::image::{Descriptor, RawManifest};
use crate::progress::{BlobKind, Reporter};
use crate::store::{self, OciDir};

/// An image in an OCI layout: the one tagged `tag`, or the layout's only image.
pub(super) struct LayoutImage {
    dir: OciDir,
    tag: Option<String>,
}

impl LayoutImage {
    pub(super) fn open(path: &Path, tag: Option<String>) -> Result<Self> {
        Ok(Self { dir: OciDir::open(path)?, tag })
    }
}

/// The location of image `tag` of the layout at `dir`.
fn layout_location(dir: &OciDir, tag: Option<&str>) -> String {
    ImageLocation::Layout { path: dir.path().to_path_buf(), tag: tag.map(str::to_owned) }.to_string()
}

/// The image tagged `tag` in `dir`, or without a tag, like skopeo, the
/// layout's only image; `location` names it in messages.
pub(super) fn top_of(dir: &OciDir, tag: Option<&str>, location: impl FnOnce() -> String) -> Result<RawManifest> {
    if let Some(tag) = tag {
        return Ok(dir.resolve(tag)?);
    }
    let index = dir.index()?;
    match index.manifests.as_slice() {
        [only] => Ok(dir.read_manifest_as(only)?),
        all => Err(Error::AmbiguousLayout {
            location: location(),
            count: all.len(),
            tags: all.iter().filter_map(|d| d.annotations.as_ref()?.get(store::REF_NAME_ANNOTATION).cloned()).collect(),
        }),
    }
}

/// Where blob `descriptor` of `dir` is; an error when it is not there.
pub(super) fn blob_in(dir: &OciDir, descriptor: &Descriptor) -> Result<BlobOrigin> {
    let path = dir.blob_path(&descriptor.digest)?;
    if !path.is_file() {
        return Err(store::Error::BlobNotFound { digest: descriptor.digest.clone(), path }.into());
    }
    Ok(BlobOrigin::File(path))
}

#[async_trait::async_trait]
impl Source for LayoutImage {
    fn location(&self) -> String {
        layout_location(&self.dir, self.tag.as_deref())
    }

    async fn manifest(&self) -> Result<RawManifest> {
        top_of(&self.dir, self.tag.as_deref(), || self.location())
    }

    async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        Ok(self.dir.read_manifest_as(descriptor)?)
    }

    fn blob_origin(&self, descriptor: &Descriptor) -> Result<BlobOrigin> {
        blob_in(&self.dir, descriptor)
    }
}

/// An OCI layout to write into (other images in it are kept).
pub(super) struct LayoutTarget {
    dir: Arc<OciDir>,
    tag: Option<String>,
}

impl LayoutTarget {
    pub(super) fn create(path: &Path, tag: Option<String>) -> Result<Self> {
        Ok(Self::new(Arc::new(OciDir::create(path)?), tag))
    }

    pub(super) fn new(dir: Arc<OciDir>, tag: Option<String>) -> Self {
        Self { dir, tag }
    }

    pub(super) fn dir(&self) -> &OciDir {
        &self.dir
    }
}

#[async_trait::async_trait]
impl Destination for LayoutTarget {
    fn location(&self) -> String {
        layout_location(&self.dir, self.tag.as_deref())
    }

    fn blob_store(&self) -> String {
        self.dir.path().display().to_string()
    }

    async fn put_blob(&self, src: &ImageSource, desc: &Descriptor, reporter: &dyn Reporter) -> Result<BlobAction> {
        if self.dir.blob_path(&desc.digest).is_ok_and(|p| p.metadata().is_ok_and(|m| m.len() == desc.size)) {
            return Ok(BlobAction::Existed);
        }
        if !desc.digest.is_sha256() {
            // Fail before reading what could not be stored anyway.
            return Err(store::Error::UnsupportedDigest { digest: desc.digest.clone() }.into());
        }
        let origin = src.blob_origin(desc)?;
        reporter.on_blob_start(BlobKind::Pull, &desc.digest, Some(desc.size));
        receive_local(self.dir.as_ref(), origin, desc).await?;
        Ok(BlobAction::Copied)
    }

    async fn put_manifest(&self, manifest: &RawManifest) -> Result<()> {
        self.dir.write_manifest_blob(manifest)?;
        Ok(())
    }

    async fn publish(&self, top: &RawManifest) -> Result<()> {
        self.dir.write_manifest(top, self.tag.as_deref(), None)?;
        Ok(())
    }
}
