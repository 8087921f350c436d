"""Several builds on one package cache, each in its own mount and network namespace.

Each namespace plays the part of a build host: it has its own loopback interface with its own
repository server, and shares only the cache folder with the others, as hosts share a cache on
network storage.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from os_image_composer.testing.debrepo import PackageSpec, RepoSpec
from os_image_composer.testing.pytest_plugin import DebianRepoFactory

PROVIDER = "debian-debian12-x86_64"
NAMES = ["systemd", "systemd-sysv", "udev", "dbus", "kmod", "initramfs-tools", "grub-efi-amd64"]

needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0
    or shutil.which("unshare") is None
    or shutil.which("ip") is None
    or shutil.which("bash") is None,
    reason="needs root, unshare and ip to make network namespaces",
)


def host_script(repo_root: Path, key: Path, cache: Path, work: Path, template: Path) -> str:
    """Return a bash script that serves the repository on its own loopback and fetches.

    Every namespace has a loopback of its own, so each host's server can use the same port.
    """
    python = shlex.quote(sys.executable)
    config = shlex.quote(str(work / "config.yml"))
    return textwrap.dedent(
        f"""\
        set -e
        ip link set lo up
        mkdir -p {shlex.quote(str(work))}
        {python} -m os_image_composer.testing.httpserver {shlex.quote(str(repo_root))} \\
            --port 8080 > /dev/null 2>&1 &
        server=$!
        trap 'kill $server' EXIT
        for _ in $(seq 200); do
            (echo > /dev/tcp/127.0.0.1/8080) 2> /dev/null && break
            sleep 0.05
        done
        cat > {config} <<CONFIG
        cache_dir: {cache}
        work_dir: {work}
        providers:
          {PROVIDER}:
            repositories:
              - {{name: base, url: "http://127.0.0.1:8080", suite: bookworm, keys: [{key}]}}
        CONFIG
        {python} -m os_image_composer --config {config} fetch {shlex.quote(str(template))}
        """
    )


@needs_namespaces
def test_hosts_share_one_cache(tmp_path: Path, debian_repo_factory: DebianRepoFactory) -> None:
    packages = [PackageSpec(name, "1.0") for name in NAMES]
    packages.append(PackageSpec("linux-image-amd64", "6.1", files={"/boot/blob": "x" * 200_000}))
    packages += [
        PackageSpec(f"data{index}", "1.0", files={"/usr/share/blob": os.urandom(300_000).hex()})
        for index in range(12)
    ]
    served = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))
    template = tmp_path / "t.yml"
    names = ", ".join(f"data{index}" for index in range(12))
    template.write_text(
        "target: {os: debian, dist: debian12, arch: x86_64, imageType: raw}\n"
        f"systemConfig:\n  packages: [{names}]\n",
        encoding="utf-8",
    )
    cache = tmp_path / "shared-cache"

    hosts = []
    for index in range(3):
        work = tmp_path / f"host{index}"
        script = host_script(served.root, served.key.gpg, cache, work, template)
        command = ["unshare", "--mount", "--net", "bash", "-c", script]
        hosts.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [host.communicate(timeout=120) for host in hosts]

    for host, (stdout, stderr) in zip(hosts, outputs, strict=True):
        assert host.returncode == 0, stderr.decode()
        assert b"packages:" in stdout, stdout
    pool = cache / "pkgCache" / PROVIDER
    built = {package.filename.rsplit("/", 1)[-1]: package for package in served.built.packages}
    debs = sorted(pool.glob("*.deb"))
    assert len(debs) == len(built)
    for deb in debs:
        expected = built[deb.name]
        assert hashlib.sha256(deb.read_bytes()).hexdigest() == expected.sha256, deb.name
    assert not [path.name for path in pool.iterdir() if path.name.startswith(".")]
