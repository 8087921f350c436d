#!/usr/bin/env bash
# Measure the package cache against apt on the loopback mirror of real Debian packages.
#   cold: oic-pkgcache's `fetch` example into an empty cache vs `apt-get download` of the same set
#   warm: the same `fetch` on a full cache (checks size and SHA256 of every file) vs `sha256sum -c`
# Both rows run in one hyperfine call each, and a table of means and ratios follows.
# Usage: bash bench/pkgcache.sh (from any directory, as root, after `make demo` prepared the mirror).
#
# Environment: RUNS (default 10), WARMUP (default 1), WORKERS (default 8) for `fetch`, and
# MIRROR_DIR (default /var/cache/os-image-composer-testdata/debian-bookworm).
set -euo pipefail

RUNS="${RUNS:-10}"
WARMUP="${WARMUP:-1}"
WORKERS="${WORKERS:-8}"
MIRROR_DIR="${MIRROR_DIR:-/var/cache/os-image-composer-testdata/debian-bookworm}"

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$bench_dir")"
results="$bench_dir/results"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="$(mktemp -d /var/tmp/oic-bench-pkgcache.XXXXXX)"
mirror_pid=""

cleanup() {
    if [[ -n "$mirror_pid" ]]; then
        kill "$mirror_pid" 2>/dev/null || true
        wait "$mirror_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

command -v hyperfine >/dev/null || { echo "hyperfine not found: apt-get install hyperfine" >&2; exit 1; }
[[ -f "$MIRROR_DIR/manifest.json" ]] || {
    echo "no mirror in $MIRROR_DIR: run 'make demo' or the mirror's prepare command" >&2
    exit 1
}
mkdir -p "$results"

echo "Building the fetch example (release)" >&2
(cd "$repo" && cargo build --quiet --release -p oic-pkgcache --example fetch)
fetch_bin="$target/release/examples/fetch"

echo "Starting the loopback mirror" >&2
(cd "$repo/python" && exec python -m os_image_composer.testing.mirror serve \
    --dir "$MIRROR_DIR" --port-file "$work/port") >"$work/mirror.log" 2>&1 &
mirror_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { cat "$work/mirror.log" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$work/port")/debian"

# The list for `fetch` (PATH SIZE SHA256), the NAME=VERSION arguments for apt, and the
# checksum file for sha256sum, all from the mirror's manifest.
python3 - "$MIRROR_DIR/manifest.json" "$work" <<'PY'
import json, sys
from pathlib import Path
manifest, work = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
packages = manifest["packages"]
(work / "list").write_text("".join(f"{p['filename']} {p['size']} {p['sha256']}\n" for p in packages))
(work / "apt-args").write_text("".join(f"{p['name']}={p['version']}\n" for p in packages))
(work / "sums").write_text(
    "".join(f"{p['sha256']}  {p['filename'].rsplit('/', 1)[-1]}\n" for p in packages)
)
print(f"{len(packages)} packages, {sum(p['size'] for p in packages) / 1e6:.1f} MB", file=sys.stderr)
PY

echo "Preparing apt in a throwaway root" >&2
(cd "$repo/python" && python - "$work/apt" "$url" <<'PY'
import sys
from pathlib import Path
from os_image_composer.testing.mirror import make_apt_root, source_line
make_apt_root(Path(sys.argv[1]), source_line(sys.argv[2]))
PY
)
export APT_CONFIG="$work/apt/apt.conf"
apt-get update -qq
printf 'cd %q && xargs apt-get download -qq <%q\n' "$work/apt-out" "$work/apt-args" \
    >"$work/apt-download.sh"

cache="$work/cache"
fetch_cmd="$fetch_bin --cache $cache --mirror $url --list $work/list --workers $WORKERS"

echo "Checking both tools once" >&2
mkdir -p "$work/apt-out"
bash "$work/apt-download.sh"
$fetch_cmd

hyperfine --runs "$RUNS" --warmup "$WARMUP" --export-json "$results/pkgcache-cold.json" \
    --prepare "rm -rf $cache/pkgCache" --command-name "oic-pkgcache fetch (cold)" "$fetch_cmd" \
    --prepare "rm -rf $work/apt-out && mkdir $work/apt-out" --command-name "apt-get download" \
    "bash $work/apt-download.sh"

$fetch_cmd
provider_dir="$cache/pkgCache/debian-debian12-x86_64"
hyperfine --runs "$RUNS" --warmup "$WARMUP" --export-json "$results/pkgcache-warm.json" \
    --command-name "oic-pkgcache fetch (warm)" "$fetch_cmd" \
    --command-name "sha256sum -c" "cd $provider_dir && sha256sum -c --quiet $work/sums"

python3 - "$results/pkgcache-cold.json" "$results/pkgcache-warm.json" <<'PY'
import json, sys
print("\n| row | oic-pkgcache (ms) | peer (ms) | ratio |\n| --- | --- | --- | --- |")
for row, path in zip(["cold download", "warm verification"], sys.argv[1:]):
    ours, peer = json.load(open(path))["results"]
    ratio = peer["mean"] / ours["mean"]
    cell = lambda r: f"{r['mean'] * 1e3:.1f} ± {(r['stddev'] or 0) * 1e3:.1f}"
    print(f"| {row} vs {peer['command']} | {cell(ours)} | {cell(peer)} | {ratio:.2f} |")
PY
