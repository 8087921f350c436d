"""Image templates: read, merged over the provider's default template, and checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from os_image_composer import _native
from os_image_composer._native import CancelToken
from os_image_composer.build import BuildResult
from os_image_composer.config import Config
from os_image_composer.errors import TemplateError
from os_image_composer.resolution import Resolution

__all__ = ["ImageTemplate", "ProgressCallback"]

ProgressCallback = Callable[[str, str, int], object]
"""Receives ``(event, name, number)`` while package files are fetched."""


class ImageTemplate:
    """A checked image template.

    Creating one reads the template, merges it over its provider's default template and checks
    the result as a whole. Any problem raises `TemplateError`, which lists every error found.
    """

    __module__ = "os_image_composer"

    def __init__(
        self,
        result: dict[str, Any],
        source: str,
        *,
        path: str | None = None,
        text: str | None = None,
        base_dir: str | None = None,
        config: Config | None = None,
    ) -> None:
        self._result = result
        self._source = source
        self._path = path
        self._text = text
        self._base_dir = base_dir
        self._config = config

    @classmethod
    def from_file(cls, path: str | PathLike[str], config: Config | None = None) -> ImageTemplate:
        """Read and check a template file."""
        config = config or Config.load()
        result = json.loads(_native.check_template_file(str(path), **config.arguments))
        return cls(result, str(path), path=str(path), config=config)

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        *,
        base_dir: str | PathLike[str] | None = None,
        config: Config | None = None,
        source: str = "<dict>",
    ) -> ImageTemplate:
        """Check a template given as a dictionary. Relative paths in it point into `base_dir`.

        Values must be what YAML would give: strings, integers, booleans, None, lists and
        dictionaries with string keys. Issues in the raised `TemplateError` have line and column
        0, because a dictionary has no text positions.
        """
        if config is not None and not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {type(config).__name__}")
        _check_plain_data(data, source)
        config_file = None if config is None else config.arguments["config_file"]
        folder = None if base_dir is None else str(Path(base_dir).absolute())
        text = json.dumps(data)
        try:
            result = json.loads(_native.check_template_text(text, source, folder, config_file))
        except TemplateError as error:
            raise _without_positions(error) from None
        return cls(result, source, text=text, base_dir=folder, config=config)

    @property
    def source(self) -> str:
        """The file name, or the label given to `from_dict`."""
        return self._source

    @property
    def path(self) -> Path | None:
        """The template file, or None for a template given as a dictionary."""
        return None if self._path is None else Path(self._path)

    @property
    def provider_id(self) -> str:
        """The provider the template targets, such as ``debian-debian12-x86_64``."""
        return str(self._result["provider_id"])

    def to_dict(self) -> dict[str, Any]:
        """Return the template as written, without the provider's defaults."""
        return dict(self._result["template"])

    def merged(self) -> dict[str, Any]:
        """Return the template merged over the provider's default template."""
        return dict(self._result["merged"])

    def merged_yaml(self) -> str:
        """Return the merged template as YAML."""
        return str(self._result["merged_yaml"])

    @property
    def disk_layout(self) -> dict[str, Any]:
        """The checked disk layout: size, table type and each partition's byte range."""
        return dict(self._result["layout"])

    def resolve(
        self,
        *,
        offline: bool = False,
        with_recommends: bool = False,
        dotfile: str | PathLike[str] | None = None,
    ) -> Resolution:
        """Fetch and verify repository metadata, then resolve the packages the image installs.

        Raises `MetadataError`, `SignatureError`, `ChecksumError` or `ResolutionError`.
        """
        arguments = (self._config or Config.load()).arguments
        data = _native.resolve_template(
            path=self._path,
            text=self._text,
            source=self._source,
            base_dir=self._base_dir,
            offline=offline,
            with_recommends=with_recommends,
            dotfile=None if dotfile is None else str(dotfile),
            config_file=arguments["config_file"],
            cache_dir=arguments["cache_dir"],
            work_dir=arguments["work_dir"],
            workers=arguments["workers"],
        )
        return Resolution(json.loads(data))

    def fetch(
        self,
        *,
        offline: bool = False,
        with_recommends: bool = False,
        progress: ProgressCallback | Literal["text"] | None = None,
    ) -> tuple[Resolution, dict[str, Any]]:
        """Resolve the packages and put every package file, verified, in the package cache.

        `progress` is called as ``progress(event, name, number)`` with the events ``start``
        (name: file count, number: bytes), ``file_started``, ``bytes``, ``file_done`` and
        ``finish``; ``"text"`` draws progress on a terminal. Returns the resolution and the fetch
        report (counts, bytes downloaded, a summary line).
        """
        if self._path is None:
            raise TypeError("fetch needs a template read with ImageTemplate.from_file")
        arguments = (self._config or Config.load()).arguments
        data = json.loads(
            _native.fetch_template(
                self._path,
                offline=offline,
                with_recommends=with_recommends,
                progress=progress,
                config_file=arguments["config_file"],
                cache_dir=arguments["cache_dir"],
                work_dir=arguments["work_dir"],
                workers=arguments["workers"],
            )
        )
        report = dict(data["fetch"])
        report["summary"] = data["summary"]
        return Resolution(data["resolution"]), report

    def prepare_chroot(self, *, offline: bool = False, progress: bool = False) -> dict[str, Any]:
        """Create, restore or reuse the provider's chroot environment; needs root.

        Returns the root path, the outcome (``created``, ``restored`` or ``reused``), the
        package count and the fetch report. Raises `ChrootError` when creation fails.
        """
        if self._path is None:
            raise TypeError("prepare_chroot needs a template read with ImageTemplate.from_file")
        arguments = (self._config or Config.load()).arguments
        data = _native.prepare_chroot(
            self._path,
            offline=offline,
            progress=progress,
            config_file=arguments["config_file"],
            cache_dir=arguments["cache_dir"],
            work_dir=arguments["work_dir"],
            workers=arguments["workers"],
        )
        return dict(json.loads(data))

    def build(
        self,
        *,
        offline: bool = False,
        with_recommends: bool = False,
        dotfile: str | PathLike[str] | None = None,
        progress: ProgressCallback | Literal["text"] | bool | None = None,
        cancel: CancelToken | None = None,
    ) -> BuildResult:
        """Build the image; needs root.

        Runs every stage and returns the artifacts, SBOM paths, stage times and cache use.
        `progress` takes what `fetch` takes, and True for the terminal display. A failed stage
        raises the `ComposerError` subclass of its kind (`BuildError` for the image stages) and
        leaves the previous output folder as it was. Ctrl-C stops the build and raises
        `KeyboardInterrupt`; `cancel.cancel()` from another thread stops it and raises
        `CancellationError` (see `Composer`).
        """
        if self._path is None:
            raise TypeError("build needs a template read with ImageTemplate.from_file")
        arguments = (self._config or Config.load()).arguments
        data = _native.build_template(
            self._path,
            offline=offline,
            with_recommends=with_recommends,
            dotfile=None if dotfile is None else str(dotfile),
            progress=progress,
            config_file=arguments["config_file"],
            cache_dir=arguments["cache_dir"],
            work_dir=arguments["work_dir"],
            workers=arguments["workers"],
            cancel=cancel,
        )
        return BuildResult.from_report(json.loads(data))

    def __repr__(self) -> str:
        return f"ImageTemplate(source={self._source!r}, provider_id={self.provider_id!r})"


_MAX_DEPTH = 64


def _check_plain_data(data: object, source: str) -> None:
    """Raise `TemplateError` for values JSON cannot carry unchanged, naming their key path."""
    problems: list[tuple[str, int, int, str, str]] = []
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    seen: set[int] = set()
    while stack:
        value, path, depth = stack.pop()
        problem = _plain_value_problem(value, depth, id(value) in seen)
        if problem:
            problems.append((source, 0, 0, path, problem))
            continue
        if isinstance(value, dict | list):
            seen.add(id(value))
            stack.extend(_children(value, path, depth))
    if problems:
        problems.sort(key=lambda problem: problem[3])
        raise TemplateError(f"{len(problems)} invalid values in the template", problems)


class _NonStringKey:
    """A dictionary key that is not a string, found while checking a template dictionary."""

    def __init__(self, key: object) -> None:
        self.key = key


def _plain_value_problem(value: object, depth: int, repeated: bool) -> str | None:
    if isinstance(value, _NonStringKey):
        return f"Key {value.key!r} is not a string"
    if depth > _MAX_DEPTH:
        return f"Nesting deeper than {_MAX_DEPTH} levels"
    if repeated:
        return "The value contains itself"
    if isinstance(value, float):
        return f'Number {value!r} is a float: write it as a string, such as "1.10"'
    if value is None or isinstance(value, str | int | list | dict):
        return None
    return f"Unsupported value of type {type(value).__name__}: use strings, numbers and lists"


def _children(
    value: dict[object, object] | list[object], path: str, depth: int
) -> list[tuple[object, str, int]]:
    if isinstance(value, list):
        return [(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
    children: list[tuple[object, str, int]] = []
    for key, item in value.items():
        if not isinstance(key, str):
            children.append((_NonStringKey(key), f"{path}.{key!r}".lstrip("."), depth + 1))
            continue
        children.append((item, f"{path}.{key}".lstrip("."), depth + 1))
    return children


def _without_positions(error: TemplateError) -> TemplateError:
    issues = [(issue.file, 0, 0, issue.path, issue.message) for issue in error.errors]
    return TemplateError(error.message, issues)
