"""Providers and their repositories: the distributions images are built from."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from os_image_composer import _native
from os_image_composer.config import Config
from os_image_composer.errors import ConfigError, MetadataError
from os_image_composer.resolution import RepositoryStatus

__all__ = ["Package", "Provider", "Repository", "RpmPackage"]


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


@dataclass(frozen=True)
class RpmPackage:
    """A binary package as an RPM repository's primary.xml describes it."""

    name: str
    epoch: int
    version: str
    release: str | None
    evr: str
    """``[epoch:]version[-release]``, with the epoch only when it is not 0, as rpm prints it."""
    architecture: str
    """``noarch`` or the provider's package architecture, such as ``x86_64``."""
    requires: tuple[str, ...]
    """Each ``Requires`` entry as rpm prints it, such as ``tool >= 1:0.5`` or ``(a or b)``,
    without ``rpmlib(...)`` entries."""
    provides: tuple[str, ...]
    conflicts: tuple[str, ...]
    obsoletes: tuple[str, ...]
    files: tuple[str, ...]
    """The files primary.xml lists: those under ``/etc/``, in ``*bin/`` folders and
    ``/usr/lib/sendmail``."""
    location: str
    """The path relative to the repository root (``location href``)."""
    url: str
    """The absolute URL of the ``.rpm`` file, without credentials."""
    size: int
    installed_size: int
    """In bytes, as primary.xml gives it."""
    checksum_type: str
    """``sha224``, ``sha256``, ``sha384`` or ``sha512``."""
    checksum: str
    source_rpm: str | None

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RpmPackage:
        """Read one package of the core's JSON."""
        return cls(
            name=str(item["name"]),
            epoch=int(item["epoch"]),
            version=str(item["version"]),
            release=item["release"],
            evr=str(item["evr"]),
            architecture=str(item["architecture"]),
            requires=tuple(item["requires"]),
            provides=tuple(item["provides"]),
            conflicts=tuple(item["conflicts"]),
            obsoletes=tuple(item["obsoletes"]),
            files=tuple(item["files"]),
            location=str(item["location"]),
            url=str(item["url"]),
            size=int(item["size"]),
            installed_size=int(item["installed_size"]),
            checksum_type=str(item["checksum_type"]),
            checksum=str(item["checksum"]),
            source_rpm=item["source_rpm"],
        )


class Repository:
    """One repository of a provider, as the configuration gives it, with lazy metadata.

    For a Debian provider, `load` fetches the repository's Release file and Packages indexes,
    verifies the OpenPGP signature and every index's SHA256, and lists `Package` entries. For an
    RPM provider it fetches repodata/repomd.xml, verifies repomd.xml.asc and checks primary.xml's
    size and checksum against it, and lists `RpmPackage` entries of the provider's architecture
    and ``noarch``. Both keep the files in the metadata cache, exactly as a build does. `get`,
    `versions` and `search` load the metadata on first use.
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
        self._packages: list[Package | RpmPackage] = []

    def load(self, *, offline: bool = False) -> Repository:
        """Fetch, verify and parse the metadata now, and return this repository.

        `offline` uses only the metadata cache. Raises `MetadataError`, `SignatureError` or
        `ChecksumError`, with the same attributes as a build.
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
        items = data.pop("packages")
        if data["format"] == "rpm":
            self._packages = [RpmPackage.from_json(item) for item in items]
        else:
            self._packages = [Package.from_json(item) for item in items]
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
    def format(self) -> str:
        """``deb`` or ``rpm``: which kind of `packages` the repository lists."""
        return str(self._loaded()["format"])

    @property
    def release(self) -> dict[str, Any]:
        """The Release file's fields: origin, label, suite, codename, version, date,
        valid_until (seconds since the Unix epoch), architectures and components.

        Raises `MetadataError` for an RPM repository, which has no Release file.
        """
        data = self._loaded()
        if "release" not in data:
            message = f"Repository `{self.name}` is an RPM repository and has no Release file"
            raise MetadataError(message, repository=self.name)
        return dict(data["release"])

    @property
    def revision(self) -> str | None:
        """The ``<revision>`` of an RPM repository's repomd.xml, or None for Debian."""
        revision = self._loaded().get("revision")
        return None if revision is None else str(revision)

    @property
    def packages(self) -> list[Package | RpmPackage]:
        """Every package of the repository's metadata for the provider's architecture: `Package`
        entries for Debian, `RpmPackage` entries (with ``noarch``) for RPM."""
        self._loaded()
        return list(self._packages)

    def get(self, name: str) -> Package | RpmPackage | None:
        """Return the last entry of package `name` in the metadata, if any.

        A Debian suite's index normally lists one version of each name, and `versions` returns
        every stanza when there are more. An RPM repository often lists several versions, so
        `versions` is the lookup to use there.
        """
        matches = self.versions(name)
        return matches[-1] if matches else None

    def versions(self, name: str) -> list[Package | RpmPackage]:
        """Return every entry of package `name`, in the order of the metadata."""
        return [package for package in self.packages if package.name == name]

    def search(self, pattern: str) -> list[Package | RpmPackage]:
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
