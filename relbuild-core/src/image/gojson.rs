//! JSON written the way Go's `encoding/json` writes it.
//!
//! Consumers compare our files with those the reference tool wrote, and
//! digests cover the exact bytes, so the JSON relbuild writes follows Go:
//! struct fields in declaration order (serde does this), map keys sorted
//! (use `BTreeMap`), `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` …,
//! and `MarshalIndent`'s layout when indenting: `"key": value`, one element a
//! line, `{}`/`[]` for empty containers, no trailing newline.
//!
//! This is also our canonical form for JSON we write ourselves (OCI layout
//! `index.json`, manifests): compact, Go-escaped, keys in a fixed order.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// A `serde_json` formatter producing Go `json.Marshal`/`MarshalIndent` bytes.
#[derive(Debug, Clone)]
pub struct GoFormatter<'a> {
    indent: Option<&'a [u8]>,
    level: usize,
    has_value: bool,
}

impl<'a> GoFormatter<'a> {
    /// Compact output, like `json.Marshal`.
    pub fn compact() -> Self {
        Self { indent: None, level: 0, has_value: false }
    }

    /// Indented output, like `json.MarshalIndent(v, "", indent)`.
    pub fn indented(indent: &'a str) -> Self {
        Self { indent: Some(indent.as_bytes()), level: 0, has_value: false }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(ind) = self.indent {
            w.write_all(b"\n")?;
            for _ in 0..self.level {
                w.write_all(ind)?;
            }
        }
        Ok(())
    }
}

impl Formatter for GoFormatter<'_> {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.indent.is_some() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // Go's HTML-safe escaping: serde_json has already escaped quotes,
        // backslashes and control characters.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: Option<&[u8]> = match c {
                '<' => Some(b"\\u003c"),
                '>' => Some(b"\\u003e"),
                '&' => Some(b"\\u0026"),
                '\u{2028}' => Some(b"\\u2028"),
                '\u{2029}' => Some(b"\\u2029"),
                _ => None,
            };
            if let Some(esc) = esc {
                w.write_all(&fragment.as_bytes()[start..i])?;
                w.write_all(esc)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        serde_json::ser::CompactFormatter.write_char_escape(w, escape)
    }
}

/// `json.Marshal(value)`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    write(value, GoFormatter::compact())
}

/// `json.MarshalIndent(value, "", indent)`.
pub fn to_vec_indent<T: Serialize + ?Sized>(value: &T, indent: &str) -> serde_json::Result<Vec<u8>> {
    write(value, GoFormatter::indented(indent))
}

fn write<T: Serialize + ?Sized>(value: &T, f: GoFormatter<'_>) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, f);
    value.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_layouts() {
        let v = json!({"a": [], "b": {}, "c": [1, {"d": null}], "e": "<x&y>\u{2028}\n"});
        assert_eq!(
            String::from_utf8(to_vec(&v).expect("serialises")).expect("utf8"),
            r#"{"a":[],"b":{},"c":[1,{"d":null}],"e":"\u003cx\u0026y\u003e\u2028\n"}"#
        );
        assert_eq!(
            String::from_utf8(to_vec_indent(&v, "  ").expect("serialises")).expect("utf8"),
            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"d\": null\n    }\n  ],\n  \"e\": \"\\u003cx\\u0026y\\u003e\\u2028\\n\"\n}"
        );
    }
}
