"""`os-image-composer resolve` and `fetch` for the RPM provider against a loopback repository.

The repository contains real packages built with rpmbuild, signed with rpmsign by a key made for
the test session and indexed with createrepo_c.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_image_composer.testing.debrepo import GpgKey
from os_image_composer.testing.httpserver import RepoServer
from os_image_composer.testing.rpmrepo import (
    BuiltRpmRepo,
    RpmPackageSpec,
    RpmRepoSpec,
    build_rpm_repo,
)

PROVIDER = "azure-linux-azl3-x86_64"
# The names the provider's default template requests, as empty packages.
BASE_NAMES = ["filesystem", "azurelinux-release", "systemd", "shadow-utils", "dracut", "kernel"]


def packages() -> list[RpmPackageSpec]:
    specs = [RpmPackageSpec(name) for name in BASE_NAMES]
    specs += [
        RpmPackageSpec(
            "app",
            arch="x86_64",
            requires=["(liba or libb)", "/usr/bin/foo", "tool >= 1:0.5"],
        ),
        RpmPackageSpec("libb", arch="x86_64"),
        RpmPackageSpec("foo-tools", files={"/usr/bin/foo": "#!/bin/sh\n"}),
        RpmPackageSpec("tool", version="2.0"),
        RpmPackageSpec("tool", version="1.0", epoch=1),
        RpmPackageSpec("unsigned", sign=None),
        RpmPackageSpec("broken", requires=["middle"]),
        RpmPackageSpec("middle", requires=["libgone >= 2"]),
    ]
    return specs


@pytest.fixture(scope="module")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuiltRpmRepo, Path, str]]:
    """Build the repository once per module and serve it; yields the repo, key file and URL."""
    root = tmp_path_factory.mktemp("rpm-repo")
    gnupghome = tmp_path_factory.mktemp("rpm-gnupg")
    try:
        built = build_rpm_repo(RpmRepoSpec(packages=packages()), root, gnupghome)
        key = built.key.export_armored(tmp_path_factory.mktemp("rpm-key") / "repo-key.asc")
    finally:
        GpgKey(gnupghome, "", "", "").stop_agent()
    server = RepoServer(root).start()
    yield built, key, server.url
    server.stop()


def write_files(tmp_path: Path, repo: tuple[BuiltRpmRepo, Path, str], names: str) -> Path:
    _, key, url = repo
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        "providers:\n"
        f"  {PROVIDER}:\n"
        "    repositories:\n"
        f"      - {{name: azl-test, url: {url.rstrip('/')}, keys: [{key}]}}\n",
        encoding="utf-8",
    )
    template = tmp_path / "t.yml"
    template.write_text(
        "target: {os: azure-linux, dist: azl3, arch: x86_64, imageType: raw}\n"
        f"systemConfig:\n  packages: [{names}]\n",
        encoding="utf-8",
    )
    return config


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "os_image_composer", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_resolve_prints_rpm_set(tmp_path: Path, rpm_repo: tuple[BuiltRpmRepo, Path, str]) -> None:
    config = write_files(tmp_path, rpm_repo, "app")
    dotfile = tmp_path / "deps.dot"
    result = cli(config, "resolve", str(tmp_path / "t.yml"), "--json", "-f", str(dotfile))
    assert result.returncode == 0, result.stderr

    outcome = json.loads(result.stdout)
    versions = {package["name"]: package["version"] for package in outcome["packages"]}
    assert versions["tool"] == "1:1.0-1"
    assert "libb" in versions
    assert "foo-tools" in versions
    assert "unsigned" not in versions
    app = next(package for package in outcome["packages"] if package["name"] == "app")
    assert app["url"].endswith("/app-1.0-1.x86_64.rpm"), app["url"]
    edges = {(edge["from"], edge["to"]): edge for edge in outcome["edges"]}
    assert edges[("app", "foo-tools")]["provided"] == "/usr/bin/foo"
    assert edges[("app", "libb")]["relation"] == "(liba or libb)"
    assert '"app" -> "tool"' in dotfile.read_text()


def test_fetch_puts_signed_rpms_in_cache(
    tmp_path: Path, rpm_repo: tuple[BuiltRpmRepo, Path, str]
) -> None:
    config = write_files(tmp_path, rpm_repo, "app")
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER

    cold = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert cold.returncode == 0, cold.stderr
    assert (pool / "app-1.0-1.x86_64.rpm").is_file()
    assert (pool / "tool-1.0-1.noarch.rpm").is_file()
    assert (pool / "chrootpkgs.dot").is_file()

    warm = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert warm.returncode == 0, warm.stderr
    assert " 0 downloaded" in warm.stdout, warm.stdout


def test_fetch_rejects_unsigned_rpm(
    tmp_path: Path, rpm_repo: tuple[BuiltRpmRepo, Path, str]
) -> None:
    config = write_files(tmp_path, rpm_repo, "unsigned")
    result = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "unsigned-1.0-1.noarch.rpm" in result.stderr
    assert "no OpenPGP header signature" in result.stderr
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER
    assert not (pool / "unsigned-1.0-1.noarch.rpm").exists()


def test_resolve_names_missing_chain(
    tmp_path: Path, rpm_repo: tuple[BuiltRpmRepo, Path, str]
) -> None:
    config = write_files(tmp_path, rpm_repo, "broken")
    result = cli(config, "resolve", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "nothing provides `libgone >= 0:2`" in result.stderr
    assert "broken-1.0-1.noarch -> middle-1.0-1.noarch -> libgone >= 0:2" in result.stderr
