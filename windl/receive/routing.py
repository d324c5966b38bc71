"""Routing rules: which windl study, subject and session a received DICOM study goes to.

``windl.toml``::

    [[receive.routes]]
    study = "study1"                     # the windl study
    called_ae = "WINDL"                  # optional: only this called AE title
    match = { StudyDescription = "^FMRIF" }   # optional: tag = regular expression (search)
    subject = "{PatientID}"              # a template of DICOM keywords ...
    subject_lookup = "PatientID"         # ... or this tag's value looked up in the
                                         # study's restricted/scanner-ids.tsv
                                         # (columns scanner_id, subject[, session])
    session = "{StudyDate}"              # optional template; missing or "" = no session

The first rule that matches wins; labels keep letters and digits only. A study that no
rule maps, or whose labels come out empty, raises :class:`~windl.errors.Unroutable`.
"""

from __future__ import annotations

import csv
import re
import string
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from windl.config import Site
from windl.errors import ConfigError, StudyNotFound, Unroutable
from windl.labels import sanitize_label
from windl.study import get_study

LOOKUP_FILE = "scanner-ids.tsv"


@dataclass(frozen=True)
class Destination:
    """Where a received study goes."""

    study: str
    subject: str
    session: str | None
    rule: int


def _tag_value(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # an undecodable value counts as missing
        return ""
    if value is None:
        return ""
    return str(value.value if hasattr(value, "value") else value)


def _fill(template: str, ds: Dataset) -> str:
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return template.format(**{name: _tag_value(ds, name) for name in names})


def _lookup(site: Site, study: str, scanner_id: str) -> dict[str, str] | None:
    path = get_study(site, study).root / "restricted" / LOOKUP_FILE
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row.get("scanner_id", "").strip() == scanner_id.strip():
                return row
    return None


def _matches(rule: dict[str, Any], ds: Dataset, called_ae: str, index: int) -> bool:
    if "called_ae" in rule and str(rule["called_ae"]).strip() != called_ae.strip():
        return False
    match = rule.get("match", {})
    if not isinstance(match, dict):
        raise ConfigError(f"receive.routes[{index}].match must be a table of tag = pattern")
    for keyword, pattern in match.items():
        try:
            if not re.search(str(pattern), _tag_value(ds, keyword)):
                return False
        except re.error as exc:
            raise ConfigError(f"receive.routes[{index}].match.{keyword}: {exc}") from None
    return True


def forced_rules(rules: tuple[dict[str, Any], ...], study: str) -> tuple[dict[str, Any], ...]:
    """One rule sending everything to ``study`` (an operator's ``--requeue --study``).

    Subject and session come from the first rule naming ``study`` (its conditions
    dropped), else the defaults (``{PatientID}``, no session).
    """
    base = next((r for r in rules if str(r.get("study")) == study), {})
    rule = {k: v for k, v in base.items() if k not in ("match", "called_ae")}
    rule["study"] = study
    return (rule,)


def route(
    site: Site, rules: tuple[dict[str, Any], ...], ds: Dataset, called_ae: str
) -> Destination:
    """Map a study (one of its instances' header ``ds``) to a windl study and labels."""
    for index, rule in enumerate(rules):
        if "study" not in rule:
            raise ConfigError(f"receive.routes[{index}] has no 'study'")
        if not _matches(rule, ds, called_ae, index):
            continue
        study = str(rule["study"])
        try:
            get_study(site, study)
        except StudyNotFound:
            raise Unroutable(f"rule {index} names study {study!r}, which does not exist") from None
        session_template = rule.get("session")
        session = sanitize_label(_fill(str(session_template), ds)) if session_template else ""
        if "subject_lookup" in rule:
            row = _lookup(site, study, _tag_value(ds, str(rule["subject_lookup"])))
            if row is None:
                raise Unroutable(
                    f"rule {index}: {rule['subject_lookup']} not in {study}'s "
                    f"restricted/{LOOKUP_FILE}"
                )
            subject = sanitize_label(row.get("subject", "").removeprefix("sub-"))
            session = sanitize_label((row.get("session") or "").removeprefix("ses-")) or session
        else:
            subject = sanitize_label(_fill(str(rule.get("subject", "{PatientID}")), ds))
        if not subject:
            raise Unroutable(f"rule {index} gives an empty subject label")
        return Destination(study, subject, session or None, index)
    raise Unroutable(f"no routing rule matches (called AE {called_ae!r})")
