#!/usr/bin/env bash
# Installs what os-image-composer needs on a Debian 12 machine, builds it and installs it into the
# current Python: Debian packages with apt-get, Python tools with pip, the package with pip.
# Run as root (apt-get). Safe to run again: it installs only what is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)

# Tools the product and its tests call. dpkg-deb and gpg build and sign test repositories, and apt
# with the Debian keyring checks them. lz4 reads apt's lists. rpm and createrepo-c build and index
# test RPM repositories. hyperfine and time run the benchmarks. qemu-utils converts disk images,
# and pigz, xz-utils and zstd compress them. qemu-system-x86 and ovmf boot images in the boot
# tests, and busybox-static is the userland of their test initramfs. The disk tests write file
# systems with the host's dosfstools, e2fsprogs, fdisk, mtools and xfsprogs; mmdebstrap is the
# peer of the build benchmark.
debian_packages=(
    apt busybox-static ca-certificates createrepo-c debian-archive-keyring dosfstools dpkg-dev
    e2fsprogs fdisk gpg gpgv gpg-agent hyperfine lz4 make mmdebstrap mtools ovmf pigz
    qemu-system-x86 qemu-utils rpm time xfsprogs xz-utils zstd
)

missing=()
for package in "${debian_packages[@]}"; do
    if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update runs only when the install fails, because it replaces the package lists that
    # the test mirror is built from.
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi

# The test mirror downloads the versions that apt's lists name, and the registry drops superseded
# versions, so lists older than a week are refreshed first.
lists=/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease
if [ -z "$(find "$lists" -mtime -7 2>/dev/null)" ]; then
    echo "setup: apt's lists are missing or older than 7 days: running apt-get update"
    apt-get update -q
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

echo "setup: installing Python tools and os-image-composer"
# tqdm, matplotlib, networkx, nbclient and ipykernel run notebooks/explore.ipynb in the tests, and
# mkdocstrings renders the Python API reference of `make docs`.
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    "maturin>=1.7,<2" "pytest>=8" "ruff>=0.6" "mypy>=1.11" "mkdocs>=1.6" "spdx-tools>=0.8" \
    "mkdocstrings[python]>=0.26" "tqdm>=4.66" "matplotlib>=3.7" "networkx>=3" "nbclient>=0.10" \
    "nbformat>=5.9" "ipykernel>=6.29"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e "$repo"
echo "setup: done ($(os-image-composer --version))"
