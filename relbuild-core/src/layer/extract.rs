//! Extracting the regular files below one directory of one or several
//! layers into memory, honouring whiteouts.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::ops::Bound;

use tar::EntryType;

use super::path::{self, Whiteout};
use super::{Error, tag_source};

/// Limits and choices for extraction. The defaults suit operator manifests
/// with a wide margin; the caps exist so a hostile layer cannot exhaust
/// memory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// Most entries kept, counting extracted files and skipped reports,
    /// over all layers (files later deleted by a whiteout still count).
    pub max_files: usize,
    /// Largest single file, in bytes.
    pub max_file_size: u64,
    /// Largest sum of extracted file sizes over all layers, in bytes.
    pub max_total_size: u64,
    /// Keep only files directly in the directory; files in its
    /// subdirectories are reported as skipped. `oc` uses only top-level files
    /// of an operator's `manifests/`.
    pub top_level_only: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self { max_files: 100_000, max_file_size: 64 << 20, max_total_size: 512 << 20, top_level_only: false }
    }
}

impl ExtractOptions {
    /// Sets [`max_files`](Self::max_files).
    pub fn max_files(mut self, limit: usize) -> Self {
        self.max_files = limit;
        self
    }

    /// Sets [`max_file_size`](Self::max_file_size).
    pub fn max_file_size(mut self, limit: u64) -> Self {
        self.max_file_size = limit;
        self
    }

    /// Sets [`max_total_size`](Self::max_total_size).
    pub fn max_total_size(mut self, limit: u64) -> Self {
        self.max_total_size = limit;
        self
    }

    /// Sets [`top_level_only`](Self::top_level_only).
    pub fn top_level_only(mut self, yes: bool) -> Self {
        self.top_level_only = yes;
        self
    }
}

/// A regular file taken from a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractedFile {
    /// Path relative to the extracted directory, cleaned, `/`-separated.
    pub path: String,
    /// The file content.
    pub data: Vec<u8>,
    /// Modification time in seconds since the Unix epoch (PAX `mtime`
    /// when present, fraction dropped; else the header's).
    pub mtime: i64,
    /// Permission bits from the header.
    pub mode: u32,
    /// Index of the layer it came from (lowest is 0).
    pub layer: usize,
}

/// The type of a tar entry that was not extracted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    Regular,
    /// A symbolic link.
    Symlink {
        /// Where it points, as written.
        target: String,
    },
    /// A hard link.
    Hardlink {
        /// The entry it links to, as written.
        target: String,
    },
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// Any other type flag.
    Other(u8),
}

/// Why an entry was not extracted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Only regular files are extracted (like `oc`'s filesOnly).
    NotRegularFile,
    /// The file is in a subdirectory and only top-level files were asked for.
    InSubdirectory,
    /// The entry name is not UTF-8.
    NonUtf8Path,
}

/// An entry below the extracted directory that was seen but not extracted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Path relative to the extracted directory (lossily decoded when not UTF-8).
    pub path: String,
    /// The entry type.
    pub kind: EntryKind,
    /// Why it was skipped.
    pub reason: SkipReason,
    /// Index of the layer it was in (lowest is 0).
    pub layer: usize,
}

/// The result of an extraction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The files, sorted by path.
    pub files: Vec<ExtractedFile>,
    /// Entries seen and not extracted, in reading order (whatever later
    /// layers did to them).
    pub skipped: Vec<Skipped>,
    /// True when some layer had an entry at or below the directory,
    /// whiteouts included: an empty directory is found, a missing one is not.
    pub found: bool,
}

impl Extracted {
    /// The file at `path` (relative to the extracted directory), if any.
    pub fn get(&self, path: &str) -> Option<&ExtractedFile> {
        self.files.binary_search_by(|f| f.path.as_str().cmp(path)).ok().map(|i| &self.files[i])
    }
}

/// Extracts one directory from layers added lowest first.
///
/// ```
/// # fn main() -> Result<(), relbuild_core::layer::Error> {
/// use relbuild_core::layer::{Compression, ExtractOptions, Extractor, open_layer};
/// # let lower: &[u8] = &[0; 1024];
/// # let upper: &[u8] = &[0; 1024];
/// let mut ex = Extractor::new("manifests/", ExtractOptions::default());
/// ex.add_layer(open_layer(lower, Compression::None)?)?;
/// ex.add_layer(open_layer(upper, Compression::None)?)?;
/// let extracted = ex.finish();
/// assert!(extracted.files.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Extractor {
    /// The directory, cleaned; empty for the whole layer.
    prefix: String,
    options: ExtractOptions,
    /// Files kept so far, keyed by their full cleaned path.
    held: BTreeMap<String, ExtractedFile>,
    skipped: Vec<Skipped>,
    next_layer: usize,
    kept: usize,
    total: u64,
    found: bool,
    /// Set when the last layer added deleted the directory or an ancestor
    /// (whiteout, opaque ancestor, or a non-directory replacing it).
    removed_in_last: bool,
}

impl Extractor {
    /// An extractor of the directory `prefix` (`manifests/`, `./manifests`
    /// and `/manifests` are the same; `""` is the whole layer).
    pub fn new(prefix: &str, options: ExtractOptions) -> Self {
        // A prefix that climbs out of the root matches nothing in a cleaned
        // tree; keep it unmatched rather than failing.
        let prefix = path::clean(prefix.as_bytes())
            .map(|p| String::from_utf8(p).expect("cleaning a str only removes ASCII bytes at `/` boundaries"))
            .unwrap_or_else(|| "\0".to_owned());
        Self {
            prefix,
            options,
            held: BTreeMap::new(),
            skipped: Vec::new(),
            next_layer: 0,
            kept: 0,
            total: 0,
            found: false,
            removed_in_last: false,
        }
    }

    /// Applies the next layer from its blob: decompressed as `compression`
    /// says (by magic bytes when `None`), then read to its very end (tar
    /// padding, gzip trailer), so that a verifying reader underneath has
    /// seen every byte and checked the digest.
    pub fn add_blob<R: Read>(&mut self, blob: R, compression: Option<super::Compression>) -> Result<(), Error> {
        let layer = self.next_layer;
        let mut tar = match compression {
            Some(c) => super::open_layer(blob, c)?,
            None => super::open_layer_detect(blob)?,
        };
        self.add_layer(&mut tar)?;
        io::copy(&mut tar, &mut io::sink()).map_err(|source| Error::Io { layer, entry: None, source })?;
        Ok(())
    }

    /// Applies the next layer (a tar stream, e.g. a [`LayerReader`](super::LayerReader))
    /// on top of those added before. Reads up to the tar end-of-archive
    /// marker; to verify the blob digest, drain the reader afterwards.
    ///
    /// On error the extractor holds a partial result and should be dropped.
    pub fn add_layer<R: Read>(&mut self, tar: R) -> Result<(), Error> {
        let layer = self.next_layer;
        self.next_layer += 1;
        self.removed_in_last = false;
        let mut archive = tar::Archive::new(Tagged(tar));
        let entries = archive.entries().map_err(|e| Error::from_read(layer, None, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::from_read(layer, None, e))?;
            self.add_entry(layer, entry)?;
        }
        Ok(())
    }

    fn add_entry<R: Read>(&mut self, layer: usize, mut entry: tar::Entry<'_, R>) -> Result<(), Error> {
        let raw = entry.path_bytes().into_owned();
        let Some(cleaned) = path::clean(&raw) else {
            return Err(Error::PathEscape { layer, entry: String::from_utf8_lossy(&raw).into_owned() });
        };
        let entry_type = entry.header().entry_type();
        let Ok(full) = String::from_utf8(cleaned) else {
            // Paths we keep are UTF-8; a non-UTF-8 name can neither be one
            // of them nor delete one. Report it if it is in our directory.
            let lossy = String::from_utf8_lossy(&raw);
            let cleaned = path::clean(lossy.as_bytes()).unwrap_or_default();
            let lossy = String::from_utf8_lossy(&cleaned);
            if let Some(rel) = self.relative(&lossy) {
                let kind = entry_kind(&entry, entry_type);
                self.skip(layer, rel.to_owned(), kind, SkipReason::NonUtf8Path)?;
            }
            return Ok(());
        };
        if full.is_empty() {
            // The root directory (`./`).
            return Ok(());
        }

        match path::whiteout(full.as_bytes()) {
            Whiteout::None => {}
            Whiteout::Ignored => {
                self.note_found(&full);
                return Ok(());
            }
            Whiteout::Path(target) => {
                self.note_found(&full);
                if let Ok(target) = String::from_utf8(target) {
                    self.remove_lower(layer, &target, true);
                }
                return Ok(());
            }
            Whiteout::Opaque(dir) => {
                self.note_found(&full);
                let dir = String::from_utf8_lossy(dir).into_owned();
                self.remove_lower(layer, &dir, false);
                return Ok(());
            }
        }

        let regular = is_regular(entry_type);
        if regular || entry_type == EntryType::Directory {
            self.replace_lower(layer, &full, regular);
        }
        let Some(rel) = self.relative(&full).map(str::to_owned) else {
            if full == self.prefix && entry_type == EntryType::Directory {
                self.found = true;
            }
            return Ok(());
        };
        self.found = true;
        if entry_type == EntryType::Directory {
            return Ok(());
        }
        if !regular {
            let kind = entry_kind(&entry, entry_type);
            return self.skip(layer, rel, kind, SkipReason::NotRegularFile);
        }
        if self.options.top_level_only && rel.contains('/') {
            return self.skip(layer, rel, EntryKind::Regular, SkipReason::InSubdirectory);
        }

        // Every cap is checked from the header, before reading the body.
        self.count(layer, &full)?;
        let size = entry.size();
        if size > self.options.max_file_size {
            return Err(Error::FileTooLarge { layer, entry: full, size, limit: self.options.max_file_size });
        }
        if self.total.saturating_add(size) > self.options.max_total_size {
            return Err(Error::TotalTooLarge { layer, entry: full, limit: self.options.max_total_size });
        }
        let mode = entry.header().mode().map_err(|e| Error::from_read(layer, Some(full.clone()), e))?;
        let mtime = mtime(&mut entry).map_err(|e| Error::from_read(layer, Some(full.clone()), e))?;
        let mut data = Vec::with_capacity(initial_capacity(size));
        entry.read_to_end(&mut data).map_err(|e| Error::from_read(layer, Some(full.clone()), e))?;
        self.total += size;
        self.held.insert(full, ExtractedFile { path: rel, data, mtime, mode, layer });
        Ok(())
    }

    /// The path relative to the prefix, for paths strictly below it.
    fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return Some(full);
        }
        full.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }

    /// Records that the directory exists in some layer when `full` is in it.
    fn note_found(&mut self, full: &str) {
        if path::is_within(full, &self.prefix) {
            self.found = true;
        }
    }

    fn count(&mut self, layer: usize, full: &str) -> Result<(), Error> {
        if self.kept >= self.options.max_files {
            return Err(Error::TooManyFiles { layer, entry: full.to_owned(), limit: self.options.max_files });
        }
        self.kept += 1;
        Ok(())
    }

    fn skip(&mut self, layer: usize, path: String, kind: EntryKind, reason: SkipReason) -> Result<(), Error> {
        self.count(layer, &path)?;
        self.skipped.push(Skipped { path, kind, reason, layer });
        Ok(())
    }

    /// Deletes files of lower layers below `target` (and `target` itself
    /// when `inclusive`): a whiteout or an opaque whiteout.
    fn remove_lower(&mut self, layer: usize, target: &str, inclusive: bool) {
        if path::is_within(&self.prefix, target) && (inclusive || self.prefix != target) {
            self.removed_in_last = true;
        }
        let doomed: Vec<String> = self
            .held
            .range::<str, _>((Bound::Included(target), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(target))
            .filter(|(k, h)| h.layer < layer && path::is_within(k, target) && (inclusive || k.as_str() != target))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.held.remove(&k);
        }
    }

    /// An entry of an upper layer replaces what lower layers had at its
    /// path: a file replaces a file or a whole directory, a directory
    /// replaces a file (and merges with a directory). Either also turns a
    /// lower file at an ancestor path into a directory.
    fn replace_lower(&mut self, layer: usize, full: &str, is_file: bool) {
        if !path::is_within(full, &self.prefix) && !path::is_within(&self.prefix, full) {
            // No file we hold can be at, above or below it.
            return;
        }
        if is_file {
            self.remove_lower(layer, full, true);
        } else if self.held.get(full).is_some_and(|h| h.layer < layer) {
            self.held.remove(full);
        }
        let mut ancestor = full;
        while let Some(i) = ancestor.rfind('/') {
            ancestor = &ancestor[..i];
            if self.held.get(ancestor).is_some_and(|h| h.layer < layer) {
                self.held.remove(ancestor);
            }
        }
    }

    /// The files and reports gathered so far.
    pub fn finish(self) -> Extracted {
        Extracted { files: self.held.into_values().collect(), skipped: self.skipped, found: self.found }
    }
}

/// Extracts the regular files below `prefix` from `layers`, given lowest
/// first as tar streams (e.g. [`LayerReader`](super::LayerReader)s).
pub fn extract_subtree<R: Read>(
    layers: impl IntoIterator<Item = R>,
    prefix: &str,
    options: &ExtractOptions,
) -> Result<Extracted, Error> {
    let mut ex = Extractor::new(prefix, options.clone());
    for layer in layers {
        ex.add_layer(layer)?;
    }
    Ok(ex.finish())
}

/// Looks for `prefix` from the top layer down and extracts it from the
/// highest layer that has it, alone: `oc adm release info` reads
/// `release-manifests/` from the top layer only, and this falls back to
/// lower layers when the top one lacks it.
///
/// `open(i)` opens layer `i` (lowest is 0) as a tar stream; it is called
/// for `layer_count - 1`, then lower indices, until a layer has the
/// directory. Returns `None` when no layer has it, or when a layer above the
/// first that has it deletes it with a whiteout.
pub fn extract_subtree_top_down<R, E, F>(
    layer_count: usize,
    mut open: F,
    prefix: &str,
    options: &ExtractOptions,
) -> Result<Option<Extracted>, E>
where
    R: Read,
    E: From<Error>,
    F: FnMut(usize) -> Result<R, E>,
{
    for layer in (0..layer_count).rev() {
        let mut ex = Extractor::new(prefix, options.clone());
        ex.next_layer = layer;
        ex.add_layer(open(layer)?)?;
        if ex.found {
            return Ok(Some(ex.finish()));
        }
        if ex.removed_in_last {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Reads one regular file from a single layer's tar stream, stopping at the
/// first entry with that (cleaned) path: the fast path for
/// `release-manifests/release-metadata`.
///
/// Returns `None` when the tar ends first, or when the first entry with
/// that path is not a regular file. Only
/// [`max_file_size`](ExtractOptions::max_file_size) of `options` applies.
/// An entry escaping the root before the match fails as in extraction.
pub fn read_file<R: Read>(tar: R, path: &str, options: &ExtractOptions) -> Result<Option<ExtractedFile>, Error> {
    const LAYER: usize = 0;
    let want = path::clean(path.as_bytes());
    let mut archive = tar::Archive::new(Tagged(tar));
    let entries = archive.entries().map_err(|e| Error::from_read(LAYER, None, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::from_read(LAYER, None, e))?;
        let raw = entry.path_bytes();
        let Some(cleaned) = path::clean(&raw) else {
            return Err(Error::PathEscape { layer: LAYER, entry: String::from_utf8_lossy(&raw).into_owned() });
        };
        if Some(&cleaned) != want.as_ref() {
            continue;
        }
        let full = String::from_utf8(cleaned).expect("equal to the cleaned form of a str");
        if !is_regular(entry.header().entry_type()) {
            return Ok(None);
        }
        let size = entry.size();
        if size > options.max_file_size {
            return Err(Error::FileTooLarge { layer: LAYER, entry: full, size, limit: options.max_file_size });
        }
        let mode = entry.header().mode().map_err(|e| Error::from_read(LAYER, Some(full.clone()), e))?;
        let mtime = mtime(&mut entry).map_err(|e| Error::from_read(LAYER, Some(full.clone()), e))?;
        let mut data = Vec::with_capacity(initial_capacity(size));
        entry.read_to_end(&mut data).map_err(|e| Error::from_read(LAYER, Some(full.clone()), e))?;
        return Ok(Some(ExtractedFile { path: full, data, mtime, mode, layer: LAYER }));
    }
    Ok(None)
}

/// Room to reserve for a body of `size` bytes: the header's word, up to
/// 1 MiB, so a header that lies about a large size costs no large allocation
/// before the body proves it.
fn initial_capacity(size: u64) -> usize {
    usize::try_from(size.min(1 << 20)).expect("1 MiB fits in usize")
}

/// Regular files, as Go's `archive/tar` reader sees them: `0`, the old
/// `\0`, contiguous files, and GNU sparse files (which tar-rs expands).
fn is_regular(t: EntryType) -> bool {
    matches!(t, EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse) || t.as_byte() == 0
}

fn entry_kind<R: Read>(entry: &tar::Entry<'_, R>, t: EntryType) -> EntryKind {
    let target = || entry.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    match t {
        t if is_regular(t) => EntryKind::Regular,
        EntryType::Symlink => EntryKind::Symlink { target: target() },
        EntryType::Link => EntryKind::Hardlink { target: target() },
        EntryType::Char => EntryKind::CharDevice,
        EntryType::Block => EntryKind::BlockDevice,
        EntryType::Fifo => EntryKind::Fifo,
        other => EntryKind::Other(other.as_byte()),
    }
}

/// The modification time: a PAX `mtime` record wins over the header field
/// (it can be negative, fractional or beyond the octal field); fractions
/// are dropped, as Go's time-to-seconds conversion does for positive times.
fn mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<i64> {
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            if ext.key_bytes() == b"mtime"
                && let Some(secs) = ext.value().ok().and_then(|v| v.split('.').next()?.parse::<i64>().ok())
            {
                return Ok(secs);
            }
        }
    }
    let secs = entry.header().mtime()?;
    Ok(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// The tar stream, with its errors tagged as the source's so that the tar
/// parser's own errors can be told apart (see [`super::classify`]).
struct Tagged<R>(R);

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(tag_source)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;

    use super::*;
    use crate::image::Compression;
    use crate::layer::{open_layer, open_layer_detect};

    /// An entry of a test tar. Names are written raw into the header, so
    /// tests can use names the tar crate refuses to write (`..`, leading `/`).
    #[derive(Clone, Copy)]
    pub(crate) enum T<'a> {
        File(&'a str, &'a str),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Fifo(&'a str),
        /// A regular file whose header claims `size` but which has no body.
        Lying(&'a str, u64),
        RawName(&'a [u8]),
    }

    pub(crate) const MTIME: u64 = 1_700_000_000;

    pub(crate) fn tar(entries: &[T<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_mtime(MTIME);
            let (name, kind, data, link): (&[u8], _, &[u8], Option<&str>) = match *e {
                T::File(n, d) => (n.as_bytes(), EntryType::Regular, d.as_bytes(), None),
                T::Dir(n) => (n.as_bytes(), EntryType::Directory, b"", None),
                T::Symlink(n, t) => (n.as_bytes(), EntryType::Symlink, b"", Some(t)),
                T::Hardlink(n, t) => (n.as_bytes(), EntryType::Link, b"", Some(t)),
                T::Fifo(n) => (n.as_bytes(), EntryType::Fifo, b"", None),
                T::Lying(n, size) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(size);
                    h.as_old_mut().name[..n.len()].copy_from_slice(n.as_bytes());
                    h.set_cksum();
                    // Header only: the body is missing.
                    b.get_mut().extend_from_slice(h.as_bytes());
                    continue;
                }
                T::RawName(n) => (n, EntryType::Regular, b"x", None),
            };
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            if let Some(link) = link {
                h.set_link_name(link).expect("short link name");
            }
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, data).expect("tar to memory");
        }
        b.into_inner().expect("tar to memory")
    }

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip to memory");
        e.finish().expect("gzip to memory")
    }

    fn extract(layers: &[&[T<'_>]], prefix: &str, options: &ExtractOptions) -> Result<Extracted, Error> {
        let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
        extract_subtree(tars.iter().map(|t| &t[..]), prefix, options)
    }

    /// `(path, layer, content)` of each extracted file.
    fn summary(x: &Extracted) -> Vec<(String, usize, String)> {
        x.files.iter().map(|f| (f.path.clone(), f.layer, String::from_utf8_lossy(&f.data).into_owned())).collect()
    }

    fn owned(v: &[(&str, usize, &str)]) -> Vec<(String, usize, String)> {
        v.iter().map(|(p, l, c)| ((*p).to_owned(), *l, (*c).to_owned())).collect()
    }

    #[test]
    fn names_are_cleaned_and_prefix_applies() {
        let layer = [
            T::Dir("./"),
            T::Dir("./manifests/"),
            T::File("./manifests/a.yaml", "a"),
            T::File("/manifests/b.yaml", "b"),
            T::File("manifests//c.yaml", "c"),
            T::File("manifests/./d.yaml", "d"),
            T::File("manifests/x/../e.yaml", "e"),
            T::File("manifests-x/no.yaml", "no"),
            T::File("manifests", "no"),
            T::File("other/no.yaml", "no"),
        ];
        for prefix in ["manifests", "manifests/", "./manifests/", "/manifests"] {
            let x = extract(&[&layer], prefix, &ExtractOptions::default()).expect("extracts");
            let want = owned(&[
                ("a.yaml", 0, "a"),
                ("b.yaml", 0, "b"),
                ("c.yaml", 0, "c"),
                ("d.yaml", 0, "d"),
                ("e.yaml", 0, "e"),
            ]);
            assert_eq!(summary(&x), want, "prefix {prefix}");
            assert!(x.found && x.skipped.is_empty(), "prefix {prefix}");
            assert_eq!(x.get("c.yaml").map(|f| &f.data[..]), Some(&b"c"[..]));
        }
    }

    #[test]
    fn metadata_is_kept() {
        let x = extract(&[&[T::File("m/a", "1")], &[T::File("m/b", "22")]], "m", &ExtractOptions::default())
            .expect("extracts");
        let b = x.get("b").expect("b is there");
        assert_eq!((b.mtime, b.mode, b.layer, &b.data[..]), (MTIME as i64, 0o644, 1, &b"22"[..]));
    }

    #[test]
    fn pax_mtime_wins() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("mtime", &b"-5.25"[..])]).expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_mtime(MTIME);
        h.set_mode(0o644);
        h.set_size(1);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, "m/a", &b"x"[..]).expect("tar");
        let t = b.into_inner().expect("tar");
        let x = extract_subtree([&t[..]], "m", &ExtractOptions::default()).expect("extracts");
        assert_eq!(x.files[0].mtime, -5);
    }

    #[test]
    fn whiteouts_across_layers() {
        type Case<'a> = (&'a str, &'a [&'a [T<'a>]], &'a [(&'a str, usize, &'a str)]);
        let cases: &[Case<'_>] = &[
            (
                "file whiteout",
                &[&[T::File("m/a", "a"), T::File("m/b", "b")], &[T::File("m/.wh.a", "")]],
                &[("b", 0, "b")],
            ),
            (
                "directory whiteout",
                &[
                    &[T::File("m/sub/x", "x"), T::File("m/sub/y", "y"), T::File("m/c", "c")],
                    &[T::File("m/.wh.sub", "")],
                ],
                &[("c", 0, "c")],
            ),
            (
                "opaque directory",
                &[
                    &[T::File("m/a", "a"), T::File("m/sub/b", "b")],
                    &[T::File("m/.wh..wh..opq", ""), T::File("m/c", "c")],
                ],
                &[("c", 1, "c")],
            ),
            (
                "opaque marker after same-layer files",
                &[&[T::File("m/a", "a")], &[T::File("m/c", "c"), T::File("m/.wh..wh..opq", "")]],
                &[("c", 1, "c")],
            ),
            (
                "opaque subdirectory only",
                &[&[T::File("m/a", "a"), T::File("m/sub/b", "b")], &[T::File("m/sub/.wh..wh..opq", "")]],
                &[("a", 0, "a")],
            ),
            (
                "whiteout of the directory itself, then recreated",
                &[&[T::File("m/a", "a")], &[T::File(".wh.m", "")], &[T::File("m/b", "b")]],
                &[("b", 2, "b")],
            ),
            ("opaque root", &[&[T::File("m/a", "a")], &[T::File(".wh..wh..opq", "")]], &[]),
            (
                "whiteout then re-added",
                &[&[T::File("m/a", "1")], &[T::File("m/.wh.a", "")], &[T::File("m/a", "3")]],
                &[("a", 2, "3")],
            ),
            ("metadata is ignored", &[&[T::File("m/a", "a")], &[T::File("m/.wh..wh.plnk", "")]], &[("a", 0, "a")]),
            ("upper file wins", &[&[T::File("m/a", "old")], &[T::File("m/a", "new")]], &[("a", 1, "new")]),
            ("file replaces directory", &[&[T::File("m/s/x", "x")], &[T::File("m/s", "s")]], &[("s", 1, "s")]),
            (
                "directory replaces file",
                &[&[T::File("m/s", "s")], &[T::Dir("m/s/"), T::File("m/s/x", "x")]],
                &[("s/x", 1, "x")],
            ),
            ("whiteout of a sibling", &[&[T::File("m/ab", "ab")], &[T::File("m/.wh.a", "")]], &[("ab", 0, "ab")]),
            (
                "skipped entries do not replace (filesOnly filters first)",
                &[&[T::File("m/a", "a")], &[T::Symlink("m/a", "/etc/passwd")]],
                &[("a", 0, "a")],
            ),
        ];
        for (name, layers, want) in cases {
            let x = extract(layers, "m", &ExtractOptions::default()).expect(name);
            assert_eq!(summary(&x), owned(want), "{name}");
            assert!(x.files.iter().all(|f| !f.path.contains(".wh.")), "{name}: no whiteout is output");
        }
    }

    #[test]
    fn escapes_are_rejected() {
        let cases = ["../etc/passwd", "m/../../x", "/../x", "elsewhere/../../x", "m/../.."];
        for name in cases {
            let layers: &[&[T<'_>]] = &[&[T::File("m/a", "a")], &[T::File("m/ok", "ok"), T::File(name, "evil")]];
            let Err(e) = extract(layers, "m", &ExtractOptions::default()) else { panic!("{name}: accepted") };
            let Error::PathEscape { layer, entry } = &e else { panic!("{name}: {e}") };
            assert_eq!((*layer, entry.as_str()), (1, name));
            assert_eq!(e.to_string(), format!("layer 1: entry `{name}` escapes the layer root"));
            assert!(e.is_corrupt());
        }
    }

    #[test]
    fn caps() {
        let three: &[T<'_>] = &[T::File("m/a", "123456"), T::File("m/b", "123456"), T::File("m/c", "1")];
        type Case<'a> = (&'a str, ExtractOptions, &'a [T<'a>], &'a str);
        let cases: &[Case<'_>] = &[
            (
                "count",
                ExtractOptions::default().max_files(2),
                three,
                "layer 0: entry `m/c` exceeds the limit of 2 files",
            ),
            (
                "count includes skipped",
                ExtractOptions::default().max_files(1),
                &[T::Symlink("m/l", "x"), T::File("m/a", "1")],
                "layer 0: entry `m/a` exceeds the limit of 1 files",
            ),
            (
                "size",
                ExtractOptions::default().max_file_size(5),
                three,
                "layer 0: entry `m/a` is 6 bytes, over the limit of 5 bytes per file",
            ),
            (
                "total",
                ExtractOptions::default().max_total_size(10),
                three,
                "layer 0: entry `m/b` brings the extracted total over the limit of 10 bytes",
            ),
            (
                "size checked before the body is read",
                ExtractOptions::default(),
                &[T::Lying("m/huge", 1 << 40)],
                "layer 0: entry `m/huge` is 1099511627776 bytes, over the limit of 67108864 bytes per file",
            ),
        ];
        for (name, options, layer, want) in cases {
            let Err(e) = extract(&[layer], "m", options) else { panic!("{name}: no cap hit") };
            assert!(e.is_limit_exceeded(), "{name}: {e}");
            assert_eq!(e.to_string(), *want, "{name}");
        }
        // Outside the directory nothing counts.
        let x = extract(&[three], "other", &ExtractOptions::default().max_files(0).max_total_size(0)).expect("no cap");
        assert!(x.files.is_empty() && !x.found);
    }

    #[test]
    fn non_files_are_reported() {
        let layer = [
            T::File("m/a", "a"),
            T::Symlink("m/link", "../etc/passwd"),
            T::Hardlink("m/hard", "m/a"),
            T::Fifo("m/fifo"),
            T::Dir("m/sub/"),
            T::File("m/sub/deep", "d"),
            T::RawName(b"m/bad-\xff"),
            T::Symlink("elsewhere/link", "x"),
        ];
        let x = extract(&[&layer], "m", &ExtractOptions::default().top_level_only(true)).expect("extracts");
        assert_eq!(summary(&x), owned(&[("a", 0, "a")]));
        let skipped: Vec<(&str, &EntryKind, SkipReason)> =
            x.skipped.iter().map(|s| (s.path.as_str(), &s.kind, s.reason)).collect();
        assert_eq!(
            skipped,
            [
                ("link", &EntryKind::Symlink { target: "../etc/passwd".into() }, SkipReason::NotRegularFile),
                ("hard", &EntryKind::Hardlink { target: "m/a".into() }, SkipReason::NotRegularFile),
                ("fifo", &EntryKind::Fifo, SkipReason::NotRegularFile),
                ("sub/deep", &EntryKind::Regular, SkipReason::InSubdirectory),
                ("bad-\u{fffd}", &EntryKind::Regular, SkipReason::NonUtf8Path),
            ]
        );
        let all = extract(&[&layer], "m", &ExtractOptions::default()).expect("extracts");
        assert!(all.get("sub/deep").is_some());
    }

    #[test]
    fn whole_layer_with_empty_prefix() {
        let x = extract(&[&[T::File("a", "a"), T::File("d/b", "b")]], "", &ExtractOptions::default()).expect("x");
        assert_eq!(summary(&x), owned(&[("a", 0, "a"), ("d/b", 0, "b")]));
    }

    /// Returns at most a random number of bytes per read, like tar-rs's
    /// `RandomReader`, from a seeded xorshift so failures reproduce.
    struct ShortReads<R> {
        inner: R,
        state: u64,
    }

    impl<R: Read> Read for ShortReads<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let n = (self.state % 37) as usize + 1;
            let n = n.min(buf.len());
            self.inner.read(&mut buf[..n])
        }
    }

    fn big_layer() -> Vec<u8> {
        let content: Vec<String> = (0..40).map(|i| format!("kind: ConfigMap # {i}\n").repeat(i * 7 + 1)).collect();
        let mut entries = vec![T::Dir("manifests/")];
        let names: Vec<String> = (0..40).map(|i| format!("manifests/{i:03}.yaml")).collect();
        for (n, c) in names.iter().zip(&content) {
            entries.push(T::File(n, c));
            entries.push(T::File("other/padding", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));
        }
        tar(&entries)
    }

    #[test]
    fn short_reads_do_not_matter() {
        let plain = big_layer();
        let want = extract_subtree([&plain[..]], "manifests", &ExtractOptions::default()).expect("extracts");
        assert_eq!(want.files.len(), 40);
        let gz = gzip(&plain);
        let zst = zstd::encode_all(&plain[..], 3).expect("zstd to memory");
        for seed in [1u64, 7, 42, 0xdead_beef, 1 << 40] {
            for blob in [&plain, &gz, &zst] {
                let r = open_layer_detect(ShortReads { inner: &blob[..], state: seed }).expect("opens");
                let got = extract_subtree([r], "manifests", &ExtractOptions::default()).expect("extracts");
                assert!(got == want, "seed {seed}: extraction differs under short reads");
            }
        }
    }

    #[test]
    fn compressions_and_detection() {
        let plain = big_layer();
        let want = extract_subtree([&plain[..]], "manifests", &ExtractOptions::default()).expect("extracts");
        // Two gzip members, split mid-entry, as some tools concatenate them.
        let mut multi = gzip(&plain[..1000]);
        multi.extend(gzip(&plain[1000..]));
        let zst = zstd::encode_all(&plain[..], 3).expect("zstd to memory");
        let cases: &[(&str, &[u8], Compression)] = &[
            ("plain", &plain, Compression::None),
            ("gzip", &gzip(&plain), Compression::Gzip),
            ("gzip, two members", &multi, Compression::Gzip),
            ("zstd", &zst, Compression::Zstd),
        ];
        for (name, blob, compression) in cases {
            let r = open_layer(*blob, *compression).expect(name);
            let got = extract_subtree([r], "manifests", &ExtractOptions::default()).expect(name);
            assert!(got == want, "{name}: differs");
            let r = open_layer_detect(*blob).expect(name);
            let got = extract_subtree([r], "manifests", &ExtractOptions::default()).expect(name);
            assert!(got == want, "{name}: differs when detected");
        }
    }

    #[test]
    fn corrupt_and_failing_input() {
        let plain = big_layer();
        let mut gz = gzip(&plain);
        let truncated = &gz[..gz.len() / 2].to_vec();
        let n = gz.len();
        gz[100..n - 8].iter_mut().for_each(|b| *b = b.wrapping_mul(31).wrapping_add(7));
        let mut bad_tar = plain.clone();
        bad_tar[148..156].copy_from_slice(b"garbage!"); // the header checksum
        let cases: &[(&str, &[u8], Compression)] = &[
            ("corrupt deflate", &gz, Compression::Gzip),
            ("truncated gzip", truncated, Compression::Gzip),
            ("bad tar header", &bad_tar, Compression::None),
            ("gzip said, plain given", &plain, Compression::Gzip),
        ];
        for (name, blob, compression) in cases {
            let r = open_layer(*blob, *compression).expect(name);
            let Err(e) = extract_subtree([r], "manifests", &ExtractOptions::default()) else {
                panic!("{name}: corrupt input must fail the extraction")
            };
            assert!(e.is_corrupt(), "{name}: {e:?}");
        }

        struct FailAfter<'a>(&'a [u8]);
        impl Read for FailAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer"));
                }
                self.0.read(buf)
            }
        }
        let gz = gzip(&plain);
        for (blob, compression) in
            [(&plain[..plain.len() / 2], Compression::None), (&gz[..gz.len() / 2], Compression::Gzip)]
        {
            let r = open_layer(FailAfter(blob), compression).expect("opens");
            let Err(e) = extract_subtree([r], "manifests", &ExtractOptions::default()) else {
                panic!("{compression:?}: a failing reader must fail the extraction")
            };
            let Error::Io { source, .. } = &e else { panic!("{compression:?}: {e:?}") };
            assert_eq!(source.kind(), io::ErrorKind::ConnectionReset, "{compression:?}");
            assert!(e.is_io());
        }
    }

    #[test]
    fn read_one_file_and_stop() {
        let mut t = tar(&[
            T::File("release-manifests/image-references", "{}"),
            T::File("./release-manifests/release-metadata", "{\"version\":\"4.1.0\"}"),
        ]);
        // Whatever follows the file is never read.
        t.truncate(t.len() - 1024);
        t.extend_from_slice(&[0xff; 700]);
        let options = ExtractOptions::default();
        let f = read_file(&t[..], "release-manifests/release-metadata", &options).expect("reads").expect("found");
        assert_eq!(
            (f.path.as_str(), &f.data[..]),
            ("release-manifests/release-metadata", &br#"{"version":"4.1.0"}"#[..])
        );
        let none = read_file(&tar(&[T::File("a", "a")])[..], "b", &options).expect("reads");
        assert!(none.is_none());
        let link = read_file(&tar(&[T::Symlink("a", "b"), T::File("b", "b")])[..], "a", &options).expect("reads");
        assert!(link.is_none());
        let e = read_file(&t[..], "release-manifests/release-metadata", &options.max_file_size(3)).expect_err("cap");
        assert!(e.is_limit_exceeded());
    }

    #[test]
    fn top_down() {
        let layers = [
            tar(&[T::File("release-manifests/a", "bottom")]),
            tar(&[T::File("release-manifests/a", "middle"), T::File("release-manifests/b", "b")]),
            tar(&[T::File("usr/bin/x", "top")]),
        ];
        let mut opened = Vec::new();
        let x = extract_subtree_top_down(
            layers.len(),
            |i| {
                opened.push(i);
                Ok::<_, Error>(&layers[i][..])
            },
            "release-manifests",
            &ExtractOptions::default(),
        )
        .expect("extracts")
        .expect("found");
        assert_eq!(opened, [2, 1]);
        assert_eq!(summary(&x), owned(&[("a", 1, "middle"), ("b", 1, "b")]));

        let deleted = [tar(&[T::File("release-manifests/a", "a")]), tar(&[T::File(".wh.release-manifests", "")])];
        let x = extract_subtree_top_down(
            2,
            |i| Ok::<_, Error>(&deleted[i][..]),
            "release-manifests",
            &ExtractOptions::default(),
        )
        .expect("extracts");
        assert_eq!(x, None);
        let x = extract_subtree_top_down(2, |i| Ok::<_, Error>(&deleted[i][..]), "nowhere", &ExtractOptions::default())
            .expect("extracts");
        assert_eq!(x, None);
    }
}
