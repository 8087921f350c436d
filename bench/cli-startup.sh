#!/usr/bin/env bash
# Measure os-image-composer's start-up and template validation against mkosi, the Debian OS image
# builder, with hyperfine. Prints a table of means and writes hyperfine's JSON and the peak memory
# of single runs to bench/results/. Usage: bash bench/cli-startup.sh (from any directory).
#
# Environment: RUNS (default 30) and WARMUP (default 3) are passed to hyperfine.
set -euo pipefail

RUNS="${RUNS:-30}"
WARMUP="${WARMUP:-3}"
LARGE_PACKAGES=2000
LARGE_USERS=50
LARGE_FILES=200

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$bench_dir")"
results="$bench_dir/results"
minimal_template="$repo/image-templates/debian12-x86_64-minimal-raw.yml"

install_missing() {
    local missing=()
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v mkosi >/dev/null || missing+=(mkosi)
    [[ -x /usr/bin/time ]] || missing+=(time)
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

# Writes a template with LARGE_PACKAGES packages, LARGE_USERS users and LARGE_FILES additional
# files, creating each local file so that validation finds it and succeeds.
write_large_template() {
    local dir="$1"
    mkdir -p "$dir/files"
    python3 - "$dir" "$minimal_template" "$LARGE_PACKAGES" "$LARGE_USERS" "$LARGE_FILES" <<'EOF'
import sys
from pathlib import Path

out_dir, minimal, packages, users, files = Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:])
text = Path(minimal).read_text()
head, marker, _ = text.partition("  packages:\n")
if not marker:
    sys.exit(f"{minimal}: systemConfig.packages not found")
lines = [head + marker]
lines += [f"    - bench-package-{i:04d}\n" for i in range(packages)]
lines += [
    "  kernel:\n",
    "    cmdline: \"console=ttyS0,115200 rw\"\n",
    "    packages:\n",
    "      - linux-image-amd64\n",
    "  bootloader:\n",
    "    bootType: efi\n",
    "    provider: grub\n",
    "  users:\n",
]
for i in range(users):
    lines += [
        f"    - name: user{i:03d}\n",
        "      password: \"!\"\n",
        "      groups: [users]\n",
        "      shell: /bin/bash\n",
    ]
lines.append("  additionalFiles:\n")
for i in range(files):
    local = out_dir / "files" / f"file{i:03d}.conf"
    local.write_text(f"setting = {i}\n")
    lines += [
        f"    - local: files/{local.name}\n",
        f"      final: /etc/bench/{local.name}\n",
        "      permissions: \"0644\"\n",
    ]
(out_dir / "large.yml").write_text("".join(lines))
EOF
}

# Writes mkosi.conf for the same image as the minimal template. mkosi 14 (Debian 12) names the
# disk format gpt_ext4 and reads Bootable= from [Output]. A second argument adds that many extra
# packages. They go on the one Packages= line because mkosi 14 rejects a repeated key.
write_mkosi_config() {
    local dir="$1" extra_packages="${2:-0}"
    local packages="systemd,systemd-sysv,udev,openssh-server,linux-image-amd64"
    local i
    for ((i = 0; i < extra_packages; i++)); do
        packages+="$(printf ',bench-package-%04d' "$i")"
    done
    mkdir -p "$dir"
    {
        printf '[Distribution]\nDistribution=debian\nRelease=bookworm\nArchitecture=x86-64\n\n'
        printf '[Output]\nFormat=gpt_ext4\nBootable=yes\n\n'
        printf '[Content]\nPackages=%s\n' "$packages"
    } >"$dir/mkosi.conf"
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

# Runs hyperfine on our command and the peer's, exporting JSON to results/NAME.json.
compare() {
    local name="$1" ours="$2" peer="$3"
    hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" --style basic \
        --export-json "$results/$name.json" \
        --command-name "os-image-composer" "$ours" \
        --command-name "mkosi" "$peer"
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
mkdir -p "$results"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

composer="$(find_composer)"
quoted_composer="$(printf '%q' "$composer")"
write_large_template "$work/large"
write_mkosi_config "$work/mkosi-minimal"
write_mkosi_config "$work/mkosi-large" "$LARGE_PACKAGES"

check_once "$composer" --version
check_once "$composer" validate "$minimal_template"
check_once "$composer" validate "$work/large/large.yml"
check_once mkosi --version
check_once mkosi -C "$work/mkosi-minimal" summary
check_once mkosi -C "$work/mkosi-large" summary

compare startup "$quoted_composer --version" "mkosi --version"
compare validate-minimal \
    "$quoted_composer validate $(printf '%q' "$minimal_template")" \
    "mkosi -C $(printf '%q' "$work/mkosi-minimal") summary"
compare validate-large \
    "$quoted_composer validate $(printf '%q' "$work/large/large.yml")" \
    "mkosi -C $(printf '%q' "$work/mkosi-large") summary"

{
    printf 'command\tpeak RSS (KiB)\n'
    printf 'os-image-composer validate (minimal)\t%s\n' \
        "$(peak_rss_kib "$composer" validate "$minimal_template")"
    printf 'os-image-composer validate (large)\t%s\n' \
        "$(peak_rss_kib "$composer" validate "$work/large/large.yml")"
    printf 'mkosi summary (minimal)\t%s\n' \
        "$(peak_rss_kib mkosi -C "$work/mkosi-minimal" summary)"
    printf 'mkosi summary (large)\t%s\n' \
        "$(peak_rss_kib mkosi -C "$work/mkosi-large" summary)"
} >"$results/peak-memory.tsv"

echo
echo "os-image-composer: $composer ($("$composer" --version))"
echo "mkosi: $(command -v mkosi) ($(mkosi --version))"
echo "hyperfine: --warmup $WARMUP --runs $RUNS; JSON in $results"
echo
python3 - "$results" <<'EOF'
import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
rows = [
    ("startup", "--version"),
    ("validate-minimal", "validate minimal / mkosi summary"),
    ("validate-large", "validate large / mkosi summary, 2,000 packages"),
]
header = ("command", "ours mean ± σ (ms)", "mkosi mean ± σ (ms)", "ratio mkosi/ours")
table = [header]
for name, label in rows:
    runs = {r["command"]: r for r in json.loads((results / f"{name}.json").read_text())["results"]}
    ours, peer = runs["os-image-composer"], runs["mkosi"]
    table.append((
        label,
        f"{ours['mean'] * 1000:.1f} ± {ours['stddev'] * 1000:.1f}",
        f"{peer['mean'] * 1000:.1f} ± {peer['stddev'] * 1000:.1f}",
        f"{peer['mean'] / ours['mean']:.2f}",
    ))
widths = [max(len(row[i]) for row in table) for i in range(len(header))]
for row in table:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
EOF
echo
column -t -s $'\t' "$results/peak-memory.tsv"
