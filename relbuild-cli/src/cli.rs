//! Command-line arguments. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::registry_args::RegistryArgs;

/// Build, inspect and mirror OpenShift/OKD release payload images.
#[derive(Debug, Parser)]
#[command(name = "relbuild", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// No progress bars and no log output except errors.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build a release payload image (the job of `oc adm release new`).
    New(Box<NewArgs>),
    /// Describe a release, or compare two (the job of `oc adm release info`).
    Info(InfoArgs),
    /// Write a release's `release-manifests/` files out.
    Extract(ExtractArgs),
    /// Check a release (or a `--to-dir` output) against what the CVO enforces.
    Lint(LintArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Print the version.
    Version,
}

/// `relbuild info`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("view").multiple(false))]
pub(crate) struct InfoArgs {
    /// The release: a pullspec, `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`. A
    /// second release compares the two (FROM, then TO).
    #[arg(required = true, num_args = 1..=2, value_name = "RELEASE")]
    pub(crate) releases: Vec<String>,
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
pub(crate) struct ExtractArgs {
    /// The release: a pullspec, `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`.
    #[arg(value_name = "RELEASE")]
    pub(crate) release: String,
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

/// `relbuild cache`.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Remove cache entries not used for a while, or beyond a size.
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
