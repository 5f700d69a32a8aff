//! An oci-archive file as a [`Source`] and a [`Destination`]: a layout
//! unpacked into, or assembled in, a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::layout::{LayoutTarget, blob_in, top_of};
use super::{BlobAction, BlobOrigin, Destination, Error, ImageLocation, ImageSource, Result, Source, blocking};
use crate::image::{Descriptor, RawManifest};
use crate::progress::Reporter;
use crate::store::{self, OciArchive, OciDir};

/// An image in an oci-archive, unpacked into a temporary layout that lives
/// as long as this value.
pub(super) struct ArchiveImage {
    archive: OciArchive,
    path: PathBuf,
    tag: Option<String>,
}

impl ArchiveImage {
    /// Unpacks the archive on a blocking thread.
    pub(super) async fn open(path: &Path, tag: Option<String>) -> Result<Self> {
        let p = path.to_path_buf();
        let archive = blocking("unpacking an oci-archive", move || store::read_archive(p)).await??;
        Ok(Self { archive, path: path.to_path_buf(), tag })
    }
}

fn archive_location(path: &Path, tag: Option<&str>) -> String {
    ImageLocation::Archive { path: path.to_path_buf(), tag: tag.map(str::to_owned) }.to_string()
}

#[async_trait::async_trait]
impl Source for ArchiveImage {
    fn location(&self) -> String {
        archive_location(&self.path, self.tag.as_deref())
    }

    async fn manifest(&self) -> Result<RawManifest> {
        top_of(self.archive.dir(), self.tag.as_deref(), || self.location())
    }

    async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        Ok(self.archive.dir().read_manifest_as(descriptor)?)
    }

    fn blob_origin(&self, descriptor: &Descriptor) -> Result<BlobOrigin> {
        blob_in(self.archive.dir(), descriptor)
    }
}

/// An oci-archive to write: everything goes into a staging layout beside
/// the file, which is packed into the archive (replacing any file there)
/// when the top manifest is published.
pub(super) struct ArchiveTarget {
    path: PathBuf,
    tag: Option<String>,
    staging: LayoutTarget,
    _tmp: tempfile::TempDir,
}

impl ArchiveTarget {
    pub(super) fn create(path: &Path, tag: Option<String>) -> Result<Self> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".relbuild-staging-")
            .tempdir_in(&parent)
            .map_err(|source| Error::Io { path: parent, source })?;
        let dir = Arc::new(OciDir::create(tmp.path().join("layout"))?);
        Ok(Self { path: path.to_path_buf(), staging: LayoutTarget::new(dir, tag.clone()), tag, _tmp: tmp })
    }
}

#[async_trait::async_trait]
impl Destination for ArchiveTarget {
    fn location(&self) -> String {
        archive_location(&self.path, self.tag.as_deref())
    }

    fn blob_store(&self) -> String {
        self.staging.blob_store()
    }

    async fn put_blob(&self, src: &ImageSource, desc: &Descriptor, reporter: &dyn Reporter) -> Result<BlobAction> {
        self.staging.put_blob(src, desc, reporter).await
    }

    async fn put_manifest(&self, manifest: &RawManifest) -> Result<()> {
        self.staging.put_manifest(manifest).await
    }

    async fn publish(&self, top: &RawManifest) -> Result<()> {
        self.staging.publish(top).await?;
        let (dir, path) = (self.staging.dir().path().to_path_buf(), self.path.clone());
        blocking("writing an oci-archive", move || store::write_archive_to_path(&OciDir::open(&dir)?, &path)).await??;
        Ok(())
    }
}
