"""`os-image-composer chroot` end to end: resolve, fetch and create, then reuse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from os_image_composer.testing.pytest_plugin import DebianMirror

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "image-templates" / "debian12-x86_64-minimal-raw.yml"


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the chroot environment needs root for mounts")
def test_chroot_created_then_reused(tmp_path: Path, debian_mirror: DebianMirror) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        f"work_dir: {tmp_path / 'work'}\n"
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        f"      - {{name: bookworm, url: {debian_mirror.url}, suite: bookworm, "
        "keys: [embedded:debian-archive-bookworm-automatic.gpg]}\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "os_image_composer", "--config", str(config), "chroot"]

    created = subprocess.run([*command, str(EXAMPLE)], capture_output=True, text=True, check=False)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created "), created.stdout
    root = tmp_path / "work" / "debian-debian12-x86_64" / "chrootenv"
    snapshot = tmp_path / "work" / "debian-debian12-x86_64" / "chrootbuild" / "chrootenv.tar.gz"
    assert snapshot.is_file()

    listed = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package}\\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = set(listed.stdout.split())
    count = int(created.stdout.split("(")[1].split()[0])
    assert len(installed) == count
    for tool in ["dpkg", "apt", "e2fsprogs", "dosfstools", "mtools", "fdisk"]:
        assert tool in installed, tool

    reused = subprocess.run([*command, str(EXAMPLE)], capture_output=True, text=True, check=False)
    assert reused.returncode == 0, reused.stderr
    assert reused.stdout.startswith("reused "), reused.stdout

    mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    assert str(tmp_path) not in mounts
