//! [`ImageLocation`]: where an image is, parsed from a user's string.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::Error;
use crate::image::Reference;

/// The transports of skopeo/containers-image that relbuild does not read,
/// recognised so that `dir:/x` is refused as such rather than taken for a
/// registry reference.
const OTHER_TRANSPORTS: &[&str] =
    &["containers-storage", "dir", "docker-archive", "docker-daemon", "ostree", "sif", "tarball"];

/// Where an image is: a registry, an OCI image layout directory or an
/// oci-archive file. Parsed with skopeo's transport syntax:
///
/// | input | location |
/// |---|---|
/// | `docker://REF`, or a plain `REF` | [`Registry`](Self::Registry) |
/// | `oci:DIR[:TAG]` | [`Layout`](Self::Layout) |
/// | `oci-archive:FILE[:TAG]` | [`Archive`](Self::Archive) |
/// | `dist:DIR//REPO[:TAG\|@DIGEST]` | [`Tree`](Self::Tree): a distribution storage tree |
///
/// As in skopeo, the path ends at the first `:` after the transport, so a
/// path cannot contain `:` and everything after it is the tag (an
/// `org.opencontainers.image.ref.name`, which may itself contain `:`).
/// A registry whose host is literally `oci` must be written `docker://oci:…`.
/// [`Display`](fmt::Display) writes the canonical form, which parses back to
/// the same value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageLocation {
    /// An image in a registry.
    Registry(Reference),
    /// An image in an OCI image layout directory.
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// The `index.json` tag; without one the layout must hold one image.
        tag: Option<String>,
    },
    /// An image in an oci-archive (a tar of a layout).
    Archive {
        /// The archive file.
        path: PathBuf,
        /// The tag inside the archive; without one it must hold one image.
        tag: Option<String>,
    },
    /// An image in a distribution storage tree (the directory a registry's
    /// filesystem driver serves; see [`crate::store::DistTree`]).
    Tree {
        /// The root directory (holding `docker/registry/v2/`).
        path: PathBuf,
        /// The repository.
        repo: String,
        /// The tag or digest; `None` is `latest` when read.
        version: Option<TreeVersion>,
    },
}

/// A tag or a digest in a [`ImageLocation::Tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeVersion {
    /// `:TAG`.
    Tag(String),
    /// `@DIGEST`.
    Digest(crate::image::Digest),
}

impl ImageLocation {
    /// The tag for a layout or archive, if any (registry references carry
    /// their own).
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Registry(_) => None,
            Self::Layout { tag, .. } | Self::Archive { tag, .. } => tag.as_deref(),
            Self::Tree { version: Some(TreeVersion::Tag(t)), .. } => Some(t),
            Self::Tree { .. } => None,
        }
    }
}

impl FromStr for ImageLocation {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &'static str| Error::InvalidLocation { input: input.to_owned(), reason };
        if let Some(reference) = input.strip_prefix("docker://") {
            return parse_reference(input, reference);
        }
        if input.starts_with("docker:") {
            return Err(invalid("the docker transport is written `docker://REF`"));
        }
        if let Some(rest) = input.strip_prefix("dist:") {
            return parse_tree(rest).map_err(invalid);
        }
        for (transport, archive) in [("oci:", false), ("oci-archive:", true)] {
            if let Some(rest) = input.strip_prefix(transport) {
                let (path, tag) = match rest.split_once(':') {
                    Some((path, tag)) => (path, Some(tag)),
                    None => (rest, None),
                };
                if path.is_empty() {
                    return Err(invalid("the path is empty"));
                }
                if tag.is_some_and(str::is_empty) {
                    return Err(invalid("the tag after `:` is empty"));
                }
                if tag.is_some_and(|t| t.chars().any(|c| c.is_whitespace() || c.is_control())) {
                    return Err(invalid("the tag contains whitespace or a control character"));
                }
                let (path, tag) = (PathBuf::from(path), tag.map(str::to_owned));
                return Ok(if archive { Self::Archive { path, tag } } else { Self::Layout { path, tag } });
            }
        }
        if let Some((transport, _)) = input.split_once(':')
            && OTHER_TRANSPORTS.contains(&transport)
        {
            return Err(Error::UnsupportedTransport { input: input.to_owned(), transport: transport.to_owned() });
        }
        parse_reference(input, input)
    }
}

fn parse_tree(rest: &str) -> Result<ImageLocation, &'static str> {
    let (dir, name) = rest.split_once("//").ok_or("a tree location is `dist:DIR//REPO[:TAG|@DIGEST]`")?;
    if dir.is_empty() {
        return Err("the path is empty");
    }
    let (repo, version) = if let Some((repo, digest)) = name.split_once('@') {
        (repo, Some(TreeVersion::Digest(digest.parse().map_err(|_| "the digest after `@` is not valid")?)))
    } else if let Some((repo, tag)) = name.split_once(':') {
        crate::store::check_tag(tag).map_err(|_| "the tag after `:` is not a valid registry tag")?;
        (repo, Some(TreeVersion::Tag(tag.to_owned())))
    } else {
        (name, None)
    };
    crate::store::check_repository(repo).map_err(|_| "the repository is not a valid registry repository name")?;
    Ok(ImageLocation::Tree { path: PathBuf::from(dir), repo: repo.to_owned(), version })
}

fn parse_reference(input: &str, reference: &str) -> Result<ImageLocation, Error> {
    reference
        .parse()
        .map(ImageLocation::Registry)
        .map_err(|source| Error::InvalidReference { input: input.to_owned(), source })
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, tag) = match self {
            Self::Registry(r) => return write!(f, "docker://{r}"),
            Self::Layout { path, tag } => ("oci", path, tag),
            Self::Archive { path, tag } => ("oci-archive", path, tag),
            Self::Tree { path, repo, version } => {
                write!(f, "dist:{}//{repo}", path.display())?;
                return match version {
                    Some(TreeVersion::Tag(t)) => write!(f, ":{t}"),
                    Some(TreeVersion::Digest(d)) => write!(f, "@{d}"),
                    None => Ok(()),
                };
            }
        };
        write!(f, "{transport}:{}", path.display())?;
        if let Some(tag) = tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips() {
        for s in [
            "docker://quay.io/a/b:1",
            "oci:/tmp/x",
            "oci:rel/dir:v1:extra",
            "oci-archive:f.tar:t",
            "dist:/srv/mirror//openshift/release:4.99.0",
            "dist:rel//a@sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
            "dist:/x//a",
        ] {
            let loc: ImageLocation = s.parse().expect("parses");
            assert_eq!(loc.to_string(), s);
            assert_eq!(loc.to_string().parse::<ImageLocation>().expect("reparses"), loc);
        }
        for bad in ["dist:/x", "dist://a", "dist:/x//A", "dist:/x//a:-t", "dist:/x//a@sha256:1", "dist:/x//../a"] {
            assert!(bad.parse::<ImageLocation>().is_err(), "{bad}");
        }
    }
}
