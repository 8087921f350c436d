#!/usr/bin/env bash
# Measure a cold build of the example template against an identical warm rebuild, stage by stage,
# and mmdebstrap installing the same package set into a directory, all in one run against the
# real-package mirror served on 127.0.0.1. Each command runs once under /usr/bin/time -v (peak
# memory, wall time); the build reports give the stage times. Prints a Markdown table and writes
# the reports and timings to bench/results/. Usage, as root: bash bench/build.sh
#
# Environment: OIC_MIRROR_DIR selects the prepared mirror, as for the mirror module; TEMPLATE
# selects another template of the debian-debian12-x86_64 provider.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$bench_dir")"
results="$bench_dir/results"
template="${TEMPLATE:-$repo/image-templates/debian12-x86_64-minimal-raw.yml}"
mirror_dir="${OIC_MIRROR_DIR:-/var/cache/os-image-composer-testdata/debian-bookworm}"
work="$(mktemp -d /var/tmp/oic-bench-build.XXXXXX)"

if [[ $EUID -ne 0 ]]; then
    echo "bench/build.sh needs root (mounts, chroot)" >&2
    exit 1
fi

cleanup() {
    [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]} > 0)); then
    echo "Installing ${missing[*]} with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

(cd "$repo" && python3 -m os_image_composer.testing.mirror prepare >/dev/null)
(cd "$repo" && python3 -m os_image_composer.testing.mirror serve --port-file "$work/port") \
    >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    [[ -s "$work/port" ]] && break
    sleep 0.1
done
url="$(cd "$repo" && python3 -m os_image_composer.testing.mirror url --port-file "$work/port")"

cat >"$work/config.yml" <<CONFIG
cache_dir: $work/cache
work_dir: $work/work
temp_dir: $work/tmp
providers:
  debian-debian12-x86_64:
    repositories:
      - {name: bookworm, url: $url, suite: bookworm, keys: [/usr/share/keyrings/debian-archive-keyring.gpg]}
CONFIG

# Runs a command once under /usr/bin/time -v; writes its wall seconds and peak KiB to $1.time.
timed() {
    local name=$1
    shift
    /usr/bin/time -v -o "$work/$name.time" "$@"
}

echo "== cold build (empty cache and work folders)" >&2
timed cold os-image-composer --config "$work/config.yml" build --json "$template" >"$work/cold.json"
echo "== warm rebuild (identical inputs)" >&2
timed warm os-image-composer --config "$work/config.yml" build --json "$template" >"$work/warm.json"

# mmdebstrap gets the template's packages, the kernel and GRUB, on top of the required set, and
# only packages the mirror contains (the served index is Debian's full one).
includes=$(python3 - "$template" <<'PY'
import json, subprocess, sys
merged = subprocess.run(["os-image-composer", "validate", "--merged", sys.argv[1]],
                        capture_output=True, text=True, check=True).stdout
names, section = [], None
for line in merged.splitlines():
    stripped = line.strip()
    if stripped.startswith("packages:"):
        section = len(line) - len(line.lstrip())
        continue
    if section is not None and stripped.startswith("- "):
        names.append(stripped[2:].strip('"'))
    elif section is not None and stripped:
        section = None
print(",".join(["usr-is-merged", "grub-efi-amd64", *names]))
PY
)
python3 - "$mirror_dir/manifest.json" >"$work/preferences" <<'PY'
import json, sys
names = sorted({package["name"] for package in json.load(open(sys.argv[1]))["packages"]})
print("Package: *\nPin: release *\nPin-Priority: -1\n")
print("Package: " + " ".join(names) + "\nPin: release *\nPin-Priority: 500")
PY
echo "== mmdebstrap --variant=required --include=$includes" >&2
timed mmdebstrap mmdebstrap --quiet --mode=root --variant=required \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include="$includes" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --aptopt="Dir::Etc::Preferences \"$work/preferences\"" bookworm "$work/mmdebstrap" "$url"

root="$work/work/debian-debian12-x86_64/imageroot"
tree=$(find "$root" -maxdepth 4 -type d -path '*/current/trees/*' -exec test -d '{}/var/lib/dpkg' \; -print | head -n 1)
chroot "$work/mmdebstrap" dpkg-query -W -f '${Package}\n' | sort >"$work/mmdebstrap.list"
dpkg-query --admindir="$tree/var/lib/dpkg" -W -f '${Package}\n' | sort >"$work/ours.list"
same_set=no
cmp -s "$work/ours.list" "$work/mmdebstrap.list" && same_set=yes

mkdir -p "$results"
cp "$work/cold.json" "$results/build-cold.json"
cp "$work/warm.json" "$results/build-warm.json"
python3 - "$work" "$same_set" <<'PY' | tee "$results/build.md"
import json, pathlib, sys

work = pathlib.Path(sys.argv[1])
same_set = sys.argv[2]

def timing(name):
    values = {}
    for line in (work / f"{name}.time").read_text().splitlines():
        key, _, value = line.strip().rpartition(": ")
        values[key] = value
    clock = values["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    seconds = sum(float(part) * 60 ** index for index, part in enumerate(reversed(clock)))
    return seconds, int(values["Maximum resident set size (kbytes)"]) / 1024

cold = json.loads((work / "cold.json").read_text())
warm = json.loads((work / "warm.json").read_text())
warm_stages = {stage["stage"]: stage["seconds"] for stage in warm["stages"]}
print("| stage | cold (s) | warm (s) | warm / cold |")
print("|---|---:|---:|---:|")
for stage in cold["stages"]:
    name, seconds = stage["stage"], stage["seconds"]
    again = warm_stages.get(name, 0.0)
    ratio = f"{again / seconds:.2f}" if seconds >= 0.01 else "-"
    print(f"| {name} | {seconds:.2f} | {again:.2f} | {ratio} |")
cold_wall, cold_mb = timing("cold")
warm_wall, warm_mb = timing("warm")
mm_wall, mm_mb = timing("mmdebstrap")
print(f"| **whole command** | {cold_wall:.2f} | {warm_wall:.2f} | {warm_wall / cold_wall:.2f} |")
print()
print("| command | wall (s) | peak RSS (MB) |")
print("|---|---:|---:|")
print(f"| `os-image-composer build`, cold | {cold_wall:.2f} | {cold_mb:.0f} |")
print(f"| `os-image-composer build`, warm | {warm_wall:.2f} | {warm_mb:.0f} |")
print(f"| `mmdebstrap` (same packages, directory only) | {mm_wall:.2f} | {mm_mb:.0f} |")
print()
compose = next(s["seconds"] for s in cold["stages"] if s["stage"] == "compose")
print(f"Warm rebuild / cold build: {warm_wall / cold_wall:.2f} (goal: under 0.20).")
print(f"Cold compose stage (chroot environment + image root + disk) / mmdebstrap: "
      f"{compose / mm_wall:.2f}.")
print(f"Cache use, warm: " + ", ".join(f"{c['cache']} {c['outcome']}" for c in warm["caches"]))
print(f"Same package set as mmdebstrap: {same_set}.")
PY
