"""The example image built, inspected and booted through the public Python API only.

The builds use the plugin's `composer` (private folders, the Debian provider pointed at the
real-package mirror) and `built_image` fixtures. The example template gets one extra user with
a password, because its own user is locked and the boot test logs in on the serial console.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import os_image_composer as oic
from os_image_composer.testing.image import BuiltImage, ImageInspectionError, Login
from os_image_composer.testing.pytest_plugin import BuiltImageFactory, DebianMirror

PROVIDER = "debian-debian12-x86_64"
EXAMPLE = Path(__file__).parent.parent / "image-templates" / "debian12-x86_64-minimal-raw.yml"
LOGIN = Login("tester", "composer")
TEST_USER = f"""\
    - name: {LOGIN.user}
      password: {LOGIN.password}
      hashAlgo: sha512
      shell: /bin/bash
"""

pytestmark = [pytest.mark.slow]


def example_text(name: str = "minimal") -> str:
    """The example template with a test user, and `systemConfig.name` set to `name`."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.rstrip().endswith("shell: /bin/bash"), "the example no longer ends with its user"
    text = text.replace("systemConfig:\n  name: minimal\n", f"systemConfig:\n  name: {name}\n")
    return text.rstrip("\n") + "\n" + TEST_USER


@pytest.fixture(scope="module")
def example(built_image: BuiltImageFactory) -> BuiltImage:
    if os.geteuid() != 0:
        pytest.skip("building an image needs root")
    return built_image(example_text(), login=LOGIN)


def mounts_below(root: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if str(root) in line]


def test_repository_lookup_on_mirror(composer: oic.Composer, debian_mirror: DebianMirror) -> None:
    provider = composer.provider(PROVIDER)
    assert [repository.name for repository in provider.repositories] == ["bookworm"]
    assert provider.keys == ["embedded:debian-archive-bookworm-automatic.gpg"]
    assert "systemConfig:" in provider.default_template

    repository = provider.repository("bookworm").load()
    assert repository.status.signature["status"] == "verified"
    assert repository.status.url == debian_mirror.url
    systemd = repository.get("systemd")
    assert isinstance(systemd, oic.Package)
    assert systemd.version == debian_mirror.packages["systemd"]
    assert systemd.filename.startswith("pool/main/s/systemd/")
    assert len(systemd.sha256) == 64
    assert any(group.startswith("libsystemd-shared ") for group in systemd.depends)
    assert "linux-image-amd64" in repository
    assert {package.name for package in repository.search("linux-image-*")} >= {"linux-image-amd64"}
    with pytest.raises(oic.MetadataError, match="has no repository `missing`"):
        oic.Repository(PROVIDER, {"name": "missing"}, composer.config).load()


@pytest.mark.root
def test_example_build_result(example: BuiltImage) -> None:
    result = example.result
    assert [artifact.kind for artifact in result.artifacts] == ["raw"]
    assert result.image.is_file()
    assert result.image.name == "debian12-minimal-1.0.0.raw"
    assert all(path.is_file() for path in result.sbom)
    assert [stage.stage for stage in result.stages] == [
        "load template",
        "init provider",
        "validate",
        "packages",
        "compose",
        "finalize",
    ]
    assert result.kernel.endswith("-amd64")
    html = result._repr_html_()
    assert "<td>compose</td>" in html
    assert str(result.image) in html
    assert "<td>image root</td>" in html


@pytest.mark.root
def test_example_files(example: BuiltImage) -> None:
    assert "hostname" in example.list_files("/etc")
    assert example.read_text("/etc/hostname") == "debian-minimal\n"
    assert "90-oic-admin" in example.list_files("/etc/sudoers.d")
    sbom = json.loads(example.read_text("/usr/share/sbom/debian12-minimal-1.0.0.spdx.json"))
    assert sbom["spdxVersion"] == "SPDX-2.3"
    assert example.read_text("/etc/machine-id") == ""
    with pytest.raises(ImageInspectionError, match="only ext2, ext3 and ext4"):
        example.list_files("/boot/efi")
    with pytest.raises(ImageInspectionError, match="not-there"):
        example.read_file("/etc/not-there")


@pytest.mark.root
def test_example_packages(example: BuiltImage) -> None:
    packages = example.packages()
    assert {"systemd", "systemd-sysv", "udev", "openssh-server", "sudo"} <= packages.keys()
    assert f"linux-image-{example.result.kernel}" in packages
    assert len(packages) == example.result.packages


@pytest.mark.root
def test_chroot_status_after_build(composer: oic.Composer, example: BuiltImage) -> None:
    status = composer.chroot(PROVIDER).status()
    assert status.exists
    assert status.snapshot_exists
    assert status.snapshot_matches
    assert status.differences == ()
    assert status.product_version == oic.__version__
    assert status.packages > 0


@pytest.mark.root
def test_warm_async_builds_reuse_caches(composer: oic.Composer, example: BuiltImage) -> None:
    template = example.template.path
    assert template is not None
    events: list[str] = []

    async def build_twice() -> list[oic.BuildResult]:
        first = composer.build_async(template, progress=lambda event, _n, _x: events.append(event))
        second = composer.build_async(template, progress=oic.TqdmProgress(file=io.StringIO()))
        return list(await asyncio.gather(first, second))

    results = asyncio.run(build_twice())
    for result in results:
        outcomes = {use.cache: use.outcome for use in result.caches}
        assert outcomes == {"packages": "hit", "chroot": "hit", "image root": "hit"}
        assert result.kernel == example.result.kernel
    assert events.count("start") == events.count("finish")
    assert events.count("start") >= 1


@pytest.mark.root
@pytest.mark.boot
def test_example_boots_and_runs_command(example: BuiltImage) -> None:
    output = example.run("uname -r; cat /etc/hostname; systemctl is-system-running --wait")
    # Kernel and systemd messages on the serial console can land between the command's lines.
    lines = output.splitlines()
    assert example.result.kernel in lines, output
    assert "debian-minimal" in lines, output
    assert {"running", "degraded"} & set(lines), output


# A Python program that builds through Composer, is stopped with SIGINT by the test, then checks
# its own mounts and builds the same template again in the same process.
SIGINT_PROGRAM = """\
import sys
import os_image_composer as oic
composer = oic.Composer.from_file(sys.argv[1])
try:
    composer.build(sys.argv[2])
except KeyboardInterrupt:
    print("interrupted", flush=True)
else:
    sys.exit("the build was not interrupted")
with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
    left = [line for line in mountinfo if sys.argv[3] in line]
print("mounts left:", len(left), flush=True)
result = composer.build(sys.argv[2])
print("rebuilt:", result.artifacts[0].path.name, flush=True)
"""


@pytest.mark.root
def test_sigint_during_build_raises_keyboard_interrupt(
    composer: oic.Composer, example: BuiltImage, tmp_path: Path
) -> None:
    config_file = composer.config.file
    assert config_file is not None
    template = tmp_path / "interrupted.yml"
    template.write_text(example_text("interrupted"), encoding="utf-8")
    work = composer.config.work_dir / PROVIDER
    process = subprocess.Popen(
        [sys.executable, "-c", SIGINT_PROGRAM, str(config_file), str(template), str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc_mount = work / "imageroot" / "interrupted" / "partial" / "root" / "proc"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if any(str(proc_mount) in line for line in mounts_below(work)):
            break
        time.sleep(0.2)
    assert process.poll() is None, "the build ended before its image root was mounted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=900)

    assert process.returncode == 0, stderr[-4000:]
    assert stdout.splitlines() == [
        "interrupted",
        "mounts left: 0",
        "rebuilt: debian12-minimal-1.0.0.raw",
    ], stderr[-4000:]
    assert "Traceback" not in stderr
    assert mounts_below(composer.config.work_dir) == []
    assert (work / "imageroot" / "interrupted" / "current").is_dir()
    verify = composer.cache.verify(PROVIDER)
    assert verify["mismatched"] == []
    assert verify["ok"] > 0


# A Python program that cancels the asyncio task of a build once the build has mounted its
# image root, then counts its own mounts.
CANCEL_TASK_PROGRAM = """\
import asyncio
import sys
import os_image_composer as oic

def mounted(marker):
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return [line for line in mountinfo if marker in line]

async def main():
    composer = oic.Composer.from_file(sys.argv[1])
    task = asyncio.create_task(composer.build_async(sys.argv[2]))
    while not task.done() and not mounted(sys.argv[3] + "/proc"):
        await asyncio.sleep(0.1)
    if task.done():
        sys.exit("the build ended before its image root was mounted")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("cancelled", flush=True)
    print("mounts left:", len(mounted(sys.argv[4])), flush=True)

asyncio.run(main())
"""


@pytest.mark.root
def test_cancelled_build_task_releases_mounts(
    composer: oic.Composer, example: BuiltImage, tmp_path: Path
) -> None:
    config_file = composer.config.file
    assert config_file is not None
    template = tmp_path / "cancelled.yml"
    template.write_text(example_text("cancelled"), encoding="utf-8")
    work = composer.config.work_dir / PROVIDER
    partial = work / "imageroot" / "cancelled" / "partial" / "root"
    arguments = [str(config_file), str(template), str(partial), str(work)]
    result = subprocess.run(
        [sys.executable, "-c", CANCEL_TASK_PROGRAM, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.splitlines() == ["cancelled", "mounts left: 0"], result.stderr[-4000:]
    assert mounts_below(composer.config.work_dir) == []
    assert not composer.output_dir(template).exists()
    assert not (work / "imageroot" / "cancelled" / "current").exists()
