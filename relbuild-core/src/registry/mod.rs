//! (registry: to be written)

/// Errors of the `registry` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder until the module is written.
    #[error("registry: not yet implemented")]
    Unimplemented,
}
