//! The crate-level error: one variant per module boundary.

/// Any relbuild-core error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the image model.
    #[error(transparent)]
    Image(#[from] crate::image::Error),
    /// From content verification.
    #[error(transparent)]
    Verify(#[from] crate::digest::VerifyError),
    /// From layer reading or writing.
    #[error(transparent)]
    Layer(#[from] crate::layer::Error),
    /// From a local store.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// From a registry.
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
    /// From release assembly.
    #[error(transparent)]
    Release(#[from] crate::release::Error),
    /// From reading a release's metadata for `info`.
    #[error(transparent)]
    Info(#[from] crate::release::info::Error),
    /// From parsing manifests for inclusion filters.
    #[error(transparent)]
    Include(#[from] crate::release::include::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
