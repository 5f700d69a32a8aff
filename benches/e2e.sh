#!/usr/bin/env bash
# End-to-end benchmark against a loopback registry (Debian's docker-registry).
#
# 1. generates the fixture stream (OPERATORS operators, ~2N+2 images),
# 2. measures the registry floor: one GET of every manifest, config and
#    operator top layer, 32 connections in parallel (curl --parallel),
# 3. measures `relbuild new` cold (empty cache) and warm (cache filled by a
#    build of the same stream, then one operator replaced), `relbuild info`
#    and `relbuild extract` of the result,
# 4. prints the median of each and the cold/floor ratio, then times floor and
#    cold again in alternating pairs (robust to the machine's drift).
#
# Usage: benches/e2e.sh [RUNS]   (env: OPERATORS=200, PAIRS=2*RUNS)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
operators=${OPERATORS:-200}
# More pairs than hyperfine runs: on a noisy machine the pair median is the
# figure to trust, and each pair costs only one floor and one cold build.
pairs=${PAIRS:-$((2 * runs))}

.ci/install-tools
command -v hyperfine >/dev/null || { apt-get install -y hyperfine; }
cargo build --release --locked -p relbuild-cli -p relbuild-testdata
bin=$PWD/target/release

work=$(mktemp -d)
cleanup() { [ -n "${reg_pid:-}" ] && kill "$reg_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin/relbuild-testdata" serve --port-file "$work/port" >/dev/null &
reg_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
host=$(cat "$work/port")

"$bin/relbuild-testdata" generate --registry "$host" --operators "$operators" \
  --out "$work/is.yaml" --floor-urls "$work/floor.txt" --alt-mapping "$work/alt.txt"
alt=$(cat "$work/alt.txt")
awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$work/floor.txt" > "$work/floor.curl"
echo "stream: $operators operators, $(grep -c 'name: ' "$work/is.yaml") tags; floor: $(wc -l < "$work/floor.txt") GETs"

new="$bin/relbuild new --quiet --insecure -f $work/is.yaml --name 4.99.0 --created 2025-01-02T03:04:05Z"
# Fill the warm cache and push the release that info/extract read.
$new --to-image "$host/ocp/release:4.99.0" --cache-dir "$work/warm" >/dev/null 2>&1

hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/hf.json" \
  -n floor "curl -s --parallel --parallel-max 32 -K $work/floor.curl" \
  -n cold "$new --to-image $host/ocp/release:cold --cache-dir \$(mktemp -d -p $work)" \
  -n warm "$new --to-image $host/ocp/release:warm --cache-dir $work/warm $alt" \
  -n info "$bin/relbuild info --insecure $host/ocp/release:4.99.0" \
  -n extract "$bin/relbuild extract --insecure $host/ocp/release:4.99.0 --to \$(mktemp -d -p $work)/out"

python3 - "$work/hf.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print()
print(f"{'what':<8} {'median s':>9} {'mean s':>8} {'min s':>7} {'max s':>7}")
for k in ["floor", "cold", "warm", "info", "extract"]:
    x = r[k]
    print(f"{k:<8} {x['median']:9.3f} {x['mean']:8.3f} {x['min']:7.3f} {x['max']:7.3f}")
print(f"\ncold/floor = {r['cold']['median'] / r['floor']['median']:.2f}  (target <= 1.25)")
PY

# The machine's speed drifts over a run (other tenants, the registry's own
# caches), and hyperfine runs all floor runs before all cold runs. So also
# time them in alternating pairs and report the median of the pair ratios.
python3 - "$pairs" "$work" "$new --to-image $host/ocp/release:cold" <<'PY'
import statistics, subprocess, sys, tempfile, time
runs, work, new = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def timed(cmd):
    t = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t
pairs = []
for _ in range(runs):
    floor = timed(f"curl -s --parallel --parallel-max 32 -K {work}/floor.curl")
    cold = timed(f"{new} --cache-dir {tempfile.mkdtemp(dir=work)}")
    pairs.append((floor, cold))
ratios = [c / f for f, c in pairs]
print(f"\ninterleaved, {runs} pairs: floor median {statistics.median(f for f, _ in pairs):.3f} s, "
      f"cold median {statistics.median(c for _, c in pairs):.3f} s, "
      f"cold/floor median of pairs {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
PY

# Peak memory of one cold build (GNU time's maximum resident set size).
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "cold build peak RSS: %M KiB" $new --to-image "$host/ocp/release:rss" --cache-dir "$(mktemp -d -p "$work")" >/dev/null
fi
