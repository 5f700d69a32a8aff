//! Destination names in `release-manifests/` (spec §2.6, `writePayload`).
//!
//! - A file whose name starts with `0000_` keeps its name; any other becomes
//!   `0000_50_<tag>_<file>` (the `--help` text says `70`; the code writes `50`).
//! - Names are unique across the payload. On a collision the new name is
//!   `<stem>_<n><ext>` (`ext` = the last `.xxx` of the name, `n` = the
//!   original name's count + 1); the original's counter is incremented and
//!   the new name recorded with count 1 (oc's global counter semantics).
//!
//! oc renames silently; we also report each collision.

use std::collections::HashMap;

/// One destination-name collision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The name both files wanted.
    pub wanted: String,
    /// The operator (tag) and source file that took it first.
    pub first: (String, String),
    /// The operator and source file renamed.
    pub renamed_from: (String, String),
    /// The name given instead.
    pub renamed_to: String,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}/{}` and `{}/{}` both become `{}`; the second is written as `{}`",
            self.first.0, self.first.1, self.renamed_from.0, self.renamed_from.1, self.wanted, self.renamed_to
        )
    }
}

/// Assigns destination names in processing order.
#[derive(Debug, Default)]
pub struct PayloadNamer {
    counts: HashMap<String, usize>,
    owners: HashMap<String, (String, String)>,
    collisions: Vec<Collision>,
}

impl PayloadNamer {
    /// An empty namer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The destination name (without `release-manifests/`) for `file` of
    /// operator `tag`.
    pub fn name(&mut self, tag: &str, file: &str) -> String {
        let wanted = prefixed_name(tag, file);
        let owner = (tag.to_owned(), file.to_owned());
        let Some(count) = self.counts.get(&wanted).copied() else {
            self.counts.insert(wanted.clone(), 1);
            self.owners.insert(wanted.clone(), owner);
            return wanted;
        };
        let (stem, ext) = split_ext(&wanted);
        let renamed = format!("{stem}_{}{ext}", count + 1);
        self.counts.insert(wanted.clone(), count + 1);
        self.counts.insert(renamed.clone(), 1);
        self.owners.insert(renamed.clone(), owner.clone());
        self.collisions.push(Collision {
            first: self.owners.get(&wanted).cloned().unwrap_or_default(),
            wanted,
            renamed_from: owner,
            renamed_to: renamed.clone(),
        });
        renamed
    }

    /// The collisions seen so far.
    pub fn collisions(&self) -> &[Collision] {
        &self.collisions
    }

    /// Consumes the namer, returning the collisions.
    pub fn into_collisions(self) -> Vec<Collision> {
        self.collisions
    }
}

/// `0000_50_<tag>_<file>` unless `file` already starts with `0000_`.
pub fn prefixed_name(tag: &str, file: &str) -> String {
    if file.starts_with("0000_") { file.to_owned() } else { format!("0000_50_{tag}_{file}") }
}

/// Go `path.Ext(path.Base(name))`: the suffix from the last `.` of the base
/// name, or empty.
fn split_ext(name: &str) -> (&str, &str) {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[base_start..].rfind('.') {
        Some(i) => name.split_at(base_start + i),
        None => (name, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probed_collisions() {
        let mut n = PayloadNamer::new();
        let got: Vec<String> = [
            ("alpha-operator", "0000_10_alpha_crd.yaml"),
            ("beta-operator", "0000_10_alpha_crd.yaml"),
            ("beta-operator", "deployment.yaml"),
            ("beta-operator", "0000_10_alpha_crd.yaml"),
            ("beta-operator", "deployment.yaml"),
            ("x", "README"),
            ("x", "README"),
        ]
        .iter()
        .map(|(t, f)| n.name(t, f))
        .collect();
        assert_eq!(
            got,
            [
                "0000_10_alpha_crd.yaml",
                "0000_10_alpha_crd_2.yaml",
                "0000_50_beta-operator_deployment.yaml",
                "0000_10_alpha_crd_3.yaml",
                "0000_50_beta-operator_deployment_2.yaml",
                "0000_50_x_README",
                "0000_50_x_README_2",
            ]
        );
        assert_eq!(n.collisions().len(), 4);
        assert_eq!(
            n.collisions()[0].to_string(),
            "`alpha-operator/0000_10_alpha_crd.yaml` and `beta-operator/0000_10_alpha_crd.yaml` both become `0000_10_alpha_crd.yaml`; the second is written as `0000_10_alpha_crd_2.yaml`"
        );
    }

    #[test]
    fn renamed_name_can_collide_again() {
        // `a_2.yaml` taken by a rename, then shipped literally: it gets `_2` too.
        let mut n = PayloadNamer::new();
        assert_eq!(n.name("o", "0000_a.yaml"), "0000_a.yaml");
        assert_eq!(n.name("p", "0000_a.yaml"), "0000_a_2.yaml");
        assert_eq!(n.name("q", "0000_a_2.yaml"), "0000_a_2_2.yaml");
    }
}
