//! (store: to be written)

/// Errors of the `store` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder until the module is written.
    #[error("store: not yet implemented")]
    Unimplemented,
}
