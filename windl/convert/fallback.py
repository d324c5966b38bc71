"""When heudiconv fails on a session: convert it one series at a time.

heudiconv stops at the first series it cannot handle (a date written ``***``, an
enhanced multi-frame file nibabel's DICOM wrapper does not read) and the session gets
nothing. Run after a failed heudiconv inside the same ``datalad run`` command (so
``datalad rerun`` repeats it) as ``python -m windl.convert.fallback``, this

- runs heudiconv again on each series folder of the session alone, with the same
  heuristic, and keeps what it converts;
- converts a series heudiconv still fails on with dcm2niix alone, named as the
  heuristic plans it (BidsGuess, else the headers), or lists it as not converted;
- writes the plan of the whole session, each series with its reason, where heudiconv
  would have (``--plan``), for :mod:`windl.convert.finalize`.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pydicom

from windl.convert.headers import series_headers
from windl.convert.heuristic import SeriesPlan, decide, guesses_for, unique

_ERROR_LINE = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Exit)\b.*)$", re.MULTILINE)
#: dcm2niix as heudiconv calls it (nipype's Dcm2niix with heudiconv's settings)
_DCM2NIIX = ["dcm2niix", "-b", "y", "-z", "y", "-x", "n", "-t", "n", "-m", "0", "-w", "2"]
_SIDE_FILES = (".json", ".bval", ".bvec")


def _last_error(output: str) -> str:
    """The exception line a failed tool printed last (its message, without traceback)."""
    found = [line.strip() for line in _ERROR_LINE.findall(output)]
    # nipype wraps the tool's own error in its own: the plain exception says what happened
    plain = [line for line in found if "." not in line.split(":", 1)[0]]
    if plain or found:
        line = (plain or found)[-1]
        return re.sub(r"^(?:\w+\.)+(?=\w+:)", "", line)[:300]  # the class without its module
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _heudiconv(folder: Path, args: argparse.Namespace, scratch: Path) -> tuple[list, str | None]:
    """heudiconv on one series folder: (its plans, None) or ([], the error it printed)."""
    plan_out = scratch / "plan.json"
    env = {**os.environ, "WINDL_PLAN_OUT": str(plan_out), "WINDL_PLAN_USED": str(args.used)}
    command = [
        "heudiconv", "--files", str(folder), "-s", args.subject,
        *(["-ss", args.session] if args.session else []),
        "-f", args.heuristic, "-c", "dcm2niix", "-b", "notop", "--minmeta", "--overwrite",
        "-g", "all", "-o", str(scratch / "heudiconv"), "--conv-outdir", str(Path.cwd()),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode == 0 and plan_out.exists():
        return json.loads(plan_out.read_text())["series"], None
    return [], _last_error(done.stdout + "\n" + done.stderr)


def _first_dataset(files: list[Path]) -> pydicom.Dataset | None:
    for path in files:
        try:
            return pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # any unreadable file: try the next one
            continue
    return None


def _own_plan(folder: Path, files: list[Path], first: pydicom.Dataset | None) -> SeriesPlan:
    """The heuristic's plan of a series heudiconv could not read, from pydicom's headers."""
    get = first.get if first is not None else (lambda _k, d=None: d)
    number = str(get("SeriesNumber", "") or "0")
    description = str(get("SeriesDescription", "") or get("ProtocolName", "") or "")
    names = [str(f) for f in files]
    image_type = [str(v).upper() for v in (get("ImageType") or [])]
    base: dict[str, Any] = dict(
        series_id=f"{number}-{description}",
        series_number=number,
        description=description,
        files=len(files),
        dims="n/a",
    )
    reproin = description if re.match(r"^(anat|func|dwi|fmap|perf)([-_]|$)", description) else None
    return decide(
        base,
        description,
        guesses_for(str(get("SeriesInstanceUID", "")), int(number or 0), names),
        series_headers(names),
        reproin,
        is_derived="DERIVED" in image_type or "MOCO" in image_type,
    )


def _prefix(args: argparse.Namespace) -> str:
    return f"sub-{args.subject}" + (f"/ses-{args.session}" if args.session else "")


def _target_path(target: str, prefix: str) -> Path:
    return Path(
        target.replace("{bids_subject_session_dir}", prefix).replace(
            "{bids_subject_session_prefix}", prefix.replace("/", "_")
        )
    )


def _outputs_by_suffix(niftis: list[Path], stem: Path) -> dict[Path, Path] | None:
    """Where each dcm2niix output goes: one file → the target, several → their BidsGuess."""
    if len(niftis) == 1:
        return {niftis[0]: stem}
    suffixes = []
    for nifti in niftis:
        guess = json.loads(nifti.with_name(_stem(nifti) + ".json").read_text()).get("BidsGuess")
        if not (isinstance(guess, list) and len(guess) == 2):
            return None
        suffixes.append(str(guess[1]).rsplit("_", 1)[-1])
    if len(set(suffixes)) != len(niftis):
        return None
    head = stem.name.rsplit("_", 1)[0]
    return {n: stem.with_name(f"{head}_{s}") for n, s in zip(niftis, suffixes, strict=True)}


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def _acq_time(first: pydicom.Dataset | None) -> str:
    """scans.tsv acq_time as heudiconv writes it, n/a when the date is not a date."""
    if first is None:
        return "n/a"
    date, time = str(first.get("AcquisitionDate") or ""), str(first.get("AcquisitionTime") or "")
    match_d, match_t = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", date), re.match(r"\d{6}", time)
    if not (match_d and match_t):
        return "n/a"
    return f"{match_d[1]}-{match_d[2]}-{match_d[3]}T{time[:2]}:{time[2:4]}:{time[4:]}"


def _dcm2niix(folder: Path, plan: SeriesPlan, prefix: str, first: Any) -> tuple[list[str], str]:
    """Convert one series with dcm2niix alone: (files written, relative; why not if none)."""
    assert plan.target is not None
    stem = _target_path(plan.target, prefix)
    with tempfile.TemporaryDirectory(prefix="windl-dcm2niix-") as out:
        done = subprocess.run(
            [*_DCM2NIIX, "-f", stem.name, "-o", out, "-s", "n", "-v", "n", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        niftis = sorted(Path(out).glob("*.nii.gz"))
        if not niftis:
            return [], f"dcm2niix wrote no image ({_last_error(done.stdout + done.stderr)})"
        moves = _outputs_by_suffix(niftis, stem)
        if moves is None:
            return [], f"dcm2niix wrote {len(niftis)} images that no BidsGuess tells apart"
        stem.parent.mkdir(parents=True, exist_ok=True)
        for nifti, target in moves.items():
            for ext in (".nii.gz", *_SIDE_FILES):
                source = nifti.with_name(_stem(nifti) + ext)
                if source.exists():
                    shutil.move(source, target.with_name(target.name + ext))
            _tune_sidecar(target.with_name(target.name + ".json"))
    written = [f"{t.parent.name}/{t.name}.nii.gz" for t in moves.values()]
    _add_scans_rows(Path(prefix), written, _acq_time(first))
    return written, ""


def _tune_sidecar(sidecar: Path) -> None:
    """What heudiconv adds to a sidecar: TaskName from the name; sorted keys."""
    if not sidecar.exists():
        return
    meta = json.loads(sidecar.read_text())
    task = re.search(r"_task-([A-Za-z0-9]+)", sidecar.name)
    if task and sidecar.name.endswith("_bold.json"):
        meta["TaskName"] = task[1]
    sidecar.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _add_scans_rows(session_dir: Path, written: list[str], acq_time: str) -> None:
    scans = session_dir / f"{str(session_dir).replace('/', '_')}_scans.tsv"
    rows: list[dict[str, str]] = []
    columns = ["filename", "acq_time"]
    if scans.exists():
        with scans.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            columns = list(reader.fieldnames or columns)
            rows = [r for r in reader if r.get("filename") not in written]
    rows += [{"filename": name, "acq_time": acq_time} for name in written]
    with scans.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=columns, delimiter="\t", lineterminator="\n", restval="n/a"
        )
        writer.writeheader()
        writer.writerows(rows)


def uses_windl_heuristic(heuristic: Path) -> bool:
    """True if the study's heuristic is windl's (it imports :mod:`windl.convert.heuristic`).

    Only then does windl know how the study names a series heudiconv cannot read.
    """
    try:
        tree = ast.parse(heuristic.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    return any(
        isinstance(node, ast.ImportFrom) and node.module == "windl.convert.heuristic"
        for node in ast.walk(tree)
    )


def _fallback_series(folder: Path, args: argparse.Namespace, used: dict, error: str) -> dict:
    """A series heudiconv failed on: dcm2niix alone, or not converted, with the reason."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    first = _first_dataset(files)
    plan = unique(_own_plan(folder, files, first), used)
    if plan.target is not None and not uses_windl_heuristic(Path(args.heuristic)):
        # a study's own heuristic names its series: windl's naming would bypass it
        used.pop(plan.target, None)
        return asdict(replace(
            plan, target=None,
            reason=f"heudiconv failed ({error}); the study's own heuristic names its series, "
            "so dcm2niix alone is not used: fix the series or the heuristic",
        ))  # fmt: skip
    if plan.target is None:
        return asdict(replace(plan, reason=f"heudiconv failed ({error}); {plan.reason}"))
    written, why_not = _dcm2niix(folder, plan, _prefix(args), first)
    if not written:
        used.pop(plan.target, None)
        return asdict(replace(plan, target=None, reason=f"heudiconv failed ({error}); {why_not}"))
    return asdict(
        replace(
            plan, reason=f"heudiconv failed ({error}); converted by dcm2niix alone; {plan.reason}"
        )
    )


def _participant(folders: list[Path]) -> dict[str, str | None]:
    for folder in folders:
        first = _first_dataset(sorted(p for p in folder.iterdir() if p.is_file()))
        if first is not None:
            return {"age": first.get("PatientAge"), "sex": first.get("PatientSex")}
    return {"age": None, "sex": None}


def convert_by_series(args: argparse.Namespace) -> dict[str, Any]:
    """Every series of the session, heudiconv alone first, dcm2niix alone if it fails."""
    folders = sorted(p for p in Path(args.source).iterdir() if p.is_dir())
    series: list[dict] = []
    used: dict[str, str] = {}
    for index, folder in enumerate(folders):
        scratch = args.scratch / f"series-{index}"
        scratch.mkdir(parents=True, exist_ok=True)
        args.used.write_text(json.dumps(used))
        plans, error = _heudiconv(folder, args, scratch)
        if error is None:
            for p in plans:
                if p["target"]:
                    used[p["target"]] = p["series_number"]
            series += plans
        else:
            series.append(_fallback_series(folder, args, used, error))
        shutil.rmtree(scratch, ignore_errors=True)  # heudiconv's header dumps
    return {"series": series, "participant": _participant(folders)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--session")
    parser.add_argument("--source", required=True)
    parser.add_argument("--heuristic", required=True)
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--scratch", required=True, type=Path)
    args = parser.parse_args(argv)
    args.scratch.mkdir(parents=True, exist_ok=True)
    args.used = args.scratch / "used.json"
    print("windl: heudiconv failed on the session; converting it series by series", file=sys.stderr)
    record = convert_by_series(args)
    args.plan.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
