"""The entry point for scripts: one configuration, and builds that use it."""

from __future__ import annotations

import asyncio
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from os_image_composer.build import BuildResult
from os_image_composer.cache import PackageCache
from os_image_composer.chroot import ChrootEnv
from os_image_composer.config import Config
from os_image_composer.provider import Provider
from os_image_composer.resolution import Resolution
from os_image_composer.template import ImageTemplate, ProgressCallback

__all__ = ["Composer"]

TemplateSource = ImageTemplate | str | PathLike[str]
Progress = ProgressCallback | Literal["text"] | bool | None


class Composer:
    """Builds images with one configuration.

    `Composer()` loads the configuration like the command line does, and keyword arguments
    override it like the global flags (``cache_dir``, ``work_dir``, ``temp_dir``, ``workers``,
    ``log_level``, ``log_file``). A template passed as an `ImageTemplate` is read again from its
    file with this configuration.

    Builds from several threads or asyncio tasks may run at once: each releases the GIL while it
    works. Builds of the same ``systemConfig.name`` take turns on a lock, and builds of
    different names share only the caches, which have their own locks.

    SIGINT (Ctrl-C) during a build ends the Python process, not only the build: once a build
    has mounted anything, the core handles SIGINT and SIGTERM by releasing every mount of the
    process, stopping its child processes and exiting with status 130 (143 for SIGTERM). No
    `KeyboardInterrupt` is raised, Python's cleanup (``finally`` blocks, ``atexit``) does not
    run, and the handlers stay installed until the process exits. The package cache keeps only
    verified files and an image root is recorded only when complete, so the caches stay
    usable. Before the first mount in the process, SIGINT reaches Python as usual and
    `KeyboardInterrupt` is raised when the native call returns, after the build has finished.

    NOTE: only SIGINT after the first mount is tested; the case before it follows from Python's
    signal handling and is not checked by a test.
    """

    __module__ = "os_image_composer"

    def __init__(self, config: Config | None = None, **overrides: Any) -> None:
        base = config or Config.load()
        self.config = base.override(**overrides) if overrides else base

    @classmethod
    def from_file(cls, config_file: str | PathLike[str], **overrides: Any) -> Composer:
        """Load the configuration file `config_file` (a missing file raises `ConfigError`)."""
        return cls(Config.load(config_file, **overrides))

    @property
    def cache(self) -> PackageCache:
        """The package cache, metadata cache and work folders of this configuration."""
        return PackageCache(self.config)

    def providers(self) -> list[Provider]:
        """List the embedded providers with this configuration's replacement repositories."""
        return Provider.all(self.config)

    def provider(self, provider_id: str) -> Provider:
        """Return one provider; raises `ConfigError` for an unknown id."""
        return Provider.get(provider_id, self.config)

    def chroot(self, provider_id: str) -> ChrootEnv:
        """Return the chroot environment of `provider_id` in this configuration's work folder."""
        return ChrootEnv(provider_id, self.config)

    def template(self, template: TemplateSource) -> ImageTemplate:
        """Read and check a template file with this configuration."""
        if isinstance(template, ImageTemplate):
            if template.path is None:
                raise TypeError("builds need a template read from a file, not from a dictionary")
            template = template.path
        return ImageTemplate.from_file(template, self.config)

    def resolve(
        self,
        template: TemplateSource,
        *,
        offline: bool = False,
        with_recommends: bool = False,
        dotfile: str | PathLike[str] | None = None,
    ) -> Resolution:
        """Resolve the packages of `template`, like ``os-image-composer resolve``."""
        checked = self.template(template)
        return checked.resolve(offline=offline, with_recommends=with_recommends, dotfile=dotfile)

    def build(
        self,
        template: TemplateSource,
        *,
        offline: bool = False,
        with_recommends: bool = False,
        dotfile: str | PathLike[str] | None = None,
        progress: Progress = None,
    ) -> BuildResult:
        """Build the image of `template`, like ``os-image-composer build``; needs root.

        `offline` uses only cached metadata, `with_recommends` installs Recommends too, and
        `dotfile` receives the dependency graph in Graphviz DOT. `progress` receives the fetch
        events of `ImageTemplate.fetch` (a callable such as `TqdmProgress`), or ``"text"`` or
        True for the terminal display. Raises the `ComposerError` subclass of the failed stage.
        """
        checked = self.template(template)
        return checked.build(
            offline=offline, with_recommends=with_recommends, dotfile=dotfile, progress=progress
        )

    async def build_async(
        self,
        template: TemplateSource,
        *,
        offline: bool = False,
        with_recommends: bool = False,
        dotfile: str | PathLike[str] | None = None,
        progress: Progress = None,
    ) -> BuildResult:
        """Build like `build`, in a worker thread, so the event loop keeps running.

        Cancelling the awaiting task does not stop the build: the thread runs to the end and
        its result is dropped.
        """
        return await asyncio.to_thread(
            self.build,
            template,
            offline=offline,
            with_recommends=with_recommends,
            dotfile=dotfile,
            progress=progress,
        )

    def output_dir(self, template: TemplateSource) -> Path:
        """Return ``{work_dir}/{provider-id}/imagebuild/{systemConfig.name}/`` for `template`."""
        checked = self.template(template)
        name = checked.merged()["systemConfig"]["name"]
        return self.config.work_dir / checked.provider_id / "imagebuild" / str(name)

    def __repr__(self) -> str:
        return f"Composer({self.config!r})"
