//! [`ComposedImage`]: an image that exists only as its parts, as a [`Source`].

use std::collections::HashMap;

use super::{BlobOrigin, Error, Result, Source};
use crate::image::{Descriptor, Digest, RawManifest};

/// An image assembled by the caller rather than stored anywhere yet: its
/// manifests in memory and, for each blob, where the bytes are (a registry
/// repository, a file, memory). `relbuild new` copies the release it
/// builds to its destinations as one of these: base layers in the base
/// image's repository, the payload layer in a file, configs in memory.
#[derive(Debug, Clone)]
pub struct ComposedImage {
    location: String,
    top: RawManifest,
    children: HashMap<Digest, RawManifest>,
    blobs: HashMap<Digest, BlobOrigin>,
}

impl ComposedImage {
    /// An image whose top manifest is `top`; `location` names it in messages.
    pub fn new(location: impl Into<String>, top: RawManifest) -> Self {
        Self { location: location.into(), top, children: HashMap::new(), blobs: HashMap::new() }
    }

    /// Adds a manifest the top one names (an index's child).
    pub fn with_manifest(mut self, manifest: RawManifest) -> Self {
        self.children.insert(manifest.digest().clone(), manifest);
        self
    }

    /// Says where blob `digest` is.
    pub fn with_blob(mut self, digest: Digest, origin: BlobOrigin) -> Self {
        self.blobs.insert(digest, origin);
        self
    }
}

#[async_trait::async_trait]
impl Source for ComposedImage {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn manifest(&self) -> Result<RawManifest> {
        Ok(self.top.clone())
    }

    async fn manifest_for(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        let m = self.children.get(&descriptor.digest).ok_or_else(|| self.missing(&descriptor.digest))?;
        crate::digest::verify(&descriptor.digest, Some(descriptor.size), m.digest(), m.bytes().len() as u64)
            .map_err(crate::store::Error::from)?;
        Ok(m.clone())
    }

    fn blob_origin(&self, descriptor: &Descriptor) -> Result<BlobOrigin> {
        self.blobs.get(&descriptor.digest).cloned().ok_or_else(|| self.missing(&descriptor.digest))
    }

    fn registry_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .blobs
            .values()
            .filter_map(|o| match o {
                BlobOrigin::Registry { repo, .. } => Some(repo.api_host().to_owned()),
                _ => None,
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

impl ComposedImage {
    fn missing(&self, digest: &Digest) -> Error {
        Error::NotInImage { location: self.location.clone(), digest: digest.clone() }
    }
}
