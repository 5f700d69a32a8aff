//! Tar layers: streaming read, subtree extraction with whiteouts, and
//! deterministic write.
//!
//! # The format
//!
//! A layer blob is a tar archive (POSIX ustar, with the GNU and PAX
//! extensions for long names and large values), either plain, gzip
//! (one or several concatenated members) or zstd (one or several frames).
//! The media type says which; [`detect_compression`] looks at the magic bytes
//! instead, for when the media type is missing or wrong.
//!
//! Layers of an image are applied lowest first. An upper layer deletes
//! content of lower layers with *whiteouts* (the OCI image spec, "Whiteouts",
//! inherited from AUFS):
//! - `dir/.wh.<name>` deletes `dir/<name>`, a file or a whole directory;
//! - `dir/.wh..wh..opq` (opaque whiteout) deletes everything below `dir`;
//! - other `.wh..wh.*` names are AUFS metadata and mean nothing here.
//!
//! Whiteouts only affect lower layers and are never part of the result.
//!
//! # What this module does
//!
//! - [`open_layer`] and [`open_layer_detect`] turn a blob reader into a tar
//!   stream ([`LayerReader`]); nothing is buffered beyond the decoders' own
//!   windows.
//! - [`Extractor`] and [`extract_subtree`] keep the regular files under one
//!   directory (`manifests/`, `release-manifests/`) of one or several layers
//!   in memory, the way `oc` extracts operator manifests (filesOnly, whiteouts
//!   honoured; see the spec, §2.2). Entry names are cleaned like Go's
//!   `filepath.Clean`, except that a leading `/` is stripped rather than kept;
//!   a name that climbs out of the root with `..` fails the whole extraction.
//!   Caps ([`ExtractOptions`]) bound memory against hostile layers; every
//!   limit is checked from the tar header before the body is read.
//! - [`read_file`] finds one file and stops reading there;
//!   [`extract_subtree_top_down`] looks for a directory from the top layer
//!   down.
//! - [`LayerWriter`] writes a reproducible layer and hashes it on the way:
//!   tar → sha256 (diffID) → gzip or zstd → sha256 (blob digest) → output.

use std::error::Error as StdError;
use std::fmt;
use std::io;

mod extract;
mod path;
mod read;
mod write;

pub use extract::{
    EntryKind, ExtractOptions, Extracted, ExtractedFile, Extractor, SkipReason, Skipped, extract_subtree,
    extract_subtree_top_down, read_file,
};
pub use read::{LayerReader, detect_compression, open_layer, open_layer_detect};
pub use write::{EntryContent, LayerEntry, LayerInfo, LayerWriter, OffThreadWriter, WriteOptions, sort_entries};

pub use crate::image::Compression;

pub mod gotar;

/// Errors of the `layer` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An entry whose cleaned name climbs above the layer root with `..`.
    #[error("layer {layer}: entry `{entry}` escapes the layer root")]
    PathEscape {
        /// Index of the layer (lowest is 0).
        layer: usize,
        /// The entry name as written in the tar.
        entry: String,
    },
    /// More entries to keep (files plus skipped reports) than allowed.
    #[error("layer {layer}: entry `{entry}` exceeds the limit of {limit} files")]
    TooManyFiles {
        /// Index of the layer (lowest is 0).
        layer: usize,
        /// The cleaned entry name.
        entry: String,
        /// The limit in force.
        limit: usize,
    },
    /// A file larger than allowed.
    #[error("layer {layer}: entry `{entry}` is {size} bytes, over the limit of {limit} bytes per file")]
    FileTooLarge {
        /// Index of the layer (lowest is 0).
        layer: usize,
        /// The cleaned entry name.
        entry: String,
        /// The size from the tar header.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// Extracted files adding up to more than allowed.
    #[error("layer {layer}: entry `{entry}` brings the extracted total over the limit of {limit} bytes")]
    TotalTooLarge {
        /// Index of the layer (lowest is 0).
        layer: usize,
        /// The cleaned entry name.
        entry: String,
        /// The limit in force.
        limit: u64,
    },
    /// Data that is not valid gzip, zstd or tar.
    #[error("layer {layer}: invalid compressed data or tar stream{}", at(.entry))]
    Corrupt {
        /// Index of the layer (lowest is 0).
        layer: usize,
        /// The entry being read, if any.
        entry: Option<String>,
        /// What the decoder or tar parser reported.
        #[source]
        source: io::Error,
    },
    /// The underlying reader failed.
    #[error("layer {layer}: reading failed{}", at(.entry))]
    Io {
        /// Index of the layer (lowest is 0).
        layer: usize,
        /// The entry being read, if any.
        entry: Option<String>,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// Reading the first bytes of a blob or setting up a decoder failed.
    #[error("could not open the layer stream")]
    Open {
        /// The reader's or decoder's error.
        #[source]
        source: io::Error,
    },
    /// An entry that cannot be written as asked.
    #[error("cannot write entry `{entry}`: {reason}")]
    InvalidEntry {
        /// The entry path as given.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Writing (or compressing) the layer failed.
    #[error("writing the layer failed{}", at(.entry))]
    Write {
        /// The entry being written, if any.
        entry: Option<String>,
        /// The writer's error.
        #[source]
        source: io::Error,
    },
}

/// Formats the optional entry of an error message.
fn at(entry: &Option<String>) -> String {
    entry.as_ref().map(|e| format!(" at entry `{e}`")).unwrap_or_default()
}

impl Error {
    /// True when one of the [`ExtractOptions`] caps was exceeded.
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self, Self::TooManyFiles { .. } | Self::FileTooLarge { .. } | Self::TotalTooLarge { .. })
    }

    /// True when the layer content itself is bad (corrupt or hostile), so
    /// reading it again will not help.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::PathEscape { .. })
    }

    /// True when the underlying reader failed: the blob may be fine and a
    /// retry from a fresh reader may succeed.
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Open { .. })
    }

    /// Builds `Corrupt` or `Io` from an error that came out of a tar or
    /// decoder stack, depending on where it started (see [`classify`]).
    fn from_read(layer: usize, entry: Option<String>, source: io::Error) -> Self {
        match classify(&source) {
            Origin::Source => Self::Io { layer, entry, source: untag(source) },
            Origin::Decoder => Self::Corrupt { layer, entry, source },
        }
    }
}

/// Where an I/O error that surfaced through a tar parser or decoder began.
#[derive(Debug, PartialEq, Eq)]
enum Origin {
    /// The reader we were given: a network or disk failure.
    Source,
    /// A decoder or the tar parser: the data is bad.
    Decoder,
}

/// Marks an error of the reader we were given, so that, once it has passed
/// through decoders and the tar parser (which keep `io::Error`s as they are
/// or wrap them), it can be told apart from their own errors. Transparent
/// when displayed.
#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for SourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// Marks an error produced by a decompressor (gzip, zstd).
#[derive(Debug)]
struct DecodeError(io::Error);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid compressed data")
    }
}

impl StdError for DecodeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

/// Wraps a reader's error as a [`SourceError`], keeping its kind.
fn tag_source(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), SourceError(e))
}

/// Removes the outermost [`SourceError`] wrappers again.
fn untag(mut e: io::Error) -> io::Error {
    while e.get_ref().is_some_and(|p| p.is::<SourceError>()) {
        match e.into_inner().map(|p| p.downcast::<SourceError>()) {
            Some(Ok(inner)) => e = inner.0,
            // Unreachable given the check above; keep a valid error anyway.
            Some(Err(other)) => return io::Error::other(other),
            None => return io::Error::other("unknown I/O error"),
        }
    }
    e
}

/// Walks the error chain: a [`DecodeError`] anywhere means bad data; else a
/// [`SourceError`] means the reader failed; with neither, the tar parser
/// rejected the stream.
fn classify(e: &io::Error) -> Origin {
    let mut from_source = false;
    let mut cur: Option<&(dyn StdError + 'static)> = e.get_ref().map(|p| p as &(dyn StdError + 'static));
    while let Some(err) = cur {
        if err.is::<DecodeError>() {
            return Origin::Decoder;
        }
        if let Some(SourceError(inner)) = err.downcast_ref::<SourceError>() {
            from_source = true;
            cur = inner.get_ref().map(|p| p as &(dyn StdError + 'static));
            continue;
        }
        // `io::Error::source` skips its own payload, so step into it by hand.
        cur = match err.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|p| p as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    if from_source { Origin::Source } else { Origin::Decoder }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_errors() {
        let source = tag_source(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        let decode = io::Error::new(io::ErrorKind::InvalidData, DecodeError(io::Error::other("bad deflate")));
        let decode_in_source =
            tag_source(io::Error::new(io::ErrorKind::InvalidData, DecodeError(io::Error::other("bad deflate"))));
        let tar_wrapped = io::Error::other(SourceError(io::Error::other("eof")));
        let cases = [
            (source, Origin::Source),
            (decode, Origin::Decoder),
            (decode_in_source, Origin::Decoder),
            (tar_wrapped, Origin::Source),
            (io::Error::other("numeric field was not a number"), Origin::Decoder),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e}");
        }
        let e = Error::from_read(2, Some("x".into()), tag_source(io::Error::new(io::ErrorKind::TimedOut, "slow")));
        assert!(e.is_io());
        assert_eq!(e.to_string(), "layer 2: reading failed at entry `x`");
        let Error::Io { source, .. } = e else { panic!("expected Io") };
        assert_eq!(source.kind(), io::ErrorKind::TimedOut);
        assert!(source.get_ref().is_some_and(|p| !p.is::<SourceError>()), "untagged");
    }
}
