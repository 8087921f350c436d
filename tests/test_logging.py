"""The core's log records reach Python's `logging`, and its warnings reach `warnings`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import os_image_composer as oic
from os_image_composer import _native
from os_image_composer.testing.debrepo import PackageSpec, RepoSpec
from os_image_composer.testing.pytest_plugin import DebianRepoFactory


def make_template(tmp_path: Path, url: str, key: Path | None) -> oic.ImageTemplate:
    keys = f"keys: [{key}]" if key else "gpgCheck: false"
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        f"      - {{name: base, url: {url.rstrip('/')}, suite: bookworm, {keys}}}\n",
        encoding="utf-8",
    )
    template = tmp_path / "t.yml"
    template.write_text(
        "target: {os: debian, dist: debian12, arch: x86_64, imageType: raw}\n"
        "systemConfig:\n  packages: [hello]\n  kernel:\n    packages: [hello]\n",
        encoding="utf-8",
    )
    return oic.ImageTemplate.from_file(template, oic.Config.load(config))


@pytest.fixture
def served_url(debian_repo_factory: DebianRepoFactory) -> tuple[str, Path]:
    # The names the provider's default template requests, as empty packages.
    names = ["hello", "systemd", "systemd-sysv", "udev", "dbus", "kmod", "initramfs-tools"]
    names.append("grub-efi-amd64")
    packages = [PackageSpec(name, "1.0") for name in names]
    spec = RepoSpec(codename="bookworm", components={"main": packages})
    served = debian_repo_factory(spec)
    return served.url, served.key.gpg


def test_core_records_reach_logging(
    tmp_path: Path, served_url: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _native.set_log_level("debug")
    try:
        with caplog.at_level(logging.DEBUG, logger="os_image_composer"):
            make_template(tmp_path, served_url[0], served_url[1]).resolve()
    finally:
        _native.set_log_level("info")
    records = [(record.name, record.getMessage()) for record in caplog.records]
    assert ("os_image_composer.repo", "signature verified") in [
        (name, message.split(" (")[0]) for name, message in records
    ], records
    assert any(name == "os_image_composer.build" for name, _ in records), records


def test_core_warnings_reach_warnings(tmp_path: Path, served_url: tuple[str, Path]) -> None:
    with pytest.warns(oic.ComposerWarning, match="signature check skipped"):
        make_template(tmp_path, served_url[0], None).resolve()


def test_invalid_log_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="Invalid log level `loud`"):
        _native.set_log_level("loud")
