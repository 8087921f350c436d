"""The chroot environment of a provider: its state on disk and its preparation."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from os_image_composer import _native
from os_image_composer.config import Config
from os_image_composer.errors import ChrootError
from os_image_composer.template import ImageTemplate

__all__ = ["ChrootEnv", "ChrootPreparation", "ChrootStatus"]

# The logger that receives the records of the Rust crate oic-chroot.
_CORE_LOGGER = "os_image_composer.oic_chroot"
# Messages of oic-chroot that say why the environment or its snapshot was not reused.
_REASON_PREFIXES = ("rebuilding the chroot environment: ", "not restoring the snapshot: ")


@dataclass(frozen=True)
class ChrootStatus:
    """The environment and its snapshot as they are on disk, read without locking."""

    root: Path
    exists: bool
    """Whether ``chrootenv/`` and its manifest both exist."""
    packages: int
    """The package count of the environment's manifest, 0 without one."""
    product_version: str | None
    """The os-image-composer version that built the environment."""
    snapshot: Path
    snapshot_exists: bool
    """Whether the snapshot tarball and its manifest both exist."""
    snapshot_matches: bool
    """Whether the snapshot's manifest records the same inputs as the environment's."""
    differences: tuple[str, ...]
    """Why the next build may not reuse the environment as it is: the inputs that differ
    between the environment and its snapshot, a missing manifest, or another product version.
    The next build decides with its resolved package set, which this check does not know."""


@dataclass(frozen=True)
class ChrootPreparation:
    """The result of `ChrootEnv.prepare`."""

    root: Path
    outcome: str
    """``reused``, ``restored`` or ``created``."""
    packages: int
    fetch: dict[str, Any]
    """The fetch report of the environment's package files."""
    reasons: tuple[str, ...]
    """Why the environment or its snapshot was not reused, as the core logged it; empty when
    it was reused or did not exist yet."""


class ChrootEnv:
    """The chroot environment of one provider below ``{work_dir}/{provider-id}/``.

    The environment holds the provider's essential set and build tools. Builds reuse it while
    its manifest, ``chrootenv.manifest.json``, matches their inputs: the provider's repositories
    and keys, and each package's name, version, architecture and SHA256. Otherwise they restore
    it from the snapshot ``chrootbuild/chrootenv.tar.gz`` when the snapshot's manifest matches,
    or create it.
    """

    __module__ = "os_image_composer"

    def __init__(self, provider_id: str, config: Config | None = None) -> None:
        self.provider_id = provider_id
        self.config = config or Config.load()

    @property
    def folder(self) -> Path:
        """``{work_dir}/{provider-id}/``."""
        return self.config.work_dir / self.provider_id

    @property
    def root(self) -> Path:
        return self.folder / "chrootenv"

    @property
    def manifest_path(self) -> Path:
        return self.folder / "chrootenv.manifest.json"

    @property
    def snapshot_path(self) -> Path:
        return self.folder / "chrootbuild" / "chrootenv.tar.gz"

    @property
    def snapshot_manifest_path(self) -> Path:
        return self.folder / "chrootbuild" / "chrootenv.manifest.json"

    def manifest(self) -> dict[str, Any] | None:
        """Return the environment's manifest, or None when there is none."""
        return _read_json(self.manifest_path)

    def snapshot_manifest(self) -> dict[str, Any] | None:
        """Return the snapshot's manifest (with the tarball's size and SHA256), if any."""
        return _read_json(self.snapshot_manifest_path)

    def status(self) -> ChrootStatus:
        """Read the environment's and the snapshot's manifests and compare them."""
        manifest = self.manifest()
        snapshot = self.snapshot_manifest()
        exists = self.root.is_dir() and manifest is not None
        snapshot_exists = self.snapshot_path.is_file() and snapshot is not None
        differences = _differences(self.root.is_dir(), manifest, snapshot)
        return ChrootStatus(
            root=self.root,
            exists=exists,
            packages=len(manifest["packages"]) if manifest else 0,
            product_version=manifest["product_version"] if manifest else None,
            snapshot=self.snapshot_path,
            snapshot_exists=snapshot_exists,
            snapshot_matches=bool(manifest and snapshot and not _compare(snapshot, manifest)),
            differences=tuple(differences),
        )

    def prepare(
        self, template: ImageTemplate | str, *, offline: bool = False, progress: bool = False
    ) -> ChrootPreparation:
        """Create, restore or reuse the environment for `template`; needs root.

        Resolves the provider's essential set and build tools, fetches them into the package
        cache and hands them to the core. Raises `ChrootError` when creation fails.
        """
        path = template.path if isinstance(template, ImageTemplate) else template
        if path is None:
            raise TypeError("prepare needs a template read from a file")
        checked = ImageTemplate.from_file(path, self.config)
        if checked.provider_id != self.provider_id:
            raise ChrootError(
                f"Template {path} targets {checked.provider_id}, not {self.provider_id}"
            )
        collector = _ReasonCollector()
        logger = logging.getLogger(_CORE_LOGGER)
        logger.addHandler(collector)
        try:
            report = checked.prepare_chroot(offline=offline, progress=progress)
        finally:
            logger.removeHandler(collector)
        return ChrootPreparation(
            root=Path(report["root"]),
            outcome=str(report["outcome"]),
            packages=int(report["packages"]),
            fetch=dict(report["fetch"]),
            reasons=tuple(collector.reasons),
        )

    def __repr__(self) -> str:
        return f"ChrootEnv(provider_id={self.provider_id!r}, root={str(self.root)!r})"


class _ReasonCollector(logging.Handler):
    """Keeps the core's explanations of why an environment was not reused."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for prefix in _REASON_PREFIXES:
            if message.startswith(prefix):
                self.reasons.append(message)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return dict(data)


def _differences(
    root_exists: bool, manifest: dict[str, Any] | None, snapshot: dict[str, Any] | None
) -> list[str]:
    if not root_exists:
        return ["no chroot environment yet"]
    if manifest is None:
        return ["its manifest is missing (an earlier run was interrupted)"]
    differences: list[str] = []
    if manifest["product_version"] != _native.__version__:
        differences.append(
            f"built by version {manifest['product_version']}, this is {_native.__version__}"
        )
    if snapshot is None:
        differences.append("no snapshot yet")
    else:
        differences += [f"snapshot: {change}" for change in _compare(snapshot, manifest)]
    return differences


def _compare(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Describe the inputs that differ between two manifests, like the core does."""
    changes: list[str] = []
    for key in ("format", "product_version", "provider"):
        if recorded.get(key) != current.get(key):
            changes.append(f"{key} changed")
    before = {(p["name"]): (p["version"], p["sha256"]) for p in recorded.get("packages", [])}
    after = {(p["name"]): (p["version"], p["sha256"]) for p in current.get("packages", [])}
    changes += [f"package {name} added" for name in sorted(after.keys() - before.keys())]
    changes += [f"package {name} removed" for name in sorted(before.keys() - after.keys())]
    changes += [
        f"package {name} changed: {before[name][0]} -> {after[name][0]}"
        for name in sorted(before.keys() & after.keys())
        if before[name] != after[name]
    ]
    return changes
