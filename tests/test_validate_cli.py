"""`os-image-composer validate` on good and bad templates, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "image-templates" / "debian12-x86_64-minimal-raw.yml"

# A valid template that the bad cases below change in one place each.
BASE = """\
image:
  name: test
  version: "1.0"
target:
  os: debian
  dist: debian12
  arch: x86_64
  imageType: raw
disk:
  size: 1GiB
  partitionTableType: gpt
  partitions:
    - id: esp
      type: esp
      start: 1MiB
      end: 65MiB
      fsType: fat32
      mountPoint: /boot/efi
    - id: root
      type: linux-root-amd64
      start: 65MiB
      end: "0"
      fsType: ext4
      mountPoint: /
systemConfig:
  name: test
"""


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "os_image_composer", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "t.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_example_template_is_valid() -> None:
    result = run_cli("validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid (debian-debian12-x86_64)" in result.stdout


def test_base_template_is_valid(tmp_path: Path) -> None:
    result = run_cli("validate", str(write(tmp_path, BASE)))
    assert result.returncode == 0, result.stderr


def test_merged_output_holds_defaults(tmp_path: Path) -> None:
    result = run_cli("validate", "--merged", str(write(tmp_path, BASE)))
    assert result.returncode == 0, result.stderr
    assert '- "linux-image-amd64"' in result.stdout
    assert 'provider: "grub"' in result.stdout
    # The user's disk replaces the default one whole.
    assert 'size: "1GiB"' in result.stdout
    assert "4GiB" not in result.stdout


def test_merged_output_validates_again(tmp_path: Path) -> None:
    (tmp_path / "motd").write_text("hello\n", encoding="utf-8")
    content = BASE + "  additionalFiles:\n    - local: motd\n      final: /etc/motd\n"
    merged = run_cli("validate", "--merged", str(write(tmp_path, content))).stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = elsewhere / "merged.yml"
    again.write_text(merged, encoding="utf-8")
    assert f'local: "{tmp_path / "motd"}"' in merged
    result = run_cli("validate", str(again))
    assert result.returncode == 0, result.stderr


# (case, how the valid template is changed, a line the error output must contain)
BAD_TEMPLATES: list[tuple[str, str | bytes, str]] = [
    (
        "wrong type",
        BASE.replace('  version: "1.0"\n', "  version: [1]\n"),
        "t.yml:3:12: image.version: Expected a string, found a list",
    ),
    (
        "unknown key",
        BASE + "  hostnme: box\n",
        "t.yml:27:3: systemConfig.hostnme: Unknown key `hostnme`: did you mean `hostname`?",
    ),
    (
        "unknown top key",
        BASE + "systemConfigs: []\n",
        "t.yml:27:1: systemConfigs: Unknown key `systemConfigs`: did you mean `systemConfig`?",
    ),
    (
        "duplicate key",
        BASE.replace("  arch: x86_64\n", "  arch: x86_64\n  arch: aarch64\n"),
        "t.yml:8:3: Duplicate key `arch` (first defined at line 7)",
    ),
    (
        "alias bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
            for i in range(8)
        ),
        "more than 100000 nodes, counting each alias",
    ),
    (
        "non-UTF-8 bytes",
        BASE.encode().replace(b"name: test\n", b"name: t\xe9st\n", 1),
        "t.yml:2:10: Invalid UTF-8 at byte 16: save the file as UTF-8",
    ),
    ("empty file", "", "t.yml:1:1: Template is empty"),
    ("only comments", "# nothing\n", "t.yml:1:1: Template is empty"),
    ("not a mapping", "- a\n- b\n", "t.yml:1:1: Expected a mapping, found a list"),
    ("broken YAML", "image: {name: x\n", "t.yml:2:1: Invalid YAML"),
    (
        "unknown provider",
        BASE.replace("dist: debian12", "dist: debian99"),
        "t.yml:5:7: target: No provider `debian-debian99-x86_64`: known providers are",
    ),
    (
        "unsupported image type",
        BASE.replace("imageType: raw", "imageType: iso"),
        "t.yml:8:14: target.imageType: Unknown image type `iso`: use one of raw",
    ),
    (
        "invalid size",
        BASE.replace("size: 1GiB", "size: 1 parsec"),
        "t.yml:10:9: disk.size: Invalid size `1 parsec`",
    ),
    (
        "partition overlap",
        BASE.replace("start: 65MiB", "start: 33MiB"),
        "t.yml:21:14: disk.partitions[1].start: Start 33MiB overlaps the previous partition, "
        "which ends at 65MiB",
    ),
    (
        "partition past disk end",
        BASE.replace('end: "0"', "end: 2GiB"),
        "t.yml:22:12: disk.partitions[1].end: End 2GiB is beyond the end of the 1GiB disk",
    ),
    (
        "partition over GPT backup header",
        BASE.replace('end: "0"', "end: 1024MiB"),
        "t.yml:22:12: disk.partitions[1].end: End 1GiB reaches into the GPT backup header",
    ),
    (
        "misaligned start",
        BASE.replace("start: 65MiB", "start: 66000KiB"),
        "t.yml:21:14: disk.partitions[1].start: Start 66000KiB is not aligned to 1MiB",
    ),
    (
        "partition in table area",
        BASE.replace("start: 1MiB", "start: 0"),
        "t.yml:15:14: disk.partitions[0].start: Start 0 overlaps the partition table",
    ),
    (
        "end zero not last",
        BASE.replace("end: 65MiB", 'end: "0"'),
        "t.yml:16:12: disk.partitions[0].end: End 0 (the rest of the disk) is allowed only "
        "on the last partition",
    ),
    (
        "esp not fat",
        BASE.replace("fsType: fat32", "fsType: ext4"),
        "disk.partitions[0].fsType: An EFI system partition must be FAT",
    ),
    (
        "systemd-boot with legacy",
        BASE + "  bootloader:\n    bootType: legacy\n    provider: systemd-boot\n",
        "t.yml:29:15: systemConfig.bootloader.provider: systemd-boot boots only with EFI",
    ),
    (
        "missing source file",
        BASE + "  additionalFiles:\n    - local: nothing-here.txt\n      final: /etc/x\n",
        "systemConfig.additionalFiles[0].local: Source file `",
    ),
    (
        "plain password",
        BASE + "  users:\n    - name: admin\n      password: secret\n",
        "t.yml:29:17: systemConfig.users[0].password: Password is not a crypt(3) hash",
    ),
    (
        "bad package name",
        BASE + "  packages: [Vim]\n",
        "t.yml:27:14: systemConfig.packages: Invalid package name `Vim`",
    ),
    (
        "start below first MiB",
        BASE.replace("start: 1MiB", "start: 512KiB"),
        "t.yml:15:14: disk.partitions[0].start: Start 512KiB is not aligned to 1MiB: use 1MiB",
    ),
    (
        "repository listed twice",
        BASE
        + "packageRepositories:\n"
        + "  - {codename: in, url: http://127.0.0.1/a, pkey: /k.gpg}\n"
        + "  - {codename: in, url: http://127.0.0.1/b, pkey: /k.gpg}\n",
        "t.yml:29:16: packageRepositories[1].codename: Repository `in` is listed twice",
    ),
    (
        "user listed twice",
        BASE + "  users:\n    - {name: admin, password: '!'}\n    - {name: admin}\n",
        "t.yml:29:14: systemConfig.users[1].name: User `admin` is listed twice",
    ),
    (
        "unknown provider first",
        "target: {os: debian, dist: debian13, arch: x86_64, imageType: raw}\n",
        "t.yml:1:14: target: No provider `debian-debian13-x86_64`",
    ),
    (
        "fat32 partition too small",
        BASE.replace("end: 65MiB", "end: 17MiB").replace("start: 65MiB", "start: 17MiB"),
        "t.yml:16:12: disk.partitions[0].end: A 16MiB partition is too small for FAT32, which "
        "needs at least 33MiB",
    ),
    (
        "mount point with double slash",
        BASE.replace("mountPoint: /boot/efi", "mountPoint: /boot//efi"),
        "t.yml:18:19: disk.partitions[0].mountPoint: Invalid mount point `/boot//efi`",
    ),
    (
        "mount point with trailing slash",
        BASE.replace("mountPoint: /boot/efi", "mountPoint: /boot/efi/"),
        "t.yml:18:19: disk.partitions[0].mountPoint: Invalid mount point `/boot/efi/`",
    ),
    (
        "decimal disk size",
        BASE.replace("size: 1GiB", "size: 2GB"),
        "t.yml:10:9: disk.size: Disk size `2GB` (2000000000 bytes) must be a whole number of MiB",
    ),
    (
        "empty package name",
        BASE + "  packages: ['']\n",
        "t.yml:27:14: systemConfig.packages: Package name is empty",
    ),
    (
        "source is a folder",
        BASE + "  additionalFiles:\n    - local: .\n      final: /etc/x\n",
        "is not a regular file",
    ),
    (
        "missing target os",
        BASE.replace("  os: debian\n", ""),
        "t.yml:1:1: target.os: Missing required key",
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"),
    [pytest.param(content, expected, id=case) for case, content, expected in BAD_TEMPLATES],
)
def test_bad_template_is_reported(tmp_path: Path, content: str | bytes, expected: str) -> None:
    result = run_cli("validate", "t.yml", cwd=write(tmp_path, content).parent)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "panicked" not in result.stderr


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    content = BASE.replace("start: 65MiB", "start: 33MiB").replace("imageType: raw", "imageType: x")
    content += "  hostnme: box\n"
    result = run_cli("validate", "t.yml", cwd=write(tmp_path, content).parent)
    assert result.returncode == 1
    error_lines = [
        line for line in result.stderr.splitlines() if re.match(r"t\.yml:\d+:\d+: ", line)
    ]
    assert len(error_lines) == 3, result.stderr
    assert "t.yml: invalid, 3 errors" in result.stderr


def test_unknown_provider_is_the_only_error(tmp_path: Path) -> None:
    content = "target: {os: debian, dist: debian13, arch: x86_64, imageType: raw}\n"
    result = run_cli("validate", "t.yml", cwd=write(tmp_path, content).parent)
    assert result.returncode == 1
    assert "t.yml: invalid, 1 error" in result.stderr, result.stderr


def test_huge_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    with path.open("wb") as file:
        file.write(b"# " + b"x" * (100 * 1024 * 1024) + b"\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "larger than the limit of 4194304 bytes" in result.stderr


def test_fifo_template_is_rejected(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yml"
    os.mkfifo(fifo)
    result = run_cli("validate", str(fifo))
    assert result.returncode == 1
    assert f"Template `{fifo}` is not a regular file" in result.stderr


def test_missing_template_is_an_error(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "absent.yml"))
    assert result.returncode == 1
    assert f"Template `{tmp_path / 'absent.yml'}` not found" in result.stderr


def test_usage_error_exits_2() -> None:
    assert run_cli("validate").returncode == 2
    assert run_cli("no-such-command").returncode == 2
    assert run_cli("--workers", "0", "validate", str(EXAMPLE)).returncode == 2


def test_relative_files_follow_the_template(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "motd").write_text("hello\n", encoding="utf-8")
    content = BASE + "  additionalFiles:\n    - local: files/motd\n      final: /etc/motd\n"
    (folder / "t.yml").write_text(content, encoding="utf-8")
    result = run_cli("validate", str(folder / "t.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr


NO_ESP = BASE.replace(
    """    - id: esp
      type: esp
      start: 1MiB
      end: 65MiB
      fsType: fat32
      mountPoint: /boot/efi
""",
    "",
)


def test_no_bootloader_needs_no_esp(tmp_path: Path) -> None:
    content = NO_ESP + "  bootloader:\n    bootType: efi\n    provider: none\n"
    assert content != BASE
    result = run_cli("validate", str(write(tmp_path, content)))
    assert result.returncode == 0, result.stderr


def test_grub_without_esp_is_rejected(tmp_path: Path) -> None:
    content = NO_ESP + "  bootloader:\n    bootType: efi\n    provider: grub\n"
    result = run_cli("validate", str(write(tmp_path, content)))
    assert result.returncode == 1, result.stdout
    assert "EFI boot needs an EFI system partition" in result.stderr
