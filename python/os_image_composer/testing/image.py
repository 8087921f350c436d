"""Inspect a built disk image without mounting it, and boot it to run commands.

Files are read from the image itself: ``debugfs`` (e2fsprogs) opens an ext2, ext3 or ext4
partition at its byte offset inside the raw disk, read-only. When no artifact is an uncompressed
raw disk, the first uncompressed artifact is converted to raw with ``qemu-img`` first. Booting uses
`os_image_composer.testing.qemu`, which opens the disk with ``snapshot=on``, so a boot never
changes the image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from os_image_composer.build import BuildResult
from os_image_composer.errors import ComposerError
from os_image_composer.template import ImageTemplate
from os_image_composer.testing import qemu

__all__ = ["BuiltImage", "ImageInspectionError", "Login"]

EXT_FILE_SYSTEMS = ("ext2", "ext3", "ext4")
DPKG_STATUS = "/var/lib/dpkg/status"


class ImageInspectionError(ComposerError):
    """A file could not be listed or read from a disk image."""

    __module__ = "os_image_composer.testing.image"


@dataclass(frozen=True)
class Login:
    """A user name and plain-text password that the image's getty accepts."""

    user: str
    password: str


BootFactory = Callable[..., qemu.BootedVM]


@dataclass
class BuiltImage:
    """A built image: its build result, its files and installed packages, and its boots.

    `template` is the checked template, whose disk layout gives the partitions' byte offsets.
    `login` is needed only for `run`.
    """

    result: BuildResult
    template: ImageTemplate
    login: Login | None = None
    boot_factory: BootFactory = qemu.boot_image
    _raw: Path | None = field(default=None, repr=False)

    @property
    def path(self) -> Path:
        """The first artifact, as the build wrote it."""
        return self.result.image

    @property
    def raw(self) -> Path:
        """An uncompressed raw copy of the disk: the artifact itself when it is one."""
        if self._raw is None:
            self._raw = self._raw_disk()
        return self._raw

    def _raw_disk(self) -> Path:
        for artifact in self.result.artifacts:
            if artifact.kind == "raw" and artifact.compression == "none":
                return artifact.path
        for artifact in self.result.artifacts:
            if artifact.compression == "none":
                target = Path(tempfile.mkdtemp(prefix="oic-raw-")) / f"{artifact.path.stem}.raw"
                command = ["qemu-img", "convert", "-O", "raw", str(artifact.path), str(target)]
                _run(command)
                return target
        raise ImageInspectionError(
            f"No uncompressed artifact in {self.result.output_dir}: add `- type: raw` to "
            "disk.artifacts to inspect the image"
        )

    def _partition_of(self, path: str) -> tuple[dict[str, Any], str]:
        """Return the partition holding `path` and the path inside that file system."""
        target = PurePosixPath(path)
        if not target.is_absolute():
            raise ValueError(f"Image paths must be absolute, not {path!r}")
        best: tuple[dict[str, Any], PurePosixPath] | None = None
        for partition in self.template.disk_layout["partitions"]:
            mount_point = partition.get("mountPoint")
            if not mount_point or not target.is_relative_to(mount_point):
                continue
            if best is None or len(PurePosixPath(mount_point).parts) > len(best[1].parts):
                best = (partition, PurePosixPath(mount_point))
        if best is None:
            raise ImageInspectionError(f"No partition of the image is mounted above {path}")
        partition, mount_point = best
        if partition["fsType"] not in EXT_FILE_SYSTEMS:
            raise ImageInspectionError(
                f"{path} is on partition {partition['id']} ({partition['fsType']}): only ext2, "
                "ext3 and ext4 partitions can be read"
            )
        inner = "/" / target.relative_to(mount_point)
        return partition, str(inner)

    def _debugfs(self, request: str, path: str) -> bytes:
        partition, inner = self._partition_of(path)
        device = f"{self.raw}?offset={partition['start']}"
        command = ["debugfs", "-R", f'{request} "{inner}"', device]
        completed = subprocess.run(command, capture_output=True, check=False)
        # debugfs exits 0 even when the request fails, and then writes the reason to stderr.
        errors = [
            line
            for line in completed.stderr.decode(errors="replace").splitlines()
            if line and not line.startswith("debugfs ")
        ]
        if completed.returncode != 0 or errors:
            raise ImageInspectionError(
                f"debugfs {request} {path} in {self.raw} failed: {'; '.join(errors)}"
            )
        return completed.stdout

    def list_files(self, path: str = "/") -> list[str]:
        """List the names in the folder `path` of the image, sorted, without ``.`` and ``..``."""
        output = self._debugfs("ls -p", path).decode(errors="surrogateescape")
        names = set()
        # Each entry is /inode/mode/uid/gid/name/size/.
        for line in output.splitlines():
            fields = line.split("/")
            if len(fields) >= 7 and fields[5] not in ("", ".", ".."):
                names.add("/".join(fields[5:-2]))
        return sorted(names)

    def read_file(self, path: str) -> bytes:
        """Return the content of the file `path` in the image. Symbolic links are not
        followed."""
        return self._debugfs("cat", path)

    def read_text(self, path: str) -> str:
        """Return the file `path` decoded as UTF-8."""
        return self.read_file(path).decode()

    def packages(self) -> dict[str, str]:
        """Map each package that dpkg lists as installed in the image to its version."""
        status = self.read_text(DPKG_STATUS)
        installed: dict[str, str] = {}
        for stanza in re.split(r"\n\s*\n", status):
            fields = dict(_control_fields(stanza))
            if fields.get("Status", "").endswith(" installed") and "Package" in fields:
                installed[fields["Package"]] = fields.get("Version", "")
        return installed

    def boot(self, **options: Any) -> qemu.BootedVM:
        """Describe a VM that boots the image; takes `qemu.boot_image` options.

        Use the result in a ``with`` block.
        """
        return self.boot_factory(self.path, **options)

    def run(self, command: str, *, timeout: float = 60.0) -> str:
        """Boot the image, log in with `login`, run `command` in a shell, then stop QEMU.

        Returns the command's output. `timeout` applies to each wait under KVM and is scaled
        for TCG. Raises `GuestCommandError` when the command exits with a nonzero status. QEMU
        is terminated rather than the guest powered off, because the login need not be root
        and the disk's snapshot overlay discards every guest write anyway.
        """
        if self.login is None:
            raise ValueError("run needs a login: pass login=Login(user, password)")
        with self.boot(timeout=timeout) as vm:
            vm.login(self.login.user, self.login.password)
            return vm.run(command)


def _control_fields(stanza: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in stanza.splitlines():
        if line[:1] in (" ", "\t") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields.append((key, value.strip()))
    return fields


def _run(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise ImageInspectionError(f"{command[0]} not found: install it to inspect images")
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise ImageInspectionError(f"{' '.join(command)} failed: {completed.stderr.strip()}")
