//! oci-archive tarballs: an OCI image layout packed into one (uncompressed) tar,
//! as `skopeo copy … oci-archive:FILE` writes and reads them.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::ops::Deref;
use std::path::{Component, Path, PathBuf};

use super::layout::{OciDir, make_readable};
use super::{Error, Result};
use crate::digest::{self, HashingWriter};
use crate::image::Digest;

/// Temp archives start with a dot, like the store's other temp files.
const ARCHIVE_TMP_PREFIX: &str = ".tmp-archive-";

/// Writes the layout as an oci-archive tar to `out`, deterministically:
/// entries sorted by path, directories before their content, mode 0755/0644,
/// uid/gid 0, no user or group names, mtime 0. Temp files (names starting
/// with `.`) and anything that is not a file or directory are left out.
pub fn write_archive(dir: &OciDir, out: impl Write) -> Result<()> {
    let root = dir.path();
    let mut builder = tar::Builder::new(out);
    let walk = walkdir::WalkDir::new(root).min_depth(1).follow_links(false).sort_by_file_name();
    let walk = walk.into_iter().filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            Error::Io { path, source: e.into() }
        })?;
        let rel = entry.path().strip_prefix(root).expect("walkdir yields paths under its root");
        let file_type = entry.file_type();
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if file_type.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            // Directory names end in `/`, as GNU tar and Go's archive/tar write them.
            let mut name = rel.to_string_lossy().into_owned().into_bytes();
            name.push(b'/');
            let field = &mut header.as_ustar_mut().expect("a ustar header").name;
            if name.len() > field.len() {
                // The layout has no deep directories; take the long-name path anyway.
                builder.append_data(&mut header, rel, io::empty()).map_err(Error::WriteArchive)?;
                continue;
            }
            field[..name.len()].copy_from_slice(&name);
            header.set_cksum();
            builder.append(&header, io::empty()).map_err(Error::WriteArchive)?;
        } else if file_type.is_file() {
            let path = entry.path();
            let file = File::open(path).map_err(Error::io(path))?;
            let size = file.metadata().map_err(Error::io(path))?.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(size);
            // `take`: should the file grow meanwhile, the entry must still
            // hold exactly the size its header declares.
            let mut reader = TrackedReader { inner: file.take(size), failed: false };
            let res = builder.append_data(&mut header, rel, &mut reader);
            if let Err(source) = res {
                return Err(if reader.failed {
                    Error::Io { path: path.to_path_buf(), source }
                } else {
                    Error::WriteArchive(source)
                });
            }
        }
    }
    builder.into_inner().map_err(Error::WriteArchive)?.flush().map_err(Error::WriteArchive)?;
    Ok(())
}

/// Writes the layout as an oci-archive at `dest`, by way of a temp file next
/// to it and a rename, so `dest` never holds a partial archive.
pub fn write_archive_to_path(dir: &OciDir, dest: impl AsRef<Path>) -> Result<()> {
    let dest = dest.as_ref();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new().prefix(ARCHIVE_TMP_PREFIX).tempfile_in(parent).map_err(Error::io(parent))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut out = BufWriter::new(tmp);
    write_archive(dir, &mut out).map_err(|e| match e {
        Error::WriteArchive(source) => Error::Io { path: tmp_path.clone(), source },
        e => e,
    })?;
    let tmp = out.into_inner().map_err(|e| Error::Io { path: tmp_path.clone(), source: e.into_error() })?;
    make_readable(tmp.as_file(), &tmp_path)?;
    crate::durable::persist(tmp, dest).map_err(Error::io(dest))?;
    Ok(())
}

/// Remembers whether an error came from reading, so that it can be told
/// apart from an error writing the archive.
struct TrackedReader<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for TrackedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed = true)
    }
}

/// Settings for [`read_archive_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ArchiveOptions {
    /// Where to create the temporary directory the archive is unpacked into;
    /// `None` for the system's temp directory.
    pub temp_dir: Option<PathBuf>,
    /// The largest entry accepted, in bytes.
    pub max_entry_size: u64,
    /// The largest total of entry sizes accepted, in bytes.
    pub max_total_size: u64,
    /// The most entries accepted.
    pub max_entries: u64,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        // Generous: a release payload and all its images is tens of GiB.
        Self { temp_dir: None, max_entry_size: 64 << 30, max_total_size: 1 << 40, max_entries: 1_000_000 }
    }
}

impl ArchiveOptions {
    /// Unpack into a temporary directory under `dir`.
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    /// Limits one entry to `bytes`.
    pub fn max_entry_size(mut self, bytes: u64) -> Self {
        self.max_entry_size = bytes;
        self
    }

    /// Limits the total of all entries to `bytes`.
    pub fn max_total_size(mut self, bytes: u64) -> Self {
        self.max_total_size = bytes;
        self
    }

    /// Limits the number of entries.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }
}

/// An oci-archive unpacked into a temporary [`OciDir`], which lives (and
/// is deleted) with this value. Derefs to the [`OciDir`].
#[derive(Debug)]
pub struct OciArchive {
    dir: OciDir,
    tmp: tempfile::TempDir,
}

impl OciArchive {
    /// The unpacked layout.
    pub fn dir(&self) -> &OciDir {
        &self.dir
    }

    /// Keeps the unpacked layout on disk and returns it.
    pub fn keep(self) -> OciDir {
        let _path = self.tmp.keep();
        self.dir
    }
}

impl Deref for OciArchive {
    type Target = OciDir;

    fn deref(&self) -> &OciDir {
        &self.dir
    }
}

/// Unpacks the oci-archive at `path` with [`ArchiveOptions::default`].
pub fn read_archive(path: impl AsRef<Path>) -> Result<OciArchive> {
    read_archive_with(path, &ArchiveOptions::default())
}

/// Unpacks the oci-archive at `path` into a temporary directory and opens it
/// as an [`OciDir`].
///
/// Only plain files and directories are unpacked; entries with absolute
/// paths, `..` components, links or device nodes are refused, so nothing can
/// land outside the temporary directory. Files named `blobs/sha256/<hex>`
/// are hashed while unpacking and must match their name.
pub fn read_archive_with(path: impl AsRef<Path>, opts: &ArchiveOptions) -> Result<OciArchive> {
    let archive = path.as_ref();
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("relbuild-oci-archive-");
        b
    };
    let tmp = match &opts.temp_dir {
        Some(dir) => builder.tempdir_in(dir).map_err(Error::io(dir))?,
        None => builder.tempdir().map_err(Error::io(std::env::temp_dir()))?,
    };
    let file = File::open(archive).map_err(Error::io(archive))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    let (mut count, mut total) = (0u64, 0u64);
    for entry in tar.entries().map_err(Error::io(archive))? {
        let mut entry = entry.map_err(Error::io(archive))?;
        count += 1;
        if count > opts.max_entries {
            return Err(Error::ArchiveTooLarge { archive: archive.into(), limit: opts.max_entries, what: "entries" });
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry = |reason| Error::UnsafeArchiveEntry { archive: archive.into(), entry: name.clone(), reason };
        let rel = sanitize(&entry.path().map_err(Error::io(archive))?).map_err(unsafe_entry)?;
        let dest = tmp.path().join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(&dest).map_err(Error::io(&dest))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(unsafe_entry("a file entry needs a name"));
                }
                let size = entry.size();
                if size > opts.max_entry_size {
                    let limit = opts.max_entry_size;
                    return Err(Error::ArchiveTooLarge { archive: archive.into(), limit, what: "bytes in one entry" });
                }
                total = total.saturating_add(size);
                if total > opts.max_total_size {
                    let limit = opts.max_total_size;
                    return Err(Error::ArchiveTooLarge { archive: archive.into(), limit, what: "bytes in total" });
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(Error::io(parent))?;
                }
                let out = File::create(&dest).map_err(Error::io(&dest))?;
                let mut w = HashingWriter::new(BufWriter::new(out));
                copy(&mut entry, archive, &mut w, &dest)?;
                let (out, found, len) = w.finish();
                out.into_inner().map_err(|e| Error::Io { path: dest.clone(), source: e.into_error() })?;
                if let Some(expected) = blob_digest(&rel) {
                    digest::verify(&expected, None, &found, len).map_err(|source| Error::CorruptArchiveEntry {
                        archive: archive.into(),
                        entry: name.clone(),
                        source,
                    })?;
                }
            }
            // Metadata that applies to the whole archive; nothing to unpack.
            tar::EntryType::XGlobalHeader => {}
            _ => return Err(unsafe_entry("only regular files and directories are allowed")),
        }
    }
    let dir = OciDir::open(tmp.path()).map_err(|e| match e {
        Error::NotALayout { .. } => Error::NotALayout { path: archive.to_path_buf() },
        e => e,
    })?;
    Ok(OciArchive { dir, tmp })
}

/// The path relative to the unpack directory, or why it is refused.
fn sanitize(path: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` components are not allowed"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute paths are not allowed"),
        }
    }
    Ok(out)
}

/// The digest a path names, when it is `blobs/sha256/<64 hex>`.
fn blob_digest(rel: &Path) -> Option<Digest> {
    let mut c = rel.components();
    match (c.next(), c.next(), c.next(), c.next()) {
        (Some(Component::Normal(b)), Some(Component::Normal(alg)), Some(Component::Normal(hex)), None)
            if b == "blobs" && alg == "sha256" =>
        {
            format!("sha256:{}", hex.to_str()?).parse().ok()
        }
        _ => None,
    }
}

/// `io::copy`, keeping read and write errors apart.
fn copy(mut r: impl Read, r_path: &Path, mut w: impl Write, w_path: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut n_total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(n_total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io { path: r_path.to_path_buf(), source: e }),
        };
        w.write_all(&buf[..n]).map_err(Error::io(w_path))?;
        n_total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::tests::{files, tiny_image};

    fn archive_bytes(dir: &OciDir) -> Vec<u8> {
        let mut out = Vec::new();
        write_archive(dir, &mut out).expect("archive written");
        out
    }

    #[test]
    fn round_trip_is_deterministic() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = OciDir::create(tmp.path().join("a")).expect("a");
        let img = tiny_image(&a, b"layer", "v1");
        fs::write(tmp.path().join("a/blobs/sha256/.tmp-blob-x"), b"partial").expect("leftover");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = OciDir::create(tmp.path().join("b")).expect("b");
        tiny_image(&b, b"layer", "v1");
        let bytes = archive_bytes(&a);
        assert_eq!(bytes, archive_bytes(&b), "same content, other directory and mtimes: same bytes");

        let names: Vec<String> = tar::Archive::new(&bytes[..])
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                assert_eq!((h.mtime().expect("mtime"), h.uid().expect("uid"), h.gid().expect("gid")), (0, 0, 0));
                e.path().expect("path").to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(names[..3], ["blobs/", "blobs/sha256/", names[2].as_str()]);
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
        assert_eq!(names[names.len() - 2..], ["index.json", "oci-layout"]);

        let path = tmp.path().join("out/archive.tar");
        fs::create_dir(tmp.path().join("out")).expect("mkdir");
        write_archive_to_path(&a, &path).expect("written");
        assert_eq!(fs::read(&path).expect("read"), bytes);
        assert_eq!(files(&tmp.path().join("out")), ["archive.tar"], "no temp file left");

        let unpacked = read_archive(&path).expect("unpacked");
        assert_eq!(unpacked.read_image("v1").expect("image").manifest, img.manifest);
        assert!(unpacked.fsck().expect("fsck").is_ok());
        let where_ = unpacked.path().to_path_buf();
        drop(unpacked);
        assert!(!where_.exists(), "temp dir removed with the handle");
    }

    struct Entry<'a> {
        name: &'a [u8],
        kind: tar::EntryType,
        data: &'a [u8],
    }

    fn file(name: &'static [u8], data: &'static [u8]) -> Entry<'static> {
        Entry { name, kind: tar::EntryType::Regular, data }
    }

    /// A tar with the names written verbatim: `tar::Header::set_path` refuses `..`.
    fn raw_tar(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name);
            h.set_entry_type(e.kind);
            h.set_mode(0o644);
            h.set_size(e.data.len() as u64);
            if matches!(e.kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.set_link_name("/etc/passwd").expect("link name");
            }
            h.set_cksum();
            b.append(&h, e.data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn hostile_archives_are_refused() {
        let layout: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let index: &[u8] = br#"{"schemaVersion":2,"manifests":[]}"#;
        let base = || vec![file(b"oci-layout", layout), file(b"index.json", index)];
        let wrong_hex = format!("blobs/sha256/{}", Digest::sha256(b"other").encoded()).into_bytes();
        let link = |kind| Entry { name: b"blobs/sha256/link", kind, data: b"" };
        let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
            ("parent dir", vec![file(b"../evil", b"x")], "`..` components"),
            ("nested parent dir", vec![file(b"blobs/../../evil", b"x")], "`..` components"),
            ("absolute", vec![file(b"/tmp/evil", b"x")], "absolute paths"),
            ("symlink", vec![link(tar::EntryType::Symlink)], "only regular files"),
            ("hard link", vec![link(tar::EntryType::Link)], "only regular files"),
            ("fifo", vec![Entry { name: b"fifo", kind: tar::EntryType::Fifo, data: b"" }], "only regular files"),
            (
                "blob not matching its name",
                vec![Entry { name: &wrong_hex, kind: tar::EntryType::Regular, data: b"x" }],
                "does not match its name",
            ),
            ("too big", vec![file(b"big", &[0u8; 2048])], "exceeds the limit of 1024 bytes in one entry"),
            ("no layout", vec![], "is not an OCI image layout"),
        ];
        for (what, entries, want) in cases {
            let tmp = tempfile::tempdir().expect("tempdir");
            let unpack_in = tmp.path().join("unpack");
            fs::create_dir(&unpack_in).expect("mkdir");
            let path = tmp.path().join("a.tar");
            let mut all = if what == "no layout" { vec![file(b"x", b"y")] } else { base() };
            all.extend(entries);
            fs::write(&path, raw_tar(&all)).expect("write tar");
            let opts = ArchiveOptions::default().temp_dir(&unpack_in).max_entry_size(1024);
            let e = read_archive_with(&path, &opts).expect_err(what);
            let msg = e.to_string();
            assert!(msg.contains(want) && msg.contains(&path.display().to_string()), "{what}: {msg}");
            assert!(!tmp.path().join("evil").exists(), "{what}");
            assert_eq!(fs::read_dir(&unpack_in).expect("read").count(), 0, "{what}: temp dir removed");
        }

        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("a.tar");
        fs::write(&path, raw_tar(&base())).expect("write tar");
        read_archive(&path).expect("the base case is fine");
        let e = read_archive_with(&path, &ArchiveOptions::default().max_entries(1)).expect_err("too many");
        assert!(e.to_string().contains("1 entries"), "{e}");
    }
}
