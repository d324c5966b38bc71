"""Convert every series of every DICOM repository of the public corpus; print the table.

For each ``dcm_qa_*`` entry of :mod:`corpus` (fetched into its cache first), every
folder directly under ``In/`` (or ``In/`` itself for loose files) is ingested as one
subject of a scratch site (``.gz`` files decompressed first: dcm2niix's QA repositories
store some DICOM so), then ``windl convert`` runs once. The table lists, per vendor and
series, what windl made of it: the BIDS name, or the reason it did not convert it (and
ingest refusals with their one-line error).

    PYTHONPATH=. .venv/bin/python benchmarks/corpus_convert.py [--only dcm_qa_ge ...]
        [--markdown table.md] [--keep /tmp/site]

docs/formats-mri.md holds the table of the last run.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # benchmarks/corpus.py, found through the path set above

REPOS = tuple(name for name in corpus.ENTRIES if name.startswith("dcm_qa_"))


@dataclass
class Row:
    repo: str
    unit: str
    vendor: str
    series: str
    description: str
    result: str  # "converted" / "not converted" / "refused"
    detail: str  # BIDS name(s) or the reason


def _windl(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "windl", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def _copy_unit(source: Path, into: Path) -> None:
    """``source`` (a folder or one file) into ``into``, ``.gz`` files decompressed."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        rel = path.name if source.is_file() else path.relative_to(source)
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as src, target.with_suffix("").open("wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copy(path, target)


def _units(root: Path) -> list[Path]:
    """What is ingested as one subject: each entry of ``In/`` that holds files."""
    inputs = root / "In"
    return [p for p in sorted(inputs.iterdir()) if p.is_dir() or p.suffix in (".dcm", ".gz")]


def _vendor(series_folder: Path) -> str:
    for path in sorted(series_folder.iterdir()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Manufacturer"])
        except Exception:  # the next file may be readable
            continue
        name = str(ds.get("Manufacturer", "") or "?").split()[0]
        return name.upper() if len(name) <= 3 else name.title()
    return "?"


def _vendors(study: Path, subject: str) -> dict[str, str]:
    """Manufacturer per series number of one subject's ingested DICOM."""
    found = {}
    for folder in sorted((study / "sourcedata" / f"sub-{subject}" / "dicom").glob("*")):
        number = folder.name.split("-", 1)[0].lstrip("0") or "0"
        found[number] = _vendor(folder)
    return found


def run_repo(site: Path, repo: str, subjects: dict[str, tuple[str, str]]) -> list[Row]:
    """Ingest every unit of ``repo`` (subjects: label → (repo, unit)); the refusals."""
    root = corpus.ensure(repo)
    if root is None:
        return [Row(repo, "", "?", "", "", "refused", "corpus entry unavailable")]
    rows = []
    for index, unit in enumerate(_units(root), 1):
        label = f"{re.sub(r'[^A-Za-z0-9]', '', repo.removeprefix('dcm_qa_'))}{index:02d}"
        with tempfile.TemporaryDirectory(prefix="windl-corpus-") as scratch:
            _copy_unit(unit, Path(scratch) / unit.name)
            done = _windl("ingest", "study1", Path(scratch) / unit.name, "--subject", label,
                          "--site", site)  # fmt: skip
        if done.returncode != 0:
            error = next((x for x in done.stderr.splitlines() if x.startswith("windl: error")), "")
            error = error.removeprefix("windl: error: ").replace(scratch + "/", "")
            rows.append(Row(repo, unit.name, "?", "", "", "refused", error))
        else:
            subjects[label] = (repo, unit.name)
    return rows


def conversion_rows(study: Path, subjects: dict[str, tuple[str, str]]) -> list[Row]:
    rows = []
    for label, (repo, unit) in subjects.items():
        vendors = _vendors(study, label)
        record = study / "code" / "conversion" / f"sub-{label}.tsv"
        if not record.exists():
            nonimage = (study / "sourcedata" / f"sub-{label}" / "dicom-nonimage").is_dir()
            why = "non-image DICOM (SR, PDF): kept in sourcedata" if nonimage else "no record"
            rows.append(Row(repo, unit, "?", "", "", "not converted", why))
            continue
        with record.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                detail = r["bids_name"] if r["status"] == "converted" else r["reason"]
                rows.append(Row(
                    repo, unit, vendors.get(r["series"], "?"), r["series"], r["description"],
                    r["status"], re.sub(rf"sub-{label}", "sub-X", detail),
                ))  # fmt: skip
    return rows


def summary(rows: list[Row]) -> str:
    """Per vendor: the BIDS datatypes/suffixes converted, and why the rest was not."""
    by_vendor: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for r in rows:
        done, not_done = by_vendor.setdefault(r.vendor, ({}, {}))
        if r.result == "converted":
            for name in r.detail.split(","):
                kind = f"{name.split('/')[1]}/{name.removesuffix('.nii.gz').rsplit('_', 1)[-1]}"
                done[kind] = done.get(kind, 0) + 1
        else:
            # a refusal names the file first: "cl/x.dcm: truncated DICOM: …"
            why = r.detail.split(": ", 1)[-1] if r.result == "refused" else r.detail
            why = re.sub(r"\(.*", "", why)
            not_done[why.strip()] = not_done.get(why.strip(), 0) + 1
    lines = [
        "| vendor | converted as (files) | not converted or refused (series) |",
        "|---|---|---|",
    ]
    for vendor, (done, not_done) in sorted(by_vendor.items()):
        cells = [
            ", ".join(f"{k} ({v})" for k, v in sorted(d.items())) or "—" for d in (done, not_done)
        ]
        lines.append(f"| {vendor} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| repository | input | vendor | series | description | result | BIDS name / reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.repo, r.unit, r.series.zfill(6))):
        cells = [r.repo, r.unit, r.vendor, r.series, r.description, r.result, r.detail]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=REPOS, default=list(REPOS))
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--keep", type=Path, help="make the site here and keep it")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="windl-corpus-site-"))
    site = base / "site"
    try:
        _windl("site", "init", site).check_returncode()
        _windl("study", "create", "study1", "--site", site).check_returncode()
        subjects: dict[str, tuple[str, str]] = {}
        rows = [row for repo in args.only for row in run_repo(site, repo, subjects)]
        converted = _windl("convert", "study1", "--site", site)
        print(
            converted.stderr.strip().splitlines()[-1] if converted.stderr.strip() else "",
            file=sys.stderr,
        )
        rows += conversion_rows(site / "superdataset" / "studies" / "study1", subjects)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    table = summary(rows) + "\n" + markdown(rows)
    print(table)
    counts = {
        k: sum(r.result == k for r in rows) for k in ("converted", "not converted", "refused")
    }
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
