//! Progress reporting. Core calls a [`Reporter`]; the CLI draws bars.

use crate::image::Digest;

/// What a blob transfer is doing, for the reporter's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobKind {
    /// Downloading a blob.
    Pull,
    /// Uploading a blob.
    Push,
    /// Mounting a blob from another repository.
    Mount,
}

/// Receives progress events. All methods default to doing nothing.
pub trait Reporter: Send + Sync {
    /// A blob transfer starts; `size` when known.
    fn on_blob_start(&self, _kind: BlobKind, _digest: &Digest, _size: Option<u64>) {}
    /// `bytes` more bytes of a blob were transferred.
    fn on_blob_progress(&self, _digest: &Digest, _bytes: u64) {}
    /// A blob transfer finished (or was skipped because the blob exists).
    fn on_blob_complete(&self, _digest: &Digest) {}
    /// A phase with `total` steps starts (e.g. "inspecting images").
    fn on_phase_start(&self, _phase: &str, _total: u64) {}
    /// One step of the current phase is done.
    fn on_phase_step(&self, _phase: &str) {}
    /// A warning the user should see.
    fn on_warning(&self, _message: &str) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}
