"""Image templates: read, merged over the provider's default template, and checked."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

from os_image_composer import _native
from os_image_composer.config import Config

__all__ = ["ImageTemplate"]


class ImageTemplate:
    """A checked image template.

    Creating one reads the template, merges it over its provider's default template and checks
    the result as a whole. Any problem raises `TemplateError`, which lists every error found.
    """

    __module__ = "os_image_composer"

    def __init__(self, result: dict[str, Any], source: str) -> None:
        self._result = result
        self._source = source

    @classmethod
    def from_file(cls, path: str | PathLike[str], config: Config | None = None) -> ImageTemplate:
        """Read and check a template file."""
        arguments = (config or Config.load()).arguments
        result = json.loads(_native.check_template_file(str(path), **arguments))
        return cls(result, str(path))

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        *,
        base_dir: str | PathLike[str] | None = None,
        config: Config | None = None,
        source: str = "<dict>",
    ) -> ImageTemplate:
        """Check a template given as a dictionary. Relative paths in it point into `base_dir`."""
        config_file = None if config is None else config.arguments["config_file"]
        folder = None if base_dir is None else str(Path(base_dir).absolute())
        text = json.dumps(data)
        result = json.loads(_native.check_template_text(text, source, folder, config_file))
        return cls(result, source)

    @property
    def source(self) -> str:
        return self._source

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

    def __repr__(self) -> str:
        return f"ImageTemplate(source={self._source!r}, provider_id={self.provider_id!r})"
