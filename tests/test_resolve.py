"""`os-image-composer resolve` and `ImageTemplate.resolve` against signed loopback repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import os_image_composer as oic
from os_image_composer.testing.debrepo import GpgKey, PackageSpec, RepoSpec
from os_image_composer.testing.pytest_plugin import DebianMirror, DebianRepoFactory, ServedRepo

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "image-templates" / "debian12-x86_64-minimal-raw.yml"

# The names the provider's default template asks for, as empty packages, and a kernel.
# The default template's packages and the package of its bootloader, GRUB for EFI.
BASE_NAMES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "grub-efi-amd64",
]


def base_packages(*extra: PackageSpec) -> list[PackageSpec]:
    packages = [PackageSpec(name, "1.0") for name in BASE_NAMES]
    packages.append(PackageSpec("base-files", "12.4", essential=True, priority="required"))
    packages.append(PackageSpec("linux-image-6.1.0-48-amd64", "6.1.172-1"))
    packages.append(
        PackageSpec(
            "linux-image-amd64", "6.1.172-1", depends="linux-image-6.1.0-48-amd64 (= 6.1.172-1)"
        )
    )
    packages.extend(extra)
    return packages


def write_config(tmp_path: Path, served: ServedRepo, key_path: Path | None = None) -> Path:
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        "      - name: base\n"
        f"        url: {served.url.rstrip('/')}\n"
        "        suite: bookworm\n"
        "        components: [main]\n"
        f"        keys: [{key_path or served.key.gpg}]\n",
        encoding="utf-8",
    )
    return config


def write_template(tmp_path: Path, system: str, extra: str = "") -> Path:
    template = tmp_path / "t.yml"
    template.write_text(
        "target: {os: debian, dist: debian12, arch: x86_64, imageType: raw}\n"
        f"systemConfig:\n{system}{extra}",
        encoding="utf-8",
    )
    return template


def resolve(tmp_path: Path, served: ServedRepo, system: str, extra: str = "") -> oic.Resolution:
    config = oic.Config.load(write_config(tmp_path, served))
    template = oic.ImageTemplate.from_file(write_template(tmp_path, system, extra), config)
    return template.resolve()


def test_alternative_already_chosen_wins(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    # Debian names have two characters at least, so `X`, `a` and `b` become pkg-x, pkg-a, pkg-b.
    packages = base_packages(
        PackageSpec("pkg-x", "1.0", depends="pkg-a | pkg-b"),
        PackageSpec("pkg-a", "1.0"),
        PackageSpec("pkg-b", "1.0"),
    )
    served = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))
    resolution = resolve(tmp_path, served, "  packages: [pkg-b, pkg-x]\n")
    assert "pkg-b" in resolution
    assert "pkg-a" not in resolution
    edge = next(d for d in resolution.dependencies if d.source == "pkg-x")
    assert edge.target == "pkg-b"


def test_breaks_picks_newer_version(tmp_path: Path, debian_repo_factory: DebianRepoFactory) -> None:
    packages = base_packages(
        PackageSpec("newlib", "2.0", breaks="oldlib (<< 2)"),
        PackageSpec("app", "1.0", depends="oldlib | oldlib-compat"),
        PackageSpec("oldlib", "1.5"),
        PackageSpec("oldlib", "2.1"),
    )
    served = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))
    resolution = resolve(tmp_path, served, "  packages: [newlib, app]\n")
    oldlib = resolution.get("oldlib")
    assert oldlib is not None
    assert oldlib.version == "2.1"


def test_local_priority_beats_newer(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory, gpg_key: GpgKey
) -> None:
    base = debian_repo_factory(
        RepoSpec(codename="bookworm", components={"main": base_packages(PackageSpec("foo", "1.2"))})
    )
    local = debian_repo_factory(
        RepoSpec(codename="local", components={"main": [PackageSpec("foo", "1.0")]})
    )
    extra = (
        "packageRepositories:\n"
        "  - codename: local\n"
        f"    path: {local.root}\n"
        '    pkey: "[trusted=yes]"\n'
        "    priority: 1001\n"
    )
    resolution = resolve(tmp_path, base, "  packages: [foo]\n", extra)
    foo = resolution.get("foo")
    assert foo is not None
    assert foo.version == "1.0"
    assert foo.repository.startswith("local@sha256:")
    statuses = {repository.name: repository.signature for repository in resolution.repositories}
    assert statuses["local"] == {"status": "skipped"}


def test_kernel_glob_takes_newest_revision(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    packages = base_packages(PackageSpec("linux-image-6.1.0-47-amd64", "6.1.170-3"))
    served = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))
    resolution = resolve(tmp_path, served, "  kernel:\n    packages: ['linux-image-*-amd64']\n")
    kernels = [p.name for p in resolution.packages if p.name.startswith("linux-image-6")]
    assert kernels == ["linux-image-6.1.0-48-amd64"]


def test_unknown_signing_key_fails(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    served = debian_repo_factory(
        RepoSpec(codename="bookworm", components={"main": base_packages()})
    )
    other = GpgKey.generate(
        tmp_path_factory.mktemp("other-gnupg"), uid="Other <other@test.invalid>"
    )
    other_key = tmp_path / "other.gpg"
    other.export_binary(other_key)
    other.stop_agent()
    config = oic.Config.load(write_config(tmp_path, served, other_key))
    template = oic.ImageTemplate.from_file(write_template(tmp_path, "  packages: []\n"), config)
    with pytest.raises(oic.SignatureError) as caught:
        template.resolve()
    assert caught.value.repository == "base"
    assert served.key.signing_fingerprint[-16:] in str(caught.value)
    assert isinstance(caught.value, oic.VerificationError)


def test_inrelease_only_repository_works(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    spec = RepoSpec(codename="bookworm", components={"main": base_packages()}, release_gpg=False)
    served = debian_repo_factory(spec)
    (served.root / "dists" / "bookworm" / "Release").unlink()
    resolution = resolve(tmp_path, served, "  packages: []\n")
    assert "base-files" in resolution


def test_allow_packages_takes_exact_names(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    base = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": base_packages()}))
    extra_repo = debian_repo_factory(
        RepoSpec(
            codename="extra",
            components={"main": [PackageSpec("vim", "9.0"), PackageSpec("vim-tiny", "9.0")]},
        )
    )
    extra = (
        "packageRepositories:\n"
        "  - codename: extra\n"
        f"    url: {extra_repo.url.rstrip('/')}\n"
        f"    pkey: {extra_repo.key.gpg}\n"
        "    allowPackages: [vim]\n"
    )
    assert "vim" in resolve(tmp_path, base, "  packages: [vim]\n", extra)
    with pytest.raises(oic.ResolutionError) as caught:
        resolve(tmp_path, base, "  packages: [vim-tiny]\n", extra)
    assert "vim-tiny" in str(caught.value)


def test_tampered_index_is_a_checksum_error(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    spec = RepoSpec(codename="bookworm", components={"main": base_packages()}, compressions=("",))
    served = debian_repo_factory(spec)
    index = served.root / "dists" / "bookworm" / "main" / "binary-amd64" / "Packages"
    index.write_bytes(index.read_bytes().replace(b"Package: dbus", b"Package: dbuz"))
    with pytest.raises(oic.ChecksumError) as caught:
        resolve(tmp_path, served, "  packages: []\n")
    assert caught.value.url is not None
    assert caught.value.url.endswith("binary-amd64/Packages")
    assert caught.value.expected != caught.value.actual


def test_unsatisfiable_request_names_the_chain(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    packages = base_packages(
        PackageSpec("app", "1.0", depends="libfoo (>= 2)"), PackageSpec("libfoo", "1.0")
    )
    served = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))
    with pytest.raises(oic.ResolutionError) as caught:
        resolve(tmp_path, served, "  packages: [app]\n")
    message = str(caught.value)
    assert "app 1.0 depends on libfoo (>= 2)" in message, message
    assert "libfoo 1.0" in message, message


def test_cli_resolve_writes_dot_and_json(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    packages = base_packages(
        PackageSpec("app", "1.0", depends="libfoo"), PackageSpec("libfoo", "1")
    )
    served = debian_repo_factory(RepoSpec(codename="bookworm", components={"main": packages}))
    config = write_config(tmp_path, served)
    template = write_template(tmp_path, "  packages: [app]\n")
    dot = tmp_path / "deps.dot"
    command = [sys.executable, "-m", "os_image_composer", "--config", str(config), "resolve"]
    result = subprocess.run(
        [*command, str(template), "--dotfile", str(dot), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"app", "libfoo", "base-files"} <= {p["name"] for p in data["packages"]}
    assert '"app" -> "libfoo"' in dot.read_text(encoding="utf-8")

    offline = subprocess.run(
        [*command, str(template), "--offline"], capture_output=True, text=True, check=False
    )
    assert offline.returncode == 0, offline.stderr
    assert "metadata from the cache" in offline.stderr


def test_cli_offline_without_cache_fails(
    tmp_path: Path, debian_repo_factory: DebianRepoFactory
) -> None:
    served = debian_repo_factory(
        RepoSpec(codename="bookworm", components={"main": base_packages()})
    )
    config = write_config(tmp_path, served)
    template = write_template(tmp_path, "  packages: []\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "os_image_composer",
            "--config",
            str(config),
            "resolve",
            str(template),
            "--offline",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "run one build with the network first" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_example_template_resolves_from_real_mirror(
    tmp_path: Path, debian_mirror: DebianMirror
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        "      - name: bookworm\n"
        f"        url: {debian_mirror.url}\n"
        "        suite: bookworm\n"
        "        components: [main]\n"
        "        keys: [embedded:debian-archive-bookworm-automatic.gpg]\n",
        encoding="utf-8",
    )
    template = oic.ImageTemplate.from_file(EXAMPLE, oic.Config.load(config))
    resolution = template.resolve()

    for name in ["openssh-server", "systemd", "linux-image-amd64", "base-files", "dpkg"]:
        assert name in resolution, name
    signature = resolution.repositories[0].signature
    assert signature["status"] == "verified"
    missing = [
        p.filename
        for p in resolution.packages
        if not (debian_mirror.root / "debian" / p.filename).exists()
    ]
    assert missing == [], "the mirror lacks packages the example template needs"
