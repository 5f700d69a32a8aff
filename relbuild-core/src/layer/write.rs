//! Writing a reproducible layer, hashing it as it is written.

use std::cmp::Ordering;
use std::fmt;
use std::io::{self, Read, Write};

use flate2::GzBuilder;
use flate2::write::GzEncoder;

use super::Error;
use super::path;
use crate::digest::HashingWriter;
use crate::image::{Compression, Digest};

/// The OS byte of the gzip header: 255, "unknown", as Go's `compress/gzip`
/// writes, so headers match layers written by `oc`.
const GZIP_OS_UNKNOWN: u8 = 255;
/// Go's default gzip level (its -1 maps to 6).
const DEFAULT_GZIP_LEVEL: u32 = 6;
/// zstd's own default level.
const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// How a layer is written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The compression of the blob. Defaults to gzip, which every registry
    /// and runtime reads.
    pub compression: Compression,
    /// The compression level (gzip 0–9, zstd 1–22); `None` for the default
    /// (gzip 6, as Go; zstd 3). Different levels give different digests.
    /// The gzip header's XFL byte follows the level as Go's does (2 at 9,
    /// 4 at 1, else 0), except at level 0 where flate2 writes 4 and Go 0.
    pub level: Option<u32>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self { compression: Compression::Gzip, level: None }
    }
}

impl WriteOptions {
    /// Sets [`compression`](Self::compression).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`level`](Self::level).
    pub fn level(mut self, level: u32) -> Self {
        self.level = Some(level);
        self
    }
}

/// What a written layer turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// sha256 of the blob as written: the manifest's layer digest.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

/// The content of a [`LayerEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryContent {
    /// A directory.
    Directory,
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// Path in the layer, `/`-separated; cleaned before writing (`./a` and
    /// `/a` become `a`); must not climb out with `..`.
    pub path: String,
    /// Permission bits (e.g. `0o444`).
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch; not negative.
    pub mtime: i64,
    /// What the entry is.
    pub content: EntryContent,
}

impl LayerEntry {
    /// A directory entry.
    pub fn dir(path: impl Into<String>, mode: u32, mtime: i64) -> Self {
        Self { path: path.into(), mode, mtime, content: EntryContent::Directory }
    }

    /// A regular file entry.
    pub fn file(path: impl Into<String>, mode: u32, mtime: i64, data: impl Into<Vec<u8>>) -> Self {
        Self { path: path.into(), mode, mtime, content: EntryContent::File(data.into()) }
    }

    /// A symbolic link entry (mode 0o777, as Linux reports for links).
    pub fn symlink(path: impl Into<String>, target: impl Into<String>, mtime: i64) -> Self {
        Self { path: path.into(), mode: 0o777, mtime, content: EntryContent::Symlink(target.into()) }
    }
}

/// Sorts entries by path, component by component, so that a directory
/// comes before its content and its content stays together (`a`, `a/b`,
/// `a-b`, not `a`, `a-b`, `a/b`). Stable: equal paths keep their order.
pub fn sort_entries(entries: &mut [LayerEntry]) {
    entries.sort_by(|a, b| compare_paths(&a.path, &b.path));
}

fn compare_paths(a: &str, b: &str) -> Ordering {
    a.split('/').filter(|c| !c.is_empty() && *c != ".").cmp(b.split('/').filter(|c| !c.is_empty() && *c != "."))
}

/// Writes a layer blob with reproducible bytes: entries in the order given,
/// ustar headers with uid/gid 0, empty user and group names and the
/// caller's mtimes; a gzip header without name or time, like Go's.
///
/// Layers: tar → sha256 (diffID) → gzip/zstd/none → sha256 (digest) → `out`.
/// Nothing is buffered beyond the compressor's window.
///
/// After an error the tar may be incomplete: drop the writer and its output.
pub struct LayerWriter<W: Write> {
    tar: tar::Builder<HashingWriter<Encoder<W>>>,
}

impl<W: Write> fmt::Debug for LayerWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerWriter").finish_non_exhaustive()
    }
}

impl<W: Write> LayerWriter<W> {
    /// Starts a layer written to `out`.
    pub fn new(out: W, options: &WriteOptions) -> Result<Self, Error> {
        let out = HashingWriter::new(out);
        let encoder = match options.compression {
            Compression::None => Encoder::None(out),
            Compression::Gzip => {
                let level = flate2::Compression::new(options.level.unwrap_or(DEFAULT_GZIP_LEVEL).min(9));
                Encoder::Gzip(GzBuilder::new().mtime(0).operating_system(GZIP_OS_UNKNOWN).write(out, level))
            }
            Compression::Zstd => {
                let level = options.level.map_or(DEFAULT_ZSTD_LEVEL, |l| i32::try_from(l.min(22)).unwrap_or(22));
                let encoder = zstd::stream::write::Encoder::new(out, level)
                    .map_err(|source| Error::Write { entry: None, source })?;
                Encoder::Zstd(encoder)
            }
        };
        let mut tar = tar::Builder::new(HashingWriter::new(encoder));
        // Only matters for `append_path`-style calls, which we do not make;
        // set it so no host metadata can ever leak in.
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(Self { tar })
    }

    /// Appends one entry.
    pub fn append(&mut self, entry: &LayerEntry) -> Result<(), Error> {
        match &entry.content {
            EntryContent::Directory => {
                let (mut header, path) = header(&entry.path, entry.mode, entry.mtime, tar::EntryType::Directory, 0)?;
                self.write(&entry.path, |tar| tar.append_data(&mut header, &path, io::empty()))
            }
            EntryContent::File(data) => {
                let (mut header, path) =
                    header(&entry.path, entry.mode, entry.mtime, tar::EntryType::Regular, data.len() as u64)?;
                self.write(&entry.path, |tar| tar.append_data(&mut header, &path, &data[..]))
            }
            EntryContent::Symlink(target) => {
                let (mut header, path) = header(&entry.path, entry.mode, entry.mtime, tar::EntryType::Symlink, 0)?;
                self.write(&entry.path, |tar| tar.append_link(&mut header, &path, target))
            }
        }
    }

    /// Appends every entry, in order.
    pub fn append_all<'a>(&mut self, entries: impl IntoIterator<Item = &'a LayerEntry>) -> Result<(), Error> {
        entries.into_iter().try_for_each(|e| self.append(e))
    }

    /// Appends a regular file streamed from `data`, which must yield exactly
    /// `size` bytes, for files too large to hold in memory.
    pub fn append_reader(
        &mut self,
        path: &str,
        mode: u32,
        mtime: i64,
        size: u64,
        data: impl Read,
    ) -> Result<(), Error> {
        let (mut header, cleaned) = header(path, mode, mtime, tar::EntryType::Regular, size)?;
        let mut data = Exact { inner: data.take(size), remaining: size };
        self.write(path, |tar| tar.append_data(&mut header, &cleaned, &mut data))
    }

    fn write(
        &mut self,
        entry: &str,
        f: impl FnOnce(&mut tar::Builder<HashingWriter<Encoder<W>>>) -> io::Result<()>,
    ) -> Result<(), Error> {
        f(&mut self.tar).map_err(|source| Error::Write { entry: Some(entry.to_owned()), source })
    }

    /// Ends the tar (two zero blocks, no padding to a record), flushes the
    /// compressor and returns the layer's digests and the output.
    pub fn finish(self) -> Result<(LayerInfo, W), Error> {
        let err = |source| Error::Write { entry: None, source };
        let (encoder, diff_id, uncompressed_size) = self.tar.into_inner().map_err(err)?.finish();
        let (out, digest, size) = encoder.finish().map_err(err)?.finish();
        Ok((LayerInfo { diff_id, digest, size, uncompressed_size }, out))
    }
}

/// A deterministic header and the cleaned path for an entry.
fn header(path: &str, mode: u32, mtime: i64, kind: tar::EntryType, size: u64) -> Result<(tar::Header, String), Error> {
    let invalid = |reason| Error::InvalidEntry { entry: path.to_owned(), reason };
    let cleaned = path::clean(path.as_bytes()).ok_or_else(|| invalid("the path climbs out with `..`"))?;
    if cleaned.is_empty() {
        return Err(invalid("the path is empty or the root"));
    }
    let cleaned = String::from_utf8(cleaned).expect("cleaning a str only removes ASCII bytes at `/` boundaries");
    let mtime = u64::try_from(mtime).map_err(|_| invalid("a tar header cannot hold a negative mtime"))?;
    // ustar, like Go's writer when names fit; the tar crate switches to a
    // GNU long-name entry for longer names. A fresh ustar header has empty
    // user and group names.
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    Ok((header, cleaned))
}

/// The compressor between the tar hash and the blob hash.
enum Encoder<W: Write> {
    None(HashingWriter<W>),
    Gzip(GzEncoder<HashingWriter<W>>),
    Zstd(zstd::stream::write::Encoder<'static, HashingWriter<W>>),
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> io::Result<HashingWriter<W>> {
        match self {
            Self::None(w) => Ok(w),
            Self::Gzip(w) => w.finish(),
            Self::Zstd(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::None(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
            Self::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::None(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
            Self::Zstd(w) => w.flush(),
        }
    }
}

/// A reader that fails instead of ending early: the tar header already
/// announced the size, and a short body would desynchronise the archive.
struct Exact<R> {
    inner: io::Take<R>,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file content ended {} bytes before its declared size", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A writer whose inner writer runs on its own thread: bytes are handed over
/// in 64 KiB chunks through a short queue, so compressing and hashing (the
/// inner writer) overlap with producing the bytes (tar, rewriting). Call
/// [`finish`](Self::finish) to get the inner writer back; an error of the
/// inner writer surfaces on the next write or on `finish`.
pub struct OffThreadWriter<W: Write + Send + 'static> {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    thread: Option<std::thread::JoinHandle<io::Result<W>>>,
}

const OFF_THREAD_CHUNK: usize = 64 << 10;

impl<W: Write + Send + 'static> fmt::Debug for OffThreadWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffThreadWriter").field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> OffThreadWriter<W> {
    /// Starts the thread that writes into `inner`.
    pub fn new(mut inner: W) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new().name("relbuild-writer".into()).spawn(move || {
            for chunk in rx {
                inner.write_all(&chunk)?;
            }
            Ok(inner)
        })?;
        Ok(Self { tx: Some(tx), buf: Vec::with_capacity(OFF_THREAD_CHUNK), thread: Some(thread) })
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(OFF_THREAD_CHUNK));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            return Ok(());
        }
        // The thread stopped: it failed. Report its error.
        self.join().and_then(|_| Err(io::Error::other("the writer thread stopped early")))
    }

    fn join(&mut self) -> io::Result<W> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Err(io::Error::other("the writer thread already finished")),
        }
    }

    /// Writes what is buffered, waits for the thread, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for OffThreadWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= OFF_THREAD_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    /// Hands over what is buffered (the inner writer is flushed by `finish`).
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() { Ok(()) } else { self.send() }
    }
}

impl<W: Write + Send + 'static> Drop for OffThreadWriter<W> {
    fn drop(&mut self) {
        // Unblock and reap the thread; its result is dropped with us.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ignored = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use flate2::read::MultiGzDecoder;

    use super::*;
    use crate::layer::{ExtractOptions, extract_subtree, open_layer_detect};

    const T0: i64 = 1_700_000_000;

    fn sample() -> Vec<LayerEntry> {
        vec![
            LayerEntry::dir("release-manifests", 0o777, T0),
            LayerEntry::file("release-manifests/image-references", 0o444, T0, &b"{\"kind\":\"ImageStream\"}"[..]),
            LayerEntry::file("release-manifests/release-metadata", 0o444, T0, &b"{\"version\":\"4.16.0\"}"[..]),
            LayerEntry::file("release-manifests/0000_50_a_x.yaml", 0o444, T0 - 60, &b"kind: ConfigMap\n"[..]),
        ]
    }

    fn write(entries: &[LayerEntry], options: &WriteOptions) -> (LayerInfo, Vec<u8>) {
        let mut w = LayerWriter::new(Vec::new(), options).expect("new writer");
        w.append_all(entries).expect("append");
        w.finish().expect("finish")
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(blob).read_to_end(&mut out).expect("gunzip");
        out
    }

    #[test]
    fn reproducible_and_hashed() {
        for options in [
            WriteOptions::default(),
            WriteOptions::default().level(1),
            WriteOptions::default().level(9),
            WriteOptions::default().compression(Compression::Zstd),
            WriteOptions::default().compression(Compression::None),
        ] {
            let (info, blob) = write(&sample(), &options);
            let (again, blob2) = write(&sample(), &options);
            assert_eq!((&info, &blob), (&again, &blob2), "{options:?}: reproducible");
            let tar = match options.compression {
                Compression::Gzip => gunzip(&blob),
                Compression::Zstd => zstd::decode_all(&blob[..]).expect("unzstd"),
                Compression::None => blob.clone(),
            };
            assert_eq!(info.digest, Digest::sha256(&blob), "{options:?}");
            assert_eq!(info.size, blob.len() as u64, "{options:?}");
            assert_eq!(info.diff_id, Digest::sha256(&tar), "{options:?}");
            assert_eq!(info.uncompressed_size, tar.len() as u64, "{options:?}");
            // Four 512-byte headers, four bodies of one block, two zero
            // blocks, and no padding to a 10 KiB record (like Go).
            assert_eq!(tar.len(), 512 * (4 + 3 + 2), "{options:?}");
            assert!(tar.ends_with(&[0; 1024]), "{options:?}");
        }
    }

    #[test]
    fn gzip_header_like_go() {
        let (_, blob) = write(&sample(), &WriteOptions::default());
        assert_eq!(blob[..10], [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);
    }

    /// Golden digests: a change means layers written by an older relbuild
    /// no longer match; bump only on purpose (e.g. a flate2 backend update).
    #[test]
    fn golden_digests() {
        let (info, _) = write(&sample(), &WriteOptions::default());
        assert_eq!(info.diff_id.as_str(), "sha256:5636387b4376085a432f1c2cdef484211474b1202814c8d55737f52181769b5c");
        assert_eq!(info.digest.as_str(), "sha256:0574395f81b0d900fd9fdbaf36673331c96ca136f7857421816fff5f646d9b8f");
        assert_eq!((info.size, info.uncompressed_size), (250, 4608));
    }

    #[test]
    fn headers_are_deterministic() {
        let (_, blob) = write(&sample(), &WriteOptions::default());
        let tar_bytes = gunzip(&blob);
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let h = entry.header();
            assert_eq!(&h.as_bytes()[257..265], b"ustar\x0000", "ustar magic and version");
            assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            assert_eq!(h.groupname_bytes(), Some(&b""[..]));
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
            seen.push((path, h.mode().expect("mode"), h.mtime().expect("mtime"), h.entry_type()));
        }
        let t0 = T0 as u64;
        let want = [
            ("release-manifests".to_owned(), 0o777, t0, tar::EntryType::Directory),
            ("release-manifests/image-references".to_owned(), 0o444, t0, tar::EntryType::Regular),
            ("release-manifests/release-metadata".to_owned(), 0o444, t0, tar::EntryType::Regular),
            ("release-manifests/0000_50_a_x.yaml".to_owned(), 0o444, t0 - 60, tar::EntryType::Regular),
        ];
        assert_eq!(seen, want);
    }

    #[test]
    fn round_trip_through_extraction() {
        let long = format!("m/{}", "x".repeat(300));
        let entries = vec![
            LayerEntry::dir("./m/", 0o755, T0),
            LayerEntry::file("m/a", 0o640, T0, &b"a"[..]),
            LayerEntry::file(long.clone(), 0o644, T0 + 1, &b"long"[..]),
            LayerEntry::symlink("m/link", "a", T0),
        ];
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let (_, blob) = write(&entries, &WriteOptions::default().compression(compression));
            let r = open_layer_detect(&blob[..]).expect("opens");
            let x = extract_subtree([r], "m", &ExtractOptions::default()).expect("extracts");
            let files: Vec<(&str, &[u8], i64, u32)> =
                x.files.iter().map(|f| (f.path.as_str(), &f.data[..], f.mtime, f.mode)).collect();
            assert_eq!(
                files,
                [("a", &b"a"[..], T0, 0o640), (&long[2..], &b"long"[..], T0 + 1, 0o644)],
                "{compression:?}"
            );
            assert_eq!(x.skipped.len(), 1, "{compression:?}: the symlink");
        }
    }

    #[test]
    fn streamed_file() {
        let data = b"0123456789".repeat(1000);
        let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).expect("new");
        w.append_reader("m/big", 0o444, T0, data.len() as u64, &data[..]).expect("append");
        let (_, blob) = w.finish().expect("finish");
        let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).expect("new");
        w.append(&LayerEntry::file("m/big", 0o444, T0, data.clone())).expect("append");
        let (_, same) = w.finish().expect("finish");
        assert_eq!(blob, same, "streaming and in-memory writes agree");

        let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).expect("new");
        let e = w.append_reader("m/short", 0o444, T0, 100, &data[..10]).expect_err("short body");
        assert_eq!(e.to_string(), "writing the layer failed at entry `m/short`");
    }

    #[test]
    fn invalid_entries() {
        let cases = [
            (
                LayerEntry::file("../x", 0o644, T0, Vec::new()),
                "cannot write entry `../x`: the path climbs out with `..`",
            ),
            (LayerEntry::dir("./", 0o755, T0), "cannot write entry `./`: the path is empty or the root"),
            (LayerEntry::dir("a", 0o755, -1), "cannot write entry `a`: a tar header cannot hold a negative mtime"),
        ];
        for (entry, want) in cases {
            let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).expect("new");
            let e = w.append(&entry).expect_err(want);
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn sorting() {
        let mut entries: Vec<LayerEntry> =
            ["b", "a-b", "a/c", "a", "./a/b", "a/b/c"].iter().map(|p| LayerEntry::dir(*p, 0o755, 0)).collect();
        sort_entries(&mut entries);
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "./a/b", "a/b/c", "a/c", "a-b", "b"]);
    }

    #[test]
    fn off_thread_writer_passes_bytes_through_in_order_and_reports_errors() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = OffThreadWriter::new(Vec::new()).expect("thread");
        for piece in data.chunks(1000) {
            w.write_all(piece).expect("write");
        }
        assert_eq!(w.finish().expect("finish"), data);

        struct Fails(usize);
        impl Write for Fails {
            fn write(&mut self, d: &[u8]) -> io::Result<usize> {
                if self.0 < d.len() {
                    return Err(io::Error::other("disk full"));
                }
                self.0 -= d.len();
                Ok(d.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = OffThreadWriter::new(Fails(100_000)).expect("thread");
        let err = (0..100).try_for_each(|_| w.write_all(&[7; 10_000])).err().or_else(|| w.finish().err());
        assert_eq!(err.expect("the inner error surfaces").to_string(), "disk full");
    }
}
