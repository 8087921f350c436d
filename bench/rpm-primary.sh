#!/usr/bin/env bash
# Parse a generated primary.xml of 50,000 package names and resolve a request of 20 top-level
# packages with the release build of oic-rpm's `resolve_primary` example, and the same with
# libsolv (the solver of dnf and zypper): `rpmmd2solv` parses primary.xml and `testsolv`
# resolves the job from the .solv file. Prints hyperfine's report and the peak memory of one run
# of each command. Results go to bench/results/.
#
#   bash bench/rpm-primary.sh
#   COUNT=10000 RUNS=5 bash bench/rpm-primary.sh
set -euo pipefail

COUNT=${COUNT:-50000}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS="$ROOT/bench/results"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d /tmp/oic-rpm-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RESULTS"

for tool in hyperfine rpmmd2solv testsolv; do
    if ! command -v "$tool" >/dev/null; then
        echo "missing $tool: apt-get install hyperfine libsolv-tools" >&2
        exit 1
    fi
done

python3 "$ROOT/bench/rpm_primary_gen.py" "$WORK/primary.xml" "$COUNT"
mapfile -t NAMES <"$WORK/primary.request"

(cd "$ROOT" && cargo build --quiet --release -p oic-rpm --example resolve_primary)
EXAMPLE="$TARGET/release/examples/resolve_primary"

# libsolv's testcase: an empty installed system and one repository read from the .solv file.
rpmmd2solv <"$WORK/primary.xml" >"$WORK/primary.solv"
{
    echo "repo system 0 empty"
    echo "repo available 0 solv primary.solv"
    echo "system x86_64 rpm system"
    for name in "${NAMES[@]}"; do
        echo "job install name $name"
    done
} >"$WORK/testcase.t"

# Every command must succeed once before it is timed.
"$EXAMPLE" "$WORK/primary.xml" "${NAMES[@]}"
(cd "$WORK" && testsolv testcase.t | grep 'installed packages')

OURS="$EXAMPLE $WORK/primary.xml ${NAMES[*]}"
# rpmmd2solv reads primary.xml from stdin, so it runs under sh for the redirection.
PARSE="sh -c 'rpmmd2solv <primary.xml >parsed.solv'"
SOLVE="testsolv $WORK/testcase.t"
cd "$WORK"
hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$RESULTS/rpm-primary.json" \
    --command-name "oic-rpm parse + solve" "$OURS" \
    --command-name "libsolv rpmmd2solv (parse)" "$PARSE" \
    --command-name "libsolv testsolv (solve)" "$SOLVE"

printf 'command\tpeak RSS (KiB)\n' >"$RESULTS/rpm-primary-memory.tsv"
for row in "oic-rpm parse + solve|$OURS" "rpmmd2solv|$PARSE" "testsolv|$SOLVE"; do
    label=${row%%|*}
    command=${row#*|}
    peak=$(bash -c "/usr/bin/time -v $command" 2>&1 >/dev/null |
        awk -F': ' '/Maximum resident set size/ {print $2}')
    printf '%s\t%s\n' "$label" "$peak" >>"$RESULTS/rpm-primary-memory.tsv"
done
column -t -s $'\t' "$RESULTS/rpm-primary-memory.tsv"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
