//! [`Cache`]: the build's content-addressed cache of immutable inputs.
//!
//! What a build reads by digest never changes, so it can be kept between
//! builds: manifests and configs under their own digest, and each operator's
//! extracted `manifests/` under a key derived from the layer digests it came
//! from ([`ExtractKey`]). A rebuild after replacing one operator image then
//! fetches only that image.
//!
//! # Layout
//!
//! ```text
//! <dir>/blobs/sha256/<hex>        manifests and configs, named by their digest
//! <dir>/extracted/<key-hex>.tar   one extracted set: an uncompressed tar
//! <dir>/tmp/                      temp files, renamed into place when complete
//! ```
//!
//! Every entry is written to its own temp file and renamed over its final
//! name, so readers only ever see complete entries and concurrent builds
//! writing the same entry all succeed (equal names mean equal content; the
//! last rename wins). Blobs are verified against their digest on write and
//! re-hashed on read; an entry that fails to read back is removed and
//! reported as a miss, never as an error: the cache can always be rebuilt.
//!
//! An extracted set is a tar written with [`LayerWriter`] (no compression):
//! each file as `files/<path>` with its mode and mtime, then
//! `relbuild-cache.json`, which holds what a tar header cannot (the layer
//! index of each file, the skipped-entry reports, `found`) and a digest over
//! the file contents, so a damaged entry reads as a miss.
//!
//! A hit updates the entry's modification time (at most once an hour), which
//! [`Cache::prune`] uses as "last used", since many file systems do not
//! maintain access times.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::{Error, Result};
use crate::image::Digest;
use crate::layer::{
    self, Compression, EntryKind, ExtractOptions, Extracted, ExtractedFile, Extractor, LayerEntry, LayerWriter,
    SkipReason, Skipped, WriteOptions,
};

/// Bumped whenever the extracted-set encoding or the meaning of a key
/// changes; old entries then simply stop matching.
const EXTRACT_FORMAT_VERSION: u32 = 1;

/// The metadata entry of an extracted set (last in the tar).
const META_ENTRY: &str = "relbuild-cache.json";
/// The directory holding the extracted files inside an extracted set.
const FILES_DIR: &str = "files";

/// Temp files left behind by a crash are removed by [`Cache::prune`] once
/// they are this old (a running build's temp files are much younger).
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// A hit refreshes the entry's mtime only when it is older than this, so
/// warm builds do not write to every entry they read.
const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);

/// The build's content-addressed cache (`--cache-dir`). Cheap to clone;
/// safe to share between threads and between processes.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use relbuild_core::Digest;
/// use relbuild_core::store::Cache;
///
/// let tmp = tempfile::tempdir()?;
/// let cache = Cache::open(tmp.path())?;
/// let config = br#"{"architecture":"amd64"}"#;
/// let digest = Digest::sha256(config);
/// assert_eq!(cache.get_blob(&digest), None);
/// cache.put_blob(&digest, config)?;
/// assert_eq!(cache.get_blob(&digest).as_deref(), Some(&config[..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Cache {
    root: Arc<Path>,
}

/// The key of an extracted set: a sha256 over everything that determines
/// the [`Extracted`] value, namely the layer digests in order, the directory,
/// the options that change the result, and a format version.
///
/// Extract the same way you key: the layers named here, lowest first, each
/// added to one [`Extractor`] (so extracting only the top layer of an image
/// means a key over that one digest, and file layer indices of 0). Caps
/// ([`ExtractOptions::max_files`] and the sizes) are not part of the key:
/// they either fail the extraction or do not change it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExtractKey {
    hex: String,
}

impl ExtractKey {
    /// The key for extracting `prefix` (e.g. `manifests/`) from `layers`
    /// (blob digests, lowest first) with `options`.
    pub fn new<'a>(prefix: &str, layers: impl IntoIterator<Item = &'a Digest>, options: &ExtractOptions) -> Self {
        Self::with_context(prefix, layers, options, "")
    }

    /// Like [`new`](Self::new), with a caller-defined `context` string
    /// mixed in, for callers that post-process the set before caching it.
    pub fn with_context<'a>(
        prefix: &str,
        layers: impl IntoIterator<Item = &'a Digest>,
        options: &ExtractOptions,
        context: &str,
    ) -> Self {
        // Length-prefixed fields, so no two different inputs hash alike.
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"relbuild-extract");
        field(&EXTRACT_FORMAT_VERSION.to_le_bytes());
        field(prefix.trim_start_matches("./").trim_matches('/').as_bytes());
        field(&[u8::from(options.top_level_only)]);
        field(context.as_bytes());
        for layer in layers {
            field(layer.as_str().as_bytes());
        }
        Self { hex: hex::encode(h.finalize()) }
    }

    /// The key as 64 hex characters (the entry's file name).
    pub fn as_hex(&self) -> &str {
        &self.hex
    }
}

impl std::fmt::Display for ExtractKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex)
    }
}

impl std::fmt::Debug for ExtractKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtractKey({})", self.hex)
    }
}

/// What [`Cache::prune`] removes. With neither limit set, only stale temp
/// files are removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Remove entries not used (read or written) for this long.
    pub older_than: Option<Duration>,
    /// Then remove the least recently used entries until the cache holds at
    /// most this many bytes.
    pub max_size: Option<u64>,
}

impl PruneOptions {
    /// Sets [`older_than`](Self::older_than).
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = Some(age);
        self
    }

    /// Sets [`max_size`](Self::max_size).
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
}

/// What [`Cache::prune`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Entries removed (blobs and extracted sets).
    pub removed: u64,
    /// Stale temp files removed.
    pub temp_files_removed: u64,
    /// Bytes freed, temp files included.
    pub bytes_freed: u64,
    /// What is left.
    pub remaining: CacheStats,
}

/// How much the cache holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Number of cached blobs (manifests, configs).
    pub blobs: u64,
    /// Their total size in bytes.
    pub blob_bytes: u64,
    /// Number of cached extracted sets.
    pub extracted: u64,
    /// Their total size in bytes.
    pub extracted_bytes: u64,
}

impl CacheStats {
    /// Total bytes held by entries.
    pub fn total_bytes(&self) -> u64 {
        self.blob_bytes + self.extracted_bytes
    }

    /// Total number of entries.
    pub fn entries(&self) -> u64 {
        self.blobs + self.extracted
    }
}

/// One cache entry found on disk.
struct Entry {
    path: PathBuf,
    size: u64,
    last_used: SystemTime,
    is_blob: bool,
}

impl Cache {
    /// Opens the cache at `dir`, creating it and its subdirectories as needed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let cache = Self { root: Arc::from(dir.as_ref()) };
        for d in [cache.blobs_dir(), cache.extracted_dir(), cache.tmp_dir()] {
            fs::create_dir_all(&d).map_err(Error::io(&d))?;
        }
        Ok(cache)
    }

    /// The cache directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn extracted_dir(&self) -> PathBuf {
        self.root.join("extracted")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        if !digest.is_sha256() {
            return Err(Error::UnsupportedDigest { digest: digest.clone() });
        }
        // 64 hex characters by construction: cannot leave the directory.
        Ok(self.blobs_dir().join(digest.encoded()))
    }

    fn extracted_path(&self, key: &ExtractKey) -> PathBuf {
        self.extracted_dir().join(format!("{}.tar", key.hex))
    }

    // ---- blobs ----

    /// The blob `digest` (a manifest or config), if cached and intact. The
    /// content is re-hashed on every read (cached blobs are small); a
    /// corrupt entry is removed and reported as a miss.
    pub fn get_blob(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.blob_path(digest).ok()?;
        let bytes = hit(&path, fs::read(&path))?;
        if Digest::sha256(&bytes) != *digest {
            tracing::warn!(path = %path.display(), "corrupt cache blob removed");
            remove_quietly(&path);
            return None;
        }
        touch(&path);
        Some(bytes)
    }

    /// True when the blob `digest` is cached (not verified; use
    /// [`get_blob`](Self::get_blob) to read it).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Caches `bytes` as the blob `digest`. Refuses content whose sha256 is
    /// not `digest`, so nothing unverified is ever stored.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest)?;
        let found = Digest::sha256(bytes);
        crate::digest::verify(digest, None, &found, bytes.len() as u64)?;
        if fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64) {
            touch(&path);
            return Ok(());
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes).map_err(Error::io(tmp.path()))?;
        self.persist(tmp, &path)
    }

    // ---- extracted sets ----

    /// The extracted set stored under `key`, if cached and intact; a damaged
    /// entry is removed and reported as a miss.
    pub fn get_extracted(&self, key: &ExtractKey) -> Option<Extracted> {
        let path = self.extracted_path(key);
        let file = hit(&path, File::open(&path))?;
        match read_extracted(BufReader::new(file)) {
            Ok(extracted) => {
                touch(&path);
                Some(extracted)
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "corrupt cache entry removed");
                remove_quietly(&path);
                None
            }
        }
    }

    /// Stores `extracted` under `key`, replacing any entry there.
    pub fn put_extracted(&self, key: &ExtractKey, extracted: &Extracted) -> Result<()> {
        let path = self.extracted_path(key);
        let tmp = self.temp_file()?;
        let tmp_path = tmp.path().to_path_buf();
        let tmp = write_extracted(BufWriter::new(tmp), extracted).map_err(|source| match source {
            WriteError::Layer(source) => Error::WriteCacheEntry { path: tmp_path.clone(), source },
            WriteError::Json(source) => Error::Serialize { path: tmp_path.clone(), source },
        })?;
        let tmp = tmp.into_inner().map_err(|e| Error::Io { path: tmp_path, source: e.into_error() })?;
        self.persist(tmp, &path)
    }

    // ---- maintenance ----

    /// Counts the entries and their sizes.
    pub fn stats(&self) -> Result<CacheStats> {
        let mut stats = CacheStats::default();
        for e in self.entries()? {
            if e.is_blob {
                stats.blobs += 1;
                stats.blob_bytes += e.size;
            } else {
                stats.extracted += 1;
                stats.extracted_bytes += e.size;
            }
        }
        Ok(stats)
    }

    /// Total bytes held by entries.
    pub fn size(&self) -> Result<u64> {
        Ok(self.stats()?.total_bytes())
    }

    /// Removes entries by age, then by total size (least recently used
    /// first), and temp files that a crashed build left behind. Safe while
    /// builds run: a removed entry is just a miss for them.
    pub fn prune(&self, options: &PruneOptions) -> Result<PruneReport> {
        let now = SystemTime::now();
        let mut report = PruneReport::default();

        let tmp = self.tmp_dir();
        for dirent in fs::read_dir(&tmp).map_err(Error::io(&tmp))? {
            let dirent = dirent.map_err(Error::io(&tmp))?;
            let Ok(meta) = dirent.metadata() else { continue };
            let age = meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
            if meta.is_file() && age >= STALE_TEMP_AGE && fs::remove_file(dirent.path()).is_ok() {
                report.temp_files_removed += 1;
                report.bytes_freed += meta.len();
            }
        }

        let mut entries = self.entries()?;
        // Oldest first, so the size pass removes least recently used.
        entries.sort_by_key(|e| e.last_used);
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let cutoff = options.older_than.and_then(|age| now.checked_sub(age));
        let mut kept = CacheStats::default();
        for e in entries {
            let too_old = cutoff.is_some_and(|c| e.last_used < c);
            let too_big = options.max_size.is_some_and(|max| total > max);
            if too_old || too_big {
                match fs::remove_file(&e.path) {
                    Ok(()) => {
                        report.removed += 1;
                        report.bytes_freed += e.size;
                        total -= e.size;
                        continue;
                    }
                    // Removed by a concurrent prune.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        total -= e.size;
                        continue;
                    }
                    Err(source) => return Err(Error::Io { path: e.path, source }),
                }
            }
            if e.is_blob {
                kept.blobs += 1;
                kept.blob_bytes += e.size;
            } else {
                kept.extracted += 1;
                kept.extracted_bytes += e.size;
            }
        }
        report.remaining = kept;
        Ok(report)
    }

    /// Every entry, with its size and last use (the later of its access and
    /// modification times).
    fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for (dir, is_blob) in [(self.blobs_dir(), true), (self.extracted_dir(), false)] {
            let listing = match fs::read_dir(&dir) {
                Ok(l) => l,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::Io { path: dir, source }),
            };
            for dirent in listing {
                let dirent = dirent.map_err(Error::io(&dir))?;
                // Gone since the listing (a concurrent prune): skip.
                let Ok(meta) = dirent.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let accessed = meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(Entry { path: dirent.path(), size: meta.len(), last_used: modified.max(accessed), is_blob });
            }
        }
        Ok(out)
    }

    fn temp_file(&self) -> Result<NamedTempFile> {
        let dir = self.tmp_dir();
        tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir).map_err(Error::io(&dir))
    }

    /// Renames a complete temp file over `dest` (atomic; replaces).
    fn persist(&self, tmp: NamedTempFile, dest: &Path) -> Result<()> {
        tmp.persist(dest).map_err(|e| Error::Io { path: dest.to_path_buf(), source: e.error })?;
        Ok(())
    }
}

/// Best-effort removal of a corrupt entry; a concurrent writer may already
/// have replaced it, which is fine either way.
fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::debug!(path = %path.display(), error = %e, "could not remove corrupt cache entry");
    }
}

/// Marks an entry as used for [`Cache::prune`]; best effort.
fn touch(path: &Path) {
    let Ok(meta) = fs::metadata(path) else { return };
    let now = SystemTime::now();
    let stale = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_none_or(|age| age >= TOUCH_INTERVAL);
    if stale && let Ok(f) = File::options().append(true).open(path) {
        let _ignored = f.set_modified(now);
    }
}

// ---- the extracted-set encoding ----

/// What a tar header cannot hold, stored as the last entry.
#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    found: bool,
    /// Per file, in path order.
    files: Vec<FileMeta>,
    skipped: Vec<SkippedMeta>,
    /// sha256 over each file's path, length and bytes, in order.
    content: String,
}

#[derive(Serialize, Deserialize)]
struct FileMeta {
    path: String,
    layer: usize,
    /// The mtime when a tar header cannot carry it (negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtime: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct SkippedMeta {
    path: String,
    kind: KindMeta,
    reason: ReasonMeta,
    layer: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "target", rename_all = "kebab-case")]
enum KindMeta {
    Regular,
    Symlink(String),
    Hardlink(String),
    CharDevice,
    BlockDevice,
    Fifo,
    Other(u8),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ReasonMeta {
    NotRegularFile,
    InSubdirectory,
    NonUtf8Path,
}

impl From<&EntryKind> for KindMeta {
    fn from(k: &EntryKind) -> Self {
        match k {
            EntryKind::Regular => Self::Regular,
            EntryKind::Symlink { target } => Self::Symlink(target.clone()),
            EntryKind::Hardlink { target } => Self::Hardlink(target.clone()),
            EntryKind::CharDevice => Self::CharDevice,
            EntryKind::BlockDevice => Self::BlockDevice,
            EntryKind::Fifo => Self::Fifo,
            EntryKind::Other(b) => Self::Other(*b),
        }
    }
}

impl From<KindMeta> for EntryKind {
    fn from(k: KindMeta) -> Self {
        match k {
            KindMeta::Regular => Self::Regular,
            KindMeta::Symlink(target) => Self::Symlink { target },
            KindMeta::Hardlink(target) => Self::Hardlink { target },
            KindMeta::CharDevice => Self::CharDevice,
            KindMeta::BlockDevice => Self::BlockDevice,
            KindMeta::Fifo => Self::Fifo,
            KindMeta::Other(b) => Self::Other(b),
        }
    }
}

impl From<SkipReason> for ReasonMeta {
    fn from(r: SkipReason) -> Self {
        match r {
            SkipReason::NotRegularFile => Self::NotRegularFile,
            SkipReason::InSubdirectory => Self::InSubdirectory,
            SkipReason::NonUtf8Path => Self::NonUtf8Path,
        }
    }
}

impl From<ReasonMeta> for SkipReason {
    fn from(r: ReasonMeta) -> Self {
        match r {
            ReasonMeta::NotRegularFile => Self::NotRegularFile,
            ReasonMeta::InSubdirectory => Self::InSubdirectory,
            ReasonMeta::NonUtf8Path => Self::NonUtf8Path,
        }
    }
}

fn content_digest(files: &[ExtractedFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update((f.path.len() as u64).to_le_bytes());
        h.update(f.path.as_bytes());
        h.update((f.data.len() as u64).to_le_bytes());
        h.update(&f.data);
    }
    hex::encode(h.finalize())
}

enum WriteError {
    Layer(layer::Error),
    Json(serde_json::Error),
}

fn write_extracted<W: Write>(out: W, extracted: &Extracted) -> Result<W, WriteError> {
    let mut writer =
        LayerWriter::new(out, &WriteOptions::default().compression(Compression::None)).map_err(WriteError::Layer)?;
    let mut files = Vec::with_capacity(extracted.files.len());
    for f in &extracted.files {
        writer
            .append(&LayerEntry::file(format!("{FILES_DIR}/{}", f.path), f.mode, f.mtime.max(0), f.data.as_slice()))
            .map_err(WriteError::Layer)?;
        files.push(FileMeta { path: f.path.clone(), layer: f.layer, mtime: (f.mtime < 0).then_some(f.mtime) });
    }
    let meta = Meta {
        version: EXTRACT_FORMAT_VERSION,
        found: extracted.found,
        files,
        skipped: extracted
            .skipped
            .iter()
            .map(|s| SkippedMeta {
                path: s.path.clone(),
                kind: (&s.kind).into(),
                reason: s.reason.into(),
                layer: s.layer,
            })
            .collect(),
        content: content_digest(&extracted.files),
    };
    let json = serde_json::to_vec(&meta).map_err(WriteError::Json)?;
    writer.append(&LayerEntry::file(META_ENTRY, 0o644, 0, json)).map_err(WriteError::Layer)?;
    let (_, out) = writer.finish().map_err(WriteError::Layer)?;
    Ok(out)
}

/// Reads an extracted set back; the error is a short reason for the log.
fn read_extracted(tar: impl Read) -> Result<Extracted, &'static str> {
    // Our own file: the caps were applied when the set was first extracted.
    let options = ExtractOptions::default().max_files(usize::MAX).max_file_size(u64::MAX).max_total_size(u64::MAX);
    let mut ex = Extractor::new("", options);
    ex.add_layer(tar).map_err(|_| "unreadable tar")?;
    let mut all = ex.finish();
    let meta_at = all.files.iter().position(|f| f.path == META_ENTRY).ok_or("no metadata entry")?;
    let meta: Meta = serde_json::from_slice(&all.files.remove(meta_at).data).map_err(|_| "invalid metadata")?;
    if meta.version != EXTRACT_FORMAT_VERSION {
        return Err("unknown format version");
    }
    if !all.skipped.is_empty() || meta.files.len() != all.files.len() {
        return Err("entries do not match the metadata");
    }
    let prefix = format!("{FILES_DIR}/");
    let mut files = Vec::with_capacity(all.files.len());
    for (mut f, m) in all.files.into_iter().zip(meta.files) {
        let path = f.path.strip_prefix(&prefix).ok_or("unexpected entry")?;
        if path != m.path {
            return Err("entries do not match the metadata");
        }
        f.path = m.path;
        f.layer = m.layer;
        if let Some(mtime) = m.mtime {
            f.mtime = mtime;
        }
        files.push(f);
    }
    if content_digest(&files) != meta.content {
        return Err("content digest mismatch");
    }
    let skipped = meta
        .skipped
        .into_iter()
        .map(|s| Skipped { path: s.path, kind: s.kind.into(), reason: s.reason.into(), layer: s.layer })
        .collect();
    Ok(Extracted { files, skipped, found: meta.found })
}

/// A cache lookup's I/O result as a hit or a miss: a missing entry is an
/// ordinary miss; any other error is logged and also treated as a miss.
fn hit<T>(path: &Path, result: io::Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::debug!(path = %path.display(), error = %e, "cache entry unreadable; treated as a miss");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    fn sample() -> Extracted {
        Extracted {
            // Sorted by path, as an extraction returns them.
            files: vec![
                ExtractedFile {
                    path: "0000_50_a.yaml".into(),
                    data: b"kind: A\n".to_vec(),
                    mtime: 1_700_000_000,
                    mode: 0o644,
                    layer: 2,
                },
                ExtractedFile { path: "b/c.json".into(), data: vec![0, 1, 2, 255], mtime: -5, mode: 0o755, layer: 0 },
                ExtractedFile {
                    path: "image-references".into(),
                    data: b"{}".to_vec(),
                    mtime: 1,
                    mode: 0o664,
                    layer: 2,
                },
                ExtractedFile {
                    path: format!("{}.yaml", "long".repeat(60)),
                    data: Vec::new(),
                    mtime: 0,
                    mode: 0o400,
                    layer: 1,
                },
            ],
            skipped: vec![
                Skipped {
                    path: "link".into(),
                    kind: EntryKind::Symlink { target: "../x".into() },
                    reason: SkipReason::NotRegularFile,
                    layer: 1,
                },
                Skipped {
                    path: "sub/f".into(),
                    kind: EntryKind::Regular,
                    reason: SkipReason::InSubdirectory,
                    layer: 0,
                },
                Skipped { path: "dev".into(), kind: EntryKind::Other(b'Z'), reason: SkipReason::NonUtf8Path, layer: 3 },
            ],
            found: true,
        }
    }

    fn key(n: u8) -> ExtractKey {
        ExtractKey::new("manifests/", [&Digest::sha256(&[n])], &ExtractOptions::default())
    }

    fn temp_files(cache: &Cache) -> usize {
        fs::read_dir(cache.tmp_dir()).expect("tmp dir").count()
    }

    fn age(path: &Path, by: Duration) {
        let f = File::options().append(true).open(path).expect("open entry");
        let t = SystemTime::now() - by;
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t)).expect("set times");
    }

    #[test]
    fn blob_round_trip_and_mismatch() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path().join("c")).expect("open");
        let bytes = br#"{"schemaVersion":2}"#;
        let d = Digest::sha256(bytes);
        assert_eq!(cache.get_blob(&d), None);
        cache.put_blob(&d, bytes).expect("put");
        cache.put_blob(&d, bytes).expect("put again");
        assert_eq!(cache.get_blob(&d).as_deref(), Some(&bytes[..]));
        assert!(cache.has_blob(&d));

        let other = Digest::sha256(b"other");
        let e = cache.put_blob(&other, bytes).expect_err("mismatch refused");
        assert!(e.is_corrupt(), "{e}");
        assert!(!cache.has_blob(&other));

        let sha512: Digest = format!("sha512:{}", "ab".repeat(64)).parse().expect("digest");
        assert!(matches!(cache.put_blob(&sha512, bytes), Err(Error::UnsupportedDigest { .. })));
        assert_eq!(cache.get_blob(&sha512), None);
        assert_eq!(temp_files(&cache), 0);
        assert_eq!(cache.stats().expect("stats").blobs, 1);
        assert_eq!(cache.size().expect("size"), bytes.len() as u64);
    }

    #[test]
    fn corrupt_blob_is_a_miss_and_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let bytes = b"config";
        let d = Digest::sha256(bytes);
        cache.put_blob(&d, bytes).expect("put");
        let path = cache.blob_path(&d).expect("path");
        for damage in [&b"cOnfig"[..], b"conf", b""] {
            fs::write(&path, damage).expect("damage");
            assert_eq!(cache.get_blob(&d), None);
            assert!(!path.exists(), "corrupt entry removed");
            cache.put_blob(&d, bytes).expect("put again");
            assert_eq!(cache.get_blob(&d).as_deref(), Some(&bytes[..]));
        }
    }

    #[test]
    fn extracted_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let set = sample();
        assert_eq!(cache.get_extracted(&key(1)), None);
        cache.put_extracted(&key(1), &set).expect("put");
        assert_eq!(cache.get_extracted(&key(1)), Some(set));
        let empty = Extracted::default();
        cache.put_extracted(&key(2), &empty).expect("put empty");
        assert_eq!(cache.get_extracted(&key(2)), Some(empty));
        assert_eq!(temp_files(&cache), 0);
        let stats = cache.stats().expect("stats");
        assert_eq!((stats.blobs, stats.extracted), (0, 2));
    }

    #[test]
    fn extracted_from_a_real_layer_round_trips() {
        let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).expect("writer");
        w.append_all(&[
            LayerEntry::dir("manifests", 0o755, 10),
            LayerEntry::file("manifests/a.yaml", 0o640, 1_600_000_000, b"a: 1\n".to_vec()),
            LayerEntry::file("manifests/sub/b.yaml", 0o644, 7, b"b".to_vec()),
            LayerEntry::symlink("manifests/l", "a.yaml", 3),
        ])
        .expect("entries");
        let (_, gz) = w.finish().expect("finish");
        let opts = ExtractOptions::default().top_level_only(true);
        let mut ex = Extractor::new("manifests/", opts.clone());
        ex.add_layer(layer::open_layer(&gz[..], Compression::Gzip).expect("open")).expect("extract");
        let set = ex.finish();
        assert_eq!((set.files.len(), set.skipped.len()), (1, 2));

        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let k = ExtractKey::new("manifests/", [&Digest::sha256(&gz)], &opts);
        cache.put_extracted(&k, &set).expect("put");
        assert_eq!(cache.get_extracted(&k), Some(set));
    }

    #[test]
    fn keys_separate_what_changes_the_result() {
        let (a, b) = (Digest::sha256(b"a"), Digest::sha256(b"b"));
        let d = ExtractOptions::default();
        let base = ExtractKey::new("manifests/", [&a, &b], &d);
        assert_eq!(base, ExtractKey::new("/manifests", [&a, &b], &d), "prefix spelling");
        assert_eq!(base, ExtractKey::new("manifests", [&a, &b], &d.clone().max_files(3)), "caps do not count");
        for other in [
            ExtractKey::new("manifests/", [&b, &a], &d),
            ExtractKey::new("manifests/", [&b], &d),
            ExtractKey::new("release-manifests/", [&a, &b], &d),
            ExtractKey::new("manifests/", [&a, &b], &d.clone().top_level_only(true)),
            ExtractKey::with_context("manifests/", [&a, &b], &d, "x"),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(base.as_hex().len(), 64);
    }

    #[test]
    fn damaged_extracted_entry_is_a_miss_and_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let set = sample();
        let path = cache.extracted_path(&key(1));
        let damages: [fn(Vec<u8>) -> Vec<u8>; 4] = [
            |mut b| {
                // A byte of file content flipped (header checksums do not cover it).
                let at = b.windows(7).position(|w| w == b"kind: A").expect("content");
                b[at] ^= 0x20;
                b
            },
            |b| b[..b.len() / 2].to_vec(),
            |b| b[..1024].to_vec(),
            |_| b"garbage".to_vec(),
        ];
        for damage in damages {
            cache.put_extracted(&key(1), &set).expect("put");
            let bytes = fs::read(&path).expect("read");
            fs::write(&path, damage(bytes)).expect("damage");
            assert_eq!(cache.get_extracted(&key(1)), None);
            assert!(!path.exists(), "damaged entry removed");
        }
    }

    #[test]
    fn concurrent_writers_of_one_key() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let set = sample();
        let bytes = b"manifest".repeat(10_000);
        let d = Digest::sha256(&bytes);
        let threads = 8;
        let barrier = Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..20 {
                        cache.put_blob(&d, &bytes).expect("put blob");
                        cache.put_extracted(&key(1), &set).expect("put extracted");
                        assert_eq!(cache.get_extracted(&key(1)).as_ref(), Some(&set));
                        assert_eq!(cache.get_blob(&d).as_deref(), Some(&bytes[..]));
                    }
                });
            }
        });
        let stats = cache.stats().expect("stats");
        assert_eq!((stats.blobs, stats.extracted), (1, 1));
        assert_eq!(temp_files(&cache), 0);
    }

    #[test]
    fn prune_by_age_and_size() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let blobs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100]).collect();
        for (i, b) in blobs.iter().enumerate() {
            let d = Digest::sha256(b);
            cache.put_blob(&d, b).expect("put");
            // Blob i was last used (4 - i) days ago.
            age(&cache.blob_path(&d).expect("path"), Duration::from_secs(86_400 * (4 - i as u64)));
        }
        cache.put_extracted(&key(1), &sample()).expect("put");
        let stale = cache.tmp_dir().join(".tmp-crashed");
        fs::write(&stale, b"half").expect("stale temp");
        age(&stale, STALE_TEMP_AGE * 2);
        let fresh = cache.tmp_dir().join(".tmp-running");
        fs::write(&fresh, b"writing").expect("fresh temp");

        // Nothing asked: only the stale temp file goes.
        let r = cache.prune(&PruneOptions::default()).expect("prune");
        assert_eq!((r.removed, r.temp_files_removed, r.bytes_freed), (0, 1, 4));
        assert!(!stale.exists() && fresh.exists());

        // Older than 2.5 days: blobs 0 and 1.
        let r = cache.prune(&PruneOptions::default().older_than(Duration::from_secs(86_400 * 5 / 2))).expect("prune");
        assert_eq!((r.removed, r.bytes_freed), (2, 200));
        assert_eq!(r.remaining.blobs, 2);
        assert_eq!(cache.get_blob(&Digest::sha256(&blobs[0])), None);
        assert!(cache.get_blob(&Digest::sha256(&blobs[3])).is_some());

        // Size: the least recently used blob (2) goes first, then blob 3
        // (just read, so touched) survives with the extracted set.
        let extracted = cache.stats().expect("stats").extracted_bytes;
        let r = cache.prune(&PruneOptions::default().max_size(extracted + 100)).expect("prune");
        assert_eq!((r.removed, r.remaining.blobs, r.remaining.extracted), (1, 1, 1));
        assert!(cache.has_blob(&Digest::sha256(&blobs[3])));
        assert!(r.remaining.total_bytes() <= extracted + 100);

        let r = cache.prune(&PruneOptions::default().max_size(0)).expect("prune");
        assert_eq!(r.remaining, CacheStats::default());
        assert_eq!(cache.size().expect("size"), 0);
        assert!(fresh.exists(), "a running build's temp file is kept");
    }
}
