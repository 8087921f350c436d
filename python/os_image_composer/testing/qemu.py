"""Boot a disk image or a kernel under QEMU with UEFI firmware and drive its serial console.

`boot_image` returns a `BootedVM`, a context manager that starts qemu-system-x86_64 on entry and
terminates and reaps it on exit, also when the body raises. The firmware is OVMF from Debian's
`ovmf` package, with a private copy of its variable store per boot. The disk image is opened
with ``snapshot=on``, so QEMU writes guest changes to a temporary overlay and never to the image.
The VM has no network device and no display: its first serial port is the console, which a
reader thread appends to `BootedVM.console_log` and to a log file.

    with boot_image("disk.raw") as vm:
        vm.login("root", "secret")
        print(vm.run("uname -r"))
        vm.poweroff()

Every timeout is given in seconds as it would apply under KVM. When KVM is unusable QEMU runs
under TCG, and each timeout is multiplied by `TCG_TIMEOUT_FACTOR`.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import logging
import os
import re
import secrets
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from os_image_composer.errors import ComposerError

__all__ = [
    "TCG_TIMEOUT_FACTOR",
    "BootTimeout",
    "BootedVM",
    "GuestCommandError",
    "KernelBoot",
    "QemuError",
    "boot_image",
    "detect_accelerator",
]

LOG = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
KVM_DEVICE = Path("/dev/kvm")
# Set to "kvm" or "tcg" to skip the KVM probe.
ACCEL_ENV = "OIC_QEMU_ACCEL"

Accelerator = Literal["kvm", "tcg"]

# NOTE: an estimate, not compared with KVM on the same machine. Under TCG on a 2-CPU x86_64 VM,
# OVMF and a Debian 12 kernel reach a busybox /init in about 10 s (tests/test_qemu_harness.py).
TCG_TIMEOUT_FACTOR = 5.0
DEFAULT_TIMEOUT = 30.0
# Seconds QEMU gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE = 5.0
# Seconds the KVM probe waits for the firmware's first byte on the serial console.
KVM_PROBE_TIMEOUT = 10.0
TAIL_LINES = 40

QCOW2_MAGIC = b"QFI\xfb"
ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-9;=?]*[A-Za-z]|[()][0-9A-Za-z]|[=>])")
# The end of a root or user prompt of bash, dash or busybox ash.
SHELL_PROMPT = re.compile(r"[#$] $", re.MULTILINE)


class QemuError(ComposerError):
    """QEMU could not be started, or it exited while the test still waited for the guest."""

    __module__ = "os_image_composer.testing.qemu"


class BootTimeout(ComposerError):
    """The serial console did not show the expected text in time.

    `pattern` is the text or regular expression waited for, `elapsed` the seconds waited,
    `accelerator` "kvm" or "tcg", and `console_tail` the last lines of the console with escape
    sequences removed.
    """

    __module__ = "os_image_composer.testing.qemu"

    def __init__(
        self, message: str, *, pattern: str, elapsed: float, accelerator: str, console_tail: str
    ) -> None:
        super().__init__(message)
        self.pattern = pattern
        self.elapsed = elapsed
        self.accelerator = accelerator
        self.console_tail = console_tail


class GuestCommandError(ComposerError):
    """A command run by `BootedVM.run` exited with a nonzero status."""

    __module__ = "os_image_composer.testing.qemu"

    def __init__(self, message: str, *, command: str, status: int, output: str) -> None:
        super().__init__(message)
        self.command = command
        self.status = status
        self.output = output


@dataclass(frozen=True)
class KernelBoot:
    """A kernel that QEMU loads directly (``-kernel``), with its initrd and command line."""

    kernel: Path
    initrd: Path | None = None
    append: str = "console=ttyS0"


def detect_accelerator() -> Accelerator:
    """Return "kvm" when KVM can run the firmware here, otherwise "tcg".

    $OIC_QEMU_ACCEL set to "kvm" or "tcg" wins. The probe runs once per process.
    """
    override = os.environ.get(ACCEL_ENV, "")
    if override == "kvm":
        return "kvm"
    if override == "tcg":
        return "tcg"
    if override:
        raise QemuError(f"invalid {ACCEL_ENV}={override!r}: expected kvm or tcg")
    return _probe_kvm()


@functools.cache
def _probe_kvm() -> Accelerator:
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        LOG.info("%s is missing or not accessible: using TCG", KVM_DEVICE)
        return "tcg"
    _check_host_tools()
    # KVM can open /dev/kvm and create a VM yet fail on the first instructions it cannot run,
    # for example under nested virtualization without VMX. QEMU then stops the VM with "KVM
    # internal error" but keeps running, so `-accel kvm -accel tcg` does not fall back. The
    # probe therefore boots the firmware without a disk and expects console output from it.
    with tempfile.TemporaryDirectory(prefix="oic-kvm-probe-") as workdir:
        variables = Path(workdir) / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, variables)
        command = [
            QEMU,
            *_machine_args("kvm", memory_mib=128, cpus=1, variables=variables),
            "-serial",
            "stdio",
        ]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            works, reason = _firmware_prints(process)
        finally:
            process.kill()
            process.communicate()
    if works:
        LOG.info("KVM runs the firmware: using KVM")
        return "kvm"
    LOG.info("KVM cannot run the firmware (%s): using TCG", reason)
    return "tcg"


def _firmware_prints(process: subprocess.Popen[bytes]) -> tuple[bool, str]:
    """Wait for the first byte that the probe VM prints on its console, or for a KVM failure."""
    assert process.stdout is not None and process.stderr is not None
    stderr = b""
    deadline = time.monotonic() + KVM_PROBE_TIMEOUT
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout, process.stderr], [], [], remaining)
        if process.stdout in readable:
            if os.read(process.stdout.fileno(), 4096):
                return True, ""
            return False, f"QEMU exited: {stderr.decode(errors='replace').strip()}"
        if process.stderr in readable:
            stderr += os.read(process.stderr.fileno(), 4096)
            if b"KVM internal error" in stderr:
                return False, "KVM internal error"
    return False, f"no console output within {KVM_PROBE_TIMEOUT:.0f} s"


def _check_host_tools() -> None:
    if shutil.which(QEMU) is None:
        raise QemuError(f"{QEMU} not found: install the Debian package qemu-system-x86")
    for firmware in (OVMF_CODE, OVMF_VARS):
        if not firmware.is_file():
            raise QemuError(f"UEFI firmware {firmware} not found: install the Debian package ovmf")


def _machine_args(
    accelerator: Accelerator, *, memory_mib: int, cpus: int, variables: Path
) -> list[str]:
    """Return QEMU's arguments for a q35 machine with OVMF, no network and no display."""
    return [
        "-machine",
        "q35",
        "-accel",
        accelerator,
        "-cpu",
        "host" if accelerator == "kvm" else "max",
        "-m",
        str(memory_mib),
        "-smp",
        str(cpus),
        # No default devices: no VGA, monitor, parallel port or default serial port.
        "-nodefaults",
        "-display",
        "none",
        "-nic",
        "none",
        # A guest reboot or a kernel panic with panic=-1 ends QEMU.
        "-no-reboot",
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={variables}",
    ]


def _image_format(image: Path) -> str:
    with image.open("rb") as file:
        return "qcow2" if file.read(4) == QCOW2_MAGIC else "raw"


def _strip_escapes(text: str) -> str:
    return ESCAPE_SEQUENCE.sub("", text).replace("\r", "")


class BootedVM:
    """A QEMU process with its serial console; a context manager that starts and stops it.

    Create it with `boot_image`. Patterns passed as `str` match literally and `re.Pattern`
    objects as regular expressions. Each successful `wait_for` moves a cursor past its match,
    and the next search starts there.
    """

    def __init__(
        self,
        image: Path | None,
        *,
        kernel: KernelBoot | None,
        memory_mib: int,
        cpus: int,
        timeout: float,
        accelerator: Accelerator | None,
        log_path: Path | None,
        image_format: str | None,
        drive_interface: str,
        extra_args: Sequence[str],
    ) -> None:
        if image is not None:
            self.name = image.name
        elif kernel is not None:
            self.name = kernel.kernel.name
        else:
            raise ValueError("boot_image needs a disk image, a kernel or both")
        self.image = image
        self.kernel = kernel
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.default_timeout = timeout
        self._requested_accelerator = accelerator
        self._requested_log_path = log_path
        self._image_format = image_format
        self._drive_interface = drive_interface
        self._extra_args = list(extra_args)

        self.accelerator: Accelerator = "tcg"
        self.timeout_factor = TCG_TIMEOUT_FACTOR
        self.command: list[str] = []
        self.log_path: Path | None = None
        self.workdir: Path | None = None
        self.started_at = 0.0

        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._condition = threading.Condition()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._cursor = 0
        self._eof = False

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> BootedVM:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start QEMU and the console reader. Raises `QemuError` when QEMU cannot start."""
        if self._process is not None:
            raise QemuError(f"the VM {self.name} was already started")
        _check_host_tools()
        self.accelerator = self._requested_accelerator or detect_accelerator()
        self.timeout_factor = 1.0 if self.accelerator == "kvm" else TCG_TIMEOUT_FACTOR
        self._tempdir = tempfile.TemporaryDirectory(prefix="oic-qemu-")
        self.workdir = Path(self._tempdir.name)
        try:
            self._launch(self.workdir)
        except BaseException:
            self.close()
            raise

    def _launch(self, workdir: Path) -> None:
        variables = workdir / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, variables)
        self.command = [QEMU, *self._vm_args(variables), "-serial", "stdio"]
        self.log_path = self._requested_log_path or workdir / "console.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("wb")
        # QEMU puts the snapshot overlay in $TMPDIR, so it stays inside the private folder.
        environment = {**os.environ, "TMPDIR": str(workdir)}
        with (workdir / "qemu-stderr.log").open("wb") as stderr:
            LOG.info("starting %s: %s", self.name, subprocess.list2cmdline(self.command))
            try:
                self._process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=environment,
                )
            except OSError as error:
                raise QemuError(f"failed to start {QEMU}: {error}") from error
        self.started_at = time.monotonic()
        self._reader = threading.Thread(
            target=self._read_console, name=f"qemu-console-{self.name}", daemon=True
        )
        self._reader.start()

    def _vm_args(self, variables: Path) -> list[str]:
        args = _machine_args(
            self.accelerator, memory_mib=self.memory_mib, cpus=self.cpus, variables=variables
        )
        if self.image is not None:
            image_format = self._image_format or _image_format(self.image)
            drive = f"file={self.image},format={image_format},if={self._drive_interface}"
            args += ["-drive", f"{drive},snapshot=on"]
        if self.kernel is not None:
            args += ["-kernel", str(self.kernel.kernel), "-append", self.kernel.append]
            if self.kernel.initrd is not None:
                args += ["-initrd", str(self.kernel.initrd)]
        return args + self._extra_args

    def close(self) -> None:
        """Terminate and reap QEMU, stop the reader and remove the private folder.

        Safe to call more than once. The console text stays readable afterwards.
        """
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(TERMINATE_GRACE)
            except subprocess.TimeoutExpired:
                LOG.warning("QEMU (pid %d) ignored SIGTERM: killing it", process.pid)
                process.kill()
                process.wait()
        if process is not None and process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def _read_console(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        descriptor = self._process.stdout.fileno()
        while True:
            data = os.read(descriptor, 65536)
            if self._log_file is not None and data:
                self._log_file.write(data)
                self._log_file.flush()
            with self._condition:
                self._text += self._decoder.decode(data, final=not data)
                if not data:
                    self._eof = True
                self._condition.notify_all()
            if not data:
                return

    # -- state ----------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The process id of QEMU."""
        if self._process is None:
            raise QemuError(f"the VM {self.name} is not started")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """QEMU's exit status, or None while it runs or before it started."""
        return None if self._process is None else self._process.poll()

    @property
    def console_log(self) -> str:
        """Everything the serial console printed so far, decoded as UTF-8."""
        with self._condition:
            return self._text

    @property
    def qemu_stderr(self) -> str:
        """What QEMU wrote to its standard error, while the private folder exists."""
        if self.workdir is None or not (self.workdir / "qemu-stderr.log").exists():
            return ""
        return (self.workdir / "qemu-stderr.log").read_text(errors="replace")

    def console_tail(self, lines: int = TAIL_LINES) -> str:
        """Return the last `lines` lines of the console without terminal escape sequences."""
        return "\n".join(_strip_escapes(self.console_log).splitlines()[-lines:])

    # -- console --------------------------------------------------------------------------------

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float | None = None
    ) -> re.Match[str]:
        """Wait until the console shows `pattern` after the cursor, then move the cursor past it.

        `timeout` defaults to the VM's timeout and is scaled for TCG. Raises `BootTimeout` when
        the time runs out and `QemuError` when QEMU exits first.
        """
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
        pattern_text = pattern if isinstance(pattern, str) else pattern.pattern
        limit = self._scale(timeout)
        start = time.monotonic()
        deadline = start + limit
        with self._condition:
            while True:
                match = regex.search(self._text, self._cursor)
                if match is not None:
                    self._cursor = match.end()
                    return match
                if self._eof:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
        if self._eof:
            self._wait_exit_quietly()
            raise QemuError(
                f"QEMU exited with status {self.returncode} while waiting for "
                f"{pattern_text!r} on the console of {self.name}\n"
                f"QEMU's standard error:\n{self.qemu_stderr.strip()}\n"
                f"last {TAIL_LINES} console lines:\n{self.console_tail()}"
            )
        raise self._timeout_error(pattern_text, time.monotonic() - start, limit)

    def send(self, text: str) -> None:
        """Type `text` on the serial console as it is."""
        if self._process is None or self._process.stdin is None:
            raise QemuError(f"the VM {self.name} is not started")
        try:
            self._process.stdin.write(text.encode())
            self._process.stdin.flush()
        except BrokenPipeError as error:
            raise QemuError(f"failed to type on the console of {self.name}: QEMU exited") from error

    def send_line(self, text: str) -> None:
        """Type `text` and a newline on the serial console."""
        self.send(text + "\n")

    def login(
        self,
        user: str,
        password: str,
        *,
        prompt: re.Pattern[str] = SHELL_PROMPT,
        timeout: float | None = None,
    ) -> None:
        """Log in at a getty's login prompt and wait for the shell prompt.

        Raises `QemuError` when the guest prints "Login incorrect".
        """
        self.wait_for(re.compile(r"login: ?$", re.MULTILINE), timeout)
        self.send_line(user)
        self.wait_for(re.compile(r"[Pp]assword: ?$", re.MULTILINE), timeout)
        self.send_line(password)
        result = re.compile(
            rf"(?P<prompt>{prompt.pattern})|(?P<failed>Login incorrect)", prompt.flags
        )
        if self.wait_for(result, timeout).group("failed") is not None:
            raise QemuError(f"login as {user!r} on {self.name} failed: Login incorrect")

    def run(self, command: str, timeout: float | None = None, *, check: bool = True) -> str:
        """Type `command` at a shell prompt and return its output with "\\r\\n" turned to "\\n".

        The command must be one shell line without a trailing comment or "&". Its output is
        found between two markers that the shell prints and that its echo of the typed line
        does not contain. Raises `GuestCommandError` on a nonzero exit status when `check` is set.
        """
        token = secrets.token_hex(8)
        begin = f"OIC-BEGIN-{token}"
        end = f"OIC-END-{token}"
        # The empty quotes split each marker in the echoed line, but not in the shell's output.
        self.send_line(
            f"echo OIC-BEGIN-''{token}; {command}; printf '\\n%s %d\\n' OIC-END-''{token} \"$?\""
        )
        output_pattern = re.compile(
            rf"{re.escape(begin)}\r?\n(?P<output>.*?){re.escape(end)} (?P<status>\d+)\r?\n",
            re.DOTALL,
        )
        match = self.wait_for(output_pattern, timeout)
        # printf adds one newline before the end marker, so output without one stays without.
        output = match.group("output").replace("\r\n", "\n")[:-1]
        status = int(match.group("status"))
        if check and status != 0:
            raise GuestCommandError(
                f"command {command!r} on {self.name} exited with status {status}:\n{output}",
                command=command,
                status=status,
                output=output,
            )
        return output

    def wait_exit(self, timeout: float | None = None) -> int:
        """Wait until QEMU exits and return its status. Raises `BootTimeout` when it runs on."""
        if self._process is None:
            raise QemuError(f"the VM {self.name} is not started")
        limit = self._scale(timeout)
        start = time.monotonic()
        try:
            return self._process.wait(limit)
        except subprocess.TimeoutExpired:
            raise self._timeout_error("<QEMU exit>", time.monotonic() - start, limit) from None

    def poweroff(self, command: str = "poweroff", timeout: float | None = None) -> int:
        """Type `command` at the shell prompt and wait until QEMU exits; return its status."""
        self.send_line(command)
        return self.wait_exit(timeout)

    # -- helpers --------------------------------------------------------------------------------

    def _scale(self, timeout: float | None) -> float:
        return (self.default_timeout if timeout is None else timeout) * self.timeout_factor

    def _wait_exit_quietly(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(TERMINATE_GRACE)

    def _timeout_error(self, pattern: str, elapsed: float, limit: float) -> BootTimeout:
        uptime = time.monotonic() - self.started_at
        tail = self.console_tail()
        message = (
            f"timed out after {elapsed:.1f} s waiting for {pattern!r} on the console of "
            f"{self.name} (accelerator {self.accelerator}, limit {limit:.1f} s, "
            f"VM up {uptime:.1f} s, console log {self.log_path})\n"
            f"last {TAIL_LINES} console lines:\n{tail}"
        )
        return BootTimeout(
            message,
            pattern=pattern,
            elapsed=elapsed,
            accelerator=self.accelerator,
            console_tail=tail,
        )


def boot_image(
    image: Path | str | None = None,
    *,
    kernel: KernelBoot | None = None,
    memory_mib: int = 1024,
    cpus: int = 2,
    timeout: float = DEFAULT_TIMEOUT,
    accelerator: Accelerator | None = None,
    log_path: Path | None = None,
    image_format: str | None = None,
    drive_interface: str = "virtio",
    extra_args: Sequence[str] = (),
) -> BootedVM:
    """Describe a VM that boots `image`, `kernel` or both. Use the result in a ``with`` block.

    `timeout` is the default of each wait in seconds under KVM. `accelerator` None probes for
    KVM. `log_path` None writes the console log into the private folder, which `close` removes.
    `image_format` None detects qcow2 by its magic number and otherwise uses raw.
    """
    return BootedVM(
        None if image is None else Path(image),
        kernel=kernel,
        memory_mib=memory_mib,
        cpus=cpus,
        timeout=timeout,
        accelerator=accelerator,
        log_path=log_path,
        image_format=image_format,
        drive_interface=drive_interface,
        extra_args=extra_args,
    )
