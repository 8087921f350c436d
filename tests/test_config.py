"""The global configuration through the Python API and `os-image-composer config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import os_image_composer as oic

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "image-templates" / "debian12-x86_64-minimal-raw.yml"


def run_cli(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    command = [sys.executable, "-m", "os_image_composer", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=False)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run with an empty working directory and home, so no real configuration file is found."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    return tmp_path


def test_defaults_without_files(isolated: Path) -> None:
    if Path("/etc/os-image-composer/config.yml").exists():
        pytest.skip("this machine has a system configuration file")
    config = oic.Config.load()
    assert config.file is None
    assert config.cache_dir == Path("/var/cache/os-image-composer")
    assert config.work_dir == Path("/var/tmp/os-image-composer")
    assert config.workers == 8
    assert {setting.origin for setting in config.settings()} == {"default"}


def test_working_directory_file_is_found(isolated: Path) -> None:
    (isolated / "os-image-composer.yml").write_text("workers: 3\ncache_dir: c\n", encoding="utf-8")
    config = oic.Config.load()
    assert config.file == Path("os-image-composer.yml")
    assert config.workers == 3
    assert config.cache_dir == isolated / "c"
    origins = {setting.key: setting.origin for setting in config.settings()}
    assert origins["workers"] == "os-image-composer.yml:1:10"


def test_user_file_comes_after_working_directory(isolated: Path) -> None:
    user_file = isolated / "home" / ".config" / "os-image-composer" / "config.yml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("workers: 5\n", encoding="utf-8")
    assert oic.Config.load().workers == 5
    (isolated / "os-image-composer.yml").write_text("workers: 6\n", encoding="utf-8")
    assert oic.Config.load().workers == 6


def test_overrides_win_and_say_so(isolated: Path) -> None:
    (isolated / "os-image-composer.yml").write_text("workers: 3\n", encoding="utf-8")
    config = oic.Config.load(workers=20, cache_dir=isolated / "x")
    assert config.workers == 20
    origins = {setting.key: setting.origin for setting in config.settings()}
    assert origins["workers"] == "flag --workers"
    assert config.override(workers=4).workers == 4


def test_missing_explicit_file_raises(isolated: Path) -> None:
    with pytest.raises(oic.ConfigError) as caught:
        oic.Config.load(isolated / "absent.yml")
    assert "not found" in str(caught.value)
    assert isinstance(caught.value, oic.ComposerError)


def test_invalid_file_lists_every_error(isolated: Path) -> None:
    path = isolated / "bad.yml"
    path.write_text("workers: 500\nlogging:\n  level: loud\ncache: /x\n", encoding="utf-8")
    with pytest.raises(oic.ConfigError) as caught:
        oic.Config.load(path)
    messages = [(issue.line, issue.path) for issue in caught.value.errors]
    assert messages == [(1, "workers"), (3, "logging.level"), (4, "cache")]


def test_provider_repositories_replaced(isolated: Path) -> None:
    path = isolated / "mirror.yml"
    path.write_text(
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        "      - name: local\n"
        "        url: http://127.0.0.1:9/debian\n"
        "        suite: bookworm\n"
        "        components: [main]\n"
        "        keys: [/usr/share/keyrings/debian-archive-keyring.gpg]\n",
        encoding="utf-8",
    )
    config = oic.Config.load(path)
    repositories = config.providers["debian-debian12-x86_64"]
    assert [repository["name"] for repository in repositories] == ["local"]
    template = oic.ImageTemplate.from_file(EXAMPLE, config)
    assert template.provider_id == "debian-debian12-x86_64"


def test_repository_errors_all_reported(isolated: Path) -> None:
    path = isolated / "mirror.yml"
    path.write_text(
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        "      - url: http://127.0.0.1:9/debian\n"
        "        path: /srv/debian\n"
        "        priority: 99999\n"
        "        keys: [embedded:no-such-key.gpg]\n",
        encoding="utf-8",
    )
    with pytest.raises(oic.ConfigError) as caught:
        oic.Config.load(path)
    messages = [issue.message for issue in caught.value.errors]
    assert messages[0] == "Missing required key"
    assert messages[1] == "Set either `url` or `path`, not both"
    assert messages[2] == "Priority 99999 is out of range: use -32768 to 32767"
    assert messages[3].startswith("Unknown embedded key `no-such-key.gpg`: known keys are")
    assert len(messages) == 4


def test_file_url_keys_follow_the_file(isolated: Path) -> None:
    path = isolated / "sub" / "c.yml"
    path.parent.mkdir()
    path.write_text(
        "providers:\n"
        "  debian-debian12-x86_64:\n"
        "    repositories:\n"
        "      - {name: m, url: http://127.0.0.1:9/d, keys: [file://k.gpg, k2.gpg]}\n",
        encoding="utf-8",
    )
    repository = oic.Config.load(path).providers["debian-debian12-x86_64"][0]
    assert repository["keys"] == [str(isolated / "sub" / "k.gpg"), str(isolated / "sub" / "k2.gpg")]


def test_config_init_writes_loadable_file(isolated: Path) -> None:
    result = run_cli("config", "init", "cfg.yml", cwd=isolated, home=isolated / "home")
    assert result.returncode == 0, result.stderr
    config = oic.Config.load(isolated / "cfg.yml")
    assert config.workers == 8
    again = run_cli("config", "init", "cfg.yml", cwd=isolated, home=isolated / "home")
    assert again.returncode == 1
    assert "--force" in again.stderr


def test_config_show_names_origins(isolated: Path) -> None:
    (isolated / "os-image-composer.yml").write_text("workers: 3\n", encoding="utf-8")
    result = run_cli("config", "show", "--work-dir", "/srv/w", cwd=isolated, home=isolated / "home")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line[0] != "#"}
    assert lines["workers"].endswith("# os-image-composer.yml:1:10")
    assert lines["work_dir"].endswith("# flag --work-dir")
    assert lines["cache_dir"].endswith("# default")


@pytest.mark.parametrize("target", ["somedir", "/proc/oic-test.yml", "cfg.yml/x"])
def test_config_init_write_failure(isolated: Path, target: str) -> None:
    (isolated / "somedir").mkdir()
    (isolated / "cfg.yml").write_text("workers: 2\n", encoding="utf-8")
    result = run_cli("config", "init", "--force", target, cwd=isolated, home=isolated / "home")
    assert result.returncode == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


def test_config_errors_listed_with_count(isolated: Path) -> None:
    (isolated / "os-image-composer.yml").write_text("workers: 0\ncache: x\n", encoding="utf-8")
    result = run_cli("config", "show", cwd=isolated, home=isolated / "home")
    lines = result.stderr.splitlines()
    assert lines[0].startswith("os-image-composer.yml:1:10: workers: Invalid value 0")
    assert lines[1].startswith("os-image-composer.yml:2:1: cache: Unknown key `cache`")
    assert lines[2] == "configuration: invalid, 2 errors"


def test_config_not_a_regular_file(isolated: Path) -> None:
    with pytest.raises(oic.ConfigError) as caught:
        oic.Config.load("/dev/zero")
    assert "`/dev/zero` is not a regular file" in str(caught.value)


def test_empty_repository_list_rejected(isolated: Path) -> None:
    path = isolated / "c.yml"
    path.write_text(
        "providers:\n  debian-debian12-x86_64:\n    repositories: []\n", encoding="utf-8"
    )
    with pytest.raises(oic.ConfigError) as caught:
        oic.Config.load(path)
    assert "at least one repository" in caught.value.errors[0].message


def test_from_dict_rejects_lossy_values(isolated: Path) -> None:
    circular: list[object] = []
    circular.append(circular)
    data = {
        "target": {"os": "debian", "dist": "debian12", "arch": "x86_64"},
        "image": {"version": 1.10, "name": b"x"},
        "systemConfig": {"packages": circular, 3: "x"},
    }
    with pytest.raises(oic.TemplateError) as caught:
        oic.ImageTemplate.from_dict(data)
    issues = {issue.path: issue.message for issue in caught.value.errors}
    assert issues["image.version"].startswith("Number 1.1 is a float")
    assert issues["image.name"].startswith("Unsupported value of type bytes")
    assert issues["systemConfig.packages[0]"] == "The value contains itself"
    assert issues["systemConfig.3"] == "Key 3 is not a string"


def test_from_dict_deep_nesting(isolated: Path) -> None:
    data: dict[str, object] = {}
    node = data
    for _ in range(100_000):
        child: dict[str, object] = {}
        node["x"] = child
        node = child
    with pytest.raises(oic.TemplateError) as caught:
        oic.ImageTemplate.from_dict(data)
    assert "Nesting deeper than 64 levels" in caught.value.errors[0].message


def test_from_dict_positions_are_zero(isolated: Path) -> None:
    data = {
        "target": {"os": "debian", "dist": "debian12", "arch": "x86_64", "imageType": "iso"},
    }
    with pytest.raises(oic.TemplateError) as caught:
        oic.ImageTemplate.from_dict(data)
    issue = caught.value.errors[0]
    assert (issue.line, issue.column, issue.path) == (0, 0, "target.imageType")


def test_from_dict_config_type_checked(isolated: Path) -> None:
    with pytest.raises(TypeError, match="config must be a Config"):
        oic.ImageTemplate.from_dict({}, config="x")  # type: ignore[arg-type]


def test_config_show_json(isolated: Path) -> None:
    result = run_cli("config", "show", "--json", "-w", "9", cwd=isolated, home=isolated / "home")
    assert json.loads(result.stdout)["workers"] == 9


def test_cli_reports_bad_config_without_traceback(isolated: Path) -> None:
    (isolated / "os-image-composer.yml").write_text("workerz: 3\n", encoding="utf-8")
    result = run_cli("validate", str(EXAMPLE), cwd=isolated, home=isolated / "home")
    assert result.returncode == 1
    assert "os-image-composer.yml:1:1: workerz: Unknown key `workerz`" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_unwritable_log_file(isolated: Path) -> None:
    missing = isolated / "no-such-folder" / "oic.log"
    config = isolated / "os-image-composer.yml"
    config.write_text(f"logging:\n  file: {missing}\n", encoding="utf-8")
    result = run_cli("config", "show", cwd=isolated, home=isolated / "home")
    assert result.returncode == 1
    assert f"cannot open the log file {missing}" in result.stderr
    assert "fix logging.file" in result.stderr
    assert "Traceback" not in result.stderr


def test_template_error_carries_issues(isolated: Path) -> None:
    data = {
        "target": {"os": "debian", "dist": "debian12", "arch": "x86_64", "imageType": "raw"},
        "disk": {"size": "1GiB", "partitions": []},
        "systemConfig": {"name": "t"},
    }
    with pytest.raises(oic.TemplateError) as caught:
        oic.ImageTemplate.from_dict(data, source="inline")
    issue = caught.value.errors[0]
    assert issue.file == "inline"
    assert issue.path == "disk.partitions"
    assert "at least one partition" in issue.message


def test_template_api_merges(isolated: Path) -> None:
    template = oic.ImageTemplate.from_file(EXAMPLE)
    merged = template.merged()
    assert "openssh-server" in merged["systemConfig"]["packages"]
    assert "dbus" in merged["systemConfig"]["packages"]
    assert "dbus" not in template.to_dict()["systemConfig"]["packages"]
    layout = template.disk_layout
    assert layout["table"] == "gpt"
    assert layout["partitions"][1]["end"] == 2 * 1024**3 - 1024**2


def test_exceptions_have_public_module() -> None:
    for cls in (oic.ComposerError, oic.ConfigError, oic.TemplateError, oic.ComposerWarning):
        assert cls.__module__ == "os_image_composer"
    assert issubclass(oic.TemplateError, oic.ComposerError)
