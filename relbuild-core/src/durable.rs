//! Durable renames: a file reaches its final name only with its content on
//! disk, and the rename itself is flushed, so after a crash or power loss
//! the name holds either its old content or all of the new, never a torn or
//! empty file.
//!
//! Used for single-file outputs (`--to-file`, `--to-signature`,
//! oci-archives) and for OCI layouts: each blob is synced before its rename,
//! and the blob directory before `index.json` names the blobs. Trees of
//! manifests (`extract`, `--to-dir`) and the build cache are renamed into
//! place without syncing: they are derived data that a rerun rewrites, and a
//! sync per file would cost a disk flush for each of thousands of files. The
//! cache checks every entry against its sha256 when reading, so a torn entry
//! is only a miss.

use std::fs::File;
use std::io;
use std::path::Path;

use tempfile::NamedTempFile;

/// Syncs `tmp`'s content, renames it to `dest` and syncs `dest`'s directory.
pub(crate) fn persist(tmp: NamedTempFile, dest: &Path) -> io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    sync_dir(parent_of(dest))
}

/// Flushes a directory's entries (the renames into it) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file; NTFS journals renames.
        let _ = dir;
        Ok(())
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_replaces() {
        let dir = tempfile::tempdir().expect("tmp");
        let dest = dir.path().join("out");
        for content in [&b"first"[..], b"second"] {
            let mut tmp = NamedTempFile::new_in(dir.path()).expect("tmp file");
            io::Write::write_all(&mut tmp, content).expect("write");
            persist(tmp, &dest).expect("persist");
            assert_eq!(std::fs::read(&dest).expect("read"), content);
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "no temporary file left");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let tmp = NamedTempFile::new_in(dir.path()).expect("tmp file");
        let e = persist(tmp, &dir.path().join("no/such/dir/out")).expect_err("no directory");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
