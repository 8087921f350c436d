"""Serve a directory over HTTP/1.1 on 127.0.0.1, with a request log and fault injection.

`RepoServer` serves the files under its root for GET and HEAD, with keep-alive and single byte
ranges. It never lists directories and rejects paths with ".." segments. Faults are set per URL
path glob (fnmatch syntax, matched against the decoded path without query) with `add_fault`.

As a script it serves a directory until interrupted:

    python3 httpserver.py ROOT [--port PORT]
"""

from __future__ import annotations

import argparse
import email.utils
import fnmatch
import logging
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

LOG = logging.getLogger(__name__)

BodyTransform = Callable[[bytes], bytes]
RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Request:
    """One request and the status the server sent. `connection` is the client's port number."""

    method: str
    path: str
    status: int
    range: str | None
    connection: int


@dataclass
class Fault:
    """Faults applied to requests whose path matches a glob.

    The first `fail_first` matching requests get `status` with an empty body. The body faults
    (`truncate_after` and the rest) then apply to the next `times` matching requests, or to all
    of them when `times` is None. Byte offsets count from the start of the body.
    """

    fail_first: int = 0
    status: int = 503
    retry_after: int | None = None
    # Send the full Content-Length header, then only this many body bytes, then close (FIN).
    truncate_after: int | None = None
    # Send this many body bytes, then reset the connection (RST). Wins over truncate_after.
    reset_after: int | None = None
    # Send this value as Content-Length in place of the real body length.
    wrong_length: int | None = None
    # Seconds to wait before the status line.
    delay: float = 0.0
    # Send `stall_after` body bytes, then wait `stall_seconds` before the rest.
    stall_after: int | None = None
    stall_seconds: float = 0.0
    # New body bytes, or a function of the file's bytes. Content-Length follows the new body.
    replace_body: bytes | BodyTransform | None = None
    times: int | None = None
    matched: int = field(default=0, init=False)

    def next_action(self) -> tuple[bool, bool]:
        """Count one matching request and return (fail it, apply body faults to it)."""
        self.matched += 1
        if self.matched <= self.fail_first:
            return True, False
        body_index = self.matched - self.fail_first
        return False, self.times is None or body_index <= self.times


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ThreadingServer
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 30

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        LOG.debug("%s %s", self.client_address[0], format % args)

    def _respond(self, *, send_body: bool) -> None:
        owner = self.server.owner
        path = urllib.parse.urlsplit(self.path).path
        fault, fail, body_faults = owner.match_fault(path)
        if fault is not None and fault.delay > 0:
            owner.wait(fault.delay)
        if fail and fault is not None:
            self._send_status(fault.status, path, retry_after=fault.retry_after)
            return
        resolved = owner.resolve(path)
        if isinstance(resolved, int):
            self._send_status(resolved, path)
            return
        body = resolved.read_bytes()
        active = fault if body_faults else None
        if active is not None and active.replace_body is not None:
            replacement = active.replace_body
            body = replacement if isinstance(replacement, bytes) else replacement(body)
        self._send_file(path, body, resolved, active, send_body=send_body)

    def _send_status(self, status: int, path: str, *, retry_after: int | None = None) -> None:
        self.server.owner.record(self, path, status)
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_file(
        self, path: str, body: bytes, file: Path, fault: Fault | None, *, send_body: bool
    ) -> None:
        status, body, content_range = self._apply_range(body)
        self.server.owner.record(self, path, status)
        self.send_response(status)
        length = len(body)
        if fault is not None and fault.wrong_length is not None:
            length = fault.wrong_length
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        mtime = file.stat().st_mtime
        self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        if content_range is not None:
            self.send_header("Content-Range", content_range)
        self.end_headers()
        if send_body and status != HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE:
            self._write_body(body, fault)

    def _apply_range(self, body: bytes) -> tuple[int, bytes, str | None]:
        header = self.headers.get("Range")
        if header is None:
            return HTTPStatus.OK, body, None
        match = RANGE_RE.fullmatch(header.strip())
        # Multiple ranges and other units get the whole file with status 200.
        if match is None or match.group(1) == match.group(2) == "":
            return HTTPStatus.OK, body, None
        size = len(body)
        first, last = match.group(1), match.group(2)
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            return HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", f"bytes */{size}"
        return HTTPStatus.PARTIAL_CONTENT, body[start : end + 1], f"bytes {start}-{end}/{size}"

    def _write_body(self, body: bytes, fault: Fault | None) -> None:
        if fault is None:
            self.wfile.write(body)
            return
        cut = fault.reset_after if fault.reset_after is not None else fault.truncate_after
        end = len(body) if cut is None else min(cut, len(body))
        if fault.stall_after is not None:
            stall_at = min(fault.stall_after, end)
            self.wfile.write(body[:stall_at])
            self.wfile.flush()
            self.server.owner.wait(fault.stall_seconds)
            if self.server.owner.stopping:
                # A stopping server ends the stall early and must not finish the body.
                self.close_connection = True
                return
            self.wfile.write(body[stall_at:end])
        else:
            self.wfile.write(body[:end])
        self.wfile.flush()
        if fault.reset_after is not None:
            self._reset_connection()
        elif cut is not None or fault.wrong_length is not None:
            # A client that trusts a wrong Content-Length cannot find the next response's start.
            self.close_connection = True

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN. The socket must be
        # closed here because socketserver's own teardown calls shutdown(SHUT_WR), which sends
        # FIN first. The descriptor closes when finish() closes rfile, its last reference.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: RepoServer, port: int) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that drop the connection mid-body are expected in fault tests.
        LOG.debug("request from %s failed", client_address, exc_info=True)


class RepoServer:
    """An HTTP server for the files under `root`, bound to 127.0.0.1.

    Port 0 picks a free port. Use it as a context manager, or call `start` and `stop`.
    """

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = Path(root).resolve()
        self._requested_port = port
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._faults: list[tuple[str, Fault]] = []
        self._stopping = threading.Event()
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RepoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> RepoServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _ThreadingServer(self, self._requested_port)
        # serve_forever checks for shutdown() every poll_interval seconds, so this bounds stop().
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"RepoServer {self.root}",
            daemon=True,
        )
        self._thread.start()
        LOG.debug("serving %s at %s", self.root, self.url)
        return self

    def stop(self) -> None:
        """Stop serving. Stalled and delayed responses stop waiting at once."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        LOG.debug("stopped serving %s", self.root)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, with a trailing slash, e.g. "http://127.0.0.1:40123/"."""
        return f"http://127.0.0.1:{self.port}/"

    def requests(self) -> list[Request]:
        """Return a copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def add_fault(self, glob: str, fault: Fault) -> Fault:
        """Apply `fault` to paths matching `glob`, e.g. "*/InRelease" or "/pool/*.deb".

        The first added fault whose glob matches a path is the one applied.
        """
        with self._lock:
            self._faults.append((glob, fault))
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def match_fault(self, path: str) -> tuple[Fault | None, bool, bool]:
        """Return the fault for `path`, whether to fail the request and whether to apply body
        faults, and count the request on that fault."""
        with self._lock:
            for glob, fault in self._faults:
                if fnmatch.fnmatchcase(path, glob):
                    fail, body_faults = fault.next_action()
                    return fault, fail, body_faults
        return None, False, False

    def record(self, handler: BaseHTTPRequestHandler, path: str, status: int) -> None:
        request = Request(
            method=handler.command,
            path=path,
            status=int(status),
            range=handler.headers.get("Range"),
            connection=int(handler.client_address[1]),
        )
        with self._lock:
            self._requests.append(request)

    def resolve(self, path: str) -> Path | int:
        """Return the file for URL path `path`, or the HTTP status to send instead."""
        try:
            decoded = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            return HTTPStatus.BAD_REQUEST
        if not decoded.startswith("/") or "\0" in decoded or "\\" in decoded:
            return HTTPStatus.BAD_REQUEST
        parts = [part for part in decoded.split("/") if part not in ("", ".")]
        if ".." in parts:
            return HTTPStatus.BAD_REQUEST
        candidate = self.root.joinpath(*parts).resolve()
        # A symlink inside the root may point outside of it.
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return HTTPStatus.NOT_FOUND
        return candidate

    @property
    def stopping(self) -> bool:
        """Whether `stop` has been called."""
        return self._stopping.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep for `seconds`, or less if the server stops meanwhile."""
        self._stopping.wait(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a directory on 127.0.0.1 over HTTP.")
    parser.add_argument("root", type=Path, help="directory to serve")
    parser.add_argument("--port", type=int, default=0, help="TCP port, default: a free port")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    with RepoServer(arguments.root, arguments.port) as server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
