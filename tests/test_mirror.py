"""Tests of the real-package Debian mirror, run against apt itself and a loopback server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_image_composer.testing import mirror
from os_image_composer.testing.mirror import (
    AptRoot,
    MirrorServer,
    make_apt_root,
    parse_index,
    release_entry,
    source_line,
)
from os_image_composer.testing.pytest_plugin import DebianMirror

INDEX_TEXT = """\
Package: base-files
Version: 12.4+deb12u14
Essential: yes
Architecture: amd64
Description: Debian base system miscellaneous files
 Filename: not-a-field
Priority: required
Filename: pool/main/b/base-files/base-files_12.4+deb12u14_amd64.deb
Size: 70940
SHA256: f6d54a67bcc56ec1698de8093ebd9dce8ad02cfb8828882be676e6f157f3f6b3

Package: libcap2
Version: 1:2.66-4+deb12u3+b1
Architecture: amd64
Priority: optional
Filename: pool/main/libc/libcap2/libcap2_2.66-4+deb12u3+b1_amd64.deb
Size: 27708
SHA256: 00

"""


def run_apt(
    apt_root: AptRoot, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        env=apt_root.env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def copy_tree_linked(source: Path, target: Path) -> None:
    """Copy a mirror with hard links, so a test must replace a file, never write into it."""
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)


def replace_with_change(path: Path, old: bytes, new: bytes) -> None:
    """Replace `path` by a new file whose first `old` is swapped for `new`."""
    data = path.read_bytes()
    assert old in data
    path.unlink()
    path.write_bytes(data.replace(old, new, 1))


def flip_byte(path: Path, offset: int) -> None:
    """Replace `path` by a new file with the byte at `offset` inverted."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))


# Fast tests: parsers, the server and error messages.


def test_parse_index_fields() -> None:
    index = parse_index(INDEX_TEXT)
    assert set(index) == {("base-files", "12.4+deb12u14"), ("libcap2", "1:2.66-4+deb12u3+b1")}
    base_files = index[("base-files", "12.4+deb12u14")]
    assert base_files.filename == "pool/main/b/base-files/base-files_12.4+deb12u14_amd64.deb"
    assert base_files.size == 70940
    assert base_files.required
    assert not index[("libcap2", "1:2.66-4+deb12u3+b1")].required


def test_download_name_escapes_epoch() -> None:
    stanza = parse_index(INDEX_TEXT)[("libcap2", "1:2.66-4+deb12u3+b1")]
    assert stanza.download_name() == "libcap2_1%3a2.66-4+deb12u3+b1_amd64.deb"


def test_release_entry_reads_sha256() -> None:
    text = (
        "MD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4 10 main/binary-amd64/Packages\n"
        "SHA256:\n " + "ab" * 32 + " 50057461 main/binary-amd64/Packages\n"
        " " + "cd" * 32 + " 123 main/binary-amd64/Packages.xz\n"
    )
    assert release_entry(text, "main/binary-amd64/Packages") == ("ab" * 32, 50057461)
    with pytest.raises(mirror.MirrorError, match="no SHA256 for main/binary-i386/Packages"):
        release_entry(text, "main/binary-i386/Packages")


def test_inst_line_pattern() -> None:
    output = (
        "Inst libc6 (2.36-9+deb12u14 Debian:12.14/oldstable [amd64]) []\n"
        "Conf libc6 (2.36-9+deb12u14 Debian:12.14/oldstable [amd64])\n"
        "Inst libcap2 [1:2.66-4] (1:2.66-4+deb12u3+b1 Debian:12.14/oldstable [amd64])\n"
    )
    assert mirror.INST_LINE.findall(output) == [
        ("libc6", "2.36-9+deb12u14"),
        ("libcap2", "1:2.66-4+deb12u3+b1"),
    ]


def test_read_seeds_rejects_invalid_name(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# comment\nsystemd  # init\n\nBad_Name\n")
    with pytest.raises(mirror.MirrorError, match=r"seeds.txt:4: invalid Debian package name"):
        mirror.read_seeds(seeds)


def test_seed_file_names_are_valid() -> None:
    seeds = mirror.read_seeds(mirror.SEEDS_FILE)
    assert "openssh-server" in seeds
    assert len(seeds) == len(set(seeds))


def test_server_get_head_and_records(tmp_path: Path) -> None:
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian" / "file").write_bytes(b"content")
    with MirrorServer(tmp_path) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/debian"
        with urllib.request.urlopen(f"{server.url}/file") as response:
            assert response.read() == b"content"
        head = urllib.request.Request(f"{server.url}/file", method="HEAD")
        with urllib.request.urlopen(head) as response:
            assert response.headers["Content-Length"] == "7"
            assert response.read() == b""
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server.url}/absent")
        missing.value.close()
    assert server.requests == [
        mirror.Request("GET", "/debian/file", 200),
        mirror.Request("HEAD", "/debian/file", 200),
        mirror.Request("GET", "/debian/absent", 404),
    ]


def test_prepare_without_lists_explains(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "os_image_composer.testing.mirror", "prepare"]
    command += ["--dir", str(tmp_path / "mirror"), "--lists-dir", str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "apt-get update" in result.stderr
    assert mirror.INRELEASE_LIST in result.stderr
    assert "Traceback" not in result.stderr


# Slow tests: the real mirror, checked by apt.


@pytest.fixture(scope="module")
def updated_apt_root(
    debian_mirror: DebianMirror, tmp_path_factory: pytest.TempPathFactory
) -> AptRoot:
    """An apt configuration whose only source is the served mirror, after `apt-get update`."""
    apt_root = make_apt_root(tmp_path_factory.mktemp("apt"), source_line(debian_mirror.url))
    result = run_apt(apt_root, "update")
    assert result.returncode == 0, result.stdout + result.stderr
    return apt_root


@pytest.fixture
def altered_mirror(debian_mirror: DebianMirror, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A hard-linked copy of the mirror, served on its own port; the test changes files in it."""
    copy = tmp_path / "mirror"
    copy_tree_linked(debian_mirror.root, copy)
    with MirrorServer(copy) as server:
        yield copy, server.url


def dists(root: Path) -> Path:
    return root / "debian" / "dists" / "bookworm"


@pytest.mark.slow
def test_apt_update_checks_signature(
    debian_mirror: DebianMirror, updated_apt_root: AptRoot
) -> None:
    served = (dists(debian_mirror.root) / "InRelease").read_bytes()
    lists = list(updated_apt_root.lists.glob("*_dists_bookworm_InRelease"))
    assert len(lists) == 1
    assert lists[0].read_bytes() == served
    paths = {request.path for request in debian_mirror.server.requests}
    assert "/debian/dists/bookworm/InRelease" in paths
    assert "/debian/dists/bookworm/main/binary-amd64/Packages" in paths


@pytest.mark.slow
def test_apt_resolves_openssh_server(
    debian_mirror: DebianMirror, updated_apt_root: AptRoot
) -> None:
    result = run_apt(updated_apt_root, "-s", "install", "--no-install-recommends", "openssh-server")
    assert result.returncode == 0, result.stderr
    installs = dict(mirror.INST_LINE.findall(result.stdout))
    assert installs.get("openssh-server") == debian_mirror.packages["openssh-server"]
    # apt may pick other alternatives for this one package than for the mirror's whole seed
    # set (lsb-base for sysvinit-utils, say), so each choice is checked against the index.
    index = mirror.read_index(dists(debian_mirror.root) / mirror.PACKAGES_PATH)
    for name, version in installs.items():
        assert (name, version) in index, name


@pytest.mark.slow
def test_apt_download_matches_index(
    debian_mirror: DebianMirror, updated_apt_root: AptRoot, tmp_path: Path
) -> None:
    version = debian_mirror.packages["base-files"]
    result = run_apt(updated_apt_root, "download", f"base-files={version}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    index = mirror.read_index(dists(debian_mirror.root) / mirror.PACKAGES_PATH)
    stanza = index[("base-files", version)]
    downloaded = tmp_path / stanza.download_name()
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == stanza.sha256
    paths = {urllib.parse.unquote(request.path) for request in debian_mirror.server.requests}
    assert f"/debian/{stanza.filename}" in paths


@pytest.mark.slow
def test_update_rejects_changed_packages(altered_mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, url = altered_mirror
    replace_with_change(
        dists(root) / mirror.PACKAGES_PATH, b"Package: base-files", b"Package: base-filez"
    )
    apt_root = make_apt_root(tmp_path / "apt", source_line(url))
    result = run_apt(apt_root, "update")
    assert result.returncode != 0
    assert "Hash Sum mismatch" in result.stdout + result.stderr


@pytest.mark.slow
def test_update_rejects_changed_inrelease(altered_mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, url = altered_mirror
    replace_with_change(dists(root) / "InRelease", b"Label: Debian", b"Label: Debiam")
    apt_root = make_apt_root(tmp_path / "apt", source_line(url))
    result = run_apt(apt_root, "update")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "BADSIG" in output
    assert "is not signed" in output


@pytest.mark.slow
def test_verify_and_prepare_repair_pool_file(debian_mirror: DebianMirror, tmp_path: Path) -> None:
    copy = tmp_path / "mirror"
    copy_tree_linked(debian_mirror.root, copy)
    index = mirror.read_index(dists(copy) / mirror.PACKAGES_PATH)
    stanza = index[("base-files", debian_mirror.packages["base-files"])]
    pool_file = mirror.pool_path(copy, stanza)
    flip_byte(pool_file, 100)

    problems = mirror.verify_mirror(copy)
    assert len(problems) == 1
    assert str(pool_file) in problems[0]
    assert stanza.sha256 in problems[0]

    info = mirror.prepare_mirror(copy)
    assert info.downloaded == 1
    assert mirror.sha256_file(pool_file) == stanza.sha256
    assert mirror.verify_mirror(copy) == []
