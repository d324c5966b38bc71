"""Convert: raw sessions in ``sourcedata`` to BIDS, each under one ``datalad run``.

MRI goes through heudiconv + dcm2niix with the study's ``code/heuristic.py`` (by default
windl's own, see :mod:`windl.convert.heuristic`). The run command also runs
:mod:`windl.convert.finalize`, so ``datalad rerun`` reproduces the whole result.
"""

from __future__ import annotations

import csv
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl import datasets
from windl.config import Site
from windl.convert import ephys
from windl.convert.ephys import EPHYS_KINDS
from windl.convert.finalize import conversion_record
from windl.errors import ConversionFailed, NothingToConvert, WindlError
from windl.labels import bids_label
from windl.study import Study, get_study

HEURISTIC = "code/heuristic.py"
Progress = Callable[[str, int, int], None]


@dataclass
class SessionConversion:
    subject: str
    session: str | None
    status: str  # "converted" | "up to date" | "failed"
    series: list[dict[str, str]] = field(default_factory=list)  # MRI, from the record
    recordings: list[dict[str, str]] = field(default_factory=list)  # EEG/MEG
    error: str | None = None

    @property
    def prefix(self) -> str:
        return f"sub-{self.subject}" + (f"/ses-{self.session}" if self.session else "")


def find_sessions(
    study: Study, subject: str | None = None, session: str | None = None
) -> list[tuple[str, str | None]]:
    """(subject, session) pairs with raw data in ``sourcedata``, optionally filtered."""
    sub = bids_label(subject, "sub") if subject else None
    ses = bids_label(session, "ses") if session else None
    found: set[tuple[str, str | None]] = set()
    for area in ("dicom", *EPHYS_KINDS):
        for raw in [
            *study.sourcedata.glob(f"sub-*/{area}"),
            *study.sourcedata.glob(f"sub-*/ses-*/{area}"),
        ]:
            parts = raw.relative_to(study.sourcedata).parts
            s_sub = parts[0].removeprefix("sub-")
            s_ses = parts[1].removeprefix("ses-") if len(parts) == 3 else None
            if (sub is None or s_sub == sub) and (ses is None or s_ses == ses):
                found.add((s_sub, s_ses))
    if not found:
        what = " ".join(x for x in (f"sub-{sub}" if sub else "", f"ses-{ses}" if ses else "") if x)
        raise NothingToConvert(
            f"no ingested raw data {'for ' + what + ' ' if what else ''}in study {study.name}"
        )
    return sorted(found, key=lambda p: (p[0], p[1] or ""))


def _quote(args: list[str]) -> str:
    # DataLad placeholders ({inputs}, {tmpdir}, {dspath}) must reach DataLad unquoted
    return " ".join(a if "{" in a else shlex.quote(a) for a in args)


def _mri_command(subject: str, session: str | None, source: str) -> str:
    ses_args = ["-ss", session] if session else []
    heudiconv = [
        "heudiconv", "--files", "{inputs}", "-s", subject, *ses_args,
        "-f", HEURISTIC, "-c", "dcm2niix", "-b", "notop", "--minmeta", "--overwrite",
        "-g", "all", "-o", "{tmpdir}/heudiconv", "--conv-outdir", "{dspath}",
    ]  # fmt: skip
    finalize = [
        "python", "-m", "windl.convert.finalize", "--subject", subject,
        *(["--session", session] if session else []),
        "--plan", "{tmpdir}/plan.json", "--source", source, "--heuristic", HEURISTIC,
    ]  # fmt: skip
    return f"WINDL_PLAN_OUT={{tmpdir}}/plan.json {_quote(heudiconv)} && {_quote(finalize)}"


def _ephys_command(
    subject: str, session: str | None, source: str, line_freq: float, task: str | None
) -> str:
    return _quote([
        "python", "-m", "windl.convert.ephys", "--subject", subject,
        *(["--session", session] if session else []),
        "--source", source, "--line-freq", f"{line_freq:g}",
        *(["--task", task] if task else []), "--scratch", "{tmpdir}/bids",
    ])  # fmt: skip


def _read_tsv_records(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@dataclass(frozen=True)
class Unit:
    """One ``datalad run`` of a session: what it reads, writes, and depends on."""

    what: str  # for the commit message
    stem: str  # code/conversion/<stem>.{tsv,json}
    inputs: list[str]
    command: str
    record: dict[str, Any]


def _run_unit(study: Study, prefix: str, unit: Unit) -> str:
    """Run ``unit`` unless its stored record equals the current one; return the status."""
    record_path = study.conversion_records / f"{unit.stem}.json"
    outputs = [
        prefix,
        "participants.tsv",
        f"code/conversion/{unit.stem}.tsv",
        f"code/conversion/{unit.stem}.json",
    ]
    # an interrupted earlier run may have left windl-owned outputs behind
    datasets.discard_changes(study.root, [outputs[0], *outputs[2:]])
    datasets.require_clean(study.root, ["participants.tsv"])
    if (
        record_path.exists()
        and (study.root / prefix).is_dir()
        and json.loads(record_path.read_text(encoding="utf-8")) == unit.record
    ):
        return "up to date"
    datasets.datalad_run(
        study.root,
        unit.command,
        inputs=unit.inputs,
        outputs=outputs,
        message=f"windl convert: {prefix.replace('/', ' ')} ({unit.what})",
        log=study.root / datasets.WINDL_GITDIR / "logs" / f"convert-{unit.stem}.log",
    )
    return "converted"


def line_frequency(site: Site, study: Study) -> float:
    """PowerLineFrequency: the study's code/study.toml, else windl.toml, else 50 Hz."""
    for settings in (study.settings(), site.settings):
        value = settings.get("convert", {}).get("power_line_frequency")
        if value is not None:
            return float(value)
    return 50.0


def convert_session(
    site: Site, study: Study, subject: str, session: str | None, task: str | None = None
) -> SessionConversion:
    """Convert one session's MRI and EEG/MEG, each unless its record says up to date."""
    result = SessionConversion(subject, session, status="up to date")
    prefix = result.prefix
    stem = prefix.replace("/", "_")
    units = []
    dicom = f"sourcedata/{prefix}/dicom"
    if (study.root / dicom).is_dir():
        units.append(Unit(
            "heudiconv + dcm2niix", stem, [dicom], _mri_command(subject, session, dicom),
            conversion_record(study.root, dicom, HEURISTIC),
        ))  # fmt: skip
    raw = f"sourcedata/{prefix}"
    ephys_inputs = [f"{raw}/{k}" for k in EPHYS_KINDS if (study.root / raw / k).is_dir()]
    if ephys_inputs:
        freq = line_frequency(site, study)
        units.append(Unit(
            "mne-bids", f"{stem}_ephys", ephys_inputs,
            _ephys_command(subject, session, raw, freq, task),
            ephys.conversion_record(study.root, raw, task, freq),
        ))  # fmt: skip
    try:
        for unit in units:
            if _run_unit(study, prefix, unit) == "converted":
                result.status = "converted"
    except WindlError as exc:
        result.status = "failed"
        result.error = exc.message
    result.series = _read_tsv_records(study.conversion_records / f"{stem}.tsv")
    result.recordings = _read_tsv_records(study.conversion_records / f"{stem}_ephys.tsv")
    return result


def convert(
    site: Site,
    study_name: str,
    subject: str | None = None,
    session: str | None = None,
    task: str | None = None,
    progress: Progress | None = None,
) -> list[SessionConversion]:
    """Convert every matching ingested session of ``study_name`` to BIDS.

    A failing session does not stop the others; :class:`ConversionFailed` is raised at
    the end, after the successful ones are saved.
    """
    for tool in ("heudiconv", "dcm2niix", "git-annex"):
        datasets.require_tool(tool)
    study = get_study(site, study_name)
    sessions = find_sessions(study, subject, session)
    results = []
    for done, (sub, ses) in enumerate(sessions, 1):
        results.append(convert_session(site, study, sub, ses, task))
        if progress:
            progress("converting", done, len(sessions))
    datasets.record_subdataset_state(site.superdataset, study.root, f"windl convert: {study.name}")
    return results


def raise_for_failures(results: list[SessionConversion]) -> None:
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ConversionFailed(
            "; ".join(f"{r.prefix.replace('/', ' ')}: {r.error}" for r in failed)
        )
