//! A tar writer whose bytes equal those of Go's `archive/tar` `Writer`.
//!
//! `oc adm release new` writes the `release-manifests/` layer with Go's
//! `archive/tar` and leaves `Header.Format` unspecified. Reproducing its
//! diffID therefore means reproducing Go's choices exactly:
//!
//! - USTAR (`ustar\0` + `00`) whenever the header fits; a path longer than
//!   100 bytes is split into `prefix` + `name` at a `/` when both halves fit
//!   (prefix ≤ 155, name ≤ 100) and the path is ASCII;
//! - otherwise a PAX `x` header named `<dir>/PaxHeaders.0/<base>` (cut to 100
//!   bytes) with mode/uid/gid/mtime `0`, devmajor/devminor left NUL, and
//!   records `"<len> <key>=<value>\n"` sorted by key, followed by the real
//!   header whose name is the path cut to 100 bytes (non-ASCII dropped);
//! - numeric fields as zero-padded octal followed by one NUL (`0000777\0`,
//!   `00000000000\0`), the checksum as 6 octal digits, NUL, space;
//! - uid/gid 0, empty uname/gname, no trailing `/` added to directories;
//! - file data padded to 512 bytes, and [`GoTarWriter::finish`] writes exactly
//!   two zero blocks: no padding to a 10 KiB record.

use std::io::{self, Write};

const BLOCK: usize = 512;
const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;

/// Typeflag of a regular file.
const TYPE_REG: u8 = b'0';
/// Typeflag of a directory.
const TYPE_DIR: u8 = b'5';
/// Typeflag of a PAX extended header.
const TYPE_PAX: u8 = b'x';

/// Writes a tar stream byte-identical to Go's `archive/tar` for headers that
/// set only name, mode, mtime (whole seconds), typeflag and size.
#[derive(Debug)]
pub struct GoTarWriter<W: Write> {
    inner: W,
    finished: bool,
}

impl<W: Write> GoTarWriter<W> {
    /// Wraps `inner`; nothing is written until the first entry.
    pub fn new(inner: W) -> Self {
        Self { inner, finished: false }
    }

    /// Appends a directory entry. `name` is written as given (Go adds no
    /// trailing `/`).
    pub fn append_dir(&mut self, name: &str, mode: u32, mtime: i64) -> io::Result<()> {
        self.write_header(name, mode, mtime, TYPE_DIR, 0)
    }

    /// Appends a regular file with its data.
    pub fn append_file(&mut self, name: &str, mode: u32, mtime: i64, data: &[u8]) -> io::Result<()> {
        let size = u64::try_from(data.len()).expect("because a slice length fits in u64");
        self.write_header(name, mode, mtime, TYPE_REG, size)?;
        self.write_padded(data)
    }

    /// Writes the two zero blocks that end the archive and returns the
    /// inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; BLOCK * 2])?;
        self.finished = true;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn write_padded(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)?;
        let rem = data.len() % BLOCK;
        if rem != 0 {
            self.inner.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn write_header(&mut self, name: &str, mode: u32, mtime: i64, typeflag: u8, size: u64) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("tar archive already finished"));
        }
        let mut pax: Vec<(&str, String)> = Vec::new();
        let mut split = None;
        if !name.is_ascii() || name.len() > NAME_SIZE {
            match split_ustar_path(name) {
                Some(s) => split = Some(s),
                None => pax.push(("path", name.to_owned())),
            }
        }
        let mtime_fits = fits_octal(12, mtime);
        if !mtime_fits {
            pax.push(("mtime", mtime.to_string()));
        }
        let size_i = i64::try_from(size).unwrap_or(i64::MAX);
        let size_fits = fits_octal(12, size_i);
        if !size_fits {
            pax.push(("size", size.to_string()));
        }
        if pax.is_empty() {
            let (prefix, base) = split.unwrap_or(("", name));
            let mut blk = template(base, mode, mtime, typeflag, size_i);
            format_string(&mut blk[345..500], prefix);
            set_ustar_and_checksum(&mut blk);
            return self.inner.write_all(&blk);
        }
        // PAX: first the extended header file, then the main header.
        pax.sort_by(|a, b| a.0.cmp(b.0));
        let mut data = String::new();
        for (k, v) in &pax {
            data.push_str(&pax_record(k, v));
        }
        let (dir, file) = match name.rfind('/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => ("", name),
        };
        let pax_name = go_path_join(dir, file);
        let mut pax_name = to_ascii(&pax_name);
        pax_name.truncate(NAME_SIZE);
        let pax_name = pax_name.trim_end_matches('/');
        let mut blk = [0u8; BLOCK];
        blk[156] = TYPE_PAX;
        format_string(&mut blk[0..100], pax_name);
        format_octal(&mut blk[100..108], 0);
        format_octal(&mut blk[108..116], 0);
        format_octal(&mut blk[116..124], 0);
        format_octal(&mut blk[124..136], i64::try_from(data.len()).unwrap_or(0));
        format_octal(&mut blk[136..148], 0);
        set_ustar_and_checksum(&mut blk);
        self.inner.write_all(&blk)?;
        self.write_padded(data.as_bytes())?;

        let ascii = to_ascii(name);
        let mut blk =
            template(&ascii, mode, if mtime_fits { mtime } else { 0 }, typeflag, if size_fits { size_i } else { 0 });
        // Go's PAX path keeps the (cut) name without the USTAR prefix.
        set_ustar_and_checksum(&mut blk);
        self.inner.write_all(&blk)
    }
}

/// `path.Join(dir, "PaxHeaders.0", file)` for the inputs Go's writer sees.
fn go_path_join(dir: &str, file: &str) -> String {
    let dir = dir.trim_end_matches('/');
    let mut parts: Vec<&str> = Vec::new();
    if !dir.is_empty() {
        parts.push(dir);
    }
    parts.push("PaxHeaders.0");
    if !file.is_empty() {
        parts.push(file);
    }
    parts.join("/")
}

/// The V7 + USTAR fields common to every header (Go `templateV7Plus`).
fn template(name: &str, mode: u32, mtime: i64, typeflag: u8, size: i64) -> [u8; BLOCK] {
    let mut blk = [0u8; BLOCK];
    blk[156] = typeflag;
    format_string(&mut blk[0..100], name);
    format_octal(&mut blk[100..108], i64::from(mode));
    format_octal(&mut blk[108..116], 0);
    format_octal(&mut blk[116..124], 0);
    format_octal(&mut blk[124..136], size);
    format_octal(&mut blk[136..148], mtime);
    format_octal(&mut blk[329..337], 0);
    format_octal(&mut blk[337..345], 0);
    blk
}

fn set_ustar_and_checksum(blk: &mut [u8; BLOCK]) {
    blk[257..263].copy_from_slice(b"ustar\0");
    blk[263..265].copy_from_slice(b"00");
    // Go computes the checksum with the field as spaces, then writes 6
    // octal digits, NUL, space.
    let sum: i64 = blk.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b) }).sum();
    format_octal(&mut blk[148..155], sum);
    blk[155] = b' ';
}

/// Go `formatter.formatString`: copy, NUL-terminate when shorter, cut when
/// longer (and never leave a trailing `/` in a cut field).
fn format_string(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
    if b.len() < field.len() {
        field[b.len()] = 0;
    }
    if b.len() > field.len() && field[field.len() - 1] == b'/' {
        let kept = s[..field.len() - 1].trim_end_matches('/').len();
        field[kept] = 0;
    }
}

/// Go `formatter.formatOctal`: zero-padded octal leaving one NUL; values that
/// do not fit are written as 0 (Go then relies on PAX records).
fn format_octal(field: &mut [u8], x: i64) {
    let x = if fits_octal(field.len(), x) { x } else { 0 };
    let s = format!("{x:o}");
    let pad = field.len().saturating_sub(s.len() + 1);
    let s = format!("{}{s}", "0".repeat(pad));
    format_string(field, &s);
}

fn fits_octal(n: usize, x: i64) -> bool {
    let octal_bits = u32::try_from(n.saturating_sub(1) * 3).unwrap_or(63);
    x >= 0 && (octal_bits >= 63 || x < (1i64 << octal_bits))
}

/// Go `splitUSTARPath`.
fn split_ustar_path(name: &str) -> Option<(&str, &str)> {
    let mut length = name.len();
    if length <= NAME_SIZE || !name.is_ascii() {
        return None;
    } else if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// Go `toASCII`: drops every non-ASCII character.
fn to_ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii).collect()
}

/// Go `formatPAXRecord`: `"<len> <key>=<value>\n"`, the length counting itself.
fn pax_record(k: &str, v: &str) -> String {
    let mut size = k.len() + v.len() + 3;
    size += size.to_string().len();
    let mut record = format!("{size} {k}={v}\n");
    if record.len() != size {
        size = record.len();
        record = format!("{size} {k}={v}\n");
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ustar_fields_match_go() {
        let mut w = GoTarWriter::new(Vec::new());
        w.append_dir("release-manifests", 0o777, 1710000060).expect("write");
        let out = w.finish().expect("finish");
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(&out[100..108], b"0000777\0");
        assert_eq!(&out[136..148], b"14573103674\0");
        assert_eq!(&out[148..156], b"012612\0 ");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[329..345], b"0000000\x000000000\0");
    }

    #[test]
    fn split_and_pax() {
        let cases = [
            ("a/b", None),
            (&*format!("release-manifests/{}", "y".repeat(99)), Some(("release-manifests", 99))),
            (&*format!("release-manifests/{}", "y".repeat(101)), None),
        ];
        for (name, want) in cases {
            let got = split_ustar_path(name).map(|(p, b)| (p, b.len()));
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(pax_record("path", &"x".repeat(137)), format!("147 path={}\n", "x".repeat(137)));
        assert_eq!(pax_record("a", "b"), "6 a=b\n");
        assert_eq!(pax_record("k", &"v".repeat(94)), format!("101 k={}\n", "v".repeat(94)));
    }
}
