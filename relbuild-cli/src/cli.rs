//! Command-line arguments. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::registry_args::RegistryArgs;

/// Build and inspect OpenShift/OKD release payload images.
#[derive(Debug, Parser)]
#[command(name = "relbuild", version, propagate_version = true, after_help = TOP_EXAMPLES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// More output on stderr: every warning, and logs (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub(crate) verbose: u8,
    /// No progress bars, warnings or notes: errors only.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build a release payload image (the job of `oc adm release new`).
    #[command(after_help = NEW_EXAMPLES)]
    New(Box<NewArgs>),
    /// Describe a release, or compare two (the job of `oc adm release info`).
    #[command(after_help = INFO_EXAMPLES)]
    Info(InfoArgs),
    /// Write a release's `release-manifests/` files out.
    #[command(after_help = EXTRACT_EXAMPLES)]
    Extract(ExtractArgs),
    /// Check a release (or a `--to-dir` output) against what the CVO enforces.
    #[command(after_help = LINT_EXAMPLES)]
    Lint(LintArgs),
    /// Check a distribution storage tree or an OCI layout offline: every blob
    /// re-hashed, every link, manifest and tag followed.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Manage the build cache.
    #[command(subcommand, after_help = CACHE_EXAMPLES)]
    Cache(CacheCommand),
    /// Print the version.
    #[command(after_help = "Examples:\n  relbuild version")]
    Version,
}

/// `relbuild info`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("view").multiple(false))]
#[command(group = clap::ArgGroup::new("input").required(true).multiple(true))]
pub(crate) struct InfoArgs {
    /// The release: a pullspec, `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`. A
    /// second release compares the two (FROM, then TO).
    #[arg(num_args = 1..=2, value_name = "RELEASE", group = "input")]
    pub(crate) releases: Vec<String>,
    /// The release, as oc also accepts it (instead of the argument).
    #[arg(long, value_name = "RELEASE", group = "input")]
    pub(crate) from: Option<String>,
    /// Show each image's pull spec instead of its digest.
    #[arg(long, group = "view")]
    pub(crate) pullspecs: bool,
    /// Show each image's source repository and commit.
    #[arg(long, group = "view")]
    pub(crate) commits: bool,
    /// Show each image's commit URL.
    #[arg(long, group = "view")]
    pub(crate) commit_urls: bool,
    /// Print every file of the payload.
    #[arg(long, group = "view")]
    pub(crate) contents: bool,
    /// Fetch every image's manifest and check it has the digest the release names.
    #[arg(long, group = "view")]
    pub(crate) verify: bool,
    /// Fetch every image and show its age, layers, size, the bytes only it
    /// has, and the layers it shares with other images of the release.
    #[arg(long, group = "view")]
    pub(crate) size: bool,
    /// Print each platform of a manifest-list release with its image digest
    /// (`linux/amd64 sha256:…`, one a line); a single image prints its own.
    /// `-o json` always lists them, as `platforms`.
    #[arg(long, group = "view", conflicts_with = "output")]
    pub(crate) show_platforms: bool,
    /// Print the pull spec of one image of the release.
    #[arg(long, value_name = "TAG", conflicts_with = "output")]
    pub(crate) image_for: Option<String>,
    /// `json`, `name`, `pullspec` or `digest`.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub(crate) output: Option<String>,
    /// Which image of a manifest-list release to read.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
    pub(crate) filter_by_os: String,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// `relbuild extract`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).multiple(true))]
pub(crate) struct ExtractArgs {
    /// The release: a pullspec, `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`.
    #[arg(value_name = "RELEASE", group = "input")]
    pub(crate) release: Option<String>,
    /// The release, as oc also accepts it (instead of the argument).
    #[arg(long, value_name = "RELEASE", group = "input")]
    pub(crate) from: Option<String>,
    /// The directory to write; it appears complete or not at all.
    #[arg(long, value_name = "DIR", required_unless_present = "file", conflicts_with = "file")]
    pub(crate) to: Option<PathBuf>,
    /// Write this one file of `release-manifests/` to stdout, byte for byte.
    #[arg(long, value_name = "NAME")]
    pub(crate) file: Option<String>,
    /// oc's form: each manifest re-serialised as `---` + YAML with sorted keys.
    #[arg(long)]
    pub(crate) normalize: bool,
    /// Keep only the manifests the CVO would apply for `--profile`,
    /// `--feature-set` and `--capabilities`.
    #[arg(long)]
    pub(crate) included: bool,
    /// The cluster profile for `--included`.
    #[arg(long, default_value = "self-managed-high-availability", value_name = "PROFILE")]
    pub(crate) profile: String,
    /// The feature set for `--included` (default: `Default`).
    #[arg(long, value_name = "SET")]
    pub(crate) feature_set: Option<String>,
    /// Enabled capabilities for `--included` (comma-separated); others count as disabled.
    #[arg(long, value_delimiter = ',', value_name = "CAPS")]
    pub(crate) capabilities: Option<Vec<String>>,
    /// Keep only `CredentialsRequest` manifests.
    #[arg(long)]
    pub(crate) credentials_requests: bool,
    /// With `--credentials-requests`, only those for this cloud.
    #[arg(long, value_name = "CLOUD", requires = "credentials_requests")]
    pub(crate) cloud: Option<String>,
    /// Which image of a manifest-list release to read.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
    pub(crate) filter_by_os: String,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// `relbuild lint`.
#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// A release (pullspec, `oci:DIR`, `oci-archive:FILE`) or a directory of
    /// payload files (a `--to-dir` or `extract` output).
    #[arg(value_name = "RELEASE|DIR")]
    pub(crate) target: String,
    /// `json` for machine-readable findings.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub(crate) output: Option<String>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// `relbuild verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The directory: a tree (it holds `docker/registry/v2/`, as a registry's
    /// `rootdirectory` does) or an OCI layout (it holds `oci-layout`).
    #[arg(value_name = "PATH")]
    pub(crate) path: PathBuf,
    /// `json` for a machine-readable report.
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub(crate) output: Option<String>,
}

/// `relbuild cache`.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Remove cache entries not used for a while, or beyond a size.
    #[command(after_help = CACHE_EXAMPLES)]
    Prune {
        /// The cache directory (default `$XDG_CACHE_HOME/relbuild`).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Remove entries unused for this many days (0 removes everything).
        #[arg(long, value_name = "DAYS")]
        older_than_days: Option<u64>,
        /// Then remove the least recently used entries until the cache is at most this many MiB.
        #[arg(long, value_name = "MIB")]
        max_size_mib: Option<u64>,
    },
}

/// How pullspecs in operator manifests are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RewriteArg {
    /// Rewrite every reference, also those followed by a comma or sharing one
    /// separator with the previous one.
    Fixed,
    /// Reproduce oc byte for byte, including its missed rewrites and its
    /// double processing of overridden operators.
    Oc,
}

/// What `relbuild new` does with lint findings on the payload it built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LintArg {
    /// Do not lint.
    Off,
    /// Print every finding as a warning and build anyway (the default).
    Warn,
    /// Refuse to write or push a payload with lint errors.
    Error,
}

/// `relbuild new`: exactly one source (or only mappings), one or more outputs.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Image stream file (YAML or JSON, `-` for stdin, or an http(s) URL) to build from.
    #[arg(short = 'f', long = "from-image-stream-file", value_name = "FILE|-|URL")]
    pub(crate) from_image_stream_file: Option<String>,
    /// How image stream tags become pullspecs: `public` (the stream's
    /// public repository) or `source` (where each tag was imported from).
    #[arg(long, default_value = "public", value_name = "MODE")]
    pub(crate) reference_mode: String,
    /// An existing release to start from; its tags, name, previous, next and metadata carry over.
    #[arg(long, value_name = "PULLSPEC")]
    pub(crate) from_release: Option<String>,
    /// A directory with one subdirectory of manifests per operator, and an
    /// optional top-level JSON `image-references`.
    #[arg(long, value_name = "DIR")]
    pub(crate) from_dir: Option<PathBuf>,
    /// `NAME=PULLSPEC` replacements or additions; the tag gets
    /// `io.openshift.release.override: "true"`.
    #[arg(value_name = "NAME=PULLSPEC")]
    pub(crate) mappings: Vec<String>,
    /// The same as a `NAME=PULLSPEC` argument; may be repeated.
    #[arg(long, value_name = "NAME=PULLSPEC")]
    pub(crate) replace: Vec<String>,
    /// A file of `NAME=PULLSPEC` lines (space-separated, `#` comments).
    #[arg(long, value_name = "FILE")]
    pub(crate) mapping_file: Option<PathBuf>,

    /// The release name: semver. Default: `0.0.1-<UTC timestamp>`, or the input release's name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Versions this release upgrades from (comma-separated semvers).
    #[arg(long, value_delimiter = ',', value_name = "VERSIONS")]
    pub(crate) previous: Option<Vec<String>>,
    /// Versions this release may upgrade to; use with caution.
    #[arg(long, value_delimiter = ',', value_name = "VERSIONS")]
    pub(crate) next: Option<Vec<String>>,
    /// Release metadata: a JSON object whose values are strings.
    #[arg(long, value_name = "JSON")]
    pub(crate) metadata: Option<String>,
    /// Creation time (RFC 3339). Default: `SOURCE_DATE_EPOCH`, else now.
    #[arg(long, value_name = "TIME")]
    pub(crate) created: Option<String>,

    /// Keep these tags even when no operator references them. A mapping
    /// that adds a tag nothing references (and the input lacks) fails
    /// unless the tag is named here: it is most likely a misspelling.
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    pub(crate) include: Vec<String>,
    /// Drop these tags before anything else (wins over `--include`).
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    pub(crate) exclude: Vec<String>,
    /// Skip image-references entries that name a tag missing from the input.
    #[arg(long)]
    pub(crate) allow_missing_images: bool,
    /// Do not check that YAML/JSON manifests have `kind` and `apiVersion`.
    #[arg(long)]
    pub(crate) skip_manifest_check: bool,
    /// Pullspec rewriting rules. Default: `fixed`, except that a canonical
    /// rebuild (`--from-release` with nothing changed) uses whichever rules
    /// reproduce the input, and says so when it is oc's.
    #[arg(long, value_enum)]
    pub(crate) rewrite: Option<RewriteArg>,
    /// Check the built payload as `relbuild lint` does, before anything is
    /// written or pushed: `warn` reports findings, `error` also refuses a
    /// payload with errors.
    #[arg(long, value_enum, default_value_t = LintArg::Warn, value_name = "MODE")]
    pub(crate) lint: LintArg,

    /// The image to append the payload layer to. Default: the input's `--to-image-base-tag` image.
    #[arg(long, value_name = "PULLSPEC")]
    pub(crate) to_image_base: Option<String>,
    /// The input tag whose image is the base.
    #[arg(long, default_value = "cluster-version-operator", value_name = "TAG")]
    pub(crate) to_image_base_tag: String,
    /// Platform whose operator images provide the manifests, for manifest-list inputs.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH")]
    pub(crate) manifests_arch: String,
    /// Build only this platform of a manifest-list base (default: all, as a manifest list).
    #[arg(long, value_name = "OS/ARCH")]
    pub(crate) filter_by_os: Option<String>,

    /// Push the release to this repository (tag defaults to the name). The
    /// destination must grant push; that is checked before building.
    #[arg(long, value_name = "REPO[:TAG]")]
    pub(crate) to_image: Option<String>,
    /// Push also when `--to-image` has no tag and the defaulted tag (the
    /// release name) holds another release. An explicit tag is always
    /// overwritten, as oc does.
    #[arg(long)]
    pub(crate) force: bool,
    /// Write the `release-manifests/` files to this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) to_dir: Option<PathBuf>,
    /// Write the gzipped payload layer to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub(crate) to_file: Option<PathBuf>,
    /// Write the whole release image to this OCI image layout.
    #[arg(long, value_name = "DIR")]
    pub(crate) to_oci_layout: Option<PathBuf>,
    /// Write the unsigned signature message for the pushed digest here.
    #[arg(long, value_name = "FILE")]
    pub(crate) to_signature: Option<PathBuf>,
    /// Compute everything, push nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// `json`: with no `--to-*` output, print the assembled image stream and
    /// exit (as oc); with outputs, build, write them and print the result
    /// (name, digest, and each output with the digest of what it holds).
    #[arg(short = 'o', long, value_name = "FORMAT")]
    pub(crate) output: Option<String>,

    /// Cache of manifests, configs and extracted operator manifests. Default:
    /// `$XDG_CACHE_HOME/relbuild` (or `~/.cache/relbuild`).
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Do not read or write the cache.
    #[arg(long)]
    pub(crate) no_cache: bool,

    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
}

/// The help heading of the options every subcommand takes.
const GLOBAL: &str = "Global options";

const TOP_EXAMPLES: &str = "\
Examples:
  relbuild new -f is.yaml --name 4.99.0 --to-image quay.io/me/release:4.99.0
  relbuild info quay.io/me/release:4.99.0
  relbuild extract quay.io/me/release:4.99.0 --to manifests/
  relbuild lint quay.io/me/release:4.99.0

`relbuild COMMAND --help` shows a command's options and more examples.";

const NEW_EXAMPLES: &str = "\
Examples:
  # Build from an image stream file and push the release
  relbuild new -f is.yaml --name 4.99.0 --to-image quay.io/me/release:4.99.0

  # Start from a release and replace one component (`NAME=PULLSPEC` works too)
  relbuild new --from-release quay.io/me/release:4.99.0 --name 4.99.1 \\
    --to-image quay.io/me/release:4.99.1 --replace prometheus=quay.io/me/prometheus@sha256:...

  # Write the payload files and an OCI layout, push nothing
  relbuild new -f is.yaml --to-dir payload/ --to-oci-layout release-oci/";

const INFO_EXAMPLES: &str = "\
Examples:
  relbuild info quay.io/me/release:4.99.0
  relbuild info --from quay.io/me/release:4.99.0 --pullspecs
  relbuild info -o json oci:release-oci/
  relbuild info quay.io/me/release:4.99.0 quay.io/me/release:4.99.1   # compare two";

const EXTRACT_EXAMPLES: &str = "\
Examples:
  relbuild extract quay.io/me/release:4.99.0 --to manifests/
  relbuild extract --from quay.io/me/release:4.99.0 --file image-references
  relbuild extract quay.io/me/release:4.99.0 --to manifests/ --included --capabilities Console";

const LINT_EXAMPLES: &str = "\
Examples:
  relbuild lint quay.io/me/release:4.99.0
  relbuild lint payload/          # a `relbuild new --to-dir` or `extract` output
  relbuild lint -o json oci:release-oci/

Exit status:
  0  no errors (warnings alone pass)
  1  the release has errors
  2  lint could not run (unreadable input, registry error, bad option)";

const VERIFY_EXAMPLES: &str = "\
Examples:
  relbuild verify /srv/mirror            # a tree: /srv/mirror/docker/registry/v2/...
  relbuild verify -o json release-oci/   # an OCI layout

Exit status:
  0  nothing is damaged (leftovers of interrupted writes are listed, not counted)
  1  damage found: one line per problem, naming the digest and the path
  2  verify could not run (not a tree or layout, unreadable, bad option)";

const CACHE_EXAMPLES: &str = "\
Examples:
  relbuild cache prune --older-than-days 30
  relbuild cache prune --max-size-mib 2048";

impl InfoArgs {
    /// The releases to read, given as arguments or (one) with `--from`.
    pub(crate) fn releases(&self) -> anyhow::Result<Vec<&str>> {
        match (&self.from, self.releases.as_slice()) {
            (Some(from), []) => Ok(vec![from.as_str()]),
            (Some(_), _) => Err(from_and_argument()),
            (None, releases) => Ok(releases.iter().map(String::as_str).collect()),
        }
    }
}

impl ExtractArgs {
    /// The release to read, given as the argument or with `--from`.
    pub(crate) fn release(&self) -> anyhow::Result<&str> {
        match (&self.from, &self.release) {
            (Some(_), Some(_)) => Err(from_and_argument()),
            (Some(r), None) | (None, Some(r)) => Ok(r),
            (None, None) => anyhow::bail!("give the release as the argument or with `--from`"),
        }
    }
}

/// oc's words for a release given twice.
fn from_and_argument() -> anyhow::Error {
    anyhow::anyhow!("you may not specify an argument and `--from`")
}

/// Drops clap's "a similar argument exists" tip when the suggestion is not
/// close to what was typed. clap suggests any flag whose Jaro similarity
/// exceeds 0.7, which pairs unrelated words (`--replace` with `--created`),
/// and writes the suggestion into the usage line too, so that is redone
/// for the (sub)command named in `args`.
pub(crate) fn without_unrelated_suggestion(err: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let kind = match err.kind() {
        clap::error::ErrorKind::UnknownArgument => ContextKind::SuggestedArg,
        clap::error::ErrorKind::InvalidSubcommand => ContextKind::SuggestedSubcommand,
        _ => return err,
    };
    let Some(ContextValue::String(typed)) = err.get(ContextKind::InvalidArg) else { return err };
    let close = match err.get(kind) {
        Some(ContextValue::String(s)) => is_close(typed, s),
        Some(ContextValue::Strings(v)) => v.iter().all(|s| is_close(typed, s)),
        _ => return err,
    };
    if close {
        return err;
    }
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut sub = &mut cmd;
    for arg in args.iter().skip(1) {
        let Some(name) = arg.to_str() else { break };
        if sub.find_subcommand(name).is_none() {
            continue;
        }
        sub = sub.find_subcommand_mut(name).expect("found above");
    }
    let mut cleaned = clap::Error::new(err.kind()).with_cmd(sub);
    for (k, v) in err.context().filter(|(k, _)| *k != kind) {
        cleaned.insert(k, v.clone());
    }
    if cleaned.get(ContextKind::Usage).is_some() {
        cleaned.insert(ContextKind::Usage, ContextValue::StyledStr(sub.render_usage()));
    }
    cleaned
}

/// A suggestion worth making: one of the two names starts with the other
/// (of at least four characters), or they are at most one edit (an
/// insertion, deletion, substitution or swap of neighbours) per four
/// characters apart, and at least one.
fn is_close(typed: &str, suggested: &str) -> bool {
    let (typed, suggested) = (typed.trim_start_matches('-'), suggested.trim_start_matches('-'));
    let (short, long) = if typed.len() <= suggested.len() { (typed, suggested) } else { (suggested, typed) };
    if short.len() >= 4 && long.starts_with(short) {
        return true;
    }
    let edits = strsim::osa_distance(typed, suggested);
    edits <= (typed.chars().count().min(suggested.chars().count()) / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    /// Every command's `--help` ends with examples of it.
    #[test]
    fn every_command_has_examples() {
        fn check(cmd: &mut clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name()).trim().to_owned();
            let help = cmd.render_long_help().to_string();
            let examples = help.split_once("Examples:\n").map(|(_, e)| e);
            let examples = examples.unwrap_or_else(|| panic!("`{path} --help` has no examples:\n{help}"));
            assert!(examples.lines().any(|l| l.trim_start().starts_with(&path)), "`{path}`:\n{help}");
            for sub in cmd.get_subcommands_mut() {
                if sub.get_name() != "help" {
                    check(sub, &path);
                }
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        check(&mut cmd, "");
    }

    #[test]
    fn help_promises_only_commands_that_exist() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for word in ["mirror", "verify", "sign"] {
            let exists = cmd.get_subcommands().any(|s| s.get_name() == word);
            assert!(exists || !help.contains(word), "the help names `{word}`, which is not a command:\n{help}");
        }
    }

    #[test]
    fn global_options_have_their_own_heading() {
        let help = Cli::command().render_long_help().to_string();
        let global = help.split_once("Global options:\n").map(|(_, g)| g).unwrap_or_else(|| panic!("{help}"));
        assert!(global.contains("--verbose") && global.contains("--quiet"), "{help}");
        assert!(help_of("info").contains("Global options:\n"));
    }

    /// `relbuild <name> --help`, with the global options propagated.
    fn help_of(name: &str) -> String {
        let mut cmd = Cli::command();
        cmd.build();
        let sub = cmd.find_subcommand_mut(name).unwrap_or_else(|| panic!("a `{name}` command"));
        sub.render_long_help().to_string()
    }

    #[test]
    fn suggestions_only_for_close_flags() {
        let cases = [
            ("--insecur", "--insecure", true),
            ("--form", "--from", true),
            ("--to-dri", "--to-dir", true),
            ("--cred", "--credentials-requests", true),
            ("--registy-config", "--registry-config", true),
            ("--created-at", "--created", true),
            ("--replace", "--created", false),
            ("--keep-manifest-list", "--skip-manifest-check", false),
            ("--override", "--rewrite", false),
            ("--replace", "--rewrite", false),
            ("--mirror", "--metadata", false),
            ("--force", "--from", false),
        ];
        for (typed, suggested, want) in cases {
            assert_eq!(is_close(typed, suggested), want, "{typed} -> {suggested}");
        }
    }

    #[test]
    fn lint_help_documents_its_exit_codes() {
        let help = help_of("lint");
        for line in ["0  no errors", "1  the release has errors", "2  lint could not run"] {
            assert!(help.contains(line), "{help}");
        }
    }
}
