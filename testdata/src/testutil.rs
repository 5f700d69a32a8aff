//! Test-only helpers: an independent HTTP client (curl) and blob helpers.
#![allow(clippy::unwrap_used, reason = "test helpers")]

use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};

/// Output of one curl run.
pub(crate) struct Curl {
    pub(crate) code: i32,
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
}

impl Curl {
    pub(crate) fn status(&self) -> u16 {
        self.headers
            .lines()
            .rfind(|l| l.starts_with("HTTP/"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

pub(crate) fn curl(args: &[&str], body: Option<&[u8]>) -> Curl {
    let dir = tempfile::tempdir().expect("tempdir");
    let hdr = dir.path().join("h");
    let out = dir.path().join("b");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-D"]).arg(&hdr).arg("-o").arg(&out).args(args);
    if let Some(b) = body {
        let inp = dir.path().join("in");
        std::fs::write(&inp, b).expect("write body");
        cmd.arg("--data-binary").arg(format!("@{}", inp.display()));
    }
    let st = cmd.stdin(Stdio::null()).status().expect("curl runs");
    Curl {
        code: st.code().unwrap_or(-1),
        headers: std::fs::read_to_string(&hdr).unwrap_or_default(),
        body: std::fs::read(&out).unwrap_or_default(),
    }
}

pub(crate) fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Pushes a blob through `base` (POST then PUT on the returned Location).
pub(crate) fn push_blob(base: &str, repo: &str, blob: &[u8]) -> String {
    push_blob_with(base, repo, blob, &[])
}

/// [`push_blob`] with extra curl arguments (e.g. `-H Authorization: …`).
pub(crate) fn push_blob_with(base: &str, repo: &str, blob: &[u8], extra: &[&str]) -> String {
    let d = digest(blob);
    let url = format!("{base}/v2/{repo}/blobs/uploads/");
    let r = curl(&[extra, &["-X", "POST", &url]].concat(), None);
    assert_eq!(r.status(), 202, "{}", r.headers);
    let loc = r.header("location").expect("upload location");
    let sep = if loc.contains('?') { '&' } else { '?' };
    let url = if loc.starts_with('/') { format!("{base}{loc}") } else { loc };
    let put = format!("{url}{sep}digest={d}");
    let r = curl(&[extra, &["-X", "PUT", "-H", "Content-Type: application/octet-stream", &put]].concat(), Some(blob));
    assert_eq!(r.status(), 201, "{}", r.headers);
    d
}

pub(crate) fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i % 251).unwrap_or(0)).collect()
}
