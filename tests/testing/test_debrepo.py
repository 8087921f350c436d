"""Tests of the signed Debian repository builder and its HTTP server, run with the real tools."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import lzma
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from os_image_composer.testing import debrepo
from os_image_composer.testing.debrepo import (
    FileSpec,
    GpgKey,
    PackageSpec,
    RepoBuildError,
    RepoSpec,
    build_repo,
    export_keyring,
)
from os_image_composer.testing.httpserver import Fault, RepoServer
from os_image_composer.testing.pytest_plugin import DebianRepoFactory, ServedRepo

DEBREPO_SCRIPT = Path(debrepo.__file__)

# OpenPGP digest algorithm ids, as gpg prints them in VALIDSIG status lines.
DIGEST_IDS = {"SHA1": "2", "SHA256": "8", "SHA512": "10"}

HELLO_SCRIPT = "#!/bin/sh\necho hello\n"
POSTINST = "#!/bin/sh\nset -e\necho configured > /tmp/hello-configured\n"


def sample_spec(**overrides: object) -> RepoSpec:
    """Return a repository whose packages use every relationship field."""
    packages = [
        PackageSpec(
            name="hello",
            version="1:2.10-3",
            depends="libgreet1 (>= 1.2) | libgreet-compat, greeter-data",
            pre_depends="base-tool (>= 3)",
            recommends="hello-doc",
            suggests="hello-extras",
            description="Print a greeting\nThe classic program.\n\nSecond paragraph.",
            files={
                "/usr/bin/hello": FileSpec(HELLO_SCRIPT, mode=0o755),
                "/etc/hello.conf": "greeting=hi\n",
                "/usr/share/hello/blob": (b"\x00\x01\x02", 0o600),
                "/usr/lib/hello/hello": FileSpec(symlink_to="../../bin/hello"),
            },
            scripts={"postinst": POSTINST},
            conffiles=["/etc/hello.conf"],
            extra_fields={"Homepage": "https://example.invalid/hello"},
        ),
        PackageSpec(
            name="libgreet1",
            version="1.4-1",
            source="greet",
            multi_arch="same",
            section="libs",
        ),
        PackageSpec(name="greeter-data", version="1.0", architecture="all", multi_arch="foreign"),
        PackageSpec(
            name="base-tool", version="3.0", essential=True, priority="required", section="admin"
        ),
        PackageSpec(
            name="mail-transport",
            version="2.0",
            provides="mail-transport-agent",
            conflicts="other-mta",
            breaks="hello (<< 1:2)",
            replaces="other-mta",
        ),
        PackageSpec(name="other-mta", version="1.0"),
        PackageSpec(name="needs-mta", version="1.0", depends="mail-transport-agent"),
    ]
    spec = RepoSpec(
        components={"main": packages},
        codename="oic-test",
        suite="testing",
        date=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    for name, value in overrides.items():
        setattr(spec, name, value)
    return spec


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, env=env)


def gpgv_status(keyring: Path, *files: Path) -> tuple[int, list[str]]:
    """Run gpgv and return its exit code and its status lines without the "[GNUPG:]" prefix."""
    result = run(["gpgv", "--status-fd", "1", "--keyring", str(keyring), *map(str, files)])
    prefix = "[GNUPG:] "
    lines = [line[len(prefix) :] for line in result.stdout.splitlines() if line.startswith(prefix)]
    return result.returncode, lines


def validsig_fields(status: list[str]) -> list[str]:
    matches = [line.split() for line in status if line.startswith("VALIDSIG ")]
    assert len(matches) == 1, status
    return matches[0]


def parse_paragraphs(text: str) -> list[dict[str, str]]:
    """Parse deb822 paragraphs. Continuation lines are joined with newlines."""
    paragraphs: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        name = ""
        for line in block.splitlines():
            if line.startswith(" "):
                fields[name] += "\n" + line[1:]
                continue
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        paragraphs.append(fields)
    return paragraphs


def release_entries(release: Path, section: str) -> dict[str, tuple[str, int]]:
    """Return {path: (digest, size)} from one checksum section of a Release file."""
    fields = parse_paragraphs(release.read_text())[0]
    entries = {}
    for line in fields[section].strip().splitlines():
        digest, size, name = line.split()
        entries[name] = (digest, int(size))
    return entries


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def raw_request(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send one request with `target` exactly as given, so ".." reaches the server."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        request = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    status_line = response.split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), response


@pytest.fixture
def served(debian_repo_factory: DebianRepoFactory) -> ServedRepo:
    return debian_repo_factory(sample_spec())


# ---------------------------------------------------------------------------------------------
# Signatures


def test_inrelease_verifies_with_gpgv(served: ServedRepo) -> None:
    assert served.built.inrelease is not None
    code, status = gpgv_status(served.key.gpg, served.built.inrelease)
    assert code == 0, status
    assert any(line.startswith("GOODSIG ") for line in status)


def test_release_gpg_verifies_with_gpgv(served: ServedRepo) -> None:
    assert served.built.release_gpg is not None
    code, status = gpgv_status(served.key.gpg, served.built.release_gpg, served.built.release)
    assert code == 0, status
    assert any(line.startswith("GOODSIG ") for line in status)


def test_inrelease_body_is_release(served: ServedRepo) -> None:
    assert served.built.inrelease is not None
    text = served.built.inrelease.read_text()
    body = text.split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]
    assert body + "\n" == served.built.release.read_text()


def test_other_key_fails_verification(served: ServedRepo, tmp_path: Path) -> None:
    other = GpgKey.generate(tmp_path / "other-gnupg", "other <other@example.invalid>")
    try:
        keyring = other.export_binary(tmp_path / "other.gpg")
    finally:
        other.stop_agent()
    assert served.built.inrelease is not None
    code, status = gpgv_status(keyring, served.built.inrelease)
    assert code != 0
    assert any(line.startswith("NO_PUBKEY ") for line in status), status


def test_signature_issuer_is_subkey(served: ServedRepo) -> None:
    assert served.built.inrelease is not None
    assert served.key.signing_fingerprint != served.key.fingerprint
    fields = validsig_fields(gpgv_status(served.key.gpg, served.built.inrelease)[1])
    assert fields[1] == served.key.signing_fingerprint
    assert fields[-1] == served.key.fingerprint


def test_signature_issuer_in_packets(served: ServedRepo, gpg_key: GpgKey) -> None:
    assert served.built.release_gpg is not None
    result = run(
        [
            "gpg",
            "--homedir",
            str(gpg_key.gnupghome),
            "--list-packets",
            str(served.built.release_gpg),
        ]
    )
    assert f"keyid {served.key.signing_fingerprint[-16:]}" in result.stdout
    assert f"issuer fpr v4 {served.key.signing_fingerprint}" in result.stdout


def test_primary_key_signs_without_subkey(
    debian_repo_factory: DebianRepoFactory, tmp_path: Path
) -> None:
    key = GpgKey.generate(tmp_path / "gnupg", algorithm="rsa3072", signing_subkey=False)
    try:
        repo = debian_repo_factory(sample_spec(), key=key, sign_with_subkey=False)
    finally:
        key.stop_agent()
    assert key.signing_fingerprint == key.fingerprint
    assert repo.built.inrelease is not None
    fields = validsig_fields(gpgv_status(repo.key.gpg, repo.built.inrelease)[1])
    assert fields[1] == key.fingerprint
    # Public key algorithm 1 is RSA.
    assert fields[7] == "1"


@pytest.mark.parametrize("digest_algo", ["SHA1", "SHA256", "SHA512"])
def test_digest_algorithm_selectable(
    debian_repo_factory: DebianRepoFactory, digest_algo: str
) -> None:
    repo = debian_repo_factory(sample_spec(), digest_algo=digest_algo)
    assert repo.built.inrelease is not None
    fields = validsig_fields(gpgv_status(repo.key.gpg, repo.built.inrelease)[1])
    assert fields[8] == DIGEST_IDS[digest_algo]


def test_signature_files_optional(gpg_key: GpgKey, tmp_path: Path) -> None:
    built = build_repo(tmp_path / "a", sample_spec(), gpg_key, inrelease=False)
    assert built.inrelease is None
    assert not (built.dists / "InRelease").exists()
    assert built.release_gpg is not None
    built = build_repo(tmp_path / "b", sample_spec(release_gpg=False), gpg_key)
    assert built.release_gpg is None
    assert not (built.dists / "Release.gpg").exists()
    unsigned = build_repo(tmp_path / "c", sample_spec(), None)
    assert unsigned.inrelease is None
    assert unsigned.release_gpg is None


def test_keyring_with_several_keys(served: ServedRepo, gpg_key: GpgKey, tmp_path: Path) -> None:
    other = GpgKey.generate(tmp_path / "other-gnupg", "other <other@example.invalid>")
    try:
        keyring = export_keyring(tmp_path / "both.gpg", [other, gpg_key])
    finally:
        other.stop_agent()
    assert served.built.inrelease is not None
    code, status = gpgv_status(keyring, served.built.inrelease)
    assert code == 0, status


def test_revoked_key_reports_revkeysig(tmp_path: Path) -> None:
    key = GpgKey.generate(tmp_path / "gnupg")
    try:
        built = build_repo(tmp_path / "repo", sample_spec(), key)
        key.revoke()
        keyring = key.export_binary(tmp_path / "revoked.gpg")
    finally:
        key.stop_agent()
    assert built.inrelease is not None
    status = gpgv_status(keyring, built.inrelease)[1]
    assert any(line.startswith("REVKEYSIG ") for line in status), status


def test_expired_key_reports_expkeysig(tmp_path: Path) -> None:
    created = datetime.now(UTC) - timedelta(days=10)
    key = GpgKey.generate(tmp_path / "gnupg", expire="1d", created=created)
    try:
        built = build_repo(
            tmp_path / "repo", sample_spec(), key, signature_time=created + timedelta(hours=1)
        )
        keyring = key.export_binary(tmp_path / "expired.gpg")
    finally:
        key.stop_agent()
    assert built.inrelease is not None
    status = gpgv_status(keyring, built.inrelease)[1]
    assert any(line.startswith("EXPKEYSIG ") for line in status), status


def test_find_reuses_generated_key(gpg_key: GpgKey) -> None:
    found = GpgKey.find(gpg_key.gnupghome, gpg_key.uid)
    assert found == gpg_key
    assert GpgKey.find(gpg_key.gnupghome, "nobody <nobody@example.invalid>") is None


# ---------------------------------------------------------------------------------------------
# Packages, pool and Release


def test_deb_control_fields(served: ServedRepo) -> None:
    debs = {package.name: package.path for package in served.built.packages}
    fields = parse_paragraphs(run(["dpkg-deb", "-f", str(debs["hello"])]).stdout)[0]
    assert fields["Package"] == "hello"
    assert fields["Version"] == "1:2.10-3"
    assert fields["Architecture"] == "amd64"
    assert fields["Depends"] == "libgreet1 (>= 1.2) | libgreet-compat, greeter-data"
    assert fields["Pre-Depends"] == "base-tool (>= 3)"
    assert fields["Recommends"] == "hello-doc"
    assert fields["Homepage"] == "https://example.invalid/hello"
    assert fields["Description"] == "Print a greeting\nThe classic program.\n.\nSecond paragraph."
    base = parse_paragraphs(run(["dpkg-deb", "-f", str(debs["base-tool"])]).stdout)[0]
    assert base["Essential"] == "yes"
    assert base["Priority"] == "required"
    lib = parse_paragraphs(run(["dpkg-deb", "-f", str(debs["libgreet1"])]).stdout)[0]
    assert lib["Multi-Arch"] == "same"
    assert lib["Source"] == "greet"
    mta = parse_paragraphs(run(["dpkg-deb", "-f", str(debs["mail-transport"])]).stdout)[0]
    assert mta["Provides"] == "mail-transport-agent"
    assert mta["Conflicts"] == "other-mta"
    assert mta["Breaks"] == "hello (<< 1:2)"
    assert mta["Replaces"] == "other-mta"


def test_deb_contents_and_scripts(served: ServedRepo, tmp_path: Path) -> None:
    deb = next(package.path for package in served.built.packages if package.name == "hello")
    listing = run(["dpkg-deb", "-c", str(deb)], env={**os.environ, "TZ": "UTC"}).stdout
    size = len(HELLO_SCRIPT)
    assert f"-rwxr-xr-x root/root {size:>9} 2025-01-02 03:04 ./usr/bin/hello" in listing
    assert "-rw------- root/root         3 2025-01-02 03:04 ./usr/share/hello/blob" in listing
    assert "./usr/lib/hello/hello -> ../../bin/hello" in listing
    assert run(["dpkg-deb", "--fsys-tarfile", str(deb)]).returncode == 0
    assert run(["dpkg-deb", "-I", str(deb), "postinst"]).stdout == POSTINST
    assert run(["dpkg-deb", "-I", str(deb), "conffiles"]).stdout == "/etc/hello.conf\n"
    run(["dpkg-deb", "-e", str(deb), str(tmp_path / "control")])
    assert (tmp_path / "control" / "postinst").stat().st_mode & 0o777 == 0o755
    run(["dpkg-deb", "-x", str(deb), str(tmp_path / "data")])
    assert (tmp_path / "data" / "usr/bin/hello").read_text() == HELLO_SCRIPT


def test_pool_layout(served: ServedRepo) -> None:
    filenames = {package.name: package.filename for package in served.built.packages}
    assert filenames["hello"] == "pool/main/h/hello/hello_2.10-3_amd64.deb"
    assert filenames["libgreet1"] == "pool/main/g/greet/libgreet1_1.4-1_amd64.deb"
    assert filenames["greeter-data"] == "pool/main/g/greeter-data/greeter-data_1.0_all.deb"
    lib = PackageSpec(name="libz1", version="1.0")
    assert debrepo.pool_path("main", lib) == "pool/main/libz/libz1/libz1_1.0_amd64.deb"
    for package in served.built.packages:
        assert (served.root / package.filename).is_file()


def test_packages_index_matches_debs(served: ServedRepo) -> None:
    index = served.built.dists / "main/binary-amd64/Packages"
    paragraphs = {fields["Package"]: fields for fields in parse_paragraphs(index.read_text())}
    assert sorted(paragraphs) == sorted(package.name for package in served.built.packages)
    for package in served.built.packages:
        fields = paragraphs[package.name]
        data = (served.root / fields["Filename"]).read_bytes()
        assert int(fields["Size"]) == len(data)
        assert fields["SHA256"] == hashlib.sha256(data).hexdigest()
        assert fields["MD5sum"] == hashlib.md5(data).hexdigest()
        assert int(fields["Installed-Size"]) >= 0
    assert paragraphs["base-tool"]["Essential"] == "yes"
    assert paragraphs["greeter-data"]["Multi-Arch"] == "foreign"
    assert paragraphs["hello"]["Pre-Depends"] == "base-tool (>= 3)"


def test_compressed_indexes_match(served: ServedRepo) -> None:
    directory = served.built.dists / "main/binary-amd64"
    plain = (directory / "Packages").read_bytes()
    assert gzip.decompress((directory / "Packages.gz").read_bytes()) == plain
    assert lzma.decompress((directory / "Packages.xz").read_bytes()) == plain


def test_release_hashes_match_files(served: ServedRepo) -> None:
    release = served.built.release
    for section, algorithm in (("MD5Sum", "md5"), ("SHA256", "sha256")):
        entries = release_entries(release, section)
        assert sorted(entries) == sorted(served.built.index_files)
        for name, (digest, size) in entries.items():
            data = (served.built.dists / name).read_bytes()
            assert size == len(data), name
            assert digest == hashlib.new(algorithm, data).hexdigest(), name


def test_release_fields(gpg_key: GpgKey, tmp_path: Path) -> None:
    spec = sample_spec(
        valid_until=datetime(2025, 2, 1, tzinfo=UTC),
        origin="Origin X",
        label="Label Y",
        release_checksums=("MD5Sum", "SHA1", "SHA256", "SHA512"),
    )
    fields = parse_paragraphs(build_repo(tmp_path, spec, gpg_key).release.read_text())[0]
    assert fields["Origin"] == "Origin X"
    assert fields["Label"] == "Label Y"
    assert fields["Suite"] == "testing"
    assert fields["Codename"] == "oic-test"
    assert fields["Date"] == "Thu, 02 Jan 2025 03:04:05 UTC"
    assert fields["Valid-Until"] == "Sat, 01 Feb 2025 00:00:00 UTC"
    assert fields["Architectures"] == "amd64"
    assert fields["Components"] == "main"
    for section in ("MD5Sum", "SHA1", "SHA256", "SHA512"):
        assert section in fields


def test_xz_only_lists_uncompressed(gpg_key: GpgKey, tmp_path: Path) -> None:
    built = build_repo(tmp_path, sample_spec(), gpg_key, compressions=("xz",))
    assert built.index_files == ["main/binary-amd64/Packages.xz"]
    entries = release_entries(built.release, "SHA256")
    assert sorted(entries) == ["main/binary-amd64/Packages", "main/binary-amd64/Packages.xz"]
    plain = lzma.decompress((built.dists / "main/binary-amd64/Packages.xz").read_bytes())
    assert entries["main/binary-amd64/Packages"][0] == hashlib.sha256(plain).hexdigest()


def test_arch_all_in_every_index(gpg_key: GpgKey, tmp_path: Path) -> None:
    spec = RepoSpec(
        components={
            "main": [
                PackageSpec(name="tool", version="1.0", architecture="amd64"),
                PackageSpec(name="tool", version="1.0", architecture="arm64"),
                PackageSpec(name="data", version="1.0", architecture="all"),
            ],
            "contrib": [PackageSpec(name="extra", version="1.0", architecture="arm64")],
        },
        architectures=["amd64", "arm64"],
    )
    built = build_repo(tmp_path, spec, gpg_key)
    for arch in ("amd64", "arm64"):
        index = (built.dists / f"main/binary-{arch}/Packages").read_text()
        entries = {
            (fields["Package"], fields["Architecture"]) for fields in parse_paragraphs(index)
        }
        assert entries == {("tool", arch), ("data", "all")}
    contrib = (built.dists / "contrib/binary-amd64/Packages").read_text()
    assert contrib == ""
    fields = parse_paragraphs(built.release.read_text())[0]
    assert fields["Components"] == "main contrib"
    assert fields["Architectures"] == "amd64 arm64"


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (PackageSpec(name="Bad_Name", version="1"), "invalid package name"),
        (PackageSpec(name="ok", version="one"), "invalid version"),
        (PackageSpec(name="ok", version="1", architecture="arm64"), "not in the repository"),
        (PackageSpec(name="ok", version="1", depends="a\nEssential: yes"), "must be one line"),
        (PackageSpec(name="ok", version="1", files={"/../etc/passwd": "x"}), "invalid file"),
        (PackageSpec(name="ok", version="1", scripts={"triggers": ""}), "maintainer script"),
        (PackageSpec(name="ok", version="1", multi_arch="maybe"), "Multi-Arch"),
    ],
)
def test_invalid_package_rejected(package: PackageSpec, message: str, tmp_path: Path) -> None:
    with pytest.raises(RepoBuildError, match=message):
        build_repo(tmp_path, RepoSpec(components={"main": [package]}), None)


def test_deb_build_is_reproducible(tmp_path: Path) -> None:
    spec = sample_spec().components["main"][0]
    first = debrepo.build_deb(spec, tmp_path / "a.deb", epoch=1_700_000_000)
    second = debrepo.build_deb(spec, tmp_path / "b.deb", epoch=1_700_000_000)
    assert first.read_bytes() == second.read_bytes()


# ---------------------------------------------------------------------------------------------
# apt against the served repository


def make_apt_root(root: Path, served: ServedRepo, key: Path) -> dict[str, str]:
    """Create a throwaway apt root for `served` and return the environment that selects it."""
    for directory in (
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
        "var/log/apt",
    ):
        (root / directory).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    (root / "etc/apt/sources.list").write_text(
        f"deb [signed-by={key}] {served.url} oic-test main\n"
    )
    config = root / "apt.conf"
    config.write_text(
        f'Dir "{root}/";\n'
        f'Dir::State "{root}/var/lib/apt/";\n'
        f'Dir::State::status "{root}/var/lib/dpkg/status";\n'
        f'Dir::Cache "{root}/var/cache/apt/";\n'
        f'Dir::Etc "{root}/etc/apt/";\n'
        f'Dir::Etc::Parts "{root}/etc/apt/apt.conf.d/";\n'
        f'Dir::Log "{root}/var/log/apt/";\n'
        'Acquire::Languages "none";\n'
        'APT::Architecture "amd64";\n'
        'APT::Architectures { "amd64"; };\n'
        'Debug::NoLocking "true";\n'
        # apt drops to the _apt user for downloads, which cannot write into pytest's 0700
        # directories.
        'APT::Sandbox::User "root";\n'
    )
    return {**os.environ, "APT_CONFIG": str(config)}


def simulated_installs(env: dict[str, str], *packages: str) -> dict[str, str]:
    result = run(["apt-get", "-s", "install", *packages], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    installs = {}
    for line in result.stdout.splitlines():
        if line.startswith("Inst "):
            name, version = line.split()[1], line.split()[2].strip("(")
            installs[name] = version
    return installs


@pytest.mark.parametrize("key_format", ["gpg", "asc"])
def test_apt_update_and_install(served: ServedRepo, tmp_path: Path, key_format: str) -> None:
    key = served.key.gpg if key_format == "gpg" else served.key.asc
    env = make_apt_root(tmp_path / "apt", served, key)
    update = run(["apt-get", "update"], env=env)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "W:" not in update.stderr
    assert "E:" not in update.stderr
    assert any(request.path.endswith("/InRelease") for request in served.server.requests())

    installs = simulated_installs(env, "hello")
    assert installs == {
        "hello": "1:2.10-3",
        "libgreet1": "1.4-1",
        "greeter-data": "1.0",
        "base-tool": "3.0",
    }
    assert simulated_installs(env, "needs-mta") == {"needs-mta": "1.0", "mail-transport": "2.0"}

    conflict = run(["apt-get", "-s", "install", "mail-transport", "other-mta"], env=env)
    assert conflict.returncode != 0
    assert "Conflicts: other-mta" in conflict.stdout + conflict.stderr


def test_apt_rejects_other_key(served: ServedRepo, tmp_path: Path) -> None:
    other = GpgKey.generate(tmp_path / "other-gnupg", "other <other@example.invalid>")
    try:
        keyring = other.export_binary(tmp_path / "other.gpg")
    finally:
        other.stop_agent()
    env = make_apt_root(tmp_path / "apt", served, keyring)
    update = run(["apt-get", "update"], env=env)
    assert "NO_PUBKEY" in update.stderr
    assert "not signed" in update.stderr


# ---------------------------------------------------------------------------------------------
# HTTP server


def test_server_serves_file_and_logs(served: ServedRepo) -> None:
    assert served.built.inrelease is not None
    status, body = http_get(served.url + "dists/oic-test/InRelease")
    assert status == 200
    assert body == served.built.inrelease.read_bytes()
    request = urllib.request.Request(served.url + "dists/oic-test/Release", method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == served.built.release.stat().st_size
        assert response.read() == b""
    log = [(r.method, r.path, r.status) for r in served.server.requests()]
    assert log == [
        ("GET", "/dists/oic-test/InRelease", 200),
        ("HEAD", "/dists/oic-test/Release", 200),
    ]


def test_server_missing_and_directory_404(served: ServedRepo) -> None:
    assert http_get(served.url + "dists/oic-test/Missing")[0] == 404
    assert http_get(served.url + "dists/oic-test/")[0] == 404
    assert http_get(served.url + "dists")[0] == 404


@pytest.mark.parametrize(
    "target",
    ["/../../etc/passwd", "/dists/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/a\\..\\b"],
)
def test_server_rejects_traversal(served: ServedRepo, target: str) -> None:
    status, response = raw_request(served.server.port, target)
    assert status == 400
    assert b"root:" not in response


def test_server_rejects_symlink_outside_root(served: ServedRepo, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("secret")
    (served.root / "link").symlink_to(secret)
    assert http_get(served.url + "link")[0] == 404


def test_server_range_request(served: ServedRepo) -> None:
    data = served.built.release.read_bytes()
    request = urllib.request.Request(
        served.url + "dists/oic-test/Release", headers={"Range": "bytes=10-19"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        assert response.read() == data[10:20]
    request = urllib.request.Request(
        served.url + "dists/oic-test/Release", headers={"Range": f"bytes={len(data)}-"}
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    raised.value.close()
    assert raised.value.code == 416


def test_fault_fail_first_then_ok(served: ServedRepo) -> None:
    served.server.add_fault("*/InRelease", Fault(fail_first=2, status=503, retry_after=1))
    url = served.url + "dists/oic-test/InRelease"
    assert http_get(url)[0] == 503
    assert http_get(url)[0] == 503
    status, body = http_get(url)
    assert status == 200
    assert served.built.inrelease is not None
    assert body == served.built.inrelease.read_bytes()
    assert [r.status for r in served.server.requests()] == [503, 503, 200]
    assert http_get(served.url + "dists/oic-test/Release")[0] == 200


@pytest.mark.parametrize("status", [429, 500])
def test_fault_status_selectable(served: ServedRepo, status: int) -> None:
    served.server.add_fault("/dists/*", Fault(fail_first=1, status=status))
    assert http_get(served.url + "dists/oic-test/Release")[0] == status
    assert http_get(served.url + "dists/oic-test/Release")[0] == 200


def test_fault_truncation_gives_short_body(served: ServedRepo) -> None:
    served.server.add_fault("*/Release", Fault(truncate_after=40))
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    connection.request("GET", "/dists/oic-test/Release")
    response = connection.getresponse()
    assert int(response.headers["Content-Length"]) == served.built.release.stat().st_size
    with pytest.raises(http.client.IncompleteRead) as raised:
        response.read()
    connection.close()
    assert raised.value.partial == served.built.release.read_bytes()[:40]


def test_fault_offsets_count_from_body_start(served: ServedRepo) -> None:
    served.server.add_fault("*/Release", Fault(stall_after=5, stall_seconds=0.1, truncate_after=20))
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    connection.request("GET", "/dists/oic-test/Release")
    with pytest.raises(http.client.IncompleteRead) as raised:
        connection.getresponse().read()
    connection.close()
    assert raised.value.partial == served.built.release.read_bytes()[:20]


def test_fault_reset_mid_body(served: ServedRepo) -> None:
    served.server.add_fault("*/Release", Fault(reset_after=10))
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    connection.request("GET", "/dists/oic-test/Release")
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        connection.getresponse().read()
    connection.close()


def test_fault_wrong_length(served: ServedRepo) -> None:
    size = served.built.release.stat().st_size
    served.server.add_fault("*/Release", Fault(wrong_length=size + 100))
    status, response = raw_request(served.server.port, "/dists/oic-test/Release")
    assert status == 200
    assert f"Content-Length: {size + 100}\r\n".encode() in response
    assert response.endswith(served.built.release.read_bytes())


def test_fault_replace_body(served: ServedRepo) -> None:
    served.server.add_fault("*/Release", Fault(replace_body=b"tampered", times=1))
    served.server.add_fault("*/InRelease", Fault(replace_body=lambda data: data.upper()))
    assert http_get(served.url + "dists/oic-test/Release") == (200, b"tampered")
    assert http_get(served.url + "dists/oic-test/Release")[1] == served.built.release.read_bytes()
    assert served.built.inrelease is not None
    expected = served.built.inrelease.read_bytes().upper()
    assert http_get(served.url + "dists/oic-test/InRelease")[1] == expected


def test_fault_delay_and_stall(served: ServedRepo) -> None:
    served.server.add_fault("*/Release", Fault(delay=0.3))
    served.server.add_fault("*/InRelease", Fault(stall_after=5, stall_seconds=0.3))
    for name in ("Release", "InRelease"):
        started = time.monotonic()
        status, body = http_get(served.url + f"dists/oic-test/{name}")
        assert status == 200
        assert body == (served.built.dists / name).read_bytes()
        assert time.monotonic() - started >= 0.3


def test_server_stop_interrupts_stall(served: ServedRepo) -> None:
    served.server.add_fault("*/Release", Fault(stall_after=5, stall_seconds=60))
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    connection.request("GET", "/dists/oic-test/Release")
    response = connection.getresponse()
    assert response.read(5) == served.built.release.read_bytes()[:5]
    started = time.monotonic()
    served.server.stop()
    assert time.monotonic() - started < 5
    connection.close()


def test_server_keep_alive(served: ServedRepo) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=10)
    for name in ("Release", "InRelease"):
        connection.request("GET", f"/dists/oic-test/{name}")
        assert connection.getresponse().read() == (served.built.dists / name).read_bytes()
    connection.close()
    ports = {request.connection for request in served.server.requests()}
    assert len(ports) == 1


def test_server_context_manager(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"content")
    with RepoServer(tmp_path) as server:
        assert http_get(server.url + "file") == (200, b"content")
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


# ---------------------------------------------------------------------------------------------
# JSON command line


def test_cli_builds_from_json(tmp_path: Path) -> None:
    spec = {
        "codename": "cli",
        "date": "2025-03-04T05:06:07Z",
        "key": {"uid": "cli <cli@example.invalid>", "algorithm": "ed25519"},
        "components": {
            "main": [
                {
                    "name": "tool",
                    "version": "2:1.0-1",
                    "depends": "libc6",
                    "files": {
                        "/usr/bin/tool": {"content": "#!/bin/sh\n", "mode": "0755"},
                        "/usr/share/tool/data": {"base64": base64.b64encode(b"\xff\x00").decode()},
                        "/var/lib/tool/": {"directory": True},
                    },
                    "scripts": {"postinst": "#!/bin/sh\nexit 0\n"},
                }
            ]
        },
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, str(DEBREPO_SCRIPT), "build", str(spec_path), str(tmp_path / "out")]
    command += ["--gnupghome", str(tmp_path / "gnupg"), "--key-out", str(tmp_path / "keys")]
    result = run(command)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)

    assert summary["inrelease"] == str(tmp_path / "out/dists/cli/InRelease")
    assert summary["keys"]["gpg"] == str(tmp_path / "keys/repo-key.gpg")
    assert Path(summary["keys"]["asc"]).read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK")
    code, status = gpgv_status(Path(summary["keys"]["gpg"]), Path(summary["inrelease"]))
    assert code == 0, status
    assert validsig_fields(status)[1] == summary["signing_fingerprint"]
    [package] = summary["packages"]
    assert package["filename"] == "pool/main/t/tool/tool_1.0-1_amd64.deb"
    data = Path(package["path"]).read_bytes()
    assert package["sha256"] == hashlib.sha256(data).hexdigest()
    assert package["size"] == len(data)
    listing = run(["dpkg-deb", "-c", package["path"]], env={**os.environ, "TZ": "UTC"}).stdout
    assert "-rwxr-xr-x root/root        10 2025-03-04 05:06 ./usr/bin/tool" in listing
    assert "./var/lib/tool/" in listing

    second = json.loads(run(command).stdout)
    assert second["fingerprint"] == summary["fingerprint"]


def test_cli_reports_invalid_spec(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"components": {"main": [{"name": "x", "colour": 1}]}}))
    command = [sys.executable, str(DEBREPO_SCRIPT), "build", str(spec_path), str(tmp_path / "o")]
    result = run([*command, "--gnupghome", str(tmp_path / "gnupg")])
    assert result.returncode == 1
    assert "unknown keys ['colour']" in result.stderr
