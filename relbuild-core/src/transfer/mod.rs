//! Moving images between a registry, an OCI image layout directory and an
//! oci-archive: the work of `skopeo copy` and `oc image mirror`, for one
//! image or a whole manifest list.
//!
//! - [`ImageLocation`] parses skopeo's syntax (`docker://REF` or `REF`,
//!   `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`).
//! - [`ImageSource`] reads any of them the same way: the top manifest (an
//!   image or an index), manifests by digest, small blobs into memory and
//!   layers as verified streams.
//! - [`copy_image`] copies an image, or an index with all its images (or
//!   the one `filter_by_os` picks), to an [`ImageDestination`]: blobs first
//!   (mounted within one registry, skipped when present, streamed, never
//!   whole in memory), then the manifests as the exact bytes read, so every
//!   digest is preserved, the top manifest last. [`copy_images`] does the
//!   same for many images as one run, each blob copied once per destination.
//!
//! ```no_run
//! # async fn demo() -> Result<(), relbuild_core::Error> {
//! use relbuild_core::NoReporter;
//! use relbuild_core::registry::Client;
//! use relbuild_core::transfer::{CopyOptions, ImageDestination, ImageSource, copy_image};
//!
//! let client = Client::anonymous()?;
//! let src = ImageSource::open(&"quay.io/openshift/origin-cli:4.15".parse()?, &client).await?;
//! let dst = ImageDestination::open(&"oci:/tmp/cli:4.15".parse()?, &client)?;
//! let outcome = copy_image(&src, &dst, &CopyOptions::default(), &NoReporter).await?;
//! println!("{}", outcome.digest);
//! # Ok(()) }
//! ```

mod archive;
mod composed;
mod copy;
mod destination;
mod layout;
mod location;
mod registry;
mod source;
mod tree;

use std::path::PathBuf;

pub use composed::ComposedImage;
pub use copy::{BlobAction, CopiedBlob, CopyOptions, CopyOutcome, copy_image, copy_images};
pub use destination::{Destination, ImageDestination};
pub use location::{ImageLocation, TreeVersion};
pub use source::{BlobOrigin, ImageSource, Source, VerifyingReader};

use crate::image::{self, Digest, MediaType};

/// Errors of the `transfer` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A location string that does not parse.
    #[error("invalid image location `{input}`: {reason}")]
    InvalidLocation {
        /// The input.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A location whose registry reference does not parse.
    #[error("invalid image location `{input}`")]
    InvalidReference {
        /// The input.
        input: String,
        /// The reference parser's error.
        #[source]
        source: image::Error,
    },
    /// A skopeo transport relbuild does not read or write.
    #[error(
        "unsupported transport `{transport}` in `{input}`: use `docker://REF`, `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`"
    )]
    UnsupportedTransport {
        /// The input.
        input: String,
        /// The transport named.
        transport: String,
    },
    /// A layout or archive opened without a tag that holds other than one image.
    #[error("`{location}` holds {count} images; name one as `{location}:TAG` (tags: {})", tags.join(", "))]
    AmbiguousLayout {
        /// The layout or archive.
        location: String,
        /// How many `index.json` entries it has.
        count: usize,
        /// Their tags.
        tags: Vec<String>,
    },
    /// A manifest relbuild cannot copy (schema 1, or not a manifest).
    #[error("`{location}`: manifest {digest} has unsupported media type `{media_type}`")]
    UnsupportedManifest {
        /// Where it was read.
        location: String,
        /// Its digest.
        digest: Digest,
        /// Its media type.
        media_type: MediaType,
    },
    /// A manifest that does not parse as its media type says.
    #[error("`{location}`: invalid manifest")]
    InvalidManifest {
        /// Where it was read.
        location: String,
        /// The parse error.
        #[source]
        source: image::Error,
    },
    /// An index without an image for the platform asked for.
    #[error("`{location}` has no image for platform `{platform}` (it has: {})", available.join(", "))]
    PlatformNotFound {
        /// The index's location.
        location: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: Vec<String>,
    },
    /// A composed image asked for a manifest or blob it was not given.
    #[error("`{location}` has no manifest or blob {digest}")]
    NotInImage {
        /// The image.
        location: String,
        /// What was asked for.
        digest: Digest,
    },
    /// A blob larger than the caller's limit for reading into memory.
    #[error("`{location}`: blob {digest} is {size} bytes, over the limit of {limit}")]
    BlobTooLarge {
        /// Where it is.
        location: String,
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A local file operation failed.
    #[error("I/O error on `{path}`")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task (file copy, archive packing) was cancelled.
    #[error("{what} was cancelled")]
    Cancelled {
        /// What the task was doing.
        what: &'static str,
    },
    /// From the registry.
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
    /// From a local layout or archive.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl Error {
    /// True when the image, tag, blob or platform does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::PlatformNotFound { .. } => true,
            Self::Registry(e) => e.is_not_found(),
            Self::Store(e) => e.is_not_found(),
            _ => false,
        }
    }

    /// True when the input string was at fault.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::InvalidLocation { .. } | Self::InvalidReference { .. } | Self::UnsupportedTransport { .. })
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a blocking closure, re-raising its panic.
async fn blocking<T: Send + 'static>(what: &'static str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Ok(v),
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(_) => Err(Error::Cancelled { what }),
        },
    }
}
