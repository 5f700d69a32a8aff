//! A registry repository as a [`Source`] and a [`Destination`].

use super::{BlobAction, BlobOrigin, Destination, ImageLocation, ImageSource, Result, Source};
use crate::image::{Descriptor, RawManifest, Reference};
use crate::progress::{BlobKind, Reporter};
use crate::registry::{Client, PushOutcome, RegistryBlob};

/// An image in a registry; `reference` names the top manifest by tag or digest.
pub(super) struct RegistryImage {
    client: Client,
    reference: Reference,
}

impl RegistryImage {
    pub(super) fn new(client: Client, reference: Reference) -> Self {
        Self { client, reference }
    }
}

#[async_trait::async_trait]
impl Source for RegistryImage {
    fn location(&self) -> String {
        format!("docker://{}", self.reference)
    }

    async fn manifest(&self) -> Result<RawManifest> {
        Ok(self.client.pull_manifest_raw(&self.reference).await?)
    }

    async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        Ok(self.client.pull_manifest_raw(&self.reference.with_digest(descriptor.digest.clone())).await?)
    }

    fn blob_origin(&self, _descriptor: &Descriptor) -> Result<BlobOrigin> {
        Ok(BlobOrigin::Registry { client: self.client.clone(), repo: self.reference.clone() })
    }

    fn registry_hosts(&self) -> Vec<String> {
        vec![self.reference.api_host().to_owned()]
    }
}

/// A registry repository to push to.
pub(super) struct RegistryTarget {
    client: Client,
    reference: Reference,
}

impl RegistryTarget {
    pub(super) fn new(client: Client, reference: Reference) -> Self {
        Self { client, reference }
    }
}

#[async_trait::async_trait]
impl Destination for RegistryTarget {
    fn location(&self) -> String {
        ImageLocation::Registry(self.reference.clone()).to_string()
    }

    fn blob_store(&self) -> String {
        // A registry keeps blobs per repository.
        format!("docker://{}", self.reference.name())
    }

    fn max_concurrent(&self, src: &ImageSource, wanted: usize) -> usize {
        // A declined mount streams from the same registry, holding a second
        // request slot.
        if src.registry_hosts().iter().any(|h| h == self.reference.api_host()) {
            wanted.min(self.client.options().max_per_registry / 2)
        } else {
            wanted
        }
    }

    async fn put_blob(&self, src: &ImageSource, desc: &Descriptor, reporter: &dyn Reporter) -> Result<BlobAction> {
        let outcome = match src.blob_origin(desc)? {
            BlobOrigin::Registry { client, repo } => {
                let blob = RegistryBlob { client, repo: repo.clone(), descriptor: desc.clone() };
                if repo.api_host() == self.reference.api_host() {
                    reporter.on_blob_start(BlobKind::Mount, &desc.digest, Some(desc.size));
                    self.client.mount_blob(&self.reference, &repo, desc, &blob).await?
                } else {
                    reporter.on_blob_start(BlobKind::Push, &desc.digest, Some(desc.size));
                    self.client.push_blob(&self.reference, desc, &blob).await?
                }
            }
            // The upload hashes what it reads and fails before its final
            // `PUT` on a mismatch, so local content needs no check first.
            BlobOrigin::File(path) => {
                reporter.on_blob_start(BlobKind::Push, &desc.digest, Some(desc.size));
                self.client.push_blob(&self.reference, desc, &path).await?
            }
            BlobOrigin::Memory(bytes) => {
                reporter.on_blob_start(BlobKind::Push, &desc.digest, Some(desc.size));
                self.client.push_blob(&self.reference, desc, &bytes).await?
            }
        };
        Ok(match outcome {
            PushOutcome::Exists => BlobAction::Existed,
            PushOutcome::Mounted => BlobAction::Mounted,
            _ => BlobAction::Copied,
        })
    }

    async fn put_manifest(&self, manifest: &RawManifest) -> Result<()> {
        self.client.push_manifest(&self.reference.with_digest(manifest.digest().clone()), manifest).await?;
        Ok(())
    }

    async fn publish(&self, top: &RawManifest) -> Result<()> {
        self.client.push_manifest(&self.reference, top).await?;
        Ok(())
    }
}
