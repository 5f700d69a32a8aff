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
/// The name prefix of a resumable partial blob ([`BlobWriter::resumable`]).
pub(super) const PARTIAL_PREFIX: &str = ".tmp-blob-partial-";
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
        BlobWriter::new(self.blobs_dir(), BlobPlace::Flat(self.blobs_dir()))
    }

    /// A writer for blob `expected` that continues a partial file an
    /// interrupted copy left (see `BlobWriter::resumable`).
    pub fn resumable_writer(&self, expected: &Descriptor) -> Result<BlobWriter> {
        BlobWriter::resumable(self.blobs_dir(), BlobPlace::Flat(self.blobs_dir()), expected)
    }

    /// Stores `bytes` as a blob and returns its digest and size. A blob of
    /// that name and size already stored is trusted and kept ([`Self::fsck`]
    /// finds corrupt ones).
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
        if let Some(d) = expected.filter(|d| !d.digest.is_sha256()) {
            // Fail before reading what could not be stored anyway.
            return Err(Error::UnsupportedDigest { digest: d.digest.clone() });
        }
        self.blob_writer()?.copy_from(&mut reader, expected)
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
        // The blobs the index names were renamed into blobs/sha256 synced;
        // the renames themselves reach the disk before the index does.
        let blobs = self.blobs_dir();
        if blobs.is_dir() {
            crate::durable::sync_dir(&blobs).map_err(Error::io(&blobs))?;
        }
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

    /// The image tagged `tag` for `os_arch` (`linux/amd64`, or
    /// `linux/arm64/v8` to match the variant too): the image itself when the
    /// tag names a single image, else the index entry for that platform.
    pub fn read_image_for_platform(&self, tag: &str, os_arch: &str) -> Result<StoredImage> {
        let manifest = self.resolve(tag)?;
        if !manifest.media_type().is_index() {
            return self.image_from(manifest, tag);
        }
        let child = match manifest.parse() {
            Ok(Manifest::Index(index)) => index.find_platform(os_arch).cloned(),
            Ok(Manifest::Image(_)) => None,
            Err(source) => {
                return Err(Error::InvalidManifest { path: self.blob_path_lossy(manifest.digest()), source });
            }
        };
        let child =
            child.ok_or_else(|| Error::PlatformNotFound { reference: tag.to_owned(), platform: os_arch.to_owned() })?;
        let child_manifest = self.read_manifest_as(&child)?;
        self.image_from(child_manifest, &format!("{tag}@{}", child.digest))
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
    crate::durable::persist(tmp, dest).map_err(Error::io(dest))?;
    Ok(())
}

/// Where a finished blob is renamed to.
#[derive(Debug, Clone)]
pub(crate) enum BlobPlace {
    /// `<dir>/<hex>`: an OCI layout's `blobs/sha256/`.
    Flat(PathBuf),
    /// `<v2>/blobs/sha256/<hex[0:2]>/<hex>/data`: a distribution storage tree.
    Tree(PathBuf),
}

impl BlobPlace {
    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.encoded();
        match self {
            Self::Flat(dir) => dir.join(hex),
            Self::Tree(v2) => v2.join("blobs/sha256").join(&hex[..2]).join(hex).join("data"),
        }
    }
}

/// A blob being written: a temp file in a scratch directory on the same
/// file system as its final place (so the rename is atomic), hashed as it
/// is written. For a layout the scratch directory is `blobs/sha256/` itself
/// (temp names start with a dot); for a distribution tree it is outside
/// `docker/`, where no reader looks.
///
/// Finish with [`Self::complete`] or [`Self::complete_verified_as`]. Dropping
/// an unfinished writer deletes the temp file.
#[derive(Debug)]
pub struct BlobWriter {
    inner: HashingWriter<BufWriter<NamedTempFile>>,
    place: BlobPlace,
}

impl BlobWriter {
    pub(crate) fn new(scratch: PathBuf, place: BlobPlace) -> Result<Self> {
        fs::create_dir_all(&scratch).map_err(Error::io(&scratch))?;
        let tmp =
            tempfile::Builder::new().prefix(BLOB_TMP_PREFIX).tempfile_in(&scratch).map_err(Error::io(&scratch))?;
        Ok(Self { inner: HashingWriter::new(BufWriter::with_capacity(128 * 1024, tmp)), place })
    }

    /// A writer for the blob `expected` names that continues what an
    /// earlier, interrupted writer left (`<scratch>/partial-sha256-<hex>`,
    /// kept when a transfer fails or the process dies), so that a rerun
    /// fetches only the rest ([`Self::len`] bytes are there already, hashed
    /// into [`Self::prefix_hasher`]). The partial file is locked while it is
    /// written; when another writer holds it, this one starts afresh in a
    /// temporary file of its own. Data over the expected size is discarded.
    pub(crate) fn resumable(scratch: PathBuf, place: BlobPlace, expected: &Descriptor) -> Result<Self> {
        fs::create_dir_all(&scratch).map_err(Error::io(&scratch))?;
        let path =
            scratch.join(format!("{PARTIAL_PREFIX}{}-{}", expected.digest.algorithm(), expected.digest.encoded()));
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io(&path))?;
        if file.try_lock().is_err() {
            return Self::new(scratch, place);
        }
        let mut len = file.metadata().map_err(Error::io(&path))?.len();
        if len > expected.size {
            file.set_len(0).map_err(Error::io(&path))?;
            len = 0;
        }
        // Hash what is there; the file position ends after it.
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut buf = vec![0u8; 128 * 1024];
        let mut read = 0u64;
        while read < len {
            let n = file.read(&mut buf).map_err(Error::io(&path))?;
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut hasher, &buf[..n]);
            read += n as u64;
        }
        let mut tmp =
            NamedTempFile::from_parts(file, tempfile::TempPath::try_from_path(&path).map_err(Error::io(&path))?);
        // Kept when the writer is dropped unfinished: the next run resumes it.
        tmp.disable_cleanup(true);
        Ok(Self { inner: HashingWriter::resumed(BufWriter::with_capacity(128 * 1024, tmp), hasher, read), place })
    }

    /// The hash state of what was written so far (for a
    /// resumable writer, of what it started with).
    pub fn prefix_hasher(&self) -> sha2::Sha256 {
        self.inner.hasher().clone()
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

    fn persist(tmp: NamedTempFile, place: &BlobPlace, digest: &Digest) -> Result<()> {
        make_readable(tmp.as_file(), tmp.path())?;
        let dest = place.path(digest);
        // On disk before its name exists; the directory is synced before
        // index.json (or a tree's link) names the blob.
        tmp.as_file().sync_all().map_err(Error::io(tmp.path()))?;
        if let BlobPlace::Tree(_) = place {
            let dir = dest.parent().expect("a tree blob path has a directory");
            fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        // Replacing an existing blob is harmless: same name, same bytes.
        tmp.persist(&dest).map_err(|e| Error::Io { path: dest.clone(), source: e.error })?;
        if let BlobPlace::Tree(_) = place {
            let dir = dest.parent().expect("a tree blob path has a directory");
            crate::durable::sync_dir(dir).map_err(Error::io(dir))?;
        }
        Ok(())
    }

    /// Copies `reader` to the end into the blob and completes it, verified
    /// against `expected` when given.
    pub fn copy_from(mut self, reader: &mut dyn Read, expected: Option<&Descriptor>) -> Result<(Digest, u64)> {
        // Not `io::copy`: a failing source and a failing disk are different errors.
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::ReadSource(e)),
            };
            self.write_all(&buf[..n]).map_err(Error::io(self.temp_path()))?;
        }
        match expected {
            Some(d) => self.complete_verified_as(d),
            None => self.complete(),
        }
    }

    /// Renames the content to its place (`blobs/sha256/<hex>` in a layout)
    /// and returns its digest and size.
    pub fn complete(self) -> Result<(Digest, u64)> {
        let place = self.place.clone();
        let (tmp, digest, len) = self.finish()?;
        Self::persist(tmp, &place, &digest)?;
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
        let place = self.place.clone();
        let (tmp, digest, len) = self.finish()?;
        if let Err(e) = digest::verify(&expected.digest, Some(expected.size), &digest, len) {
            // Also a kept partial file: bad data is never resumed.
            let _ignored = fs::remove_file(tmp.path());
            return Err(e.into());
        }
        Self::persist(tmp, &place, &digest)?;
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Files (not directories) under `dir`, relative, sorted.
    pub(crate) fn files(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(dir).expect("under dir").to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    /// A small image whose "layer" is arbitrary bytes: the store does not look inside.
    pub(crate) fn tiny_image(dir: &OciDir, layer: &[u8], tag: &str) -> StoredImage {
        let (d, n) = dir.write_blob(layer).expect("layer stored");
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::sha256(layer)
        );
        dir.write_image(config.as_bytes(), vec![Descriptor::new(MediaType::OciLayer, d, n)], Some(tag))
            .expect("image stored")
    }

    #[test]
    fn create_writes_a_fresh_layout_and_open_accepts_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("layout");
        OciDir::create(&root).expect("created");
        assert_eq!(fs::read(root.join("oci-layout")).expect("oci-layout"), OCI_LAYOUT_BYTES);
        assert_eq!(
            fs::read_to_string(root.join("index.json")).expect("index.json"),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        );
        assert!(root.join("blobs/sha256").is_dir());
        OciDir::open(&root).expect("opens");
        // Creating again keeps what is there.
        let dir = OciDir::create(&root).expect("re-created");
        tiny_image(&dir, b"layer", "v1");
        assert_eq!(OciDir::create(&root).expect("re-created").list_tags().expect("tags"), ["v1"]);
    }

    #[test]
    fn open_rejects_what_is_not_a_layout() {
        let cases: &[(Option<&str>, Option<&str>, &str)] = &[
            (None, Some("{}"), "is not an OCI image layout"),
            (Some(r#"{"imageLayoutVersion":"2.0.0"}"#), Some("{}"), "version `2.0.0`"),
            (Some("not json"), Some("{}"), "not a valid `oci-layout` file"),
            (Some(r#"{"imageLayoutVersion":"1.0.0"}"#), None, "I/O error on"),
            (Some(r#"{"imageLayoutVersion":"1.0.0"}"#), Some("[]"), "not a valid image index"),
            (Some(r#"{"imageLayoutVersion":"1.0.0"}"#), Some(r#"{"schemaVersion":2,"manifests":[]}"#), ""),
        ];
        for (layout, index, want) in cases {
            let tmp = tempfile::tempdir().expect("tempdir");
            if let Some(l) = layout {
                fs::write(tmp.path().join("oci-layout"), l).expect("write");
            }
            if let Some(i) = index {
                fs::write(tmp.path().join("index.json"), i).expect("write");
            }
            match OciDir::open(tmp.path()) {
                Ok(_) => assert!(want.is_empty(), "{layout:?} {index:?} opened"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!want.is_empty() && msg.contains(want), "{layout:?} {index:?}: {msg}");
                    assert!(msg.contains(&tmp.path().display().to_string()), "names the path: {msg}");
                }
            }
        }
    }

    #[test]
    fn blob_writer_completes_into_place() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let mut w = dir.blob_writer().expect("writer");
        assert!(w.temp_path().starts_with(tmp.path().join("blobs/sha256")), "temp file is next to the blobs");
        w.write_all(b"hello ").expect("write");
        w.write_all(b"world").expect("write");
        assert_eq!(w.len(), 11);
        let (d, n) = w.complete().expect("complete");
        assert_eq!((d.clone(), n), (Digest::sha256(b"hello world"), 11));
        assert_eq!(
            files(tmp.path()),
            ["blobs/sha256/".to_owned() + d.encoded(), "index.json".into(), "oci-layout".into()]
        );
        assert!(dir.has_blob(&d));
        assert_eq!(dir.read_blob_verified(&d, Some(11)).expect("reads"), b"hello world");
        // Storing the same content again is fine.
        assert_eq!(dir.write_blob(b"hello world").expect("again"), (d, 11));
    }

    #[test]
    fn failed_or_abandoned_writes_leave_nothing() {
        let good = Digest::sha256(b"content");
        let cases = [
            ("wrong digest", Descriptor::new(MediaType::OciLayer, Digest::sha256(b"other"), 7), "digest mismatch"),
            ("wrong size", Descriptor::new(MediaType::OciLayer, good.clone(), 8), "size mismatch"),
        ];
        for (what, desc, want) in cases {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = OciDir::create(tmp.path()).expect("created");
            let mut w = dir.blob_writer().expect("writer");
            w.write_all(b"content").expect("write");
            let e = w.complete_verified_as(&desc).expect_err(what);
            assert!(e.is_corrupt(), "{what}: {e:?}");
            let chain = format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default());
            assert!(chain.contains(want), "{what}: {chain}");
            assert_eq!(files(tmp.path()), ["index.json", "oci-layout"], "{what}");

            let e = dir.copy_blob_from(&b"content"[..], Some(&desc)).expect_err(what);
            assert!(e.is_corrupt(), "{what}: {e:?}");
            assert_eq!(files(tmp.path()), ["index.json", "oci-layout"], "{what}");
        }

        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let mut w = dir.blob_writer().expect("writer");
        w.write_all(b"abandoned").expect("write");
        drop(w);
        assert_eq!(files(tmp.path()), ["index.json", "oci-layout"]);

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("network down"))
            }
        }
        let e = dir.copy_blob_from(Failing, None).expect_err("source fails");
        assert!(matches!(e, Error::ReadSource(_)), "{e:?}");
        assert_eq!(files(tmp.path()), ["index.json", "oci-layout"]);

        let d = dir.copy_blob_from(&b"content"[..], Some(&Descriptor::new(MediaType::OciLayer, good.clone(), 7)));
        assert_eq!(d.expect("matches"), (good, 7));
    }

    #[test]
    fn blob_lookup_errors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let sha512: Digest = format!("sha512:{}", "a".repeat(128)).parse().expect("digest");
        assert!(matches!(dir.open_blob(&sha512), Err(Error::UnsupportedDigest { .. })));
        assert!(!dir.has_blob(&sha512));
        let missing = Digest::sha256(b"missing");
        let e = dir.open_blob(&missing).expect_err("missing");
        assert!(e.is_not_found());
        assert!(e.to_string().contains(missing.as_str()), "{e}");
        let (d, _) = dir.write_blob(b"good").expect("stored");
        fs::write(dir.blob_path(&d).expect("path"), b"evil").expect("corrupt it");
        assert!(dir.read_blob_verified(&d, None).expect_err("corrupt").is_corrupt());
    }

    #[test]
    fn tags_are_replaced_in_place_and_resolved() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let a = tiny_image(&dir, b"a", "a");
        let b = tiny_image(&dir, b"b", "b");
        let a2 = tiny_image(&dir, b"a2", "a");
        assert_eq!(dir.list_tags().expect("tags"), ["a", "b"]);
        assert_eq!(dir.resolve("a").expect("a").digest(), a2.manifest.digest());
        assert_ne!(a.manifest.digest(), a2.manifest.digest());
        assert_eq!(dir.resolve("b").expect("b"), b.manifest);
        // Untagged entries are recorded once per digest.
        dir.write_manifest(&a.manifest, None, None).expect("untagged");
        dir.write_manifest(&a.manifest, None, None).expect("untagged again");
        let index = dir.index().expect("index");
        assert_eq!(index.manifests.len(), 3);
        assert_eq!(index.manifests[2].digest, *a.manifest.digest());
        assert_eq!(dir.read_manifest(a.manifest.digest()).expect("by digest"), a.manifest);

        let e = dir.resolve("nope").expect_err("unknown tag");
        assert!(e.is_not_found());
        let msg = e.to_string();
        assert!(msg.contains("`nope`") && msg.contains(&tmp.path().display().to_string()), "{msg}");

        dir.remove_tag("a").expect("removed");
        assert_eq!(dir.list_tags().expect("tags"), ["b"]);
        assert!(dir.remove_tag("a").expect_err("gone").is_not_found());

        // index.json is written compact, Go style, with the OCI index media type.
        let text = fs::read_to_string(tmp.path().join("index.json")).expect("index.json");
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:"#), "{text}");
        assert!(text.contains(r#""annotations":{"org.opencontainers.image.ref.name":"b"}"#), "{text}");
        assert!(files(tmp.path()).iter().all(|f| !f.contains(".tmp-")), "no temp files left");
    }

    #[test]
    fn tag_grammar() {
        let cases = [
            ("latest", true),
            ("4.18.0-0.okd-2025-01-01-000000", true),
            ("quay.io/openshift/okd:4.18", true),
            ("a--b", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("a..b", false),
            ("a//b", false),
            ("a b", false),
            ("a---b", false),
        ];
        for (tag, ok) in cases {
            assert_eq!(validate_tag(tag).is_ok(), ok, "{tag:?}");
        }
    }

    #[test]
    fn images_round_trip_and_indexes_are_not_images() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let img = tiny_image(&dir, b"layer", "v1");
        let back = dir.read_image("v1").expect("reads");
        assert_eq!(back.manifest, img.manifest);
        assert_eq!(back.config, img.config);
        assert_eq!(back.layers(), img.layers());
        assert_eq!(dir.read_image_by_digest(img.manifest.digest()).expect("by digest").manifest, img.manifest);

        let index = ImageIndex {
            schema_version: 2,
            media_type: Some(MediaType::OciIndex),
            manifests: vec![img.manifest.descriptor()],
            annotations: None,
        };
        let raw = RawManifest::new(gojson::to_vec(&index).expect("json"), None).expect("raw");
        dir.write_manifest(&raw, Some("list"), None).expect("stored");
        let e = dir.read_image("list").expect_err("an index");
        assert!(matches!(e, Error::NotAnImage { .. }) && e.to_string().contains("`list`"), "{e}");
        let by_platform = dir.read_image_for_platform("v1", "linux/amd64").expect("single image");
        assert_eq!(by_platform.manifest, img.manifest);
        let mut entry = img.manifest.descriptor();
        entry.platform = Some(Platform::new("linux", "arm64"));
        let index = ImageIndex { manifests: vec![entry], ..index };
        let raw = RawManifest::new(gojson::to_vec(&index).expect("json"), None).expect("raw");
        dir.write_manifest(&raw, Some("list"), None).expect("stored");
        assert_eq!(dir.read_image_for_platform("list", "linux/arm64").expect("arm64").manifest, img.manifest);
        let e = dir.read_image_for_platform("list", "linux/s390x").expect_err("no s390x");
        assert!(matches!(e, Error::PlatformNotFound { .. }) && e.to_string().contains("linux/s390x"), "{e}");

        // A layer that was never stored.
        let ghost = Descriptor::new(MediaType::OciLayer, Digest::sha256(b"ghost"), 5);
        assert!(dir.write_image(b"{}", vec![ghost], Some("x")).expect_err("missing layer").is_not_found());
        assert_eq!(dir.list_tags().expect("tags"), ["v1", "list"]);
    }

    #[test]
    fn fsck_finds_each_kind_of_problem() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let img = tiny_image(&dir, b"layer one", "one");
        let report = dir.fsck().expect("fsck");
        assert!(report.is_ok() && report.leftovers.is_empty(), "{report:?}");
        assert_eq!(report.blobs_checked, 3);

        let layer = img.layers()[0].digest.clone();
        fs::write(dir.blob_path(&layer).expect("path"), b"layer 0ne").expect("corrupt, same size");
        fs::remove_file(dir.blob_path(&img.config_descriptor().digest).expect("path")).expect("remove config");
        fs::write(tmp.path().join("blobs/sha256/.tmp-blob-xyz"), b"partial").expect("leftover");
        let other = tiny_image(&dir, b"layer two", "two");
        fs::write(dir.blob_path(&other.layers()[0].digest).expect("path"), b"short").expect("truncate");

        let report = dir.fsck().expect("fsck");
        assert!(!report.is_ok());
        assert_eq!(report.corrupt.len(), 2, "{report:?}");
        assert!(report.corrupt.iter().any(|c| c.expected == layer));
        assert_eq!(report.missing.len(), 1, "{report:?}");
        assert_eq!(report.missing[0].digest, img.config_descriptor().digest);
        assert_eq!(report.missing[0].referenced_by, img.manifest.digest().to_string());
        assert_eq!(report.wrong_size.len(), 1, "{report:?}");
        assert_eq!((report.wrong_size[0].expected, report.wrong_size[0].found), (9, 5));
        assert_eq!(report.leftovers, [tmp.path().join("blobs/sha256/.tmp-blob-xyz")]);
    }

    #[test]
    fn gc_removes_only_unreachable_blobs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OciDir::create(tmp.path()).expect("created");
        let keep = tiny_image(&dir, b"shared", "keep");
        let (stray, _) = dir.write_blob(b"stray").expect("stray");
        let drop_me = tiny_image(&dir, b"only here", "drop");
        dir.remove_tag("drop").expect("untagged");
        let report = dir.remove_unreferenced().expect("gc");
        let mut want = vec![
            stray,
            drop_me.manifest.digest().clone(),
            drop_me.config_descriptor().digest.clone(),
            drop_me.layers()[0].digest.clone(),
        ];
        want.sort();
        assert_eq!(report.removed, want);
        assert!(dir.read_image("keep").is_ok());
        assert!(dir.fsck().expect("fsck").is_ok());
        assert_eq!(dir.read_image("keep").expect("kept").manifest, keep.manifest);

        // A missing manifest hides what it references: refuse to guess.
        fs::remove_file(dir.blob_path(keep.manifest.digest()).expect("path")).expect("remove");
        assert!(dir.remove_unreferenced().expect_err("refuses").is_not_found());
        assert!(dir.has_blob(&keep.layers()[0].digest));
    }
}
