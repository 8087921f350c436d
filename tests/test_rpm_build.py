"""`os-image-composer build` for the RPM provider, against a loopback repository.

The repository contains real packages built with rpmbuild, signed with rpmsign by a key made
for the test module and indexed with createrepo_c. The provider's names are empty packages,
except that `filesystem` lays out the folders and `bash` installs the build host's static
busybox as /usr/bin/sh, so scriptlets and configuration scripts have a shell. No kernel can be
fetched here, so the images have no boot loader; the disk is read back with debugfs and sfdisk
without mounting it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from os_image_composer.testing.debrepo import GpgKey
from os_image_composer.testing.httpserver import RepoServer
from os_image_composer.testing.rpmrepo import RpmPackageSpec, RpmRepoSpec, build_rpm_repo

PROVIDER = "azure-linux-azl3-x86_64"
BUSYBOX = Path("/bin/busybox")
# The GPT type of `linux-root-amd64`: the x86-64 root partition of the Discoverable Partitions
# Specification.
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
# The provider's essential set, the default template's packages and kernel, and the provider's
# build tools, all as empty packages.
EMPTY_NAMES = [
    "azurelinux-release",
    "coreutils",
    "rpm",
    "shadow-utils",
    "systemd",
    "dracut",
    "kernel",
    "dosfstools",
    "e2fsprogs",
    "mtools",
    "util-linux",
    "xfsprogs",
    "grub2-efi-binary",
    "systemd-boot",
]
HELLO_SCRIPT = "#!/bin/sh\necho hello from rpm\n"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="building an image needs root"),
    pytest.mark.skipif(not BUSYBOX.is_file(), reason="needs busybox-static for a shell"),
]


def repo_packages() -> list[RpmPackageSpec]:
    specs = [RpmPackageSpec(name) for name in EMPTY_NAMES]
    specs += [
        RpmPackageSpec(
            "filesystem",
            directories=["/etc", "/usr", "/usr/bin", "/usr/sbin", "/var", "/var/lib"],
            symlinks={"/bin": "usr/bin", "/sbin": "usr/sbin"},
        ),
        RpmPackageSpec(
            "bash",
            arch="x86_64",
            requires=["filesystem"],
            host_files={"/usr/bin/busybox": str(BUSYBOX)},
            symlinks={"/usr/bin/sh": "busybox"},
        ),
        RpmPackageSpec(
            "hello",
            version="2.12",
            release="3.azl3",
            epoch=1,
            arch="x86_64",
            requires=["libhello.so.1()(64bit)", "bash"],
            files={"/usr/bin/hello": HELLO_SCRIPT},
            post="echo posted > /var/lib/hello-posted",
            post_interpreter="/usr/bin/sh",
        ),
        RpmPackageSpec(
            "hellolib",
            version="0.9",
            arch="x86_64",
            provides=["libhello.so.1()(64bit)"],
            files={"/usr/lib64/libhello.so.1": "not really a library\n"},
        ),
        RpmPackageSpec(
            "slowpost",
            requires=["bash"],
            post="touch /var/lib/slowpost-started; sleep 4",
            post_interpreter="/usr/bin/sh",
        ),
        RpmPackageSpec(
            "failpost",
            requires=["bash"],
            post="echo failpost scriptlet failed on purpose >&2; exit 3",
            post_interpreter="/usr/bin/sh",
        ),
    ]
    return specs


@dataclass(frozen=True)
class RpmBuildEnv:
    """A configuration that points the provider at the loopback repository."""

    root: Path
    config: Path
    checksum: str
    """The repository's checksum type: `sha256` or `sha512`."""

    @property
    def work(self) -> Path:
        return self.root / "work" / PROVIDER

    def output(self, name: str) -> Path:
        return self.work / "imagebuild" / name

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "os_image_composer", "--config", str(self.config)]
        return subprocess.run([*command, *args], capture_output=True, text=True, check=False)

    def template(self, name: str, packages: str, extra: str = "") -> Path:
        path = self.root / f"{name}.yml"
        path.write_text(image_template(name, packages, extra), encoding="utf-8")
        return path


@pytest.fixture(scope="module", params=["sha256", "sha512"])
def rpm_build_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RpmBuildEnv]:
    checksum: str = request.param
    root = tmp_path_factory.mktemp(f"rpm-build-{checksum}")
    gnupghome = tmp_path_factory.mktemp("rpm-gnupg")
    spec = RpmRepoSpec(packages=repo_packages(), checksum=checksum)
    try:
        built = build_rpm_repo(spec, root / "repo", gnupghome)
        key = built.key.export_armored(root / "repo-key.asc")
    finally:
        GpgKey(gnupghome, "", "", "").stop_agent()
    server = RepoServer(root / "repo").start()
    config = root / "config.yml"
    config.write_text(
        f"cache_dir: {root / 'cache'}\n"
        f"work_dir: {root / 'work'}\n"
        f"temp_dir: {root / 'tmp'}\n"
        "providers:\n"
        f"  {PROVIDER}:\n"
        "    repositories:\n"
        f"      - {{name: azl-test, url: {server.url.rstrip('/')}, keys: [{key}]}}\n",
        encoding="utf-8",
    )
    (root / "files").mkdir()
    (root / "files" / "motd").write_text("built by os-image-composer\n", encoding="utf-8")
    yield RpmBuildEnv(root=root, config=config, checksum=checksum)
    server.stop()


def image_template(name: str, packages: str, extra: str) -> str:
    return f"""\
image: {{name: {name}, version: "1.0"}}
target: {{os: azure-linux, dist: azl3, arch: x86_64, imageType: raw}}
disk:
  name: {name}
  artifacts: [{{type: raw}}]
  size: 96MiB
  partitionTableType: gpt
  partitions:
    - {{id: rootfs, type: linux-root-amd64, start: 1MiB, end: "0", fsType: ext4,
        fsLabel: rootfs, mountPoint: /}}
systemConfig:
  name: {name}
  hostname: {name}-host
  packages: [{packages}]
  bootloader: {{bootType: efi, provider: none}}
  additionalFiles:
    - {{local: files/motd, final: /etc/motd}}
  configurations:
    - cmd: "echo configured > /etc/oic-configured"
{extra}"""


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


@dataclass(frozen=True)
class RawDisk:
    """A raw disk image read with sfdisk and debugfs, without mounting it."""

    path: Path

    def partitions(self) -> list[dict[str, Any]]:
        command = ["sfdisk", "--json", str(self.path)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        table = json.loads(output)["partitiontable"]
        assert table["label"] == "gpt"
        partitions = table["partitions"]
        assert isinstance(partitions, list)
        return partitions

    def _debugfs(self, request: str) -> str:
        (partition,) = self.partitions()
        device = f"{self.path}?offset={int(partition['start']) * 512}"
        completed = subprocess.run(
            ["debugfs", "-R", request, device], capture_output=True, text=True, check=False
        )
        errors = [
            line
            for line in completed.stderr.splitlines()
            if line and not line.startswith("debugfs ")
        ]
        assert completed.returncode == 0, f"debugfs {request}: {completed.stderr}"
        assert not errors, f"debugfs {request}: {errors}"
        return completed.stdout

    def read_text(self, path: str) -> str:
        return self._debugfs(f'cat "{path}"')

    def list_dir(self, path: str) -> list[str]:
        names = []
        for line in self._debugfs(f'ls -p "{path}"').splitlines():
            fields = line.split("/")
            if len(fields) >= 7 and fields[5] not in ("", ".", ".."):
                names.append(fields[5])
        return sorted(names)

    def file_system(self) -> str:
        (partition,) = self.partitions()
        offset = int(partition["start"]) * 512
        command = ["blkid", "--probe", "--offset", str(offset), "-s", "TYPE", "-o", "value"]
        output = subprocess.run(
            [*command, str(self.path)], capture_output=True, text=True, check=True
        )
        return output.stdout.strip()


def resolved_set(env: RpmBuildEnv, template: Path) -> dict[str, str]:
    """Map each package that `resolve` chooses to its EVR as rpm prints it.

    primary.xml gives every package an epoch, 0 when its header has none, and rpm leaves such
    an epoch out.
    """
    result = env.cli("resolve", "--json", str(template))
    assert result.returncode == 0, result.stderr
    packages = json.loads(result.stdout)["packages"]
    return {package["name"]: package["version"].removeprefix("0:") for package in packages}


def sbom_packages(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    packages = document["packages"]
    assert isinstance(packages, list)
    return {
        package["name"]: package for package in packages if package["SPDXID"] != "SPDXRef-Image"
    }


def test_rpm_image_has_resolved_set_and_sbom(rpm_build_env: RpmBuildEnv) -> None:
    template = rpm_build_env.template("azl-hello", "hello")
    report = report_of(rpm_build_env.cli("build", "--json", str(template)))
    expected = resolved_set(rpm_build_env, template)

    assert report["kernel"] == ""
    assert report["packages"] == len(expected)
    assert caches_of(report)["image root"] == "miss"
    output = rpm_build_env.output("azl-hello")
    disk = RawDisk(output / "azl-hello-1.0.raw")
    (partition,) = disk.partitions()
    assert partition["type"] == ROOT_TYPE
    assert disk.file_system() == "ext4"

    assert disk.read_text("/usr/bin/hello") == HELLO_SCRIPT
    assert disk.read_text("/usr/lib64/libhello.so.1") == "not really a library\n"
    assert disk.read_text("/var/lib/hello-posted") == "posted\n"
    assert "rpmdb.sqlite" in disk.list_dir("/var/lib/rpm")
    assert disk.read_text("/etc/hostname") == "azl-hello-host\n"
    assert disk.read_text("/etc/motd") == "built by os-image-composer\n"
    assert disk.read_text("/etc/oic-configured") == "configured\n"
    assert disk.read_text("/etc/machine-id") == ""
    fstab_lines = [
        line.split() for line in disk.read_text("/etc/fstab").splitlines() if line.strip()
    ]
    root_entries = [fields for fields in fstab_lines if not fields[0].startswith("#")]
    assert [fields[1:3] for fields in root_entries] == [["/", "ext4"]]
    assert root_entries[0][0].startswith("UUID=")

    in_image = json.loads(disk.read_text("/usr/share/sbom/azl-hello-1.0.spdx.json"))
    beside = output / "azl-hello-1.0.spdx.json"
    in_temp = rpm_build_env.root / "tmp" / "azl-hello-1.0.spdx.json"
    assert json.loads(beside.read_text(encoding="utf-8")) == in_image
    assert json.loads(in_temp.read_text(encoding="utf-8")) == in_image
    assert report["sbom"] == [str(beside), str(in_temp)]

    listed = sbom_packages(in_image)
    assert {name: package["versionInfo"] for name, package in listed.items()} == expected
    hello = listed["hello"]
    assert hello["versionInfo"] == "1:2.12-3.azl3"
    purl = hello["externalRefs"][0]["referenceLocator"]
    assert purl == "pkg:rpm/azure-linux/hello@2.12-3.azl3?arch=x86_64&epoch=1"
    assert hello["licenseDeclared"] == "MIT"
    cached = rpm_build_env.root / "cache" / "pkgCache" / PROVIDER / "hello-2.12-3.azl3.x86_64.rpm"
    kind = rpm_build_env.checksum
    checksum = subprocess.run(
        [f"{kind}sum", str(cached)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert hello["checksums"] == [{"algorithm": kind.upper(), "checksumValue": checksum}]
    depends = {
        (relationship["spdxElementId"], relationship["relatedSpdxElement"])
        for relationship in in_image["relationships"]
        if relationship["relationshipType"] == "DEPENDS_ON"
    }
    assert (hello["SPDXID"], listed["hellolib"]["SPDXID"]) in depends
    assert (hello["SPDXID"], listed["bash"]["SPDXID"]) in depends

    validation = subprocess.run(
        ["pyspdxtools", "--infile", str(beside)], capture_output=True, text=True, check=False
    )
    assert validation.returncode == 0, validation.stdout + validation.stderr
    assert leftovers(rpm_build_env.root) == []


def test_rpm_rebuild_reuses_image_root(rpm_build_env: RpmBuildEnv) -> None:
    template = rpm_build_env.template("azl-again", "hello")
    cold_result = rpm_build_env.cli("--log-level", "info", "build", "--json", str(template))
    cold = report_of(cold_result)
    warm = report_of(rpm_build_env.cli("build", "--json", str(template)))

    # The chroot environment contains empty packages only, so the host's tools write the disk.
    host_tools = [
        line
        for line in cold_result.stderr.splitlines()
        if "the chroot environment lacks disk tools" in line
    ]
    assert len(host_tools) == 1, cold_result.stderr[-4000:]
    assert "sfdisk, mkfs.ext4" in host_tools[0]
    assert caches_of(cold)["image root"] == "miss"
    assert caches_of(warm) == {"packages": "hit", "chroot": "hit", "image root": "hit"}
    disk = RawDisk(rpm_build_env.output("azl-again") / "azl-again-1.0.raw")
    assert disk.read_text("/usr/bin/hello") == HELLO_SCRIPT
    assert leftovers(rpm_build_env.root) == []


def test_rpm_rebuild_names_changed_settings(rpm_build_env: RpmBuildEnv) -> None:
    template = rpm_build_env.template("azl-renamed", "hello")
    report_of(rpm_build_env.cli("build", "--json", str(template)))
    text = template.read_text(encoding="utf-8")
    text = text.replace("hostname: azl-renamed-host", "hostname: azl-renamed-2")
    template.write_text(text + '    - cmd: "echo again > /etc/oic-again"\n', encoding="utf-8")

    changed = report_of(rpm_build_env.cli("build", "--json", str(template)))

    caches = changed["caches"]
    assert isinstance(caches, list)
    image_root = next(entry for entry in caches if entry["cache"] == "image root")
    assert image_root["outcome"] == "miss"
    reasons = image_root["detail"].split("; ")
    assert "systemConfig.hostname changed: azl-renamed-host -> azl-renamed-2" in reasons
    assert "systemConfig.configurations changed" in reasons
    assert len(reasons) == 2, image_root["detail"]
    disk = RawDisk(rpm_build_env.output("azl-renamed") / "azl-renamed-1.0.raw")
    assert disk.read_text("/etc/hostname") == "azl-renamed-2\n"
    assert disk.read_text("/etc/oic-again") == "again\n"
    assert leftovers(rpm_build_env.root) == []


def test_failing_post_scriptlet_keeps_output(rpm_build_env: RpmBuildEnv) -> None:
    good = rpm_build_env.template("azl-post", "hello")
    report_of(rpm_build_env.cli("build", "--json", str(good)))
    output = rpm_build_env.output("azl-post")
    before = {path.name: path.read_bytes() for path in output.iterdir()}

    failing = rpm_build_env.template("azl-post", "hello, failpost")
    result = rpm_build_env.cli("build", "--json", str(failing))

    assert result.returncode == 1, result.stdout
    assert "failpost" in result.stderr
    assert "scriptlet failed" in result.stderr
    assert leftovers(rpm_build_env.root) == []
    assert {path.name: path.read_bytes() for path in output.iterdir()} == before
    image_root = rpm_build_env.work / "imageroot" / "azl-post"
    assert not (image_root / "partial").exists()


def test_users_without_useradd_name_the_tool(rpm_build_env: RpmBuildEnv) -> None:
    extra = "  users:\n    - {name: tester, password: '!'}\n"
    template = rpm_build_env.template("azl-users", "hello", extra)
    result = rpm_build_env.cli("build", str(template))

    assert result.returncode == 1, result.stdout
    assert "systemConfig.users `tester` needs `useradd` inside the image" in result.stderr
    assert "/usr/sbin/useradd" in result.stderr
    assert leftovers(rpm_build_env.root) == []
    assert not rpm_build_env.output("azl-users").exists()


def test_rpm_bootloader_must_be_none(rpm_build_env: RpmBuildEnv) -> None:
    # Without a disk section the template gets the provider's default disk, with an ESP.
    template = rpm_build_env.root / "grub.yml"
    template.write_text(
        "target: {os: azure-linux, dist: azl3, arch: x86_64, imageType: raw}\n"
        "systemConfig:\n  name: azl-grub\n  packages: [hello]\n"
        "  bootloader: {bootType: efi, provider: grub}\n",
        encoding="utf-8",
    )
    result = rpm_build_env.cli("build", str(template))

    assert result.returncode == 1, result.stdout
    assert "systemConfig.bootloader.provider `grub`" in result.stderr
    assert "set it to `none`" in result.stderr
    assert not rpm_build_env.output("azl-grub").exists()


def test_disk_without_artifacts_writes_raw_image(rpm_build_env: RpmBuildEnv) -> None:
    template = rpm_build_env.template("azl-plain", "hello")
    text = template.read_text(encoding="utf-8")
    template.write_text(text.replace("  artifacts: [{type: raw}]\n", ""), encoding="utf-8")
    report = report_of(rpm_build_env.cli("build", "--json", str(template)))

    image = rpm_build_env.output("azl-plain") / "azl-plain-1.0.raw"
    artifacts = report["artifacts"]
    assert isinstance(artifacts, list)
    assert [(item["kind"], item["compression"], item["path"]) for item in artifacts] == [
        ("raw", "none", str(image))
    ]
    assert image.stat().st_size == 96 * 1024 * 1024


def test_cache_clean_waits_for_running_build(rpm_build_env: RpmBuildEnv) -> None:
    template = rpm_build_env.template("azl-slow", "slowpost")
    command = [sys.executable, "-m", "os_image_composer", "--config", str(rpm_build_env.config)]
    build = subprocess.Popen(
        [*command, "build", str(template)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    started = rpm_build_env.work / "imageroot" / "azl-slow" / "partial" / "root" / "var" / "lib"
    deadline = time.monotonic() + 120
    while build.poll() is None and time.monotonic() < deadline:
        if (started / "slowpost-started").exists():
            break
        time.sleep(0.05)
    assert build.poll() is None, "the build ended before its slow scriptlet ran"

    # The build installs from the cached files now; clean must wait for it to end.
    clean = rpm_build_env.cli("cache", "clean", "--provider-id", PROVIDER)
    # The build publishes its output before it releases the cache.
    published = (rpm_build_env.output("azl-slow") / "azl-slow-1.0.raw").is_file()
    _, build_stderr = build.communicate(timeout=120)

    assert clean.returncode == 0, clean.stderr
    assert published, "cache clean returned before the build published its image"
    assert build.returncode == 0, build_stderr.decode()[-4000:]
