//! (release: to be written)

/// Errors of the `release` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder until the module is written.
    #[error("release: not yet implemented")]
    Unimplemented,
}
