"""Convert: raw sessions in ``sourcedata`` to BIDS, each under one ``datalad run``.

MRI goes through heudiconv + dcm2niix with the study's ``code/heuristic.py`` (by default
windl's own, see :mod:`windl.convert.heuristic`). The run command also runs
:mod:`windl.convert.finalize`, so ``datalad rerun`` reproduces the whole result.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from windl import datasets
from windl.config import Site
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
    series: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def prefix(self) -> str:
        return f"sub-{self.subject}" + (f"/ses-{self.session}" if self.session else "")


def find_sessions(
    study: Study, subject: str | None = None, session: str | None = None
) -> list[tuple[str, str | None]]:
    """(subject, session) pairs with raw DICOM in ``sourcedata``, optionally filtered."""
    sub = bids_label(subject, "sub") if subject else None
    ses = bids_label(session, "ses") if session else None
    found: list[tuple[str, str | None]] = []
    for dicom in sorted(study.sourcedata.glob("sub-*/dicom")) + sorted(
        study.sourcedata.glob("sub-*/ses-*/dicom")
    ):
        parts = dicom.relative_to(study.sourcedata).parts
        s_sub = parts[0].removeprefix("sub-")
        s_ses = parts[1].removeprefix("ses-") if len(parts) == 3 else None
        if (sub is None or s_sub == sub) and (ses is None or s_ses == ses):
            found.append((s_sub, s_ses))
    if not found:
        what = " ".join(x for x in (f"sub-{sub}" if sub else "", f"ses-{ses}" if ses else "") if x)
        raise NothingToConvert(
            f"no ingested DICOM {'for ' + what + ' ' if what else ''}in study {study.name}"
        )
    return sorted(found, key=lambda p: (p[0], p[1] or ""))


def _command(subject: str, session: str | None, source: str) -> str:
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
    quote = lambda args: " ".join(a if "{" in a else shlex.quote(a) for a in args)  # noqa: E731
    return f"WINDL_PLAN_OUT={{tmpdir}}/plan.json {quote(heudiconv)} && {quote(finalize)}"


def _read_series(study: Study, stem: str) -> list[dict[str, str]]:
    import csv

    path = study.conversion_records / f"{stem}.tsv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def convert_session(study: Study, subject: str, session: str | None) -> SessionConversion:
    """Convert one session unless its conversion record says it is up to date."""
    result = SessionConversion(subject, session, status="converted")
    prefix = result.prefix
    stem = prefix.replace("/", "_")
    source = f"sourcedata/{prefix}/dicom"
    record_path = study.conversion_records / f"{stem}.json"
    outputs = [
        prefix,
        "participants.tsv",
        f"code/conversion/{stem}.tsv",
        f"code/conversion/{stem}.json",
    ]
    # an interrupted earlier run may have left windl-owned outputs behind
    datasets.discard_changes(study.root, outputs[:1] + outputs[2:])
    datasets.require_clean(study.root, ["participants.tsv"])
    if record_path.exists() and (study.root / prefix).is_dir():
        stored = json.loads(record_path.read_text(encoding="utf-8"))
        if stored == conversion_record(study.root, source, HEURISTIC):
            result.status = "up to date"
            result.series = _read_series(study, stem)
            return result
    try:
        datasets.datalad_run(
            study.root,
            _command(subject, session, source),
            inputs=[source],
            outputs=outputs,
            message=f"windl convert: {prefix.replace('/', ' ')} (heudiconv + dcm2niix)",
            log=study.root / datasets.WINDL_GITDIR / "logs" / f"convert-{stem}.log",
        )
    except WindlError as exc:
        result.status = "failed"
        result.error = exc.message
        return result
    result.series = _read_series(study, stem)
    return result


def convert(
    site: Site,
    study_name: str,
    subject: str | None = None,
    session: str | None = None,
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
        results.append(convert_session(study, sub, ses))
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
