"""The global configuration, loaded with the same lookup as the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from os_image_composer import _native

__all__ = ["Config", "Setting"]

StrPath = str | PathLike[str]


@dataclass(frozen=True)
class Setting:
    """A configuration value and where it came from: ``default``, ``flag --NAME`` or
    ``FILE:LINE:COLUMN``."""

    key: str
    value: str
    origin: str


def _optional_path(value: StrPath | None) -> str | None:
    return None if value is None else str(value)


class Config:
    """The effective configuration: a file found by the standard lookup, then overrides.

    The lookup is ``config_file`` when given (a missing file raises `ConfigError`), then
    ``./os-image-composer.yml``, ``~/.config/os-image-composer/config.yml``,
    ``/etc/os-image-composer/config.yml``, then the built-in defaults. Keyword overrides match
    the command-line flags of the same names.
    """

    __module__ = "os_image_composer"

    def __init__(self, data: dict[str, Any], arguments: dict[str, Any]) -> None:
        self._data = data
        self._arguments = arguments

    @classmethod
    def load(
        cls,
        config_file: StrPath | None = None,
        *,
        cache_dir: StrPath | None = None,
        work_dir: StrPath | None = None,
        temp_dir: StrPath | None = None,
        workers: int | None = None,
        log_level: str | None = None,
        log_file: StrPath | None = None,
    ) -> Config:
        """Load the configuration; raises `ConfigError` for a missing or invalid file."""
        arguments: dict[str, Any] = {
            "config_file": _optional_path(config_file),
            "cache_dir": _optional_path(cache_dir),
            "work_dir": _optional_path(work_dir),
            "temp_dir": _optional_path(temp_dir),
            "workers": workers,
            "log_level": log_level,
            "log_file": _optional_path(log_file),
        }
        data = json.loads(_native.load_config(**arguments))
        return cls(data, arguments)

    def override(self, **changes: Any) -> Config:
        """Return a new configuration with some overrides changed, such as ``workers=4``."""
        unknown = set(changes) - set(self._arguments) - {"config_file"}
        if unknown:
            names = ", ".join(sorted(unknown))
            raise TypeError(f"Unknown configuration override: {names}")
        arguments = {**self._arguments, **changes}
        return Config.load(**arguments)

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments this configuration was loaded with, to pass on to the core."""
        return dict(self._arguments)

    @property
    def file(self) -> Path | None:
        """The configuration file that was read, if any."""
        file = self._data["file"]
        return None if file is None else Path(file)

    @property
    def cache_dir(self) -> Path:
        return Path(self._data["cache_dir"])

    @property
    def work_dir(self) -> Path:
        return Path(self._data["work_dir"])

    @property
    def temp_dir(self) -> Path:
        return Path(self._data["temp_dir"])

    @property
    def workers(self) -> int:
        return int(self._data["workers"])

    @property
    def log_level(self) -> str:
        return str(self._data["log_level"])

    @property
    def log_file(self) -> Path | None:
        log_file = self._data["log_file"]
        return None if log_file is None else Path(log_file)

    @property
    def providers(self) -> dict[str, list[dict[str, Any]]]:
        """Replacement repositories by provider id."""
        return dict(self._data["providers"])

    def settings(self) -> list[Setting]:
        """List every setting with its value and where it came from."""
        return [Setting(**item) for item in self._data["settings"]]

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self._data.items() if key != "settings"}

    def __repr__(self) -> str:
        return (
            f"Config(cache_dir={str(self.cache_dir)!r}, work_dir={str(self.work_dir)!r}, "
            f"workers={self.workers})"
        )
