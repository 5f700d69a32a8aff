//! `release-manifests/release-metadata`: the Cincinnati metadata (spec §3.3)
//! and the release name rules (spec §1.4).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Error;

/// The `kind` of release-metadata.
pub const CINCINNATI_KIND: &str = "cincinnati-metadata-v0";

/// Go `CincinnatiMetadata`, in Go field order: `previous` is always present
/// (`[]` when empty), `next` and `metadata` are omitted when empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CincinnatiMetadata {
    /// Always [`CINCINNATI_KIND`].
    pub kind: String,
    /// The release name, normalised by semver `String()`. The CVO checks it
    /// equals the image-references `metadata.name`.
    pub version: String,
    /// Versions that may upgrade to this one.
    pub previous: Vec<String>,
    /// Versions this one may upgrade to ("use with caution").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<String>,
    /// Free-form string map (`url`, `io.openshift.upgrades.graph.release.channels`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl CincinnatiMetadata {
    /// Builds the metadata from the flag values: `name` must be semver;
    /// `previous`/`next` are normalised (semver `String()`, empty strings
    /// dropped, sorted lexicographically like Go's `sort.Strings`).
    pub fn new(
        name: &str,
        previous: &[impl AsRef<str>],
        next: &[impl AsRef<str>],
        metadata: BTreeMap<String, String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: CINCINNATI_KIND.to_owned(),
            version: parse_semver("--name", name)?.to_string(),
            previous: normalise_versions("--previous", previous)?,
            next: normalise_versions("--next", next)?,
            metadata,
        })
    }

    /// `json.MarshalIndent(cm, "", "  ")`, no trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        crate::image::gojson::to_vec_indent(self, "  ")
            .map_err(|source| Error::Serialize { what: "release-metadata", source })
    }
}

fn parse_semver(what: &'static str, value: &str) -> Result<semver::Version, Error> {
    semver::Version::parse(value).map_err(|source| Error::InvalidVersion { what, value: value.to_owned(), source })
}

/// `--previous`/`--next` normalisation: drop empty strings, semver
/// `String()`, then `sort.Strings` (lexicographic, not semver order).
pub fn normalise_versions(what: &'static str, values: &[impl AsRef<str>]) -> Result<Vec<String>, Error> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let v = v.as_ref();
        if v.is_empty() {
            continue;
        }
        out.push(parse_semver(what, v)?.to_string());
    }
    out.sort();
    Ok(out)
}

/// Parses `--metadata`: a JSON object whose values are all strings.
///
/// Stricter than oc on purpose: Cincinnati deserialises `metadata` as
/// `HashMap<String, String>`, so any other value makes it drop the release.
pub fn parse_metadata_flag(json: &str) -> Result<BTreeMap<String, String>, Error> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|source| Error::MetadataJson { source })?;
    let serde_json::Value::Object(map) = value else {
        return Err(Error::MetadataNotObject);
    };
    map.into_iter()
        .map(|(key, v)| match v {
            serde_json::Value::String(s) => Ok((key, s)),
            other => Err(Error::MetadataValueNotString { key, found: json_type(&other) }),
        })
        .collect()
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Checks that `--name` is semver (oc uses blang/semver).
pub fn validate_name(name: &str) -> Result<(), Error> {
    parse_semver("--name", name).map(|_| ())
}

/// The default release name: `0.0.1-<UTC now as 2006-01-02-150405>`.
pub fn default_name(now: jiff::Timestamp) -> String {
    format!("0.0.1-{}", now.strftime("%Y-%m-%d-%H%M%S"))
}

/// The name used for `0.0.1-snapshot` substitution: the release name
/// without build metadata, or `None` when the name is not semver (oc then
/// leaves `0.0.1-snapshot` as is).
pub fn snapshot_version(name: &str) -> Option<String> {
    let mut v = semver::Version::parse(name).ok()?;
    v.build = semver::BuildMetadata::EMPTY;
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_case_1() {
        let md = parse_metadata_flag(
            r#"{"description":"synthetic relbuild fixture","url":"https://example.com/errata/4.99.0"}"#,
        )
        .expect("object of strings");
        let cm = CincinnatiMetadata::new("4.99.0", &["4.98.1", "4.98.0"], &[] as &[&str], md).expect("valid");
        let want =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/golden/oc-n3/outputs/release-metadata"))
                .expect("golden file");
        assert_eq!(String::from_utf8(cm.to_json().expect("json")), String::from_utf8(want));
    }

    #[test]
    fn previous_next_normalisation() {
        let cm = CincinnatiMetadata::new("4.10.0", &["4.9.0", "", "4.10.0-rc.1"], &["4.11.0"], BTreeMap::new())
            .expect("valid");
        // lexicographic, as Go's sort.Strings
        assert_eq!(cm.previous, ["4.10.0-rc.1", "4.9.0"]);
        let json = String::from_utf8(cm.to_json().expect("json")).expect("utf8");
        assert!(json.contains("\"next\": [\n    \"4.11.0\"\n  ]"), "{json}");
        assert!(!json.contains("\"metadata\""));
        let empty = CincinnatiMetadata::new("1.0.0", &[] as &[&str], &[] as &[&str], BTreeMap::new()).expect("valid");
        assert_eq!(
            String::from_utf8(empty.to_json().expect("json")).expect("utf8"),
            "{\n  \"kind\": \"cincinnati-metadata-v0\",\n  \"version\": \"1.0.0\",\n  \"previous\": []\n}"
        );
    }

    /// `--metadata` absent, an empty object, and an object with an empty
    /// value: Go's `omitempty` drops the empty map, never an empty value.
    #[test]
    fn metadata_absent_empty_and_set() {
        let json = |md: BTreeMap<String, String>| {
            let cm = CincinnatiMetadata::new("1.0.0", &[] as &[&str], &[] as &[&str], md).expect("valid");
            String::from_utf8(cm.to_json().expect("json")).expect("utf8")
        };
        let none = json(BTreeMap::new());
        assert_eq!(json(parse_metadata_flag("{}").expect("empty object")), none);
        assert!(!none.contains("\"metadata\""), "{none}");
        let empty_value = json(parse_metadata_flag(r#"{"url": ""}"#).expect("object"));
        assert!(
            empty_value.ends_with("\"previous\": [],\n  \"metadata\": {\n    \"url\": \"\"\n  }\n}"),
            "{empty_value}"
        );
    }

    #[test]
    fn metadata_errors() {
        let cases = [
            ("[1]", "must be a JSON object"),
            ("{\"a\": 1}", "key `a` must have a string value"),
            ("{\"a\": \"x\", \"b\": {}}", "key `b`"),
            ("{", "not valid JSON"),
        ];
        for (input, want) in cases {
            let err = parse_metadata_flag(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
        assert!(validate_name("4.99").is_err());
        assert!(CincinnatiMetadata::new("4.99.0", &["x"], &[] as &[&str], BTreeMap::new()).is_err());
    }

    #[test]
    fn names() {
        let t: jiff::Timestamp = "2025-01-02T03:04:05Z".parse().expect("timestamp");
        assert_eq!(default_name(t), "0.0.1-2025-01-02-030405");
        validate_name(&default_name(t)).expect("default name is semver");
        assert_eq!(snapshot_version("4.99.0-rc.1+abc").as_deref(), Some("4.99.0-rc.1"));
        assert_eq!(snapshot_version("nope"), None);
    }
}
