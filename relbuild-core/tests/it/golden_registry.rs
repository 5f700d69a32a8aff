//! The golden vector served from a registry on `127.0.0.1:5000` (the
//! address its pullspecs name): a canonical rebuild of the release oc built
//! reproduces oc's digest, a replacement build from it reproduces oc's
//! case-2 payload tar and config, and `info` of it reproduces oc's text.

use relbuild_core::NoReporter;
use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
use relbuild_core::release::info::{self, ImageColumns, ReleaseInfo};
use relbuild_core::release::read::{ReadOptions, read_release};
use relbuild_core::release::{Mapping, NewContext, NewOptions, OutputOptions, RewriteMode, Source, new_release};
use relbuild_core::transfer::{ImageLocation, ImageSource};
use relbuild_testdata::golden::{self, OVERRIDE, RELEASE_DIGEST};
use relbuild_testdata::registry::{TestRegistry, skopeo_inspect_raw};

fn client() -> Client {
    ClientOptions::default().with_insecure(true).with_retry(RetryPolicy::none()).build().expect("client builds")
}

fn text(rel: &str) -> String {
    String::from_utf8(golden::read(rel).expect("golden file")).expect("utf8")
}

fn digests_line(out: &str, prefix: &str) -> String {
    text(&format!("{out}/digests.txt")).lines().find_map(|l| l.strip_prefix(prefix)).expect("digest line").to_owned()
}

/// A config with its non-standard `size` (which depends on our gzip) blanked.
fn without_size(config: &[u8]) -> String {
    let mut v: serde_json::Value = serde_json::from_slice(config).expect("config JSON");
    v["size"] = serde_json::Value::Null;
    serde_json::to_string(&v).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_release_from_registry() {
    let reg = TestRegistry::start_on_port(5000).expect("a registry on 127.0.0.1:5000");
    assert_eq!(reg.host(), golden::GOLDEN_HOST);
    let client = client();
    let digest = golden::load(&client).await.expect("golden vector loads");
    assert_eq!(digest.as_str(), RELEASE_DIGEST);
    let input = format!("127.0.0.1:5000/ocp/release@{RELEASE_DIGEST}");

    // `relbuild info` of oc's release, byte for byte (Pull From included:
    // it is served at the address oc used).
    let location: ImageLocation = input.parse().expect("location");
    let source = ImageSource::open(&location, &client).await.expect("opens");
    let loaded = read_release(&source, &input, &ReadOptions::default()).await.expect("reads");
    let info = ReleaseInfo::read(loaded.data).expect("a release");
    let mut out = Vec::new();
    info::write_describe(&mut out, &info, ImageColumns::Digest).expect("renders");
    assert_eq!(String::from_utf8(out).expect("utf8"), text("outputs/info-plain.txt"));

    // Canonical rebuild, oc rules: oc's digest exactly, pushed elsewhere.
    let options = NewOptions {
        rewrite_mode: RewriteMode::Oc,
        output: OutputOptions { to_image: Some("127.0.0.1:5000/ocp/rebuild".into()), ..OutputOptions::default() },
        ..NewOptions::default()
    };
    let ctx = NewContext {
        source: Source::Release(input.clone()),
        mappings: Vec::new(),
        created: "2030-01-01T00:00:00Z".parse().expect("time"),
    };
    let out = new_release(&client, &ctx, &options, &NoReporter).await.expect("reproduces oc's release");
    assert_eq!(out.digest.as_ref().map(|d| d.as_str()), Some(RELEASE_DIGEST));
    assert!(out.layer_reused, "oc's gzip blob is reused");
    assert_eq!(
        out.layer.diff_id.as_str(),
        digests_line("outputs", "release layer diff_id (sha256 of release-layer.tar): ")
    );
    assert_eq!(out.summary_line().expect("line"), format!("{RELEASE_DIGEST} 4.99.0 2025-01-02T03:04:05Z"));
    assert_eq!(
        skopeo_inspect_raw("127.0.0.1:5000/ocp/rebuild:4.99.0").expect("skopeo"),
        golden::read("outputs/manifest.json").expect("manifest")
    );

    // Case 2: --from-release + the foo-operator override at case 2's time.
    let tmp = tempfile::tempdir().expect("tmp");
    let options = NewOptions {
        name: Some("4.99.1".into()),
        rewrite_mode: RewriteMode::Oc,
        output: OutputOptions {
            to_image: Some("127.0.0.1:5000/ocp/release".into()),
            to_file: Some(tmp.path().join("layer.tar.gz")),
            dry_run: true,
            ..OutputOptions::default()
        },
        ..NewOptions::default()
    };
    let ctx = NewContext {
        source: Source::Release(input.clone()),
        mappings: vec![Mapping { tag: "foo-operator".into(), pullspec: OVERRIDE.into() }],
        created: "2025-02-03T04:05:06Z".parse().expect("time"),
    };
    let out = new_release(&client, &ctx, &options, &NoReporter).await.expect("builds case 2");
    assert_eq!(
        out.layer.diff_id.as_str(),
        digests_line("outputs-replace", "release layer diff_id (sha256 of release-layer.tar): ")
    );
    assert!(!out.layer_reused);
    assert_eq!(out.images.len(), 1);
    assert_eq!(
        without_size(&out.images[0].config),
        without_size(&golden::read("outputs-replace/config.json").expect("config"))
    );
    // The tar inside our gzip is oc's, byte for byte.
    let gz = std::fs::read(tmp.path().join("layer.tar.gz")).expect("to-file");
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar).expect("gunzip");
    assert!(tar == golden::read("outputs-replace/release-layer.tar").expect("tar"), "payload tar differs");
    drop(reg);
}
