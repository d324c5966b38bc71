"""The pixel gate of a release build: which planned images may leave, and blanked how.

Every NIfTI of the plan is traced to the DICOM series it was converted from, through the
conversion records (``code/conversion/<session>.tsv``: series number → BIDS name, and
``<session>.json``: the session's DICOM folder in ``sourcedata``), and that series is
judged by :func:`windl.deid.pixels.review_series` on its own headers and pixels. A NIfTI
with no record (imported data) is judged by its sidecar
(:func:`~windl.deid.pixels.sidecar_suspect_reason`) and, if suspect, OCR of its slices.
Raw DICOM of the plan is judged per series folder the same way; a DICOM image whose header
still says ``BurnedInAnnotation`` YES goes only blanked (its header would say otherwise).

A refused NIfTI takes its JSON sidecar with it and leaves its session's ``scans.tsv``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from windl.deid.dicom import iter_dicom_files
from windl.deid.pixels import (
    Blanking,
    PixelPolicy,
    Verdict,
    images_show_text,
    nifti_show_text,
    read_header,
    review_series,
    series_frames,
    sidecar_suspect_reason,
    suspect_reason,
)
from windl.errors import ConfigError
from windl.files import atomic_write_text
from windl.release.plan import PlannedFile
from windl.study import Study

_NIFTI = (".nii", ".nii.gz")


@dataclass
class PixelScreen:
    """What the gate decided for a release plan.

    Attributes
    ----------
    refused : dict
        Release path → why it is not shipped (names attributes and rules, never values).
    blanking : dict
        Release path → the rectangles zeroed in it before release.
    """

    refused: dict[str, str] = field(default_factory=dict)
    blanking: dict[str, Blanking] = field(default_factory=dict)

    def key(self, dst: str) -> str:
        """What the gate did to ``dst``, for the build's cache key."""
        blank = self.blanking.get(dst)
        return json.dumps([blank.rectangles, dict(blank.header)]) if blank else ""


def pixel_policy(study: Study) -> PixelPolicy:
    """The study's ``[deid.pixels]`` (defaults when absent)."""
    deid = study.settings().get("deid", {}) or {}
    table = deid.get("pixels") if isinstance(deid, Mapping) else None
    if table is not None and not isinstance(table, Mapping):
        raise ConfigError("[deid] pixels must be a table ([deid.pixels])", study.code)
    return PixelPolicy.from_dict(table)


def converted_from(study: Study) -> dict[str, tuple[str, str]]:
    """Study NIfTI path → (the session's DICOM folder, series number), from the records."""
    found: dict[str, tuple[str, str]] = {}
    folder = study.conversion_records
    for table in sorted(folder.glob("*.tsv")) if folder.is_dir() else []:
        record = table.with_suffix(".json")
        if table.name.endswith("_ephys.tsv") or not record.is_file():
            continue
        source = str(json.loads(record.read_text(encoding="utf-8")).get("source") or "")
        with table.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row.get("status") != "converted" or not source:
                    continue
                for name in (row.get("bids_name") or "").split(","):
                    if name.endswith(_NIFTI):
                        found[name] = (source, str(row.get("series", "")).strip())
    return found


def series_files(study: Study, source: str, number: str) -> list[Path]:
    """DICOM files of series ``number`` under the session folder ``source`` (sorted)."""
    root = study.root / source
    files: list[Path] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        head = folder.name.split("-", 1)[0]
        if folder.is_dir() and head.isdigit() and number.isdigit() and int(head) == int(number):
            files += iter_dicom_files(folder)
    return files


def _sidecar_of(path: str) -> str:
    for ext in _NIFTI[::-1]:
        if path.endswith(ext):
            return path[: -len(ext)] + ".json"
    return path


def screen_release(study: Study, files: Iterable[PlannedFile]) -> PixelScreen:
    """Judge every image of a release plan (``PlannedFile``s) by its pixels.

    Parameters
    ----------
    study : Study
        The study (its records, sidecars and ``sourcedata`` are read).
    files : iterable of PlannedFile
        The plan's files (``dst``, ``kind``, ``src``).

    Returns
    -------
    PixelScreen
    """
    policy = pixel_policy(study)
    sources = converted_from(study)
    verdicts: dict[tuple[str, ...], Verdict] = {}
    screen = PixelScreen()
    planned = list(files)
    sidecars = {p.src: p.dst for p in planned if p.kind == "sidecar"}
    for item in planned:
        kind, src, dst = item.kind, item.src, item.dst
        if src is None or kind not in ("nifti", "deface", "dicom"):
            continue
        if kind == "dicom":
            folder = (study.root / src).parent
            key = ("dicom", folder.as_posix())
            if key not in verdicts:
                verdicts[key] = _review(sorted(iter_dicom_files(folder)), policy)
            _apply(screen, verdicts[key], dst, study.root / src, dicom=True)
            continue
        if src in sources:
            source, number = sources[src]
            key = ("series", source, number)
            if key not in verdicts:
                verdicts[key] = _review(series_files(study, source, number), policy)
            verdict = verdicts[key]
            header = series_files(study, source, number)[:1]
        else:
            verdict = _review_nifti(study, src, policy)
            header = []
        _apply(screen, verdict, dst, header[0] if header else None, dicom=False)
        if dst in screen.refused and _sidecar_of(src) in sidecars:
            screen.refused[sidecars[_sidecar_of(src)]] = screen.refused[dst]
    return screen


def _review(files: list[Path], policy: PixelPolicy) -> Verdict:
    if not files:
        return Verdict(False, "pixel check: the source DICOM series is not there to judge")
    try:
        return review_series(files, policy)
    except (OSError, ValueError, AttributeError) as exc:
        return Verdict(
            False, f"pixel check: the source series cannot be read ({type(exc).__name__})"
        )


def _review_nifti(study: Study, src: str, policy: PixelPolicy) -> Verdict:
    """An image without a conversion record: its sidecar says whether to OCR it."""
    sidecar = study.root / _sidecar_of(src)
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    reason = sidecar_suspect_reason(meta if isinstance(meta, dict) else {})
    if reason is None:
        return Verdict(True)
    if nifti_show_text(study.root / src, policy):
        return Verdict(False, f"pixel-suspect ({reason}) and OCR found text in its pixels")
    return Verdict(True, f"pixel-suspect ({reason}); OCR found no text")


def _apply(
    screen: PixelScreen, verdict: Verdict, dst: str, header: Path | None, *, dicom: bool
) -> None:
    if not verdict.release:
        screen.refused[dst] = verdict.reason
    elif verdict.rule is not None and header is not None:
        screen.blanking[dst] = Blanking.of(verdict.rule, read_header(header))
    elif dicom and header is not None and verdict.reason.startswith("pixel-suspect"):
        ds = read_header(header)
        if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
            screen.refused[dst] = (
                f"{verdict.reason}, but its header says BurnedInAnnotation YES "
                "(only a [deid.pixels] blanking rule releases it)"
            )


def drop_withheld_rows(path: Path, folder: str, withheld: Iterable[str]) -> None:
    """Remove the rows of a ``scans.tsv`` (in release ``folder``) naming withheld files."""
    gone = {PurePosixPath(p).as_posix() for p in withheld}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not gone:
        return
    header = lines[0].split("\t")
    if "filename" not in header:
        return
    at = header.index("filename")
    kept = [lines[0]] + [
        line
        for line in lines[1:]
        if f"{folder}/{(line.split(chr(9)) + [''] * (at + 1))[at]}" not in gone
    ]
    if len(kept) != len(lines):
        atomic_write_text(path, "\n".join(kept) + "\n")


# --- the audit's second look -------------------------------------------------------------


def released_pixel_findings(
    release: Path, files: Iterable[str], policy: PixelPolicy
) -> Iterator[tuple[str, str]]:
    """(file, problem) for released images whose pixels OCR finds text in.

    Judged on the released files alone, not on what the build decided: a NIfTI whose
    sidecar says it is not an acquisition (DERIVED\\SECONDARY, not ORIGINAL, not MR) and
    every released DICOM series that is pixel-suspect by its own header are OCR'd. Findings
    name the file and the reason, never a recognised word.

    Parameters
    ----------
    release : Path
        The release dataset.
    files : iterable of str
        Its files, relative to ``release``.
    policy : PixelPolicy
        The study's ``[deid.pixels]`` (:func:`pixel_policy`): its OCR thresholds.

    Yields
    ------
    tuple of (str, str)
        The file (or a DICOM series folder) and what is wrong.
    """
    series: dict[str, list[Path]] = {}
    for rel in sorted(files):
        path = release / rel
        if rel.endswith(_NIFTI) and path.is_file():
            sidecar = release / _sidecar_of(rel)
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
            except (OSError, ValueError):
                meta = {}
            reason = sidecar_suspect_reason(meta if isinstance(meta, dict) else {})
            if reason is not None and nifti_show_text(path, policy):
                yield rel, f"pixel-suspect ({reason}): OCR finds text in its slices"
        elif rel.startswith("sourcedata/") and rel.endswith(".dcm") and path.is_file():
            series.setdefault(PurePosixPath(rel).parent.as_posix(), []).append(path)
    for folder, members in sorted(series.items()):
        reasons = [r for r in (suspect_reason(read_header(p)) for p in members) if r]
        if reasons and images_show_text(series_frames(members, policy.images), policy):
            yield folder, f"pixel-suspect DICOM ({reasons[0]}): OCR finds text in its pixels"
