//! `relbuild extract`: which files of `release-manifests/` to write, and in
//! what form.
//!
//! By default every file is written byte for byte: unlike `oc adm release
//! extract`, which re-serialises YAML and drops non-manifest files, nothing
//! is reformatted or dropped. `normalize` gives oc's form. Filters keep a
//! manifest file when at least one of its documents passes.

use super::include::{self, Cloud, InclusionFilter};
use super::info::is_manifest_name;
use super::names::{IMAGE_REFERENCES, RELEASE_METADATA};

/// What to keep and how to write it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// oc's form: each manifest document as `---` + YAML with sorted keys.
    pub normalize: bool,
    /// Keep only manifests the CVO would apply under this filter
    /// (`--included`); metadata files are kept.
    pub included: Option<InclusionFilter>,
    /// Keep only `CredentialsRequest`s (`--credentials-requests`), for one
    /// cloud if given (`--cloud`).
    pub credentials_requests: Option<Option<Cloud>>,
}

/// Why a file was left out, for `--verbose` reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The file.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// The selected files and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Files to write: name → bytes, in input order.
    pub files: Vec<(String, Vec<u8>)>,
    /// Files not written.
    pub left_out: Vec<LeftOut>,
}

/// Applies `options` to the files of `release-manifests/`.
pub fn select(files: &[(String, Vec<u8>)], options: &ExtractOptions) -> Result<Selection, include::Error> {
    let filtering = options.included.is_some() || options.credentials_requests.is_some();
    let mut sel = Selection::default();
    for (name, data) in files {
        let is_metadata = name == IMAGE_REFERENCES || name == RELEASE_METADATA;
        if !is_manifest_name(name) {
            if is_metadata || !filtering {
                sel.files.push((name.clone(), data.clone()));
            } else {
                sel.left_out.push(LeftOut { file: name.clone(), reason: "not a manifest".to_owned() });
            }
            continue;
        }
        if filtering {
            let manifests = include::parse_manifests(data, name)?;
            let mut reason = None;
            let keep = manifests.iter().any(|m| {
                let included = options.included.as_ref().map_or(Ok(()), |f| f.check(m));
                if let Err(e) = &included {
                    reason.get_or_insert_with(|| e.to_string());
                }
                let creds = options.credentials_requests.is_none_or(|cloud| include::is_credentials_request(m, cloud));
                if !creds {
                    reason.get_or_insert_with(|| "not a matching CredentialsRequest".to_owned());
                }
                included.is_ok() && creds
            });
            if !keep {
                let reason = reason.unwrap_or_else(|| "no documents".to_owned());
                sel.left_out.push(LeftOut { file: name.clone(), reason });
                continue;
            }
        }
        let data = if options.normalize { include::normalize_manifest(data, name)? } else { data.clone() };
        sel.files.push((name.clone(), data));
    }
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, Vec<u8>)> {
        let included = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\n";
        let not_included = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    include.release.openshift.io/single-node-developer: \"true\"\n";
        let creds = "apiVersion: cloudcredential.openshift.io/v1\nkind: CredentialsRequest\nmetadata:\n  name: c\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\nspec:\n  providerSpec:\n    kind: AWSProviderSpec\n";
        vec![
            ("image-references".into(), b"{}".to_vec()),
            ("release-metadata".into(), b"{}".to_vec()),
            ("0000_50_a_included.yaml".into(), included.into()),
            ("0000_50_a_other-profile.yaml".into(), not_included.into()),
            ("0000_50_a_creds.yaml".into(), creds.into()),
            ("0000_50_a_README.md".into(), b"# notes".to_vec()),
        ]
    }

    fn names(sel: &Selection) -> Vec<&str> {
        sel.files.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn selection_table() {
        let profile = InclusionFilter { profile: Some("self-managed-high-availability".into()), ..Default::default() };
        let cases: Vec<(ExtractOptions, Vec<&str>)> = vec![
            (
                ExtractOptions::default(),
                vec![
                    "image-references",
                    "release-metadata",
                    "0000_50_a_included.yaml",
                    "0000_50_a_other-profile.yaml",
                    "0000_50_a_creds.yaml",
                    "0000_50_a_README.md",
                ],
            ),
            (
                ExtractOptions { included: Some(profile), ..Default::default() },
                vec!["image-references", "release-metadata", "0000_50_a_included.yaml", "0000_50_a_creds.yaml"],
            ),
            (
                ExtractOptions { credentials_requests: Some(None), ..Default::default() },
                vec!["image-references", "release-metadata", "0000_50_a_creds.yaml"],
            ),
            (
                ExtractOptions {
                    credentials_requests: Some(Some("gcp".parse().expect("known cloud"))),
                    ..Default::default()
                },
                vec!["image-references", "release-metadata"],
            ),
        ];
        for (opts, want) in cases {
            let sel = select(&files(), &opts).expect("valid manifests");
            assert_eq!(names(&sel), want, "{opts:?}");
            assert_eq!(sel.files.len() + sel.left_out.len(), files().len());
        }
    }

    #[test]
    fn verbatim_by_default_and_normalized_on_request() {
        let sel = select(&files(), &ExtractOptions::default()).expect("valid");
        assert_eq!(sel.files, files(), "byte for byte");
        let sel = select(&files(), &ExtractOptions { normalize: true, ..Default::default() }).expect("valid");
        let (_, data) = sel.files.iter().find(|(n, _)| n == "0000_50_a_included.yaml").expect("kept");
        assert!(data.starts_with(b"---\n"), "{}", String::from_utf8_lossy(data));
        let (_, readme) = sel.files.iter().find(|(n, _)| n.ends_with("README.md")).expect("kept");
        assert_eq!(readme, b"# notes", "non-manifests are not reformatted");
    }
}
