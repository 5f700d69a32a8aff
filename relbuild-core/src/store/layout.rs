//! [`OciDir`]: an OCI image layout directory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;
use tempfile::NamedTempFile;

use super::{Error, Result};
use crate::digest::{self, HashingReader, HashingWriter};
use crate::image::{Descriptor, Digest, ImageIndex, ImageManifest, Manifest, MediaType, Platform, RawManifest, gojson};

/// The only image layout version there is (`oci-layout`'s `imageLayoutVersion`).
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// The `index.json` annotation that holds an entry's tag.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Temp files start with a dot so they can never be mistaken for a blob
/// (whose name is hex) and `fsck` can report what a crash left behind.
pub(super) const BLOB_TMP_PREFIX: &str = ".tmp-blob-";
pub(super) const INDEX_TMP_PREFIX: &str = ".tmp-index-";

const OCI_LAYOUT_BYTES: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutFile {
    image_layout_version: String,
}

/// An OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/*`.
///
/// Updates of `index.json` are serialised within one `OciDir` value; two
/// processes (or two `OciDir`s on the same path) writing tags at once may lose
/// one of the updates. Blobs need no lock: each is written to its own temp
/// file and renamed atomically, and equal names mean equal content.
#[derive(Debug)]
pub struct OciDir {
    root: PathBuf,
    index_lock: Mutex<()>,
}

impl OciDir {
    /// Opens the layout at `path`, creating the directory, `oci-layout`,
    /// an empty `index.json` and `blobs/sha256/` as needed. An existing
    /// layout is validated and kept.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(Error::io(&blobs))?;
        let layout = root.join("oci-layout");
        if layout.exists() {
            check_layout_file(&layout)?;
        } else {
            write_atomic(&root, &layout, OCI_LAYOUT_BYTES)?;
        }
        let dir = Self::new(root);
        if dir.index_path().exists() {
            dir.index()?;
        } else {
            dir.write_index(&empty_index())?;
        }
        Ok(dir)
    }

    /// Opens an existing layout, checking `oci-layout` and `index.json`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let layout = root.join("oci-layout");
        if !layout.is_file() {
            return Err(Error::NotALayout { path: root });
        }
        check_layout_file(&layout)?;
        let dir = Self::new(root);
        dir.index()?;
        Ok(dir)
    }

    fn new(root: PathBuf) -> Self {
        Self { root, index_lock: Mutex::new(()) }
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob `digest` lives (whether or not it is there).
    /// Errors for digests other than sha256, which the store cannot address.
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        if !digest.is_sha256() {
            return Err(Error::UnsupportedDigest { digest: digest.clone() });
        }
        // A sha256 `Digest` is 64 hex characters by construction, so this
        // cannot name anything outside `blobs/sha256/`.
        Ok(self.blobs_dir().join(digest.encoded()))
    }

    // ---- blobs ----

    /// A writer for a new blob: content goes to a temp file in
    /// `blobs/sha256/`, hashed as it is written. See [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self.blobs_dir())
    }

    /// Stores `bytes` as a blob and returns its digest and size.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::sha256(bytes);
        let size = bytes.len() as u64;
        // Configs and manifests are often stored again; skip the rewrite.
        let path = self.blob_path(&digest)?;
        if fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size) {
            return Ok((digest, size));
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes).map_err(Error::io(w.temp_path()))?;
        w.complete()
    }

    /// Copies `reader` to the end into a new blob. With `expected`, the
    /// content must match its digest and size, or nothing is stored.
    pub fn copy_blob_from(&self, mut reader: impl Read, expected: Option<&Descriptor>) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        // Not `io::copy`: a failing source and a failing disk are different errors.
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::ReadSource(e)),
            };
            w.write_all(&buf[..n]).map_err(Error::io(w.temp_path()))?;
        }
        match expected {
            Some(d) => w.complete_verified_as(d),
            None => w.complete(),
        }
    }

    /// True when the blob is stored (false for digests other than sha256).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Opens a stored blob for reading. The content is not verified; wrap it
    /// in a [`HashingReader`] or use [`Self::read_blob_verified`] for that.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest)?;
        File::open(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                Error::BlobNotFound { digest: digest.clone(), path: path.clone() }
            } else {
                Error::Io { path: path.clone(), source }
            }
        })
    }

    /// Reads a whole blob into memory and checks it against `digest` and,
    /// when given, `size`. Meant for manifests and configs, not layers.
    pub fn read_blob_verified(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let mut bytes = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut bytes).map_err(Error::io(&path))?;
        digest::verify(digest, size, &Digest::sha256(&bytes), bytes.len() as u64)?;
        Ok(bytes)
    }

    // ---- index.json and manifests ----

    /// The parsed `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(Error::io(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::InvalidIndex { path, source })
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let path = self.index_path();
        let bytes = gojson::to_vec(index).map_err(|source| Error::Serialize { path: path.clone(), source })?;
        write_atomic(&self.root, &path, &bytes)
    }

    fn update_index(&self, f: impl FnOnce(&mut ImageIndex)) -> Result<()> {
        // The guard protects no data, only the read-modify-write below, so a
        // poisoned lock is as good as a clean one.
        let _guard = self.index_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut index = self.index()?;
        f(&mut index);
        index.schema_version = 2;
        index.media_type = Some(MediaType::OciIndex);
        self.write_index(&index)
    }

    /// Stores the manifest's exact bytes as a blob, without an `index.json`
    /// entry: for manifests that another manifest references (the images of
    /// an index).
    pub fn write_manifest_blob(&self, manifest: &RawManifest) -> Result<Descriptor> {
        self.write_blob(manifest.bytes())?;
        Ok(manifest.descriptor())
    }

    /// Stores the manifest's exact bytes as a blob and records it in
    /// `index.json`, tagged `tag` (an entry with the same tag is replaced in
    /// place) or untagged (once per digest). Returns the entry written.
    ///
    /// The blobs the manifest references should be stored first, so that a
    /// reader never finds a tag whose content is incomplete.
    pub fn write_manifest(
        &self,
        manifest: &RawManifest,
        tag: Option<&str>,
        platform: Option<Platform>,
    ) -> Result<Descriptor> {
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let mut entry = self.write_manifest_blob(manifest)?;
        entry.platform = platform;
        if let Some(tag) = tag {
            entry.annotations = Some(BTreeMap::from([(REF_NAME_ANNOTATION.to_owned(), tag.to_owned())]));
        }
        self.update_index(|index| {
            let same = |d: &Descriptor| match tag {
                Some(tag) => ref_name(d) == Some(tag),
                None => ref_name(d).is_none() && d.digest == entry.digest,
            };
            let at = index.manifests.iter().position(same);
            index.manifests.retain(|d| !same(d));
            match at {
                Some(at) => index.manifests.insert(at, entry.clone()),
                None => index.manifests.push(entry.clone()),
            }
        })?;
        Ok(entry)
    }

    /// Removes the `index.json` entry tagged `tag`. The blobs stay until
    /// [`Self::remove_unreferenced`].
    pub fn remove_tag(&self, tag: &str) -> Result<()> {
        let mut found = false;
        self.update_index(|index| {
            let before = index.manifests.len();
            index.manifests.retain(|d| ref_name(d) != Some(tag));
            found = index.manifests.len() != before;
        })?;
        if found { Ok(()) } else { Err(Error::TagNotFound { tag: tag.to_owned(), path: self.root.clone() }) }
    }

    /// The tags in `index.json`, in index order.
    pub fn list_tags(&self) -> Result<Vec<String>> {
        Ok(self.index()?.manifests.iter().filter_map(ref_name).map(str::to_owned).collect())
    }

    /// The `index.json` entry tagged `tag` (the last one, should there be several).
    pub fn resolve_descriptor(&self, tag: &str) -> Result<Descriptor> {
        self.index()?
            .manifests
            .into_iter()
            .rev()
            .find(|d| ref_name(d) == Some(tag))
            .ok_or_else(|| Error::TagNotFound { tag: tag.to_owned(), path: self.root.clone() })
    }

    /// The manifest tagged `tag`, its bytes verified against the entry's digest and size.
    pub fn resolve(&self, tag: &str) -> Result<RawManifest> {
        self.read_manifest_as(&self.resolve_descriptor(tag)?)
    }

    /// The manifest stored as `digest`, verified. Its media type comes from
    /// an `index.json` entry with that digest if there is one, else from the
    /// document itself.
    pub fn read_manifest(&self, digest: &Digest) -> Result<RawManifest> {
        let media_type = self.index()?.manifests.into_iter().find(|d| &d.digest == digest).map(|d| d.media_type);
        let bytes = self.read_blob_verified(digest, None)?;
        RawManifest::new(bytes, media_type.as_ref().map(MediaType::as_str))
            .map_err(|source| Error::InvalidManifest { path: self.blob_path_lossy(digest), source })
    }

    /// The manifest `descriptor` points at, verified against its digest and size.
    pub fn read_manifest_as(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        let bytes = self.read_blob_verified(&descriptor.digest, Some(descriptor.size))?;
        RawManifest::new(bytes, Some(descriptor.media_type.as_str()))
            .map_err(|source| Error::InvalidManifest { path: self.blob_path_lossy(&descriptor.digest), source })
    }

    fn blob_path_lossy(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest).unwrap_or_else(|_| self.root.join("blobs").join(digest.algorithm()))
    }

    // ---- images ----

    /// Stores an OCI image: `config` (an OCI image config) as a blob, and a
    /// compact OCI manifest over it and `layers`, tagged `tag`. The layer
    /// blobs must already be stored (for example with [`Self::blob_writer`]).
    pub fn write_image(&self, config: &[u8], layers: Vec<Descriptor>, tag: Option<&str>) -> Result<StoredImage> {
        for layer in &layers {
            self.check_blob_size(layer)?;
        }
        let (config_digest, config_size) = self.write_blob(config)?;
        let parsed = ImageManifest {
            schema_version: 2,
            media_type: Some(MediaType::OciManifest),
            artifact_type: None,
            config: Descriptor::new(MediaType::OciConfig, config_digest, config_size),
            layers,
            subject: None,
            annotations: None,
        };
        let bytes =
            gojson::to_vec(&parsed).map_err(|source| Error::Serialize { path: self.root.join("blobs"), source })?;
        let manifest = RawManifest::new(bytes, Some(MediaType::OciManifest.as_str()))
            .map_err(|source| Error::InvalidManifest { path: self.root.join("blobs"), source })?;
        self.write_manifest(&manifest, tag, None)?;
        Ok(StoredImage { manifest, parsed, config: config.to_vec() })
    }

    /// The single image tagged `tag`: manifest, parsed manifest and config,
    /// with the config verified and every layer checked to be stored with its size.
    pub fn read_image(&self, tag: &str) -> Result<StoredImage> {
        self.image_from(self.resolve(tag)?, tag)
    }

    /// Like [`Self::read_image`], for the manifest stored as `digest`.
    pub fn read_image_by_digest(&self, digest: &Digest) -> Result<StoredImage> {
        self.image_from(self.read_manifest(digest)?, digest.as_str())
    }

    fn image_from(&self, manifest: RawManifest, reference: &str) -> Result<StoredImage> {
        let parsed = match manifest.parse() {
            Ok(Manifest::Image(m)) => m,
            Ok(Manifest::Index(_)) => {
                return Err(Error::NotAnImage {
                    reference: reference.to_owned(),
                    media_type: manifest.media_type().clone(),
                });
            }
            Err(source) => {
                return Err(Error::InvalidManifest { path: self.blob_path_lossy(manifest.digest()), source });
            }
        };
        let config = self.read_blob_verified(&parsed.config.digest, Some(parsed.config.size))?;
        for layer in &parsed.layers {
            // Foreign layers are fetched from their URLs, not stored.
            if layer.urls.is_none() {
                self.check_blob_size(layer)?;
            }
        }
        Ok(StoredImage { manifest, parsed, config })
    }

    fn check_blob_size(&self, d: &Descriptor) -> Result<()> {
        let path = self.blob_path(&d.digest)?;
        let meta = fs::metadata(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                Error::BlobNotFound { digest: d.digest.clone(), path: path.clone() }
            } else {
                Error::Io { path: path.clone(), source }
            }
        })?;
        if meta.len() != d.size {
            return Err(digest::VerifyError::SizeMismatch {
                digest: d.digest.clone(),
                expected: d.size,
                found: meta.len(),
            }
            .into());
        }
        Ok(())
    }

    // ---- consistency ----

    /// Re-hashes every blob and walks everything `index.json` references.
    /// Problems are reported, not returned as errors; errors mean the check
    /// itself could not run (unreadable directory, invalid `index.json`).
    pub fn fsck(&self) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        self.walk_references(&mut report)?;
        for entry in fs::read_dir(&self.root).map_err(Error::io(&self.root))? {
            let entry = entry.map_err(Error::io(&self.root))?;
            if entry.file_name().to_string_lossy().starts_with(INDEX_TMP_PREFIX) {
                report.leftovers.push(entry.path());
            }
        }
        let blobs = self.blobs_dir();
        let entries = match fs::read_dir(&blobs) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(Error::Io { path: blobs, source: e }),
        };
        let mut paths = Vec::new();
        for entry in entries {
            paths.push(entry.map_err(Error::io(&blobs))?.path());
        }
        paths.sort();
        for path in paths {
            let expected = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                .filter(|_| path.is_file());
            let Some(expected) = expected else {
                report.leftovers.push(path);
                continue;
            };
            let file = File::open(&path).map_err(Error::io(&path))?;
            let mut r = HashingReader::new(file);
            io::copy(&mut r, &mut io::sink()).map_err(Error::io(&path))?;
            let (_, found, len) = r.finish();
            report.blobs_checked += 1;
            report.bytes_checked += len;
            if found != expected {
                report.corrupt.push(CorruptBlob { path, expected, found });
            }
        }
        Ok(report)
    }

    /// Follows `index.json` → manifests → configs, layers and child
    /// manifests; returns every digest reached.
    fn walk_references(&self, report: &mut FsckReport) -> Result<BTreeSet<Digest>> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<(Descriptor, String)> =
            self.index()?.manifests.into_iter().map(|d| (d, "index.json".to_owned())).collect();
        while let Some((d, referenced_by)) = queue.pop_front() {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let Ok(path) = self.blob_path(&d.digest) else { continue };
            let Ok(meta) = fs::metadata(&path) else {
                // Foreign layers are fetched from their URLs, not stored.
                if d.urls.is_none() {
                    report.missing.push(MissingBlob { digest: d.digest, media_type: d.media_type, referenced_by });
                }
                continue;
            };
            if meta.len() != d.size {
                report.wrong_size.push(WrongSize {
                    digest: d.digest,
                    referenced_by,
                    expected: d.size,
                    found: meta.len(),
                });
                continue;
            }
            if !d.media_type.is_manifest() {
                continue;
            }
            let parsed = fs::read(&path)
                .ok()
                .and_then(|bytes| RawManifest::new(bytes, Some(d.media_type.as_str())).ok())
                .and_then(|raw| raw.parse().ok());
            let from = d.digest.to_string();
            match parsed {
                Some(Manifest::Image(m)) => {
                    queue.push_back((m.config, from.clone()));
                    queue.extend(m.layers.into_iter().map(|l| (l, from.clone())));
                }
                Some(Manifest::Index(i)) => queue.extend(i.manifests.into_iter().map(|c| (c, from.clone()))),
                None => report.invalid_manifests.push(d.digest),
            }
        }
        Ok(seen)
    }

    /// Deletes blobs that nothing in `index.json` reaches, and nothing else
    /// (temp files may belong to a writer at work). Refuses to delete anything
    /// when a reachable manifest is missing or unreadable, since what it
    /// references is unknown. Must not run while another writer stores an
    /// image whose manifest is not yet in `index.json`.
    pub fn remove_unreferenced(&self) -> Result<GcReport> {
        let _guard = self.index_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut refs = FsckReport::default();
        let reachable = self.walk_references(&mut refs)?;
        if let Some(d) = refs.invalid_manifests.first() {
            // Re-read to return the real parse error.
            self.read_manifest(d)?;
        }
        if let Some(m) = refs.missing.iter().find(|m| m.media_type.is_manifest()) {
            let path = self.blob_path_lossy(&m.digest);
            return Err(Error::BlobNotFound { digest: m.digest.clone(), path });
        }
        let mut report = GcReport::default();
        let blobs = self.blobs_dir();
        let entries = match fs::read_dir(&blobs) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(Error::Io { path: blobs, source: e }),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io(&blobs))?;
            let Some(digest) = entry.file_name().to_str().and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
            else {
                continue;
            };
            if reachable.contains(&digest) {
                continue;
            }
            let path = entry.path();
            let size = entry.metadata().map_err(Error::io(&path))?.len();
            fs::remove_file(&path).map_err(Error::io(&path))?;
            report.bytes_freed += size;
            report.removed.push(digest);
        }
        report.removed.sort();
        Ok(report)
    }
}

/// The tag of an `index.json` entry.
fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.as_ref()?.get(REF_NAME_ANNOTATION).map(String::as_str)
}

/// The OCI image spec's grammar for `org.opencontainers.image.ref.name`:
/// `component ("/" component)*`, `component = alphanum (separator alphanum)*`,
/// `separator = [-._:@+] | "--"`.
fn validate_tag(tag: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidTag { tag: tag.to_owned(), reason });
    if tag.is_empty() {
        return bad("a tag must not be empty");
    }
    for component in tag.split('/') {
        let b = component.as_bytes();
        if b.is_empty() {
            return bad("empty path component");
        }
        if !b.iter().all(|c| c.is_ascii_alphanumeric() || b"-._:@+".contains(c)) {
            return bad("only ASCII letters, digits and `-._:@+/` are allowed");
        }
        if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
            return bad("each component must begin and end with a letter or digit");
        }
        // Separators are single characters, except `--`.
        let mut run = 0;
        for &c in b {
            if c.is_ascii_alphanumeric() {
                run = 0;
                continue;
            }
            run += 1;
            if run > 2 || (run == 2 && c != b'-') {
                return bad("separators must not repeat (except `--`)");
            }
        }
    }
    Ok(())
}

fn empty_index() -> ImageIndex {
    ImageIndex { schema_version: 2, media_type: Some(MediaType::OciIndex), manifests: Vec::new(), annotations: None }
}

fn check_layout_file(path: &Path) -> Result<()> {
    let bytes = fs::read(path).map_err(Error::io(path))?;
    let layout: LayoutFile = serde_json::from_slice(&bytes)
        .map_err(|source| Error::InvalidLayoutFile { path: path.to_path_buf(), source })?;
    if layout.image_layout_version != OCI_LAYOUT_VERSION {
        return Err(Error::UnsupportedLayoutVersion { path: path.to_path_buf(), version: layout.image_layout_version });
    }
    Ok(())
}

/// Makes a file readable by everyone, like the files other tools write;
/// temp files are created owner-only.
pub(super) fn make_readable(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644)).map_err(Error::io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// Writes `dest` by way of a temp file in `dir` (same file system) and a rename.
pub(super) fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(INDEX_TMP_PREFIX).tempfile_in(dir).map_err(Error::io(dir))?;
    tmp.write_all(bytes).map_err(Error::io(tmp.path()))?;
    make_readable(tmp.as_file(), tmp.path())?;
    tmp.persist(dest).map_err(|e| Error::Io { path: dest.to_path_buf(), source: e.error })?;
    Ok(())
}

/// A blob being written: a temp file inside `blobs/sha256/` (so the final
/// rename stays on one file system and is atomic), hashed as it is written.
///
/// Finish with [`Self::complete`] or [`Self::complete_verified_as`]. Dropping
/// an unfinished writer deletes the temp file.
#[derive(Debug)]
pub struct BlobWriter {
    inner: HashingWriter<BufWriter<NamedTempFile>>,
    dir: PathBuf,
}

impl BlobWriter {
    fn new(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let tmp = tempfile::Builder::new().prefix(BLOB_TMP_PREFIX).tempfile_in(&dir).map_err(Error::io(&dir))?;
        Ok(Self { inner: HashingWriter::new(BufWriter::with_capacity(128 * 1024, tmp)), dir })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The temp file being written.
    pub fn temp_path(&self) -> &Path {
        self.inner.get_ref().get_ref().path()
    }

    fn finish(self) -> Result<(NamedTempFile, Digest, u64)> {
        let (buf, digest, len) = self.inner.finish();
        let path = buf.get_ref().path().to_path_buf();
        let tmp = buf.into_inner().map_err(|e| Error::Io { path, source: e.into_error() })?;
        Ok((tmp, digest, len))
    }

    fn persist(tmp: NamedTempFile, dir: &Path, digest: &Digest) -> Result<()> {
        make_readable(tmp.as_file(), tmp.path())?;
        let dest = dir.join(digest.encoded());
        // Replacing an existing blob is harmless: same name, same bytes.
        tmp.persist(&dest).map_err(|e| Error::Io { path: dest, source: e.error })?;
        Ok(())
    }

    /// Renames the content to `blobs/sha256/<hex>` and returns its digest and size.
    pub fn complete(self) -> Result<(Digest, u64)> {
        let dir = self.dir.clone();
        let (tmp, digest, len) = self.finish()?;
        Self::persist(tmp, &dir, &digest)?;
        Ok((digest, len))
    }

    /// Like [`Self::complete`], but only when the content has the
    /// descriptor's digest and size; otherwise the temp file is deleted and
    /// nothing is stored.
    pub fn complete_verified_as(self, expected: &Descriptor) -> Result<(Digest, u64)> {
        // Content is stored under its sha256; another algorithm could not be
        // checked and the blob could never be found under `expected`.
        if !expected.digest.is_sha256() {
            return Err(Error::UnsupportedDigest { digest: expected.digest.clone() });
        }
        let dir = self.dir.clone();
        let (tmp, digest, len) = self.finish()?;
        // On a mismatch `tmp` is dropped here, which deletes it.
        digest::verify(&expected.digest, Some(expected.size), &digest, len)?;
        Self::persist(tmp, &dir, &digest)?;
        Ok((digest, len))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An image read from or written to an [`OciDir`].
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The manifest's exact bytes.
    pub manifest: RawManifest,
    /// The typed view of [`Self::manifest`].
    pub parsed: ImageManifest,
    /// The config blob's exact bytes.
    pub config: Vec<u8>,
}

impl StoredImage {
    /// The layer descriptors, base first.
    pub fn layers(&self) -> &[Descriptor] {
        &self.parsed.layers
    }

    /// The config descriptor.
    pub fn config_descriptor(&self) -> &Descriptor {
        &self.parsed.config
    }
}

/// What [`OciDir::fsck`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsckReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Blobs whose content does not hash to their name.
    pub corrupt: Vec<CorruptBlob>,
    /// Referenced blobs that are not stored.
    pub missing: Vec<MissingBlob>,
    /// Referenced blobs stored with a size other than the descriptor's.
    pub wrong_size: Vec<WrongSize>,
    /// Referenced manifests that do not parse.
    pub invalid_manifests: Vec<Digest>,
    /// Temp files left by interrupted writers, and other files that are not
    /// blobs, in `blobs/sha256/` or the layout root. Harmless but wasteful.
    pub leftovers: Vec<PathBuf>,
}

impl FsckReport {
    /// True when every referenced blob is present, of the right size and
    /// uncorrupted, and every referenced manifest parses. Leftovers do not count.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.wrong_size.is_empty()
            && self.invalid_manifests.is_empty()
    }
}

/// A blob whose content does not hash to its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptBlob {
    /// The blob file.
    pub path: PathBuf,
    /// The digest its name says.
    pub expected: Digest,
    /// The digest of its content.
    pub found: Digest,
}

/// A referenced blob that is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingBlob {
    /// The missing blob.
    pub digest: Digest,
    /// Its media type, as the reference says.
    pub media_type: MediaType,
    /// `index.json` or the digest of the manifest that references it.
    pub referenced_by: String,
}

/// A referenced blob stored with another size than its descriptor says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongSize {
    /// The blob.
    pub digest: Digest,
    /// `index.json` or the digest of the manifest that references it.
    pub referenced_by: String,
    /// The descriptor's size.
    pub expected: u64,
    /// The stored size.
    pub found: u64,
}

/// What [`OciDir::remove_unreferenced`] deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// The blobs deleted, sorted.
    pub removed: Vec<Digest>,
    /// Their total size.
    pub bytes_freed: u64,
}
