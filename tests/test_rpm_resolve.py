"""`os-image-composer resolve` and `fetch` for the RPM provider against a loopback repository.

The repository contains real packages built with rpmbuild, signed with rpmsign by a key made for
the test session and indexed with createrepo_c. Tests that damage a file serve their own copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import os_image_composer as oic
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
        RpmPackageSpec("foreign", sign="other"),
        RpmPackageSpec("data-user", requires=["/usr/share/foo/data.txt"]),
        RpmPackageSpec("foo-data", files={"/usr/share/foo/data.txt": "data\n"}),
        RpmPackageSpec("data-orphan", requires=["/usr/share/none/gone.txt"]),
    ]
    return specs


RepoFixture = tuple[BuiltRpmRepo, Path, str]


def build_and_serve(
    factory: pytest.TempPathFactory, spec: RpmRepoSpec, label: str
) -> Iterator[RepoFixture]:
    """Build a repository and serve it. Yields the repo, the key file and the URL."""
    root = factory.mktemp(f"{label}-repo")
    gnupghome = factory.mktemp(f"{label}-gnupg")
    try:
        built = build_rpm_repo(spec, root, gnupghome)
        key = built.key.export_armored(factory.mktemp(f"{label}-key") / "repo-key.asc")
    finally:
        GpgKey(gnupghome, "", "", "").stop_agent()
    server = RepoServer(root).start()
    yield built, key, server.url
    server.stop()


@pytest.fixture(scope="module")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepoFixture]:
    """The repository with SHA-256 checksums, built once per module."""
    yield from build_and_serve(tmp_path_factory, RpmRepoSpec(packages=packages()), "rpm")


@pytest.fixture(scope="module")
def sha512_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepoFixture]:
    """A repository that `createrepo_c --checksum sha512` indexed, built once per module."""
    specs = [RpmPackageSpec(name) for name in BASE_NAMES] + [RpmPackageSpec("tool", version="2.0")]
    spec = RpmRepoSpec(packages=specs, checksum="sha512")
    yield from build_and_serve(tmp_path_factory, spec, "sha512")


@pytest.fixture
def served_copy(tmp_path: Path) -> Iterator[Callable[[RepoFixture], tuple[Path, RepoFixture]]]:
    """Copy a built repository and serve the copy, so that a test may damage its files."""
    servers: list[RepoServer] = []

    def serve(repo: RepoFixture) -> tuple[Path, RepoFixture]:
        built, key, _ = repo
        root = tmp_path / "served"
        shutil.copytree(built.root, root)
        server = RepoServer(root).start()
        servers.append(server)
        return root, (built, key, server.url)

    yield serve
    for server in servers:
        server.stop()


def write_files(tmp_path: Path, repo: RepoFixture, names: str) -> Path:
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


def test_resolve_prints_rpm_set(tmp_path: Path, rpm_repo: RepoFixture) -> None:
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


def test_fetch_puts_signed_rpms_in_cache(tmp_path: Path, rpm_repo: RepoFixture) -> None:
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


def test_fetch_rejects_unsigned_rpm(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "unsigned")
    result = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "unsigned-1.0-1.noarch.rpm" in result.stderr
    assert "no OpenPGP header signature" in result.stderr
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER
    assert not (pool / "unsigned-1.0-1.noarch.rpm").exists()


def test_resolve_names_missing_chain(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "broken")
    result = cli(config, "resolve", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "nothing provides `libgone >= 0:2`" in result.stderr
    assert "broken-1.0-1.noarch -> middle-1.0-1.noarch -> libgone >= 0:2" in result.stderr


def template(tmp_path: Path, config: Path) -> oic.ImageTemplate:
    return oic.Composer.from_file(config).template(tmp_path / "t.yml")


def damage(path: Path) -> None:
    """Flip the bits of the middle byte, keeping the size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def pool_names(tmp_path: Path, prefix: str) -> list[str]:
    """Return the cache files, final or temporary, of packages named `prefix`."""
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER
    if not pool.is_dir():
        return []
    return sorted(p.name for p in pool.iterdir() if p.name.lstrip(".").startswith(prefix))


def test_file_dependency_from_filelists(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "data-user")
    result = cli(config, "resolve", str(tmp_path / "t.yml"), "--json")
    assert result.returncode == 0, result.stderr

    outcome = json.loads(result.stdout)
    names = {package["name"] for package in outcome["packages"]}
    assert "foo-data" in names
    edge = next(edge for edge in outcome["edges"] if edge["from"] == "data-user")
    assert edge["to"] == "foo-data"
    assert edge["provided"] == "/usr/share/foo/data.txt"

    offline = cli(config, "resolve", str(tmp_path / "t.yml"), "--offline")
    assert offline.returncode == 0, offline.stderr


def test_file_missing_raises_resolution_error(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "data-orphan")
    with pytest.raises(oic.ResolutionError) as caught:
        template(tmp_path, config).resolve()
    assert caught.value.package == "data-orphan-1.0-1.noarch"
    assert caught.value.dependency == "/usr/share/none/gone.txt"
    assert caught.value.chain == "data-orphan-1.0-1.noarch -> /usr/share/none/gone.txt"

    result = cli(config, "resolve", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "data-orphan-1.0-1.noarch -> /usr/share/none/gone.txt" in result.stderr
    assert "filelists.xml" in result.stderr


def test_sha512_repository_fetches(tmp_path: Path, sha512_repo: RepoFixture) -> None:
    built, _, _ = sha512_repo
    assert '<checksum type="sha512">' in built.repomd.read_text()
    config = write_files(tmp_path, sha512_repo, "tool")

    resolution, report = template(tmp_path, config).fetch()
    tool = resolution.get("tool")
    assert tool is not None
    assert tool.checksum_type == "sha512"
    assert len(tool.checksum) == 128
    assert tool.sha256 is None
    assert report["downloaded_count"] == len(resolution)
    assert pool_names(tmp_path, "tool") == ["tool-2.0-1.noarch.rpm"]

    warm = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert warm.returncode == 0, warm.stderr
    assert " 0 downloaded" in warm.stdout, warm.stdout


def test_sha512_damaged_package_rejected(
    tmp_path: Path,
    sha512_repo: RepoFixture,
    served_copy: Callable[[RepoFixture], tuple[Path, RepoFixture]],
) -> None:
    root, repo = served_copy(sha512_repo)
    damage(root / "Packages" / "noarch" / "tool-2.0-1.noarch.rpm")
    config = write_files(tmp_path, repo, "tool")

    with pytest.raises(oic.ChecksumError) as caught:
        template(tmp_path, config).fetch()
    error = caught.value
    assert error.algorithm == "sha512"
    assert error.url is not None
    assert error.url.endswith("/tool-2.0-1.noarch.rpm")
    assert error.expected is not None
    assert error.actual is not None
    assert len(error.expected) == 128
    assert error.expected != error.actual
    assert pool_names(tmp_path, "tool") == []

    result = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "sha512" in result.stderr
    assert pool_names(tmp_path, "tool") == []


@pytest.mark.parametrize(
    ("name", "package"),
    [("unsigned", "unsigned-1.0-1.noarch.rpm"), ("foreign", "foreign-1.0-1.noarch.rpm")],
)
def test_package_signature_raises_signature_error(
    tmp_path: Path, rpm_repo: RepoFixture, name: str, package: str
) -> None:
    config = write_files(tmp_path, rpm_repo, name)
    with pytest.raises(oic.SignatureError) as caught:
        template(tmp_path, config).fetch()
    assert caught.value.repository == "azl-test"
    assert caught.value.package == package
    assert pool_names(tmp_path, name) == []

    result = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert package in result.stderr


def test_repomd_signature_raises_signature_error(
    tmp_path: Path,
    rpm_repo: RepoFixture,
    served_copy: Callable[[RepoFixture], tuple[Path, RepoFixture]],
) -> None:
    root, repo = served_copy(rpm_repo)
    built = repo[0]
    repomd = root / "repodata" / "repomd.xml"
    try:
        built.other_key.sign(
            repomd, repomd.with_suffix(".xml.asc"), clearsign=False, with_subkey=False
        )
    finally:
        built.other_key.stop_agent()
    config = write_files(tmp_path, repo, "tool")

    with pytest.raises(oic.SignatureError) as caught:
        template(tmp_path, config).resolve()
    assert caught.value.repository == "azl-test"
    assert caught.value.package is None

    result = cli(config, "resolve", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "repomd.xml" in result.stderr


def test_unsigned_repomd_raises_signature_error(
    tmp_path: Path,
    rpm_repo: RepoFixture,
    served_copy: Callable[[RepoFixture], tuple[Path, RepoFixture]],
) -> None:
    root, repo = served_copy(rpm_repo)
    (root / "repodata" / "repomd.xml.asc").unlink()
    config = write_files(tmp_path, repo, "tool")

    with pytest.raises(oic.SignatureError) as caught:
        template(tmp_path, config).resolve()
    assert caught.value.repository == "azl-test"
    assert caught.value.package is None
    assert "repomd.xml.asc" in str(caught.value)

    result = cli(config, "resolve", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "gpgCheck: false" in result.stderr


def test_primary_mismatch_raises_checksum_error(
    tmp_path: Path,
    rpm_repo: RepoFixture,
    served_copy: Callable[[RepoFixture], tuple[Path, RepoFixture]],
) -> None:
    root, repo = served_copy(rpm_repo)
    primary = next((root / "repodata").glob("*-primary.xml.gz"))
    damage(primary)
    config = write_files(tmp_path, repo, "tool")

    with pytest.raises(oic.ChecksumError) as caught:
        template(tmp_path, config).resolve()
    error = caught.value
    assert error.url is not None
    assert error.url.endswith(primary.name)
    assert error.algorithm == "sha256"
    assert error.expected is not None
    assert error.expected != error.actual

    result = cli(config, "resolve", str(tmp_path / "t.yml"))
    assert result.returncode == 1, result.stdout
    assert "Checksum mismatch" in result.stderr


def test_package_mismatch_raises_checksum_error(
    tmp_path: Path,
    rpm_repo: RepoFixture,
    served_copy: Callable[[RepoFixture], tuple[Path, RepoFixture]],
) -> None:
    root, repo = served_copy(rpm_repo)
    damage(root / "Packages" / "noarch" / "foo-data-1.0-1.noarch.rpm")
    config = write_files(tmp_path, repo, "foo-data")

    with pytest.raises(oic.ChecksumError) as caught:
        template(tmp_path, config).fetch()
    error = caught.value
    assert error.url is not None
    assert error.url.endswith("/foo-data-1.0-1.noarch.rpm")
    assert error.algorithm == "sha256"
    assert error.expected is not None
    assert error.actual is not None
    assert error.expected != error.actual
    assert pool_names(tmp_path, "foo-data") == []


def test_offline_miss_raises_metadata_error(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "tool")
    with pytest.raises(oic.MetadataError) as caught:
        template(tmp_path, config).resolve(offline=True)
    assert caught.value.repository == "azl-test"

    result = cli(config, "resolve", str(tmp_path / "t.yml"), "--offline")
    assert result.returncode == 1, result.stdout
    assert "Offline" in result.stderr


def test_missing_dependency_attributes(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "broken")
    with pytest.raises(oic.ResolutionError) as caught:
        template(tmp_path, config).resolve()
    assert caught.value.package == "middle-1.0-1.noarch"
    assert caught.value.dependency == "libgone >= 0:2"
    assert caught.value.chain == "broken-1.0-1.noarch -> middle-1.0-1.noarch -> libgone >= 0:2"


def test_repository_lookup_rpm(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    built, _, url = rpm_repo
    config = write_files(tmp_path, rpm_repo, "tool")
    provider = oic.Composer.from_file(config).provider(PROVIDER)
    repository = provider.repository("azl-test").load()

    assert repository.format == "rpm"
    assert repository.status.signature["status"] == "verified"
    assert repository.status.signature["fingerprint"] == built.key.fingerprint
    assert repository.status.url == url.rstrip("/")
    assert repository.revision is not None
    with pytest.raises(oic.MetadataError, match="has no Release file"):
        _ = repository.release

    tools = repository.versions("tool")
    assert sorted(package.evr for package in tools if isinstance(package, oic.RpmPackage)) == [
        "1:1.0-1",
        "2.0-1",
    ]
    app = repository.get("app")
    assert isinstance(app, oic.RpmPackage)
    assert app.architecture == "x86_64"
    assert set(app.requires) == {"(liba or libb)", "/usr/bin/foo", "tool >= 1:0.5"}
    assert any(provide.startswith("app = ") for provide in app.provides)
    expected = next(package for package in built.packages if package.spec.name == "app")
    assert app.location == expected.location
    assert app.url == f"{url.rstrip('/')}/{expected.location}"
    assert app.size == expected.size
    assert app.checksum_type == "sha256"
    assert app.checksum == expected.sha256
    foo_tools = repository.get("foo-tools")
    assert isinstance(foo_tools, oic.RpmPackage)
    assert "/usr/bin/foo" in foo_tools.files
    assert "unsigned" in repository
    assert {package.name for package in repository.search("data-*")} == {
        "data-user",
        "data-orphan",
    }


def test_cache_verify_checks_rpms(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "app")
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER
    fetched = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert fetched.returncode == 0, fetched.stderr
    rpms = sorted(pool.glob("*.rpm"))
    assert rpms

    clean = cli(config, "cache", "verify", "--provider-id", PROVIDER)
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["ok"] == len(rpms)
    assert report["mismatched"] == []
    assert report["unknown"] == []

    app = pool / "app-1.0-1.x86_64.rpm"
    damage(app)
    listed = cli(config, "cache", "verify", "--provider-id", PROVIDER)
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["ok"] == len(rpms) - 1
    assert [entry["file_name"] for entry in report["mismatched"]] == [app.name]
    assert report["mismatched"][0]["deleted"] is False
    assert app.is_file()

    deleted = cli(config, "cache", "verify", "--provider-id", PROVIDER, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    report = json.loads(deleted.stdout)
    assert [entry["file_name"] for entry in report["mismatched"]] == [app.name]
    assert report["mismatched"][0]["deleted"] is True
    assert not app.exists()


def test_cache_verify_skips_unbuilt_provider(tmp_path: Path, rpm_repo: RepoFixture) -> None:
    config = write_files(tmp_path, rpm_repo, "app")
    fetched = cli(config, "fetch", str(tmp_path / "t.yml"))
    assert fetched.returncode == 0, fetched.stderr
    assert not (tmp_path / "cache" / "pkgCache" / "debian-debian12-x86_64").exists()

    # Without --provider-id the command checks the Debian provider, which has no cache folder.
    result = cli(config, "cache", "verify")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"ok": 0, "mismatched": [], "unknown": []}


def test_package_cache_verify_sha512(tmp_path: Path, sha512_repo: RepoFixture) -> None:
    config = write_files(tmp_path, sha512_repo, "tool")
    resolution, _ = template(tmp_path, config).fetch()
    cache = oic.Composer.from_file(config).cache
    pool = tmp_path / "cache" / "pkgCache" / PROVIDER

    report = cache.verify(PROVIDER)
    assert report["ok"] == len(resolution)
    assert report["mismatched"] == []

    tool = pool / "tool-2.0-1.noarch.rpm"
    damage(tool)
    report = cache.verify(PROVIDER, delete=True)
    assert report["ok"] == len(resolution) - 1
    assert [entry["file_name"] for entry in report["mismatched"]] == [tool.name]
    assert report["mismatched"][0]["reason"] == "upstream_changed"
    assert not tool.exists()
