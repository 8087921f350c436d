#!/usr/bin/env bash
# Measure the chroot environment stage (rust/oic-chroot) against mmdebstrap and debootstrap over
# the same loopback mirror and package set, then reuse, snapshot write against `tar -czf` and
# restore against `tar -xzf`. Prints a table with ratios and writes hyperfine's JSON to
# bench/results/. Usage, as root: bash bench/chroot.sh
#
# Environment: COLD_RUNS (default 3) runs of each cold creation, RUNS (default 5) of the others,
# SET (default tools): the package set, essential, tools or bootable.
set -euo pipefail

COLD_RUNS="${COLD_RUNS:-3}"
RUNS="${RUNS:-5}"
SET="${SET:-tools}"
MIRROR_DIR="${OIC_MIRROR_DIR:-/var/cache/os-image-composer-testdata/debian-bookworm}"
MIRROR="$MIRROR_DIR/debian"

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$bench_dir")"
results="$bench_dir/results"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
work="$(mktemp -d /var/tmp/oic-chroot-bench.XXXXXX)"
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    # Nothing below may be mounted when the folder is removed.
    if grep -q " $work" /proc/self/mountinfo; then
        echo "mounts left under $work, not removing it:" >&2
        grep " $work" /proc/self/mountinfo >&2
        return
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if [[ $EUID -ne 0 ]]; then
    echo "bench/chroot.sh needs root (chroot, mounts)" >&2
    exit 1
fi

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]} > 0)); then
    echo "Installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ! -d "$MIRROR/pool" ]]; then
    (cd "$repo" && python -m os_image_composer.testing.mirror prepare)
fi

echo "Building oic-chroot (release) in $target_dir" >&2
(cd "$repo" && cargo build --release -q -p oic-chroot --bin oic-chroot)
oic="$target_dir/release/oic-chroot"

(cd "$repo" && python -m os_image_composer.testing.mirror serve --port-file "$work/port") \
    >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    [[ -s "$work/port" ]] && break
    sleep 0.1
done
url="http://127.0.0.1:$(cat "$work/port")/debian"
echo "Mirror served at $url" >&2

# The extra packages of the set, as mmdebstrap and debootstrap take them. Both add the
# essential and `Priority: required` packages themselves, as oic-chroot does.
case "$SET" in
essential) include="" ;;
tools) include="apt,e2fsprogs,dosfstools,mtools,fdisk" ;;
bootable) include="apt,e2fsprogs,dosfstools,mtools,fdisk,linux-image-amd64,initramfs-tools,grub-efi-amd64" ;;
*) echo "unknown SET $SET" >&2; exit 2 ;;
esac

# The served index is Debian's full one, but the pool holds only the mirrored packages. apt would
# pick usrmerge (and perl) for init-system-helpers' `usrmerge | usr-is-merged`, so a preferences
# file forbids every package outside the mirror. debootstrap reads no preferences, so its options
# select usr-is-merged instead of usrmerge.
python3 - "$MIRROR_DIR/manifest.json" >"$work/preferences" <<'PY'
import json, sys
names = sorted({package["name"] for package in json.load(open(sys.argv[1]))["packages"]})
print("Package: *\nPin: release *\nPin-Priority: -1\n")
print("Package: " + " ".join(names) + "\nPin: release *\nPin-Priority: 500")
PY

ours="$work/ours"
mmdeb="$work/mmdebstrap"
deboot="$work/debootstrap"
oic_cold="$oic ensure --no-snapshot --set $SET --mirror $MIRROR --work-dir $ours"
mmdeb_cold="mmdebstrap --quiet --mode=root --variant=required \
--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include=usr-is-merged${include:+,$include} \
--aptopt='Acquire::Check-Valid-Until \"false\"' \
--aptopt='Dir::Etc::Preferences \"$work/preferences\"' bookworm $mmdeb '$url'"
deboot_cold="debootstrap --variant=minbase --include=usr-is-merged${include:+,$include} --exclude=usrmerge \
bookworm $deboot $url"

mkdir -p "$results"
hyperfine --runs "$COLD_RUNS" --export-json "$results/chroot-cold.json" \
    --prepare "rm -rf --one-file-system $ours $mmdeb $deboot" \
    -n oic-chroot "$oic_cold" -n mmdebstrap "$mmdeb_cold" -n debootstrap "$deboot_cold"

# The package lists must agree for the comparison to mean anything.
rm -rf --one-file-system "$ours" "$mmdeb" "$deboot"
$oic_cold >/dev/null
eval "$mmdeb_cold" >/dev/null
eval "$deboot_cold" >/dev/null 2>&1
root="$ours/debian-debian12-x86_64/chrootenv"
for tool in ours mmdeb deboot; do
    dir="${!tool}"
    [[ $tool == ours ]] && dir="$root"
    chroot "$dir" dpkg-query -W -f '${Package}\n' | sort >"$work/$tool.list"
done
for tool in mmdeb deboot; do
    if cmp -s "$work/ours.list" "$work/$tool.list"; then
        echo "package lists agree: oic-chroot and $tool ($(wc -l <"$work/ours.list") packages)"
    else
        echo "package lists differ: oic-chroot ($(wc -l <"$work/ours.list")) vs $tool ($(wc -l <"$work/$tool.list")):"
        diff "$work/ours.list" "$work/$tool.list" | grep '^[<>]' | tr '\n' ' '
        echo
    fi
done

# Reuse: the environment exists and its manifest matches. The binary also parses the 50 MB
# index and resolves the set, so the library's own time is printed separately below.
hyperfine --runs "$RUNS" --warmup 1 --export-json "$results/chroot-reuse.json" \
    -n reuse "$oic_cold"
echo "ensure() on reuse, without the index: $($oic_cold 2>/dev/null | sed -n 's/.*"ensure_seconds":\([0-9.]*\).*/\1 s/p')"

tarball="$work/chrootenv.tar.gz"
# Both commands replace their output, so nothing is removed between runs.
hyperfine --runs "$RUNS" --export-json "$results/chroot-snapshot.json" \
    -n oic-chroot "$oic snapshot --root $root --tarball $tarball" \
    -n "tar -czf" "tar -czf $work/tar.tar.gz -C $root ."
echo "sizes: oic-chroot $(stat -c %s "$tarball") bytes, tar -czf $(stat -c %s "$work/tar.tar.gz") bytes"

restored="$work/restored"
hyperfine --runs "$RUNS" --export-json "$results/chroot-restore.json" \
    --prepare "rm -rf --one-file-system $restored" \
    -n oic-chroot "$oic restore --tarball $tarball --target $restored" \
    -n "tar -xzf" "mkdir $restored && tar -xzf $work/tar.tar.gz -C $restored"

python3 - "$results" <<'PY'
import json, sys
from pathlib import Path

results = Path(sys.argv[1])
print(f"\n{'step':<10} {'tool':<12} {'mean s':>8} {'± s':>6} {'ratio':>7}")
for step in ("cold", "reuse", "snapshot", "restore"):
    rows = json.loads((results / f"chroot-{step}.json").read_text())["results"]
    base = rows[0]["mean"]
    for row in rows:
        ratio = row["mean"] / base
        print(f"{step:<10} {row['command']:<12} {row['mean']:8.2f} {row['stddev'] or 0:6.2f} {ratio:7.2f}")
print("ratio: the tool's mean over oic-chroot's (above 1 means oic-chroot is faster)")
PY
