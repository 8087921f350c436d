"""`os-image-composer fetch` and `cache` commands against signed loopback repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import os_image_composer as oic
from os_image_composer.testing.debrepo import PackageSpec, RepoSpec
from os_image_composer.testing.pytest_plugin import DebianRepoFactory, ServedRepo

PROVIDER = "debian-debian12-x86_64"
NAMES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "grub-efi-amd64",
    "hello",
]


def serve(debian_repo_factory: DebianRepoFactory) -> ServedRepo:
    packages = [PackageSpec(name, "1.0") for name in NAMES]
    packages.append(PackageSpec("linux-image-6.1.0-48-amd64", "6.1.172-1"))
    packages.append(
        PackageSpec("linux-image-amd64", "6.1.172-1", depends="linux-image-6.1.0-48-amd64")
    )
    return debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))


def setup_files(tmp_path: Path, served: ServedRepo) -> tuple[Path, Path]:
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        f"work_dir: {tmp_path / 'work'}\n"
        "providers:\n"
        f"  {PROVIDER}:\n"
        "    repositories:\n"
        f"      - {{name: base, url: {served.url.rstrip('/')}, suite: bookworm, "
        f"keys: [{served.key.gpg}]}}\n",
        encoding="utf-8",
    )
    template = tmp_path / "t.yml"
    template.write_text(
        "target: {os: debian, dist: debian12, arch: x86_64, imageType: raw}\n"
        "systemConfig:\n  packages: [hello]\n",
        encoding="utf-8",
    )
    return config, template


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "os_image_composer", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_fetch_fills_then_reuses_cache(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    served = serve(debian_repo_factory)
    config, template = setup_files(tmp_path, served)
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER

    cold = cli(config, "fetch", str(template))
    assert cold.returncode == 0, cold.stderr
    assert "0 from cache, 10 downloaded" in cold.stdout, cold.stdout
    assert (pool / "hello_1.0_amd64.deb").is_file()
    assert (pool / "chrootpkgs.dot").is_file()

    warm = cli(config, "fetch", str(template))
    assert "10 from cache, 0 downloaded" in warm.stdout, warm.stdout

    deb = pool / "hello_1.0_amd64.deb"
    data = bytearray(deb.read_bytes())
    data[100] ^= 0xFF
    deb.write_bytes(bytes(data))
    repaired = cli(config, "fetch", str(template))
    assert "9 from cache, 1 downloaded" in repaired.stdout, repaired.stdout
    assert "hello_1.0_amd64.deb: fetched again (upstream file changed)" in repaired.stdout


def test_fetch_offline_after_server_stops(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    served = serve(debian_repo_factory)
    config, template = setup_files(tmp_path, served)
    assert cli(config, "fetch", str(template)).returncode == 0
    served.server.stop()

    for flags in (["--offline"], []):
        result = cli(config, "fetch", str(template), *flags)
        assert result.returncode == 0, result.stderr
        assert "10 from cache, 0 downloaded" in result.stdout


def test_fetch_offline_never_downloads_a_missing_file(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    served = serve(debian_repo_factory)
    config, template = setup_files(tmp_path, served)
    assert cli(config, "fetch", str(template)).returncode == 0
    cached = tmp_path / "cache" / "pkgCache" / PROVIDER / "hello_1.0_amd64.deb"
    cached.unlink()
    requests_before = len(served.server.requests())

    result = cli(config, "fetch", str(template), "--offline")

    assert result.returncode == 1
    assert "Offline, and 1 package files are missing" in result.stderr
    assert "hello_1.0_amd64.deb" in result.stderr
    assert len(served.server.requests()) == requests_before
    assert not cached.exists()
    assert cli(config, "fetch", str(template)).returncode == 0
    assert cached.exists()


def test_cache_commands(tmp_path: Path, debian_repo_factory: DebianRepoFactory) -> None:
    served = serve(debian_repo_factory)
    config, template = setup_files(tmp_path, served)
    assert cli(config, "fetch", str(template)).returncode == 0

    info = json.loads(cli(config, "cache", "info", "--json").stdout)
    packages = info["providers"][0]["packages"]
    assert packages["files"] == 10
    assert cli(config, "cache", "info").stdout.count(PROVIDER) == 1

    verify = json.loads(cli(config, "cache", "verify").stdout)
    assert verify["ok"] == 10
    assert verify["mismatched"] == []

    dry = json.loads(cli(config, "cache", "clean", "--dry-run").stdout)
    assert (tmp_path / "cache" / "pkgCache" / PROVIDER / "hello_1.0_amd64.deb").exists()
    assert dry["dry_run"] is True

    assert cli(config, "cache", "prune").returncode == 2
    pruned = cli(config, "cache", "prune", "--max-size", "0")
    assert pruned.returncode == 0, pruned.stderr
    assert not any((tmp_path / "cache" / "pkgCache" / PROVIDER).glob("*.deb"))

    cleaned = cli(config, "cache", "clean", "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (tmp_path / "cache" / "metadata").exists()


def test_fetch_progress_callback(tmp_path: Path, debian_repo_factory: DebianRepoFactory) -> None:
    served = serve(debian_repo_factory)
    config, template = setup_files(tmp_path, served)
    events: list[tuple[str, str, int]] = []
    image = oic.ImageTemplate.from_file(template, oic.Config.load(config))
    resolution, report = image.fetch(progress=lambda *event: events.append(event))
    assert report["downloaded_count"] == len(resolution) == 10
    kinds = [event[0] for event in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "finish"
    assert kinds.count("file_done") == 10
    assert sum(n for kind, _, n in events if kind == "bytes") == resolution.download_size
