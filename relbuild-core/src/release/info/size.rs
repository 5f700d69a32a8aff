//! `--size`: per image of a release, its age, layers, size and the bytes
//! only it has, and the layers images share. [`image_sizes`] reads the
//! images; [`size_report`] and [`write_size`] are pure.

use std::collections::BTreeMap;
use std::io::Write;

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};

use super::tabwriter::TabWriter;
use super::{CONCURRENT_IMAGES, Error, ReleaseInfo, short_human_duration};
use crate::image::{Digest, ImageConfig, Reference};
use crate::registry::Client;
use crate::release::read;
use crate::transfer::{ImageLocation, ImageSource};

/// One image of a release as `--size` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSize {
    /// The release tag.
    pub tag: String,
    /// The image config's creation time, if it has one.
    pub created: Option<jiff::Timestamp>,
    /// The image's layers (digest and compressed size), base first.
    pub layers: Vec<(Digest, u64)>,
}

/// A layer that several images of the release share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLayer {
    /// `A`, `B`, … in order of first appearance (by tag, then layer order).
    pub label: String,
    /// The layer.
    pub digest: Digest,
    /// Its compressed size.
    pub size: u64,
    /// How many images use it.
    pub users: usize,
}

/// What `--size` reports: per image, its layers, size and the bytes only it
/// has; and the layers that images share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeReport {
    /// One row per image, sorted by tag.
    pub rows: Vec<SizeRow>,
    /// Shared layers, labelled.
    pub shared: Vec<SharedLayer>,
    /// The bytes a registry holds for the whole release (each layer once).
    pub total: u64,
}

/// One image row of a [`SizeReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRow {
    /// The release tag.
    pub tag: String,
    /// The image creation time.
    pub created: Option<jiff::Timestamp>,
    /// Layer count.
    pub layers: usize,
    /// Sum of the compressed layer sizes.
    pub size: u64,
    /// Sum of the sizes of the layers no other image of the release has.
    pub unique: u64,
    /// Labels of its shared layers, in layer order.
    pub shared: Vec<String>,
}

/// Reads every component image of `info` (for a manifest list, its
/// `platform` image, `os/arch[/variant]`) and its config, at most 16 at
/// once, through the transfer engine; everything read is verified against
/// its digest. Images come back in `image-references` order.
///
/// A config that is not a JSON image config (or has no valid `created`)
/// leaves the creation time unknown rather than failing. A component that
/// cannot be read fails the whole call, naming the first such image in
/// `image-references` order: a manifest list without `platform` is
/// [`Error::ReadImage`] caused by [`read::Error::NoPlatform`], which lists
/// the platforms the list has.
pub async fn image_sizes(client: &Client, info: &ReleaseInfo, platform: &str) -> Result<Vec<ImageSize>, Error> {
    stream::iter(info.image_tags().map(|(t, p)| (t.name.clone(), p.to_owned())))
        .map(|(tag, pullspec)| image_size(client, tag, pullspec, platform))
        .buffered(CONCURRENT_IMAGES)
        .try_collect()
        .await
}

async fn image_size(client: &Client, tag: String, pullspec: String, platform: &str) -> Result<ImageSize, Error> {
    let reference: Reference = match pullspec.parse() {
        Ok(r) => r,
        Err(source) => return Err(Error::InvalidPullspec { tag, pullspec, source }),
    };
    let read = match read_image(client, reference, &pullspec, platform).await {
        Ok(read) => read,
        Err(source) => return Err(Error::ReadImage { tag, pullspec, source: Box::new(source) }),
    };
    let created = ImageConfig::from_slice(&read.config).ok().and_then(|c| c.created).and_then(|c| c.parse().ok());
    let layers = read.image.layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
    Ok(ImageSize { tag, created, layers })
}

async fn read_image(
    client: &Client,
    reference: Reference,
    pullspec: &str,
    platform: &str,
) -> Result<read::ReadImage, read::Error> {
    let source = ImageSource::open(&ImageLocation::Registry(reference), client)
        .await
        .map_err(|source| read::Error::Source { image: pullspec.to_owned(), source })?;
    read::read_image(&source, pullspec, platform).await
}

fn layer_label(mut n: usize) -> String {
    // A … Z, then AA, AB …, like spreadsheet columns.
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("because the bytes are ASCII letters")
}

/// Computes the `--size` table. A layer counts once per image even if an
/// image lists it twice.
pub fn size_report(images: &[ImageSize]) -> SizeReport {
    let mut images: Vec<&ImageSize> = images.iter().collect();
    images.sort_by(|a, b| a.tag.cmp(&b.tag));
    let mut users: BTreeMap<&Digest, (usize, u64)> = BTreeMap::new();
    for img in &images {
        let mut seen = std::collections::BTreeSet::new();
        for (d, size) in &img.layers {
            if seen.insert(d) {
                users.entry(d).or_insert((0, *size)).0 += 1;
            }
        }
    }
    let mut labels: BTreeMap<&Digest, String> = BTreeMap::new();
    let mut shared = Vec::new();
    for img in &images {
        for (d, size) in &img.layers {
            let n = users.get(d).map_or(0, |u| u.0);
            if n > 1 && !labels.contains_key(d) {
                let label = layer_label(labels.len());
                labels.insert(d, label.clone());
                shared.push(SharedLayer { label, digest: d.clone(), size: *size, users: n });
            }
        }
    }
    let rows = images
        .iter()
        .map(|img| {
            let mut seen = std::collections::BTreeSet::new();
            let unique_layers: Vec<&(Digest, u64)> = img.layers.iter().filter(|(d, _)| seen.insert(d)).collect();
            SizeRow {
                tag: img.tag.clone(),
                created: img.created,
                layers: img.layers.len(),
                size: unique_layers.iter().map(|(_, s)| s).sum(),
                unique: unique_layers
                    .iter()
                    .filter(|(d, _)| users.get(d).is_some_and(|u| u.0 == 1))
                    .map(|(_, s)| s)
                    .sum(),
                shared: unique_layers.iter().filter_map(|(d, _)| labels.get(d).cloned()).collect(),
            }
        })
        .collect();
    SizeReport { rows, shared, total: users.values().map(|(_, s)| s).sum() }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_000_000.0)
}

/// Renders a [`SizeReport`]: an `Images:` table (`NAME AGE LAYERS SIZE MB
/// UNIQUE MB SHARED`), then the shared layers and the release total.
///
/// oc's `--size` prints the same quantities; relbuild has no golden output
/// of it, so column layout may differ from oc's in detail (here: aligned
/// like the other tables, sizes in decimal MB with one decimal, shared
/// layers labelled `A`, `B`, … and listed below the table).
pub fn write_size(out: &mut impl Write, report: &SizeReport, now: jiff::Timestamp) -> Result<(), Error> {
    let mut tw = TabWriter::new(2);
    tw.line("Images:");
    tw.line("  NAME\tAGE\tLAYERS\tSIZE MB\tUNIQUE MB\tSHARED");
    for r in &report.rows {
        let age = r.created.map_or_else(|| "<unknown>".to_owned(), |c| short_human_duration(c, now));
        tw.line(&format!(
            "  {}\t{}\t{}\t{}\t{}\t{}",
            r.tag,
            age,
            r.layers,
            megabytes(r.size),
            megabytes(r.unique),
            r.shared.join("+")
        ));
    }
    let mut text = tw.finish();
    if !report.shared.is_empty() {
        let mut tw = TabWriter::new(2);
        tw.line("Shared layers:");
        for s in &report.shared {
            tw.line(&format!("  {}\t{}\t{} MB\tused by {} images", s.label, s.digest, megabytes(s.size), s.users));
        }
        text.push('\n');
        text.push_str(&tw.finish());
    }
    text.push_str(&format!("\nTotal: {} MB in {} images\n", megabytes(report.total), report.rows.len()));
    out.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256(&[n])
    }

    #[test]
    fn shared_and_unique_accounting() {
        let base = (d(1), 100);
        let images = vec![
            ImageSize { tag: "b".into(), created: None, layers: vec![base.clone(), (d(2), 10)] },
            ImageSize { tag: "a".into(), created: None, layers: vec![base.clone(), (d(3), 20), (d(4), 5)] },
            ImageSize { tag: "c".into(), created: None, layers: vec![base.clone(), (d(4), 5), (d(4), 5)] },
        ];
        let r = size_report(&images);
        let tags: Vec<&str> = r.rows.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(tags, ["a", "b", "c"], "sorted by tag");
        let a = &r.rows[0];
        assert_eq!((a.layers, a.size, a.unique), (3, 125, 20));
        assert_eq!(a.shared, ["A", "B"], "base first, then the layer a shares with c");
        let b = &r.rows[1];
        assert_eq!((b.size, b.unique, b.shared.clone()), (110, 10, vec!["A".to_owned()]));
        let c = &r.rows[2];
        assert_eq!((c.layers, c.size, c.unique), (3, 105, 0), "a repeated layer counts once");
        assert_eq!(r.shared.iter().map(|s| (s.label.as_str(), s.users)).collect::<Vec<_>>(), [("A", 3), ("B", 2)]);
        assert_eq!(r.total, 100 + 10 + 20 + 5);
        for row in &r.rows {
            assert!(row.unique <= row.size);
        }
    }

    #[test]
    fn labels_go_past_z() {
        let got: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702].into_iter().map(layer_label).collect();
        assert_eq!(got, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    }

    #[test]
    fn renders_rows_and_total() {
        let now: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().expect("valid");
        let images = vec![
            ImageSize {
                tag: "x".into(),
                created: Some("2024-12-31T00:00:00Z".parse().expect("valid")),
                layers: vec![(d(1), 2_500_000)],
            },
            ImageSize { tag: "y".into(), created: None, layers: vec![(d(1), 2_500_000), (d(2), 1_000_000)] },
        ];
        let mut out = Vec::new();
        write_size(&mut out, &size_report(&images), now).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "Images:\n  NAME  AGE        LAYERS  SIZE MB  UNIQUE MB  SHARED\n  x     1d         1       2.5      0.0        A\n  y     <unknown>  2       3.5      1.0        A\n\nShared layers:\n  A  sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a  2.5 MB  used by 2 images\n\nTotal: 3.5 MB in 2 images\n"
        );
    }
}
