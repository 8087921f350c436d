"""Make keys and signatures for the oic-signature tests that the repository spec cannot express.

Usage: python3 signing_cases.py CASE OUT_DIR

The keys come from the project's test key generator `debrepo.GpgKey`, whose module is found
through the DEBREPO_SCRIPT environment variable. Every case signs `OUT_DIR/Release` (the text
below) into `OUT_DIR/InRelease` and `OUT_DIR/Release.gpg`, writes the public key to
`OUT_DIR/key.gpg`, and prints a JSON object with the primary and signing fingerprints.

Cases:
  expired          the key was made two years ago, expired after one year, and signed before
  expired-subkey   as "expired", but only the signing subkey expires
  revoked          the key signed, then its owner revoked it
  future           the signature is dated one day after the current time
  dash             the signed text has lines that start with "-", which need dash-escaping
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

RELEASE_TEXT = """Origin: oic-test
Label: oic-test
Codename: bookworm
Date: Wed, 01 Jan 2025 00:00:00 UTC
Description: signing test
"""

# Lines that start with "-" are dash-escaped in a clear signature. "From " and trailing spaces
# are other edge cases of the framework: trailing spaces are not signed.
DASH_TEXT = """Origin: oic-test
-----BEGIN PGP SIGNATURE-----
- a dash and a space
--double dash
-
From the first column
trailing spaces   
Description: end
"""


def load_debrepo():
    spec = importlib.util.spec_from_file_location("debrepo", os.environ["DEBREPO_SCRIPT"])
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class bodies run.
    sys.modules["debrepo"] = module
    spec.loader.exec_module(module)
    return module


def make_key(debrepo, gnupghome: Path, case: str, now: datetime):
    two_years_ago = now - timedelta(days=730)
    if case == "expired":
        return debrepo.GpgKey.generate(gnupghome, expire="1y", created=two_years_ago)
    if case == "expired-subkey":
        return debrepo.GpgKey.generate(
            gnupghome, expire="never", subkey_expire="1y", created=two_years_ago
        )
    return debrepo.GpgKey.generate(gnupghome, created=now - timedelta(days=1))


def signature_time(case: str, now: datetime) -> datetime | None:
    if case in ("expired", "expired-subkey"):
        return now - timedelta(days=700)
    if case == "future":
        return now + timedelta(days=1)
    return None


def main(case: str, out_dir: Path) -> None:
    debrepo = load_debrepo()
    now = datetime.now(UTC).replace(microsecond=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    gnupghome = out_dir / "gnupg"
    key = make_key(debrepo, gnupghome, case, now)
    try:
        release = out_dir / "Release"
        release.write_text(DASH_TEXT if case == "dash" else RELEASE_TEXT)
        when = signature_time(case, now)
        key.sign(release, out_dir / "InRelease", clearsign=True, when=when)
        key.sign(release, out_dir / "Release.gpg", clearsign=False, when=when)
        if case == "revoked":
            key.revoke()
        key.export_binary(out_dir / "key.gpg")
    finally:
        key.stop_agent()
    summary = {"fingerprint": key.fingerprint, "signing_fingerprint": key.signing_fingerprint}
    json.dump(summary, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], Path(sys.argv[2]))
