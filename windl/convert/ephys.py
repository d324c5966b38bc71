"""EEG/MEG to BIDS with mne-bids, inside ``datalad run`` (``python -m windl.convert.ephys``).

mne-bids writes into a scratch BIDS root (``{tmpdir}`` of the run), and only the
session's ``eeg/``/``meg/`` files, its ``scans.tsv`` rows and the participant row are
taken over into the study. mne-bids also writes top-level files (README,
dataset_description.json, participants.json); letting it touch the study's own would make
the run's outputs depend on what was there before.

Each recording is recognised again by content (:func:`windl.ingest.ephys.find_recordings`)
and read with the reader of its format (a BrainVision header is read as BrainVision whatever
its data file is called). BrainVision (``.vhdr``), EDF, BDF, FIF and CTF are kept in their
format; the other formats mne reads are written as BrainVision (EEG: EEGLAB, Neuroscan,
Nihon Kohden, Persyst, V-Amp) or FIF (MEG: KIT/Yokogawa, BTi/4D), the formats whose
de-identification windl knows (docs/formats-ephys.md).

MEG recorded without digitisation (e.g. a CTF system saved as FIF) gets from mne-bids
0.20 a ``coordsystem.json`` with empty landmark/head-coil entries that the validator
rejects; :func:`tidy_coordsystem` keeps only the entries with coordinates and drops the
groups that have none (those keys are RECOMMENDED in BIDS, not REQUIRED).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from windl.convert.finalize import (
    _read_tsv,
    _write_tsv,
    add_participant,
    source_fingerprint,
    write_record_json,
)
from windl.errors import BadInput
from windl.ingest.ephys import (
    Recording,
    brainvision_data_file,
    folder_recording,
    read_recording,
)

EPHYS_KINDS = ("eeg", "meg")
#: formats mne-bids copies as they are, and windl's release de-identifies
NATIVE_FORMATS = ("EDF", "BDF", "FIF", "CTF")


@dataclass(frozen=True)
class RecordingPlan:
    name: str
    kind: str
    source: str  # path of the file (or .ds folder) mne reads, relative to the dataset
    task: str
    task_from: str
    run: str | None = None
    bids_name: str = ""
    format: str = ""


def raw_recordings(dataset: Path, source: str) -> list[tuple[str, str, Recording]]:
    """(kind, name, recording) of every recording under ``source/{eeg,meg}/<name>/``."""
    found = []
    for kind in EPHYS_KINDS:
        for folder in sorted((dataset / source / kind).glob("*")):
            recording = folder_recording(folder) if folder.is_dir() else None
            if recording is not None:
                found.append((kind, folder.name, recording))
    return found


def _source_path(recording: Recording) -> Path:
    """What the record names as the source: the main file, or a CTF recording's .ds folder."""
    main = recording.main.path
    return main.parent if recording.format == "CTF" else main


def _clean(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value)


def task_for(dataset: Path, name: str, cli_task: str | None) -> tuple[str, str]:
    """Task label of a recording: command line, else code/study.toml, else its name."""
    if cli_task:
        return _clean(cli_task), "command line"
    settings = dataset / "code" / "study.toml"
    if settings.exists():
        rules = tomllib.loads(settings.read_text()).get("convert", {}).get("recording_tasks", {})
        for pattern, label in rules.items():
            if re.search(pattern, name, re.IGNORECASE):
                return _clean(label), f"code/study.toml rule {pattern!r}"
    return _clean(name).lower() or "unknown", "recording name"


def plan(dataset: Path, source: str, cli_task: str | None) -> list[RecordingPlan]:
    """Task and run per recording; runs number recordings that share kind and task."""
    plans = []
    for kind, name, recording in raw_recordings(dataset, source):
        task, task_from = task_for(dataset, name, cli_task)
        main = _source_path(recording)
        plans.append(
            RecordingPlan(
                name, kind, str(main.relative_to(dataset)), task, task_from,
                format=recording.format,
            )
        )  # fmt: skip
    shared: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(plans):
        shared.setdefault((p.kind, p.task), []).append(i)
    for indices in shared.values():
        if len(indices) > 1:
            for run, i in enumerate(indices, 1):
                plans[i] = RecordingPlan(**{**asdict(plans[i]), "run": str(run)})
    return plans


def _events(raw: Any) -> tuple[Any, dict[str, int] | None]:
    """Events from stim (trigger) channels, also those typed from their label (``DIG DTRIG``).

    mne-bids writes the union of these and the recording's annotations (markers), so an
    EDF+ with both keeps both in ``events.tsv``.
    """
    import mne

    picks = mne.pick_types(raw.info, stim=True)
    if not len(picks):
        return None, None
    names = [raw.ch_names[i] for i in picks]
    events = mne.find_events(raw, stim_channel=names, verbose="error", shortest_event=1)
    if not len(events):
        return None, None
    event_id = {f"stim/{code}": int(code) for code in sorted(set(events[:, 2]))}
    # with events, mne-bids wants a value for every annotation text too: after the codes
    first = max(event_id.values()) + 1
    for i, text in enumerate(sorted(set(raw.annotations.description))):
        event_id.setdefault(text, first + i)
    return events, event_id


def tidy_coordsystem(path: Path) -> None:
    """Drop coordinate entries without 3 values, and groups left without any."""
    data = json.loads(path.read_text())
    for group in ("HeadCoilCoordinates", "AnatomicalLandmarkCoordinates"):
        if group not in data:
            continue
        kept = {
            k: v
            for k, v in data[group].items()
            if isinstance(v, list) and len(v) == 3 and all(x == x for x in v)  # no NaN
        }
        if kept:
            data[group] = kept
        else:
            prefix = group.removesuffix("Coordinates")
            for key in [k for k in data if k.startswith(prefix)]:
                del data[key]
    path.write_text(json.dumps(data, indent=4) + "\n")


def write_recording(
    dataset: Path,
    p: RecordingPlan,
    subject: str,
    session: str | None,
    line_freq: float,
    scratch: Path,
) -> str:
    """Write one recording with mne-bids into ``scratch``; return its BIDS file name."""
    from mne_bids import BIDSPath, write_raw_bids

    source = dataset / p.source
    recording = folder_recording(source.parent)  # the folder ingest made: <kind>/<name>/
    if recording is None:
        raise BadInput("no recording found (is its content present?)", source)
    raw = read_recording(recording)
    raw.info["line_freq"] = line_freq
    events, event_id = _events(raw)
    bids_path = BIDSPath(
        subject=subject, session=session, task=p.task, run=p.run, datatype=p.kind, root=scratch
    )
    fmt = output_format(recording)
    written = write_raw_bids(
        raw, bids_path, events=events, event_id=event_id, format=fmt,
        allow_preload=fmt != "auto", overwrite=True, verbose="error",
    )  # fmt: skip
    for coordsystem in scratch.rglob("*_coordsystem.json"):
        tidy_coordsystem(coordsystem)
    return Path(str(written.fpath)).name


def output_format(recording: Recording) -> str:
    """mne-bids' ``format``: keep the formats windl de-identifies, convert the others.

    A BrainVision recording is copied only when its data file is a ``.eeg``: mne-bids picks
    its reader from the data file's name (``.dat`` would go to the Persyst reader), so any
    other is written anew as BrainVision (the samples as they are, float32 or int16).
    """
    if recording.format in NATIVE_FORMATS:
        return "auto"
    if recording.format == "BrainVision" and recording.main.relpath.suffix.lower() == ".vhdr":
        data = brainvision_data_file(recording.main.path)
        if data is not None and data.lower().endswith(".eeg"):
            return "auto"
    return "FIF" if recording.kind == "meg" else "BrainVision"


def take_over(scratch: Path, dataset: Path, prefix: str) -> None:
    """Replace the session's eeg/meg folders and their scans.tsv rows by mne-bids' output."""
    for kind in EPHYS_KINDS:
        target = dataset / prefix / kind
        if target.exists():
            shutil.rmtree(target)
        if (scratch / prefix / kind).is_dir():
            shutil.copytree(scratch / prefix / kind, target)
    stem = prefix.replace("/", "_")
    new = scratch / prefix / f"{stem}_scans.tsv"
    ours = dataset / prefix / f"{stem}_scans.tsv"
    _, new_rows = _read_tsv(new) if new.exists() else ([], [])
    columns, rows = _read_tsv(ours) if ours.exists() else (["filename", "acq_time"], [])
    rows = [r for r in rows if r["filename"].split("/", 1)[0] not in EPHYS_KINDS]
    rows += [{c: r.get(c, "n/a") for c in columns} for r in new_rows]
    rows.sort(key=lambda r: r["filename"])
    if rows:
        _write_tsv(ours, columns, rows)
    elif ours.exists():
        ours.unlink()


def conversion_record(
    dataset: Path, source: str, task: str | None, line_freq: float
) -> dict[str, Any]:
    """What an EEG/MEG conversion depends on; equal records mean nothing to redo."""
    from importlib.metadata import version

    settings = dataset / "code" / "study.toml"
    return {
        "source": source,
        "source_trees": {
            kind: source_fingerprint(dataset, f"{source}/{kind}") for kind in EPHYS_KINDS
        },
        "task": task,
        "power_line_frequency": line_freq,
        "study_settings_sha256": hashlib.sha256(settings.read_bytes()).hexdigest()
        if settings.exists()
        else None,
        "mne": version("mne"),
        "mne_bids": version("mne-bids"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subject", required=True)
    parser.add_argument("--session")
    parser.add_argument("--source", required=True)
    parser.add_argument("--line-freq", type=float, required=True)
    parser.add_argument("--task")
    parser.add_argument("--scratch", required=True, type=Path)
    args = parser.parse_args(argv)
    dataset = Path.cwd()
    prefix = f"sub-{args.subject}" + (f"/ses-{args.session}" if args.session else "")
    plans = plan(dataset, args.source, args.task)
    done = []
    for p in plans:
        name = write_recording(dataset, p, args.subject, args.session, args.line_freq, args.scratch)
        done.append(RecordingPlan(**{**asdict(p), "bids_name": f"{prefix}/{p.kind}/{name}"}))
    take_over(args.scratch, dataset, prefix)
    add_participant(dataset, args.subject, {})
    records = dataset / "code" / "conversion"
    records.mkdir(parents=True, exist_ok=True)
    stem = prefix.replace("/", "_") + "_ephys"
    columns = ["name", "kind", "format", "source", "task", "task_from", "run", "bids_name"]
    _write_tsv(
        records / f"{stem}.tsv",
        columns,
        [{k: (v if v is not None else "n/a") for k, v in asdict(p).items()} for p in done],
    )
    record = conversion_record(dataset, args.source, args.task, args.line_freq)
    write_record_json(records / f"{stem}.json", record)


def read_records(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


if __name__ == "__main__":
    main()
