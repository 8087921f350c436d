"""The package cache: what it holds, and cleaning, pruning and verifying it."""

from __future__ import annotations

import json
from typing import Any, Literal

from os_image_composer import _native
from os_image_composer.config import Config

__all__ = ["PackageCache"]

CleanScope = Literal["packages", "workspace", "all"]


class PackageCache:
    """The caches of one configuration: `{cache_dir}/pkgCache`, metadata and work folders.

    Cleaning and pruning take an exclusive lock on the cache and wait for running builds.
    """

    __module__ = "os_image_composer"

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.load()

    def _paths(self) -> dict[str, Any]:
        arguments = self.config.arguments
        return {key: arguments[key] for key in ("config_file", "cache_dir")}

    def info(self) -> dict[str, Any]:
        """Return sizes and counts per provider: packages, chroot environments, snapshots,
        image builds and metadata."""
        return dict(json.loads(_native.cache_info(**self._paths(), work_dir=self._work_dir())))

    def clean(
        self, scope: CleanScope = "packages", provider: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Delete cached trees. A tree that still contains a mount point is never deleted."""
        data = _native.cache_clean(
            scope, provider, dry_run, **self._paths(), work_dir=self._work_dir()
        )
        return dict(json.loads(data))

    def prune(
        self,
        older_than_days: int | None = None,
        max_size: int | None = None,
        provider: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Delete the least recently used package files: older than `older_than_days`, then
        until the package files take at most `max_size` bytes."""
        data = _native.cache_prune(older_than_days, max_size, provider, dry_run, **self._paths())
        return dict(json.loads(data))

    def verify(self, provider: str, delete: bool = False) -> dict[str, Any]:
        """Check every cached package file of `provider` against its cached metadata, offline.

        A provider with no package cache folder returns a report with nothing checked.
        """
        return dict(json.loads(_native.cache_verify(provider, delete, **self._paths())))

    def _work_dir(self) -> str | None:
        work_dir: str | None = self.config.arguments["work_dir"]
        return work_dir

    def __repr__(self) -> str:
        return f"PackageCache(cache_dir={str(self.config.cache_dir)!r})"
