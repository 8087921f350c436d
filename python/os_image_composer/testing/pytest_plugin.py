"""The pytest plugin of os-image-composer: fixtures for loopback repositories and images."""

# ---------------------------------------------------------------------------------------------
# Signed loopback Debian repositories

import hashlib
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from os_image_composer.build import BuildResult
from os_image_composer.composer import Composer
from os_image_composer.config import Config
from os_image_composer.testing import qemu
from os_image_composer.testing.debrepo import BuiltRepo, GpgKey, RepoSpec, build_repo
from os_image_composer.testing.httpserver import RepoServer
from os_image_composer.testing.image import BuiltImage, Login
from os_image_composer.testing.mirror import KEYRING, MirrorError, MirrorServer, prepare_mirror
from os_image_composer.testing.qemu import BootedVM


@dataclass(frozen=True)
class RepoKeyFiles:
    """The public key that signs a served repository, in both export formats."""

    asc: Path
    gpg: Path
    fingerprint: str
    signing_fingerprint: str


@dataclass(frozen=True)
class ServedRepo:
    """A built repository and the server that serves its root directory."""

    built: BuiltRepo
    key: RepoKeyFiles
    server: RepoServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def root(self) -> Path:
        return self.built.root


DebianRepoFactory = Callable[..., ServedRepo]


@pytest.fixture(scope="session")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKey]:
    """Generate an ed25519 key with a signing subkey, once per test session."""
    key = GpgKey.generate(tmp_path_factory.mktemp("gnupg"))
    yield key
    key.stop_agent()


@pytest.fixture
def debian_repo_factory(
    gpg_key: GpgKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DebianRepoFactory]:
    """Return `make(spec, key=None, **build_opts) -> ServedRepo`, which builds and serves a repo.

    `key` defaults to `gpg_key`. `build_opts` go to `build_repo`. The servers stop at teardown.
    """
    servers: list[RepoServer] = []

    def make(spec: RepoSpec, key: GpgKey | None = None, **build_opts: Any) -> ServedRepo:
        signing_key = key or gpg_key
        root = tmp_path_factory.mktemp("repo")
        key_dir = tmp_path_factory.mktemp("repo-key")
        built = build_repo(root, spec, signing_key, **build_opts)
        key_files = RepoKeyFiles(
            asc=signing_key.export_armored(key_dir / "repo-key.asc"),
            gpg=signing_key.export_binary(key_dir / "repo-key.gpg"),
            fingerprint=signing_key.fingerprint,
            signing_fingerprint=signing_key.signing_fingerprint,
        )
        server = RepoServer(root).start()
        servers.append(server)
        return ServedRepo(built=built, key=key_files, server=server)

    yield make
    for server in servers:
        server.stop()


# ---------------------------------------------------------------------------------------------
# Mirror of real Debian bookworm packages


@dataclass(frozen=True)
class DebianMirror:
    """A prepared mirror of real Debian bookworm packages and the server that serves it.

    `url` is the repository URL for an apt source line, `root` the mirror folder (it contains
    debian/ and manifest.json), `keyring` the Debian archive keyring that signs its InRelease,
    and `packages` maps each package name in the pool to its version.
    """

    url: str
    root: Path
    keyring: Path
    packages: dict[str, str]
    server: MirrorServer


@pytest.fixture(scope="session")
def debian_mirror() -> Iterator[DebianMirror]:
    """Prepare the cached mirror of real Debian packages and serve it on 127.0.0.1.

    The folder is $OIC_MIRROR_DIR or /var/cache/os-image-composer-testdata/debian-bookworm. A
    cold run downloads about 155 MB with apt-get download, and later runs re-hash the cached
    files. Tests that use this fixture are marked slow.
    """
    try:
        info = prepare_mirror()
    except MirrorError as error:
        pytest.fail(f"cannot prepare the Debian mirror: {error}", pytrace=False)
    with MirrorServer(info.root) as server:
        yield DebianMirror(
            url=server.url,
            root=info.root,
            keyring=KEYRING,
            packages=info.packages,
            server=server,
        )


# ---------------------------------------------------------------------------------------------
# Booting images in QEMU

BootImageFactory = Callable[..., BootedVM]
_BOOTED_VMS = pytest.StashKey[list[BootedVM]]()


@pytest.fixture
def boot_image(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BootImageFactory]:
    """Return `boot(image=None, **options) -> BootedVM`, which takes `qemu.boot_image` options.

    Use each VM in a ``with`` block. The console logs go to the test's tmp_path. When the test
    fails, the report shows each VM's last console lines. Every VM is closed at teardown.
    """
    vms = request.node.stash.setdefault(_BOOTED_VMS, [])

    def boot(image: Path | str | None = None, **options: Any) -> BootedVM:
        options.setdefault("log_path", tmp_path / f"console-{len(vms)}.log")
        vm = qemu.boot_image(image, **options)
        vms.append(vm)
        return vm

    yield boot
    for vm in vms:
        vm.close()


# ---------------------------------------------------------------------------------------------
# Builds from the mirror

MIRROR_PROVIDER = "debian-debian12-x86_64"
MIRROR_KEY = "embedded:debian-archive-bookworm-automatic.gpg"


def mirror_config_text(mirror_url: str, root: Path) -> str:
    """Return a configuration with folders below `root` and the Debian provider's repositories
    replaced by the mirror at `mirror_url`."""
    return (
        f"cache_dir: {root / 'cache'}\n"
        f"work_dir: {root / 'work'}\n"
        f"temp_dir: {root / 'tmp'}\n"
        "providers:\n"
        f"  {MIRROR_PROVIDER}:\n"
        "    repositories:\n"
        f"      - {{name: bookworm, url: {mirror_url}, suite: bookworm, keys: [{MIRROR_KEY}]}}\n"
    )


@pytest.fixture(scope="session")
def composer(tmp_path_factory: pytest.TempPathFactory, debian_mirror: DebianMirror) -> Composer:
    """A `Composer` with private cache, work and temp folders for the test session, whose
    provider debian-debian12-x86_64 installs from `debian_mirror`.

    Its configuration file is ``composer.config.file``. Tests that use it are marked slow.
    """
    root = tmp_path_factory.mktemp("composer")
    config_file = root / "config.yml"
    config_file.write_text(mirror_config_text(debian_mirror.url, root), encoding="utf-8")
    return Composer(Config.load(config_file))


BuiltImageFactory = Callable[..., BuiltImage]


@pytest.fixture(scope="session")
def built_image(
    composer: Composer, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., BuiltImage]:
    """Return `build(template, login=None, **options) -> BuiltImage`, which builds an image with
    `composer`; needs root.

    `template` is a template file (a `Path`, or a `str` without a newline) or a template's YAML
    text. Text is written to a file in a session folder, so its relative paths point there.
    `login` is a `Login` or a ``(user, password)`` pair for `BuiltImage.run`. `options` go to
    `Composer.build`. The same template content with the same options is built once per session.
    """
    folder = tmp_path_factory.mktemp("templates")
    built: dict[tuple[str, str], BuildResult] = {}

    def build(
        template: str | os.PathLike[str],
        login: Login | tuple[str, str] | None = None,
        **options: Any,
    ) -> BuiltImage:
        path = _template_file(template, folder)
        key = (
            hashlib.sha256(path.read_bytes()).hexdigest() + str(path),
            repr(sorted(options.items())),
        )
        if key not in built:
            built[key] = composer.build(path, **options)
        if isinstance(login, tuple):
            login = Login(*login)
        return BuiltImage(built[key], composer.template(path), login=login)

    return build


def _template_file(template: str | os.PathLike[str], folder: Path) -> Path:
    if isinstance(template, str) and "\n" in template:
        digest = hashlib.sha256(template.encode()).hexdigest()[:16]
        path = folder / f"template-{digest}.yml"
        path.write_text(template, encoding="utf-8")
        return path
    return Path(template)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for vm in item.stash.get(_BOOTED_VMS, []):
            title = f"console of {vm.name} ({vm.accelerator}, log {vm.log_path})"
            report.sections.append((title, vm.console_tail()))
    return report


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of image tests, so that `--strict-markers` accepts them anywhere."""
    for line in (
        "root: needs root (mounts, chroots, loop devices)",
        "slow: takes more than a few seconds (downloads, large indexes)",
        "boot: boots an image in QEMU",
    ):
        config.addinivalue_line("markers", line)
