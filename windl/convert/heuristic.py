"""windl's default heudiconv heuristic: works on any vendor's MRI.

Decision per series, first match wins:

1. ReproIn-named series (``func-bold_task-rest_run-1``, ``anat-T1w``, ...): the names the
   operator gave, parsed with heudiconv's own ReproIn parser.
2. Derived images (``ImageType`` DERIVED, motion-corrected): not converted, listed.
3. Non-MR modalities (CT, US, SC, ...) stay in ``sourcedata``, listed as not converted,
   "modality X"; PET is converted where dcm2niix guesses BIDS-PET for it.
4. Diffusion weighting in the headers (b-values of any vendor, see
   :mod:`windl.convert.headers`) makes a series ``dwi``, whatever dcm2niix guessed.
5. dcm2niix's ``BidsGuess`` (it knows each vendor's sequence conventions), run with
   ``dcm2niix -b o`` on the series' files. ``discard`` (localizers) and ``derived``
   (e.g. a partial 4D volume) guesses are not converted, and are listed with the reason.
   Functional series get a task label from the study's ``code/study.toml``
   (``[convert.tasks]``: SeriesDescription regex → task), else from the description.
6. No BidsGuess: classified from the headers (:func:`windl.convert.headers.classify`:
   ImageType, ScanningSequence, EchoTime/RepetitionTime/InversionTime, ...), or listed
   with what the operator can do about it.

Every series ends up either at a BIDS path or in the plan with the reason why not. The
plan is written as JSON to ``$WINDL_PLAN_OUT`` for windl's conversion record.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import tomllib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from windl.convert.headers import Classified, Headers, classify, series_headers

BIDS_DATATYPES = ("anat", "func", "dwi", "fmap", "perf", "pet")
_ENTITY_ORDER = ("task", "acq", "ce", "rec", "dir", "run", "echo", "part", "chunk")
_REPROIN = re.compile(r"^(anat|func|dwi|fmap|perf)([-_]|$)")
_OUTTYPE = ("nii.gz",)


@dataclass(frozen=True)
class SeriesPlan:
    """Where one series goes, or why it goes nowhere."""

    series_id: str
    series_number: str
    description: str
    files: int
    dims: str
    target: str | None
    reason: str


def create_key(
    template: str, outtype: tuple[str, ...] = _OUTTYPE, annotation_classes: None = None
) -> tuple[str, tuple[str, ...], None]:
    return template, outtype, annotation_classes


# ------------------------------------------------------------------- dcm2niix's guess
@lru_cache(maxsize=64)
def _guesses_in(directory: str) -> dict[tuple[str, int], tuple[tuple[str, str], ...]]:
    """BidsGuesses per (SeriesInstanceUID, SeriesNumber) in ``directory`` (sidecars only).

    Keyed by both, because heudiconv splits series by number and some exports reuse a
    UID. dcm2niix numbers extra outputs of a series (e.g. a partial volume of an
    interrupted run) SeriesNumber + 1000·k; those are collected under the series.
    """
    with tempfile.TemporaryDirectory(prefix="windl-bidsguess-") as out:
        subprocess.run(
            ["dcm2niix", "-b", "o", "-ba", "n", "-f", "%j_%s", "-o", out, directory],
            capture_output=True,
            check=False,
        )
        guesses: dict[tuple[str, int], list[tuple[str, str]]] = {}
        for sidecar in sorted(Path(out).glob("*.json")):
            uid = sidecar.name.split("_", 1)[0]
            meta = json.loads(sidecar.read_text())
            guess = meta.get("BidsGuess")
            number = int(meta.get("SeriesNumber") or 0) % 1000
            if isinstance(guess, list) and len(guess) == 2:
                guesses.setdefault((uid, number), []).append((str(guess[0]), str(guess[1])))
        return {key: tuple(value) for key, value in guesses.items()}


def guesses_for(
    series_uid: str, series_number: int, series_files: list[str]
) -> tuple[tuple[str, str], ...]:
    """dcm2niix's BidsGuess(es) of one series, () if it has none."""
    key = (series_uid, series_number % 1000)
    for directory in sorted({os.path.dirname(os.path.abspath(f)) for f in series_files}):
        guess = _guesses_in(directory).get(key)
        if guess:
            return guess
    return ()


def custom_seqinfo(
    wrapper: Any, series_files: list[str]
) -> tuple[tuple[tuple[str, str], ...], Headers]:
    """heudiconv hook: attach dcm2niix's BidsGuess(es) and windl's header facts.

    Both hashable (heudiconv keys dicts by SeqInfo): (guesses, headers).
    """
    guesses = guesses_for(
        str(wrapper.dcm_data.get("SeriesInstanceUID", "")),
        int(wrapper.dcm_data.get("SeriesNumber") or 0),
        series_files,
    )
    return guesses, series_headers(series_files)


def _custom(s: Any) -> tuple[tuple[tuple[str, str], ...], Headers]:
    """(guesses, headers) of a SeqInfo, also from a study heuristic of older windl."""
    custom = s.custom or ((), ())
    if custom and custom[0] and isinstance(custom[0][0], str):  # bare guesses
        return custom, ()
    return custom[0], custom[1]


# ------------------------------------------------------------------- naming
def _entities_from_guess(name: str) -> tuple[dict[str, str], str]:
    """``_acq-EPI_dir-AP_run-4_bold`` → ({acq: EPI, dir: AP, run: 4}, "bold")."""
    parts = [p for p in name.split("_") if p]
    suffix = parts[-1] if parts and "-" not in parts[-1] else ""
    entities = dict(p.split("-", 1) for p in parts if "-" in p)
    return entities, suffix


def _clean(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value)


def _template(datatype: str, entities: dict[str, str], suffix: str) -> str:
    ordered = [f"{k}-{_clean(entities[k])}" for k in _ENTITY_ORDER if entities.get(k)]
    name = "_".join(["{bids_subject_session_prefix}", *ordered, suffix])
    return f"{{bids_subject_session_dir}}/{datatype}/{name}"


@lru_cache(maxsize=1)
def _task_rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    settings = Path("code") / "study.toml"
    if not settings.exists():
        return ()
    tasks = tomllib.loads(settings.read_text()).get("convert", {}).get("tasks", {})
    return tuple((re.compile(pattern, re.IGNORECASE), label) for pattern, label in tasks.items())


def task_for(description: str) -> tuple[str, str]:
    """Task label for a functional series and where it came from."""
    for pattern, label in _task_rules():
        if pattern.search(description):
            return _clean(label), f"code/study.toml rule {pattern.pattern!r}"
    label = _clean(description).lower()[:32] or "unknown"
    return label, "SeriesDescription (map it in code/study.toml [convert.tasks])"


def plan_series(s: Any) -> SeriesPlan:
    """Decide the BIDS target of one heudiconv SeqInfo."""
    description = s.series_description or s.protocol_name or ""
    base: dict[str, Any] = dict(
        series_id=s.series_id,
        series_number=s.series_id.split("-", 1)[0],
        description=description,
        files=s.series_files,
        dims=f"{s.dim1}x{s.dim2}x{s.dim3}x{s.dim4}",
    )
    guesses, headers = _custom(s)
    return decide(
        base, description, guesses, headers, reproin_name(s),
        is_derived=bool(s.is_derived or s.is_motion_corrected),
    )  # fmt: skip


def reproin_name(s: Any) -> str | None:
    """The series' name if it follows ReproIn (``anat-T1w``, ``func-bold_task-rest``)."""
    return next(
        (n for n in (s.series_description, s.protocol_name) if n and _REPROIN.match(n)), None
    )


def decide(
    base: dict[str, Any],
    description: str,
    guesses: tuple[tuple[str, str], ...],
    headers: Headers,
    reproin_name: str | None,
    is_derived: bool = False,
) -> SeriesPlan:
    """The plan of one series from what is known of it (rules: the module's docstring)."""
    guess = guesses[0] if guesses else None
    partial = next((g for g in guesses if g[0] == "derived"), None)
    modality = str(dict(headers).get("modality") or "MR")
    if modality not in ("MR", "PT"):
        return SeriesPlan(
            **base,
            target=None,
            reason=f"modality {modality}: kept in sourcedata (windl converts MR, and PET "
            "where dcm2niix guesses BIDS-PET)",
        )
    if reproin_name and (by_name := _reproin_plan(base, description, reproin_name, guess)):
        return by_name
    if partial and len(guesses) > 1:
        return SeriesPlan(
            **base,
            target=None,
            reason=f"incomplete: dcm2niix found a partial volume (BidsGuess {partial[1]}), "
            "e.g. an interrupted run",
        )
    if is_derived:
        return SeriesPlan(**base, target=None, reason="derived image (ImageType DERIVED/MOCO)")
    if modality == "PT" and (guess is None or guess[0] != "pet"):
        return SeriesPlan(
            **base,
            target=None,
            reason="modality PT without a BIDS-PET guess from dcm2niix: kept in sourcedata",
        )
    by_headers = classify(headers)
    # an ORIGINAL image with b-values is DWI, whatever dcm2niix guessed from its name
    # ("TENSOR" makes it guess derived); truly derived maps were left out above
    if guess is None or (by_headers.datatype == "dwi" and guess[0] not in ("dwi", "discard")):
        return _header_plan(base, description, by_headers, guess)
    return _guess_plan(base, description, guess)


def _reproin_plan(
    base: dict[str, Any], description: str, name: str, guess: tuple[str, str] | None
) -> SeriesPlan | None:
    """The plan a ReproIn series name gives, None if it names no BIDS file."""
    from heudiconv.heuristics.reproin import parse_series_spec

    spec = parse_series_spec(name)
    datatype = spec.get("datatype", "")
    suffix = (
        spec.get("datatype_suffix")
        or (_entities_from_guess(guess[1])[1] if guess else "")
        or {"func": "bold", "dwi": "dwi"}.get(datatype, "")
    )
    if suffix in ("scout", "localizer"):
        return SeriesPlan(**base, target=None, reason="localizer/scout (ReproIn name)")
    if datatype == "func" and not spec.get("task"):
        spec["task"], _ = task_for(description)
    if datatype in BIDS_DATATYPES and suffix:
        return SeriesPlan(**base, target=_template(datatype, spec, suffix), reason="ReproIn name")
    return None


def _header_plan(
    base: dict[str, Any], description: str, found: Classified, guess: tuple[str, str] | None
) -> SeriesPlan:
    """The plan :func:`~windl.convert.headers.classify` gives (``found``)."""
    if found.datatype is None:
        return SeriesPlan(**base, target=None, reason=f"dcm2niix gave no BidsGuess; {found.reason}")
    entities: dict[str, str] = {}
    reason = f"from the headers: {found.reason}"
    if guess is not None:
        reason += f" (dcm2niix guessed {guess[0]} {_entities_from_guess(guess[1])[1]})"
    if found.datatype == "func":
        entities["task"], source = task_for(description)
        reason += f"; task from {source}"
    return SeriesPlan(
        **base, target=_template(found.datatype, entities, found.suffix), reason=reason
    )


def _guess_plan(base: dict[str, Any], description: str, guess: tuple[str, str]) -> SeriesPlan:
    """The plan dcm2niix's BidsGuess gives."""
    datatype, name = guess
    if datatype == "discard":
        return SeriesPlan(**base, target=None, reason=f"localizer (dcm2niix BidsGuess {name})")
    if datatype == "derived":
        return SeriesPlan(
            **base,
            target=None,
            reason=f"dcm2niix flags it derived or incomplete (BidsGuess {name}); "
            "e.g. an interrupted run",
        )
    if datatype not in BIDS_DATATYPES:
        return SeriesPlan(**base, target=None, reason=f"BidsGuess datatype {datatype!r} unknown")
    entities, suffix = _entities_from_guess(name)
    reason = "dcm2niix BidsGuess"
    if datatype == "func":
        entities["task"], source = task_for(description)
        reason += f"; task from {source}"
    return SeriesPlan(**base, target=_template(datatype, entities, suffix), reason=reason)


def unique(p: SeriesPlan, used: dict[str, str]) -> SeriesPlan:
    """``p`` with a target no series in ``used`` (target → series number) has; records it."""
    if p.target and p.target in used:
        # series number as run label: unique within a session on every scanner
        head, suffix = p.target.rsplit("_", 1)
        head = re.sub(r"_run-[A-Za-z0-9]+", "", head)
        p = SeriesPlan(**{**asdict(p), "target": f"{head}_run-{_clean(p.series_number)}_{suffix}"})
        if p.target in used:
            p = SeriesPlan(
                **{
                    **asdict(p),
                    "target": None,
                    "reason": f"same BIDS name as series {used[p.target]}",
                }
            )
    if p.target:
        used[p.target] = p.series_number
    return p


def _used_before() -> dict[str, str]:
    """Targets other series of the session already have (``$WINDL_PLAN_USED``).

    Set when a session is converted one series at a time (:mod:`windl.convert.fallback`).
    """
    path = os.environ.get("WINDL_PLAN_USED")
    if path and Path(path).exists():
        return dict(json.loads(Path(path).read_text()))
    return {}


def plan(seqinfo: list[Any]) -> list[SeriesPlan]:
    """Plan all series; two series never get the same BIDS name."""
    used = _used_before()
    return [unique(plan_series(s), used) for s in seqinfo]


def infotodict(seqinfo: list[Any]) -> dict[tuple[str, tuple[str, ...], None], list[str]]:
    """heudiconv entry point."""
    plans = plan(seqinfo)
    out = os.environ.get("WINDL_PLAN_OUT")
    if out:
        first = seqinfo[0] if seqinfo else None
        record = {
            "series": [asdict(p) for p in plans],
            "participant": {
                "age": getattr(first, "patient_age", None),
                "sex": getattr(first, "patient_sex", None),
            },
        }
        Path(out).write_text(json.dumps(record, indent=1))
    info: dict[tuple[str, tuple[str, ...], None], list[str]] = {}
    for p in plans:
        if p.target:
            info.setdefault(create_key(p.target), []).append(p.series_id)
    return info
