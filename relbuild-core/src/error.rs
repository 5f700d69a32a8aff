//! The crate-level error: one variant per module boundary.
//!
//! Each variant boxes its module's error, so that `Error` stays two words
//! (`Result<T, Error>` is cheap to return; clippy's `result_large_err`).
//! `?` converts every module error as before (the `From` impls box it);
//! `Display` and `source()` are the module error's own.

/// Any relbuild-core error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the image model.
    #[error(transparent)]
    Image(Box<crate::image::Error>),
    /// From content verification.
    #[error(transparent)]
    Verify(Box<crate::digest::VerifyError>),
    /// From layer reading or writing.
    #[error(transparent)]
    Layer(Box<crate::layer::Error>),
    /// From a local store.
    #[error(transparent)]
    Store(Box<crate::store::Error>),
    /// From a registry.
    #[error(transparent)]
    Registry(Box<crate::registry::Error>),
    /// From copying images.
    #[error(transparent)]
    Transfer(Box<crate::transfer::Error>),
    /// From release assembly.
    #[error(transparent)]
    Release(Box<crate::release::Error>),
    /// From reading a release's metadata for `info`.
    #[error(transparent)]
    Info(Box<crate::release::info::Error>),
    /// From reading a release image.
    #[error(transparent)]
    Read(Box<crate::release::read::Error>),
    /// From parsing manifests for inclusion filters.
    #[error(transparent)]
    Include(Box<crate::release::include::Error>),
}

/// `From<ModuleError>` (boxing) and `From<Box<ModuleError>>` for each variant.
macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(
            impl From<$ty> for Error {
                fn from(e: $ty) -> Self {
                    Self::$variant(Box::new(e))
                }
            }
            impl From<Box<$ty>> for Error {
                fn from(e: Box<$ty>) -> Self {
                    Self::$variant(e)
                }
            }
        )*
    };
}

boxed_from!(
    Image(crate::image::Error),
    Verify(crate::digest::VerifyError),
    Layer(crate::layer::Error),
    Store(crate::store::Error),
    Registry(crate::registry::Error),
    Transfer(crate::transfer::Error),
    Release(crate::release::Error),
    Info(crate::release::info::Error),
    Read(crate::release::read::Error),
    Include(crate::release::include::Error),
);

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_small_and_transparent() {
        assert!(std::mem::size_of::<Error>() <= 16, "{}", std::mem::size_of::<Error>());
        let e: Error = crate::release::Error::NoSource.into();
        assert_eq!(e.to_string(), crate::release::Error::NoSource.to_string());
        assert!(matches!(&e, Error::Release(r) if matches!(**r, crate::release::Error::NoSource)));
    }
}
