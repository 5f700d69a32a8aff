//! Hashing while reading or writing, so content is verified as it streams.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::image::{self, Digest};

/// A writer that forwards to `inner` and hashes (sha256) and counts what passes.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0 }
    }

    /// Wraps `inner`, which already holds `len` bytes that `hasher` has
    /// hashed: writing continues after them, and [`Self::finish`] gives the
    /// digest of the whole.
    pub fn resumed(inner: W, hasher: Sha256, len: u64) -> Self {
        Self { inner, hasher, len }
    }

    /// The hash state of what was written so far.
    pub fn hasher(&self) -> &Sha256 {
        &self.hasher
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reference to the inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// A mutable reference to the inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer, the digest and the length of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_sha256_bytes(&self.hasher.finalize().into()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes (sha256) and counts what is read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0 }
    }

    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner reader, the digest and length of what was read.
    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, Digest::from_sha256_bytes(&self.hasher.finalize().into()), self.len)
    }

    /// Reads to the end and checks digest and size against `expected`.
    pub fn verify_to_end(mut self, expected: &Digest, expected_size: Option<u64>) -> Result<R, VerifyError> {
        io::copy(&mut self, &mut io::sink()).map_err(VerifyError::Io)?;
        let (inner, found, len) = self.finish();
        verify(expected, expected_size, &found, len)?;
        Ok(inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Why content failed verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The content had the wrong size.
    #[error("size mismatch for {digest}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// The digest that was asked for.
        digest: Digest,
        /// The expected size.
        expected: u64,
        /// The size found.
        found: u64,
    },
    /// The content had the wrong digest.
    #[error(transparent)]
    Digest(#[from] image::Error),
    /// Reading failed.
    #[error("reading content failed")]
    Io(#[source] io::Error),
}

/// Checks a finished hash against what was expected. Digests whose
/// algorithm is not sha256 cannot be checked and pass (the size still counts).
pub fn verify(
    expected: &Digest,
    expected_size: Option<u64>,
    found: &Digest,
    found_size: u64,
) -> Result<(), VerifyError> {
    if let Some(size) = expected_size
        && size != found_size
    {
        return Err(VerifyError::SizeMismatch { digest: expected.clone(), expected: size, found: found_size });
    }
    if expected.is_sha256() {
        expected.verify(found)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree() {
        let data = b"hello world".repeat(1000);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).expect("write");
        let (out, d, n) = w.finish();
        assert_eq!(out, data);
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, Digest::sha256(&data));
        HashingReader::new(&data[..]).verify_to_end(&d, Some(n)).expect("verifies");
        let e = HashingReader::new(&data[..10]).verify_to_end(&d, None).expect_err("wrong content");
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        let e = HashingReader::new(&data[..]).verify_to_end(&d, Some(n + 1)).expect_err("wrong size");
        assert!(matches!(e, VerifyError::SizeMismatch { .. }));
    }
}
