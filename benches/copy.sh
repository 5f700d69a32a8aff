#!/usr/bin/env bash
# Copy benchmark against loopback registries (Debian's docker-registry):
# the fixture release (OPERATORS operators) and every image it names, as one
# transfer-engine run, to a fresh distribution tree and to a second
# registry, against the floor of one curl GET of every manifest and
# distinct blob (32 in parallel). Each copy line reports the peak RSS.
#
# Then one image with a LARGE_MIB MiB layer (default 1024) is copied alone
# to a tree and to the second registry: peak RSS must not grow with the
# blob (LARGE_MIB=0 skips it).
#
# Usage: benches/copy.sh [RUNS]   (env: OPERATORS=200, LARGE_MIB=1024)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
operators=${OPERATORS:-200}
large_mib=${LARGE_MIB:-1024}

.ci/install-tools
cargo build --release --locked -p relbuild-cli -p relbuild-testdata -p relbuild-benches --bin copy-release --bin relbuild --bin relbuild-testdata
bin=$PWD/target/release

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
serve() {
  "$bin/relbuild-testdata" serve --port-file "$work/$1" >/dev/null & pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1" ] && break; sleep 0.1; done
  cat "$work/$1"
}
src=$(serve src); dst=$(serve dst)

"$bin/relbuild-testdata" generate --registry "$src" --operators "$operators" --out "$work/is.yaml" \
  --floor-urls "$work/unused" --alt-mapping "$work/unused2"
"$bin/relbuild" new --quiet --insecure -f "$work/is.yaml" --name 4.99.0 --created 2025-01-02T03:04:05Z \
  --to-image "$src/ocp/release:4.99.0" >/dev/null
release="$src/ocp/release:4.99.0"
"$bin/copy-release" "$release" --floor-urls "$work/floor.txt"
awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$work/floor.txt" > "$work/floor.curl"
echo "release: $operators operators; floor: $(wc -l < "$work/floor.txt") GETs"

ms() { date +%s%N | cut -c1-13; }
for i in $(seq "$runs"); do
  t=$(ms); curl -s --parallel --parallel-max 32 -K "$work/floor.curl"; echo "floor run $i: $(( $(ms) - t )) ms"
  echo "tree run $i: $("$bin/copy-release" "$release" --to-tree "$work/tree-$i")"
  echo "registry run $i: $("$bin/copy-release" "$release" --to-registry "$dst/mirror-$i/release")"
done
echo "tree again (everything present): $("$bin/copy-release" "$release" --to-tree "$work/tree-1")"

if [ "$large_mib" -gt 0 ]; then
  large=$("$bin/relbuild-testdata" push-large --registry "$src" --mib "$large_mib")
  echo "large image: one ${large_mib} MiB layer"
  echo "large to tree: $("$bin/copy-release" "$large" --image --to-tree "$work/large-tree")"
  echo "large to registry: $("$bin/copy-release" "$large" --image --to-registry "$dst/large/copy")"
fi
