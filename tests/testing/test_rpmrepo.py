"""Tests of the signed RPM repository builder, run with rpmbuild, rpmsign, createrepo_c and gpg."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from os_image_composer.testing import rpmrepo
from os_image_composer.testing.rpmrepo import (
    RpmPackageSpec,
    RpmRepoBuildError,
    RpmRepoSpec,
    build_rpm_repo,
)


def _rpm_query(path: Path, query: str) -> str:
    result = subprocess.run(
        ["rpm", "-qp", "--qf", query, str(path)], capture_output=True, text=True, check=True
    )
    return result.stdout


def _primary_xml(root: Path) -> str:
    primary = next((root / "repodata").glob("*-primary.xml.gz"))
    return gzip.decompress(primary.read_bytes()).decode()


def test_package_fields_reach_primary(tmp_path: Path) -> None:
    spec = RpmRepoSpec(
        packages=[
            RpmPackageSpec(
                "app",
                version="2.0",
                release="3",
                epoch=1,
                arch="x86_64",
                requires=["(liba or libb)", "/usr/bin/helper"],
                provides=["app-virtual = 2"],
                conflicts=["old-app < 1"],
                obsoletes=["app-legacy"],
                files={"/usr/bin/app": "#!/bin/sh\n"},
            )
        ]
    )
    repo = build_rpm_repo(spec, tmp_path / "repo", tmp_path / "gnupg")
    built = repo.packages[0]
    assert built.location == "Packages/x86_64/app-2.0-3.x86_64.rpm"
    assert _rpm_query(built.path, "%{EPOCH}:%{VERSION}-%{RELEASE}") == "1:2.0-3"
    primary = _primary_xml(repo.root)
    assert '<rpm:entry name="(liba or libb)"/>' in primary
    assert '<rpm:entry name="/usr/bin/helper"/>' in primary
    assert 'name="old-app" flags="LT"' in primary
    assert "<file>/usr/bin/app</file>" in primary


@pytest.mark.parametrize("algorithm", ["rsa3072", "ed25519"])
def test_signatures_name_their_keys(tmp_path: Path, algorithm: str) -> None:
    spec = RpmRepoSpec(
        packages=[
            RpmPackageSpec("signed"),
            RpmPackageSpec("foreign", sign="other"),
            RpmPackageSpec("plain", sign=None),
        ],
        key_algorithm=algorithm,
    )
    repo = build_rpm_repo(spec, tmp_path / "repo", tmp_path / "gnupg")
    # rpm 4.18 stores RSA signatures in RSAHEADER and EdDSA ones in DSAHEADER.
    query = "%{RSAHEADER:pgpsig}|%{DSAHEADER:pgpsig}"
    signed, foreign, plain = (_rpm_query(built.path, query) for built in repo.packages)
    assert repo.key.fingerprint[-16:].lower() in signed.lower()
    assert repo.other_key.fingerprint[-16:].lower() in foreign.lower()
    assert plain == "(none)|(none)"
    assert repo.repomd_asc is not None
    assert repo.repomd_asc.read_text().startswith("-----BEGIN PGP SIGNATURE-----")


def test_invalid_spec_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(RpmRepoBuildError, match="arch"):
        build_rpm_repo(
            RpmRepoSpec(packages=[RpmPackageSpec("a", arch="sparc")]),
            tmp_path / "repo",
            tmp_path / "gnupg",
        )
    with pytest.raises(RpmRepoBuildError, match="file path"):
        build_rpm_repo(
            RpmRepoSpec(packages=[RpmPackageSpec("a", files={"../x": ""})]),
            tmp_path / "repo",
            tmp_path / "gnupg",
        )


def test_script_prints_summary(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec = {"compression": "xz", "packages": [{"name": "a"}], "sign_repomd": False}
    spec_path.write_text(json.dumps(spec))
    command = [
        sys.executable,
        rpmrepo.__file__,
        "build",
        str(spec_path),
        str(tmp_path / "repo"),
        "--gnupghome",
        str(tmp_path / "gnupg"),
        "--key-out",
        str(tmp_path / "keys"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    summary = json.loads(result.stdout)
    assert summary["repomd_asc"] is None
    assert summary["packages"][0]["location"] == "Packages/noarch/a-1.0-1.noarch.rpm"
    assert Path(summary["keys"]["asc"]).read_text().startswith("-----BEGIN PGP PUBLIC KEY")
    assert list((tmp_path / "repo" / "repodata").glob("*-primary.xml.xz"))
