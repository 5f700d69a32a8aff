//! The golden vector served from a registry on `127.0.0.1:5000` (the
//! address its pullspecs name), in a private network namespace so that a
//! registry already on that port does not matter (`relbuild_testdata::netns`):
//! canonical rebuilds of both releases oc built reproduce oc's digests with
//! no flag, a replacement build from case 1 reproduces oc's case-2 payload
//! tar and config, and `info` of it reproduces oc's text.

use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
use relbuild_core::release::info::{self, ImageColumns, ReleaseInfo};
use relbuild_core::release::read::{ReadOptions, read_release};
use relbuild_core::release::{Mapping, NewContext, NewOptions, OutputOptions, RewriteMode, Source, new_release};
use relbuild_core::transfer::{ImageLocation, ImageSource};
use relbuild_core::{NoReporter, release};
use relbuild_testdata::golden::{self, OVERRIDE, RELEASE_DIGEST, REPLACE_RELEASE_DIGEST};
use relbuild_testdata::netns::{self, Isolation};
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

fn canonical(input: &str, rewrite_mode: Option<RewriteMode>, to: &str) -> (NewContext, NewOptions) {
    let options = NewOptions {
        rewrite_mode,
        output: OutputOptions { to_image: Some(to.into()), ..OutputOptions::default() },
        ..NewOptions::default()
    };
    let ctx = NewContext {
        source: Source::Release(input.to_owned()),
        mappings: Vec::new(),
        created: "2030-01-01T00:00:00Z".parse().expect("time"),
    };
    (ctx, options)
}

#[test]
fn golden_release_from_registry() {
    match netns::isolate("golden_registry::golden_release_from_registry") {
        Isolation::Ran(out) => netns::assert_passed(&out),
        Isolation::Inside | Isolation::Unavailable(_) => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
            rt.expect("runtime").block_on(golden_release_body());
        }
    }
}

async fn golden_release_body() {
    let reg = TestRegistry::start_on_port(5000).expect("a registry on 127.0.0.1:5000");
    assert_eq!(reg.host(), golden::GOLDEN_HOST);
    let client = client();
    let digest = golden::load(&client).await.expect("golden vector loads");
    assert_eq!(digest.as_str(), RELEASE_DIGEST);
    let input = format!("127.0.0.1:5000/ocp/release@{RELEASE_DIGEST}");
    let replaced = format!("127.0.0.1:5000/ocp/release@{REPLACE_RELEASE_DIGEST}");

    // `relbuild info` of oc's release, byte for byte (Pull From included:
    // it is served at the address oc used).
    let location: ImageLocation = input.parse().expect("location");
    let source = ImageSource::open(&location, &client).await.expect("opens");
    let loaded = read_release(&source, &input, &ReadOptions::default()).await.expect("reads");
    let info = ReleaseInfo::read(loaded.data).expect("a release");
    let mut out = Vec::new();
    info::write_describe(&mut out, &info, ImageColumns::Digest).expect("renders");
    assert_eq!(String::from_utf8(out).expect("utf8"), text("outputs/info-plain.txt"));

    // Canonical rebuild with no flag: the fixed rules do not reproduce oc's
    // payload (its edge-case files keep references oc missed), oc's do, and
    // the build says so in one warning naming the files.
    let (ctx, options) = canonical(&input, None, "127.0.0.1:5000/ocp/rebuild");
    let out = new_release(&client, &ctx, &options, &NoReporter).await.expect("reproduces oc's release");
    assert_eq!(out.digest.as_ref().map(|d| d.as_str()), Some(RELEASE_DIGEST));
    assert_eq!(out.rewrite_mode, RewriteMode::Oc);
    assert!(out.layer_reused, "oc's gzip blob is reused");
    let said: Vec<&String> = out.warnings.iter().filter(|w| w.contains("was built with oc's rewriting")).collect();
    assert_eq!(said.len(), 1, "{:#?}", out.warnings);
    assert!(
        said[0].contains("files differ under relbuild's fixed rewriting")
            && said[0].contains("`0000_50_bar-operator_03_edge_cases.yaml`"),
        "{}",
        said[0]
    );
    assert_eq!(
        out.layer.diff_id.as_str(),
        digests_line("outputs", "release layer diff_id (sha256 of release-layer.tar): ")
    );
    assert_eq!(out.summary_line().expect("line"), format!("{RELEASE_DIGEST} 4.99.0 2025-01-02T03:04:05Z"));
    assert_eq!(
        skopeo_inspect_raw("127.0.0.1:5000/ocp/rebuild:4.99.0").expect("skopeo"),
        golden::read("outputs/manifest.json").expect("manifest")
    );

    // Case 2 (built by oc with a mapping that replaced an existing
    // operator, whose files oc then wrote twice) rebuilds with no flag too.
    let (ctx, options) = canonical(&replaced, None, "127.0.0.1:5000/ocp/rebuild");
    let out = new_release(&client, &ctx, &options, &NoReporter).await.expect("reproduces oc's case 2");
    assert_eq!(out.digest.as_ref().map(|d| d.as_str()), Some(REPLACE_RELEASE_DIGEST));
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("was built with oc's rewriting with overridden operators written twice")),
        "{:#?}",
        out.warnings
    );

    // With the rules forced, nothing else is tried, and the error names the
    // files that differ and what differs in each.
    let (ctx, options) = canonical(&replaced, Some(RewriteMode::Fixed), "127.0.0.1:5000/ocp/rebuild");
    let err = new_release(&client, &ctx, &options, &NoReporter).await.expect_err("fixed rules do not reproduce it");
    let relbuild_core::Error::Release(e) = &err else { panic!("a release error: {err}") };
    let release::Error::NotReproduced { expected, tried, differences, .. } = e.as_ref() else {
        panic!("not reproduced: {err}")
    };
    assert_eq!(expected.as_str(), REPLACE_RELEASE_DIGEST);
    assert_eq!(tried.len(), 1);
    let names: Vec<(&str, String)> = differences.iter().map(|d| (d.name.as_str(), d.kind.to_string())).collect();
    assert!(
        names.contains(&("0000_50_bar-operator_03_edge_cases.yaml", "a rewritten reference".to_owned())),
        "{names:?}"
    );
    assert!(
        names.iter().any(|(n, k)| n.starts_with("0000_50_foo-operator_")
            && n.contains("_2.")
            && k == "missing from the rebuild"),
        "{names:?}"
    );
    let message = err.to_string();
    assert!(message.contains("(tried relbuild's fixed rewriting)"), "{message}");
    assert!(message.contains("payload files differ: `"), "{message}");
    assert!(message.contains("and ") && message.contains(" more"), "{message}");
    assert!(message.ends_with("without `--rewrite` the other rewriting rules are tried too"), "{message}");

    // Case 2's build: --from-release + the foo-operator override at case 2's time.
    let tmp = tempfile::tempdir().expect("tmp");
    let options = NewOptions {
        name: Some("4.99.1".into()),
        rewrite_mode: Some(RewriteMode::Oc),
        output: OutputOptions {
            to_image: Some("127.0.0.1:5000/ocp/release".into()),
            to_file: Some(tmp.path().join("layer.tar.gz")),
            dry_run: true,
            ..OutputOptions::default()
        },
        ..NewOptions::default()
    };
    let mut ctx = NewContext {
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

    // The same change with the default rules: oc's missed rewrites in the
    // operators left as they were are fixed, and the build says which
    // files that changes beyond the replaced reference.
    let options = NewOptions { rewrite_mode: None, ..options };
    ctx.created = "2025-02-03T04:05:06Z".parse().expect("time");
    let out = new_release(&client, &ctx, &options, &NoReporter).await.expect("builds with fixed rules");
    assert_eq!(out.rewrite_mode, RewriteMode::Fixed);
    let said: Vec<&String> = out.warnings.iter().filter(|w| w.contains("beyond the replaced references")).collect();
    assert_eq!(said.len(), 1, "{:#?}", out.warnings);
    assert!(said[0].contains("`0000_50_bar-operator_03_edge_cases.yaml`"), "{}", said[0]);
    assert!(said[0].contains("`0000_50_baz-operator_03_edge_cases.yaml`"), "{}", said[0]);
    assert!(!said[0].contains("foo-operator"), "the replaced operator's own files are not listed: {}", said[0]);
    assert!(said[0].ends_with("`--rewrite oc` keeps them as they were"), "{}", said[0]);
    drop(reg);
}
