"""Read what the catalog holds about a dataset at one commit, from git alone.

Nothing is checked out and no annexed content is needed: file names and sizes come from
``git ls-tree`` (annexed files: the size in the git-annex key their symlink names), text
metadata (dataset_description.json, participants.tsv, README, CHANGES, QC group tables,
``code/windl/release.json``) from ``git cat-file`` at that commit.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from windl import datasets

#: BIDS datatype folder -> modality
MODALITIES = {
    "anat": "mri",
    "func": "mri",
    "fmap": "mri",
    "dwi": "mri",
    "perf": "mri",
    "eeg": "eeg",
    "meg": "meg",
    "ieeg": "ieeg",
    "pet": "pet",
    "nirs": "nirs",
    "motion": "motion",
    "micr": "microscopy",
    "beh": "beh",
    "mrs": "mrs",
}
#: where windl keeps things that are not data of the dataset itself
NOT_DATA = (".datalad/", ".git", "code/", "sourcedata/", "restricted/")
QC_GROUP = re.compile(r"^derivatives/qc/group_(?P<kind>[A-Za-z0-9]+)\.tsv$")
RELEASE_RECORD = "code/windl/release.json"
_ENTITY = re.compile(r"^(?P<key>[a-zA-Z]+)-(?P<value>[a-zA-Z0-9]+)$")
_NA = {"", "n/a", "na", "nan", "none"}
DESCRIPTION_CHARS = 4000


@dataclass
class FileEntry:
    """One file of a version with its BIDS entities (``None`` where not a BIDS data file)."""

    path: str
    size: int | None
    annexed: bool
    subject: str | None = None
    session: str | None = None
    datatype: str | None = None
    suffix: str | None = None
    task: str | None = None
    extension: str | None = None

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Snapshot:
    """Everything indexed about one commit of a dataset."""

    commit: str
    name: str = ""
    description: str = ""
    authors: list[str] = field(default_factory=list)
    license: str | None = None
    doi: str | None = None
    version: str | None = None
    modalities: list[str] = field(default_factory=list)
    datatypes: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    derivatives: list[str] = field(default_factory=list)
    n_participants: int = 0
    n_sessions: int = 0
    participants: dict[str, Any] = field(default_factory=dict)
    qc: dict[str, Any] = field(default_factory=dict)
    n_files: int = 0
    size: int = 0
    changes: str = ""
    files: list[FileEntry] = field(default_factory=list)


def parse_bids_path(path: str) -> dict[str, str | None]:
    """Subject, session, datatype, suffix, task and extension of a BIDS path (or ``None``s)."""
    parts = PurePosixPath(path).parts
    name = parts[-1]
    stem, dot, ext = name.partition(".")
    found: dict[str, str | None] = {
        "subject": None,
        "session": None,
        "datatype": None,
        "suffix": None,
        "task": None,
        "extension": f".{ext}" if dot else None,
    }
    # raw data lives at sub-X/[ses-Y/]<datatype>/; derivatives repeat that below their name
    for i, part in enumerate(parts[:-1]):
        if part.startswith("sub-") and found["subject"] is None:
            found["subject"] = part[4:]
            rest = parts[i + 1 : -1]
            if rest and rest[0].startswith("ses-"):
                found["session"] = rest[0][4:]
                rest = rest[1:]
            if rest:
                found["datatype"] = rest[0]
            break
    pieces = stem.split("_")
    if len(pieces) > 1 or not _ENTITY.match(stem):
        entities = {}
        for piece in pieces[:-1]:
            match = _ENTITY.match(piece)
            if match:
                entities[match["key"]] = match["value"]
        if found["subject"] is None and "sub" in entities:
            found["subject"] = entities["sub"]
        if found["session"] is None and "ses" in entities:
            found["session"] = entities["ses"]
        found["task"] = entities.get("task")
        if pieces[-1] and "-" not in pieces[-1]:
            found["suffix"] = pieces[-1]
    return found


def _text(blob: bytes | None) -> str:
    return blob.decode("utf-8", errors="replace") if blob else ""


def _json(blob: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(_text(blob)) if blob else {}
    except json.JSONDecodeError:
        return {}  # a broken sidecar is the validator's finding, not a reason to skip a dataset
    return value if isinstance(value, dict) else {}


def _tsv(blob: bytes | None) -> list[dict[str, str]]:
    lines = [line for line in _text(blob).splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip() for h in lines[0].split("\t")]
    return [
        dict(zip(header, (c.strip() for c in line.split("\t")), strict=False)) for line in lines[1:]
    ]


def _number(value: str | None) -> float | None:
    if value is None or value.strip().lower() in _NA:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def participants_summary(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Count, age min/median/max and sex counts of participants.tsv rows."""
    ages = sorted(a for a in (_number(r.get("age")) for r in rows) if a is not None)
    sexes = Counter(
        "n/a" if (r.get("sex") or "").strip().lower() in _NA else r["sex"].strip().upper()[:1]
        for r in rows
        if "sex" in r
    )
    summary: dict[str, Any] = {"count": len(rows)}
    if ages:
        summary["age"] = {
            "min": ages[0],
            "median": statistics.median(ages),
            "max": ages[-1],
            "n": len(ages),
        }
    if sexes:
        summary["sex"] = dict(sorted(sexes.items()))
    return summary


def qc_summary(tables: dict[str, bytes | None]) -> dict[str, Any]:
    """Per QC kind (``group_<kind>.tsv``): the number of rows (files) and each metric's median."""
    summary: dict[str, Any] = {}
    for path, blob in sorted(tables.items()):
        match = QC_GROUP.match(path)
        rows = _tsv(blob)
        if match is None or not rows:
            continue
        metrics: dict[str, float] = {}
        for column in rows[0]:
            values = [_number(r.get(column)) for r in rows]
            numbers = [v for v in values if v is not None]
            # a metric column: numeric wherever it has a value (not bids_name, not labels)
            if numbers and len(numbers) == sum(
                1 for r in rows if (r.get(column) or "n/a").lower() not in _NA
            ):
                metrics[column] = statistics.median(numbers)
        summary[match["kind"]] = {"files": len(rows), "metrics": metrics}
    return summary


def _readme(blobs: dict[str, bytes | None]) -> str:
    for name in ("README.md", "README", "README.rst", "README.txt"):
        text = _text(blobs.get(name)).strip()
        if text:
            return text[:DESCRIPTION_CHARS]
    return ""


def _field(value: Any) -> str | None:
    """A one-line value of dataset_description.json (whitespace collapsed), or ``None``."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _authors(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(a) for a in value if str(a).strip()]
    return []


def snapshot(ds: Path, commit: str) -> Snapshot:
    """Read the catalog's view of ``ds`` at ``commit``."""
    entries = datasets.ls_tree_sized(ds, commit)
    links = [(path, blob) for mode, blob, path, _ in entries if mode == "120000"]
    keys = dict(
        zip(
            (p for p, _ in links),
            datasets.annex_keys_of_links(ds, [b for _, b in links]),
            strict=True,
        )
    )
    files: list[FileEntry] = []
    for mode, _blob, path, size in entries:
        if path.startswith(".datalad/") or PurePosixPath(path).name.startswith(".git"):
            continue
        annexed = mode == "120000" and path in keys and "--" in keys[path]
        entry = FileEntry(
            path=path,
            size=datasets.annex_key_size(keys[path]) if annexed else size,
            annexed=annexed,
        )
        for key, value in parse_bids_path(path).items():
            setattr(entry, key, value)
        files.append(entry)
    paths = {f.path for f in files}
    wanted = [
        "dataset_description.json",
        "participants.tsv",
        "README.md",
        "README",
        "README.rst",
        "README.txt",
        "CHANGES",
        RELEASE_RECORD,
        *sorted(p for p in paths if QC_GROUP.match(p)),
    ]
    blobs = datasets.read_blobs(ds, commit, [p for p in wanted if p in paths])
    description = _json(blobs.get("dataset_description.json"))
    record = _json(blobs.get(RELEASE_RECORD))
    raw = [
        f
        for f in files
        if f.subject is not None and not f.path.startswith(("derivatives/", *NOT_DATA))
    ]
    datatypes = sorted({f.datatype for f in raw if f.datatype})
    subjects = {f.subject for f in raw if f.subject}
    sessions = {(f.subject, f.session) for f in raw if f.subject}
    participant_rows = _tsv(blobs.get("participants.tsv"))
    summary = participants_summary(participant_rows)
    summary["count"] = len(subjects) or len(participant_rows)
    return Snapshot(
        commit=commit,
        name=_field(description.get("Name")) or ds.name,
        description=_readme(blobs),
        authors=_authors(description.get("Authors")),
        license=_field(description.get("License")),
        doi=_field(description.get("DatasetDOI")),
        version=str(record["version"]) if record.get("version") else None,
        modalities=sorted({MODALITIES.get(d, d) for d in datatypes}),
        datatypes=datatypes,
        suffixes=sorted({f.suffix for f in raw if f.suffix and f.datatype}),
        tasks=sorted({f.task for f in raw if f.task}),
        derivatives=sorted(
            {
                f.path.split("/")[1]
                for f in files
                if f.path.startswith("derivatives/") and f.path.count("/") >= 2
            }
        ),
        n_participants=summary["count"],
        n_sessions=len(sessions),
        participants=summary,
        qc=qc_summary({p: b for p, b in blobs.items() if QC_GROUP.match(p)}),
        n_files=len(files),
        size=sum(f.size or 0 for f in files),
        changes=_text(blobs.get("CHANGES"))[:DESCRIPTION_CHARS],
        files=files,
    )
