//! Local content-addressed storage in OCI image-layout form, and
//! oci-archive tarballs of such layouts.
//!
//! An [OCI image layout] is a directory holding
//!
//! - `oci-layout`: `{"imageLayoutVersion":"1.0.0"}`;
//! - `index.json`: an OCI image index whose entries name the stored images,
//!   a tag in the `org.opencontainers.image.ref.name` annotation;
//! - `blobs/sha256/<hex>`: every blob (layers, configs, manifests), named by
//!   the sha256 of its bytes.
//!
//! [`OciDir`] reads and writes such a directory. Blobs are hashed while they
//! are written to a temporary file inside `blobs/sha256/`, then renamed to
//! their digest, so a blob path only ever holds complete content (see
//! [`BlobWriter`]). `index.json` is rewritten the same way. An oci-archive
//! (what `skopeo copy … oci-archive:FILE` writes) is a tar of a layout:
//! [`write_archive`] writes one deterministically, [`read_archive`] unpacks one
//! safely into a temporary [`OciDir`].
//!
//! [`Cache`] is the build's content-addressed cache (`--cache-dir`):
//! manifests and configs by digest, extracted operator manifests under an
//! [`ExtractKey`] over the layers they came from, and derived records under
//! a [`RecordKey`] over their inputs, kept in one pack per build.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::Write as _;
//! use relbuild_core::{Descriptor, MediaType, store::{self, OciDir}};
//!
//! let tmp = tempfile::tempdir()?;
//! let dir = OciDir::create(tmp.path().join("layout"))?;
//! // Layers stream through a blob writer: hashed as written, renamed when complete.
//! let mut w = dir.blob_writer()?;
//! w.write_all(b"layer bytes")?;
//! let (digest, size) = w.complete()?;
//! let layer = Descriptor::new(MediaType::OciLayer, digest, size);
//! let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
//! let image = dir.write_image(config, vec![layer], Some("latest"))?;
//! assert_eq!(dir.resolve("latest")?.digest(), image.manifest.digest());
//!
//! store::write_archive_to_path(&dir, tmp.path().join("image.tar"))?;
//! let unpacked = store::read_archive(tmp.path().join("image.tar"))?;
//! assert_eq!(unpacked.read_image("latest")?.config, image.config);
//! # Ok(()) }
//! ```
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

mod archive;
mod cache;
mod layout;
mod tree;
mod verify;

use std::io;
use std::path::PathBuf;

pub use archive::{ArchiveOptions, OciArchive, read_archive, read_archive_with, write_archive, write_archive_to_path};
pub use cache::{Cache, CacheStats, ExtractKey, PruneOptions, PruneReport, RecordKey, RecordKeyBuilder};
pub use layout::{
    BlobWriter, CorruptBlob, FsckReport, GcReport, MissingBlob, OCI_LAYOUT_VERSION, OciDir, REF_NAME_ANNOTATION,
    StoredImage, WrongSize,
};
pub use tree::{DistTree, LINK_LEN, check_repository, check_tag};
pub use verify::{Problem, ProblemKind, StoreKind, TreeReport, Verification, verify};

use crate::image::{self, Digest, MediaType};

/// Errors of the `store` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path that holds neither a distribution tree nor an OCI layout.
    #[error(
        "`{path}` is neither a distribution storage tree (`docker/registry/v2/`) nor an OCI image layout (`oci-layout`)"
    )]
    NotAStore {
        /// The path.
        path: PathBuf,
    },
    /// The directory has no `docker/registry/v2/`.
    #[error("`{path}` is not a distribution storage tree (no `docker/registry/v2/`)")]
    NotATree {
        /// The directory.
        path: PathBuf,
    },
    /// A link file of a tree that is not exactly `sha256:<64 hex>`.
    #[error("`{path}` is not a link file ({len} bytes, expected `sha256:<64 hex>`)")]
    InvalidLink {
        /// The link file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// A repository name distribution would refuse.
    #[error("invalid repository name `{repo}`: {reason}")]
    InvalidRepository {
        /// The name.
        repo: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The directory has no `oci-layout` file.
    #[error("`{path}` is not an OCI image layout (no `oci-layout` file)")]
    NotALayout {
        /// The directory.
        path: PathBuf,
    },
    /// The `oci-layout` file names a version relbuild does not know.
    #[error("`{path}` has image layout version `{version}`, expected `1.0.0`")]
    UnsupportedLayoutVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The version found.
        version: String,
    },
    /// The `oci-layout` file is not valid JSON of its shape.
    #[error("`{path}` is not a valid `oci-layout` file")]
    InvalidLayoutFile {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `index.json` is not a valid image index.
    #[error("`{path}` is not a valid image index")]
    InvalidIndex {
        /// The `index.json` file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// No `index.json` entry carries the tag.
    #[error("tag `{tag}` not found in `{path}`")]
    TagNotFound {
        /// The tag asked for.
        tag: String,
        /// The layout directory.
        path: PathBuf,
    },
    /// A tag that cannot be stored.
    #[error("invalid tag `{tag}`: {reason}")]
    InvalidTag {
        /// The tag given.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The blob is not in the layout.
    #[error("blob {digest} not found at `{path}`")]
    BlobNotFound {
        /// The digest asked for.
        digest: Digest,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A digest whose algorithm the store cannot address (only sha256 is).
    #[error("unsupported digest {digest}: only sha256 blobs are stored")]
    UnsupportedDigest {
        /// The digest given.
        digest: Digest,
    },
    /// Content does not match the digest or size it was stored or asked for under.
    #[error("blob verification failed")]
    Verify(#[from] crate::digest::VerifyError),
    /// An archive entry named `blobs/sha256/<hex>` whose content has another digest.
    #[error("entry `{entry}` of archive `{archive}` does not match its name")]
    CorruptArchiveEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path.
        entry: String,
        /// The mismatch.
        #[source]
        source: crate::digest::VerifyError,
    },
    /// A manifest blob that is not a valid manifest.
    #[error("invalid manifest at `{path}`")]
    InvalidManifest {
        /// The manifest blob.
        path: PathBuf,
        /// Why it is invalid.
        #[source]
        source: image::Error,
    },
    /// A tag or digest that names an index where a single image was expected.
    #[error("`{reference}` is a `{media_type}`, not a single image")]
    NotAnImage {
        /// The tag or digest.
        reference: String,
        /// Its media type.
        media_type: MediaType,
    },
    /// An index without an entry for the platform asked for.
    #[error("`{reference}` has no image for platform `{platform}`")]
    PlatformNotFound {
        /// The tag.
        reference: String,
        /// The platform asked for, `os/arch[/variant]`.
        platform: String,
    },
    /// A file system operation failed.
    #[error("I/O error on `{path}`")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Writing an archive to the caller's writer failed.
    #[error("writing the archive failed")]
    WriteArchive(#[source] io::Error),
    /// Reading the content to be stored failed (the caller's reader).
    #[error("reading blob content to store failed")]
    ReadSource(#[source] io::Error),
    /// Serialising `index.json` failed (only on a bug: our types always serialise).
    #[error("could not serialise `{path}`")]
    Serialize {
        /// The file being written.
        path: PathBuf,
        /// The serialiser error.
        #[source]
        source: serde_json::Error,
    },
    /// An archive entry that would escape the layout or is not a plain file or directory.
    #[error("refusing entry `{entry}` of archive `{archive}`: {reason}")]
    UnsafeArchiveEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Writing an extracted set into the cache failed.
    #[error("could not write cache entry `{path}`")]
    WriteCacheEntry {
        /// The temp file being written.
        path: PathBuf,
        /// The tar writer's error.
        #[source]
        source: crate::layer::Error,
    },
    /// An archive beyond the limits in [`ArchiveOptions`].
    #[error("archive `{archive}` exceeds the limit of {limit} {what}")]
    ArchiveTooLarge {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
        /// What is limited (`bytes in one entry`, `bytes in total`, `entries`).
        what: &'static str,
    },
}

impl Error {
    /// True when a tag or blob is not in the store.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::TagNotFound { .. } | Self::BlobNotFound { .. } | Self::PlatformNotFound { .. })
    }

    /// True when stored content did not match its digest or size.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Verify(_) | Self::CorruptArchiveEntry { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
