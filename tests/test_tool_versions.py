"""Methods name the tools' installed versions, never the commit of the checkout they sit in."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

from windl.validate import VALIDATOR, validator_version

REPO = Path(__file__).resolve().parent.parent


def test_validator_version_is_the_installed_package_not_the_checkouts_commit() -> None:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    recorded = validator_version()
    assert recorded == f"bids-validator {version(VALIDATOR)}"
    assert not head or head not in recorded
