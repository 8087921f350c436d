"""Exceptions and warnings of os-image-composer.

Every error the product raises derives from `ComposerError`, whether the core found it in Rust or
the Python layer did. Each class carries the failing values as attributes.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "BuildError",
    "CacheError",
    "CancellationError",
    "ChecksumError",
    "ChrootError",
    "ComposerError",
    "ComposerWarning",
    "ConfigError",
    "MetadataError",
    "ResolutionError",
    "SignatureError",
    "TemplateError",
    "TemplateIssue",
    "VerificationError",
]


class ComposerError(Exception):
    """The root of all os-image-composer errors."""

    __module__ = "os_image_composer"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ComposerWarning(UserWarning):
    """The root of all os-image-composer warnings."""

    __module__ = "os_image_composer"


class TemplateIssue(NamedTuple):
    """One problem found in a template or configuration file."""

    file: str
    line: int
    column: int
    path: str
    """The key path, such as ``disk.partitions[1].end``, or empty for the whole file."""
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def _issues(items: list[tuple[str, int, int, str, str]] | None) -> list[TemplateIssue]:
    return [TemplateIssue(*item) for item in items or []]


class ConfigError(ComposerError):
    """A configuration file or setting is missing or invalid.

    `errors` lists each problem in a configuration file with its position. It is empty for
    problems without a position, such as a file named by ``--config`` that does not exist.
    """

    __module__ = "os_image_composer"

    def __init__(
        self, message: str, errors: list[tuple[str, int, int, str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.errors = _issues(errors)


class TemplateError(ComposerError):
    """An image template is missing or invalid; `errors` lists every problem found."""

    __module__ = "os_image_composer"

    def __init__(
        self, message: str, errors: list[tuple[str, int, int, str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.errors = _issues(errors)


class MetadataError(ComposerError):
    """Repository metadata could not be fetched, read or used; `repository` names it."""

    __module__ = "os_image_composer"

    def __init__(self, message: str, repository: str | None = None) -> None:
        super().__init__(message)
        self.repository = repository


class VerificationError(ComposerError):
    """Something downloaded did not match what the signed metadata promises."""

    __module__ = "os_image_composer"


class SignatureError(VerificationError):
    """A repository's metadata or an RPM package is unsigned, or signed by a key outside the
    repository's configured keys.

    `repository` names the repository. `package` is the file name of the ``.rpm`` package whose
    header signature failed, and None when the repository's metadata failed.
    """

    __module__ = "os_image_composer"

    def __init__(
        self, message: str, repository: str | None = None, package: str | None = None
    ) -> None:
        super().__init__(message)
        self.repository = repository
        self.package = package


class ChecksumError(VerificationError):
    """A file's checksum or size differs from the signed metadata.

    `url` names the file. `algorithm` is the checksum type, such as ``sha256`` or ``sha512``
    (for an RPM header or payload digest, which digest failed). `expected` and `actual` are
    lowercase hexadecimal digests, and `expected_size` and `actual_size` are bytes. Each is None
    when the failure does not involve it.
    """

    __module__ = "os_image_composer"

    def __init__(
        self,
        message: str,
        url: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
        expected_size: str | int | None = None,
        actual_size: str | int | None = None,
        algorithm: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        self.expected_size = None if expected_size is None else int(expected_size)
        self.actual_size = None if actual_size is None else int(actual_size)


class ResolutionError(ComposerError):
    """The requested packages cannot be installed together; the message gives the chain.

    For a dependency that nothing provides, `package` is the package that requires it,
    `dependency` the requirement as rpm prints it, and `chain` the packages from the request to
    it joined by `` -> ``. Each is None when the core does not report it.
    """

    __module__ = "os_image_composer"

    def __init__(
        self,
        message: str,
        package: str | None = None,
        dependency: str | None = None,
        chain: str | None = None,
    ) -> None:
        super().__init__(message)
        self.package = package
        self.dependency = dependency
        self.chain = chain


class CacheError(ComposerError):
    """The package cache could not be read, written, locked or cleaned."""

    __module__ = "os_image_composer"


class ChrootError(ComposerError):
    """The chroot environment could not be created, restored, mounted or checked."""

    __module__ = "os_image_composer"


class BuildError(ComposerError):
    """A build stage failed: the image root, disk, bootloader, artifacts or SBOM, or the host
    cannot build (not root); the message names the stage's value and the fix."""

    __module__ = "os_image_composer"


class CancellationError(ComposerError):
    """The call was stopped through the `CancelToken` passed to it, after it released its mounts
    and temporary files. An interrupt (Ctrl-C) raises `KeyboardInterrupt` instead."""

    __module__ = "os_image_composer"
