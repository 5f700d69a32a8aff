//! Progress reporting. Core calls a [`Reporter`]; the CLI draws bars.

use std::time::Duration;

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

/// What a warning is about, so that a front end can group many warnings of
/// one kind (a 200-operator build skips hundreds of symlinks) instead of
/// printing each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// An entry of an operator's `manifests/` was skipped: a symlink, a hard
    /// link, a file in a subdirectory, a name that is not UTF-8.
    SkippedEntry,
    /// Two operators ship a file of the same name; the later one was renamed.
    NameCollision,
    /// A lint finding of warning severity on the built payload, by its code.
    LintWarning(&'static str),
    /// A lint error on the built payload, reported because lint runs in
    /// `warn` mode.
    LintError(&'static str),
    /// Anything else: each such warning is its own kind.
    Other,
}

/// Where a copy run ([`copy_images`](crate::transfer::copy_images)) stands,
/// sent after every blob and every image. Blobs are counted once per
/// destination store however many images name them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyProgress {
    /// Distinct blobs the run handles.
    pub blobs_total: u64,
    /// Of those, the blobs in place so far.
    pub blobs_done: u64,
    /// Their bytes.
    pub bytes_total: u64,
    /// Bytes that were moved (fetched and written or uploaded).
    pub bytes_copied: u64,
    /// Bytes that were already there or were mounted: nothing moved.
    pub bytes_reused: u64,
    /// Images (or indexes) the run copies.
    pub images_total: u64,
    /// Of those, the ones published.
    pub images_done: u64,
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
    /// A copy run moved on: see [`CopyProgress`].
    fn on_copy_progress(&self, _progress: &CopyProgress) {}
    /// A warning the user should see.
    fn on_warning(&self, _kind: WarningKind, _message: &str) {}
    /// A request to `host` failed with `error` and is tried again after
    /// `delay`; `attempt` is the number of the attempt that failed (1-based).
    /// Many requests may be retrying at once: an unreachable registry gives
    /// one event per request per attempt.
    fn on_retry(&self, _host: &str, _attempt: u32, _delay: Duration, _error: &dyn std::error::Error) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}
