#!/usr/bin/env bash
# The main job: check the example template, prepare and start the real-package mirror, point the
# debian-debian12-x86_64 provider at it through a configuration file, resolve and fetch the
# template's packages, build the image twice (cold, then with every cache reused), boot it in QEMU
# to its login prompt, and show that the mirror serves Debian's signed index. With --serve the
# mirror keeps running until Ctrl-C.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
template=${TEMPLATE:-$repo/image-templates/debian12-x86_64-minimal-raw.yml}
demo_dir=${DEMO_DIR:-$repo/build/demo}
serve_forever=0
[ "${1:-}" = "--serve" ] && serve_forever=1

mkdir -p "$demo_dir"
echo "== validate $template"
os-image-composer validate "$template"

echo "== prepare the real-package mirror"
python3 -m os_image_composer.testing.mirror prepare

echo "== start the mirror on 127.0.0.1"
port_file="$demo_dir/mirror.port"
rm -f "$port_file"
python3 -m os_image_composer.testing.mirror serve --port-file "$port_file" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    [ -s "$port_file" ] && break
    sleep 0.1
done
url=$(python3 -m os_image_composer.testing.mirror url --port-file "$port_file")

config="$demo_dir/config.yml"
cat > "$config" <<CONFIG
# Written by scripts/demo.sh: builds use the local mirror of real Debian packages.
cache_dir: cache
work_dir: workspace
providers:
  debian-debian12-x86_64:
    repositories:
      - name: bookworm
        url: $url
        suite: bookworm
        components: [main]
        keys: [/usr/share/keyrings/debian-archive-keyring.gpg]
CONFIG

echo "== configuration ($config)"
os-image-composer --config "$config" config show
os-image-composer --config "$config" validate "$template"

echo "== resolve the template's packages against the mirror"
os-image-composer --config "$config" resolve "$template" --dotfile "$demo_dir/chrootpkgs.dot" |
    tail -n 5

echo "== fetch them into the package cache (twice: the second run reuses the cache)"
os-image-composer --config "$config" fetch "$template"
os-image-composer --config "$config" fetch "$template"

echo "== build the image, then build it again: the second build reuses every cache"
os-image-composer --config "$config" build "$template"
os-image-composer --config "$config" build --json "$template" > "$demo_dir/build-report.json"
image=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["artifacts"][0]["path"])' \
    < "$demo_dir/build-report.json")
ls -ls "$(dirname "$image")"
sfdisk --dump "$image"

if [ "${SKIP_BOOT:-0}" != 1 ]; then
    echo "== boot $image under QEMU and wait for the login prompt (SKIP_BOOT=1 skips this)"
    python3 - "$image" <<'PYTHON'
import sys
import time

from os_image_composer.testing.qemu import boot_image

started = time.monotonic()
with boot_image(sys.argv[1], timeout=60) as vm:
    vm.wait_for("login:")
    print(f"login prompt after {time.monotonic() - started:.0f} s ({vm.accelerator})")
PYTHON
fi
os-image-composer --config "$config" cache info

echo "== the mirror serves Debian's signed index"
in_release="$demo_dir/InRelease"
python3 - "$url/dists/bookworm/InRelease" "$in_release" <<'PYTHON'
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    data = response.read()
with open(sys.argv[2], "wb") as file:
    file.write(data)
PYTHON
grep -E "^(Origin|Suite|Codename|Date):" "$in_release"
gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg "$in_release" 2>&1 | grep "Good signature"

echo "== mirror: $url (configuration: $config)"
if [ "$serve_forever" -eq 1 ]; then
    echo "serving until Ctrl-C"
    wait "$server"
fi
