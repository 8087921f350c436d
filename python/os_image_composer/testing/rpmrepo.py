"""Build small signed RPM repositories for tests.

The builder writes a minimal spec file per package and builds it with rpmbuild, signs the
packages with rpmsign, indexes the folder with createrepo_c and signs repodata/repomd.xml with
gpg into repodata/repomd.xml.asc. The keys live in a private GNUPGHOME and have no passphrase.

Python callers use `RpmPackageSpec`, `RpmRepoSpec` and `build_rpm_repo`. Other languages run
this file as a script:

    python3 rpmrepo.py build SPEC.json OUT_DIR --gnupghome DIR [--key-out DIR]

It writes the repository key as `<key-out>/repo-key.asc` and a second key, which signs the
packages that ask for `"sign": "other"`, as `<key-out>/other-key.asc`. It stops the gpg-agent of
DIR when it finishes and prints a JSON summary on stdout (see `BuiltRpmRepo.to_json`).

SPEC.json is one object. Every key except `packages` is optional:

    {
      "key": {"algorithm": "rsa3072"},   # or "ed25519"
      "sign_repomd": true,
      "compression": "gz",                # primary.xml compression: "gz" or "xz"
      "checksum": "sha256",               # repodata and package checksums: "sha256" or "sha512"
      "packages": [
        {
          "name": "hello", "version": "2.10", "release": "3", "epoch": 1,
          "arch": "noarch",               # or "x86_64"
          "requires": ["libfoo >= 1.2", "(a or b)", "/usr/bin/sh"],
          "provides": ["greeter = 1"], "conflicts": [], "obsoletes": ["hello-old < 2"],
          "files": {"/usr/bin/hello": "#!/bin/sh\\necho hi\\n"},
          "directories": ["/usr/share/hello"],   # owned directories, mode 0755
          "symlinks": {"/usr/bin/hi": "hello"},  # path: link target
          "host_files": {"/usr/bin/sh": "/bin/busybox"},  # path: host file copied in
          "post": "echo done > /var/log/hello", # %post scriptlet body
          "post_interpreter": "/bin/sh",        # or "<lua>" for rpm's built-in Lua
          "sign": "repo"                  # "repo" (default), "other" or null for unsigned
        }
      ]
    }
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from .debrepo import GpgError, GpgKey
except ImportError:  # run as a script: the folder of this file is on sys.path
    from debrepo import GpgError, GpgKey  # type: ignore[no-redef,import-not-found]

REPO_UID = "os-image-composer test RPM repository <test-rpm@example.invalid>"
OTHER_UID = "os-image-composer unknown signer <other-rpm@example.invalid>"
ARCHES = ("noarch", "x86_64")
SIGNERS = ("repo", "other", None)
# createrepo_c 0.20 (Debian 12) has no zstd; oic-rpm tests zstd on its own.
COMPRESSIONS = ("gz", "xz")
CHECKSUMS = ("sha256", "sha512")
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
VERSION_RE = re.compile(r"[A-Za-z0-9._+~^]+")

# rpmbuild must not strip files or write debug packages, and every spec sets "AutoReqProv: no",
# so the packages contain exactly the files and dependencies that the spec lists.
RPMBUILD_DEFINES = (
    "debug_package %{nil}",
    "__os_install_post %{nil}",
    "_build_id_links none",
)


class RpmRepoBuildError(RuntimeError):
    """A repository could not be built: invalid spec or a failed rpmbuild or createrepo_c."""


@dataclass
class RpmPackageSpec:
    """A binary package. Dependency entries use spec file syntax, e.g. "foo >= 1.0-2"."""

    name: str
    version: str = "1.0"
    release: str = "1"
    epoch: int | None = None
    arch: str = "noarch"
    requires: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    obsoletes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    directories: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)
    host_files: dict[str, str] = field(default_factory=dict)
    post: str | None = None
    post_interpreter: str = "/bin/sh"
    sign: str | None = "repo"

    @property
    def paths(self) -> list[str]:
        """Every path the package owns: files, directories, symlinks and copied host files."""
        return [*self.files, *self.directories, *self.symlinks, *self.host_files]

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"


@dataclass
class RpmRepoSpec:
    packages: list[RpmPackageSpec]
    key_algorithm: str = "rsa3072"
    sign_repomd: bool = True
    compression: str = "gz"
    checksum: str = "sha256"
    """The checksum type createrepo_c writes for repodata files and packages."""


@dataclass
class BuiltRpm:
    spec: RpmPackageSpec
    path: Path
    location: str
    size: int
    sha256: str


@dataclass
class BuiltRpmRepo:
    root: Path
    repomd: Path
    repomd_asc: Path | None
    key: GpgKey
    other_key: GpgKey
    packages: list[BuiltRpm]

    def to_json(self, key_files: Mapping[str, Path]) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "repomd": str(self.repomd),
            "repomd_asc": str(self.repomd_asc) if self.repomd_asc else None,
            "fingerprint": self.key.fingerprint,
            "other_fingerprint": self.other_key.fingerprint,
            "keys": {name: str(path) for name, path in key_files.items()},
            "packages": [
                {
                    "name": built.spec.name,
                    "arch": built.spec.arch,
                    "location": built.location,
                    "path": str(built.path),
                    "size": built.size,
                    "sha256": built.sha256,
                    "signed_by": built.spec.sign,
                }
                for built in self.packages
            ],
        }


def validate_package(spec: RpmPackageSpec) -> None:
    if not NAME_RE.fullmatch(spec.name):
        raise RpmRepoBuildError(f"invalid package name {spec.name!r}")
    for label, value in (("version", spec.version), ("release", spec.release)):
        if not VERSION_RE.fullmatch(value):
            raise RpmRepoBuildError(f"package {spec.name}: invalid {label} {value!r}")
    if spec.arch not in ARCHES:
        raise RpmRepoBuildError(f"package {spec.name}: arch must be one of {ARCHES}")
    if spec.sign not in SIGNERS:
        raise RpmRepoBuildError(f"package {spec.name}: sign must be one of {SIGNERS}")
    entries = [*spec.requires, *spec.provides, *spec.conflicts, *spec.obsoletes]
    for entry in entries:
        if "\n" in entry or not entry.strip():
            raise RpmRepoBuildError(f"package {spec.name}: invalid dependency entry {entry!r}")
    for path in spec.paths:
        if not path.startswith("/") or ".." in path.split("/") or "\n" in path:
            raise RpmRepoBuildError(f"package {spec.name}: invalid file path {path!r}")
    for source in spec.host_files.values():
        if not Path(source).is_file():
            raise RpmRepoBuildError(f"package {spec.name}: host file {source!r} not found")
    if "\n" in spec.post_interpreter or not spec.post_interpreter.strip():
        raise RpmRepoBuildError(
            f"package {spec.name}: invalid post_interpreter {spec.post_interpreter!r}"
        )


def spec_file_text(spec: RpmPackageSpec) -> str:
    """Return the rpm spec file of a package whose files are written by its %install script."""
    lines = [
        f"Name: {spec.name}",
        f"Version: {spec.version}",
        f"Release: {spec.release}",
        f"Summary: Test package {spec.name}",
        "License: MIT",
        f"BuildArch: {spec.arch}",
        "AutoReqProv: no",
    ]
    if spec.epoch is not None:
        lines.append(f"Epoch: {spec.epoch}")
    for tag, entries in (
        ("Requires", spec.requires),
        ("Provides", spec.provides),
        ("Conflicts", spec.conflicts),
        ("Obsoletes", spec.obsoletes),
    ):
        lines.extend(f"{tag}: {entry}" for entry in entries)
    lines += ["", "%description", f"Test package {spec.name}.", "", "%install"]
    lines += _install_lines(spec)
    lines += ["", "%files"]
    lines.extend(shlex.quote(path) for path in (*spec.files, *spec.symlinks, *spec.host_files))
    lines.extend(f"%dir {shlex.quote(path)}" for path in spec.directories)
    if spec.post is not None:
        lines += ["", f"%post -p {spec.post_interpreter}", spec.post]
    return "\n".join(lines) + "\n"


def _install_lines(spec: RpmPackageSpec) -> list[str]:
    """Return the %install commands that create the package's paths under the build root."""
    lines = []
    for path in spec.directories:
        lines.append(f"mkdir -p -m 0755 {shlex.quote(f'%{{buildroot}}{path}')}")
    for path, content in spec.files.items():
        encoded = base64.b64encode(content.encode()).decode()
        target = shlex.quote(f"%{{buildroot}}{path}")
        lines.append(f"mkdir -p $(dirname {target})")
        lines.append(f"echo {encoded} | base64 -d > {target}")
    for path, source in spec.host_files.items():
        target = shlex.quote(f"%{{buildroot}}{path}")
        lines.append(f"mkdir -p $(dirname {target})")
        lines.append(f"cp {shlex.quote(source)} {target}")
    for path, link_target in spec.symlinks.items():
        target = shlex.quote(f"%{{buildroot}}{path}")
        lines.append(f"mkdir -p $(dirname {target})")
        lines.append(f"ln -s {shlex.quote(link_target)} {target}")
    return lines


def _run(command: Sequence[str], description: str) -> None:
    result = subprocess.run(list(command), capture_output=True, check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        message = f"{description} failed with exit code {result.returncode}: {stderr}"
        raise RpmRepoBuildError(message)


def build_rpm(spec: RpmPackageSpec, topdir: Path, out_dir: Path) -> Path:
    """Build one package with rpmbuild into `out_dir` and return its path."""
    validate_package(spec)
    spec_path = topdir / "SPECS" / f"{spec.name}.spec"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(spec_file_text(spec))
    defines = [f"_topdir {topdir}", f"_rpmdir {out_dir}"]
    command = ["rpmbuild", "-bb", "--quiet"]
    for define in (*RPMBUILD_DEFINES, *defines):
        command += ["--define", define]
    _run([*command, str(spec_path)], f"rpmbuild of {spec.name}")
    # rpmbuild's default _build_name_fmt puts each package in a folder named after its arch.
    return out_dir / spec.arch / spec.file_name


def sign_rpm(path: Path, key: GpgKey) -> None:
    """Add a header signature by `key` with rpmsign."""
    command = [
        "rpmsign",
        "--addsign",
        "--define",
        f"_gpg_name {key.fingerprint}",
        "--define",
        f"_gpg_path {key.gnupghome}",
        "--define",
        f"__gpg {shutil.which('gpg') or '/usr/bin/gpg'}",
        "--define",
        "_gpg_digest_algo sha256",
        "--define",
        "_gpg_sign_cmd_extra_args --pinentry-mode loopback --passphrase ''",
        str(path),
    ]
    _run(command, f"rpmsign of {path.name}")


def build_rpm_repo(spec: RpmRepoSpec, out_dir: Path, gnupghome: Path) -> BuiltRpmRepo:
    """Build, sign and index every package of `spec` under `out_dir`."""
    if spec.compression not in COMPRESSIONS:
        raise RpmRepoBuildError(f"compression must be one of {COMPRESSIONS}")
    if spec.checksum not in CHECKSUMS:
        raise RpmRepoBuildError(f"checksum must be one of {CHECKSUMS}, not {spec.checksum!r}")
    key = _find_or_generate(gnupghome, REPO_UID, spec.key_algorithm)
    other_key = _find_or_generate(gnupghome, OTHER_UID, spec.key_algorithm)

    packages_dir = out_dir / "Packages"
    packages_dir.mkdir(parents=True, exist_ok=True)
    built = []
    with tempfile.TemporaryDirectory(prefix="oic-rpmbuild-") as topdir:
        for package in spec.packages:
            path = build_rpm(package, Path(topdir), packages_dir)
            if package.sign is not None:
                sign_rpm(path, key if package.sign == "repo" else other_key)
            data = path.read_bytes()
            built.append(
                BuiltRpm(
                    spec=package,
                    path=path,
                    location=path.relative_to(out_dir).as_posix(),
                    size=len(data),
                    sha256=_sha256(data),
                )
            )

    command = [
        "createrepo_c",
        "--no-database",
        "--general-compress-type",
        spec.compression,
        "--checksum",
        spec.checksum,
    ]
    _run([*command, str(out_dir)], "createrepo_c")
    repomd = out_dir / "repodata" / "repomd.xml"
    repomd_asc = None
    if spec.sign_repomd:
        repomd_asc = key.sign(
            repomd, repomd.with_suffix(".xml.asc"), clearsign=False, with_subkey=False
        )
    return BuiltRpmRepo(out_dir, repomd, repomd_asc, key, other_key, built)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _find_or_generate(gnupghome: Path, uid: str, algorithm: str) -> GpgKey:
    found = GpgKey.find(gnupghome, uid)
    if found is not None:
        return found
    return GpgKey.generate(gnupghome, uid, algorithm=algorithm, signing_subkey=False)


def package_from_json(value: Mapping[str, Any]) -> RpmPackageSpec:
    known = {field_name for field_name in RpmPackageSpec.__dataclass_fields__}
    unknown = set(value) - known
    if unknown:
        raise RpmRepoBuildError(f"unknown package keys: {sorted(unknown)}")
    return RpmPackageSpec(**value)


def repo_from_json(value: Mapping[str, Any]) -> RpmRepoSpec:
    return RpmRepoSpec(
        packages=[package_from_json(package) for package in value["packages"]],
        key_algorithm=value.get("key", {}).get("algorithm", "rsa3072"),
        sign_repomd=value.get("sign_repomd", True),
        compression=value.get("compression", "gz"),
        checksum=value.get("checksum", "sha256"),
    )


def _command_build(arguments: argparse.Namespace) -> dict[str, Any]:
    spec = repo_from_json(json.loads(Path(arguments.spec).read_text()))
    gnupghome = Path(arguments.gnupghome)
    key_out = Path(arguments.key_out or arguments.gnupghome)
    key_out.mkdir(parents=True, exist_ok=True)
    out_dir = Path(arguments.out_dir)
    try:
        repo = build_rpm_repo(spec, out_dir, gnupghome)
        key_files = {
            "asc": repo.key.export_armored(key_out / "repo-key.asc"),
            "other_asc": repo.other_key.export_armored(key_out / "other-key.asc"),
        }
    finally:
        GpgKey(gnupghome, "", "", "").stop_agent()
    return repo.to_json(key_files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build signed RPM repositories for tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build a repository from a JSON spec")
    build.add_argument("spec", help="path of the JSON repository spec")
    build.add_argument("out_dir", help="directory that receives Packages/ and repodata/")
    build.add_argument("--gnupghome", required=True, help="gpg home with the signing keys")
    build.add_argument("--key-out", help="directory for repo-key.asc and other-key.asc")
    arguments = parser.parse_args(argv)
    try:
        summary = _command_build(arguments)
    except (RpmRepoBuildError, GpgError, OSError, ValueError, KeyError, TypeError) as error:
        print(f"rpmrepo: {error}", file=sys.stderr)
        return 1
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
