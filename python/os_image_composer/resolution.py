"""The packages stage: which packages an image installs, and why."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

__all__ = ["Dependency", "RepositoryStatus", "Resolution", "ResolvedPackage"]


@dataclass(frozen=True)
class ResolvedPackage:
    """A package chosen for the image, with where to get it and how to check it."""

    name: str
    version: str
    architecture: str
    repository: str
    filename: str
    """The pool path relative to the repository, as in the index's `Filename` field."""
    url: str
    size: int
    checksum_type: str
    """``sha256`` for Debian, and for RPM the type primary.xml gives, such as ``sha512``."""
    checksum: str
    """The lowercase hexadecimal digest of the package file."""
    sha256: str | None
    """`checksum` when `checksum_type` is ``sha256``, else None."""
    installed_size: int | None
    """In KiB, as the index gives it."""
    essential: bool


@dataclass(frozen=True)
class Dependency:
    """A dependency edge: `source` needs `target`, the package chosen for one dependency group."""

    source: str
    target: str
    field: str
    relation: str
    provided: str | None
    """The virtual name when `target` satisfies the dependency through its Provides."""


@dataclass(frozen=True)
class RepositoryStatus:
    """The source and signature status of a repository's metadata in this run."""

    id: str
    name: str
    url: str
    source: str
    """``network``, ``revalidated`` (HTTP 304), ``cache`` (offline) or ``local``."""
    signature: dict[str, str]
    """``{"status": "verified", "fingerprint": ..., "key": ...}`` or ``{"status": "skipped"}``."""
    packages: int


class Resolution:
    """The packages an image installs, the dependency graph and the metadata it came from."""

    __module__ = "os_image_composer"

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.provider_id: str = data["provider_id"]
        self.packages = [ResolvedPackage(**package) for package in data["packages"]]
        self.dependencies = [
            Dependency(
                source=edge["from"],
                target=edge["to"],
                field=edge["field"],
                relation=edge["relation"],
                provided=edge["provided"],
            )
            for edge in data["edges"]
        ]
        self.repositories = [RepositoryStatus(**repository) for repository in data["repositories"]]
        self.metadata_seconds: float = data["metadata_seconds"]
        self.solve_seconds: float = data["solve_seconds"]

    def to_dot(self) -> str:
        """Return the dependency graph in Graphviz DOT."""
        return str(self._data["dot"])

    def get(self, name: str) -> ResolvedPackage | None:
        """Return the chosen package called `name`, if any."""
        return next((package for package in self.packages if package.name == name), None)

    def __contains__(self, name: object) -> bool:
        return any(package.name == name for package in self.packages)

    def __len__(self) -> int:
        return len(self.packages)

    @property
    def download_size(self) -> int:
        """The total size of the package files, in bytes."""
        return sum(package.size for package in self.packages)

    def __repr__(self) -> str:
        return f"Resolution(provider_id={self.provider_id!r}, packages={len(self.packages)})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p.name)}</td><td>{html.escape(p.version)}</td>"
            f"<td>{html.escape(p.repository)}</td><td>{p.size}</td></tr>"
            for p in self.packages
        )
        return (
            f"<p>{len(self.packages)} packages for {html.escape(self.provider_id)}</p>"
            "<table><tr><th>package</th><th>version</th><th>repository</th><th>bytes</th></tr>"
            f"{rows}</table>"
        )
