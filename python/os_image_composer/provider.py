"""Providers and their repositories: the distributions images are built from."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from os_image_composer import _native
from os_image_composer.config import Config
from os_image_composer.errors import ConfigError
from os_image_composer.resolution import RepositoryStatus

__all__ = ["Package", "Provider", "Repository"]


@dataclass(frozen=True)
class Package:
    """A binary package as a repository's ``Packages`` index describes it."""

    name: str
    version: str
    architecture: str
    essential: bool
    priority: str | None
    section: str | None
    source: str | None
    """The source package name, without a version."""
    depends: tuple[str, ...]
    """Each dependency group as text, alternatives joined with `` | ``."""
    pre_depends: tuple[str, ...]
    recommends: tuple[str, ...]
    provides: tuple[str, ...]
    filename: str
    """The pool path relative to the repository, as in the index's `Filename` field."""
    size: int
    sha256: str
    installed_size: int | None
    """In KiB, as the index gives it."""

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Package:
        """Read one package of the core's JSON."""
        return cls(
            name=str(item["name"]),
            version=str(item["version"]),
            architecture=str(item["architecture"]),
            essential=bool(item["essential"]),
            priority=item["priority"],
            section=item["section"],
            source=item["source"],
            depends=tuple(item["depends"]),
            pre_depends=tuple(item["pre_depends"]),
            recommends=tuple(item["recommends"]),
            provides=tuple(item["provides"]),
            filename=str(item["filename"]),
            size=int(item["size"]),
            sha256=str(item["sha256"]),
            installed_size=item["installed_size"],
        )


class Repository:
    """One repository of a provider, as the configuration gives it, with lazy metadata.

    `load` fetches the repository's Release file and Packages indexes, verifies the OpenPGP
    signature and every index's SHA256, and keeps them in the metadata cache, exactly as a build
    does. `get`, `versions` and `search` load the metadata on first use.
    """

    __module__ = "os_image_composer"

    def __init__(self, provider_id: str, spec: dict[str, Any], config: Config) -> None:
        self.provider_id = provider_id
        self.name: str = spec["name"]
        self.url: str | None = spec.get("url")
        self.path: str | None = spec.get("path")
        self.suite: str | None = spec.get("suite")
        self.components: list[str] = list(spec.get("components", []))
        self.keys: list[str] = list(spec.get("keys", []))
        """Key references: ``embedded:NAME``, a file path or a URL."""
        self.priority: int = int(spec.get("priority", 500))
        self.gpg_check: bool = bool(spec.get("gpgCheck", True))
        self._config = config
        self._metadata: dict[str, Any] | None = None
        self._packages: list[Package] = []

    def load(self, *, offline: bool = False) -> Repository:
        """Fetch, verify and parse the metadata now, and return this repository.

        `offline` uses only the metadata cache. Raises `MetadataError`, `SignatureError` or
        `ChecksumError`.
        """
        arguments = self._config.arguments
        data = json.loads(
            _native.repository_packages(
                self.provider_id,
                self.name,
                offline=offline,
                config_file=arguments["config_file"],
                cache_dir=arguments["cache_dir"],
            )
        )
        self._packages = [Package.from_json(item) for item in data.pop("packages")]
        self._metadata = data
        return self

    def _loaded(self) -> dict[str, Any]:
        if self._metadata is None:
            self.load()
        assert self._metadata is not None
        return self._metadata

    @property
    def status(self) -> RepositoryStatus:
        """Where the metadata came from and how its signature was checked."""
        data = self._loaded()
        return RepositoryStatus(
            id=data["id"],
            name=data["name"],
            url=data["url"],
            source=data["source"],
            signature=dict(data["signature"]),
            packages=len(self._packages),
        )

    @property
    def release(self) -> dict[str, Any]:
        """The Release file's fields: origin, label, suite, codename, version, date,
        valid_until (seconds since the Unix epoch), architectures and components."""
        return dict(self._loaded()["release"])

    @property
    def packages(self) -> list[Package]:
        """Every package of the repository's indexes for the provider's architecture."""
        self._loaded()
        return list(self._packages)

    def get(self, name: str) -> Package | None:
        """Return the last stanza of package `name` in the index, if any.

        A Debian suite's index normally lists one version of each name, and `versions` returns
        every stanza when there are more.
        """
        matches = self.versions(name)
        return matches[-1] if matches else None

    def versions(self, name: str) -> list[Package]:
        """Return every stanza of package `name`, in index order."""
        return [package for package in self.packages if package.name == name]

    def search(self, pattern: str) -> list[Package]:
        """Return the packages whose name matches the shell-style glob `pattern`."""
        return [package for package in self.packages if fnmatch.fnmatchcase(package.name, pattern)]

    def __contains__(self, name: object) -> bool:
        return any(package.name == name for package in self.packages)

    def __repr__(self) -> str:
        where = self.url or self.path
        return f"Repository(provider_id={self.provider_id!r}, name={self.name!r}, url={where!r})"


@dataclass(frozen=True)
class Provider:
    """A target distribution: its repositories, signing keys, essential set and build tools.

    Replacement repositories from the configuration (``providers.{id}.repositories``) are
    already applied.
    """

    id: str
    os: str
    dist: str
    arch: str
    package_format: str
    """``deb`` or ``rpm``."""
    package_arch: str
    """The architecture name the package format uses, such as ``amd64``."""
    repository_specs: tuple[dict[str, Any], ...]
    """The repositories as the configuration gives them."""
    essential: dict[str, Any]
    build_tools: tuple[str, ...]
    config: Config = field(repr=False, compare=False)

    @classmethod
    def all(cls, config: Config | None = None) -> list[Provider]:
        """List the embedded providers."""
        config = config or Config.load()
        items = json.loads(_native.providers(config.arguments["config_file"]))
        return [cls._from_json(item, config) for item in items]

    @classmethod
    def get(cls, provider_id: str, config: Config | None = None) -> Provider:
        """Return the provider `provider_id`; raises `ConfigError` when there is none."""
        providers = cls.all(config)
        for provider in providers:
            if provider.id == provider_id:
                return provider
        known = ", ".join(provider.id for provider in providers)
        raise ConfigError(f"Unknown provider `{provider_id}`: use one of {known}")

    @classmethod
    def _from_json(cls, item: dict[str, Any], config: Config) -> Provider:
        return cls(
            id=item["id"],
            os=item["os"],
            dist=item["dist"],
            arch=item["arch"],
            package_format=item["packageFormat"],
            package_arch=item["packageArch"],
            repository_specs=tuple(item["repositories"]),
            essential=dict(item["essential"]),
            build_tools=tuple(item["buildTools"]),
            config=config,
        )

    @property
    def repositories(self) -> list[Repository]:
        """The repositories, with their metadata not loaded yet."""
        return [Repository(self.id, spec, self.config) for spec in self.repository_specs]

    def repository(self, name: str) -> Repository:
        """Return the repository called `name`; raises `KeyError` when there is none."""
        for repository in self.repositories:
            if repository.name == name:
                return repository
        names = ", ".join(spec["name"] for spec in self.repository_specs)
        raise KeyError(f"Provider {self.id} has no repository {name!r}: use one of {names}")

    @property
    def keys(self) -> list[str]:
        """Every key reference of the repositories, without repeats, in order."""
        keys: dict[str, None] = {}
        for spec in self.repository_specs:
            keys.update(dict.fromkeys(spec.get("keys", [])))
        return list(keys)

    @property
    def default_template(self) -> str:
        """The provider's default template as YAML: what every template is merged over."""
        return _native.provider_default_template(self.id)
