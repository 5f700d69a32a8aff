//! The image model: references, digests, media types, manifests and configs.
//!
//! Pure data: no I/O, no async.

mod digest;
pub mod gojson;
mod manifest;
mod media_type;
mod reference;

pub use digest::Digest;
pub use manifest::{
    Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform, RawManifest, RootFs, RuntimeConfig,
};
pub use media_type::{Compression, MediaType};
pub use reference::{DOCKER_HUB, DOCKER_HUB_API, Reference};

/// Errors of the image model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image reference that does not parse.
    #[error("invalid image reference `{input}`: {reason}")]
    InvalidReference {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A digest that does not parse.
    #[error("invalid digest `{input}`: {reason}")]
    InvalidDigest {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Content whose digest is not the one asked for.
    #[error("digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// The digest that was asked for.
        expected: Digest,
        /// The digest of the bytes received.
        found: Digest,
    },
    /// A manifest that is not valid JSON of its type.
    #[error("manifest {digest} is not valid")]
    InvalidManifest {
        /// The digest of the bytes.
        digest: Digest,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest media type relbuild cannot read.
    #[error("manifest {digest} has unsupported media type `{media_type}`")]
    UnsupportedMediaType {
        /// The media type found.
        media_type: String,
        /// The digest of the bytes.
        digest: Digest,
    },
    /// An image config that is not valid JSON.
    #[error("image config is not valid")]
    InvalidConfig {
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Serialising failed (only on a bug: our types always serialise).
    #[error("could not serialise {what}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// True when content did not match its digest.
    pub fn is_digest_mismatch(&self) -> bool {
        matches!(self, Self::DigestMismatch { .. })
    }
}
