//! [`DistTree`]: a directory in the storage layout of the distribution
//! registry's filesystem driver, which a stock `docker-registry` serves as
//! it is (read-only, with `storage.maintenance.readonly` on).
//!
//! ```text
//! <root>/docker/registry/v2/
//!   blobs/sha256/<hex[0:2]>/<hex>/data                                 raw bytes
//!   repositories/<name>/_layers/sha256/<hex>/link                      every config and layer
//!   repositories/<name>/_manifests/revisions/sha256/<hex>/link         every manifest, index children too
//!   repositories/<name>/_manifests/tags/<tag>/current/link             the digest the tag names
//!   repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link  every digest it named
//! ```
//!
//! A link file is exactly `sha256:<64 hex>`, 71 bytes, no newline (one
//! more byte and the registry answers 500 on every read). Links are per
//! repository: a blob without a `_layers` link in a repository is not
//! served from it.
//!
//! Writes are ordered so that readers only ever see complete data: a blob
//! is written to a scratch directory outside `docker/` (`<root>/.relbuild-scratch/`),
//! hashed and verified as it streams, synced, then renamed into place; a
//! manifest's blob and revision link come after every blob it names, and
//! the tag last. Link files are written to a temporary name and renamed.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::layout::{BlobPlace, BlobWriter};
use super::{Error, Result};
use crate::digest;
use crate::image::{Descriptor, Digest, Manifest, RawManifest};

/// The scratch directory of partial blobs, beside `docker/`.
const SCRATCH: &str = ".relbuild-scratch";

/// A link file's exact length: `sha256:` and 64 hex digits.
pub const LINK_LEN: usize = 71;

/// A distribution storage tree (see the module documentation).
#[derive(Debug, Clone)]
pub struct DistTree {
    root: PathBuf,
}

impl DistTree {
    /// Opens the tree at `root` (the registry's `rootdirectory`), creating
    /// `docker/registry/v2/` when missing.
    pub fn create(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if root.exists() && !root.is_dir() {
            return Err(Error::Io {
                path: root,
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let tree = Self { root };
        fs::create_dir_all(tree.v2()).map_err(Error::io(tree.v2()))?;
        Ok(tree)
    }

    /// Opens an existing tree; `root` must hold `docker/registry/v2/`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let tree = Self { root: root.as_ref().to_path_buf() };
        if !tree.v2().is_dir() {
            return Err(Error::NotATree { path: tree.root });
        }
        Ok(tree)
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn v2(&self) -> PathBuf {
        self.root.join("docker/registry/v2")
    }

    fn repo_dir(&self, repo: &str) -> Result<PathBuf> {
        check_repository(repo)?;
        Ok(self.v2().join("repositories").join(repo))
    }

    /// Where blob `digest`'s data lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        if !digest.is_sha256() {
            return Err(Error::UnsupportedDigest { digest: digest.clone() });
        }
        Ok(BlobPlace::Tree(self.v2()).path(digest))
    }

    /// True when the blob's data is there with `size` bytes.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.metadata().is_ok_and(|m| m.is_file() && m.len() == size))
    }

    /// A writer for a new blob (scratch file outside `docker/`, renamed to
    /// its `data` path when complete).
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self.root.join(SCRATCH), BlobPlace::Tree(self.v2()))
    }

    /// A writer for blob `expected` that continues a partial file an
    /// interrupted copy left in scratch (see `BlobWriter::resumable`).
    pub fn resumable_writer(&self, expected: &Descriptor) -> Result<BlobWriter> {
        BlobWriter::resumable(self.root.join(SCRATCH), BlobPlace::Tree(self.v2()), expected)
    }

    /// Copies `reader` into the blob `expected` names, verified, unless the
    /// data is there already with the right size (a tree written by the
    /// engine only holds verified data; [`Self::verify`] re-hashes).
    /// Returns false when it was there.
    pub fn copy_blob_from(&self, reader: &mut dyn Read, expected: &Descriptor) -> Result<bool> {
        if self.has_blob(&expected.digest, expected.size) {
            return Ok(false);
        }
        self.blob_writer()?.copy_from(reader, Some(expected))?;
        Ok(true)
    }

    /// Links a config or layer blob into `repo` (`_layers`).
    pub fn link_layer(&self, repo: &str, digest: &Digest) -> Result<()> {
        let dir = self.repo_dir(repo)?.join("_layers");
        self.write_link(&link_path(&dir, digest)?, digest)
    }

    /// Stores a manifest's exact bytes as a blob and links its revision into
    /// `repo`. Every blob it names must be linked first.
    pub fn put_manifest(&self, repo: &str, manifest: &RawManifest) -> Result<()> {
        let digest = manifest.digest();
        if !self.has_blob(digest, manifest.bytes().len() as u64) {
            let desc = manifest.descriptor();
            self.blob_writer()?.copy_from(&mut manifest.bytes().as_ref(), Some(&desc))?;
        }
        let dir = self.repo_dir(repo)?.join("_manifests/revisions");
        self.write_link(&link_path(&dir, digest)?, digest)
    }

    /// Points `repo:tag` at `digest`: `current/link`, and the tag's index entry.
    pub fn tag(&self, repo: &str, tag: &str, digest: &Digest) -> Result<()> {
        check_tag(tag)?;
        let dir = self.repo_dir(repo)?.join("_manifests/tags").join(tag);
        let index = link_path(&dir.join("index"), digest)?;
        // A new tag appears whole, its current link and index entry at once.
        let rel_index = index.strip_prefix(&dir).expect("the index link is under the tag");
        if self.stage_dir(&dir, &[(Path::new("current/link"), digest), (rel_index, digest)])? {
            return Ok(());
        }
        self.write_link(&index, digest)?;
        self.write_link(&dir.join("current/link"), digest)
    }

    /// The digest `repo:tag` names.
    pub fn resolve(&self, repo: &str, tag: &str) -> Result<Digest> {
        check_tag(tag)?;
        let path = self.repo_dir(repo)?.join("_manifests/tags").join(tag).join("current/link");
        read_link(&path).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Error::TagNotFound { tag: format!("{repo}:{tag}"), path: self.root.clone() }
            }
            other => other,
        })
    }

    /// The manifest `digest` of `repo`, verified: it needs a revision link in
    /// `repo`, as the registry does.
    pub fn read_manifest(&self, repo: &str, digest: &Digest) -> Result<RawManifest> {
        let link = link_path(&self.repo_dir(repo)?.join("_manifests/revisions"), digest)?;
        if !link.is_file() {
            return Err(Error::BlobNotFound { digest: digest.clone(), path: link });
        }
        let bytes = self.read_blob_verified(digest, None)?;
        RawManifest::new(bytes, None)
            .map_err(|source| Error::InvalidManifest { path: self.blob_path(digest).unwrap_or_default(), source })
    }

    /// Opens blob `digest` of `repo` (it needs a `_layers` link there). The
    /// content is not verified; callers hash what they read.
    pub fn open_blob(&self, repo: &str, digest: &Digest) -> Result<File> {
        let link = link_path(&self.repo_dir(repo)?.join("_layers"), digest)?;
        if !link.is_file() {
            return Err(Error::BlobNotFound { digest: digest.clone(), path: link });
        }
        let path = self.blob_path(digest)?;
        File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound { digest: digest.clone(), path: path.clone() },
            _ => Error::Io { path: path.clone(), source },
        })
    }

    fn read_blob_verified(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound { digest: digest.clone(), path: path.clone() },
            _ => Error::Io { path: path.clone(), source },
        })?;
        digest::verify(digest, size, &Digest::sha256(&bytes), bytes.len() as u64)?;
        Ok(bytes)
    }

    /// The repositories (directories holding `_manifests` or `_layers`), sorted.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let base = self.v2().join("repositories");
        let mut out = Vec::new();
        if !base.is_dir() {
            return Ok(out);
        }
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let mut is_repo = false;
            for entry in fs::read_dir(&dir).map_err(Error::io(&dir))? {
                let entry = entry.map_err(Error::io(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !entry.file_type().map_err(Error::io(entry.path()))?.is_dir() {
                    continue;
                }
                match name.as_str() {
                    "_manifests" | "_layers" => is_repo = true,
                    "_uploads" => {}
                    _ => stack.push(entry.path()),
                }
            }
            if is_repo && let Ok(rel) = dir.strip_prefix(&base) {
                out.push(rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The tags of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let dir = self.repo_dir(repo)?.join("_manifests/tags");
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out: Vec<String> = fs::read_dir(&dir)
            .map_err(Error::io(&dir))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Checks the whole tree offline: every blob re-hashed (on every core),
    /// every link well-formed and naming data that is there, every manifest
    /// parsed, with its config, layers and children linked in its
    /// repository, and every tag resolving. Leftovers in the scratch
    /// directory are reported too.
    pub fn verify(&self) -> Result<TreeReport> {
        super::verify::verify_tree(self)
    }

    pub(super) fn v2_path(&self) -> PathBuf {
        self.v2()
    }

    pub(super) fn scratch_path(&self) -> PathBuf {
        self.root.join(SCRATCH)
    }
}

use super::verify::TreeReport;

/// `<dir>/sha256/<hex>/link`.
fn link_path(dir: &Path, digest: &Digest) -> Result<PathBuf> {
    if !digest.is_sha256() {
        return Err(Error::UnsupportedDigest { digest: digest.clone() });
    }
    Ok(dir.join("sha256").join(digest.encoded()).join("link"))
}

impl DistTree {
    /// Writes a link file (no newline) so that readers see either no link
    /// directory or a complete one: a new `<hex>/link` is written in a
    /// scratch directory and that directory renamed into place (a killed
    /// writer leaves its scratch, never an empty link directory, which the
    /// registry would take for damage); an existing link (a moved tag) is
    /// replaced through a temporary file beside it.
    fn write_link(&self, path: &Path, digest: &Digest) -> Result<()> {
        if fs::read(path).is_ok_and(|b| b == digest.as_str().as_bytes()) {
            return Ok(());
        }
        let dir = path.parent().expect("a link path has a directory");
        let name = Path::new(path.file_name().expect("a link path has a file name"));
        if self.stage_dir(dir, &[(name, digest)])? {
            return Ok(());
        }
        let mut tmp = tempfile::Builder::new().prefix(".link-").tempfile_in(dir).map_err(Error::io(dir))?;
        io::Write::write_all(&mut tmp, digest.as_str().as_bytes()).map_err(Error::io(path))?;
        set_mode(tmp.path(), 0o644)?;
        tmp.as_file().sync_all().map_err(Error::io(path))?;
        tmp.persist(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e.error })?;
        Ok(())
    }

    /// Creates `dir`, absent so far, holding link files at the given
    /// relative paths, so that readers see all of it or none: it is built
    /// in scratch and renamed into place. False when `dir` already exists
    /// (made by another writer, or before): the caller writes into it.
    fn stage_dir(&self, dir: &Path, links: &[(&Path, &Digest)]) -> Result<bool> {
        if dir.is_dir() {
            return Ok(false);
        }
        let parent = dir.parent().expect("a link directory has a parent");
        fs::create_dir_all(parent).map_err(Error::io(parent))?;
        let scratch = self.scratch_path();
        fs::create_dir_all(&scratch).map_err(Error::io(&scratch))?;
        let staged = tempfile::Builder::new().prefix(".link-").tempdir_in(&scratch).map_err(Error::io(&scratch))?;
        let staged = staged.keep();
        let written = links.iter().try_for_each(|(rel, digest)| {
            let file = staged.join(rel);
            let sub = file.parent().expect("a staged link has a directory");
            fs::create_dir_all(sub).map_err(Error::io(sub))?;
            write_link_file(&file, digest)
        });
        let renamed = written
            .and_then(|()| set_mode(&staged, 0o755))
            .and_then(|()| fs::rename(&staged, dir).map_err(Error::io(dir)));
        match renamed {
            Ok(()) => crate::durable::sync_dir(parent).map_err(Error::io(parent)).map(|()| true),
            Err(e) => {
                let _ignored = fs::remove_dir_all(&staged);
                if dir.is_dir() { Ok(false) } else { Err(e) }
            }
        }
    }
}

fn write_link_file(path: &Path, digest: &Digest) -> Result<()> {
    let mut f = File::create(path).map_err(Error::io(path))?;
    io::Write::write_all(&mut f, digest.as_str().as_bytes()).map_err(Error::io(path))?;
    // The registry's own links are 0644.
    set_mode(path, 0o644)?;
    f.sync_all().map_err(Error::io(path))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Reads a link file, which must be exactly `sha256:<64 hex>`.
pub(super) fn read_link(path: &Path) -> Result<Digest> {
    let bytes = fs::read(path).map_err(Error::io(path))?;
    parse_link(&bytes).ok_or_else(|| Error::InvalidLink { path: path.to_path_buf(), len: bytes.len() })
}

pub(super) fn parse_link(bytes: &[u8]) -> Option<Digest> {
    if bytes.len() != LINK_LEN {
        return None;
    }
    let s = std::str::from_utf8(bytes).ok()?;
    let d: Digest = s.parse().ok()?;
    (d.is_sha256() && d.encoded().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())).then_some(d)
}

/// A repository name as distribution accepts it: `/`-separated components
/// of `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, so it can never leave the
/// `repositories/` directory.
pub fn check_repository(repo: &str) -> Result<()> {
    let invalid = |reason: &'static str| Error::InvalidRepository { repo: repo.to_owned(), reason };
    if repo.is_empty() || repo.len() > 255 {
        return Err(invalid("it must be 1 to 255 characters"));
    }
    for part in repo.split('/') {
        let b = part.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
            return Err(invalid("each path component must start and end with a lowercase letter or digit"));
        }
        if !b.iter().all(|c| alnum(c) || matches!(c, b'.' | b'_' | b'-')) {
            return Err(invalid("only lowercase letters, digits, `.`, `_`, `-` and `/` are allowed"));
        }
        if part.contains("..") || part.contains("___") || part.contains("._") || part.contains("_.") {
            return Err(invalid("separators `.` and `_` may not repeat or mix"));
        }
    }
    Ok(())
}

/// A tag as distribution accepts it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<()> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok { Ok(()) } else { Err(Error::InvalidTag { tag: tag.to_owned(), reason: "not a valid registry tag" }) }
}

/// Every manifest a manifest names (index children), for callers walking a tree.
pub(super) fn children(raw: &RawManifest) -> Vec<Descriptor> {
    match raw.parse() {
        Ok(Manifest::Index(i)) => i.manifests,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MediaType;

    #[test]
    fn names() {
        for ok in ["a", "ocp/release", "openshift/release-images", "a.b/c_d/e--f", "x__y"] {
            check_repository(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "A", "a/", "/a", "a//b", "../a", "a/..", "a/.b", "a_", "a/b c", "a..b"] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        for ok in ["latest", "4.99.0", "4.99.0-x86_64-etcd", "_x"] {
            check_tag(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_are_71_bytes_without_newline() {
        let d = Digest::sha256(b"x");
        assert_eq!(parse_link(d.as_str().as_bytes()), Some(d.clone()));
        assert_eq!(d.as_str().len(), LINK_LEN);
        assert_eq!(parse_link(format!("{d}\n").as_bytes()), None);
        assert_eq!(parse_link(d.as_str().to_uppercase().as_bytes()), None);
        assert_eq!(parse_link(b"sha512:00"), None);
    }

    #[test]
    fn write_read_and_layout() {
        let tmp = tempfile::tempdir().expect("tmp");
        let tree = DistTree::create(tmp.path()).expect("creates");
        let layer = b"layer bytes".to_vec();
        let desc = Descriptor::new(MediaType::OciLayer, Digest::sha256(&layer), layer.len() as u64);
        assert!(tree.copy_blob_from(&mut layer.as_slice(), &desc).expect("stores"));
        assert!(!tree.copy_blob_from(&mut layer.as_slice(), &desc).expect("present"), "a second copy is skipped");
        tree.link_layer("ocp/release", &desc.digest).expect("links");
        let hex = desc.digest.encoded();
        let data = tmp.path().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
        assert_eq!(fs::read(&data).expect("data"), layer);
        let link = tmp.path().join(format!("docker/registry/v2/repositories/ocp/release/_layers/sha256/{hex}/link"));
        assert_eq!(fs::read(&link).expect("link"), desc.digest.as_str().as_bytes());
        let mut read = Vec::new();
        tree.open_blob("ocp/release", &desc.digest).expect("opens").read_to_end(&mut read).expect("reads");
        assert_eq!(read, layer);
        assert!(matches!(tree.open_blob("other", &desc.digest), Err(Error::BlobNotFound { .. })), "links are per repo");

        // A wrong digest stores nothing, and leaves nothing where readers look.
        let wrong = Descriptor::new(MediaType::OciLayer, Digest::sha256(b"other"), layer.len() as u64);
        assert!(tree.copy_blob_from(&mut layer.as_slice(), &wrong).is_err());
        assert!(!tree.blob_path(&wrong.digest).expect("path").exists());
        assert_eq!(fs::read_dir(tree.scratch_path()).expect("scratch").count(), 0, "the partial file is gone");
        assert_eq!(tree.repositories().expect("repos"), ["ocp/release"]);
    }
}
