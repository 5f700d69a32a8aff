//! Pruning the tags nothing references, and refusing mappings pruning would drop.

use super::*;

/// The tag names of an `image-references` document.
pub(super) fn referenced_tags(operator: &str, data: &[u8]) -> Result<Vec<String>, Error> {
    let is = ImageStream::parse(data, &format!("{operator}/manifests/image-references"))?;
    Ok(is.spec.tags.into_iter().map(|t| t.name).collect())
}

/// `pruneUnreferencedImageStreams` (spec §1.3, §2.7): keeps a tag only when
/// an operator's `image-references` names it, it is in `always` (`--include`
/// plus the base tag), it is an operator, or the base image's own
/// `image-references` (`base_references`) names it. Returns the pruned tags.
pub fn prune_unreferenced(
    stream: &mut ImageStream,
    operators: &[Operator],
    always: &[String],
    base_references: &[String],
) -> Result<Vec<String>, Error> {
    let mut keep: BTreeSet<&str> = always.iter().map(String::as_str).collect();
    keep.extend(base_references.iter().map(String::as_str));
    let mut referenced = Vec::new();
    for op in operators {
        keep.insert(&op.tag);
        if let Some(ir) = &op.image_references {
            referenced.extend(referenced_tags(&op.tag, &ir.data)?);
        }
    }
    keep.extend(referenced.iter().map(String::as_str));
    let mut pruned = Vec::new();
    stream.spec.tags.retain(|t| {
        let k = keep.contains(t.name.as_str());
        if !k {
            pruned.push(t.name.clone());
        }
        k
    });
    Ok(pruned)
}

/// The closest names to `tag` among `names`: within an edit distance of a
/// third of its length (transpositions count once), closest first, at most three.
pub(super) fn closest_names(tag: &str, names: &[String]) -> Vec<String> {
    let limit = (tag.chars().count() / 3).max(1);
    let mut near: Vec<(usize, &String)> =
        names.iter().map(|n| (strsim::damerau_levenshtein(tag, n), n)).filter(|(d, _)| *d <= limit).collect();
    near.sort();
    near.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

/// Fails when a mapping added a tag the input does not have and pruning
/// dropped it: a misspelt component would otherwise replace nothing,
/// silently. `--include` keeps a tag meant to be new (it is then not pruned).
pub(super) fn check_added_tags_kept(plan: &Plan, mappings: &[Mapping], pruned: &[String]) -> Result<(), Error> {
    // Tags this build's mappings added (not the ones an earlier build
    // overrode, which `mapped.all` also holds).
    let added: BTreeSet<&String> =
        mappings.iter().map(|m| &m.tag).filter(|t| !plan.mapped.replaced.contains(*t)).collect();
    let tags: Vec<UnknownTag> = added
        .into_iter()
        .filter(|t| pruned.contains(t))
        .map(|tag| UnknownTag {
            tag: tag.clone(),
            pullspec: mappings.iter().rev().find(|m| &m.tag == tag).map(|m| m.pullspec.clone()).unwrap_or_default(),
            suggestions: closest_names(tag, &plan.input_tags),
        })
        .collect();
    if tags.is_empty() { Ok(()) } else { Err(Error::UnknownMappedTags { tags }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_table() {
        let names: Vec<String> = ["prometheus", "prometheus-operator", "cluster-monitoring-operator", "cli", "console"]
            .map(String::from)
            .into();
        let cases: &[(&str, &[&str])] = &[
            ("promethues", &["prometheus"]),
            ("prometheus-opertor", &["prometheus-operator"]),
            ("cluster-monitoring-operater", &["cluster-monitoring-operator"]),
            ("clu", &["cli"]),
            ("brand-new-thing", &[]),
            ("consol", &["console"]),
        ];
        for (tag, want) in cases {
            assert_eq!(closest_names(tag, &names), *want, "{tag}");
        }
    }
}
