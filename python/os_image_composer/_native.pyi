# The compiled module os_image_composer._native. `mypy.stubtest` checks that this file matches it.
# Functions return JSON text that the typed classes of the package decode.

from collections.abc import Callable
from typing import final

__all__ = [
    "CancelToken",
    "__version__",
    "build_template",
    "cache_clean",
    "cache_info",
    "cache_prune",
    "cache_verify",
    "check_template_file",
    "check_template_text",
    "default_config_text",
    "fetch_template",
    "load_config",
    "prepare_chroot",
    "provider_default_template",
    "providers",
    "repository_packages",
    "resolve_template",
    "set_log_level",
]
__version__: str

@final
class CancelToken:
    """A handle that stops the native call it was passed to."""

    def __init__(self) -> None: ...
    def cancel(self) -> None:
        """Stop the call; it raises CancellationError once its mounts are released."""
    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called."""

def load_config(
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
    temp_dir: str | None = None,
    workers: int | None = None,
    log_level: str | None = None,
    log_file: str | None = None,
) -> str: ...
def default_config_text() -> str: ...
def check_template_file(
    path: str,
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
    temp_dir: str | None = None,
    workers: int | None = None,
    log_level: str | None = None,
    log_file: str | None = None,
) -> str: ...
def check_template_text(
    text: str,
    source: str,
    base_dir: str | None = None,
    config_file: str | None = None,
) -> str: ...
def providers(config_file: str | None = None) -> str: ...
def resolve_template(
    path: str | None = None,
    text: str | None = None,
    source: str | None = None,
    base_dir: str | None = None,
    offline: bool = False,
    with_recommends: bool = False,
    dotfile: str | None = None,
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
    workers: int | None = None,
) -> str: ...
def set_log_level(level: str) -> None: ...
def fetch_template(
    path: str,
    offline: bool = False,
    with_recommends: bool = False,
    dotfile: str | None = None,
    progress: str | Callable[[str, str, int], object] | None = None,
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
    workers: int | None = None,
) -> str: ...
def cache_info(
    config_file: str | None = None, cache_dir: str | None = None, work_dir: str | None = None
) -> str: ...
def cache_clean(
    scope: str = "packages",
    provider: str | None = None,
    dry_run: bool = False,
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
) -> str: ...
def cache_prune(
    older_than_days: int | None = None,
    max_size: int | None = None,
    provider: str | None = None,
    dry_run: bool = False,
    config_file: str | None = None,
    cache_dir: str | None = None,
) -> str: ...
def cache_verify(
    provider: str,
    delete: bool = False,
    config_file: str | None = None,
    cache_dir: str | None = None,
) -> str: ...
def build_template(
    path: str,
    offline: bool = False,
    with_recommends: bool = False,
    dotfile: str | None = None,
    progress: bool | str | Callable[[str, str, int], object] | None = None,
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
    workers: int | None = None,
    cancel: CancelToken | None = None,
) -> str: ...
def prepare_chroot(
    path: str,
    offline: bool = False,
    progress: bool = False,
    config_file: str | None = None,
    cache_dir: str | None = None,
    work_dir: str | None = None,
    workers: int | None = None,
) -> str: ...
def provider_default_template(id: str) -> str: ...
def repository_packages(
    provider: str,
    repository: str,
    offline: bool = False,
    config_file: str | None = None,
    cache_dir: str | None = None,
) -> str: ...
