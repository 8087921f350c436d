"""Build small signed Debian repositories for tests.

The builder makes the .deb files with dpkg-deb and signs the Release file with gpg. The result has
the layout of a real archive, which apt, gpgv and the project's own fetcher read: a pool of .deb
files, Packages indexes per component and architecture, and a Release file signed as InRelease
(clear signature) and Release.gpg (detached signature).

Python callers use `GpgKey.generate`, `RepoSpec`, `PackageSpec` and `build_repo`. Other languages
run this file as a script:

    python3 debrepo.py build SPEC.json OUT_DIR --gnupghome DIR [--key-out DIR]

The script reuses the secret key in DIR whose user ID equals `key.uid`, or generates one. It
writes the public key as `<key-out>/repo-key.asc` (armored) and `<key-out>/repo-key.gpg`
(binary), stops the gpg-agent of DIR when it finishes, and prints a JSON summary on stdout (see
`BuiltRepo.to_json`). `--key-out` defaults to DIR.

SPEC.json is one object. Every key except `components` is optional:

    {
      "codename": "bookworm",           # Codename field and the name of dists/<codename>/
      "suite": "stable",                # Suite field, defaults to the codename
      "origin": "oic-test", "label": "oic-test",
      "architectures": ["amd64"],       # "all" is not allowed here, arch all packages are
                                        # listed in every binary-<arch> index
      "date": "2025-01-01T00:00:00Z",   # ISO 8601, Release Date field, default: now
      "valid_until": "2025-02-01T00:00:00Z",
      "inrelease": true, "release_gpg": true,
      "compressions": ["", "gz", "xz"], # "" is the uncompressed file, "bz2" is also accepted
      "digest_algo": "SHA512",          # gpg --digest-algo
      "sign_with_subkey": true,
      "release_checksums": ["MD5Sum", "SHA256"],   # also "SHA1" and "SHA512"
      "key": {"uid": "...", "algorithm": "ed25519", "signing_subkey": true, "expire": "never"},
      "components": {
        "main": [
          {
            "name": "hello", "version": "1:2.10-3", "architecture": "amd64",
            "source": "hello",          # default: the package name, used in pool/ paths
            "depends": "libc6 (>= 2.34), foo | bar", "pre_depends": "", "recommends": "",
            "suggests": "", "provides": "", "conflicts": "", "breaks": "", "replaces": "",
            "essential": false, "multi_arch": "foreign", "priority": "optional",
            "section": "misc", "maintainer": "...", "description": "synopsis\\nlong text",
            "files": {
              "/usr/bin/hello": {"content": "#!/bin/sh\\necho hi\\n", "mode": "0755"},
              "/usr/share/hello/blob": {"base64": "AAEC"},
              "/etc/hello.conf": "plain text",
              "/usr/lib/hello/link": {"symlink": "../../bin/hello"},
              "/var/lib/hello/": {"directory": true}
            },
            "scripts": {"postinst": "#!/bin/sh\\nexit 0\\n"},
            "conffiles": ["/etc/hello.conf"],
            "extra_fields": {"Homepage": "https://example.invalid/"}
          }
        ]
      }
    }

A file mode is an integer or an octal string. A file content is a string (stored as UTF-8) or
{"base64": "..."}.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import dataclasses
import gzip
import hashlib
import json
import lzma
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_UID = "os-image-composer test repository <test-repo@example.invalid>"
DEFAULT_MAINTAINER = "os-image-composer tests <tests@example.invalid>"
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")
KEY_ALGORITHMS = ("ed25519", "rsa3072")
COMPRESSIONS = ("", "gz", "xz", "bz2")
RELEASE_CHECKSUMS = {"MD5Sum": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}

# Package names: lowercase letters, digits, "+", "-" and ".", at least two characters, starting
# with a letter or digit. Versions: [epoch:]upstream[-revision], upstream starting with a digit.
PACKAGE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.+-]+")
VERSION_RE = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*")
ARCH_RE = re.compile(r"[a-z0-9][a-z0-9-]*")

# RFC 2822 names, independent of the process locale.
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# gpg must never prompt: the keys have no passphrase and tests run without a terminal.
GPG_BATCH = ("--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "")


class RepoBuildError(RuntimeError):
    """A repository could not be built: invalid spec or a failed dpkg-deb call."""


class GpgError(RuntimeError):
    """A gpg call failed. The message contains the command and gpg's stderr."""


# ---------------------------------------------------------------------------------------------
# Specs


@dataclass(frozen=True)
class FileSpec:
    """A path inside a package: a regular file, a symlink or a directory."""

    content: bytes | str = b""
    mode: int = 0o644
    symlink_to: str | None = None
    directory: bool = False

    def data(self) -> bytes:
        if isinstance(self.content, str):
            return self.content.encode()
        return self.content


FileContent = bytes | str | FileSpec | tuple[bytes | str, int]


@dataclass
class PackageSpec:
    """A binary package. Relationship fields use control file syntax, e.g. "a (>= 1) | b"."""

    name: str
    version: str
    architecture: str = "amd64"
    source: str | None = None
    depends: str = ""
    pre_depends: str = ""
    recommends: str = ""
    suggests: str = ""
    provides: str = ""
    conflicts: str = ""
    breaks: str = ""
    replaces: str = ""
    essential: bool = False
    multi_arch: str | None = None
    priority: str = "optional"
    section: str = "misc"
    maintainer: str = DEFAULT_MAINTAINER
    description: str = ""
    files: dict[str, FileContent] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    conffiles: list[str] = field(default_factory=list)
    extra_fields: dict[str, str] = field(default_factory=dict)

    @property
    def source_name(self) -> str:
        return self.source or self.name

    @property
    def upstream_and_revision(self) -> str:
        """The version without its epoch, as used in .deb file names."""
        return self.version.split(":", 1)[1] if ":" in self.version else self.version


@dataclass
class RepoSpec:
    """A repository: one dists/<codename>/ tree with its components and signing options.

    The signing and compression fields are defaults for `build_repo`, whose keyword arguments
    override them.
    """

    components: dict[str, list[PackageSpec]]
    codename: str = "testing"
    suite: str | None = None
    architectures: list[str] = field(default_factory=lambda: ["amd64"])
    origin: str = "oic-test"
    label: str = "oic-test"
    date: datetime | None = None
    valid_until: datetime | None = None
    inrelease: bool = True
    release_gpg: bool = True
    compressions: tuple[str, ...] = ("", "gz", "xz")
    digest_algo: str = "SHA512"
    sign_with_subkey: bool = True
    release_checksums: tuple[str, ...] = ("MD5Sum", "SHA256")


# ---------------------------------------------------------------------------------------------
# Keys


def _run_gpg(gnupghome: Path, args: Sequence[str], *, stdin: bytes | None = None) -> bytes:
    command = ["gpg", "--homedir", str(gnupghome), *GPG_BATCH, *args]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise GpgError(f"gpg failed with exit code {result.returncode}: {command}\n{stderr}")
    return result.stdout


def _faked_time_args(when: datetime | None) -> list[str]:
    # A trailing "!" freezes gpg's clock at that instant instead of letting it run on.
    if when is None:
        return []
    return ["--faked-system-time", f"{int(when.timestamp())}!"]


def prepare_gnupghome(path: Path) -> Path:
    """Create `path` with mode 0700 so gpg accepts it as a home directory."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


@dataclass
class GpgKey:
    """An OpenPGP key pair without passphrase in a private GNUPGHOME.

    `signing_fingerprint` is the signing subkey when the key has one, else the primary key.
    """

    gnupghome: Path
    uid: str
    fingerprint: str
    signing_fingerprint: str

    @classmethod
    def generate(
        cls,
        gnupghome: Path,
        uid: str = DEFAULT_UID,
        *,
        algorithm: str = "ed25519",
        signing_subkey: bool = True,
        expire: str = "never",
        subkey_expire: str | None = None,
        created: datetime | None = None,
    ) -> GpgKey:
        """Generate a key in `gnupghome`.

        `expire` and `subkey_expire` take gpg's syntax ("never", "1d", "2y", ISO date) and
        `subkey_expire` defaults to `expire`. `created` backdates the key, so a test can make a
        key that has already expired.
        """
        if algorithm not in KEY_ALGORITHMS:
            raise ValueError(
                f"invalid key algorithm {algorithm!r}, expected one of {KEY_ALGORITHMS}"
            )
        prepare_gnupghome(gnupghome)
        clock = _faked_time_args(created)
        usage = "cert" if signing_subkey else "sign"
        status = _run_gpg(
            gnupghome,
            [*clock, "--status-fd", "1", "--quick-gen-key", uid, algorithm, usage, expire],
        )
        fingerprint = _created_fingerprint(status)
        signing_fingerprint = fingerprint
        if signing_subkey:
            sub_expire = subkey_expire or expire
            status = _run_gpg(
                gnupghome,
                [
                    *clock,
                    "--status-fd",
                    "1",
                    "--quick-add-key",
                    fingerprint,
                    algorithm,
                    "sign",
                    sub_expire,
                ],
            )
            signing_fingerprint = _created_fingerprint(status)
        return cls(gnupghome, uid, fingerprint, signing_fingerprint)

    @classmethod
    def find(cls, gnupghome: Path, uid: str) -> GpgKey | None:
        """Return the first usable secret key in `gnupghome` with user ID `uid`, or None."""
        command = [
            "gpg",
            "--homedir",
            str(gnupghome),
            *GPG_BATCH,
            "--with-colons",
            "--list-secret-keys",
            f"={uid}",
        ]
        result = subprocess.run(command, capture_output=True, check=False)
        # gpg exits with code 2 when no key matches, which is not an error here.
        if result.returncode != 0:
            return None
        return _parse_secret_key(gnupghome, uid, result.stdout.decode())

    def export_armored(self, path: Path) -> Path:
        path.write_bytes(_run_gpg(self.gnupghome, ["--armor", "--export", self.fingerprint]))
        return path

    def export_binary(self, path: Path) -> Path:
        path.write_bytes(_run_gpg(self.gnupghome, ["--export", self.fingerprint]))
        return path

    def sign(
        self,
        source: Path,
        output: Path,
        *,
        clearsign: bool,
        digest_algo: str = "SHA512",
        with_subkey: bool = True,
        when: datetime | None = None,
    ) -> Path:
        """Sign `source` into `output`: clear signature, or armored detached signature.

        `with_subkey=False` signs with the primary key, which must then have signing usage.
        """
        signer = self.signing_fingerprint if with_subkey else self.fingerprint
        mode = "--clearsign" if clearsign else "--detach-sign"
        # The trailing "!" makes gpg use exactly this key instead of picking a subkey itself.
        _run_gpg(
            self.gnupghome,
            [
                *_faked_time_args(when),
                "--yes",
                "--armor",
                "--local-user",
                f"{signer}!",
                "--digest-algo",
                digest_algo,
                "--output",
                str(output),
                mode,
                str(source),
            ],
        )
        return output

    def set_expire(self, expire: str, *, subkeys: bool = False) -> None:
        """Change the expiry of the primary key, or of all subkeys if `subkeys` is true."""
        args = ["--quick-set-expire", self.fingerprint, expire]
        if subkeys:
            args.append("*")
        _run_gpg(self.gnupghome, args)

    def revoke(self) -> None:
        """Revoke the primary key by importing the revocation certificate gpg made at creation.

        Exports made after this call contain the revocation.
        """
        certificate = self.gnupghome / "openpgp-revocs.d" / f"{self.fingerprint}.rev"
        text = certificate.read_text()
        # gpg prefixes the armor header with ":" so the file cannot be imported by accident.
        header = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
        armored = text.replace(f":{header}", header)
        _run_gpg(self.gnupghome, ["--import"], stdin=armored.encode())

    def stop_agent(self) -> None:
        """Stop the gpg-agent that gpg started for this GNUPGHOME."""
        subprocess.run(
            ["gpgconf", "--homedir", str(self.gnupghome), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


def _created_fingerprint(status: bytes) -> str:
    for line in status.decode().splitlines():
        parts = line.split()
        if parts[:2] == ["[GNUPG:]", "KEY_CREATED"] and len(parts) >= 4:
            return parts[3]
    raise GpgError(f"gpg printed no KEY_CREATED status line: {status.decode()!r}")


def _parse_secret_key(gnupghome: Path, uid: str, listing: str) -> GpgKey | None:
    # Colon listing records: "sec" (primary), "ssb" (subkey), each followed by its "fpr" line.
    # Field 2 is the validity ("r" revoked, "e" expired) and field 12 the key's capabilities.
    primary: str | None = None
    signing: str | None = None
    pending: list[str] | None = None
    for line in listing.splitlines():
        record = line.split(":")
        if record[0] in ("sec", "ssb"):
            pending = record
            continue
        if record[0] != "fpr" or pending is None:
            continue
        usable = pending[1] not in ("r", "e") and "s" in pending[11]
        if pending[0] == "sec":
            if primary is not None:
                break
            primary = record[9]
            signing = primary if usable else None
        elif usable:
            signing = record[9]
        pending = None
    if primary is None or signing is None:
        return None
    return GpgKey(gnupghome, uid, primary, signing)


def export_keyring(path: Path, keys: Iterable[GpgKey]) -> Path:
    """Write the public keys of `keys` into one binary keyring file, as gpgv --keyring reads."""
    with path.open("wb") as keyring:
        for key in keys:
            keyring.write(_run_gpg(key.gnupghome, ["--export", key.fingerprint]))
    return path


# ---------------------------------------------------------------------------------------------
# Validation


def _check_field_value(package: str, name: str, value: str) -> None:
    # A newline would start a new field or paragraph in the control file.
    if "\n" in value or "\r" in value:
        raise RepoBuildError(f"package {package}: field {name} must be one line, got {value!r}")


def validate_package(spec: PackageSpec, architectures: Sequence[str]) -> None:
    """Raise RepoBuildError when `spec` would produce an invalid control file or path."""
    if not PACKAGE_NAME_RE.fullmatch(spec.name):
        raise RepoBuildError(f"invalid package name {spec.name!r}: use [a-z0-9][a-z0-9.+-]+")
    if not PACKAGE_NAME_RE.fullmatch(spec.source_name):
        raise RepoBuildError(f"package {spec.name}: invalid source name {spec.source_name!r}")
    if not VERSION_RE.fullmatch(spec.version):
        raise RepoBuildError(f"package {spec.name}: invalid version {spec.version!r}")
    if spec.architecture != "all" and spec.architecture not in architectures:
        raise RepoBuildError(
            f"package {spec.name}: architecture {spec.architecture!r} is not in the repository's "
            f"architectures {list(architectures)}"
        )
    if spec.multi_arch not in (None, "same", "foreign", "allowed", "no"):
        raise RepoBuildError(f"package {spec.name}: invalid Multi-Arch {spec.multi_arch!r}")
    for script in spec.scripts:
        if script not in MAINTAINER_SCRIPTS:
            raise RepoBuildError(
                f"package {spec.name}: invalid maintainer script {script!r}, expected one of "
                f"{MAINTAINER_SCRIPTS}"
            )
    for path in spec.files:
        _member_path(spec.name, path)
    for name, value in _relationship_fields(spec) + list(spec.extra_fields.items()):
        _check_field_value(spec.name, name, value)
    for name, value in (
        ("Maintainer", spec.maintainer),
        ("Section", spec.section),
        ("Priority", spec.priority),
    ):
        _check_field_value(spec.name, name, value)


def _member_path(package: str, path: str) -> Path:
    """Return `path` relative to the package root, rejecting ".." and empty paths."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise RepoBuildError(f"package {package}: invalid file path {path!r}")
    return Path(*parts)


def validate_repo(spec: RepoSpec) -> None:
    """Raise RepoBuildError when `spec` cannot be built."""
    if not spec.components:
        raise RepoBuildError("the repository has no components")
    if not spec.architectures:
        raise RepoBuildError("the repository has no architectures")
    for arch in spec.architectures:
        if arch == "all" or not ARCH_RE.fullmatch(arch):
            raise RepoBuildError(f"invalid repository architecture {arch!r}")
    for name in (spec.codename, *spec.components):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise RepoBuildError(f"invalid codename or component {name!r}")
    for compression in spec.compressions:
        if compression not in COMPRESSIONS:
            raise RepoBuildError(f"invalid compression {compression!r}: expected {COMPRESSIONS}")
    for checksum in spec.release_checksums:
        if checksum not in RELEASE_CHECKSUMS:
            raise RepoBuildError(
                f"invalid Release checksum {checksum!r}: expected one of {list(RELEASE_CHECKSUMS)}"
            )
    for packages in spec.components.values():
        for package in packages:
            validate_package(package, spec.architectures)


# ---------------------------------------------------------------------------------------------
# .deb files


def _relationship_fields(spec: PackageSpec) -> list[tuple[str, str]]:
    return [
        ("Replaces", spec.replaces),
        ("Provides", spec.provides),
        ("Pre-Depends", spec.pre_depends),
        ("Depends", spec.depends),
        ("Recommends", spec.recommends),
        ("Suggests", spec.suggests),
        ("Conflicts", spec.conflicts),
        ("Breaks", spec.breaks),
    ]


def _as_file_spec(content: FileContent) -> FileSpec:
    if isinstance(content, FileSpec):
        return content
    if isinstance(content, tuple):
        return FileSpec(content=content[0], mode=content[1])
    return FileSpec(content=content)


def _format_description(spec: PackageSpec) -> str:
    text = spec.description or f"{spec.name} test package"
    synopsis, _, extended = text.partition("\n")
    lines = [synopsis]
    for line in extended.splitlines():
        lines.append(f" {line}" if line.strip() else " .")
    return "\n".join(lines)


def _installed_size_kib(spec: PackageSpec) -> int:
    # An estimate: each file rounded up to 1 KiB, plus 1 KiB for every symlink and directory.
    total = 0
    for content in spec.files.values():
        file_spec = _as_file_spec(content)
        if file_spec.symlink_to is not None or file_spec.directory:
            total += 1
        else:
            total += max(1, -(-len(file_spec.data()) // 1024))
    return total


def control_fields(spec: PackageSpec) -> list[tuple[str, str]]:
    """Return the fields of the package's control file in Debian's usual order."""
    fields: list[tuple[str, str]] = [("Package", spec.name)]
    if spec.source_name != spec.name:
        fields.append(("Source", spec.source_name))
    fields += [
        ("Version", spec.version),
        ("Architecture", spec.architecture),
        ("Maintainer", spec.maintainer),
        ("Installed-Size", str(_installed_size_kib(spec))),
    ]
    if spec.essential:
        fields.append(("Essential", "yes"))
    if spec.multi_arch:
        fields.append(("Multi-Arch", spec.multi_arch))
    fields += [(name, value) for name, value in _relationship_fields(spec) if value]
    fields += [("Section", spec.section), ("Priority", spec.priority)]
    fields += list(spec.extra_fields.items())
    fields.append(("Description", _format_description(spec)))
    return fields


def format_paragraph(fields: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in fields)


def _write_member(root: Path, relative: Path, file_spec: FileSpec, epoch: int) -> None:
    target = root / relative
    _make_dirs(root, relative.parent, epoch)
    if file_spec.directory:
        _make_dirs(root, relative, epoch)
        target.chmod(file_spec.mode if file_spec.mode != 0o644 else 0o755)
        return
    if file_spec.symlink_to is not None:
        target.symlink_to(file_spec.symlink_to)
        os.utime(target, (epoch, epoch), follow_symlinks=False)
        return
    target.write_bytes(file_spec.data())
    target.chmod(file_spec.mode)
    os.utime(target, (epoch, epoch))


def _make_dirs(root: Path, relative: Path, epoch: int) -> None:
    current = root
    for part in relative.parts:
        current = current / part
        if not current.exists():
            current.mkdir()
            current.chmod(0o755)
            os.utime(current, (epoch, epoch))


def build_deb(spec: PackageSpec, output: Path, *, epoch: int = 0) -> Path:
    """Build `spec` into the .deb file `output` with dpkg-deb.

    Files and members are owned by root and get the modification time `epoch` (seconds since
    1970), so the same spec gives the same bytes.
    """
    with tempfile.TemporaryDirectory(prefix="oic-deb-") as staging_name:
        staging = Path(staging_name) / "root"
        staging.mkdir(mode=0o755)
        staging.chmod(0o755)
        for path, content in spec.files.items():
            _write_member(staging, _member_path(spec.name, path), _as_file_spec(content), epoch)
        _write_control_dir(staging / "DEBIAN", spec)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
        output.parent.mkdir(parents=True, exist_ok=True)
        command = ["dpkg-deb", "--root-owner-group", "--build", str(staging), str(output)]
        result = subprocess.run(command, capture_output=True, env=env, check=False)
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            raise RepoBuildError(f"dpkg-deb failed for package {spec.name}: {stderr}")
    return output


def _write_control_dir(control_dir: Path, spec: PackageSpec) -> None:
    control_dir.mkdir(mode=0o755)
    control_dir.chmod(0o755)
    (control_dir / "control").write_text(format_paragraph(control_fields(spec)))
    for name, text in spec.scripts.items():
        script = control_dir / name
        script.write_text(text)
        script.chmod(0o755)
    if spec.conffiles:
        conffiles = "".join(f"/{_member_path(spec.name, path)}\n" for path in spec.conffiles)
        (control_dir / "conffiles").write_text(conffiles)


def pool_path(component: str, spec: PackageSpec) -> str:
    """Return the pool path of the package's .deb, relative to the repository root.

    Debian puts sources whose name starts with "lib" under a 4-letter directory, as in
    pool/main/libc/glibc/.
    """
    source = spec.source_name
    initial = source[:4] if source.startswith("lib") and len(source) > 3 else source[0]
    filename = f"{spec.name}_{spec.upstream_and_revision}_{spec.architecture}.deb"
    return f"pool/{component}/{initial}/{source}/{filename}"


# ---------------------------------------------------------------------------------------------
# Indexes and Release


@dataclass(frozen=True)
class BuiltPackage:
    """A .deb file in the pool and the digests listed for it in Packages."""

    name: str
    version: str
    architecture: str
    component: str
    filename: str
    path: Path
    size: int
    md5: str
    sha256: str


@dataclass(frozen=True)
class BuiltRepo:
    """Paths of a built repository. Signature paths are None when that file was not written."""

    root: Path
    codename: str
    release: Path
    inrelease: Path | None
    release_gpg: Path | None
    packages: list[BuiltPackage]
    index_files: list[str]

    @property
    def dists(self) -> Path:
        return self.root / "dists" / self.codename

    def to_json(self, key_files: Mapping[str, Path] | None = None) -> dict[str, Any]:
        """Return the summary that the `build` command prints."""
        return {
            "root": str(self.root),
            "codename": self.codename,
            "release": str(self.release),
            "inrelease": str(self.inrelease) if self.inrelease else None,
            "release_gpg": str(self.release_gpg) if self.release_gpg else None,
            "index_files": self.index_files,
            "keys": {name: str(path) for name, path in (key_files or {}).items()},
            "packages": [
                {
                    "name": package.name,
                    "version": package.version,
                    "architecture": package.architecture,
                    "component": package.component,
                    "filename": package.filename,
                    "path": str(package.path),
                    "size": package.size,
                    "sha256": package.sha256,
                }
                for package in self.packages
            ],
        }


def _digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def _compress(data: bytes, compression: str) -> bytes:
    if compression == "gz":
        return gzip.compress(data, mtime=0)
    if compression == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
    if compression == "bz2":
        return bz2.compress(data)
    return data


def format_rfc2822(when: datetime) -> str:
    """Format `when` as Debian's Release files do, e.g. "Sat, 09 Aug 2025 09:24:47 UTC"."""
    utc = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return (
        f"{WEEKDAYS[utc.weekday()]}, {utc.day:02d} {MONTHS[utc.month - 1]} {utc.year} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} UTC"
    )


def _packages_paragraph(spec: PackageSpec, built: BuiltPackage) -> str:
    fields = control_fields(spec)
    description = fields.pop()
    fields += [
        ("Filename", built.filename),
        ("Size", str(built.size)),
        ("MD5sum", built.md5),
        ("SHA256", built.sha256),
        description,
    ]
    return format_paragraph(fields)


def _write_index(
    dists: Path, relative: str, data: bytes, compressions: Sequence[str]
) -> dict[str, bytes]:
    """Write one index file in every compression and return the entries for Release.

    Debian lists the uncompressed file in Release even when it publishes only compressed files,
    so apt can check the decompressed data. The entries follow that rule, so they can name a
    file that is not written.
    """
    entries = {relative: data}
    for compression in compressions:
        name = f"{relative}.{compression}" if compression else relative
        compressed = _compress(data, compression)
        target = dists / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(compressed)
        entries[name] = compressed
    return entries


def _release_text(spec: RepoSpec, entries: Mapping[str, bytes]) -> str:
    date = spec.date or datetime.now(UTC).replace(microsecond=0)
    fields = [
        ("Origin", spec.origin),
        ("Label", spec.label),
        ("Suite", spec.suite or spec.codename),
        ("Codename", spec.codename),
        ("Date", format_rfc2822(date)),
    ]
    if spec.valid_until is not None:
        fields.append(("Valid-Until", format_rfc2822(spec.valid_until)))
    fields += [
        ("Architectures", " ".join(spec.architectures)),
        ("Components", " ".join(spec.components)),
        ("Description", f"{spec.label} test repository"),
    ]
    text = format_paragraph(fields)
    for checksum in spec.release_checksums:
        algorithm = RELEASE_CHECKSUMS[checksum]
        text += f"{checksum}:\n"
        for name, data in entries.items():
            text += f" {_digest(data, algorithm)} {len(data):>16} {name}\n"
    return text


def build_repo(
    out_dir: Path,
    spec: RepoSpec,
    key: GpgKey | None,
    *,
    inrelease: bool | None = None,
    release_gpg: bool | None = None,
    compressions: Sequence[str] | None = None,
    digest_algo: str | None = None,
    sign_with_subkey: bool | None = None,
    signature_time: datetime | None = None,
) -> BuiltRepo:
    """Build the repository `spec` under `out_dir` and sign its Release file with `key`.

    Keyword arguments left as None take their value from `spec`. With `key=None` the
    repository is unsigned. `signature_time` backdates the signatures, e.g. to sign with a key
    that has expired since.
    """
    spec = dataclasses.replace(
        spec,
        inrelease=spec.inrelease if inrelease is None else inrelease,
        release_gpg=spec.release_gpg if release_gpg is None else release_gpg,
        compressions=tuple(spec.compressions if compressions is None else compressions),
        digest_algo=digest_algo or spec.digest_algo,
        sign_with_subkey=spec.sign_with_subkey if sign_with_subkey is None else sign_with_subkey,
    )
    validate_repo(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    epoch = int((spec.date or datetime(2020, 1, 1, tzinfo=UTC)).timestamp())
    dists = out_dir / "dists" / spec.codename
    built_packages: list[BuiltPackage] = []
    entries: dict[str, bytes] = {}
    for component, packages in spec.components.items():
        pairs = [
            (package, _build_pool_entry(out_dir, component, package, epoch)) for package in packages
        ]
        built_packages += [built for _, built in pairs]
        entries.update(_write_component_indexes(dists, component, spec, pairs))
    release = dists / "Release"
    release.write_text(_release_text(spec, entries))
    return BuiltRepo(
        root=out_dir,
        codename=spec.codename,
        release=release,
        inrelease=_sign_release(release, "InRelease", spec, key, signature_time),
        release_gpg=_sign_release(release, "Release.gpg", spec, key, signature_time),
        packages=built_packages,
        index_files=sorted(
            str(path.relative_to(dists)) for path in dists.rglob("Packages*") if path.is_file()
        ),
    )


def _build_pool_entry(out_dir: Path, component: str, spec: PackageSpec, epoch: int) -> BuiltPackage:
    filename = pool_path(component, spec)
    deb = build_deb(spec, out_dir / filename, epoch=epoch)
    data = deb.read_bytes()
    return BuiltPackage(
        name=spec.name,
        version=spec.version,
        architecture=spec.architecture,
        component=component,
        filename=filename,
        path=deb,
        size=len(data),
        md5=_digest(data, "md5"),
        sha256=_digest(data, "sha256"),
    )


def _write_component_indexes(
    dists: Path,
    component: str,
    spec: RepoSpec,
    pairs: Sequence[tuple[PackageSpec, BuiltPackage]],
) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    ordered = sorted(pairs, key=lambda pair: (pair[0].name, pair[0].version))
    for arch in spec.architectures:
        paragraphs = [
            _packages_paragraph(package, built)
            for package, built in ordered
            if package.architecture in (arch, "all")
        ]
        data = "\n".join(paragraphs).encode()
        relative = f"{component}/binary-{arch}/Packages"
        entries.update(_write_index(dists, relative, data, spec.compressions))
    return entries


def _sign_release(
    release: Path, name: str, spec: RepoSpec, key: GpgKey | None, when: datetime | None
) -> Path | None:
    """Write the signature file `name` ("InRelease" or "Release.gpg") if `spec` enables it."""
    clearsign = name == "InRelease"
    enabled = spec.inrelease if clearsign else spec.release_gpg
    if key is None or not enabled:
        return None
    return key.sign(
        release,
        release.with_name(name),
        clearsign=clearsign,
        digest_algo=spec.digest_algo,
        with_subkey=spec.sign_with_subkey,
        when=when,
    )


# ---------------------------------------------------------------------------------------------
# JSON spec and command line


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_bytes(value: Any, where: str) -> bytes | str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"], validate=True)
    raise RepoBuildError(f'{where}: expected a string or {{"base64": ...}}, got {value!r}')


def _parse_mode(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RepoBuildError(f"{where}: invalid mode {value!r}, expected an int or octal string")
    mode = int(value, 8) if isinstance(value, str) else value
    if not 0 <= mode <= 0o7777:
        raise RepoBuildError(f"{where}: mode {value!r} is out of range")
    return mode


def file_spec_from_json(value: Any, where: str) -> FileSpec:
    """Parse one entry of a package's "files" object (see the module docstring)."""
    if not isinstance(value, dict) or "base64" in value:
        return FileSpec(content=_parse_bytes(value, where))
    unknown = set(value) - {"content", "mode", "symlink", "directory"}
    if unknown:
        raise RepoBuildError(f"{where}: unknown keys {sorted(unknown)}")
    if "symlink" in value:
        return FileSpec(symlink_to=str(value["symlink"]))
    if value.get("directory"):
        return FileSpec(directory=True, mode=_parse_mode(value.get("mode", 0o755), where))
    return FileSpec(
        content=_parse_bytes(value.get("content", ""), where),
        mode=_parse_mode(value.get("mode", 0o644), where),
    )


def package_from_json(value: Mapping[str, Any]) -> PackageSpec:
    """Parse one package object of SPEC.json."""
    known = {item.name for item in dataclasses.fields(PackageSpec)}
    unknown = set(value) - known
    name = value.get("name", "?")
    if unknown:
        raise RepoBuildError(f"package {name}: unknown keys {sorted(unknown)}")
    arguments = dict(value)
    arguments["files"] = {
        path: file_spec_from_json(content, f"package {name}: file {path}")
        for path, content in value.get("files", {}).items()
    }
    try:
        return PackageSpec(**arguments)
    except TypeError as error:
        raise RepoBuildError(f"package {name}: {error}") from error


def repo_from_json(value: Mapping[str, Any]) -> RepoSpec:
    """Parse SPEC.json, without its "key" object, into a RepoSpec."""
    known = {item.name for item in dataclasses.fields(RepoSpec)} | {"key"}
    unknown = set(value) - known
    if unknown:
        raise RepoBuildError(f"unknown keys in the repository spec: {sorted(unknown)}")
    if "components" not in value:
        raise RepoBuildError('the repository spec has no "components" object')
    arguments = {name: item for name, item in value.items() if name != "key"}
    arguments["components"] = {
        component: [package_from_json(package) for package in packages]
        for component, packages in value["components"].items()
    }
    arguments["date"] = _parse_time(value.get("date"))
    arguments["valid_until"] = _parse_time(value.get("valid_until"))
    for name in ("compressions", "release_checksums"):
        if name in value:
            arguments[name] = tuple(value[name])
    return RepoSpec(**arguments)


def key_from_json(gnupghome: Path, value: Mapping[str, Any]) -> GpgKey:
    """Return the key of SPEC.json's "key" object: reused from `gnupghome` or generated."""
    uid = str(value.get("uid", DEFAULT_UID))
    existing = GpgKey.find(gnupghome, uid) if gnupghome.exists() else None
    if existing is not None:
        return existing
    return GpgKey.generate(
        gnupghome,
        uid,
        algorithm=str(value.get("algorithm", "ed25519")),
        signing_subkey=bool(value.get("signing_subkey", True)),
        expire=str(value.get("expire", "never")),
    )


def _command_build(arguments: argparse.Namespace) -> dict[str, Any]:
    spec_json = json.loads(Path(arguments.spec).read_text())
    spec = repo_from_json(spec_json)
    gnupghome = Path(arguments.gnupghome).absolute()
    key = key_from_json(gnupghome, spec_json.get("key", {}))
    try:
        key_out = Path(arguments.key_out or gnupghome).absolute()
        key_out.mkdir(parents=True, exist_ok=True)
        key_files = {
            "asc": key.export_armored(key_out / "repo-key.asc"),
            "gpg": key.export_binary(key_out / "repo-key.gpg"),
        }
        built = build_repo(Path(arguments.out_dir).absolute(), spec, key)
    finally:
        key.stop_agent()
    summary = built.to_json(key_files)
    summary["fingerprint"] = key.fingerprint
    summary["signing_fingerprint"] = key.signing_fingerprint
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build signed Debian repositories for tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build a repository from a JSON spec")
    build.add_argument("spec", help="path of the JSON repository spec")
    build.add_argument("out_dir", help="directory that receives pool/ and dists/")
    build.add_argument("--gnupghome", required=True, help="gpg home with the signing key")
    build.add_argument("--key-out", help="directory for repo-key.asc and repo-key.gpg")
    arguments = parser.parse_args(argv)
    try:
        summary = _command_build(arguments)
    except (RepoBuildError, GpgError, OSError, ValueError) as error:
        print(f"debrepo: {error}", file=sys.stderr)
        return 1
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
