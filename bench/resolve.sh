#!/usr/bin/env bash
# Measure how fast os-image-composer resolves the example template against the full Debian bookworm
# main index (about 63,000 stanzas), next to `apt-get install -s` of the same request on the same
# index, with hyperfine. Prints a table of means, ratios and peak memory, and writes hyperfine's
# JSON and the peak memory to bench/results/. Usage: bash bench/resolve.sh (from any directory).
#
# Environment: RUNS (default 10) and WARMUP (default 2) are passed to hyperfine. SKIP_EXAMPLE=1
# leaves out the release build of the oic-solve example that parses and solves without the CLI.
# OIC_MIRROR_DIR selects the prepared real-package mirror, as for the mirror module.
set -euo pipefail

RUNS="${RUNS:-10}"
WARMUP="${WARMUP:-2}"
SKIP_EXAMPLE="${SKIP_EXAMPLE:-0}"

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$bench_dir")"
results="$bench_dir/results"
template="$repo/image-templates/debian12-x86_64-minimal-raw.yml"
mirror_dir="${OIC_MIRROR_DIR:-/var/cache/os-image-composer-testdata/debian-bookworm}"
dists="$mirror_dir/debian/dists/bookworm"
index="$dists/main/binary-amd64/Packages"
in_release="$dists/InRelease"

install_missing() {
    local missing=()
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v apt-get >/dev/null || missing+=(apt)
    if ((${#missing[@]} > 0)); then
        echo "Installing ${missing[*]} with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Prints the real os-image-composer entry point. Under pyenv, `command -v` finds a shim: a bash
# script that runs `pyenv exec`, which costs more than the command itself, so the shim is skipped.
find_composer() {
    local found
    found="$(command -v os-image-composer)" || {
        echo "os-image-composer not found on PATH: run 'pip install -e .' in $repo" >&2
        return 1
    }
    if [[ "$found" == */shims/* ]] && command -v pyenv >/dev/null; then
        pyenv which os-image-composer
    else
        echo "$found"
    fi
}

# Runs a command once and fails with its output if it exits non-zero.
check_once() {
    local output
    if ! output="$("$@" 2>&1)"; then
        echo "Command failed before benchmarking: $*" >&2
        echo "$output" >&2
        return 1
    fi
}

# Starts the mirror server in the background and waits up to 30 s for the port it bound.
start_mirror() {
    local python="$1" port_file="$work/mirror.port" i
    "$python" -m os_image_composer.testing.mirror serve --dir "$mirror_dir" \
        --port-file "$port_file" >"$work/mirror.log" 2>&1 &
    mirror_pid=$!
    for ((i = 0; i < 300; i++)); do
        if [[ -s "$port_file" ]]; then
            mirror_url="http://127.0.0.1:$(tr -d '[:space:]' <"$port_file")/debian"
            return 0
        fi
        if ! kill -0 "$mirror_pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "The mirror server failed to start. Its log:" >&2
    cat "$work/mirror.log" >&2
    return 1
}

cleanup() {
    if [[ -n "${mirror_pid:-}" ]]; then
        kill "$mirror_pid" 2>/dev/null || true
        wait "$mirror_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}

# Writes a configuration that points the provider at the mirror and keeps the cache in $work.
write_config() {
    cat >"$work/config.yml" <<EOF
cache_dir: $work/cache
providers:
  debian-debian12-x86_64:
    repositories:
      - name: bookworm
        url: $mirror_url
        suite: bookworm
        components: [main]
        keys: [embedded:debian-archive-bookworm-automatic.gpg]
EOF
}

# Builds a throwaway apt root whose lists directory contains the mirror's InRelease and Packages,
# under the file names apt derives from the source line. The source's port is closed, but a
# simulation never downloads. pkgcache.bin and srcpkgcache.bin are written to $apt_root/cache.
make_apt_root() {
    apt_root="$work/apt"
    mkdir -p "$apt_root"/{lists/partial,cache/archives/partial,sources.d,preferences.d,conf.d}
    : >"$apt_root/status"
    : >"$apt_root/apt.conf"
    : >"$apt_root/preferences"
    echo "deb [trusted=yes] http://127.0.0.1:9/debian bookworm main" >"$apt_root/sources.list"
    cp "$in_release" "$apt_root/lists/127.0.0.1:9_debian_dists_bookworm_InRelease"
    cp "$index" "$apt_root/lists/127.0.0.1:9_debian_dists_bookworm_main_binary-amd64_Packages"
    apt_command=(env APT_CONFIG=/dev/null apt-get)
    local option
    for option in \
        Debug::NoLocking=1 APT::Architecture=amd64 APT::Architectures::=amd64 \
        "Dir::State::status=$apt_root/status" "Dir::State::Lists=$apt_root/lists" \
        "Dir::Cache=$apt_root/cache" "Dir::Cache::pkgcache=$apt_root/cache/pkgcache.bin" \
        "Dir::Cache::srcpkgcache=$apt_root/cache/srcpkgcache.bin" \
        "Dir::Etc::SourceList=$apt_root/sources.list" "Dir::Etc::SourceParts=$apt_root/sources.d" \
        "Dir::Etc::Main=$apt_root/apt.conf" "Dir::Etc::Parts=$apt_root/conf.d" \
        "Dir::Etc::Preferences=$apt_root/preferences" \
        "Dir::Etc::PreferencesParts=$apt_root/preferences.d"; do
        apt_command+=(-o "$option")
    done
}

# Prints the request of the template as os-image-composer builds it: the packages and kernel
# packages of the merged template, every package with `Essential: yes` or `Priority: required`,
# and usr-is-merged, which the provider adds to its essential set.
request_names() {
    local python="$1"
    "$python" - "$template" "$work/config.yml" "$index" <<'EOF'
import sys

import os_image_composer as oic

template_path, config_path, index_path = sys.argv[1:]
template = oic.ImageTemplate.from_file(template_path, oic.Config.load(config_path))
system = template.merged()["systemConfig"]
names = set(system.get("packages", [])) | set(system.get("kernel", {}).get("packages", []))
names.add("usr-is-merged")
with open(index_path, encoding="utf-8") as index:
    for stanza in index.read().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if line[:1] not in (" ", "")
        )
        if fields.get("Essential") == "yes" or fields.get("Priority") == "required":
            names.add(fields["Package"])
print("\n".join(sorted(names)))
EOF
}

# Prints the maximum resident set size in KiB of one run of a command.
peak_rss_kib() {
    local log
    log="$(mktemp)"
    /usr/bin/time -v -o "$log" "$@" >/dev/null 2>&1
    awk -F': ' '/Maximum resident set size/ {print $2}' "$log"
    rm -f "$log"
}

install_missing
for file in "$index" "$in_release" "$template"; do
    if [[ ! -f "$file" ]]; then
        echo "$file is missing: run 'make demo' in $repo to prepare the mirror" >&2
        exit 1
    fi
done
mkdir -p "$results"
work="$(mktemp -d)"
mirror_pid=""
trap cleanup EXIT

composer="$(find_composer)"
python="$(head -n 1 "$composer" | sed 's/^#![[:space:]]*//')"
start_mirror "$python"
write_config
make_apt_root

ours=("$composer" --config "$work/config.yml" resolve "$template")
# The first run fills the metadata cache. Every later online run revalidates it with the mirror.
check_once "${ours[@]}"
check_once "${ours[@]}" --offline
mapfile -t names < <(request_names "$python")
"${ours[@]}" --offline --json >"$work/ours.json"
apt_install=("${apt_command[@]}" install -s --no-install-recommends "${names[@]}")
check_once "${apt_install[@]}"
ours_summary="$("$python" -c '
import json, sys
data = json.load(sys.stdin)
count, metadata, solve = len(data["packages"]), data["metadata_seconds"], data["solve_seconds"]
print(f"{count} packages (metadata {metadata:.3f} s, solve {solve:.3f} s in one offline run)")
' <"$work/ours.json")"
apt_count="$("${apt_install[@]}" 2>/dev/null | grep -c '^Inst ')"

quote() { printf '%q ' "$@"; }
drop_apt_cache="rm -f $apt_root/cache/pkgcache.bin $apt_root/cache/srcpkgcache.bin"
commands=(
    --command-name "oic resolve" "$(quote "${ours[@]}")" --prepare true
    --command-name "oic resolve --offline" "$(quote "${ours[@]}" --offline)" --prepare true
    --command-name "apt-get -s, cold cache" "$(quote "${apt_install[@]}")"
    --prepare "$drop_apt_cache"
    --command-name "apt-get -s, warm cache" "$(quote "${apt_install[@]}")" --prepare true
)
if [[ "$SKIP_EXAMPLE" != 1 ]]; then
    target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    (cd "$repo" && cargo build --quiet --release -p oic-solve --example resolve_index)
    example=("$target_dir/release/examples/resolve_index" "$index" "${names[@]}")
    check_once "${example[@]}"
    "${example[@]}"
    commands+=(--command-name "resolve_index example" "$(quote "${example[@]}")" --prepare true)
fi

load_before="$(cut -d ' ' -f 1-3 /proc/loadavg)"
# hyperfine pairs the n-th --prepare with the n-th command. Only the cold apt row drops the cache,
# and the warm row follows it, so its warm-up runs rebuild the cache before it is timed.
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --style basic \
    --export-json "$results/resolve.json" "${commands[@]}"
load_after="$(cut -d ' ' -f 1-3 /proc/loadavg)"

{
    printf 'command\tpeak RSS (KiB)\n'
    printf 'oic resolve\t%s\n' "$(peak_rss_kib "${ours[@]}")"
    printf 'oic resolve --offline\t%s\n' "$(peak_rss_kib "${ours[@]}" --offline)"
    rm -f "$apt_root/cache/pkgcache.bin" "$apt_root/cache/srcpkgcache.bin"
    printf 'apt-get -s, cold cache\t%s\n' "$(peak_rss_kib "${apt_install[@]}")"
    printf 'apt-get -s, warm cache\t%s\n' "$(peak_rss_kib "${apt_install[@]}")"
    if [[ "$SKIP_EXAMPLE" != 1 ]]; then
        printf 'resolve_index example\t%s\n' "$(peak_rss_kib "${example[@]}")"
    fi
} >"$results/resolve-memory.tsv"

echo
echo "os-image-composer: $composer ($("$composer" --version))"
echo "apt-get: $(apt-get --version | head -n 1)"
echo "index: $index ($(grep -c '^Package: ' "$index") stanzas)"
echo "request: ${#names[@]} names; apt installs $apt_count packages"
echo "os-image-composer resolves $ours_summary"
echo "hyperfine: --warmup $WARMUP --runs $RUNS; JSON in $results"
echo "load average (1, 5, 15 min): $load_before before, $load_after after; nproc $(nproc)"
if awk -v load="${load_after%% *}" 'BEGIN { exit !(load > 1) }' ||
    awk -v load="${load_before%% *}" 'BEGIN { exit !(load > 1) }'; then
    echo "The 1-minute load average was above 1: other work shared the CPUs, so times are noisy."
fi
echo
"$python" - "$results" <<'EOF'
import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
runs = {r["command"]: r for r in json.loads((results / "resolve.json").read_text())["results"]}
memory = dict(
    line.split("\t") for line in (results / "resolve-memory.tsv").read_text().splitlines()[1:]
)
cold = runs["apt-get -s, cold cache"]["mean"]
warm = runs["apt-get -s, warm cache"]["mean"]
header = ("command", "mean ± σ (ms)", "apt cold / this", "apt warm / this", "peak RSS (MiB)")
table = [header]
for name, run in runs.items():
    table.append((
        name,
        f"{run['mean'] * 1000:.1f} ± {run['stddev'] * 1000:.1f}",
        f"{cold / run['mean']:.2f}",
        f"{warm / run['mean']:.2f}",
        f"{int(memory[name]) / 1024:.1f}",
    ))
widths = [max(len(row[i]) for row in table) for i in range(len(header))]
for row in table:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
print("\nA ratio above 1 means the row is faster than apt-get.")
EOF
