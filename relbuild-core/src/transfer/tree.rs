//! A repository of a distribution storage tree as a [`Source`] and a
//! [`Destination`].

use std::path::Path;
use std::sync::Arc;

use super::destination::receive_local;
use super::{BlobAction, BlobOrigin, Destination, ImageLocation, ImageSource, Result, Source, TreeVersion};
use crate::image::{Descriptor, RawManifest};
use crate::progress::{BlobKind, Reporter};
use crate::store::{self, DistTree};

/// An image in a tree's repository, by tag or digest (`latest` without either).
pub(super) struct TreeImage {
    tree: DistTree,
    repo: String,
    version: Option<TreeVersion>,
}

impl TreeImage {
    pub(super) fn open(path: &Path, repo: String, version: Option<TreeVersion>) -> Result<Self> {
        Ok(Self { tree: DistTree::open(path)?, repo, version })
    }
}

fn tree_location(tree: &DistTree, repo: &str, version: Option<TreeVersion>) -> String {
    ImageLocation::Tree { path: tree.path().to_path_buf(), repo: repo.to_owned(), version }.to_string()
}

#[async_trait::async_trait]
impl Source for TreeImage {
    fn location(&self) -> String {
        tree_location(&self.tree, &self.repo, self.version.clone())
    }

    async fn manifest(&self) -> Result<RawManifest> {
        let digest = match &self.version {
            Some(TreeVersion::Digest(d)) => d.clone(),
            Some(TreeVersion::Tag(t)) => self.tree.resolve(&self.repo, t)?,
            None => self.tree.resolve(&self.repo, "latest")?,
        };
        Ok(self.tree.read_manifest(&self.repo, &digest)?)
    }

    async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        let m = self.tree.read_manifest(&self.repo, &descriptor.digest)?;
        crate::digest::verify(&descriptor.digest, Some(descriptor.size), m.digest(), m.bytes().len() as u64)
            .map_err(store::Error::from)?;
        Ok(m)
    }

    fn blob_origin(&self, descriptor: &Descriptor) -> Result<BlobOrigin> {
        // Only what the repository links is served from it, as the registry does.
        self.tree.open_blob(&self.repo, &descriptor.digest)?;
        Ok(BlobOrigin::File(self.tree.blob_path(&descriptor.digest)?))
    }
}

/// A tree's repository to write into (the tree is created if needed).
pub(super) struct TreeTarget {
    tree: Arc<DistTree>,
    repo: String,
    tag: Option<String>,
}

impl TreeTarget {
    pub(super) fn create(path: &Path, repo: String, version: Option<TreeVersion>) -> Result<Self> {
        let tag = match version {
            Some(TreeVersion::Tag(t)) => Some(t),
            _ => None,
        };
        Ok(Self { tree: Arc::new(DistTree::create(path)?), repo, tag })
    }
}

#[async_trait::async_trait]
impl Destination for TreeTarget {
    fn location(&self) -> String {
        tree_location(&self.tree, &self.repo, self.tag.clone().map(TreeVersion::Tag))
    }

    fn blob_store(&self) -> String {
        // One set of blobs for all repositories; links are per repository
        // (see `link_blobs`).
        self.tree.path().display().to_string()
    }

    async fn put_blob(&self, src: &ImageSource, desc: &Descriptor, reporter: &dyn Reporter) -> Result<BlobAction> {
        let action = if self.tree.has_blob(&desc.digest, desc.size) {
            BlobAction::Existed
        } else {
            let origin = src.blob_origin(desc)?;
            reporter.on_blob_start(BlobKind::Pull, &desc.digest, Some(desc.size));
            receive_local(self.tree.as_ref(), origin, desc).await?;
            BlobAction::Copied
        };
        // The data is in place (and synced) before the link names it.
        self.tree.link_layer(&self.repo, &desc.digest)?;
        Ok(action)
    }

    async fn link_blobs(&self, blobs: &[Descriptor]) -> Result<()> {
        // A blob another image of the run copied is linked here too.
        for d in blobs {
            self.tree.link_layer(&self.repo, &d.digest)?;
        }
        Ok(())
    }

    async fn put_manifest(&self, manifest: &RawManifest) -> Result<()> {
        Ok(self.tree.put_manifest(&self.repo, manifest)?)
    }

    async fn publish(&self, top: &RawManifest) -> Result<()> {
        self.tree.put_manifest(&self.repo, top)?;
        if let Some(tag) = &self.tag {
            self.tree.tag(&self.repo, tag, top.digest())?;
        }
        Ok(())
    }
}
