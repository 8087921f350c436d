"""`os-image-composer chroot` for the RPM provider against a loopback repository.

The repository contains real packages built with rpmbuild and signed with rpmsign. Among them
are a filesystem package, a static busybox from the host as the root's shell, and the
provider's build tools. The %post scriptlet of `util-linux` reads /proc inside the root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_image_composer import ChrootEnv, Config
from os_image_composer.testing.debrepo import GpgKey
from os_image_composer.testing.httpserver import RepoServer
from os_image_composer.testing.rpmrepo import (
    BuiltRpmRepo,
    RpmPackageSpec,
    RpmRepoSpec,
    build_rpm_repo,
)

PROVIDER = "azure-linux-azl3-x86_64"
BUILD_TOOLS = [
    "dosfstools",
    "e2fsprogs",
    "mtools",
    "util-linux",
    "xfsprogs",
    "grub2-efi-binary",
    "systemd-boot",
]

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="the chroot environment needs root for mounts"),
    pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="needs busybox-static"),
]


def packages(*, failing_post: bool = False) -> list[RpmPackageSpec]:
    """Return the repository's packages. With `failing_post` the %post of xfsprogs fails."""
    specs = [
        RpmPackageSpec(
            "filesystem",
            directories=["/usr", "/usr/bin", "/etc", "/var", "/var/lib", "/var/log"],
            symlinks={"/bin": "usr/bin"},
        ),
        RpmPackageSpec(
            "bash",
            arch="x86_64",
            requires=["filesystem"],
            provides=["/bin/sh"],
            host_files={"/usr/bin/busybox": "/bin/busybox"},
            symlinks={"/usr/bin/sh": "busybox", "/usr/bin/head": "busybox"},
        ),
        RpmPackageSpec(
            "util-linux",
            arch="x86_64",
            requires=["/bin/sh", "(libmount or libmount-compat)"],
            post="head -c 64 /proc/self/stat > /var/log/util-linux-post",
        ),
        RpmPackageSpec("libmount", arch="x86_64", requires=["filesystem"]),
    ]
    specs += [
        RpmPackageSpec(name, requires=["filesystem"])
        for name in BUILD_TOOLS
        if name not in ("util-linux", "xfsprogs")
    ]
    xfsprogs = RpmPackageSpec("xfsprogs", requires=["filesystem", "/bin/sh"])
    if failing_post:
        xfsprogs.post = "echo xfsprogs setup failed >&2\nexit 3"
    return [*specs, xfsprogs]


def serve_repo(
    factory: pytest.TempPathFactory, specs: list[RpmPackageSpec]
) -> Iterator[tuple[Path, str]]:
    """Build a repository of `specs`, serve it, and yield the key file and URL."""
    root = factory.mktemp("rpm-chroot-repo")
    gnupghome = factory.mktemp("rpm-chroot-gnupg")
    try:
        built: BuiltRpmRepo = build_rpm_repo(RpmRepoSpec(packages=specs), root, gnupghome)
        key = built.key.export_armored(factory.mktemp("rpm-chroot-key") / "key.asc")
    finally:
        GpgKey(gnupghome, "", "", "").stop_agent()
    server = RepoServer(root).start()
    yield key, server.url
    server.stop()


@pytest.fixture(scope="module")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    yield from serve_repo(tmp_path_factory, packages())


@pytest.fixture(scope="module")
def failing_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    yield from serve_repo(tmp_path_factory, packages(failing_post=True))


def write_files(tmp_path: Path, repo: tuple[Path, str]) -> tuple[Path, Path]:
    key, url = repo
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        f"work_dir: {tmp_path / 'work'}\n"
        "providers:\n"
        f"  {PROVIDER}:\n"
        "    repositories:\n"
        f"      - {{name: azl-test, url: {url.rstrip('/')}, keys: [{key}]}}\n",
        encoding="utf-8",
    )
    template = tmp_path / "t.yml"
    template.write_text(
        "target: {os: azure-linux, dist: azl3, arch: x86_64, imageType: raw}\n"
        "systemConfig:\n  packages: [filesystem]\n",
        encoding="utf-8",
    )
    return config, template


def chroot(config: Path, template: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "os_image_composer", "--config", str(config), "chroot"]
    return subprocess.run([*command, str(template)], capture_output=True, text=True, check=False)


def installed_names(root: Path) -> set[str]:
    command = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME}\\n"]
    listed = subprocess.run(command, capture_output=True, text=True, check=True)
    return set(listed.stdout.split()) - {"gpg-pubkey"}


def test_rpm_chroot_created_reused_restored(tmp_path: Path, rpm_repo: tuple[Path, str]) -> None:
    config, template = write_files(tmp_path, rpm_repo)
    environment = ChrootEnv(PROVIDER, Config.load(config))

    created = chroot(config, template)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created "), created.stdout
    expected = {*BUILD_TOOLS, "filesystem", "bash", "libmount"}
    assert installed_names(environment.root) == expected
    assert (environment.root / "var/lib/rpm/rpmdb.sqlite").is_file()
    post = (environment.root / "var/log/util-linux-post").read_text(encoding="utf-8")
    assert " (head) " in post, post
    manifest = environment.manifest()
    assert manifest is not None
    assert {package["name"] for package in manifest["packages"]} == expected
    assert environment.snapshot_path.is_file()

    reused = chroot(config, template)
    assert reused.returncode == 0, reused.stderr
    assert reused.stdout.startswith("reused "), reused.stdout

    shutil.rmtree(environment.root)
    restored = chroot(config, template)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("restored "), restored.stdout
    assert installed_names(environment.root) == expected

    mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    assert str(tmp_path) not in mounts


def test_rpm_chroot_failing_post(tmp_path: Path, failing_repo: tuple[Path, str]) -> None:
    config, template = write_files(tmp_path, failing_repo)
    environment = ChrootEnv(PROVIDER, Config.load(config))

    failed = chroot(config, template)

    assert failed.returncode == 1, failed.stdout
    assert "%post(xfsprogs-1.0-1.noarch) scriptlet failed" in failed.stderr, failed.stderr
    assert "xfsprogs setup failed" in failed.stderr, failed.stderr
    assert not environment.root.exists()
    assert environment.manifest() is None
    mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    assert str(tmp_path) not in mounts
