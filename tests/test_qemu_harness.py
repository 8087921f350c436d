"""The QEMU boot harness against real QEMU: a Debian kernel with a busybox initramfs.

The kernel is $OIC_TEST_KERNEL, the newest /boot/vmlinuz-*, or the vmlinuz inside the
linux-image .deb of the test mirror of Debian packages. The initramfs is built here: a static
busybox and an /init that prints a marker, echoes one console line back, runs a shell on the
console and powers off when the shell exits.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from os_image_composer.errors import ComposerError
from os_image_composer.testing import qemu
from os_image_composer.testing.mirror import default_dir
from os_image_composer.testing.qemu import BootTimeout, GuestCommandError, KernelBoot

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(shutil.which(qemu.QEMU) is None, reason="qemu-system-x86 not installed"),
    pytest.mark.skipif(not qemu.OVMF_CODE.is_file(), reason="ovmf not installed"),
]

BUSYBOX = Path("/bin/busybox")
READY = "OIC-INIT-READY"
SHELL_PROMPT = "oic# "
INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo {READY}
read -r line
echo "OIC-ECHO:$line"
export PS1='{SHELL_PROMPT}'
setsid cttyhack sh
echo OIC-SHELL-EXITED
poweroff -f
"""
# panic=-1 turns a crash of /init into a reboot, which -no-reboot turns into QEMU's exit.
KERNEL_APPEND = "console=ttyS0 panic=-1 quiet"


def newc_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    """Return one record of a cpio archive in the "newc" format that the kernel unpacks."""
    encoded = name.encode() + b"\0"
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    record = header + encoded
    record += b"\0" * (-len(record) % 4)
    record += data
    return record + b"\0" * (-len(record) % 4)


def build_initramfs(path: Path) -> None:
    entries = [newc_entry(name, stat.S_IFDIR | 0o755) for name in ("bin", "dev", "proc", "sys")]
    entries += [
        newc_entry("sbin", stat.S_IFDIR | 0o755),
        newc_entry("usr", stat.S_IFDIR | 0o755),
        newc_entry("usr/bin", stat.S_IFDIR | 0o755),
        newc_entry("usr/sbin", stat.S_IFDIR | 0o755),
        newc_entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        newc_entry("bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes()),
        newc_entry("init", stat.S_IFREG | 0o755, INIT_SCRIPT.encode()),
        newc_entry("TRAILER!!!", 0),
    ]
    path.write_bytes(b"".join(entries))


def extract_vmlinuz(deb: Path, target_dir: Path) -> Path:
    """Extract boot/vmlinuz-* from a linux-image .deb with dpkg-deb."""
    data = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if member.isfile() and re.fullmatch(r"\./boot/vmlinuz-.*", member.name):
                source = archive.extractfile(member)
                assert source is not None
                target = target_dir / Path(member.name).name
                target.write_bytes(source.read())
                return target
    raise AssertionError(f"{deb} contains no boot/vmlinuz-*")


@pytest.fixture(scope="session")
def boot_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if configured := os.environ.get("OIC_TEST_KERNEL"):
        return Path(configured)
    host_kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if host_kernels:
        return host_kernels[-1]
    debs = sorted(default_dir().glob("debian/pool/main/l/linux-signed-amd64/linux-image-*.deb"))
    # The linux-image-amd64 metapackage is small and contains no kernel.
    debs = [deb for deb in debs if deb.stat().st_size > 1_000_000]
    if not debs:
        pytest.skip(
            "no kernel: set OIC_TEST_KERNEL, install a linux-image package, or prepare the "
            "test mirror (make demo)"
        )
    return extract_vmlinuz(debs[-1], tmp_path_factory.mktemp("kernel"))


@pytest.fixture(scope="session")
def busybox_initramfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", "busybox-static"],
        capture_output=True,
        text=True,
        check=False,
    )
    if "install ok installed" not in status.stdout:
        pytest.skip("busybox-static is not installed: run scripts/setup.sh")
    path = tmp_path_factory.mktemp("initramfs") / "initramfs.cpio"
    build_initramfs(path)
    return path


@pytest.fixture
def kernel_boot(boot_kernel: Path, busybox_initramfs: Path) -> KernelBoot:
    return KernelBoot(kernel=boot_kernel, initrd=busybox_initramfs, append=KERNEL_APPEND)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_console_echo_run_and_poweroff(
    kernel_boot: KernelBoot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "console.log"
    with qemu.boot_image(kernel=kernel_boot, memory_mib=256, timeout=15, log_path=log_path) as vm:
        assert vm.accelerator in ("kvm", "tcg")
        started = time.monotonic()
        vm.wait_for(READY)
        boot_seconds = time.monotonic() - started

        vm.send_line("hello from the host 42")
        echoed = vm.wait_for(re.compile(r"OIC-ECHO:(.*?)\r?\n"))
        assert echoed.group(1) == "hello from the host 42"

        vm.wait_for(SHELL_PROMPT)
        assert vm.run("echo $((6 * 7)); uname -s") == "42\nLinux\n"
        assert vm.run("printf 'no newline'") == "no newline"
        assert vm.run("true") == ""
        with pytest.raises(GuestCommandError) as failed:
            vm.run("echo before; (exit 3)")
        assert failed.value.status == 3
        assert failed.value.output == "before\n"
        assert vm.run("(exit 4)", check=False) == ""

        assert vm.poweroff(command="exit") == 0
    assert "OIC-SHELL-EXITED" in vm.console_log
    assert log_path.read_bytes().decode(errors="replace") == vm.console_log
    with capsys.disabled():
        print(f"\n{vm.accelerator}: /init marker after {boot_seconds:.1f} s")


def test_wait_timeout_raises_boot_timeout(kernel_boot: KernelBoot) -> None:
    with qemu.boot_image(kernel=kernel_boot, memory_mib=256, timeout=15) as vm:
        vm.wait_for(READY)
        with pytest.raises(BootTimeout) as timeout:
            vm.wait_for("never printed", timeout=0.5)
    error = timeout.value
    assert error.pattern == "never printed"
    assert error.accelerator == vm.accelerator
    assert error.elapsed >= 0.5 * vm.timeout_factor
    assert READY in error.console_tail
    assert "'never printed'" in str(error)
    assert f"accelerator {vm.accelerator}" in str(error)
    assert READY in str(error)
    assert isinstance(error, ComposerError)


@pytest.mark.parametrize("raised", [RuntimeError, KeyboardInterrupt])
def test_qemu_reaped_when_body_raises(
    kernel_boot: KernelBoot, raised: Callable[[str], BaseException]
) -> None:
    booted = qemu.boot_image(kernel=kernel_boot, memory_mib=256)
    with pytest.raises((RuntimeError, KeyboardInterrupt)), booted as vm:
        pid = vm.pid
        workdir = vm.workdir
        assert process_exists(pid)
        raise raised("test body failed")
    assert vm.returncode is not None
    assert not process_exists(pid)
    assert workdir is not None
    assert not workdir.exists()


def test_disk_image_opened_as_snapshot(kernel_boot: KernelBoot, tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\xa5" * (1 << 20))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    with qemu.boot_image(image, kernel=kernel_boot, memory_mib=256, timeout=15) as vm:
        vm.wait_for(READY)
        drives = [arg for arg in vm.command if arg.startswith(f"file={image},")]
        assert drives == [f"file={image},format=raw,if=virtio,snapshot=on"]
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest
    assert sorted(path.name for path in tmp_path.iterdir()) == ["disk.raw"]


def test_qemu_exit_during_wait_raises() -> None:
    missing = Path("/nonexistent/vmlinuz")
    booted = qemu.boot_image(kernel=KernelBoot(kernel=missing), timeout=5)
    with booted as vm, pytest.raises(qemu.QemuError) as exited:
        vm.wait_for("never printed")
    assert "QEMU exited with status 1" in str(exited.value)
    assert str(missing) in str(exited.value)


def test_fixture_reports_console_tail(kernel_boot: KernelBoot, tmp_path: Path) -> None:
    inner = tmp_path / "test_inner.py"
    inner.write_text(
        "from pathlib import Path\n"
        "from os_image_composer.testing.qemu import KernelBoot\n\n"
        "def test_fails_after_boot(boot_image):\n"
        f"    kernel = KernelBoot(Path({str(kernel_boot.kernel)!r}), "
        f"Path({str(kernel_boot.initrd)!r}), {kernel_boot.append!r})\n"
        "    with boot_image(kernel=kernel, memory_mib=256, timeout=15) as vm:\n"
        f"        vm.wait_for({READY!r})\n"
        "        vm.send_line('x')\n"
        f"        vm.wait_for({SHELL_PROMPT!r})\n"
        "        assert vm.run('echo guest-says-$((40 + 2))') == 'something else'\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'inner'}",
            str(inner),
        ],
        cwd=tmp_path,
        # The package's own folder, so the child imports the same os_image_composer.
        env={**os.environ, "PYTHONPATH": str(Path(qemu.__file__).parents[2])},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "console of vmlinuz" in result.stdout
    assert "guest-says-42" in result.stdout
    assert (tmp_path / "inner" / "test_fails_after_boot0" / "console-0.log").is_file()
