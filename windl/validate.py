"""BIDS validation with the official validator (``bids-validator-deno``).

The result is stored as a git note (``refs/notes/windl/validation``) on the commit that
was validated, so it always refers to the exact dataset state it describes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from windl import datasets
from windl.config import Site
from windl.errors import WindlError
from windl.locks import study_lock
from windl.study import Study, get_study

VALIDATOR = "bids-validator-deno"
NOTES_REF = "windl/validation"
_EXIT_OK, _EXIT_ERRORS = 0, 16


@dataclass
class ValidationReport:
    study: str
    commit: str
    clean: bool
    validator: str
    errors: dict[str, int] = field(default_factory=dict)  # code → count
    warnings: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # code → first location
    validated_at: str = ""

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def n_warnings(self) -> int:
        return sum(self.warnings.values())


def run_validator(root: Path, extra_args: list[str] | None = None) -> dict[str, Any]:
    """Run the validator on ``root`` and return its parsed JSON output."""
    proc = datasets.run_tool(
        [VALIDATOR, "--format", "json", *(extra_args or []), str(root)], check=False
    )
    if proc.returncode not in (_EXIT_OK, _EXIT_ERRORS):
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise WindlError(
            f"{VALIDATOR} failed (exit {proc.returncode}): {detail[-1] if detail else ''}", root
        )
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise WindlError(f"{VALIDATOR} printed no JSON ({exc})", root) from None
    return result


def summarize(output: dict[str, Any]) -> tuple[Counter[str], Counter[str], dict[str, str]]:
    errors: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for issue in output.get("issues", {}).get("issues", []):
        code = str(issue.get("code"))
        if issue.get("subCode"):
            code += f" ({issue['subCode']})"
        (errors if issue.get("severity") == "error" else warnings)[code] += 1
        examples.setdefault(code, str(issue.get("location") or ""))
    return errors, warnings, examples


def validator_version() -> str:
    """The validator's version as installed (``bids-validator 3.0.2``).

    The package's metadata, not ``bids-validator-deno --version``: that prints the commit of
    the git repository the tool happens to be installed inside (a checkout's virtualenv), so
    methods would name windl's own commit and change with every commit of it.
    """
    try:
        return f"bids-validator {package_version(VALIDATOR)}"
    except PackageNotFoundError:
        return datasets.run_tool([VALIDATOR, "--version"], check=False).stdout.strip()


def validate(site: Site, study_name: str) -> ValidationReport:
    """Validate a study and record the result on its current commit."""
    study = get_study(site, study_name)
    # the result is stored on the commit the validator read: no other windl command may
    # move the study meanwhile
    with study_lock(site.root, study.name):
        return _validate(site, study)


def _validate(site: Site, study: Study) -> ValidationReport:
    """:func:`validate` of a study whose lock this process holds."""
    version = validator_version()
    commit = datasets.head(study.root)
    output = run_validator(study.root, site.setting("validate", "extra_args", []))
    errors, warnings, examples = summarize(output)
    report = ValidationReport(
        study=study.name,
        commit=commit,
        clean=not datasets.dirty_paths(study.root),
        validator=version,
        errors=dict(errors.most_common()),
        warnings=dict(warnings.most_common()),
        examples=examples,
        validated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    if report.clean and datasets.head(study.root) == commit:  # also if git moved it meanwhile
        datasets.write_note(study.root, NOTES_REF, commit, report.__dict__)
    return report


def stored_report(site: Site, study_name: str, commit: str = "HEAD") -> dict[str, Any] | None:
    """The validation stored for ``commit`` of the study, if any."""
    study = get_study(site, study_name)
    return datasets.read_note(study.root, NOTES_REF, commit)
