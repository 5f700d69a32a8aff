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
run cargo build --release -p relbuild-cli -p relbuild-testdata
bin=target/release

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
run "$relbuild" info --insecure "$host/ocp/release:4.99.0"

# A second release from the first, with `prometheus` replaced by another image.
other=$("$relbuild" info --insecure --image-for=component-001 "$host/ocp/release:4.99.0")
run "$relbuild" new --insecure --from-release "$host/ocp/release:4.99.0" --name 4.99.1 \
  --to-image "$host/ocp/release:4.99.1" "prometheus=$other"
run "$relbuild" info --insecure "$host/ocp/release:4.99.0" "$host/ocp/release:4.99.1"

# The payload files, byte for byte, and what the CVO would make of them.
run "$relbuild" extract --insecure "$host/ocp/release:4.99.1" --to "$work/manifests"
run ls "$work/manifests"
run "$relbuild" lint --insecure "$host/ocp/release:4.99.1"

printf '\ndemo finished: all commands succeeded\n' >&2
