"""Compose bootable Linux OS images from YAML templates, with verified, reusable caches.

The Rust core does the work; this package contains typed classes over it, the command line
(`os-image-composer`, also `python -m os_image_composer`) and a pytest plugin.
"""

from os_image_composer._native import CancelToken, __version__
from os_image_composer.build import Artifact, BuildResult, CacheUse, StageTime
from os_image_composer.cache import PackageCache
from os_image_composer.chroot import ChrootEnv, ChrootPreparation, ChrootStatus
from os_image_composer.composer import Composer
from os_image_composer.config import Config, Setting
from os_image_composer.errors import (
    BuildError,
    CacheError,
    CancellationError,
    ChecksumError,
    ChrootError,
    ComposerError,
    ComposerWarning,
    ConfigError,
    MetadataError,
    ResolutionError,
    SignatureError,
    TemplateError,
    TemplateIssue,
    VerificationError,
)
from os_image_composer.progress import ProgressEvents, TqdmProgress
from os_image_composer.provider import Package, Provider, Repository, RpmPackage
from os_image_composer.resolution import Dependency, RepositoryStatus, Resolution, ResolvedPackage
from os_image_composer.template import ImageTemplate

__all__ = [
    "Artifact",
    "BuildError",
    "BuildResult",
    "CacheError",
    "CacheUse",
    "CancelToken",
    "CancellationError",
    "ChecksumError",
    "ChrootEnv",
    "ChrootError",
    "ChrootPreparation",
    "ChrootStatus",
    "Composer",
    "ComposerError",
    "ComposerWarning",
    "Config",
    "ConfigError",
    "Dependency",
    "ImageTemplate",
    "MetadataError",
    "Package",
    "PackageCache",
    "ProgressEvents",
    "Provider",
    "Repository",
    "RepositoryStatus",
    "Resolution",
    "ResolutionError",
    "ResolvedPackage",
    "RpmPackage",
    "Setting",
    "SignatureError",
    "StageTime",
    "TemplateError",
    "TemplateIssue",
    "TqdmProgress",
    "VerificationError",
    "__version__",
]
