#!/usr/bin/env bash
# relbuild in five minutes, on a loopback registry: build a release from a
# synthetic stream, inspect it, build a second one that replaces one image,
# compare them, extract the payload and lint it.
#
# Run from the repository root:  ./examples/demo.sh
# It installs Debian's docker-registry and skopeo when missing (.ci/install-tools),
# builds the two binaries in release mode, and cleans up after itself.
set -euo pipefail

cd "$(dirname "$0")/.."

# Echo each command, then run it.
run() {
  printf '\n$ %s\n' "$*" >&2
  "$@"
}

run .ci/install-tools
# DEMO_PROFILE=dev reuses a debug build (target/debug) instead of building release binaries.
profile=${DEMO_PROFILE:-release}
run cargo build --quiet --profile "$profile" -p relbuild-cli -p relbuild-testdata
if [ "$profile" = dev ]; then bin=target/debug; else bin=target/$profile; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/relbuild-demo.XXXXXX")
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A throw-away registry on 127.0.0.1 (stopped by the trap on exit).
printf '\n$ %s\n' "$bin/relbuild-testdata serve --port-file $work/port &" >&2
"$bin/relbuild-testdata" serve --port-file "$work/port" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 200); do
  [ -s "$work/port" ] && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/port" ] || { echo "the registry did not start" >&2; exit 1; }
host=$(cat "$work/port")

# The builds use a private cache, so the demo leaves nothing in ~/.cache.
export XDG_CACHE_HOME="$work/cache"
relbuild="$bin/relbuild"

# A synthetic stream: the CVO, 20 operators, their operands, one unused image.
run "$bin/relbuild-testdata" generate --registry "$host" --operators 20 --out "$work/is.yaml"

# Build and push the release, then describe it.
run "$relbuild" new --insecure -f "$work/is.yaml" --name 4.99.0 --to-image "$host/ocp/release:4.99.0"
# (`| head` is fine: relbuild takes a closed pipe as the reader having had enough.)
printf '\n$ %s\n' "$relbuild info --insecure $host/ocp/release:4.99.0 | head -n 12" >&2
"$relbuild" info --insecure "$host/ocp/release:4.99.0" | head -n 12

# A second release from the first, with `prometheus` replaced by another image.
other=$("$relbuild" info -q --insecure --image-for=component-001 "$host/ocp/release:4.99.0")
# `-q`: errors only (its warnings are the first build's).
run "$relbuild" new -q --insecure --from-release "$host/ocp/release:4.99.0" --name 4.99.1 \
  --to-image "$host/ocp/release:4.99.1" --replace "prometheus=$other"
printf '\n$ %s\n' "$relbuild info --insecure $host/ocp/release:4.99.0 $host/ocp/release:4.99.1 | head -n 12" >&2
"$relbuild" info --insecure "$host/ocp/release:4.99.0" "$host/ocp/release:4.99.1" | head -n 12

# The payload files, byte for byte, and what the CVO would make of them.
run "$relbuild" extract --insecure "$host/ocp/release:4.99.1" --to "$work/manifests"
files=$(find "$work/manifests" -type f | wc -l)
printf '\n$ ls %s | head -n 3\n' "$work/manifests" >&2
ls "$work/manifests" | sed -n '1,3p'
# lint lists every finding; its last line counts them.
printf '\n$ %s\n' "$relbuild lint --insecure $host/ocp/release:4.99.1 | tail -n 1" >&2
lint=$("$relbuild" lint --insecure "$host/ocp/release:4.99.1" | tail -n 1)
printf '%s\n' "$lint"

cat >&2 <<SUMMARY

demo finished: all commands succeeded.
  new      built 4.99.0 from a stream of 20 operators, and 4.99.1 from it with \`prometheus\` replaced
  info     described 4.99.0, then compared it with 4.99.1
  extract  wrote the $files payload files of 4.99.1
  lint     $lint
The warnings above are on purpose: the fixture operators carry edge cases
(a symlink, a subdirectory, a file name two operators share, a manifest
without annotations) that relbuild must skip, rename or flag; \`-v\` lists
every one of them, \`-q\` none.
SUMMARY
