//! [`Cache`]: the build's content-addressed cache of immutable inputs.
//!
//! What a build reads by digest never changes, so it can be kept between
//! builds: manifests and configs under their own digest, each operator's
//! extracted `manifests/` under a key derived from the layer digests it came
//! from ([`ExtractKey`]), and small derived results (a check that passed)
//! under a key over their inputs ([`RecordKey`]). A rebuild after replacing
//! one operator image then fetches only that image.
//!
//! # Layout: packs
//!
//! ```text
//! <dir>/packs/<id>.pack   entries, back to back
//! <dir>/packs/<id>.idx    the pack's index: kind, key, offset, length, sha256 of each entry
//! <dir>/tmp/              the pack being written, and index temp files
//! ```
//!
//! A temp file is locked (`flock`) by the process writing it for as long
//! as it is open. One that nobody holds belongs to a build that died
//! (killed, or a crash) and is removed by [`Cache::prune`] and by the next
//! [`Cache::open`]; the CLI also removes its own on SIGINT and SIGTERM.
//!
//! A build appends what it fetched to one pack of its own, and publishes it
//! on [`Cache::flush`] (also run on drop): the pack is renamed into place
//! first, then its index, so a reader that sees an index always finds its
//! pack complete. One build therefore creates three files, not one per
//! entry: creating a file costs far more than writing a few KiB on many
//! file systems (about 0.2 ms on the benchmark machine's ext4, which made a
//! cold build spend half a second of system time creating ~1,000 entries).
//!
//! Concurrent builds write separate packs, so they never contend; the same
//! entry in two packs is harmless (equal keys mean equal content). Every
//! entry is verified against the sha256 in its index on every read; one
//! that fails is reported as a miss, never as an error: the cache can always
//! be rebuilt. [`Cache::open`] reads all indexes, so lookups are in memory.
//!
//! An extracted set is a tar written with [`LayerWriter`] (no compression):
//! each file as `files/<path>` with its mode and mtime, then
//! `relbuild-cache.json`, which holds what a tar header cannot (the layer
//! index of each file, the skipped-entry reports, `found`) and a digest over
//! the file contents.
//!
//! A hit refreshes its pack index's modification time (at most once an
//! hour), which [`Cache::prune`] uses as "last used". Pruning works on whole
//! packs.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
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

/// The first line of a pack index.
const INDEX_HEADER: &str = "relbuild-pack-index 1";

/// Index-less packs left behind by a crash (between the two renames of a
/// flush) are removed by [`Cache::prune`] once they are this old.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// A temp file in `tmp/` that no process holds locked is a dead build's,
/// and is removed once it is this old: the margin covers the moment
/// between a temp file's creation and its lock.
const TEMP_GRACE: Duration = Duration::from_secs(60);
/// A hit refreshes its pack's mtime only when it is older than this, so
/// warm builds do not write on every read.
const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);

/// The build's content-addressed cache (`--cache-dir`). Cheap to clone (the
/// clones share one pack being written); safe to share between threads and
/// between processes.
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
/// cache.flush()?; // publish the pack for other processes
/// assert_eq!(Cache::open(tmp.path())?.get_blob(&digest).as_deref(), Some(&config[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("root", &self.inner.root).finish_non_exhaustive()
    }
}

struct Inner {
    root: PathBuf,
    /// Every entry this process can read: published packs found at open,
    /// and the pack it is writing.
    index: RwLock<HashMap<EntryId, Location>>,
    packs: RwLock<Vec<Arc<Pack>>>,
    writer: Mutex<Option<PackWriter>>,
}

/// What an entry is, which is part of its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// A manifest or config, keyed by its own sha256.
    Blob,
    /// An extracted set, keyed by an [`ExtractKey`].
    Extracted,
    /// A derived result, keyed by a [`RecordKey`].
    Record,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Self::Blob => 'b',
            Self::Extracted => 'x',
            Self::Record => 'r',
        }
    }

    fn from_letter(s: &str) -> Option<Self> {
        match s {
            "b" => Some(Self::Blob),
            "x" => Some(Self::Extracted),
            "r" => Some(Self::Record),
            _ => None,
        }
    }
}

type EntryId = (Kind, [u8; 32]);

#[derive(Clone, Copy)]
struct Location {
    pack: usize,
    offset: u64,
    len: u64,
    sha256: [u8; 32],
}

/// A pack this process reads from.
struct Pack {
    file: File,
    /// The published index (`None` while this process is still writing it).
    index_path: RwLock<Option<PathBuf>>,
    touched: AtomicBool,
}

/// The pack this process is writing.
struct PackWriter {
    tmp: NamedTempFile,
    pack: usize,
    offset: u64,
    entries: Vec<(EntryId, u64, u64, [u8; 32])>,
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
        let mut h = KeyHasher::new("relbuild-extract");
        h.field(&EXTRACT_FORMAT_VERSION.to_le_bytes());
        h.field(prefix.trim_start_matches("./").trim_matches('/').as_bytes());
        h.field(&[u8::from(options.top_level_only)]);
        h.field(context.as_bytes());
        for layer in layers {
            h.field(layer.as_str().as_bytes());
        }
        Self { hex: hex::encode(h.finish()) }
    }

    /// The key as 64 hex characters.
    pub fn as_hex(&self) -> &str {
        &self.hex
    }

    fn bytes(&self) -> [u8; 32] {
        let mut out = [0; 32];
        hex::decode_to_slice(&self.hex, &mut out).expect("because the key is 64 hex characters by construction");
        out
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

/// The key of a record: a sha256 over a namespace (what the record is, with
/// a version, e.g. `manifest-check/1`) and every input that determines it.
///
/// ```
/// use relbuild_core::store::RecordKey;
///
/// let a = RecordKey::builder("lint/1").field(b"a.yaml").field(b"kind: A\n").finish();
/// let b = RecordKey::builder("lint/1").field(b"a.yaml").field(b"kind: B\n").finish();
/// assert_ne!(a, b);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordKey([u8; 32]);

impl RecordKey {
    /// Starts a key in `namespace`.
    pub fn builder(namespace: &str) -> RecordKeyBuilder {
        RecordKeyBuilder(KeyHasher::new(namespace))
    }

    /// The key of a result derived from a set of named files by this
    /// version of relbuild: `namespace`, the crate version, then each
    /// file's name and bytes in order.
    pub fn of_files<'a>(namespace: &str, files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut key = Self::builder(namespace);
        key.add(env!("CARGO_PKG_VERSION").as_bytes());
        for (name, bytes) in files {
            key.add(name.as_bytes());
            key.add(bytes);
        }
        key.finish()
    }
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordKey({})", hex::encode(self.0))
    }
}

/// Builds a [`RecordKey`] field by field.
pub struct RecordKeyBuilder(KeyHasher);

impl std::fmt::Debug for RecordKeyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKeyBuilder")
    }
}

impl RecordKeyBuilder {
    /// Adds one input (length-prefixed, so no two field lists hash alike).
    pub fn field(mut self, bytes: &[u8]) -> Self {
        self.0.field(bytes);
        self
    }

    /// Adds one input in place.
    pub fn add(&mut self, bytes: &[u8]) {
        self.0.field(bytes);
    }

    /// The key.
    pub fn finish(self) -> RecordKey {
        RecordKey(self.0.finish())
    }
}

/// sha256 over length-prefixed fields.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn new(namespace: &str) -> Self {
        let mut h = Self(Sha256::new());
        h.field(namespace.as_bytes());
        h
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// What [`Cache::prune`] removes. With neither limit set, only stale temp
/// files are removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Remove packs not used (read or written) for this long.
    pub older_than: Option<Duration>,
    /// Then remove the least recently used packs until the cache holds at
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
    /// Entries removed (in the packs removed).
    pub removed: u64,
    /// Packs removed.
    pub packs_removed: u64,
    /// Stale temp files removed.
    pub temp_files_removed: u64,
    /// Bytes freed, temp files included.
    pub bytes_freed: u64,
    /// What is left.
    pub remaining: CacheStats,
}

/// How much the cache holds (published packs; an entry in two packs counts twice).
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
    /// Number of records.
    pub records: u64,
    /// Their total size in bytes.
    pub record_bytes: u64,
    /// Number of packs.
    pub packs: u64,
}

impl CacheStats {
    /// Total bytes held by entries.
    pub fn total_bytes(&self) -> u64 {
        self.blob_bytes + self.extracted_bytes + self.record_bytes
    }

    /// Total number of entries.
    pub fn entries(&self) -> u64 {
        self.blobs + self.extracted + self.records
    }

    fn add(&mut self, kind: Kind, len: u64) {
        match kind {
            Kind::Blob => (self.blobs += 1, self.blob_bytes += len),
            Kind::Extracted => (self.extracted += 1, self.extracted_bytes += len),
            Kind::Record => (self.records += 1, self.record_bytes += len),
        };
    }
}

/// One published pack found on disk.
struct PackOnDisk {
    id: String,
    index_path: PathBuf,
    pack_path: PathBuf,
    /// Pack plus index, in bytes.
    size: u64,
    last_used: SystemTime,
    entries: Vec<IndexLine>,
}

struct IndexLine {
    id: EntryId,
    offset: u64,
    len: u64,
    sha256: [u8; 32],
}

impl Cache {
    /// Opens the cache at `dir`, creating it and its subdirectories as
    /// needed, and reads every pack index.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        for d in [root.join("packs"), root.join("tmp")] {
            fs::create_dir_all(&d).map_err(Error::io(&d))?;
        }
        let inner = Inner {
            root,
            index: RwLock::new(HashMap::new()),
            packs: RwLock::new(Vec::new()),
            writer: Mutex::new(None),
        };
        let cache = Self { inner: Arc::new(inner) };
        // What a killed build left; best effort, prune reports it.
        let _ignored = cache.remove_abandoned_temps();
        for found in cache.packs_on_disk()? {
            // Gone since the listing (a concurrent prune): just not loaded.
            let Ok(file) = File::open(&found.pack_path) else { continue };
            let Ok(pack_len) = file.metadata().map(|m| m.len()) else { continue };
            let pack = cache.add_pack(Pack {
                file,
                index_path: RwLock::new(Some(found.index_path)),
                touched: AtomicBool::new(false),
            });
            let mut index = write_lock(&cache.inner.index);
            for e in found.entries {
                if e.offset.checked_add(e.len).is_some_and(|end| end <= pack_len) {
                    index.insert(e.id, Location { pack, offset: e.offset, len: e.len, sha256: e.sha256 });
                }
            }
        }
        Ok(cache)
    }

    /// The cache directory.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    fn packs_dir(&self) -> PathBuf {
        self.inner.root.join("packs")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.inner.root.join("tmp")
    }

    fn add_pack(&self, pack: Pack) -> usize {
        let mut packs = write_lock(&self.inner.packs);
        packs.push(Arc::new(pack));
        packs.len() - 1
    }

    // ---- blobs ----

    /// The blob `digest` (a manifest or config), if cached and intact.
    pub fn get_blob(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.get((Kind::Blob, blob_key(digest)?))
    }

    /// True when the blob `digest` is cached (not verified; use
    /// [`get_blob`](Self::get_blob) to read it).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        blob_key(digest).is_some_and(|k| read_lock(&self.inner.index).contains_key(&(Kind::Blob, k)))
    }

    /// Caches `bytes` as the blob `digest`. Refuses content whose sha256 is
    /// not `digest`, so nothing unverified is ever stored.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let key = blob_key(digest).ok_or_else(|| Error::UnsupportedDigest { digest: digest.clone() })?;
        let found = Digest::sha256(bytes);
        crate::digest::verify(digest, None, &found, bytes.len() as u64)?;
        // Verified: the key is the content's sha256, which the index records.
        self.put_hashed((Kind::Blob, key), bytes, key)
    }

    // ---- extracted sets ----

    /// The extracted set stored under `key`, if cached and intact.
    pub fn get_extracted(&self, key: &ExtractKey) -> Option<Extracted> {
        let bytes = self.get((Kind::Extracted, key.bytes()))?;
        match read_extracted(&bytes[..]) {
            Ok(extracted) => Some(extracted),
            Err(reason) => {
                tracing::warn!(%key, reason, "unreadable extracted set in the cache; treated as a miss");
                None
            }
        }
    }

    /// Stores `extracted` under `key`.
    pub fn put_extracted(&self, key: &ExtractKey, extracted: &Extracted) -> Result<()> {
        let id = (Kind::Extracted, key.bytes());
        if read_lock(&self.inner.index).contains_key(&id) {
            return Ok(());
        }
        let bytes = write_extracted(Vec::new(), extracted).map_err(|source| match source {
            WriteError::Layer(source) => Error::WriteCacheEntry { path: self.path().to_path_buf(), source },
            WriteError::Json(source) => Error::Serialize { path: self.path().to_path_buf(), source },
        })?;
        self.put(id, &bytes)
    }

    // ---- records ----

    /// The record stored under `key`, if cached and intact.
    pub fn get_record(&self, key: &RecordKey) -> Option<Vec<u8>> {
        self.get((Kind::Record, key.0))
    }

    /// Stores `value` under `key`. Records are derived from their key's
    /// inputs, so an existing record under the same key is kept.
    pub fn put_record(&self, key: &RecordKey, value: &[u8]) -> Result<()> {
        self.put((Kind::Record, key.0), value)
    }

    // ---- the packs ----

    fn get(&self, id: EntryId) -> Option<Vec<u8>> {
        let loc = *read_lock(&self.inner.index).get(&id)?;
        let pack = read_lock(&self.inner.packs).get(loc.pack).cloned()?;
        let mut buf = vec![0; usize::try_from(loc.len).ok()?];
        let ok = match pack.file.read_exact_at(&mut buf, loc.offset) {
            Ok(()) => <[u8; 32]>::from(Sha256::digest(&buf)) == loc.sha256,
            Err(e) => {
                tracing::debug!(error = %e, "cache pack unreadable; treated as a miss");
                false
            }
        };
        if !ok {
            tracing::warn!(kind = ?id.0, key = %hex::encode(id.1), "damaged cache entry; treated as a miss");
            write_lock(&self.inner.index).remove(&id);
            return None;
        }
        if !pack.touched.swap(true, Ordering::Relaxed)
            && let Some(path) = read_lock(&pack.index_path).as_deref()
        {
            touch(path);
        }
        Some(buf)
    }

    fn put(&self, id: EntryId, bytes: &[u8]) -> Result<()> {
        if read_lock(&self.inner.index).contains_key(&id) {
            return Ok(());
        }
        self.put_hashed(id, bytes, Sha256::digest(bytes).into())
    }

    /// [`put`](Self::put) of content whose sha256 the caller already has.
    fn put_hashed(&self, id: EntryId, bytes: &[u8], sha256: [u8; 32]) -> Result<()> {
        if read_lock(&self.inner.index).contains_key(&id) {
            return Ok(());
        }
        let mut writer = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.is_none() {
            let dir = self.tmp_dir();
            let tmp = locked_temp(&dir, ".pack-")?;
            let file = tmp.reopen().map_err(Error::io(tmp.path()))?;
            let pack = self.add_pack(Pack { file, index_path: RwLock::new(None), touched: AtomicBool::new(true) });
            *writer = Some(PackWriter { tmp, pack, offset: 0, entries: Vec::new() });
        }
        let w = writer.as_mut().expect("because it was just set");
        w.tmp.as_file().write_all_at(bytes, w.offset).map_err(Error::io(w.tmp.path()))?;
        let loc = Location { pack: w.pack, offset: w.offset, len: bytes.len() as u64, sha256 };
        w.entries.push((id, loc.offset, loc.len, sha256));
        w.offset += loc.len;
        write_lock(&self.inner.index).insert(id, loc);
        Ok(())
    }

    /// Publishes what this process added since the last flush as one pack
    /// (renamed into place, then its index), so other processes and later
    /// builds see it. Entries stay readable here either way. Runs on drop
    /// too, where an error is only logged.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    // ---- maintenance ----

    /// Counts the entries and their sizes in the published packs.
    pub fn stats(&self) -> Result<CacheStats> {
        let mut stats = CacheStats::default();
        for p in self.packs_on_disk()? {
            stats.packs += 1;
            for e in &p.entries {
                stats.add(e.id.0, e.len);
            }
        }
        Ok(stats)
    }

    /// Total bytes held by entries.
    pub fn size(&self) -> Result<u64> {
        Ok(self.stats()?.total_bytes())
    }

    /// Removes packs by age, then by total size (least recently used
    /// first), and temp files and index-less packs that a crashed build left
    /// behind. Safe while builds run: an entry removed is just a miss for
    /// them (one they already opened stays readable).
    pub fn prune(&self, options: &PruneOptions) -> Result<PruneReport> {
        let now = SystemTime::now();
        let mut report = PruneReport::default();
        let age =
            |meta: &fs::Metadata| meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();

        let packs = self.packs_on_disk()?;
        let (count, bytes) = self.remove_abandoned_temps()?;
        report.temp_files_removed += count;
        report.bytes_freed += bytes;
        let packs_dir = self.packs_dir();
        for dirent in fs::read_dir(&packs_dir).map_err(Error::io(&packs_dir))? {
            let dirent = dirent.map_err(Error::io(&packs_dir))?;
            let Ok(meta) = dirent.metadata() else { continue };
            let path = dirent.path();
            let orphan = path.extension().is_some_and(|e| e == "pack")
                && !packs.iter().any(|p| p.pack_path == path)
                && !path.with_extension("idx").exists();
            if orphan && meta.is_file() && age(&meta) >= STALE_TEMP_AGE && fs::remove_file(&path).is_ok() {
                report.temp_files_removed += 1;
                report.bytes_freed += meta.len();
            }
        }

        let mut packs = packs;
        // Oldest first, so the size pass removes the least recently used.
        packs.sort_by_key(|p| p.last_used);
        let mut total: u64 = packs.iter().map(|p| p.size).sum();
        let cutoff = options.older_than.and_then(|age| now.checked_sub(age));
        let mut removed = Vec::new();
        for p in packs {
            let too_old = cutoff.is_some_and(|c| p.last_used < c);
            let too_big = options.max_size.is_some_and(|max| total > max);
            if too_old || too_big {
                // The index first: a reader never sees an index without its pack.
                match fs::remove_file(&p.index_path) {
                    Ok(()) => {
                        remove_quietly(&p.pack_path);
                        report.removed += p.entries.len() as u64;
                        report.packs_removed += 1;
                        report.bytes_freed += p.size;
                    }
                    // Removed by a concurrent prune.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Io { path: p.index_path, source }),
                }
                total -= p.size;
                removed.push(p);
                continue;
            }
            report.remaining.packs += 1;
            for e in &p.entries {
                report.remaining.add(e.id.0, e.len);
            }
        }
        // This process no longer reads what was removed.
        if !removed.is_empty() {
            let gone: Vec<Option<usize>> = {
                let packs = read_lock(&self.inner.packs);
                removed
                    .iter()
                    .map(|r| {
                        packs.iter().position(|p| read_lock(&p.index_path).as_deref() == Some(r.index_path.as_path()))
                    })
                    .collect()
            };
            write_lock(&self.inner.index).retain(|_, loc| !gone.contains(&Some(loc.pack)));
        }
        Ok(report)
    }

    /// Removes the temp files of `tmp/` that no live process holds locked
    /// (and that are older than [`TEMP_GRACE`]); returns how many and their bytes.
    fn remove_abandoned_temps(&self) -> Result<(u64, u64)> {
        let dir = self.tmp_dir();
        let mut removed = (0, 0);
        for dirent in fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let dirent = dirent.map_err(Error::io(&dir))?;
            let Ok(meta) = dirent.metadata() else { continue };
            let old = meta.modified().ok().and_then(|t| t.elapsed().ok()).is_some_and(|a| a >= TEMP_GRACE);
            let path = dirent.path();
            if meta.is_file() && old && !is_locked(&path) && fs::remove_file(&path).is_ok() {
                removed.0 += 1;
                removed.1 += meta.len();
            }
        }
        Ok(removed)
    }

    /// Every published pack, with its entries, size and last use.
    fn packs_on_disk(&self) -> Result<Vec<PackOnDisk>> {
        let dir = self.packs_dir();
        let mut out = Vec::new();
        for dirent in fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let dirent = dirent.map_err(Error::io(&dir))?;
            let index_path = dirent.path();
            if index_path.extension().is_none_or(|e| e != "idx") {
                continue;
            }
            let Some(id) = index_path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            let pack_path = index_path.with_extension("pack");
            // Gone since the listing (a concurrent prune): skip.
            let (Ok(text), Ok(idx_meta), Ok(pack_meta)) =
                (fs::read_to_string(&index_path), fs::metadata(&index_path), fs::metadata(&pack_path))
            else {
                continue;
            };
            let Some(entries) = parse_index(&text) else {
                tracing::warn!(path = %index_path.display(), "unreadable cache pack index; ignored");
                continue;
            };
            // The mtime, which hits refresh: reading the index here would
            // move its access time (relatime) and make every pack look used.
            let last_used = idx_meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.push(PackOnDisk {
                id,
                index_path,
                pack_path,
                size: idx_meta.len() + pack_meta.len(),
                last_used,
                entries,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

impl Inner {
    fn flush(&self) -> Result<()> {
        let Some(w) = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return Ok(());
        };
        if w.entries.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(INDEX_HEADER.len() + 1 + w.entries.len() * 150);
        text.push_str(INDEX_HEADER);
        text.push('\n');
        for ((kind, key), offset, len, sha256) in &w.entries {
            use std::fmt::Write as _;
            let _infallible =
                writeln!(text, "{} {} {offset} {len} {}", kind.letter(), hex::encode(key), hex::encode(sha256));
        }
        // Named by its index's content: unique, and equal packs share a name.
        let id = hex::encode(&Sha256::digest(text.as_bytes())[..16]);
        let dir = self.root.join("packs");
        let pack_path = dir.join(format!("{id}.pack"));
        let index_path = dir.join(format!("{id}.idx"));
        w.tmp.persist(&pack_path).map_err(|e| Error::Io { path: pack_path.clone(), source: e.error })?;
        let tmp_dir = self.root.join("tmp");
        let mut idx = locked_temp(&tmp_dir, ".idx-")?;
        idx.write_all(text.as_bytes()).map_err(Error::io(idx.path()))?;
        idx.persist(&index_path).map_err(|e| Error::Io { path: index_path.clone(), source: e.error })?;
        if let Some(pack) = read_lock(&self.packs).get(w.pack) {
            *write_lock(&pack.index_path) = Some(index_path);
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "could not publish the cache pack");
        }
    }
}

fn parse_index(text: &str) -> Option<Vec<IndexLine>> {
    let mut lines = text.lines();
    if lines.next()? != INDEX_HEADER {
        return None;
    }
    let hex32 = |s: &str| {
        let mut out = [0; 32];
        hex::decode_to_slice(s, &mut out).ok().map(|()| out)
    };
    lines
        .map(|line| {
            let mut f = line.split(' ');
            let kind = Kind::from_letter(f.next()?)?;
            let key = hex32(f.next()?)?;
            let offset = f.next()?.parse().ok()?;
            let len = f.next()?.parse().ok()?;
            let sha256 = hex32(f.next()?)?;
            f.next().is_none().then_some(IndexLine { id: (kind, key), offset, len, sha256 })
        })
        .collect()
}

fn blob_key(digest: &Digest) -> Option<[u8; 32]> {
    let mut out = [0; 32];
    (digest.is_sha256() && hex::decode_to_slice(digest.encoded(), &mut out).is_ok()).then_some(out)
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// A temp file in `dir`, locked for as long as it is open (see the module
/// documentation).
fn locked_temp(dir: &Path, prefix: &str) -> Result<NamedTempFile> {
    let tmp = tempfile::Builder::new().prefix(prefix).tempfile_in(dir).map_err(Error::io(dir))?;
    tmp.as_file().lock().map_err(Error::io(tmp.path()))?;
    Ok(tmp)
}

/// True when some process (this one included, through another open file)
/// holds `path` locked; false when nobody does or it cannot be opened.
fn is_locked(path: &Path) -> bool {
    File::open(path).is_ok_and(|f| matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)))
}

/// Best-effort removal; a concurrent prune may already have done it.
fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::debug!(path = %path.display(), error = %e, "could not remove cache file");
    }
}

/// Marks a pack as used for [`Cache::prune`]; best effort.
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

    fn dir_len(dir: &Path) -> usize {
        fs::read_dir(dir).expect("dir").count()
    }

    fn age(path: &Path, by: Duration) {
        let f = File::options().append(true).open(path).expect("open");
        let t = SystemTime::now() - by;
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t)).expect("set times");
    }

    fn only_pack(cache: &Cache) -> PackOnDisk {
        let mut packs = cache.packs_on_disk().expect("packs");
        assert_eq!(packs.len(), 1);
        packs.remove(0)
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

        // Unpublished until flushed: other processes see nothing yet.
        assert_eq!(cache.stats().expect("stats").blobs, 0);
        assert_eq!(Cache::open(tmp.path().join("c")).expect("reopen").get_blob(&d), None);
        cache.flush().expect("flush");
        cache.flush().expect("nothing more to flush");
        assert_eq!(dir_len(&cache.tmp_dir()), 0);
        let stats = cache.stats().expect("stats");
        assert_eq!((stats.blobs, stats.packs), (1, 1));
        assert_eq!(cache.size().expect("size"), bytes.len() as u64);
        let other_process = Cache::open(tmp.path().join("c")).expect("reopen");
        assert_eq!(other_process.get_blob(&d).as_deref(), Some(&bytes[..]));
        // Still readable here after publishing.
        assert_eq!(cache.get_blob(&d).as_deref(), Some(&bytes[..]));
    }

    #[test]
    fn drop_publishes_and_one_build_creates_one_pack() {
        let tmp = tempfile::tempdir().expect("tempdir");
        {
            let cache = Cache::open(tmp.path()).expect("open");
            for i in 0..500u32 {
                let b = i.to_le_bytes();
                cache.put_blob(&Digest::sha256(&b), &b).expect("put");
            }
            cache.put_extracted(&key(1), &sample()).expect("put");
            let clone = cache.clone();
            drop(cache);
            assert_eq!(dir_len(&tmp.path().join("packs")), 0, "a clone is still alive");
            drop(clone);
        }
        assert_eq!(dir_len(&tmp.path().join("packs")), 2, "one pack and its index");
        let cache = Cache::open(tmp.path()).expect("reopen");
        let stats = cache.stats().expect("stats");
        assert_eq!((stats.blobs, stats.extracted, stats.packs), (500, 1, 1));
        assert_eq!(cache.get_extracted(&key(1)), Some(sample()));
        assert_eq!(cache.get_blob(&Digest::sha256(&7u32.to_le_bytes())).as_deref(), Some(&7u32.to_le_bytes()[..]));
    }

    #[test]
    fn records_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let k = RecordKey::builder("check/1").field(b"a").field(b"bc").finish();
        assert_ne!(k, RecordKey::builder("check/1").field(b"ab").field(b"c").finish(), "fields are delimited");
        assert_ne!(k, RecordKey::builder("check/2").field(b"a").field(b"bc").finish());
        assert_eq!(cache.get_record(&k), None);
        cache.put_record(&k, b"ok").expect("put");
        assert_eq!(cache.get_record(&k).as_deref(), Some(&b"ok"[..]));
        cache.flush().expect("flush");
        let stats = Cache::open(tmp.path()).expect("reopen").stats().expect("stats");
        assert_eq!((stats.records, stats.record_bytes), (1, 2));
    }

    #[test]
    fn damaged_entries_are_misses() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let bytes = b"config";
        let d = Digest::sha256(bytes);
        cache.put_blob(&d, bytes).expect("put");
        cache.put_extracted(&key(1), &sample()).expect("put");
        cache.flush().expect("flush");
        let pack = only_pack(&cache).pack_path;

        // A flipped byte anywhere in an entry is caught by the index's sha256.
        let mut damaged = fs::read(&pack).expect("read");
        let at = damaged.windows(7).position(|w| w == b"kind: A").expect("content");
        damaged[at] ^= 0x20;
        damaged[0] ^= 0x01;
        fs::write(&pack, &damaged).expect("damage");
        let fresh = Cache::open(tmp.path()).expect("reopen");
        assert_eq!(fresh.get_blob(&d), None);
        assert_eq!(fresh.get_extracted(&key(1)), None);
        assert!(!fresh.has_blob(&d), "forgotten after the failed read");
        // Re-caching works and wins over the damaged copy.
        fresh.put_blob(&d, bytes).expect("put again");
        assert_eq!(fresh.get_blob(&d).as_deref(), Some(&bytes[..]));

        // A truncated pack: entries past the end are not loaded at all (the
        // re-cached copy above is not published yet: `fresh` is still alive).
        fs::write(&pack, &damaged[..3]).expect("truncate");
        let truncated = Cache::open(tmp.path()).expect("reopen");
        assert!(!truncated.has_blob(&d));
        assert_eq!(truncated.get_extracted(&key(1)), None);

        // A garbage index is ignored.
        fs::write(only_pack(&cache).index_path, b"not an index").unwrap_or(());
        let packs = Cache::open(tmp.path()).expect("reopen").packs_on_disk().expect("packs");
        assert!(packs.is_empty());
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
        cache.flush().expect("flush");
        assert_eq!(dir_len(&cache.tmp_dir()), 0);
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
        cache.flush().expect("flush");
        assert_eq!(Cache::open(tmp.path()).expect("reopen").get_extracted(&k), Some(set));
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
    fn concurrent_writers_and_processes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let set = sample();
        let bytes = b"manifest".repeat(10_000);
        let d = Digest::sha256(&bytes);
        let threads = 8;
        let barrier = Barrier::new(threads);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (barrier, set, bytes, d) = (&barrier, &set, &bytes, &d);
                let root = tmp.path();
                s.spawn(move || {
                    // Each thread is its own "process": its own Cache.
                    let cache = Cache::open(root).expect("open");
                    barrier.wait();
                    for i in 0..20u8 {
                        cache.put_blob(d, bytes).expect("put blob");
                        cache.put_extracted(&key(1), set).expect("put extracted");
                        assert_eq!(cache.get_extracted(&key(1)).as_ref(), Some(set));
                        assert_eq!(cache.get_blob(d).as_deref(), Some(&bytes[..]));
                        let own = [t as u8, i];
                        cache.put_blob(&Digest::sha256(&own), &own).expect("put own");
                        if i % 5 == 4 {
                            cache.flush().expect("flush");
                        }
                    }
                });
            }
        });
        let cache = Cache::open(tmp.path()).expect("open");
        assert_eq!(cache.get_blob(&d).as_deref(), Some(&bytes[..]));
        assert_eq!(cache.get_extracted(&key(1)), Some(set));
        for t in 0..threads as u8 {
            for i in 0..20u8 {
                assert!(cache.has_blob(&Digest::sha256(&[t, i])), "{t} {i}");
            }
        }
        assert_eq!(dir_len(&cache.tmp_dir()), 0);
    }

    /// A temp file nobody holds locked is a dead build's, however young
    /// (past the grace); a live writer's is kept however old.
    #[test]
    fn prune_removes_abandoned_temps_and_keeps_live_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        cache.put_blob(&Digest::sha256(b"live"), b"live").expect("put");
        let live: Vec<PathBuf> =
            fs::read_dir(cache.tmp_dir()).expect("dir").map(|e| e.expect("entry").path()).collect();
        assert_eq!(live.len(), 1, "the pack being written");
        age(&live[0], STALE_TEMP_AGE * 2);
        let dead = cache.tmp_dir().join(".pack-killed");
        fs::write(&dead, b"half a pack").expect("dead temp");
        age(&dead, TEMP_GRACE * 2);
        let just_created = cache.tmp_dir().join(".pack-starting");
        fs::write(&just_created, b"x").expect("fresh temp");

        let r = cache.prune(&PruneOptions::default()).expect("prune");
        assert_eq!((r.temp_files_removed, r.bytes_freed), (1, 11));
        assert!(!dead.exists() && live[0].exists() && just_created.exists());

        // Reopening removes what a killed build left, too.
        let again = cache.tmp_dir().join(".pack-killed-again");
        fs::write(&again, b"half").expect("dead temp");
        age(&again, TEMP_GRACE * 2);
        drop(Cache::open(tmp.path()).expect("reopen"));
        assert!(!again.exists() && live[0].exists());

        cache.flush().expect("flush");
        assert!(!live[0].exists(), "published");
    }

    #[test]
    fn prune_by_age_and_size() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(tmp.path()).expect("open");
        let blobs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100]).collect();
        let mut index_of = Vec::new();
        for (i, b) in blobs.iter().enumerate() {
            // One pack per blob, pack i last used (4 - i) days ago.
            cache.put_blob(&Digest::sha256(b), b).expect("put");
            cache.flush().expect("flush");
            let newest = cache
                .packs_on_disk()
                .expect("packs")
                .into_iter()
                .find(|p| p.entries.len() == 1 && p.entries[0].id.1 == blob_key(&Digest::sha256(b)).expect("key"))
                .expect("its pack");
            age(&newest.index_path, Duration::from_secs(86_400 * (4 - i as u64)));
            index_of.push(newest.index_path);
        }
        cache.put_extracted(&key(1), &sample()).expect("put");
        cache.flush().expect("flush");
        let stale = cache.tmp_dir().join(".pack-crashed");
        fs::write(&stale, b"half").expect("stale temp");
        age(&stale, STALE_TEMP_AGE * 2);
        let orphan = cache.packs_dir().join("0123.pack");
        fs::write(&orphan, b"no index").expect("orphan pack");
        age(&orphan, STALE_TEMP_AGE * 2);
        let fresh = cache.tmp_dir().join(".pack-running");
        fs::write(&fresh, b"writing").expect("fresh temp");

        // Nothing asked: only the stale temp file and the orphan go.
        let r = cache.prune(&PruneOptions::default()).expect("prune");
        assert_eq!((r.removed, r.temp_files_removed, r.bytes_freed), (0, 2, 12));
        assert!(!stale.exists() && !orphan.exists() && fresh.exists());

        // Older than 2.5 days: packs 0 and 1, also for this process.
        let r = cache.prune(&PruneOptions::default().older_than(Duration::from_secs(86_400 * 5 / 2))).expect("prune");
        assert_eq!((r.removed, r.packs_removed), (2, 2));
        assert_eq!(r.remaining.blobs, 2);
        assert_eq!(cache.get_blob(&Digest::sha256(&blobs[0])), None);
        assert!(!index_of[0].exists());
        // Reading blob 3 marks its pack used.
        assert!(cache.get_blob(&Digest::sha256(&blobs[3])).is_some());

        // Size: the least recently used pack (blob 2) goes first.
        let keep = cache.stats().expect("stats");
        let disk = |p: &PackOnDisk| p.size;
        let sizes: u64 =
            cache.packs_on_disk().expect("packs").iter().filter(|p| p.index_path != index_of[2]).map(disk).sum();
        let r = cache.prune(&PruneOptions::default().max_size(sizes)).expect("prune");
        assert_eq!((r.removed, r.remaining.blobs, r.remaining.extracted), (1, 1, 1));
        assert!(cache.has_blob(&Digest::sha256(&blobs[3])));
        assert!(keep.total_bytes() > r.remaining.total_bytes());

        let r = cache.prune(&PruneOptions::default().max_size(0)).expect("prune");
        assert_eq!(r.remaining, CacheStats::default());
        assert_eq!(cache.size().expect("size"), 0);
        assert!(fresh.exists(), "a running build's temp file is kept");
    }
}
