"""`os-image-composer build` end to end, against the real Debian packages of the test mirror.

The images boot under qemu-system-x86_64 with OVMF (TCG on machines where KVM does not work),
and a login over the serial console checks the running system. Failures injected in each stage,
a failing configuration script and SIGINT must leave no mounts or loop devices and keep the
caches and the previous output intact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from os_image_composer.testing.pytest_plugin import BootImageFactory, DebianMirror
from os_image_composer.testing.qemu import BootedVM

PROVIDER = "debian-debian12-x86_64"
COMMAND = [sys.executable, "-m", "os_image_composer"]

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="building an image needs root"),
]

# The marker unit proves that systemd reached multi-user.target and ran a unit of the image.
MARKER_UNIT = """\
[Unit]
Description=Print a marker for the boot test
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "OIC-USERSPACE-UP $(cat /etc/hostname)" > /dev/console'

[Install]
WantedBy=multi-user.target
"""

# Runs inside the image. `$(...)`, `$HOME` and the variable must reach the image's shell as
# written, and the heredoc must keep its lines.
CONFIGURATION = """\
cat > /etc/oic-verbatim <<'EOF'
line one $HOME
line two $(uname -m)
EOF
echo "home=$HOME host=${OIC_HOST_ONLY:-unset}" > /etc/oic-expanded
systemctl enable oic-marker.service
# The build writes /etc/fstab after the scripts: it must replace this link, not follow it to
# a file of the build host.
ln -sf /tmp/oic-build-test-canary /etc/fstab
"""

# Host paths that symlinks inside the image name: /etc/localtime points to this file, and
# /var/run to /run. Files the build copies to those names must stay inside the image.
HOST_ZONEINFO = Path("/usr/share/zoneinfo/Etc/UTC")
HOST_RUN_ESCAPE = Path("/run/oic-build-test-escape")
CANARY = Path("/tmp/oic-build-test-canary")


@dataclass(frozen=True)
class BuildEnv:
    """A configuration that points the provider at the mirror, with shared caches."""

    root: Path
    config: Path

    @property
    def work(self) -> Path:
        return self.root / "work" / PROVIDER

    def output(self, name: str) -> Path:
        return self.work / "imagebuild" / name

    def build(
        self, template: Path, *, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "os_image_composer", "--config", str(self.config)]
        return subprocess.run(
            [*command, "build", "--json", str(template)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **(env or {})},
        )

    def template(self, name: str, body: str) -> Path:
        path = self.root / f"{name}.yml"
        path.write_text(body, encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def build_env(
    tmp_path_factory: pytest.TempPathFactory, debian_mirror: DebianMirror
) -> Iterator[BuildEnv]:
    root = tmp_path_factory.mktemp("build")
    config = root / "config.yml"
    config.write_text(
        f"cache_dir: {root / 'cache'}\n"
        f"work_dir: {root / 'work'}\n"
        f"temp_dir: {root / 'tmp'}\n"
        "providers:\n"
        f"  {PROVIDER}:\n"
        "    repositories:\n"
        f"      - {{name: bookworm, url: {debian_mirror.url}, suite: bookworm, "
        "keys: [embedded:debian-archive-bookworm-automatic.gpg]}\n",
        encoding="utf-8",
    )
    (root / "files").mkdir()
    (root / "files" / "oic-marker.service").write_text(MARKER_UNIT, encoding="utf-8")
    yield BuildEnv(root=root, config=config)
    # Image roots and disks take gigabytes; the console logs of failed tests stay elsewhere.
    if not leftovers(root):
        shutil.rmtree(root, ignore_errors=True)


def image_template(
    name: str,
    *,
    bootloader: str = "grub",
    artifacts: str = "[{type: raw}]",
    configurations: str | None = None,
    root_size: str = '"0"',
    extra_partitions: str = "",
) -> str:
    configuration = json.dumps(configurations if configurations is not None else CONFIGURATION)
    return f"""\
image: {{name: {name}, version: "2.1"}}
target: {{os: debian, dist: debian12, arch: x86_64, imageType: raw}}
disk:
  name: {name}
  artifacts: {artifacts}
  size: 2GiB
  partitionTableType: gpt
  partitions:
    - {{id: esp, type: esp, flags: [esp, boot], start: 1MiB, end: 129MiB, fsType: fat32,
        fsLabel: ESP, mountPoint: /boot/efi, mountOptions: umask=0077}}
    - {{id: rootfs, type: linux-root-amd64, start: 129MiB, end: {root_size}, fsType: ext4,
        fsLabel: rootfs, mountPoint: /}}
{extra_partitions}systemConfig:
  name: {name}
  hostname: {name}-host
  packages: [systemd, systemd-sysv, udev, openssh-server, sudo]
  kernel:
    cmdline: "console=ttyS0,115200 rw"
    packages: [linux-image-amd64]
  bootloader: {{bootType: efi, provider: {bootloader}}}
  users:
    - {{name: tester, password: composer, hashAlgo: sha512, groups: [sudo], sudo: true,
        shell: /bin/bash}}
  additionalFiles:
    - {{local: files/oic-marker.service, final: /etc/systemd/system/oic-marker.service}}
    - {{local: files/oic-marker.service, final: /etc/localtime}}
    - {{local: files/oic-marker.service, final: /var/run/oic-build-test-escape}}
  configurations:
    - cmd: {configuration}
"""


def report_of(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def caches_of(report: dict[str, object]) -> dict[str, str]:
    caches = report["caches"]
    assert isinstance(caches, list)
    return {entry["cache"]: entry["outcome"] for entry in caches}


def leftovers(root: Path) -> list[str]:
    """Mounts below `root` and loop devices backed by files below it."""
    mounts = [
        line
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
        if str(root) in line
    ]
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return mounts + [line for line in loops.splitlines() if str(root) in line]


def run(vm: BootedVM, command: str) -> str:
    """The output of `command` in the guest, without the final newline."""
    return vm.run(command).rstrip("\n")


def boot_and_check(
    boot_image: BootImageFactory,
    image: Path,
    hostname: str,
    extra: Callable[[BootedVM], None] | None = None,
) -> None:
    """Boot `image`, log in and check the configured system; `extra` checks more."""
    with boot_image(image, timeout=40) as vm:
        vm.wait_for(f"OIC-USERSPACE-UP {hostname}")
        # The marker may follow the first login prompt: an empty line makes getty ask again.
        vm.send_line("")
        vm.login("tester", "composer")
        assert run(vm, "cat /etc/hostname") == hostname
        assert run(vm, "cat /etc/oic-verbatim") == "line one $HOME\nline two $(uname -m)"
        assert run(vm, "cat /etc/oic-expanded") == "home=/root host=unset"
        assert run(vm, "findmnt -n -o FSTYPE /") == "ext4"
        assert run(vm, "findmnt -n -o FSTYPE /boot/efi") == "vfat"
        assert run(vm, "test -L /etc/fstab || echo file") == "file"
        assert run(vm, "cat /etc/localtime") == MARKER_UNIT.rstrip("\n")
        assert run(vm, "test -s /etc/machine-id && echo set") == "set"
        assert run(vm, "systemctl is-active ssh.service") == "active"
        assert run(vm, "ls /etc/ssh/ssh_host_ed25519_key") == "/etc/ssh/ssh_host_ed25519_key"
        version = run(vm, 'grep -o \'"spdxVersion": *"[^"]*"\' /usr/share/sbom/*.spdx.json')
        assert version.endswith('"SPDX-2.3"'), version
        assert run(vm, "id -nG tester").split() == ["tester", "sudo"]
        assert run(vm, "uname -r") == run(vm, "ls /usr/lib/modules")
        if extra is not None:
            extra(vm)


def test_grub_image_boots_and_warm_rebuild_reuses_caches(
    build_env: BuildEnv, boot_image: BootImageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = build_env.template("grub", image_template("grub"))
    monkeypatch.setenv("OIC_HOST_ONLY", "from-the-host")

    zoneinfo = HOST_ZONEINFO.read_bytes()
    CANARY.write_text("untouched", encoding="utf-8")
    cold = report_of(build_env.build(template))
    assert caches_of(cold)["image root"] == "miss"
    assert HOST_ZONEINFO.read_bytes() == zoneinfo
    assert not HOST_RUN_ESCAPE.exists()
    assert CANARY.read_text(encoding="utf-8") == "untouched"
    CANARY.unlink()
    stages = [entry["stage"] for entry in cold["stages"]]  # type: ignore[attr-defined]
    assert stages == [
        "load template",
        "init provider",
        "validate",
        "packages",
        "compose",
        "finalize",
    ]
    output = build_env.output("grub")
    image = output / "grub-2.1.raw"
    assert image.is_file()
    assert (output / "grub-2.1.spdx.json").is_file()
    assert (build_env.root / "tmp" / "grub-2.1.spdx.json").is_file()
    assert json.loads((output / "build-report.json").read_text(encoding="utf-8"))["kernel"]
    # The raw file is sparse: far fewer blocks than its size.
    assert image.stat().st_blocks * 512 < image.stat().st_size // 2
    boot_and_check(boot_image, image, "grub-host")

    warm = report_of(build_env.build(template))
    assert caches_of(warm) == {"packages": "hit", "chroot": "hit", "image root": "hit"}
    assert warm["kernel"] == cold["kernel"]
    boot_and_check(boot_image, image, "grub-host")
    assert leftovers(build_env.root) == []


# The systemd-boot image also has an XFS data partition and swap.
SDBOOT_PARTITIONS = """\
    - {id: srv, type: linux, start: 1600MiB, end: 1984MiB, fsType: xfs, fsLabel: srv,
        mountPoint: /srv}
    - {id: swap, type: linux-swap, start: 1984MiB, end: "0", fsType: swap, mountPoint: none}
"""


def sdboot_template() -> str:
    return image_template(
        "sdboot",
        bootloader="systemd-boot",
        artifacts="[{type: qcow2}, {type: raw, compression: zst}]",
        root_size="1600MiB",
        extra_partitions=SDBOOT_PARTITIONS,
    ).replace(
        "final: /etc/systemd/system/oic-marker.service}",
        "final: /etc/systemd/system/oic-marker.service}\n"
        "    - {local: files/oic-marker.service, final: /srv/data/marker.service}",
    )


def test_systemd_boot_qcow2_boots(build_env: BuildEnv, boot_image: BootImageFactory) -> None:
    body = sdboot_template()
    report = report_of(build_env.build(build_env.template("sdboot", body)))
    output = build_env.output("sdboot")
    assert sorted(path.name for path in output.iterdir()) == [
        "build-report.json",
        "sdboot-2.1.qcow2",
        "sdboot-2.1.raw.zst",
        "sdboot-2.1.spdx.json",
    ]
    assert report["kernel"]

    def more(vm: BootedVM) -> None:
        assert run(vm, "findmnt -n -o FSTYPE,LABEL /srv").split() == ["xfs", "srv"]
        assert run(vm, "cat /srv/data/marker.service") == MARKER_UNIT.rstrip("\n")
        assert run(vm, "awk 'NR > 1 {print $2}' /proc/swaps") == "partition"
        # systemd-boot records itself in the LoaderInfo EFI variable (UTF-16, readable by all).
        loader = "/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
        assert run(vm, f"tr -d '\\000' < {loader} | grep -o systemd-boot") == "systemd-boot"

    boot_and_check(boot_image, output / "sdboot-2.1.qcow2", "sdboot-host", more)


def test_builds_of_different_names_run_at_once(build_env: BuildEnv) -> None:
    templates = [
        build_env.template("grub", image_template("grub")),
        build_env.template("sdboot", sdboot_template()),
    ]
    command = [*COMMAND, "--config", str(build_env.config), "build", "--json"]
    processes = [
        subprocess.Popen([*command, str(template)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for template in templates
    ]
    outputs = [process.communicate(timeout=900) for process in processes]

    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()[-4000:]
    reports = [json.loads(stdout) for stdout, _ in outputs]
    assert {report["outputDir"] for report in reports} == {
        str(build_env.output("grub")),
        str(build_env.output("sdboot")),
    }
    assert leftovers(build_env.root) == []


@pytest.mark.parametrize(
    "stage", ["load template", "init provider", "validate", "packages", "compose", "finalize"]
)
def test_injected_failure_leaves_nothing_behind(build_env: BuildEnv, stage: str) -> None:
    template = build_env.template("grub", image_template("grub"))
    output = build_env.output("grub")
    before = (
        {path.name: path.stat().st_mtime_ns for path in output.iterdir()} if output.exists() else {}
    )

    result = build_env.build(template, env={"OIC_TEST_FAIL_STAGE": stage})

    assert result.returncode == 1
    assert f"Failure injected by OIC_TEST_FAIL_STAGE in stage `{stage}`" in result.stderr
    assert leftovers(build_env.root) == []
    assert not (build_env.work / "imagebuild" / ".grub.partial").exists()
    after = (
        {path.name: path.stat().st_mtime_ns for path in output.iterdir()} if output.exists() else {}
    )
    assert after == before, "the previous output changed"
    if (build_env.root / "cache" / "pkgCache" / PROVIDER).is_dir():
        arguments = ["cache", "verify", "--provider-id", PROVIDER]
        verify = subprocess.run(
            [*COMMAND, "--config", str(build_env.config), *arguments],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr


def debugfs_cat(disk: Path, offset: int, path: str) -> str:
    """The file `path` of the ext4 file system at byte `offset` of `disk`, read with debugfs."""
    command = ["debugfs", "-R", f'cat "{path}"', f"{disk}?offset={offset}"]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return completed.stdout


def test_image_without_bootloader(build_env: BuildEnv) -> None:
    esp = """\
    - {id: esp, type: esp, flags: [esp, boot], start: 1MiB, end: 129MiB, fsType: fat32,
        fsLabel: ESP, mountPoint: /boot/efi, mountOptions: umask=0077}
"""
    body = image_template("noboot").replace(esp, "").replace("start: 129MiB", "start: 1MiB")
    body = body.replace("provider: grub", "provider: none")
    assert esp not in body
    report = report_of(build_env.build(build_env.template("noboot", body)))

    assert report["kernel"] == ""
    disk = build_env.output("noboot") / "noboot-2.1.raw"
    listing = subprocess.run(
        ["sfdisk", "--json", str(disk)], capture_output=True, text=True, check=True
    ).stdout
    (partition,) = json.loads(listing)["partitiontable"]["partitions"]
    offset = partition["start"] * 512
    status = debugfs_cat(disk, offset, "/var/lib/dpkg/status")
    assert "Package: linux-image-amd64\n" in status
    assert "Package: grub-efi-amd64\n" not in status
    fstab = debugfs_cat(disk, offset, "/etc/fstab")
    mount_points = [line.split()[1] for line in fstab.splitlines() if line.startswith("UUID=")]
    assert mount_points == ["/"]
    assert debugfs_cat(disk, offset, "/etc/hostname") == "noboot-host\n"
    assert leftovers(build_env.root) == []


def test_failing_configuration_names_the_entry(build_env: BuildEnv) -> None:
    script = "echo preparing\nfalse\necho never"
    body = image_template("badconf", configurations=script)
    result = build_env.build(build_env.template("badconf", body))

    assert result.returncode == 1
    assert "systemConfig.configurations[0] (`echo preparing`) failed inside the image" in (
        result.stderr
    )
    assert leftovers(build_env.root) == []
    assert not build_env.output("badconf").exists()
    assert not (build_env.work / "imageroot" / "badconf" / "current").exists()


def test_sigint_during_compose_releases_mounts(build_env: BuildEnv) -> None:
    template = build_env.template("interrupted", image_template("interrupted"))
    command = [sys.executable, "-m", "os_image_composer", "--config", str(build_env.config)]
    process = subprocess.Popen(
        [*command, "build", str(template)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    partial = build_env.work / "imageroot" / "interrupted" / "partial" / "root"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        # Interrupt while dpkg runs inside the image root with its mounts.
        if any(str(partial / "proc") in line for line in leftovers(build_env.root)):
            break
        time.sleep(0.2)
    assert process.poll() is None, "the build ended before its image root was mounted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    assert stderr.rstrip().endswith("interrupted"), stderr
    assert leftovers(build_env.root) == []
    assert not build_env.output("interrupted").exists()

    rerun = report_of(build_env.build(template))
    assert caches_of(rerun)["image root"] == "miss"
    shutil.rmtree(build_env.output("interrupted"))


def test_root_too_small_fails_before_download(build_env: BuildEnv) -> None:
    body = image_template("tiny", root_size="200MiB")
    result = build_env.build(build_env.template("tiny", body))

    assert result.returncode == 1
    assert "Partition `rootfs`, mounted at `/`, is too small" in result.stderr
    assert "the partition has 74448896" in result.stderr
    assert not (build_env.work / "imageroot" / "tiny").exists()


def test_build_without_root_fails_before_any_download(build_env: BuildEnv) -> None:
    # The interpreter may live where an unprivileged user cannot read it, so the modules are
    # imported as root and the process then drops to nobody before building.
    # The template and its files go where nobody can read them, and no configuration is read.
    readable = Path(tempfile.mkdtemp(prefix="oic-nonroot-"))
    try:
        readable.chmod(0o755)
        shutil.copytree(build_env.root / "files", readable / "files")
        template = readable / "grub.yml"
        template.write_text(image_template("grub"), encoding="utf-8")
        result = _run_as_nobody(template)
    finally:
        shutil.rmtree(readable)
    assert result.returncode == 1, result.stderr
    assert "building an image needs root" in result.stderr
    assert "core: Building an image needs root" in result.stdout


def _run_as_nobody(template: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "import gettext, locale, os, sys\n"
        "from os_image_composer import cli, _native, BuildError\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"code = cli.main(['build', {str(template)!r}])\n"
        "try:\n"
        f"    _native.build_template({str(template)!r})\n"
        "except BuildError as error:\n"
        "    print('core:', error)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd="/"
    )
