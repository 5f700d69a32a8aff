//! (layer: to be written)

pub mod gotar;

/// Errors of the `layer` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder until the module is written.
    #[error("layer: not yet implemented")]
    Unimplemented,
}
