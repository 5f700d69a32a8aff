//! Content digests (`algorithm:encoded`), as defined by the OCI image spec.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use super::Error;

/// A content digest such as `sha256:9f86d0…`.
///
/// The OCI image spec says a digest is `algorithm ":" encoded`, where the
/// algorithm is `[a-z0-9]+([+._-][a-z0-9]+)*` and the encoded part is
/// `[a-zA-Z0-9=_-]+`. For `sha256` the encoded part MUST be 64 lower-case hex
/// characters; this type enforces that, so a `Digest` with algorithm `sha256`
/// can always be verified.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    value: String,
    colon: usize,
}

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self::from_sha256_bytes(&Sha256::digest(bytes).into())
    }

    /// A sha256 digest from a finished hash.
    pub fn from_sha256_bytes(hash: &[u8; 32]) -> Self {
        let value = format!("sha256:{}", hex::encode(hash));
        Self { value, colon: 6 }
    }

    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.value[..self.colon]
    }

    /// The encoded part: lower-case hex for sha256.
    pub fn encoded(&self) -> &str {
        &self.value[self.colon + 1..]
    }

    /// True when the algorithm is sha256, the only one relbuild can verify.
    pub fn is_sha256(&self) -> bool {
        self.algorithm() == "sha256"
    }

    /// `algorithm:encoded`.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Errors with [`Error::DigestMismatch`] unless `found` equals `self`.
    pub fn verify(&self, found: &Digest) -> Result<(), Error> {
        if self == found { Ok(()) } else { Err(Error::DigestMismatch { expected: self.clone(), found: found.clone() }) }
    }
}

fn valid_algorithm(s: &str) -> bool {
    // [a-z0-9]+([+._-][a-z0-9]+)*
    !s.is_empty()
        && s.split(['+', '.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &'static str| Error::InvalidDigest { input: s.to_owned(), reason };
        let colon = s.find(':').ok_or_else(|| bad("expected `algorithm:hex`, found no `:`"))?;
        let (algorithm, encoded) = (&s[..colon], &s[colon + 1..]);
        if !valid_algorithm(algorithm) {
            return Err(bad("the algorithm must match `[a-z0-9]+([+._-][a-z0-9]+)*`"));
        }
        if encoded.is_empty() || !encoded.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(bad("the encoded part must match `[a-zA-Z0-9=_-]+`"));
        }
        if algorithm == "sha256"
            && (encoded.len() != 64 || !encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            return Err(bad("a sha256 digest needs exactly 64 lower-case hex characters"));
        }
        Ok(Self { value: s.to_owned(), colon })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.value)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let hex64 = "a".repeat(64);
        let cases: &[(&str, bool)] = &[
            (&format!("sha256:{hex64}"), true),
            (&format!("sha512:{}", "b".repeat(128)), true),
            ("sha256:abc", false),
            (&format!("sha256:{}", "A".repeat(64)), false),
            (&format!("SHA256:{hex64}"), false),
            ("nocolon", false),
            ("sha256:", false),
            (":abc", false),
            ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", true),
        ];
        for (input, ok) in cases {
            assert_eq!(input.parse::<Digest>().is_ok(), *ok, "{input}");
        }
    }

    #[test]
    fn sha256_of_empty() {
        let d = Digest::sha256(b"");
        assert_eq!(d.as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.algorithm(), "sha256");
        assert!(d.verify(&Digest::sha256(b"x")).is_err());
    }
}
