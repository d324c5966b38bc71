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
from windl.checkpoints import checkpoint
from windl.config import Site
from windl.convert import ephys
from windl.convert.ephys import EPHYS_KINDS
from windl.convert.finalize import conversion_record, merge_participants
from windl.errors import ConversionFailed, NothingToConvert, WindlError
from windl.jobs import JobSpec, Run, run_jobs
from windl.labels import bids_label
from windl.study import Study, get_study

HEURISTIC = "code/heuristic.py"
Progress = Callable[[str, int, int], None]
#: files that parallel conversions all change, and how two versions are merged
PARALLEL_MERGES = {"participants.tsv": merge_participants}


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
    # heudiconv stops at the first series it cannot read: then series by series
    fallback = [
        "python", "-m", "windl.convert.fallback", "--subject", subject,
        *(["--session", session] if session else []),
        "--source", source, "--heuristic", HEURISTIC, "--plan", "{tmpdir}/plan.json",
        "--scratch", "{tmpdir}/by-series",
    ]  # fmt: skip
    finalize = [
        "python", "-m", "windl.convert.finalize", "--subject", subject,
        *(["--session", session] if session else []),
        "--plan", "{tmpdir}/plan.json", "--source", source, "--heuristic", HEURISTIC,
    ]  # fmt: skip
    return (
        f"WINDL_PLAN_OUT={{tmpdir}}/plan.json {_quote(heudiconv)} || {_quote(fallback)} "
        f"&& {_quote(finalize)}"
    )


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


def _outputs(prefix: str, unit: Unit) -> list[str]:
    return [
        prefix,
        "participants.tsv",
        f"code/conversion/{unit.stem}.tsv",
        f"code/conversion/{unit.stem}.json",
    ]


def _message(prefix: str, unit: Unit) -> str:
    return f"windl convert: {prefix.replace('/', ' ')} ({unit.what})"


def _log(study: Study, unit: Unit) -> Path:
    return study.root / datasets.WINDL_GITDIR / "logs" / f"convert-{unit.stem}.log"


def _needs_run(study: Study, prefix: str, unit: Unit) -> bool:
    """False when ``unit``'s stored record equals the current one (nothing to redo).

    An interrupted earlier run may have left windl-owned outputs behind: they are
    discarded first.
    """
    outputs = _outputs(prefix, unit)
    datasets.discard_changes(study.root, [outputs[0], *outputs[2:]])
    datasets.require_clean(study.root, ["participants.tsv"])
    record_path = study.conversion_records / f"{unit.stem}.json"
    return not (
        record_path.exists()
        and (study.root / prefix).is_dir()
        and json.loads(record_path.read_text(encoding="utf-8")) == unit.record
    )


def _run_unit(study: Study, prefix: str, unit: Unit) -> str:
    """Run ``unit`` unless its stored record equals the current one; return the status."""
    if not _needs_run(study, prefix, unit):
        return "up to date"
    datasets.datalad_run(
        study.root,
        unit.command,
        inputs=unit.inputs,
        outputs=_outputs(prefix, unit),
        message=_message(prefix, unit),
        log=_log(study, unit),
    )
    return "converted"


def line_frequency(site: Site, study: Study) -> float:
    """PowerLineFrequency: the study's code/study.toml, else windl.toml, else 50 Hz."""
    for settings in (study.settings(), site.settings):
        value = settings.get("convert", {}).get("power_line_frequency")
        if value is not None:
            return float(value)
    return 50.0


def session_units(
    site: Site, study: Study, subject: str, session: str | None, task: str | None = None
) -> list[Unit]:
    """The ``datalad run`` units of one session: MRI, then EEG/MEG (each if there is raw)."""
    prefix = SessionConversion(subject, session, status="").prefix
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
    return units


def _read_records(study: Study, result: SessionConversion) -> None:
    stem = result.prefix.replace("/", "_")
    result.series = _read_tsv_records(study.conversion_records / f"{stem}.tsv")
    result.recordings = _read_tsv_records(study.conversion_records / f"{stem}_ephys.tsv")
    _fail_without_bids(result, stem)


def _fail_without_bids(result: SessionConversion, stem: str) -> None:
    """A session whose raw data gave no BIDS file at all has failed, not succeeded.

    Checked on the committed records, so a second ``convert`` (up to date) says it again.
    """
    if result.status == "failed" or not (result.series or result.recordings):
        return
    if any(s.get("status") == "converted" for s in result.series) or result.recordings:
        return
    reasons = sorted({s.get("reason", "") for s in result.series})
    result.status = "failed"
    result.error = (
        f"no BIDS file from {len(result.series)} series, none converted "
        f"(code/conversion/{stem}.tsv; e.g. {reasons[0][:120]})"
    )


def convert_session(
    site: Site, study: Study, subject: str, session: str | None, task: str | None = None
) -> SessionConversion:
    """Convert one session's MRI and EEG/MEG, each unless its record says up to date."""
    result = SessionConversion(subject, session, status="up to date")
    try:
        for unit in session_units(site, study, subject, session, task):
            if _run_unit(study, result.prefix, unit) == "converted":
                result.status = "converted"
    except WindlError as exc:
        result.status = "failed"
        result.error = exc.message
    _read_records(study, result)
    return result


def _session_job(study: Study, result: SessionConversion, units: list[Unit], base: str) -> JobSpec:
    """One job per session: its units run in order in one worktree (they share scans.tsv)."""
    prefix = result.prefix
    return JobSpec(
        dataset=str(study.root),
        name=prefix.replace("/", "_"),
        base=base,
        runs=[
            Run(u.command, u.inputs, _outputs(prefix, u), _message(prefix, u), str(_log(study, u)))
            for u in units
        ],
        folders=[prefix],
        **_raw_worktrees(study, [i for u in units for i in u.inputs]),
    )


def _raw_worktrees(study: Study, inputs: list[str]) -> dict[str, dict[str, Any]]:
    """The datasets a job reads ``inputs`` from, and the paths in each (JobSpec fields).

    Each at the commit it has now (what a serial run reads, and what the up-to-date check
    looked at), even if its parent has not recorded that commit yet: ``sourcedata`` and,
    in it, the subject's dataset.
    """
    subdatasets: dict[str, list[str]] = {}
    pinned: dict[str, str] = {}
    for path in inputs:
        holder, rel = datasets.locate(study.root, path)
        chain = holder.relative_to(study.root).parts
        for depth in range(1, len(chain) + 1):
            sub = "/".join(chain[:depth])
            inside = "/".join(chain[depth:])
            reads = subdatasets.setdefault(sub, [])
            if depth == len(chain):
                reads.append(rel)
            elif inside not in reads:
                reads.append(inside)
            pinned.setdefault(sub, datasets.head(study.root / sub))
    return {"subdatasets": subdatasets, "pinned": pinned}


def _input_files(study: Study, spec: JobSpec) -> int:
    """How many raw files a job reads: a cheap measure of how long it takes."""
    located = [datasets.locate(study.root, p) for run in spec.runs for p in run.inputs]
    return sum(len(datasets.ls_tree(holder, "HEAD", rel or None)) for holder, rel in located)


def _convert_in_jobs(
    site: Site,
    study: Study,
    sessions: list[tuple[str, str | None]],
    task: str | None,
    jobs: int,
    executor: str,
    progress: Progress | None,
) -> list[SessionConversion]:
    """Convert ``sessions`` as parallel jobs, then replay their records in session order.

    Every job starts from the same commit; the records land one after the other, as a
    serial run would have made them, and participants.tsv gets every job's rows.
    """
    datasets.prepare_jobs(study.root)
    base = datasets.head(study.root)
    results: dict[str, SessionConversion] = {}
    specs = []
    done = 0
    for sub, ses in sessions:
        result = SessionConversion(sub, ses, status="up to date")
        results[result.prefix.replace("/", "_")] = result
        try:
            units = session_units(site, study, sub, ses, task)
            todo = [u for u in units if _needs_run(study, result.prefix, u)]
        except WindlError as exc:
            result.status, result.error, todo = "failed", exc.message, []
        if todo:
            specs.append(_session_job(study, result, todo, base))
        else:
            done += 1
            _read_records(study, result)
    if progress and done:
        progress("converting", done, len(sessions))
    sbatch_args = [str(a) for a in site.setting("slurm", "sbatch_args", [])]
    sizes = [_input_files(study, spec) for spec in specs]
    for job in run_jobs(specs, jobs, executor, sbatch_args, sizes):
        result = results[job.name]
        checkpoint("job-done", job.name)
        try:
            if job.commits:
                datasets.replay_commits(study.root, job.commits, PARALLEL_MERGES)
                result.status = "converted"
        except WindlError as exc:
            job.error = job.error or exc.message
        finally:
            datasets.remove_job(study.root, job.name)
        if job.error:
            result.status, result.error = "failed", job.error
        _read_records(study, result)
        done += 1
        if progress:
            progress("converting", done, len(sessions))
    return list(results.values())


def convert(
    site: Site,
    study_name: str,
    subject: str | None = None,
    session: str | None = None,
    task: str | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    executor: str = "local",
) -> list[SessionConversion]:
    """Convert every matching ingested session of ``study_name`` to BIDS.

    Parameters
    ----------
    jobs
        Sessions converted at the same time (local executor). 1 converts them one after
        the other in the study itself; more run each session as a job in a worktree of
        its own (:mod:`windl.jobs`) with the same records and files as a serial run.
    executor
        ``local`` or ``slurm`` (every session a Slurm job, whatever ``jobs`` says).

    A failing session does not stop the others; the caller raises
    :class:`ConversionFailed` (:func:`raise_for_failures`) after the successful ones are
    saved, and running again retries only the sessions that are not up to date.
    """
    for tool in ("heudiconv", "dcm2niix", "git-annex"):
        datasets.require_tool(tool)
    study = get_study(site, study_name)
    # a convert killed mid-run left its outputs half-written: back to the last commit
    # (only the paths its journal names; anything else uncommitted is still refused)
    datasets.recover_runs(study.root)
    checkpoint("convert-start")
    sessions = find_sessions(study, subject, session)
    if jobs > 1 or executor != "local":
        results = _convert_in_jobs(site, study, sessions, task, jobs, executor, progress)
    else:
        results = []
        for done, (sub, ses) in enumerate(sessions, 1):
            results.append(convert_session(site, study, sub, ses, task))
            if progress:
                progress("converting", done, len(sessions))
    checkpoint("convert-converted")
    datasets.record_subdataset_state(site.superdataset, study.root, f"windl convert: {study.name}")
    return results


def raise_for_failures(results: list[SessionConversion]) -> None:
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ConversionFailed(
            "; ".join(f"{r.prefix.replace('/', ' ')}: {r.error}" for r in failed)
        )
