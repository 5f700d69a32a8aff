//! Opening a layer blob as a tar stream: gzip, zstd or plain.

use std::fmt;
use std::io::{self, BufReader, Read};

use flate2::read::MultiGzDecoder;

use super::{DecodeError, Error, Origin, classify, tag_source};
use crate::image::Compression;

/// Magic bytes of a gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Magic bytes of a zstd frame (RFC 8878), little-endian 0xFD2FB528.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Guesses the compression of a blob from its first bytes (at least 4 are
/// needed to recognise zstd). Anything that is neither gzip nor zstd is
/// taken for plain tar; the tar parser will reject it if it is not.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A layer blob decompressed into its tar stream. Implements [`Read`];
/// hand it to [`extract_subtree`](super::extract_subtree),
/// [`Extractor::add_layer`](super::Extractor::add_layer) or `tar::Archive`.
///
/// Errors of the decoders are reported with kind `InvalidData`; errors of
/// the wrapped reader pass through with their own kind.
pub struct LayerReader<R: Read> {
    decoder: Decoder<R>,
    compression: Compression,
}

enum Decoder<R: Read> {
    Plain(Source<R>),
    // Boxed: the decoder state is large next to the plain variant.
    Gzip(Box<MultiGzDecoder<Source<R>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Source<R>>>),
}

impl<R: Read> fmt::Debug for LayerReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerReader").field("compression", &self.compression).finish_non_exhaustive()
    }
}

/// Opens `blob` as a layer compressed with `compression` (from the media
/// type: [`MediaType::layer_compression`](crate::image::MediaType::layer_compression)).
/// Gzip blobs may hold several members; all are read.
pub fn open_layer<R: Read>(blob: R, compression: Compression) -> Result<LayerReader<R>, Error> {
    LayerReader::new(Source { head: [0; 4], pos: 0, len: 0, inner: blob }, compression)
}

/// Opens `blob` as a layer whose compression is guessed from its magic
/// bytes ([`detect_compression`]), for when the media type is unknown or
/// not to be trusted.
pub fn open_layer_detect<R: Read>(mut blob: R) -> Result<LayerReader<R>, Error> {
    let mut head = [0u8; 4];
    let mut len = 0;
    // A reader may return fewer bytes than asked: loop until 4 or the end.
    while len < head.len() {
        match blob.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(Error::Open { source }),
        }
    }
    let compression = detect_compression(&head[..len]);
    LayerReader::new(Source { head, pos: 0, len, inner: blob }, compression)
}

impl<R: Read> LayerReader<R> {
    fn new(source: Source<R>, compression: Compression) -> Result<Self, Error> {
        let decoder = match compression {
            Compression::None => Decoder::Plain(source),
            Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(source))),
            Compression::Zstd => {
                Decoder::Zstd(zstd::stream::read::Decoder::new(source).map_err(|source| Error::Open { source })?)
            }
        };
        Ok(Self { decoder, compression })
    }

    /// The compression being decoded.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

impl<R: Read> Read for LayerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.decoder {
            // Plain: every error is the source's, already tagged.
            Decoder::Plain(r) => return r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        };
        result.map_err(|e| match classify(&e) {
            Origin::Source => e,
            Origin::Decoder => io::Error::new(io::ErrorKind::InvalidData, DecodeError(e)),
        })
    }
}

/// The raw blob, with the bytes that detection read put back in front, and
/// its errors tagged as the source's (see [`super::SourceError`]).
struct Source<R> {
    head: [u8; 4],
    pos: usize,
    len: usize,
    inner: R,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf).map_err(tag_source)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip to memory");
        e.finish().expect("gzip to memory")
    }

    fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn detect() {
        let cases: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b, 0x08, 0x00], Compression::Gzip),
            (&[0x1f, 0x8b], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x00], Compression::Zstd),
            (&[0x28, 0xb5, 0x2f], Compression::None),
            (b"manifests/", Compression::None),
            (&[], Compression::None),
        ];
        for (head, want) in cases {
            assert_eq!(detect_compression(head), *want, "{head:02x?}");
        }
    }

    #[test]
    fn open_each_compression() {
        let data = b"not really a tar, the reader does not care".repeat(50);
        let zstd = zstd::encode_all(&data[..], 3).expect("zstd to memory");
        let mut two_members = gzip(&data[..100]);
        two_members.extend(gzip(&data[100..]));
        let mut two_frames = zstd::encode_all(&data[..100], 3).expect("zstd to memory");
        two_frames.extend(zstd::encode_all(&data[100..], 3).expect("zstd to memory"));
        let cases: &[(&str, &[u8], Compression)] = &[
            ("plain", &data, Compression::None),
            ("gzip", &gzip(&data), Compression::Gzip),
            ("gzip, two members", &two_members, Compression::Gzip),
            ("zstd", &zstd, Compression::Zstd),
            ("zstd, two frames", &two_frames, Compression::Zstd),
        ];
        for (name, blob, compression) in cases {
            let r = open_layer(*blob, *compression).expect(name);
            assert_eq!(read_all(r).expect(name), data, "{name}");
            let r = open_layer_detect(*blob).expect(name);
            assert_eq!(r.compression(), *compression, "{name}");
            assert_eq!(read_all(r).expect(name), data, "{name}, detected");
        }
    }

    #[test]
    fn short_blob_detects_plain() {
        let r = open_layer_detect(&b"ab"[..]).expect("opens");
        assert_eq!(r.compression(), Compression::None);
        assert_eq!(read_all(r).expect("reads"), b"ab");
    }

    #[test]
    fn decoder_errors_are_invalid_data() {
        let mut blob = gzip(b"hello world, hello world");
        let n = blob.len();
        blob[12..n - 8].fill(0xff);
        let e = read_all(open_layer(&blob[..], Compression::Gzip).expect("opens")).expect_err("corrupt");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(classify(&e), Origin::Decoder);
    }

    #[test]
    fn source_errors_pass_through() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer"))
            }
        }
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let e = read_all(open_layer(Failing, compression).expect("opens")).expect_err("fails");
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{compression:?}");
            assert_eq!(classify(&e), Origin::Source, "{compression:?}");
        }
    }
}
