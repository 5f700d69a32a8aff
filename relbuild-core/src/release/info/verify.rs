//! `--verify`: every component image of a release is there, with the
//! content its digest names.

use futures_util::stream::{self, StreamExt as _};

use super::{CONCURRENT_IMAGES, Error, ReleaseInfo};
use crate::image::Reference;
use crate::registry::Client;
use crate::transfer::{ImageLocation, ImageSource};

/// What [`verify_images`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The tags whose manifest was read and matched its digest, in
    /// `image-references` order.
    pub verified: Vec<String>,
    /// The images that did not verify, in `image-references` order. Each
    /// error names the tag and the pullspec ([`Error::image`]) and says what
    /// is wrong: [`Error::NotPinned`] (named by tag: nothing to check it
    /// against), [`Error::InvalidPullspec`], or [`Error::VerifyImage`] (the
    /// manifest is missing, its content does not match its digest, or the
    /// registry failed).
    pub failures: Vec<Error>,
}

impl VerifyReport {
    /// True when every image verified.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The images not pinned by digest, as `(tag, pullspec)`.
    pub fn unpinned(&self) -> impl Iterator<Item = (&str, &str)> {
        self.failures.iter().filter(|e| matches!(e, Error::NotPinned { .. })).filter_map(Error::image)
    }
}

/// Reads the manifest of every component image of `info` by the digest the
/// release pins it to, at most 16 at once, through the transfer engine,
/// which checks the bytes against that digest (and against the registry's
/// `Docker-Content-Digest`). For a manifest list, the list itself is checked.
/// Failures are collected, not returned early, so that one run names every
/// damaged image.
pub async fn verify_images(client: &Client, info: &ReleaseInfo) -> VerifyReport {
    let results: Vec<Result<String, Error>> =
        stream::iter(info.image_tags().map(|(t, p)| (t.name.clone(), p.to_owned())))
            .map(|(tag, pullspec)| verify_image(client, tag, pullspec))
            .buffered(CONCURRENT_IMAGES)
            .collect()
            .await;
    let mut report = VerifyReport::default();
    for r in results {
        match r {
            Ok(tag) => report.verified.push(tag),
            Err(e) => report.failures.push(e),
        }
    }
    report
}

async fn verify_image(client: &Client, tag: String, pullspec: String) -> Result<String, Error> {
    let reference: Reference = match pullspec.parse() {
        Ok(r) => r,
        Err(source) => return Err(Error::InvalidPullspec { tag, pullspec, source }),
    };
    if reference.digest().is_none() {
        return Err(Error::NotPinned { tag, pullspec });
    }
    let read = async { ImageSource::open(&ImageLocation::Registry(reference), client).await?.manifest().await };
    match read.await {
        Ok(_) => Ok(tag),
        Err(source) => Err(Error::VerifyImage { tag, pullspec, source: Box::new(source) }),
    }
}
