"""Research data alongside the imaging data (``windl add STUDY PATH --as KIND``).

Where each KIND goes in the study (a BIDS root):

=====================  =======================================================
``phenotype``          ``phenotype/<name>.tsv`` (+ ``.json``); needs ``participant_id``
``beh``                ``sub-S[/ses-X]/beh/sub-S[_ses-X]_task-T_beh.tsv`` (+ ``.json``)
``stimuli``            ``stimuli/...``
``code``               ``code/...``
``docs``               ``docs/...``; ``docs`` is added to ``.bidsignore``
``derivatives/NAME``   ``derivatives/NAME/...`` + its ``dataset_description.json``
=====================  =======================================================

PATH is a file or a folder (a folder's files keep their layout below it; ``phenotype``
is flat, ``beh`` takes one TSV file). A JSON file next to a TSV with the same stem is its
data dictionary; a TSV without one gets a generated dictionary (one entry per column, to
be filled in) and the result lists it. Every TSV is checked first; a ragged one refuses
the whole add. Everything lands in one atomic commit (text in git, binaries in the annex,
as the study's ``.gitattributes`` says); files already there are skipped, so adding the
same again makes no commit; other content at an existing path is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl.bids_import import (
    BIDSIGNORE,
    bidsignore_with,
    commit_to_study,
    link_target,
    list_files,
    plan_writes,
    prepare_study,
    read_tsv,
    scratch_dir,
    tracked_files,
)
from windl.config import Site
from windl.errors import BadInput
from windl.labels import bids_label
from windl.study import Study, get_study

KINDS = ("beh", "phenotype", "stimuli", "code", "docs", "derivatives/NAME")
#: a non-numeric column with at most this many distinct values gets "Levels"
MAX_LEVELS = 10
_DERIVATIVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MISSING = ("", "n/a")
_FALLBACK_BIDS_VERSION = "1.10.0"


@dataclass
class AddResult:
    """What ``windl add`` did (paths relative to the study)."""

    study: str
    kind: str
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    to_describe: list[str] = field(default_factory=list)  # generated JSON to fill in
    commit: str | None = None
    link_to: str | None = None  # where the path given ends, when it is a symbolic link

    @property
    def changed(self) -> bool:
        return self.commit is not None


def parse_kind(kind: str) -> tuple[str, str | None]:
    """Split ``--as KIND`` into (area, derivative name).

    Raises
    ------
    BadInput
        For an unknown kind or a derivative name that cannot be a folder name.
    """
    area, _, name = kind.partition("/")
    if area == "derivatives":
        if not _DERIVATIVE_NAME.match(name):
            raise BadInput(
                f"invalid derivatives name {name!r} in --as {kind}: use letters, digits, "
                "'.', '-' and '_'"
            )
        return area, name
    if name or area not in KINDS:
        raise BadInput(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    return area, None


def add(
    site: Site,
    study_name: str,
    path: Path,
    kind: str,
    subject: str | None = None,
    session: str | None = None,
    task: str | None = None,
) -> AddResult:
    """Add the file or folder ``path`` to the study at the BIDS place for ``kind``.

    Parameters
    ----------
    site
        The site that holds the study.
    study_name
        Name of an existing study.
    path
        A file, or a folder whose files keep their relative layout.
    kind
        One of :data:`KINDS` (``derivatives/NAME`` with a real name).
    subject, session, task
        BIDS labels; ``subject`` and ``task`` are required for ``beh`` and refused for
        the other kinds; ``session`` is optional for ``beh``.

    Returns
    -------
    AddResult
        Files written, files already there, and generated dictionaries to fill in.

    Raises
    ------
    BadInput
        Unknown kind, missing/extra options, a missing path, or a TSV that is not valid.
    ConflictingInput
        A target path already holds other content.
    DatasetDirty
        The study has uncommitted changes.
    """
    study = get_study(site, study_name)
    area, derivative = parse_kind(kind)
    labels = _labels(area, subject, session, task)
    source = Path(path)
    if not source.exists() and not source.is_symlink():
        raise BadInput("no such file or folder", source)
    prepare_study(site, study)
    files = _source_files(source)
    targets = _targets(area, derivative, source, files, labels)
    tables = {rel: read_tsv(src) for rel, src in targets.items() if rel.endswith(".tsv")}
    for rel, (columns, _) in tables.items():
        if area == "phenotype" and "participant_id" not in columns:
            raise BadInput("phenotype table has no participant_id column", targets[rel])

    result = AddResult(study=study.name, kind=kind)
    if source.is_symlink():
        result.link_to = str(source.resolve())
    tracked = tracked_files(study.root)
    with scratch_dir(study.root) as scratch:
        extra: dict[str, Path] = {}
        for rel, (columns, rows) in sorted(tables.items()):
            sidecar = rel.removesuffix(".tsv") + ".json"
            if sidecar not in targets and sidecar not in tracked:
                extra[sidecar] = _write_json(scratch, sidecar, data_dictionary(columns, rows))
                result.to_describe.append(sidecar)
        replace: list[str] = []
        if area == "docs":
            ignore = bidsignore_with(study.root, ["docs"], scratch)
            if ignore is not None:
                extra[BIDSIGNORE] = ignore
                replace.append(BIDSIGNORE)
        elif area == "derivatives":
            description = f"derivatives/{derivative}/dataset_description.json"
            if description not in targets and description not in tracked:
                content = derivative_description(study, str(derivative))
                extra[description] = _write_json(scratch, description, content)
                result.to_describe.append(description)
        elif area == "beh":
            participants = _with_participant(study, labels["sub"], scratch)
            if participants is not None:
                extra["participants.tsv"] = participants
                replace.append("participants.tsv")
        writes, result.unchanged = plan_writes(study.root, {**targets, **extra}, replace)
        result.added = sorted(writes)
        if writes:
            result.commit = commit_to_study(
                site, study, writes, f"windl add: {len(writes)} files as {kind} from {source.name}"
            )
    return result


def _labels(
    area: str, subject: str | None, session: str | None, task: str | None
) -> dict[str, str]:
    given = {"subject": subject, "session": session, "task": task}
    if area != "beh":
        extra = [f"--{k}" for k, v in given.items() if v is not None]
        if extra:
            raise BadInput(f"{', '.join(extra)} only applies to --as beh")
        return {}
    missing = [f"--{k}" for k in ("subject", "task") if given[k] is None]
    if missing:
        raise BadInput(f"--as beh needs {' and '.join(missing)}")
    labels = {"sub": bids_label(str(subject), "sub"), "task": bids_label(str(task), "task")}
    if session is not None:
        labels["ses"] = bids_label(session, "ses")
    return labels


def _given_link(path: Path, given: Path) -> None:
    """Refuse ``path`` if it is a symbolic link that leaves the folder it was given in.

    ``windl add data/x.tsv`` with ``x.tsv`` a link to ``/etc/shadow`` would commit that
    file; the error says where the link ends. A link that stays in its folder, or an
    annexed file of a DataLad dataset (a link into the dataset's ``.git/annex/objects``),
    is followed.
    """
    if not path.is_symlink():
        return
    target = link_target(path, given)
    folder = path.absolute().parent.resolve()
    annexed = any(
        target.is_relative_to(above / ".git" / "annex" / "objects")
        for above in (folder, *folder.parents)
    )
    if not (annexed or target.is_relative_to(folder)):
        raise BadInput(
            f"is a symbolic link to {target}, outside {folder}; "
            "add that file itself if it is the one meant",
            given,
        )


def _source_files(source: Path) -> dict[str, Path]:
    """The input's files (relative path → file); a lone TSV brings its JSON sidecar."""
    _given_link(source, source)
    if source.is_dir():
        files, _hidden = list_files(source)
        if not files:
            raise BadInput("contains no files", source)
        return files
    if not source.is_file():
        raise BadInput("not a regular file", source)
    files = {source.name: source}
    sidecar = source.with_suffix(".json")
    if source.suffix == ".tsv" and sidecar.is_file():
        _given_link(sidecar, sidecar)
        files[sidecar.name] = sidecar
    return files


def _targets(
    area: str,
    derivative: str | None,
    source: Path,
    files: dict[str, Path],
    labels: dict[str, str],
) -> dict[str, Path]:
    """Study path of every input file."""
    if area == "beh":
        tables = [rel for rel in files if rel.endswith(".tsv")]
        others = [rel for rel in files if not rel.endswith((".tsv", ".json"))]
        if source.is_dir() or len(tables) != 1 or others:
            raise BadInput(
                "--as beh takes one .tsv file (its .json sidecar is taken along)", source
            )
        stem = f"sub-{labels['sub']}" + (f"_ses-{labels['ses']}" if "ses" in labels else "")
        folder = f"sub-{labels['sub']}" + (f"/ses-{labels['ses']}" if "ses" in labels else "")
        name = f"{folder}/beh/{stem}_task-{labels['task']}_beh"
        return {f"{name}{Path(rel).suffix}": path for rel, path in files.items()}
    if area == "phenotype":
        targets: dict[str, Path] = {}
        for rel, path in files.items():
            if path.suffix not in (".tsv", ".json"):
                raise BadInput("phenotype files are .tsv tables and their .json dictionaries", path)
            target = f"phenotype/{Path(rel).name}"
            if target in targets:
                raise BadInput(f"two input files map to {target}", path)
            targets[target] = path
        return targets
    prefix = f"derivatives/{derivative}" if area == "derivatives" else area
    return {f"{prefix}/{rel}": path for rel, path in files.items()}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def data_dictionary(columns: list[str], rows: list[dict[str, str]]) -> dict[str, Any]:
    """A BIDS data dictionary for a table, to be completed by a person.

    One entry per column with a ``TODO`` description; a non-numeric column with at most
    :data:`MAX_LEVELS` distinct values also lists them under ``Levels``.
    """
    dictionary: dict[str, Any] = {}
    for column in columns:
        if column == "participant_id":
            dictionary[column] = {"Description": "Participant label, as in participants.tsv"}
            continue
        entry: dict[str, Any] = {"Description": f"TODO: describe {column}"}
        values = [r[column] for r in rows if r[column] not in _MISSING]
        distinct = list(dict.fromkeys(values))
        if distinct and len(distinct) <= MAX_LEVELS and not all(map(_is_number, distinct)):
            entry["Levels"] = {v: f"TODO: describe {v}" for v in sorted(distinct)}
        dictionary[column] = entry
    return dictionary


def derivative_description(study: Study, name: str) -> dict[str, Any]:
    """``dataset_description.json`` of a new derivative folder (GeneratedBy to complete)."""
    return {
        "Name": name,
        "BIDSVersion": _study_bids_version(study),
        "DatasetType": "derivative",
        "GeneratedBy": [
            {"Name": name, "Description": "TODO: the software and steps that made these files"}
        ],
    }


def _study_bids_version(study: Study) -> str:
    try:
        description = json.loads(
            (study.root / "dataset_description.json").read_text(encoding="utf-8-sig")
        )
        return str(description["BIDSVersion"])
    except (OSError, ValueError, KeyError, TypeError):
        return _FALLBACK_BIDS_VERSION


def _with_participant(study: Study, subject: str, scratch: Path) -> Path | None:
    """``participants.tsv`` with a row for ``sub-<subject>`` added (None if it has one)."""
    current = study.root / "participants.tsv"
    pid = f"sub-{subject}"
    if not current.is_file():
        target = scratch / "participants.tsv"
        target.write_text(f"participant_id\n{pid}\n", encoding="utf-8")
        return target
    columns, rows = read_tsv(current)
    if "participant_id" not in columns:
        raise BadInput("participants.tsv has no participant_id column", current)
    if any(r["participant_id"] == pid for r in rows):
        return None
    text = current.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    row = "\t".join(pid if c == "participant_id" else "n/a" for c in columns)
    target = scratch / "participants.tsv"
    target.write_text(text + row + "\n", encoding="utf-8")
    return target


def _write_json(scratch: Path, rel: str, content: dict[str, Any]) -> Path:
    target = scratch / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
