//! The few fields of each YAML document that the manifest check and lint
//! read, taken straight from the YAML parser's events instead of building
//! every document.
//!
//! serde-saphyr costs the same whether a document is read into a two-field
//! struct or into a `serde_json::Value`: about 13 µs per document before the
//! first byte, and its event parser (granit-parser, the same one, with the
//! same options) reads the benchmark's manifests 2.5 times as fast. The
//! check and lint parse every YAML file of every operator on a cold build,
//! so this is a fast path in front of serde-saphyr, not a second YAML
//! reader: [`document_heads`] answers only for documents it models exactly
//! and returns `None` for anything else, and the caller then parses with
//! serde-saphyr, whose answer is the reference. A differential test
//! (`tests::agrees_with_serde_saphyr`) holds the two together.

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScalarStyle};

/// What the check and lint read of one non-null document: the strings at
/// `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` (empty
/// when missing or not a string), and the keys of `metadata.annotations`
/// (`None` when that is missing or not a mapping).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DocHead {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) annotation_keys: Option<Vec<String>>,
}

impl DocHead {
    /// The head of a document serde-saphyr parsed.
    pub(crate) fn of(m: &super::include::Manifest) -> Self {
        Self {
            api_version: m.api_version.clone(),
            kind: m.kind.clone(),
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            annotation_keys: m.annotations.as_ref().map(|a| a.keys().cloned().collect()),
        }
    }

    /// The API group (`apiVersion` before the `/`; empty for core `v1`).
    pub(crate) fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(g, _)| g)
    }
}

/// Well inside serde-saphyr's default budget (depth 64, 1,000,000 events,
/// 1,024 documents, 256 MiB), so nothing accepted here trips it.
const MAX_DEPTH: usize = 32;
const MAX_EVENTS: usize = 200_000;
const MAX_DOCUMENTS: usize = 512;
const MAX_BYTES: usize = 8 << 20;

/// The heads of every non-null document of a multi-document YAML file, in
/// order, as serde-saphyr's `from_slice_multiple` followed by
/// [`super::include::parse_manifests`] would give them; or `None` when the
/// file holds anything this fast path does not model: a syntax error,
/// invalid UTF-8 or a byte-order mark, a `%YAML` directive, anchors,
/// aliases or tags, a document that is neither a mapping nor null, a
/// duplicate or complex mapping key, a plain scalar whose type is not plain
/// (`yes`, `1e3`, a key `80`, …) where its type matters, or input beyond the
/// limits above.
pub(crate) fn document_heads(bytes: &[u8]) -> Option<Vec<DocHead>> {
    if bytes.len() > MAX_BYTES || bytes.starts_with("\u{feff}".as_bytes()) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut events = Events { parser: Parser::new_from_str_with_options(text, parser_options()), count: 0 };
    let mut heads = Vec::new();
    if !matches!(events.next()?, Event::StreamStart) {
        return None;
    }
    loop {
        match events.next()? {
            Event::StreamEnd => return Some(heads),
            Event::DocumentStart(_, None) if heads.len() < MAX_DOCUMENTS => {}
            _ => return None,
        }
        match events.next()? {
            Event::Scalar(value, ScalarStyle::Plain, 0, None) if is_null(&value) => {}
            Event::MappingStart(_, 0, None) => {
                let mut head = DocHead::default();
                mapping(&mut events, Role::Root(&mut head), 1)?;
                heads.push(head);
            }
            _ => return None,
        }
        if !matches!(events.next()?, Event::DocumentEnd) {
            return None;
        }
    }
}

/// The options serde-saphyr gives the parser by default (`Budget::parser_options`).
fn parser_options() -> granit_parser::Options {
    let mut o = granit_parser::Options::default();
    o.simple_key_max_lookahead = 1024;
    o.flow_nesting_limit = 255;
    o.block_nesting_limit = o.block_nesting_limit.max(65);
    o.strict_indentation = false;
    o
}

struct Events<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    count: usize,
}

impl<'a> Events<'a> {
    /// The next event other than a comment; `None` on a syntax error or
    /// past the event limit.
    fn next(&mut self) -> Option<Event<'a>> {
        loop {
            self.count += 1;
            if self.count > MAX_EVENTS {
                return None;
            }
            let (event, _) = self.parser.next()?.ok()?;
            if !matches!(event, Event::Comment(..)) {
                return Some(event);
            }
        }
    }
}

/// What a mapping's entries are read for.
enum Role<'h> {
    /// A document: `apiVersion`, `kind`, `metadata`.
    Root(&'h mut DocHead),
    /// `metadata`: `name`, `namespace`, `annotations`.
    Metadata(&'h mut DocHead),
    /// `metadata.annotations`: its keys.
    Annotations(&'h mut Vec<String>),
    /// Anything else: only checked.
    Other,
}

/// Reads a mapping's entries after its `MappingStart`, through its `MappingEnd`.
fn mapping<'a>(events: &mut Events<'a>, mut role: Role<'_>, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut keys: Vec<Cow<'a, str>> = Vec::new();
    loop {
        let key = match events.next()? {
            Event::MappingEnd => return Some(()),
            Event::Scalar(key, style, 0, None) if style != ScalarStyle::Plain || is_plain_string(&key) => key,
            _ => return None,
        };
        if keys.contains(&key) {
            return None;
        }
        let value = events.next()?;
        match (&mut role, key.as_ref()) {
            (Role::Root(head), "apiVersion") => head.api_version = string(events, value, depth)?,
            (Role::Root(head), "kind") => head.kind = string(events, value, depth)?,
            (Role::Root(head), "metadata") => match value {
                Event::MappingStart(_, 0, None) => mapping(events, Role::Metadata(head), depth + 1)?,
                other => node(events, other, depth)?,
            },
            (Role::Metadata(head), "name") => head.name = string(events, value, depth)?,
            (Role::Metadata(head), "namespace") => head.namespace = string(events, value, depth)?,
            (Role::Metadata(head), "annotations") => match value {
                Event::MappingStart(_, 0, None) => {
                    let mut found = Vec::new();
                    mapping(events, Role::Annotations(&mut found), depth + 1)?;
                    // In key order, as the reference's BTreeMap has them.
                    found.sort_unstable();
                    head.annotation_keys = Some(found);
                }
                other => node(events, other, depth)?,
            },
            (Role::Annotations(found), k) => {
                found.push(k.to_owned());
                node(events, value, depth)?;
            }
            _ => node(events, value, depth)?,
        }
        keys.push(key);
    }
}

/// Reads a node that starts with `first` (and its children), checking it only.
fn node(events: &mut Events<'_>, first: Event<'_>, depth: usize) -> Option<()> {
    match first {
        Event::Scalar(value, style, 0, None) => (style != ScalarStyle::Plain || !may_not_convert(&value)).then_some(()),
        Event::MappingStart(_, 0, None) => mapping(events, Role::Other, depth + 1),
        Event::SequenceStart(_, 0, None) => {
            if depth + 1 > MAX_DEPTH {
                return None;
            }
            loop {
                match events.next()? {
                    Event::SequenceEnd => return Some(()),
                    item => node(events, item, depth + 1)?,
                }
            }
        }
        _ => None,
    }
}

/// The value of a field read as a string: the text of a string scalar, and
/// empty for null or any other type (as `Value::as_str` gives nothing).
fn string(events: &mut Events<'_>, first: Event<'_>, depth: usize) -> Option<String> {
    match first {
        Event::Scalar(value, ScalarStyle::Plain, 0, None) => {
            if is_null(&value) || matches!(value.as_ref(), "true" | "false" | "True" | "False" | "TRUE" | "FALSE") {
                Some(String::new())
            } else {
                is_plain_string(&value).then(|| value.into_owned())
            }
        }
        Event::Scalar(value, _, 0, None) => Some(value.into_owned()),
        other => node(events, other, depth).map(|()| String::new()),
    }
}

fn is_null(plain: &str) -> bool {
    matches!(plain, "" | "~" | "null" | "Null" | "NULL")
}

/// A plain scalar that resolves to a string, whatever the schema: it starts
/// with a letter or `_` and is none of the words YAML 1.1 or 1.2 read as
/// booleans, nulls or special floats.
fn is_plain_string(plain: &str) -> bool {
    const SPECIAL: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf", "infinity"];
    plain.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && !SPECIAL.iter().any(|w| plain.eq_ignore_ascii_case(w))
}

/// A plain scalar that might read as a number too large, or not finite
/// (`1e999`, `.inf`, `-.NaN`, 30 digits): serde-saphyr refuses those for a
/// `Value`. Anything that could be a number and is long, or has an
/// exponent, an `inf` or a `nan`, counts.
fn may_not_convert(plain: &str) -> bool {
    let numeric_start = plain.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    let numeric_chars = plain.chars().all(|c| c.is_ascii_hexdigit() || "+-._:xXoOiInNfF".contains(c));
    numeric_start
        && numeric_chars
        && (plain.len() > 15 || plain.contains(['e', 'E', 'n', 'N', 'f', 'F', 'i', 'I', 'x', 'X', 'o', 'O']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::include::parse_manifests;

    /// serde-saphyr's answer, the reference: the heads, or `None` when it
    /// refuses the file.
    fn reference(bytes: &[u8]) -> Option<Vec<DocHead>> {
        parse_manifests(bytes, "f.yaml").ok().map(|ms| ms.iter().map(DocHead::of).collect())
    }

    fn check(input: &str) -> bool {
        let fast = document_heads(input.as_bytes());
        if let Some(fast) = &fast {
            assert_eq!(Some(fast), reference(input.as_bytes()).as_ref(), "fast path disagrees on {input:?}");
        }
        fast.is_some()
    }

    const MANIFEST: &str = "\
# a comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cluster-monitoring-operator
  namespace: openshift-monitoring
  annotations:
    include.release.openshift.io/self-managed-high-availability: \"true\"
    release.openshift.io/feature-set: Default
    note: |
      a block
      scalar
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: a
        image: quay.io/openshift/origin-cluster-monitoring-operator:latest
        args: [\"--v=2\", '--images=127.0.0.1:5000/ocp/stream@sha256:00,x']
        ports: [{containerPort: 8080, protocol: TCP}]
        env:
        - {name: A, value: \"1\"}
        - name: B
          value: 0.0.1-snapshot
---
apiVersion: v1
kind: ConfigMap
metadata: {name: \"two\", namespace: 'ns'}
data:
  config.yaml: |-
    x: y
  number: 12
  float: 1.5
  bool: true
  empty:
  tilde: ~
...
---
---
kind: Namespace
apiVersion: v1
metadata:
  name: x
  annotations: {}
";

    #[test]
    fn reads_what_serde_saphyr_reads() {
        let heads = document_heads(MANIFEST.as_bytes()).expect("modelled");
        assert_eq!(heads.len(), 3);
        assert_eq!(heads[0].kind, "Deployment");
        assert_eq!(heads[0].group(), "apps");
        assert_eq!(
            heads[0].annotation_keys.as_deref(),
            Some(
                &[
                    "include.release.openshift.io/self-managed-high-availability".to_owned(),
                    "note".into(),
                    "release.openshift.io/feature-set".into(),
                ][..]
            )
        );
        assert_eq!((heads[1].name.as_str(), heads[1].namespace.as_str()), ("two", "ns"));
        assert_eq!(heads[2].annotation_keys, Some(Vec::new()));
        assert!(check(MANIFEST));
    }

    #[test]
    fn declines_what_it_does_not_model() {
        let declined = [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "%YAML 1.2\n---\na: b\n",
            "a: 1\na: 2\n",
            "? [a]\n: b\n",
            "<<: {a: b}\n",
            "kind: yes\n",
            "kind: 1.0\n",
            "a: 1e999\n",
            "a: .inf\n",
            "a: -.NaN\n",
            "a: 123456789012345678901234567890\n",
            "80: http\n",
            "- a list\n",
            "just a scalar\n",
            "a: [unclosed\n",
            "\u{feff}a: b\n",
        ];
        for input in declined {
            assert!(!check(input), "{input:?} should be left to serde-saphyr");
        }
        assert_eq!(document_heads(b"a: \xff\n"), None);
        let deep = format!("{}x: 1\n", (0..40).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect::<String>());
        assert!(!check(&deep.replace("x: 1", &format!("{}x: 1", "  ".repeat(40)))));
    }

    /// Every input, and every prefix of it cut at a line end (which makes
    /// half-documents, dangling keys and broken flow collections): where
    /// the fast path answers, serde-saphyr gives the same heads.
    #[test]
    fn agrees_with_serde_saphyr() {
        let mut corpus: Vec<String> = vec![
            MANIFEST.to_owned(),
            "kind: \"\"\napiVersion: v1\n".into(),
            "kind: null\napiVersion: ~\nmetadata: null\n".into(),
            "kind: true\nmetadata: [a, b]\n".into(),
            "kind: True\napiVersion: TRUE\nmetadata:\n  name: False\n  namespace: FALSE\n".into(),
            "kind: Null\napiVersion: NULL\nmetadata:\n  name: ~\n  namespace:\n".into(),
            "kind: [A]\napiVersion: {a: b}\nmetadata:\n  name: {x: y}\n  annotations: [a]\n".into(),
            "kind: >\n  folded\n  text\nmetadata:\n  name: 'it''s'\n  namespace: \"tab\\there\"\n".into(),
            "\"kind\": A\n'apiVersion': v1\nmetadata:\n  \"annotations\":\n    \"k\": v\n    'k2': [1, 2]\n".into(),
            "{kind: A, apiVersion: v1, metadata: {name: n, annotations: {a: b, c: {d: e}}}}\n".into(),
            "kind: A\nmetadata:\n  annotations:\n    a: 1\n    a: 2\n".into(),
            "kind: A\ndata:\n  a: 0x1F\n  b: 0o17\n  c: 1_000\n  d: 2024-01-01T00:00:00Z\n  e: 1:20:30\n".into(),
            "kind: A\ndata:\n  a: 127.0.0.1:5000/ocp/stream@sha256:0123456789abcdef\n  b: -1\n  c: +.5\n".into(),
            "kind: Ünïcode\nmetadata:\n  name: naïve\n  annotations:\n    ключ: значение\n".into(),
            "kind: A # trailing\n# between\nmetadata: # after key\n  name: n\n".into(),
            "---\n# only a comment\n---\n~\n---\nnull\n---\nkind: A\n".into(),
            "kind: A\nspec:\n  list:\n  - - nested\n    - [deeper, {x: y}]\n  - ? complex\n    : value\n".into(),
            "kind: A\nmetadata:\n  name: n\n  name: m\n".into(),
            "kind: A\n  bad: indent\n".into(),
            "kind: A\n---\n- list\n".into(),
        ];
        corpus.extend(golden_manifests());
        let mut answered = 0;
        let mut total = 0;
        for input in &corpus {
            let lines: Vec<usize> = input.match_indices('\n').map(|(i, _)| i + 1).collect();
            for end in lines.into_iter().chain([input.len()]) {
                total += 1;
                answered += usize::from(check(&input[..end]));
            }
        }
        // The fast path must answer for the common cases, or it saves nothing.
        assert!(answered * 2 > total, "answered {answered} of {total}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Files stitched from lines that mix the shapes above with YAML's
        /// corner cases (special scalars, duplicates, flow, anchors, bad
        /// indentation): the fast path never disagrees with serde-saphyr.
        #[test]
        fn agrees_on_stitched_files(lines in proptest::collection::vec(proptest::sample::select(LINES), 0..14)) {
            check(&lines.concat());
        }
    }

    const LINES: &[&str] = &[
        "---\n",
        "...\n",
        "# c\n",
        "\n",
        "kind: A\n",
        "kind: 'B'\n",
        "kind:\n",
        "kind: yes\n",
        "kind: 3\n",
        "apiVersion: v1\n",
        "apiVersion: apps/v1 # c\n",
        "metadata:\n",
        "metadata: {name: n}\n",
        "metadata: ~\n",
        "  name: a\n",
        "  name: \"b\"\n",
        "  name: true\n",
        "  name: 0.5\n",
        "  namespace: ns\n",
        "  annotations:\n",
        "  annotations: {a: b}\n",
        "    a: b\n",
        "    b: \"1\"\n",
        "    a: c\n",
        "    include.release.openshift.io/x: 'true'\n",
        "    release.openshift.io/feature-set: Default\n",
        "    80: x\n",
        "spec:\n",
        "  - item\n",
        "  - {a: 1}\n",
        "  x: .inf\n",
        "  y: 1e5\n",
        "  z: 0x1F\n",
        "  w: &a v\n",
        "  v: *a\n",
        "  t: !!str 5\n",
        "  <<: {m: n}\n",
        "  s: |\n",
        "    block\n",
        "  f: >-\n",
        "  q: 'it''s'\n",
        "  e: \"\\t\"\n",
        "data: [1, 2\n",
        "  ]\n",
        "~\n",
        "- top\n",
        "? k\n",
        ": v\n",
        "  bad:\n",
        " odd: indent\n",
        "kind: Ünï\n",
        "data: {a: [b, {c: d}]}\n",
        "  num: 123456789012345678901\n",
        "  ip: 127.0.0.1:5000/x@sha256:ab\n",
        "  date: 2024-01-01\n",
        "null\n",
    ];

    /// The manifests of the golden vectors (what the fixture operators ship,
    /// after oc rewrote them).
    fn golden_manifests() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/golden");
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok) {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && let Ok(s) = std::fs::read_to_string(p)
            {
                out.push(s);
            }
        }
        out
    }
}
