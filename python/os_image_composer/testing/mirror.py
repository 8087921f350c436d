"""Build and serve a local mirror of real Debian bookworm packages for end-to-end tests.

The mirror is made only from apt's own files on this host: the signed InRelease and the main
amd64 Packages index in /var/lib/apt/lists (written by `apt-get update`), and .deb files fetched
with `apt-get download NAME=VERSION`. Each .deb is checked against the SHA256 and size in the
Packages index that the mirror serves, and only then renamed to its pool path.

Layout under DIR:

    debian/dists/bookworm/InRelease                    byte-identical copy of Debian's file
    debian/dists/bookworm/main/binary-amd64/Packages   uncompressed index, hash listed in InRelease
    debian/pool/...                                    .deb files at each stanza's Filename
    manifest.json                                      packages present and the InRelease SHA256

Usage:

    python -m os_image_composer.testing.mirror prepare [--dir DIR]
    python -m os_image_composer.testing.mirror serve [--dir DIR] [--port 0] [--port-file F]
    python -m os_image_composer.testing.mirror url [--dir DIR] [--port-file F]
    python -m os_image_composer.testing.mirror verify [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import http.server
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

LOG = logging.getLogger(__name__)

SUITE = "bookworm"
COMPONENT = "main"
ARCHITECTURE = "amd64"
# The URI that the host's lists were fetched from. apt names each list file after it.
SOURCE_URI = "http://deb.debian.org/debian"
LIST_PREFIX = "deb.debian.org_debian_dists_bookworm"
INRELEASE_LIST = f"{LIST_PREFIX}_InRelease"
PACKAGES_LIST = f"{LIST_PREFIX}_{COMPONENT}_binary-{ARCHITECTURE}_Packages"
PACKAGES_PATH = f"{COMPONENT}/binary-{ARCHITECTURE}/Packages"

APT_LISTS_DIR = Path("/var/lib/apt/lists")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEFAULT_DIR = Path("/var/cache/os-image-composer-testdata/debian-bookworm")
SEEDS_FILE = Path(__file__).with_name("mirror-packages.txt")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

DOWNLOAD_BATCH = 100
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# `apt-get -s install` prints one line per package, e.g.
# "Inst libc6 (2.36-9+deb12u14 Debian:12.14/oldstable [amd64]) []".
INST_LINE = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ", re.MULTILINE)
INDEX_FIELDS = frozenset(
    {"Package", "Version", "Architecture", "Filename", "Size", "SHA256", "Priority", "Essential"}
)


class MirrorError(Exception):
    """A failure that the command line reports as one message, without a traceback."""


@dataclasses.dataclass(frozen=True)
class Stanza:
    """The fields of one Packages index entry that the mirror uses."""

    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    required: bool

    def download_name(self) -> str:
        """Return the file name that `apt-get download` gives this package."""
        version = self.version.replace(":", "%3a")
        return f"{self.name}_{version}_{self.architecture}.deb"


@dataclasses.dataclass(frozen=True)
class MirrorInfo:
    """A prepared mirror: its folder, the packages present and what the last run did."""

    root: Path
    inrelease_sha256: str
    packages: dict[str, str]
    total_bytes: int
    downloaded: int

    @property
    def repository(self) -> Path:
        """Folder that an apt source line points at (the parent of dists/ and pool/)."""
        return self.root / "debian"

    def url(self, port: int) -> str:
        """Return the repository URL of a server on 127.0.0.1:`port` that serves `root`."""
        return f"http://127.0.0.1:{port}/debian"


def default_dir() -> Path:
    """Return the mirror folder: $OIC_MIRROR_DIR, or the shared test-data cache."""
    return Path(os.environ.get("OIC_MIRROR_DIR") or DEFAULT_DIR)


def sha256_file(path: Path) -> str:
    """Return the hex SHA256 of a file."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def check_hash(path: Path, expected_sha256: str, expected_size: int) -> None:
    """Raise MirrorError unless `path` has the expected size and SHA256."""
    size = path.stat().st_size
    if size != expected_size:
        raise MirrorError(f"size mismatch for {path}: expected {expected_size}, actual {size}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise MirrorError(
            f"SHA256 mismatch for {path}: expected {expected_sha256}, actual {actual}"
        )


def temp_name(path: Path) -> Path:
    """Return a hidden name in the same folder, so a rename onto `path` is atomic."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary name beside `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(path)
    temp.write_bytes(data)
    os.replace(temp, path)


def run_command(command: Sequence[str], *, cwd: Path | None = None, env_prefix: str = "") -> str:
    """Run a command and return its stdout, raising MirrorError with a rerunnable command line."""
    env = dict(os.environ, LC_ALL="C.UTF-8")
    for assignment in shlex.split(env_prefix):
        key, _, value = assignment.partition("=")
        env[key] = value
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        rerun_line = " ".join(filter(None, [env_prefix, shlex.join(command)]))
        if cwd is not None:
            rerun_line = f"cd {shlex.quote(str(cwd))} && {rerun_line}"
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise MirrorError(
            f"command failed with exit code {result.returncode}: {rerun_line}\n{detail}"
        )
    return result.stdout


# Debian's lists: InRelease, its signature, and the Packages index it lists.


def find_host_lists(lists_dir: Path) -> tuple[Path, Path]:
    """Return the host's bookworm InRelease and lz4-compressed main amd64 Packages list."""
    inrelease = lists_dir / INRELEASE_LIST
    packages = lists_dir / f"{PACKAGES_LIST}.lz4"
    for path in (inrelease, packages):
        if not path.is_file():
            raise MirrorError(
                f"apt list not found: {path}. Run `apt-get update` with a source for "
                f"{SOURCE_URI} {SUITE} {COMPONENT} ({ARCHITECTURE}), which writes "
                f"{INRELEASE_LIST} and {PACKAGES_LIST}.lz4 there."
            )
    return inrelease, packages


def release_entry(inrelease_text: str, index_path: str) -> tuple[str, int]:
    """Return the SHA256 and size that the Release body lists for `index_path`."""
    in_sha256 = False
    for line in inrelease_text.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
            continue
        fields = line.split()
        if in_sha256 and len(fields) == 3 and fields[2] == index_path:
            return fields[0], int(fields[1])
    raise MirrorError(f"InRelease lists no SHA256 for {index_path}")


def check_signature(inrelease: Path, keyring: Path) -> None:
    """Check the clearsigned InRelease with gpgv against the Debian archive keyring."""
    run_command(["gpgv", "--keyring", str(keyring), str(inrelease)])


def install_lists(root: Path, inrelease: Path, packages_lz4: Path, keyring: Path) -> Path:
    """Copy InRelease and the decompressed Packages into `root` after checking both.

    Returns the served InRelease path. The Release file is not written: without Debian's
    detached Release.gpg its bytes cannot be checked, and apt fetches InRelease first.
    """
    dists = root / "debian" / "dists" / SUITE
    served_inrelease = dists / "InRelease"
    data = inrelease.read_bytes()
    if not served_inrelease.is_file() or served_inrelease.read_bytes() != data:
        temp = temp_name(served_inrelease)
        dists.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(data)
        check_signature(temp, keyring)
        os.replace(temp, served_inrelease)
    else:
        check_signature(served_inrelease, keyring)
    sha256, size = release_entry(data.decode(), PACKAGES_PATH)
    served_packages = dists / PACKAGES_PATH
    if served_packages.is_file() and sha256_file(served_packages) == sha256:
        return served_inrelease
    decompress_lz4(packages_lz4, served_packages, sha256, size)
    return served_inrelease


def decompress_lz4(source: Path, target: Path, sha256: str, size: int) -> None:
    """Decompress `source` with lz4 to a temporary name, check it, and rename it to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(target)
    command = ["lz4", "-dc", str(source)]
    with temp.open("wb") as stream:
        result = subprocess.run(command, stdout=stream, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        temp.unlink()
        stderr = result.stderr.decode(errors="replace").strip()
        raise MirrorError(f"command failed: {shlex.join(command)}\n{stderr}")
    try:
        check_hash(temp, sha256, size)
    except MirrorError:
        temp.unlink()
        raise
    os.replace(temp, target)


# The Packages index.


def parse_stanza(paragraph: str) -> Stanza | None:
    """Parse one Packages paragraph, or return None for an empty one."""
    fields: dict[str, str] = {}
    for line in paragraph.split("\n"):
        name, separator, value = line.partition(":")
        if separator and name in INDEX_FIELDS:
            fields[name] = value.strip()
    if not fields:
        return None
    try:
        return Stanza(
            name=fields["Package"],
            version=fields["Version"],
            architecture=fields["Architecture"],
            filename=fields["Filename"],
            size=int(fields["Size"]),
            sha256=fields["SHA256"],
            required=fields.get("Priority") == "required" or fields.get("Essential") == "yes",
        )
    except (KeyError, ValueError) as error:
        raise MirrorError(f"invalid Packages stanza ({error!r}):\n{paragraph[:300]}") from None


def parse_index(text: str) -> dict[tuple[str, str], Stanza]:
    """Parse a Packages index into stanzas keyed by (name, version)."""
    index: dict[tuple[str, str], Stanza] = {}
    for paragraph in text.split("\n\n"):
        stanza = parse_stanza(paragraph)
        if stanza is not None:
            index[(stanza.name, stanza.version)] = stanza
    return index


def read_index(path: Path) -> dict[tuple[str, str], Stanza]:
    """Read and parse the served Packages index."""
    return parse_index(path.read_text(encoding="utf-8"))


def read_seeds(path: Path) -> list[str]:
    """Read package names, one a line, with `#` comments and blank lines ignored."""
    seeds: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = raw.partition("#")[0].strip()
        if not name:
            continue
        if PACKAGE_NAME.fullmatch(name) is None:
            raise MirrorError(f"{path}:{number}: invalid Debian package name {name!r}")
        seeds.append(name)
    return seeds


# Dependency closure with apt in a throwaway configuration.


@dataclasses.dataclass(frozen=True)
class AptRoot:
    """A throwaway apt configuration whose state, cache and sources live under `path`."""

    path: Path

    @property
    def config(self) -> Path:
        """The file that APT_CONFIG points at."""
        return self.path / "apt.conf"

    @property
    def lists(self) -> Path:
        """apt's lists folder (Dir::State::Lists)."""
        return self.path / "var/lib/apt/lists"

    def env_prefix(self) -> str:
        """Return the `APT_CONFIG=...` assignment that selects this configuration."""
        return f"APT_CONFIG={shlex.quote(str(self.config))}"

    def env(self) -> dict[str, str]:
        """Return os.environ with APT_CONFIG set to this configuration."""
        return dict(os.environ, APT_CONFIG=str(self.config), LC_ALL="C.UTF-8")


def make_apt_root(path: Path, source_line: str) -> AptRoot:
    """Create an apt configuration under `path` with one source and no installed packages.

    The file named by APT_CONFIG is read before apt.conf.d, so setting Dir::Etc here keeps the
    host's /etc/apt configuration out. Downloads run as root because `path` may be in a folder
    that the _apt sandbox user cannot enter.
    """
    apt_root = AptRoot(path)
    for folder in (
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/apt/lists/partial",
        "var/lib/dpkg",
        "var/cache/apt/archives/partial",
        "var/log/apt",
    ):
        (path / folder).mkdir(parents=True, exist_ok=True)
    (path / "var/lib/dpkg/status").write_text("")
    (path / "etc/apt/sources.list").write_text(source_line + "\n")
    settings = {
        "Dir": f"{path}/",
        "Dir::Etc": f"{path}/etc/apt/",
        "Dir::State": f"{path}/var/lib/apt/",
        "Dir::State::Lists": f"{apt_root.lists}/",
        "Dir::State::status": f"{path}/var/lib/dpkg/status",
        "Dir::Cache": f"{path}/var/cache/apt/",
        "Dir::Log": f"{path}/var/log/apt/",
        "APT::Architecture": ARCHITECTURE,
        "Acquire::Languages": "none",
        "APT::Sandbox::User": "root",
        "Debug::NoLocking": "true",
    }
    lines = [f'{key} "{value}";' for key, value in settings.items()]
    lines.append(f'APT::Architectures {{ "{ARCHITECTURE}"; }};')
    apt_root.config.write_text("\n".join(lines) + "\n")
    return apt_root


def source_line(uri: str) -> str:
    """Return a one-line apt source for `uri` signed by the Debian archive keyring."""
    return f"deb [signed-by={KEYRING}] {uri} {SUITE} {COMPONENT}"


def resolve_closure(root: Path, seeds: Iterable[str]) -> list[tuple[str, str]]:
    """Return the (name, version) of every package apt installs for `seeds` on an empty system.

    apt reads the mirror's own InRelease and Packages, placed under the names that apt gives
    lists fetched from SOURCE_URI. Recommends are not installed.
    """
    work = root / ".apt-resolve"
    shutil.rmtree(work, ignore_errors=True)
    apt_root = make_apt_root(work, source_line(SOURCE_URI))
    dists = root / "debian" / "dists" / SUITE
    os.link(dists / "InRelease", apt_root.lists / INRELEASE_LIST)
    os.link(dists / PACKAGES_PATH, apt_root.lists / PACKAGES_LIST)
    command = ["apt-get", "-s", "install", "--no-install-recommends", *seeds]
    output = run_command(command, env_prefix=apt_root.env_prefix())
    shutil.rmtree(work)
    closure = [
        (name.removesuffix(f":{ARCHITECTURE}"), version)
        for name, version in INST_LINE.findall(output)
    ]
    if not closure:
        raise MirrorError(f"apt-get printed no Inst lines for: {shlex.join(command)}")
    return closure


def select_seeds(index: dict[tuple[str, str], Stanza], listed: Iterable[str]) -> list[str]:
    """Return the required and Essential packages of the index plus the listed seeds."""
    names = {stanza.name for stanza in index.values()}
    missing = sorted(set(listed) - names)
    if missing:
        raise MirrorError(f"seed packages not in the {SUITE} {COMPONENT} index: {missing}")
    required = {stanza.name for stanza in index.values() if stanza.required}
    return sorted(required | set(listed))


# Pool files: verification, download and pruning.


def pool_path(root: Path, stanza: Stanza) -> Path:
    """Return the path of a package's .deb file in the mirror."""
    return root / "debian" / stanza.filename


def is_valid_file(root: Path, stanza: Stanza) -> bool:
    """Return True if the pool file exists with the stanza's size and SHA256."""
    path = pool_path(root, stanza)
    try:
        check_hash(path, stanza.sha256, stanza.size)
    except FileNotFoundError:
        return False
    except MirrorError as error:
        LOG.warning("%s", error)
        return False
    return True


def find_invalid(root: Path, stanzas: Sequence[Stanza]) -> list[Stanza]:
    """Return the stanzas whose pool file is missing or differs, hashing in parallel."""
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda stanza: is_valid_file(root, stanza), stanzas))
    return [stanza for stanza, valid in zip(stanzas, results, strict=True) if not valid]


def download_packages(root: Path, stanzas: Sequence[Stanza]) -> None:
    """Fetch packages with `apt-get download` in batches and move each one to its pool path."""
    work = root / ".download"
    work.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(stanzas), DOWNLOAD_BATCH):
        batch = stanzas[start : start + DOWNLOAD_BATCH]
        LOG.info("downloading %d packages (%d of %d)", len(batch), start, len(stanzas))
        command = ["apt-get", "download", "-o", "APT::Sandbox::User=root"]
        command += [f"{stanza.name}={stanza.version}" for stanza in batch]
        error: MirrorError | None = None
        try:
            run_command(command, cwd=work)
        except MirrorError as failure:
            error = failure
        for stanza in batch:
            install_download(root, work / stanza.download_name(), stanza)
        if error is not None and "404" in str(error):
            hint = (
                "\nThe registry no longer serves a version that apt's lists name, so the lists "
                "are out of date: run `apt-get update`, then prepare again."
            )
            raise MirrorError(f"{error}{hint}") from None
        if error is not None:
            raise error
    shutil.rmtree(work)


def install_download(root: Path, downloaded: Path, stanza: Stanza) -> None:
    """Check one downloaded .deb against its stanza and rename it to its pool path.

    The file is first moved to a temporary name in the pool folder, so the final name appears
    only by an atomic rename after the hash matched. A missing download is left for the caller,
    which reports the failed apt-get command.
    """
    if not downloaded.is_file():
        return
    target = pool_path(root, stanza)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_name(target)
    os.replace(downloaded, temp)
    try:
        check_hash(temp, stanza.sha256, stanza.size)
    except MirrorError:
        temp.unlink()
        raise
    os.replace(temp, target)


def prune_pool(root: Path, stanzas: Iterable[Stanza]) -> int:
    """Delete pool files that no stanza names, and return how many were deleted."""
    keep = {pool_path(root, stanza) for stanza in stanzas}
    pool = root / "debian" / "pool"
    removed = 0
    for path in sorted(pool.rglob("*"), reverse=True):
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
        elif path not in keep:
            path.unlink()
            removed += 1
    return removed


# The manifest.


def read_manifest(root: Path) -> dict[str, Any] | None:
    """Return the manifest of an earlier run, or None if there is none or it is unreadable."""
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    return manifest


def write_manifest(
    root: Path, inrelease_sha256: str, seeds: list[str], stanzas: list[Stanza]
) -> None:
    """Write manifest.json listing the packages present and the lists they were built from."""
    packages = [
        {
            "name": stanza.name,
            "version": stanza.version,
            "filename": stanza.filename,
            "size": stanza.size,
            "sha256": stanza.sha256,
        }
        for stanza in sorted(stanzas, key=lambda stanza: stanza.name)
    ]
    manifest = {
        "format": MANIFEST_FORMAT,
        "suite": SUITE,
        "component": COMPONENT,
        "architecture": ARCHITECTURE,
        "inrelease_sha256": inrelease_sha256,
        "seeds": seeds,
        "packages": packages,
    }
    write_atomic(root / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode())


def manifest_stanzas(
    manifest: dict[str, Any], index: dict[tuple[str, str], Stanza]
) -> list[Stanza]:
    """Look up each manifest package in the served index, which supplies the hashes to check."""
    stanzas: list[Stanza] = []
    for entry in manifest["packages"]:
        stanza = index.get((entry["name"], entry["version"]))
        if stanza is None:
            raise MirrorError(
                f"{entry['name']} {entry['version']} is in {MANIFEST_NAME} but not in the "
                f"served Packages index; rerun prepare"
            )
        stanzas.append(stanza)
    return stanzas


# Entry points.


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the mirror folder, so concurrent prepares run one at a time."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def served_stanzas(
    root: Path, index: dict[tuple[str, str], Stanza], inrelease_sha256: str, seeds: list[str]
) -> list[Stanza]:
    """Return the packages to serve: the cached closure if lists and seeds match, else apt's."""
    manifest = read_manifest(root)
    if (
        manifest is not None
        and manifest.get("inrelease_sha256") == inrelease_sha256
        and manifest.get("seeds") == seeds
    ):
        return manifest_stanzas(manifest, index)
    LOG.info("resolving the dependencies of %d seed packages with apt", len(seeds))
    closure = resolve_closure(root, select_seeds(index, seeds))
    missing = [key for key in closure if key not in index]
    if missing:
        raise MirrorError(f"apt selected packages that are not in the index: {missing}")
    return [index[key] for key in closure]


def prepare_mirror(
    root: Path | None = None,
    *,
    lists_dir: Path = APT_LISTS_DIR,
    seeds_file: Path = SEEDS_FILE,
    keyring: Path = KEYRING,
) -> MirrorInfo:
    """Create or update the mirror in `root`, download what is missing or invalid, and verify.

    A second run with the same host InRelease and seeds skips the apt dependency resolution
    and only re-hashes the pool files, so it downloads nothing unless a file is missing or
    differs from the index.
    """
    root = (root or default_dir()).resolve()
    inrelease, packages_lz4 = find_host_lists(lists_dir)
    seeds = read_seeds(seeds_file)
    with locked(root):
        served_inrelease = install_lists(root, inrelease, packages_lz4, keyring)
        inrelease_sha256 = sha256_file(served_inrelease)
        index = read_index(served_inrelease.parent / PACKAGES_PATH)
        stanzas = served_stanzas(root, index, inrelease_sha256, seeds)
        invalid = find_invalid(root, stanzas)
        for stanza in invalid:
            pool_path(root, stanza).unlink(missing_ok=True)
        if invalid:
            download_packages(root, invalid)
        removed = prune_pool(root, stanzas)
        if removed:
            LOG.info("deleted %d pool files that the index no longer lists", removed)
        write_manifest(root, inrelease_sha256, seeds, stanzas)
    return MirrorInfo(
        root=root,
        inrelease_sha256=inrelease_sha256,
        packages={stanza.name: stanza.version for stanza in stanzas},
        total_bytes=sum(stanza.size for stanza in stanzas),
        downloaded=len(invalid),
    )


def verify_mirror(root: Path, keyring: Path = KEYRING) -> list[str]:
    """Check a prepared mirror without changing it and return one message per problem."""
    manifest = read_manifest(root)
    if manifest is None:
        raise MirrorError(f"no readable {MANIFEST_NAME} in {root}; run prepare first")
    dists = root / "debian" / "dists" / SUITE
    check_signature(dists / "InRelease", keyring)
    sha256, size = release_entry((dists / "InRelease").read_text(), PACKAGES_PATH)
    problems: list[str] = []
    try:
        check_hash(dists / PACKAGES_PATH, sha256, size)
    except (MirrorError, FileNotFoundError) as error:
        return [str(error)]
    stanzas = manifest_stanzas(manifest, read_index(dists / PACKAGES_PATH))
    for stanza in find_invalid(root, stanzas):
        path = pool_path(root, stanza)
        if not path.is_file():
            problems.append(f"missing: {path}")
            continue
        problems.append(
            f"SHA256 mismatch for {path}: expected {stanza.sha256}, actual {sha256_file(path)}"
        )
    return problems


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that records requests instead of logging them to stderr."""

    server: MirrorHTTPServer

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.record(self.command, self.path, int(code) if str(code).isdigit() else 0)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)


@dataclasses.dataclass(frozen=True)
class Request:
    """One request that the mirror server answered."""

    method: str
    path: str
    status: int


class MirrorHTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that keeps a list of the requests it answered."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], directory: Path) -> None:
        self.directory = directory
        self.requests: list[Request] = []
        self.requests_lock = threading.Lock()
        super().__init__(address, self.make_handler)

    def make_handler(self, *args: Any) -> QuietHandler:
        return QuietHandler(*args, directory=str(self.directory))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes its connection early, as a build does once it has what it needs,
        # is not an error of the mirror.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            LOG.debug("client %s closed the connection early", client_address)
            return
        super().handle_error(request, client_address)

    def record(self, method: str, path: str, status: int) -> None:
        with self.requests_lock:
            self.requests.append(Request(method, path, status))


class MirrorServer:
    """Serve a mirror folder over HTTP on 127.0.0.1 in a background thread.

    Use as a context manager. GET and HEAD are supported, and `requests` lists each request.
    """

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = root
        self.httpd = MirrorHTTPServer(("127.0.0.1", port), root)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The TCP port that the server listens on."""
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """The repository URL for an apt source line."""
        return f"http://127.0.0.1:{self.port}/debian"

    @property
    def requests(self) -> list[Request]:
        """A copy of the requests answered so far."""
        with self.httpd.requests_lock:
            return list(self.httpd.requests)

    def __enter__(self) -> MirrorServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


# Command line.


def command_prepare(args: argparse.Namespace) -> int:
    info = prepare_mirror(args.dir, lists_dir=args.lists_dir)
    print(
        f"mirror ready in {info.root}: {len(info.packages)} packages, "
        f"{info.total_bytes / 1e6:.1f} MB, {info.downloaded} downloaded"
    )
    return 0


def command_verify(args: argparse.Namespace) -> int:
    problems = verify_mirror(args.dir.resolve())
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problems; run prepare to repair them", file=sys.stderr)
        return 1
    print(f"mirror in {args.dir} verified")
    return 0


def command_serve(args: argparse.Namespace) -> int:
    root = args.dir.resolve()
    if read_manifest(root) is None:
        raise MirrorError(f"no readable {MANIFEST_NAME} in {root}; run prepare first")
    with MirrorServer(root, args.port) as server:
        if args.port_file is not None:
            write_atomic(args.port_file, f"{server.port}\n".encode())
        print(server.url, flush=True)
        LOG.info("serving %s on 127.0.0.1:%d until SIGINT or SIGTERM", root, server.port)
        wait_for_stop_signal()
        LOG.info("stopping the server on 127.0.0.1:%d", server.port)
    return 0


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives.

    Both are handled here because a shell starts background jobs with SIGINT ignored.
    """
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda _number, _frame: stop.set())
    while not stop.wait(1.0):
        pass


def command_url(args: argparse.Namespace) -> int:
    if args.port_file is None:
        print(f"file:{args.dir.resolve()}/debian")
        return 0
    try:
        port = int(args.port_file.read_text().strip())
    except (OSError, ValueError) as error:
        raise MirrorError(f"cannot read a port from {args.port_file}: {error}") from None
    print(f"http://127.0.0.1:{port}/debian")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m os_image_composer.testing.mirror",
        description="Build and serve a local mirror of real Debian bookworm packages.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="create or update the mirror, then verify it")
    prepare.add_argument(
        "--lists-dir",
        type=Path,
        default=APT_LISTS_DIR,
        help="apt lists folder to read InRelease and Packages from (default: %(default)s)",
    )
    verify = commands.add_parser("verify", help="check every file against the served index")
    serve = commands.add_parser("serve", help="serve the mirror on 127.0.0.1 until interrupted")
    serve.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    url = commands.add_parser(
        "url",
        help="print the file: URL of the mirror, or with --port-file the URL of a running serve",
    )
    for command in (serve, url):
        command.add_argument("--port-file", type=Path, help="file that holds the server's port")
    for command in (prepare, verify, serve, url):
        command.add_argument(
            "--dir",
            type=Path,
            default=default_dir(),
            help="mirror folder (default: %(default)s, taken from $OIC_MIRROR_DIR if set)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    handlers = {
        "prepare": command_prepare,
        "verify": command_verify,
        "serve": command_serve,
        "url": command_url,
    }
    try:
        return handlers[args.command](args)
    except MirrorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
