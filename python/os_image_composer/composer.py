"""The entry point for scripts: one configuration, and builds that use it."""

from __future__ import annotations

import asyncio
import contextlib
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from os_image_composer._native import CancelToken
from os_image_composer.build import BuildResult
from os_image_composer.cache import PackageCache
from os_image_composer.chroot import ChrootEnv
from os_image_composer.config import Config
from os_image_composer.errors import CancellationError
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

    Ctrl-C (SIGINT, or a Jupyter kernel interrupt) during a build, resolve, fetch or chroot
    call made from the main thread cancels that call and raises `KeyboardInterrupt` once it
    has stopped: its child processes get SIGTERM (SIGKILL after 5 s), its downloads and loops
    stop at their next check, its mounts, loop devices and temporary files are released, and
    the previous output folder stays. The package cache keeps only verified files and an image
    root is recorded only when complete, so the caches stay usable and the process (or kernel)
    can build again. Python runs signal handlers only in the main thread: a build running in
    another thread is stopped with a `CancelToken` passed as ``cancel=`` (it then raises
    `CancellationError`), and cancelling the task of `build_async` stops its build the same
    way. SIGTERM still ends the process with status 143 after releasing every mount.
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
        cancel: CancelToken | None = None,
    ) -> BuildResult:
        """Build the image of `template`, like ``os-image-composer build``; needs root.

        `offline` uses only cached metadata, `with_recommends` installs Recommends too, and
        `dotfile` receives the dependency graph in Graphviz DOT. `progress` receives the fetch
        events of `ImageTemplate.fetch` (a callable such as `TqdmProgress`), or ``"text"`` or
        True for the terminal display. `cancel.cancel()` stops the build from another thread.
        Raises the `ComposerError` subclass of the failed stage, `KeyboardInterrupt` when the
        build was interrupted, and `CancellationError` when it was cancelled through `cancel`.
        """
        checked = self.template(template)
        return checked.build(
            offline=offline,
            with_recommends=with_recommends,
            dotfile=dotfile,
            progress=progress,
            cancel=cancel,
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

        Cancelling the awaiting task stops the build: the task waits until the build has
        released its mounts and temporary files, then raises `asyncio.CancelledError`.
        """
        token = CancelToken()
        worker = asyncio.ensure_future(
            asyncio.to_thread(
                self.build,
                template,
                offline=offline,
                with_recommends=with_recommends,
                dotfile=dotfile,
                progress=progress,
                cancel=token,
            )
        )
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            token.cancel()
            # The build raises CancellationError once it has stopped; the task's cancellation is
            # what the caller asked for.
            with contextlib.suppress(CancellationError):
                await worker
            raise

    def output_dir(self, template: TemplateSource) -> Path:
        """Return ``{work_dir}/{provider-id}/imagebuild/{systemConfig.name}/`` for `template`."""
        checked = self.template(template)
        name = checked.merged()["systemConfig"]["name"]
        return self.config.work_dir / checked.provider_id / "imagebuild" / str(name)

    def __repr__(self) -> str:
        return f"Composer({self.config!r})"
