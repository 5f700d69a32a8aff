//! Cleaning tar entry names and recognising whiteouts.

/// Prefix of a whiteout name.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of AUFS metadata names (including the opaque marker).
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The opaque whiteout: the directory's content in lower layers is hidden.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// Cleans a tar entry name like Go's `filepath.Clean`, relative to the layer
/// root: drops leading `/`, empty and `.` components, and resolves `..`
/// against the component before it. The result has no leading or trailing
/// `/`; the root itself is empty.
///
/// Returns `None` when a `..` would climb above the root.
pub(super) fn clean(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts.join(&b'/'))
}

/// What a cleaned entry name means with respect to whiteouts.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whiteout<'a> {
    /// Not a whiteout.
    None,
    /// Deletes this path (file or directory) from lower layers.
    Path(Vec<u8>),
    /// Deletes everything below this directory (empty: the root) from lower layers.
    Opaque(&'a [u8]),
    /// AUFS metadata or a malformed whiteout: ignored, never output.
    Ignored,
}

/// Splits a cleaned name into its parent directory (empty for the root) and
/// its last component.
pub(super) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Recognises whiteouts in a cleaned name.
pub(super) fn whiteout(path: &[u8]) -> Whiteout<'_> {
    let (dir, base) = split_last(path);
    if base == WHITEOUT_OPAQUE {
        return Whiteout::Opaque(dir);
    }
    if base.starts_with(WHITEOUT_META_PREFIX) {
        return Whiteout::Ignored;
    }
    let Some(target) = base.strip_prefix(WHITEOUT_PREFIX) else {
        return Whiteout::None;
    };
    // A cleaned name has no `.`/`..` components, but the part after `.wh.`
    // can still be one: `.wh..` would whiteout the directory itself and
    // `.wh...` its parent. Neither is meaningful.
    if matches!(target, b"" | b"." | b"..") {
        return Whiteout::Ignored;
    }
    Whiteout::Path(join(dir, target))
}

/// Joins a directory (empty for the root) and a name.
pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// True when `path` is `base` or lies below it. The empty base is the root
/// and contains everything.
pub(super) fn is_within(path: &str, base: &str) -> bool {
    base.is_empty() || path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("manifests/a.yaml", Some("manifests/a.yaml")),
            ("./manifests/a.yaml", Some("manifests/a.yaml")),
            ("/manifests/a.yaml", Some("manifests/a.yaml")),
            ("//manifests//a.yaml", Some("manifests/a.yaml")),
            ("manifests/./a.yaml", Some("manifests/a.yaml")),
            ("manifests/", Some("manifests")),
            ("manifests/x/../a.yaml", Some("manifests/a.yaml")),
            ("./", Some("")),
            ("", Some("")),
            ("..", None),
            ("../etc/passwd", None),
            ("manifests/../../etc/passwd", None),
            ("/../x", None),
            ("a/b/../../..", None),
            ("..a/b..", Some("..a/b..")),
        ];
        for (name, want) in cases {
            let got = clean(name.as_bytes());
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{name}");
        }
    }

    #[test]
    fn whiteouts() {
        let cases: &[(&str, Whiteout<'_>)] = &[
            ("manifests/a.yaml", Whiteout::None),
            ("manifests/.wh.a.yaml", Whiteout::Path(b"manifests/a.yaml".to_vec())),
            (".wh.manifests", Whiteout::Path(b"manifests".to_vec())),
            ("manifests/.wh..wh..opq", Whiteout::Opaque(b"manifests")),
            (".wh..wh..opq", Whiteout::Opaque(b"")),
            ("manifests/.wh..wh.plnk", Whiteout::Ignored),
            ("manifests/.wh.", Whiteout::Ignored),
            ("manifests/.wh..", Whiteout::Ignored),
            ("manifests/.wh...", Whiteout::Ignored),
            ("manifests/x.wh.y", Whiteout::None),
        ];
        for (name, want) in cases {
            assert_eq!(&whiteout(name.as_bytes()), want, "{name}");
        }
    }

    #[test]
    fn within() {
        let cases = [
            ("manifests/a", "manifests", true),
            ("manifests", "manifests", true),
            ("manifests-x/a", "manifests", false),
            ("manifest", "manifests", false),
            ("anything", "", true),
        ];
        for (path, base, want) in cases {
            assert_eq!(is_within(path, base), want, "{path} in {base}");
        }
    }
}
