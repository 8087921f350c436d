"""Progress callbacks: the protocol the core calls while it fetches package files, and a tqdm
adapter for terminals and Jupyter."""

from __future__ import annotations

import importlib
import threading
from typing import Any, Protocol

__all__ = ["ProgressEvents", "TqdmProgress"]


class ProgressEvents(Protocol):
    """A callable that receives ``(event, name, number)`` while package files are fetched.

    The events come in this order. ``start`` gives the file count as text in `name` and the
    total bytes in `number`. Then each file sends ``file_started`` (the file name and its size),
    ``bytes`` (the bytes received since the last event) and ``file_done`` (`number` is 1 when
    the file verified, else 0). ``finish`` comes last, with 1 on success, else 0. A build
    fetches twice, for the chroot environment and for the image, so it sends two such
    sequences. The calls come from the core's download threads, and an exception raised by the
    callable is ignored.
    """

    def __call__(self, event: str, name: str, number: int, /) -> object: ...


class TqdmProgress:
    """Draws a tqdm progress bar in bytes for each fetch.

    Uses ``tqdm.auto``, so it draws a widget in Jupyter and text on a terminal. tqdm is imported
    when an instance is created, so the package works without it. Extra keyword arguments go
    to each ``tqdm`` bar, such as ``leave=False`` or ``file=sys.stdout``.
    """

    __module__ = "os_image_composer.progress"

    def __init__(self, **options: Any) -> None:
        try:
            module = importlib.import_module("tqdm.auto")
        except ImportError as error:
            raise ImportError("TqdmProgress needs tqdm: pip install tqdm") from error
        self._tqdm = module.tqdm
        self._options = options
        self._bar: Any = None
        self._lock = threading.Lock()
        self.files_done = 0
        self.files_failed = 0

    def __call__(self, event: str, name: str, number: int) -> None:
        with self._lock:
            if event == "start":
                self._start(int(name), number)
            elif event == "bytes" and self._bar is not None:
                self._bar.update(number)
            elif event == "file_done":
                self._file_done(name, succeeded=number == 1)
            elif event == "finish":
                self.close()

    def _start(self, files: int, total_bytes: int) -> None:
        self.close()
        options = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, **self._options}
        options.setdefault("desc", f"fetching {files} files")
        self._bar = self._tqdm(total=total_bytes, **options)

    def _file_done(self, name: str, *, succeeded: bool) -> None:
        if succeeded:
            self.files_done += 1
        else:
            self.files_failed += 1
        if self._bar is not None:
            self._bar.set_postfix_str(name, refresh=False)

    def close(self) -> None:
        """Close the current bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
