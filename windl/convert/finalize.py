"""Second half of a conversion run: make heudiconv's output deterministic and complete.

Runs inside the same ``datalad run`` command as heudiconv (so ``datalad rerun`` repeats
it), as ``python -m windl.convert.finalize``. It

- drops heudiconv's ``randstr`` column from ``*_scans.tsv`` (random on every run),
- removes files a previous conversion of this session left that this run did not write,
- adds the participant to ``participants.tsv``,
- writes ``code/conversion/<session>.tsv``: every series, its BIDS name or why none, and
  ``code/conversion/<session>.json``: what the conversion was made from.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from windl import datasets
from windl.checkpoints import checkpoint
from windl.files import atomic_write_text

PARTICIPANTS_COLUMNS = ("participant_id", "age", "sex")
#: folders heudiconv writes; EEG/MEG folders belong to windl.convert.ephys
MRI_DATATYPES = ("anat", "func", "dwi", "fmap", "perf")


def _read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        return list(reader.fieldnames or []), list(reader)


def _format_tsv(columns: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=columns, delimiter="\t", lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _write_tsv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    atomic_write_text(path, _format_tsv(columns, rows))


#: PatientSex as vendors write it → the participants.json levels (GE writes ``0``)
_SEX = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F", "O": "O", "OTHER": "O"}


def _age_years(dicom_age: str | None) -> str:
    """DICOM AS ('034Y', '006M', '010W', '003D') → years as text; 'n/a' when unknown."""
    match = re.fullmatch(r"0*(\d{1,3})\s*([DWMY]?)", (dicom_age or "").strip().upper())
    if not match or int(match.group(1)) == 0:  # scanners write 000Y for "unknown"
        return "n/a"
    value, unit = int(match.group(1)), match.group(2) or "Y"
    years = value / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[unit]
    return str(int(years)) if unit == "Y" else f"{years:.2f}"


def sex_level(dicom_sex: str | None) -> str:
    """DICOM PatientSex of any vendor → M, F, O or n/a (``0``, empty, anything else)."""
    return _SEX.get((dicom_sex or "").strip().upper(), "n/a")


def _declared(dataset: Path, row: dict[str, str]) -> dict[str, str]:
    """``row`` with every value participants.json's ``Levels`` do not declare as n/a.

    A value outside the data dictionary makes the dataset invalid BIDS.
    """
    path = dataset / "participants.json"
    try:
        dictionary = json.loads(path.read_text(encoding="utf-8-sig")) if path.exists() else {}
    except json.JSONDecodeError:
        dictionary = {}
    checked = dict(row)
    for column, value in row.items():
        levels = (dictionary.get(column) or {}).get("Levels")
        if isinstance(levels, dict) and value != "n/a" and value not in levels:
            checked[column] = "n/a"
    return checked


def tidy_scans(session_dir: Path) -> list[Path]:
    """Drop the random column of each scans.tsv; return the files the scans.tsv lists."""
    listed: list[Path] = []
    for scans in session_dir.glob("*_scans.tsv"):
        columns, rows = _read_tsv(scans)
        keep = [c for c in columns if c not in ("randstr", "operator")]
        rows.sort(key=lambda r: r["filename"])
        _write_tsv(scans, keep, rows)
        listed += [session_dir / r["filename"] for r in rows]
    return listed


def _suffix(path: Path) -> str:
    return path.name.removesuffix(".nii.gz").rsplit("_", 1)[-1]


def apply_own_guesses(session_dir: Path) -> dict[str, str]:
    """Rename split outputs that heudiconv numbered, using each file's own BidsGuess.

    heudiconv names the files of a series that dcm2niix splits (e.g. a Philips B0 map:
    magnitude + field map in Hz) ``magnitude1``/``magnitude2`` after the series'
    template; each file's sidecar knows better (``magnitude``, ``fieldmap``). Renames
    only when the new names are all different. Returns old → new relative names.
    """
    renames: dict[str, str] = {}
    groups: dict[str, list[Path]] = {}
    for nifti in sorted(session_dir.glob("*/*.nii.gz")):
        stem = nifti.name.removesuffix(".nii.gz").rsplit("_", 1)[0]
        groups.setdefault(f"{nifti.parent.name}/{stem}", []).append(nifti)
    for files in groups.values():
        if len(files) < 2:
            continue
        proposed: dict[Path, str] = {}
        for nifti in files:
            sidecar = nifti.with_name(nifti.name.removesuffix(".nii.gz") + ".json")
            guess = json.loads(sidecar.read_text()).get("BidsGuess") if sidecar.exists() else None
            if not (isinstance(guess, list) and len(guess) == 2 and guess[0] == nifti.parent.name):
                break
            proposed[nifti] = str(guess[1]).rsplit("_", 1)[-1]
        else:
            if len(set(proposed.values())) == len(files) and any(
                _suffix(f) != proposed[f] for f in files
            ):
                for nifti, suffix in proposed.items():
                    old = nifti.name.removesuffix(".nii.gz")
                    new = old.rsplit("_", 1)[0] + f"_{suffix}"
                    renames[f"{nifti.parent.name}/{old}.nii.gz"] = (
                        f"{nifti.parent.name}/{new}.nii.gz"
                    )
    _rename_outputs(session_dir, renames)
    return renames


def single_volume_bold_as_sbref(session_dir: Path) -> dict[str, str]:
    """BIDS ``bold`` must be 4D; a single EPI volume is kept as ``sbref`` instead.

    Decided on the written image, because heudiconv's dimensions before conversion
    count files, not volumes (a GE series of 150 slices reads 64x64x150x1).
    """
    import nibabel as nib

    renames: dict[str, str] = {}
    for nifti in sorted(session_dir.glob("func/*_bold.nii.gz")):
        shape = nib.load(nifti).shape
        if len(shape) < 4 or shape[3] == 1:
            renames[f"func/{nifti.name}"] = f"func/{nifti.name.replace('_bold.', '_sbref.')}"
    _rename_outputs(session_dir, renames)
    return renames


def _rename_outputs(session_dir: Path, renames: dict[str, str]) -> None:
    """Rename NIfTI + sidecar pairs and the rows of the session's scans.tsv."""
    for old, new in renames.items():
        for ext in (".nii.gz", ".json"):
            source = session_dir / (old.removesuffix(".nii.gz") + ext)
            if source.exists():
                source.rename(session_dir / (new.removesuffix(".nii.gz") + ext))
    if renames:
        for scans in session_dir.glob("*_scans.tsv"):
            columns, rows = _read_tsv(scans)
            for row in rows:
                row["filename"] = renames.get(row["filename"], row["filename"])
            _write_tsv(scans, columns, rows)


def remove_stale(session_dir: Path, written: list[Path]) -> list[str]:
    """Delete files in the session that this conversion did not produce."""
    keep = {p.resolve() for p in written}
    for p in written:
        stem = p.name.removesuffix(".gz").removesuffix(".nii")
        keep |= {q.resolve() for q in p.parent.glob(stem + ".*")}
    stale = []
    mri = [p for d in MRI_DATATYPES for p in sorted((session_dir / d).rglob("*"))]
    for path in mri:
        if (
            (path.is_file() or path.is_symlink())
            and not path.name.endswith("_scans.tsv")
            and path.resolve() not in keep
        ):
            stale.append(str(path))
            path.unlink()
    return stale


def _merge_participant(columns: list[str], rows: list[dict[str, str]], row: dict[str, str]) -> None:
    """Add ``row`` to ``rows``, or fill the unknown values of the participant's row."""
    existing = next((r for r in rows if r.get("participant_id") == row["participant_id"]), None)
    if existing is None:
        rows.append({c: row.get(c, "n/a") for c in columns})
    else:
        for column, value in row.items():
            if column in columns and existing.get(column) in (None, "", "n/a"):
                existing[column] = value
    rows.sort(key=lambda r: r["participant_id"])


def add_participant(dataset: Path, subject: str, participant: dict[str, Any]) -> None:
    path = dataset / "participants.tsv"
    columns, rows = _read_tsv(path) if path.exists() else (list(PARTICIPANTS_COLUMNS), [])
    row = {
        "participant_id": f"sub-{subject}",
        "age": _age_years(participant.get("age")),
        "sex": sex_level(participant.get("sex")),
    }
    _merge_participant(columns, rows, _declared(dataset, row))
    _write_tsv(path, columns, rows)


def _parse_tsv(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")), delimiter="\t")
    return list(reader.fieldnames or []), list(reader)


def merge_participants(base: bytes, ours: bytes, theirs: bytes) -> bytes:
    """participants.tsv of two conversions made from the same ``base`` in parallel.

    Each row ``theirs`` added or changed is merged into ``ours`` as :func:`add_participant`
    would have done had the conversions run one after the other, so the result is the
    file a serial run writes.
    """
    columns, rows = _parse_tsv(ours) if ours else (list(PARTICIPANTS_COLUMNS), [])
    base_rows = {r.get("participant_id"): r for r in _parse_tsv(base)[1]} if base else {}
    for row in _parse_tsv(theirs)[1]:
        if base_rows.get(row.get("participant_id")) != row:
            _merge_participant(columns, rows, row)
    return _format_tsv(columns, rows).encode("utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_fingerprint(dataset: Path, source: str) -> str | None:
    """git tree id of a session's raw folder (changes iff the input does).

    Read in the dataset that holds it (``sourcedata`` or the subject's dataset in it).
    """
    holder, rel = datasets.locate(dataset, source)
    return datasets.tree_id(holder, rel) if rel else datasets.head(holder)


def conversion_record(dataset: Path, source: str, heuristic: str) -> dict[str, str | None]:
    """What a session's conversion depends on; equal records mean nothing to redo."""
    from importlib.metadata import version

    return {
        "source": source,
        "source_tree": source_fingerprint(dataset, source),
        "heuristic": heuristic,
        "heuristic_sha256": _sha256(dataset / heuristic),
        "heudiconv": version("heudiconv"),
        "dcm2niix": version("dcm2niix"),
    }


def bids_name(dataset: Path, template: str | None, prefix: str) -> str:
    """The NIfTI file(s) a heudiconv template produced, relative to the dataset.

    Found on disk rather than derived from the template, because outputs may have been
    renamed (``sbref``, split field maps) or a series split into several files.
    """
    if not template:
        return "n/a"
    name = template.replace("{bids_subject_session_dir}", prefix).replace(
        "{bids_subject_session_prefix}", prefix.replace("/", "_")
    )
    head = name.rsplit("_", 1)[0]
    written = sorted(
        p.relative_to(dataset).as_posix()
        for p in dataset.glob(head + "_*.nii.gz")
        # not another series' file that only a run label set apart (sub-01_run-3_dwi)
        if "_run-" in head or "_run-" not in p.name.removeprefix(Path(head).name)
    )
    return ",".join(written) or f"{name}.nii.gz (not written)"


def write_records(
    dataset: Path,
    prefix: str,
    plan: dict[str, Any],
    record: dict[str, str | None],
) -> None:
    record_stem = prefix.replace("/", "_")
    records = dataset / "code" / "conversion"
    records.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "series": s["series_number"],
            "description": s["description"],
            "files": str(s["files"]),
            "dims": s["dims"],
            "bids_name": bids_name(dataset, s["target"], prefix),
            "status": "converted" if s["target"] else "not converted",
            "reason": s["reason"],
        }
        for s in plan["series"]
    ]
    _write_tsv(
        records / f"{record_stem}.tsv",
        ["series", "description", "files", "dims", "bids_name", "status", "reason"],
        rows,
    )
    write_record_json(records / f"{record_stem}.json", record)


def write_record_json(path: Path, record: Mapping[str, Any]) -> None:
    """A conversion record as JSON, the one way every writer formats it."""
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--session")
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--source", required=True)
    parser.add_argument("--heuristic", required=True)
    args = parser.parse_args(argv)
    dataset = Path.cwd()
    plan = json.loads(args.plan.read_text())
    prefix = f"sub-{args.subject}" + (f"/ses-{args.session}" if args.session else "")
    session_dir = dataset / prefix
    if session_dir.is_dir():
        apply_own_guesses(session_dir)
        single_volume_bold_as_sbref(session_dir)
    written = tidy_scans(session_dir) if session_dir.is_dir() else []
    if session_dir.is_dir():
        remove_stale(session_dir, written)
    checkpoint("finalize-tidied")
    add_participant(dataset, args.subject, plan.get("participant", {}))
    checkpoint("finalize-participant")
    write_records(
        dataset,
        prefix,
        plan,
        conversion_record(dataset, args.source, args.heuristic),
    )
    checkpoint("finalize-recorded")


if __name__ == "__main__":
    main()
