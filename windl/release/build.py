"""``windl release build``: a fresh, de-identified release dataset of a study for one scope.

The release of study ``S`` for scope ``X`` is the DataLad dataset
``<site>/superdataset/releases/S/X``. It is created empty (it never shares a commit with the
study, whose history holds identifiers) and every version is one ``datalad run`` commit
of ``windl release assemble``, so ``datalad rerun`` of it rebuilds the same files and the
run record names the command, not a participant.

The build has two halves:

- :func:`build_release` (the maintainer's command) checks the request, selects the
  consented participants, creates their release labels, the scope's secret and the
  release dataset when missing, and runs the assembler under ``datalad run``;
- :func:`assemble_release` (the recorded command) plans the release from the study's
  committed tree (:mod:`windl.release.plan`), makes every file that changed and reuses
  every other one, and writes the description files.

Reuse: the de-identified output of each study file is remembered in the release's git
directory (``.git/windl/release-cache.json``: a hash of the source blob, the file's
parameters and windl's version → the outputs' sha256). When the release already holds
exactly those outputs, the file is not made again. The cache never leaves the site; without
it, every file is made again and, as every step is deterministic, to the same bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path, PurePosixPath
from typing import Any

from windl import datasets
from windl.checkpoints import checkpoint
from windl.clock import build_date
from windl.config import TEMPLATES, Site
from windl.consent import SCOPES, consented_participants, parse_scopes
from windl.deid.ctf import scrub_res4
from windl.deid.deface import deface
from windl.deid.dicom import BurnedInAnnotationRefused, DeidPolicy, UIDMap, deidentify_file
from windl.deid.ephys import scrub_raw
from windl.deid.pixels import blank_nifti
from windl.deid.sidecars import (
    scrub_nifti,
    scrub_scans_tsv,
    scrub_sidecar_file,
    scrub_tsv_dates,
)
from windl.errors import ConfigError, PseudonymMissing, ReleaseRefused, WindlError, capped_list
from windl.files import atomic_write
from windl.parallel import Progress, StepStatus, run_pool, watched_step
from windl.pseudonyms import (
    date_offset,
    ensure_entity_labels,
    ensure_labels,
    ensure_sessions,
    entity_mapping,
    mapping,
    release_secret,
    session_mapping,
)
from windl.qc import QC_DIR
from windl.release import columns
from windl.release.identifiers import study_identifiers
from windl.release.pixel_gate import PixelScreen, drop_withheld_rows, screen_release
from windl.release.plan import (
    PlannedFile,
    ReleasePlan,
    participant_sessions,
    plan_release,
    rename,
    study_tree,
    vetted_labels,
)
from windl.release.relabel import Relabel, rekey_sidecar, token_swaps, vetted_pairs
from windl.release.review import approved_readme, released_description
from windl.study import Study, get_study
from windl.vocabulary import vocabulary_of

RELEASE_RECORD = "code/windl/release.json"
DEFACE_RECORDS = "code/deface"
CACHE_FILE = datasets.WINDL_GITDIR / "release-cache.json"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
CHARACTERISTICS = columns.CHARACTERISTICS
#: plan kinds whose files are tables with a release class per column (windl.release.columns)
TABLE_KINDS = ("tsv", "scans", "sessions", "table")
LICENSE_URLS = {
    "CC0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-NC-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "PDDL": "https://opendatacommons.org/licenses/pddl/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
}


@dataclass(frozen=True)
class ReleaseSettings:
    """A study's release settings: ``[deid]`` and ``[release]`` of ``code/study.toml``."""

    policy: DeidPolicy
    include_dicom: tuple[str, ...] = ()

    @classmethod
    def of(cls, study: Study) -> ReleaseSettings:
        settings = study.settings()
        table = settings.get("release", {}) or {}
        unknown = sorted(set(table) - {"include_dicom"})
        if unknown:
            raise ConfigError(f"[release]: unknown key(s) {', '.join(unknown)}", study.code)
        scopes = table.get("include_dicom", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ConfigError("[release] include_dicom must be a list of scopes", study.code)
        return cls(
            policy=DeidPolicy.from_dict(settings.get("deid")),
            include_dicom=parse_scopes(scopes) if scopes else (),
        )


@dataclass
class ReleaseResult:
    """What a build did."""

    study: str
    scope: str
    version: str
    path: str
    commit: str
    changed: bool
    participants: int
    sessions: int
    files: int = 0
    made: int = 0
    reused: int = 0
    removed: int = 0
    refused: list[str] = field(default_factory=list)
    participants_added: list[str] = field(default_factory=list)
    participants_removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def windl_version() -> str:
    try:
        return package_version("windl")
    except PackageNotFoundError:
        return "0"


def release_path(site: Site, study: str, scope: str) -> Path:
    """Where the release dataset of ``study`` for ``scope`` lives."""
    return site.releases / study / scope


def parse_version(text: str) -> tuple[int, int, int]:
    """``X.Y.Z`` (a leading ``v`` is accepted) as numbers; :class:`ReleaseRefused` otherwise."""
    match = _VERSION.match(text.strip().removeprefix("v"))
    if match is None:
        raise ReleaseRefused(f"invalid version {text!r}: use X.Y.Z, e.g. 1.0.0")
    major, minor, patch = (int(n) for n in match.groups())
    return major, minor, patch


def published_versions(ds: Path) -> list[tuple[int, int, int]]:
    """Versions tagged ``vX.Y.Z`` in a release dataset, sorted."""
    if not (ds / ".git").exists():
        return []
    found = []
    for tag in datasets.git(ds, "tag", "--list", "v*").split():
        match = _VERSION.match(tag[1:])
        if match:
            found.append(tuple(int(n) for n in match.groups()))
    return sorted(found)  # type: ignore[arg-type]


def built_record(ds: Path, rev: str = "HEAD") -> dict[str, Any]:
    """The ``code/windl/release.json`` of a release at ``rev`` (``{}`` before the first build)."""
    if not (ds / ".git").exists():
        return {}
    text = datasets.git(ds, "cat-file", "blob", f"{rev}:{RELEASE_RECORD}", check=False)
    return json.loads(text) if text.strip() else {}


def released_participants(study: Study, scope: str) -> list[str]:
    """Participants with data in the study's HEAD and standing consent for ``scope``."""
    present = {p.split("/", 1)[0] for p in study_tree(study) if p.startswith("sub-")}
    present = {p for p in present if "/" not in p and p.startswith("sub-")}
    return sorted(present & consented_participants(study, scope))


# --------------------------------------------------------------------------- build
def build_release(
    site: Site,
    study_name: str,
    scope: str,
    version: str,
    say: Callable[[str], None] = lambda _: None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> ReleaseResult:
    """Build version ``version`` of the ``scope`` release of a study.

    Parameters
    ----------
    site, study_name
        The site and study.
    scope
        ``individuals``, ``members`` or ``external``.
    version
        ``X.Y.Z``: not older than the version the release holds, not already published
        (tagged ``vX.Y.Z``). Building the version the release already holds again makes
        it current (and changes nothing when nothing changed).
    say
        Progress messages.
    jobs
        Worker processes making release files at the same time (defacing, DICOM
        de-identification, scrubbing, re-keying). The files and the run record are the same
        whatever it is: it reaches the recorded ``windl release assemble`` through
        ``$WINDL_JOBS``, not its command line (see :mod:`windl.parallel`).
    progress
        Called with ``("release files", done, files)`` while the files are made.

    Raises
    ------
    ReleaseRefused
        On a bad or old version, or when no participant consented to the scope.
    DatasetDirty
        If the study has uncommitted changes (a release describes one commit).
    ReleaseFilesFailed
        Some files could not be made, named in the message. Nothing is committed; what the
        other files gave is kept, so the next build makes only the failed ones.
    """
    study = get_study(site, study_name)
    (scope,) = parse_scopes([scope])
    wanted = parse_version(version)
    version = ".".join(map(str, wanted))
    ReleaseSettings.of(study)  # a settings error stops the build before anything is written
    build_date()  # so does a malformed SOURCE_DATE_EPOCH
    datasets.require_clean(study.root)
    ds = release_path(site, study.name, scope)
    published = wanted in published_versions(ds)
    current = built_record(ds).get("version")
    if current and parse_version(current) > wanted:
        raise ReleaseRefused(f"the release already holds version {current}; use a newer one", ds)
    participants = released_participants(study, scope)
    if not participants:
        raise ReleaseRefused(
            f"no participant of study {study.name} with data has consent for scope {scope} "
            "(windl consent set ...)"
        )
    # an undeclared column stops the build here, in one line, before anything is written
    _study_tables(study, study_tree(study), set(participants), ReleaseSettings.of(study))
    # and so does a recording windl cannot de-identify (plan.refuse_unsupported_recording)
    plan_release(study, study_tree(study), {p: p for p in participants}, {}, include_dicom=False)
    say(f"== release {study.name} {scope} {version}: {len(participants)} consented participants")
    ensure_labels(study, scope, participants)
    ensure_sessions(study, scope, participant_sessions(study_tree(study), set(participants)))
    _ensure_entity_labels(study, scope, participants)
    release_secret(study, scope)
    _ensure_dataset(site, ds, study.name, scope)
    datasets.recover(ds)
    # leftovers of a killed build (its journal names the whole release); the build redoes them
    datasets.recover_runs(ds)
    datasets.discard_changes(ds, ["."])
    before = datasets.head(ds)
    checkpoint("release-start")
    # no site path and no interpreter path in the record: datalad runs it in the release,
    # which lies inside its site, so a copy or move of the site reruns against itself
    command = " ".join(
        shlex.quote(a)
        for a in (
            "windl",
            "release",
            "assemble",
            study.name,
            "--scope",
            scope,
            "--version",
            version,
        )
    )
    say("   de-identifying and assembling (datalad run) ...")
    log = ds / datasets.WINDL_GITDIR / "logs" / "assemble.log"
    status = ds / datasets.WINDL_GITDIR / "status" / "assemble.jsonl"
    try:
        with watched_step(status, jobs, progress, "release files") as report:
            datasets.datalad_run(
                ds,
                command,
                inputs=[],
                outputs=[],
                message=f"windl release {version} of {study.name} ({scope})",
                log=log,
                explicit=False,
            )
    except WindlError:
        if datasets.head(ds) != before:
            # DataLad saves what a failed command left behind (windl lets it go on after a
            # failed result) as a record with a non-zero exit; a release version is one
            # complete record or nothing
            datasets.git(ds, "reset", "--quiet", "--hard", before)
        if not report.failed:
            raise
        raise ReleaseFilesFailed(
            f"{len(report.failed)} of {report.total} release files failed: "
            + capped_list(
                [f"{name}: {error}" for name, error in report.failed.items()],
                ds / datasets.WINDL_GITDIR / "logs" / "failed-files.log",
            )
            + f" (nothing committed; the {report.made} made are kept: build again to redo "
            f"only the failed; full log: {log})"
        ) from None
    after = datasets.head(ds)
    if published and after != before:
        # a published version is never rewritten: building it again may only find it as is
        datasets.git(ds, "reset", "--quiet", "--hard", before)
        raise ReleaseRefused(
            f"version {version} of this release is published and the study changed since; "
            "use a newer version",
            ds,
        )
    checkpoint("release-assembled")
    # also when this build changed nothing: a killed build may have committed the release
    # without recording it in the superdataset (a no-op when it is recorded)
    datasets.record_subdataset_state(
        site.superdataset, ds, f"windl: release {version} of {study.name} ({scope})"
    )
    stats = json.loads((ds / datasets.WINDL_GITDIR / "last-assemble.json").read_text())
    return ReleaseResult(
        study=study.name,
        scope=scope,
        version=version,
        path=str(ds),
        commit=after,
        changed=after != before,
        **stats,
    )


def _ensure_entity_labels(study: Study, scope: str, participants: list[str]) -> None:
    """Neutral labels for every unapproved label the release will hold (committed to
    ``restricted/`` here: the recorded assembly must not write there)."""
    tree = study_tree(study)
    plan = plan_release(study, tree, {p: p for p in participants}, {}, include_dicom=False)
    vocabulary = vocabulary_of(study.settings(), study.code)
    ensure_entity_labels(study, scope, vetted_labels(study, plan), vocabulary)


def _relabel(study: Study, scope: str) -> Relabel:
    """The release's vetted labels: the study's vocabulary and the scope's neutral labels."""
    return Relabel(vocabulary_of(study.settings(), study.code), entity_mapping(study, scope))


def _ensure_dataset(site: Site, ds: Path, study: str, scope: str) -> None:
    """Create the (empty) release dataset, registered in the site's superdataset."""
    if (ds / ".datalad").is_dir():
        datasets.mark_neutral_identity(ds)  # a release made before windl marked them
        return
    if ds.exists() and any(ds.iterdir()):
        raise ReleaseRefused("folder exists but is not a release dataset; move it away", ds)
    datasets.create_dataset(
        ds,
        parent=site.superdataset,
        description=f"{study} {scope} release",
        neutral_identity=True,
    )
    attributes = (TEMPLATES / "study" / ".gitattributes").read_text(encoding="utf-8")
    attributes += "*.dcm annex.largefiles=anything\n"
    (ds / ".gitattributes").write_text(attributes, encoding="utf-8")
    datasets.save(ds, [".gitattributes"], f"windl: release dataset of {study} ({scope})")
    datasets.record_subdataset_state(
        site.superdataset, ds, f"windl: release dataset of {study} ({scope})"
    )


# --------------------------------------------------------------------------- assemble
@dataclass
class _Context:
    site: Site
    study: Study
    scope: str
    version: str
    ds: Path
    settings: ReleaseSettings
    labels: dict[str, str]  # study pid -> release pid
    sessions: dict[tuple[str, str], str]
    secret: str
    words: tuple[str, ...]
    stage: Path
    uid_map: UIDMap
    released_before: set[str]  # release participant ids at the release's HEAD
    tables: columns.StudyTables = field(default_factory=columns.StudyTables)
    pixels: PixelScreen = field(default_factory=PixelScreen)  # windl.release.pixel_gate
    relabel: Relabel = field(default_factory=Relabel)  # vetted labels (task, acq, ...)
    label_digests: dict[str, str] = field(default_factory=dict)  # study pid -> its labels' hash
    released: frozenset[str] = frozenset()  # release paths of the plan, and their folders
    path_digests: dict[str, str] = field(default_factory=dict)  # study pid -> hash of its paths

    @property
    def policy(self) -> DeidPolicy:
        return self.settings.policy

    def offset(self, pid: str | None) -> int:
        return date_offset(self.secret, pid) if pid else 0


def assemble_release(
    site: Site, study_name: str, scope: str, version: str, jobs: int = 1
) -> dict[str, Any]:
    """Write the release's files into its working tree (the command ``datalad run`` records).

    Only the build calls it: labels, sessions and the secret must exist already, so this
    step never writes to ``restricted/``. Returns the statistics of the build.

    The files to make (not reused) are made by ``jobs`` worker processes; every step is
    deterministic, so the files are the same whatever ``jobs`` is. A file that fails does
    not stop the others; then the assembly fails naming it (a release is complete or not
    made), after keeping what the others made in ``.git/windl/release-kept/`` with their
    cache entries, so the next build makes only the failed file.

    Raises
    ------
    ReleaseFilesFailed
        Some files could not be made.
    """
    study = get_study(site, study_name)
    (scope,) = parse_scopes([scope])
    version = ".".join(map(str, parse_version(version)))
    ds = release_path(site, study.name, scope)
    settings = ReleaseSettings.of(study)
    participants = released_participants(study, scope)
    known = mapping(study, scope)
    labels = {pid: f"sub-{known[pid]}" for pid in participants if pid in known}
    if len(labels) != len(participants):
        raise ReleaseRefused("release labels missing: run 'windl release build', not assemble")
    tree = study_tree(study)
    pairs = participant_sessions(tree, set(participants))
    keyed = session_mapping(study, scope)
    sessions = {pair: keyed.get(pair, pair[1]) for pair in pairs}
    secret = release_secret(study, scope)
    identifiers = study_identifiers(study, settings.policy)
    stage = ds / datasets.WINDL_GITDIR / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    ctx = _Context(
        site=site,
        study=study,
        scope=scope,
        version=version,
        ds=ds,
        settings=settings,
        labels=labels,
        sessions=sessions,
        secret=secret,
        words=tuple(sorted(identifiers.kinds)),
        stage=stage,
        uid_map=UIDMap(f"{secret}:uids"),
        released_before=_released_labels(ds),
        tables=_study_tables(study, tree, set(labels), settings),
        relabel=_relabel(study, scope),
    )
    plan = plan_release(study, tree, labels, sessions, scope in settings.include_dicom, ctx.relabel)
    ctx.label_digests = _label_digests(ctx.relabel, plan)
    ctx.released, ctx.path_digests = _released_paths(plan)
    ctx.pixels = screen_release(study, plan.files)
    previous = built_record(ds)
    earlier = ctx.released_before
    tracked = _tracked(ds)
    cache = _load_cache(ds)
    new_cache: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    stats: dict[str, Any] = {"made": 0, "reused": 0, "refused": []}
    made_now: list[str] = []
    kept = _KeptFiles(ds)
    status = StepStatus.from_env()
    status.start(len(plan.files))
    keys = [_cache_key(ctx, planned) for planned in plan.files]
    entries: list[dict[str, Any] | None] = [None] * len(plan.files)
    todo: list[int] = []
    restored: list[str] = []  # made by an earlier, failed build (see _KeptFiles)
    finished = 0

    def one_done(planned: PlannedFile, error: str | None = None, reused: bool = False) -> None:
        nonlocal finished
        finished += 1
        status.done(planned.src or planned.dst, error, reused)
        if finished == len(plan.files) // 2:
            checkpoint("release-half-written")

    for index, planned in enumerate(plan.files):
        entry = cache.get(keys[index])
        if planned.dst in ctx.pixels.refused:
            entries[index] = None  # withheld by the pixel gate, even if made before
            one_done(planned)
            continue
        if entry is not None and all(
            _current_sha256(ds, rel) == sha for rel, sha in entry["outputs"].items()
        ):
            entries[index] = entry
        elif entry is not None and kept.restore(entry["outputs"]):
            entries[index] = entry
            restored.extend(entry["outputs"])
        else:
            todo.append(index)
            continue
        stats["reused"] += 1
        one_done(planned, reused=True)
    failed: dict[str, str] = {}
    refused: set[int] = set()
    work = [plan.files[i] for i in todo]
    for outcome in run_pool(functools.partial(_make_or_refuse, ctx), work, jobs, _sizes(ctx, work)):
        index = todo[outcome.index]
        planned = plan.files[index]
        if outcome.error is not None:
            failed[planned.src or planned.dst] = outcome.error
        elif outcome.value is None:
            refused.add(index)
        else:
            entries[index] = {"outputs": outcome.value}
            stats["made"] += 1
            made_now.extend(outcome.value)
        one_done(planned, outcome.error)
    # in plan order, whatever order the workers finished in
    for index, planned in enumerate(plan.files):
        entry = entries[index]
        if planned.dst in ctx.pixels.refused:
            stats["refused"].append(f"{planned.dst}: {ctx.pixels.refused[planned.dst]}")
        elif index in refused:
            stats["refused"].append(f"{planned.dst}: refused: BurnedInAnnotation is YES")
        elif entry is not None:
            new_cache[keys[index]] = entry
            outputs.update(entry["outputs"])
    if failed:
        # a release must be complete, so the build fails; what was made is kept (and the
        # cache says so), and the next build makes only the failed files
        kept.keep({rel: outputs[rel] for rel in [*made_now, *restored]})
        _save_cache(ds, {**cache, **new_cache})
        shutil.rmtree(stage, ignore_errors=True)
        raise ReleaseFilesFailed(
            f"{len(failed)} of {len(plan.files)} files failed: "
            + capped_list(
                [f"{name}: {error}" for name, error in sorted(failed.items())],
                ds / datasets.WINDL_GITDIR / "logs" / "failed-files.log",
            )
            + f" (the {stats['made']} made now are kept: build again to redo only the failed)"
        )
    made_now.extend(_qc_groups(ctx, outputs))
    removed = 0
    for rel in sorted(tracked - set(outputs) - _generated_names()):
        (ds / rel).unlink(missing_ok=True)
        removed += 1
    _prune_empty_dirs(ds)
    data_changed = bool(datasets.dirty_paths(ds))
    generated = _write_generated(ctx, plan, previous, tracked, outputs, data_changed)
    outputs.update(generated)
    for rel in sorted(tracked - set(outputs)):
        (ds / rel).unlink(missing_ok=True)
    # annex with git-annex's batch plumbing here; datalad run's save then finds them staged
    # (its per-file ``git annex add`` was most of a release build's time)
    datasets.annex_add_placed(ds, sorted({*made_now, *restored, *generated}))
    _save_cache(ds, new_cache)
    kept.clear()
    shutil.rmtree(stage, ignore_errors=True)
    result = {
        "participants": len(labels),
        "sessions": len(sessions),
        "files": len(outputs),
        "made": stats["made"],
        "reused": stats["reused"],
        "removed": removed,
        "refused": stats["refused"],
        "participants_added": sorted(set(labels.values()) - earlier) if earlier else [],
        "participants_removed": sorted(earlier - set(labels.values())),
    }
    atomic_write(
        ds / datasets.WINDL_GITDIR / "last-assemble.json",
        lambda fh: fh.write(json.dumps(result).encode()),
    )
    return result


class ReleaseFilesFailed(WindlError):
    """Some release files could not be made (the others are kept for the next build)."""


def _make_or_refuse(ctx: _Context, planned: PlannedFile) -> dict[str, str] | None:
    """Worker: :func:`_make`, or ``None`` for a DICOM image refused for burned-in text."""
    try:
        return _make(ctx, planned)
    except BurnedInAnnotationRefused:
        return None


def _sizes(ctx: _Context, files: Iterable[PlannedFile]) -> list[float]:
    """How long each file's work may take, for scheduling: bytes, defacing first (~10 s)."""
    sizes = []
    for planned in files:
        try:
            size = (ctx.study.root / planned.src).stat().st_size if planned.src else 0
        except OSError:
            size = 0
        sizes.append(size + (1e12 if planned.kind == "deface" else 0))
    return sizes


class _KeptFiles:
    """Files made by a build that failed, kept by sha256 for the next build.

    A failed assembly leaves no record: the release is reset to its last version, so the
    files other workers made would be lost; they wait here, in the release's git dir, until
    a build completes.
    """

    def __init__(self, ds: Path) -> None:
        self.folder = ds / datasets.WINDL_GITDIR / "release-kept"
        self.ds = ds

    def keep(self, files: Mapping[str, str]) -> None:
        """Move the release files ``files`` (path -> sha256) here."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for rel, sha in files.items():
            source = self.ds / rel
            if not source.is_file() or source.is_symlink():
                continue
            if (self.folder / sha).exists():
                source.unlink()
            else:
                os.replace(source, self.folder / sha)

    def restore(self, files: Mapping[str, str]) -> bool:
        """Put every file of ``files`` back into the release; False when one is not here."""
        if not self.folder.is_dir() or not all(
            (self.folder / sha).is_file() for sha in files.values()
        ):
            return False
        for rel, sha in files.items():
            target = self.ds / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            # a copy: another file may have the same bytes, and the build may fail again
            shutil.copyfile(self.folder / sha, target)
        return True

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _generated_names() -> set[str]:
    from windl.release.plan import GENERATED

    return {*GENERATED, RELEASE_RECORD}


def _tracked(ds: Path) -> set[str]:
    """Files of the release that windl manages (all tracked files but dotfiles)."""
    names = datasets.git(ds, "ls-files", "-z").split("\0")
    return {n for n in names if n and not any(p.startswith(".") for p in n.split("/"))}


def _prune_empty_dirs(ds: Path) -> None:
    for folder in sorted((p for p in ds.rglob("*") if p.is_dir()), reverse=True):
        if ".git" in folder.relative_to(ds).parts or ".datalad" in folder.relative_to(ds).parts:
            continue
        if not any(folder.iterdir()):
            folder.rmdir()


def _cache_key(ctx: _Context, planned: PlannedFile) -> str:
    payload = {
        "windl": windl_version(),
        "kind": planned.kind,
        "blob": planned.blob,
        "companions": planned.companions,
        "dst": planned.dst,
        "policy": dataclasses.asdict(ctx.policy),
        "offset": ctx.offset(planned.participant),
        "labels": {k: v for k, v in ctx.labels.items() if k == planned.participant},
        "sessions": sorted(
            (k[1], v) for k, v in ctx.sessions.items() if k[0] == planned.participant
        ),
        "relabel": (ctx.label_digests.get(planned.participant or "") or ctx.relabel.digest())
        if planned.kind in ("sidecar", "scans", "sessions", "qc")
        else "",
        # a sidecar's IntendedFor & co. keep only paths the release has
        "paths": ctx.path_digests.get(planned.participant or "", "")
        if planned.kind == "sidecar"
        else "",
        "words": hashlib.sha256("\n".join(ctx.words).encode()).hexdigest()
        if planned.kind == "sidecar"
        else "",
        "uids": hashlib.sha256(ctx.secret.encode()).hexdigest() if planned.kind == "dicom" else "",
        "annotations": sorted(_approved_annotations(ctx)) if planned.kind == "ephys" else [],
        "columns": ctx.tables.key(planned.src),
        "pixels": ctx.pixels.key(planned.dst),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _load_cache(ds: Path) -> dict[str, Any]:
    path = ds / CACHE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(ds: Path, cache: Mapping[str, Any]) -> None:
    text = json.dumps(cache, sort_keys=True).encode()
    atomic_write(ds / CACHE_FILE, lambda fh: fh.write(text))


def _current_sha256(ds: Path, rel: str) -> str | None:
    """sha256 of the release's file ``rel`` (from its annex key when it has one)."""
    path = ds / rel
    if path.is_symlink():
        identity = datasets.annex_key_identity(Path(os.readlink(path)).name)
        if identity is not None and identity[0] == "sha256":
            return identity[2]
    if not path.is_file():
        return None
    return datasets.file_digest(path, "sha256")


def _place(ctx: _Context, staged: Path, rel: str) -> str:
    """Move a made file into the release's working tree; return its sha256."""
    target = ctx.ds / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    sha = datasets.file_digest(staged, "sha256")
    if target.is_symlink() or target.exists():
        target.unlink()
    os.replace(staged, target)
    return sha


def _make(ctx: _Context, planned: PlannedFile) -> dict[str, str]:
    """Make the release file(s) of ``planned``; return release path → sha256."""
    assert planned.src is not None
    src = (ctx.study.root / planned.src).resolve()
    scratch = Path(tempfile.mkdtemp(dir=ctx.stage))
    staged = scratch / Path(planned.dst).name
    offset = ctx.offset(planned.participant)
    policy = ctx.policy
    made: dict[str, str] = {}
    blanking = ctx.pixels.blanking.get(planned.dst)
    if planned.kind in ("deface", "nifti") and blanking is not None:
        blanked = scratch / ("blanked-" + staged.name)
        blank_nifti(src, blanked, blanking)  # a study's [deid.pixels] rule: zeroed first
        src = blanked
    if planned.kind == "deface":
        headerless = scratch / ("clean-" + staged.name)
        scrub_nifti(src, headerless)
        record = deface(headerless, staged)
        made[deface_record_path(planned.dst)] = _place_text(
            ctx, deface_record_path(planned.dst), _release_record(record.to_dict(), planned.dst)
        )
    elif planned.kind == "nifti":
        scrub_nifti(src, staged)
    elif planned.kind == "sidecar" and planned.src in ctx.tables.described:
        _data_dictionary(ctx, src, staged, planned.src)
    elif planned.kind == "sidecar":
        scrub_sidecar_file(
            src, staged, policy, offset, identifying_words=ctx.words, bids_path=planned.src
        )
        _vet_sidecar(ctx, planned, staged)
    elif planned.kind == "scans":
        dates = _released_columns(ctx, src, scratch / "columns.tsv", planned.src)
        scrub_tsv_dates(
            scratch / "columns.tsv", scratch / "dated.tsv", policy, offset, columns=dates
        )
        scrub_scans_tsv(scratch / "dated.tsv", scratch / "scans.tsv", policy, offset)
        _rekey_columns(scratch / "scans.tsv", staged, ctx, planned.participant, ("filename",))
        drop_withheld_rows(staged, Path(planned.dst).parent.as_posix(), ctx.pixels.refused)
    elif planned.kind == "sessions":
        dates = _released_columns(ctx, src, scratch / "columns.tsv", planned.src)
        scrub_tsv_dates(
            scratch / "columns.tsv", scratch / "sessions.tsv", policy, offset, columns=dates
        )
        _rekey_columns(scratch / "sessions.tsv", staged, ctx, planned.participant, ("session_id",))
    elif planned.kind == "tsv":
        dates = _released_columns(ctx, src, scratch / "columns.tsv", planned.src)
        scrub_tsv_dates(scratch / "columns.tsv", staged, policy, offset, columns=dates)
    elif planned.kind == "table":
        _participant_table(ctx, src, staged, planned.src)
    elif planned.kind == "ephys":
        written = scrub_raw(src, staged, policy, offset, _approved_annotations(ctx))
        folder = Path(planned.dst).parent
        for path in written[1:]:
            made[(folder / path.name).as_posix()] = _place(
                ctx, path, (folder / path.name).as_posix()
            )
    elif planned.kind == "ctf":
        scrub_res4(src, staged, policy, offset)
    elif planned.kind == "dicom":
        pid = planned.participant or ""
        deidentify_file(
            src,
            staged,
            policy,
            ctx.uid_map,
            offset,
            ctx.labels[pid],
            blank=blanking.rectangles if blanking else (),
        )
    elif planned.kind == "qc":
        text = src.read_text(encoding="utf-8")
        staged.write_text(_rekey_labels(text, ctx, planned.participant), encoding="utf-8")
    else:
        shutil.copyfile(src, staged)
    made[planned.dst] = _place(ctx, staged, planned.dst)
    shutil.rmtree(scratch, ignore_errors=True)
    return made


def _approved_annotations(ctx: _Context) -> frozenset[str]:
    """The annotation/marker texts the study approved (``[vocabulary] trial_type``)."""
    from windl.vocabulary import vocabulary_of

    study = ctx.study
    return vocabulary_of(study.settings(), study.code / "study.toml").approved("trial_type")


def _vet_sidecar(ctx: _Context, planned: PlannedFile, staged: Path) -> None:
    """A made sidecar with its labels and paths re-keyed (:func:`rekey_sidecar`)."""
    data = json.loads(staged.read_text(encoding="utf-8"))
    pid = planned.participant

    def rename_path(path: str) -> str:
        # relative to the participant, or from the dataset (maybe another participant's:
        # AssociatedEmptyRoom names sub-emptyroom)
        owner = None if path.startswith("sub-") else pid
        renamed = rename(path, ctx.labels, ctx.sessions, ctx.relabel.label, owner)
        full = f"{ctx.labels[owner]}/{renamed}" if owner in ctx.labels else renamed
        if full not in ctx.released:
            # a file the release does not hold (another participant's, withheld, never
            # there): pointing to it would name what is not released, and is invalid
            raise PseudonymMissing(f"{path} is not in the release")
        return renamed

    out = rekey_sidecar(data, Path(planned.dst).name, ctx.relabel, rename_path)
    if out != data:
        staged.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _released_paths(plan: ReleasePlan) -> tuple[frozenset[str], dict[str, str]]:
    """Every release path of ``plan`` with its folders (a CTF ``.ds`` recording is a
    folder), and per participant a hash of its paths (for the reuse cache)."""
    paths: set[str] = set()
    own: dict[str, list[str]] = {}
    for planned in plan.files:
        paths.add(planned.dst)
        paths.update(p.as_posix() for p in PurePosixPath(planned.dst).parents)
        own.setdefault(planned.participant or "", []).append(planned.dst)
    digests = {
        pid: hashlib.sha256("\n".join(sorted(dsts)).encode()).hexdigest()
        for pid, dsts in own.items()
    }
    return frozenset(paths), digests


def deface_record_path(dst: str) -> str:
    """Where the deface record of the release image ``dst`` lives in the release."""
    stem = re.sub(r"\.nii(\.gz)?$", "", dst)
    return f"{DEFACE_RECORDS}/{stem}.json"


def _release_record(record: dict[str, Any], dst: str) -> str:
    """The deface record as shipped: no input hash (it names the study's file), no timings."""
    shipped = {k: v for k, v in record.items() if k not in ("input_sha256", "timings")}
    shipped["image"] = dst
    return json.dumps(shipped, indent=2, sort_keys=True) + "\n"


def _place_text(ctx: _Context, rel: str, text: str) -> str:
    staged = Path(tempfile.mkstemp(dir=ctx.stage)[1])
    staged.write_text(text, encoding="utf-8")
    return _place(ctx, staged, rel)


def _rekey_labels(text: str, ctx: _Context, pid: str | None) -> str:
    """Every ``sub-``/``ses-`` label of participant ``pid`` and every re-keyed entity label
    (``task-...``) in ``text`` re-keyed, as whole tokens (``sub-01`` but not ``sub-012``):
    in a TSV cell, a path or a whole QC report."""
    swaps = token_swaps(ctx.relabel)
    if pid is not None:
        swaps[pid] = ctx.labels[pid]
        swaps |= {
            f"ses-{old}": f"ses-{new}" for (owner, old), new in ctx.sessions.items() if owner == pid
        }
    if not swaps:
        return text
    body = "|".join(re.escape(k) for k in sorted(swaps, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9])({body})(?![A-Za-z0-9])")
    return pattern.sub(lambda m: swaps[m.group(1)], text)


QC_GROUP_REPORT = f"{QC_DIR}/group_qc.html"
QC_NOTE = (
    "The QC of this release: the released recordings only, labels re-keyed. Metrics were "
    "computed on the images as acquired, before defacing; the per-file reports of "
    "face-showing images (slices of the head) are left out."
)


def _qc_groups(ctx: _Context, outputs: dict[str, str]) -> list[str]:
    """Make the QC group tables and dataset report from the release's own per-file metrics.

    Returns the files that changed (placed), after adding every one to ``outputs``.
    """
    from windl.qc.step import group_rows, write_group_files

    qc_root = ctx.ds / QC_DIR
    metric_files = [
        ctx.ds / rel
        for rel in outputs
        if rel.startswith(QC_DIR + "/sub-") and rel.endswith("_qc.json")
    ]
    if not metric_files:
        return []
    scratch = Path(tempfile.mkdtemp(dir=ctx.stage))
    placed = []
    for path in write_group_files(group_rows(qc_root, metric_files), scratch, QC_NOTE):
        rel = f"{QC_DIR}/{path.name}"
        sha = datasets.file_digest(path, "sha256")
        if _current_sha256(ctx.ds, rel) != sha:
            _place(ctx, path, rel)
            placed.append(rel)
        outputs[rel] = sha
    shutil.rmtree(scratch, ignore_errors=True)
    return placed


def _rekey_columns(
    src: Path, dst: Path, ctx: _Context, pid: str | None, columns: Iterable[str]
) -> None:
    lines = src.read_text(encoding="utf-8-sig").splitlines()
    if not lines:
        shutil.copyfile(src, dst)
        return
    header = lines[0].split("\t")
    index = [i for i, name in enumerate(header) if name in set(columns)]
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split("\t")
        for i in index:
            if i < len(cells):
                cells[i] = _rekey_labels(cells[i], ctx, pid)
        out.append("\t".join(cells))
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")


def _study_tables(
    study: Study, tree: Mapping[str, str], pids: set[str], settings: ReleaseSettings
) -> columns.StudyTables:
    """The release class of every column of the tables a release of ``pids`` holds.

    Raises
    ------
    ReleaseRefused
        Naming the first table and column that has no release class.
    """
    from windl.release.plan import _SKIPPED_TOP, kind_of

    tables = [
        path
        for path in tree
        if path.endswith(".tsv")
        and (path == "participants.tsv" or kind_of(path) in TABLE_KINDS)
        and path.split("/", 1)[0] not in _SKIPPED_TOP
        and not any(p.startswith(".") for p in path.split("/"))
        and (not path.startswith("sub-") or path.split("/", 1)[0] in pids)
    ]
    options = columns.Options(
        characteristics=settings.policy.retain_patient_characteristics,
        trial_types=vocabulary_of(study.settings(), study.code).approved("trial_type"),
    )
    return columns.study_tables(
        tables, tree, lambda paths: datasets.read_blobs(study.root, "HEAD", paths), options
    )


def _released_columns(ctx: _Context, src: Path, dst: Path, rel: str) -> list[str]:
    """Write the table ``rel`` with only its released columns and values; return the
    columns whose values are dates (shifted or removed afterwards)."""
    text = src.read_bytes().decode("utf-8-sig", errors="replace")
    out, decided = columns.release_table_text(
        rel, text, ctx.tables.dictionaries.get(rel, {}), ctx.tables.options
    )
    dst.write_text(out, encoding="utf-8")
    return columns.date_columns(decided)


def _data_dictionary(ctx: _Context, src: Path, dst: Path, rel: str) -> None:
    """A table's JSON data dictionary as released: released columns and levels only."""
    try:
        data = json.loads(src.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise ReleaseRefused("data dictionary is not valid JSON", rel) from None
    shipped = columns.release_dictionary(data, ctx.tables.described[rel])
    dst.write_text(json.dumps(shipped, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


#: columns of participant-level tables that hold a BIDS entity, by entity
ENTITY_COLUMNS = {"participant_id": "sub", "session_id": "ses", "sample_id": "sample"}


def _table_cell(ctx: _Context, column: str, value: str, pid: str) -> str:
    """A cell of participant ``pid``'s row as released: entity columns re-keyed.

    ``participant_id``, ``session_id`` and ``sample_id`` take the labels the release's
    paths have, so the table still names the folders and files it describes.
    """
    entity = ENTITY_COLUMNS.get(column)
    if entity == "sub":
        return ctx.labels[pid]
    if entity == "ses":
        label = value.removeprefix("ses-")
        released = ctx.sessions.get((pid, label))
        return f"ses-{released}" if released is not None else "n/a"
    if entity == "sample" and value.startswith("sample-"):
        try:
            return f"sample-{ctx.relabel.label('sample', value.removeprefix('sample-'))}"
        except PseudonymMissing:
            return "n/a"  # a sample no released file names: nothing to point to
    return value


def _participant_table(
    ctx: _Context, src: Path, dst: Path, rel: str = "participants.tsv"
) -> list[columns.Column]:
    """A participant-level table: consented rows, re-keyed ids, released columns only
    (:mod:`windl.release.columns`).

    Date columns become ``n/a``: rows belong to different participants, whose dates are
    shifted by different amounts, so no single shift would keep them consistent.
    """
    header, rows = columns.read_table(src.read_bytes().decode("utf-8-sig", errors="replace"))
    if not header:
        dst.write_text("", encoding="utf-8")
        return []
    if "participant_id" not in header:
        raise ReleaseRefused("participant table without a participant_id column", rel)
    id_col = header.index("participant_id")
    decided = columns.table_columns(
        rel, header, ctx.tables.dictionaries.get(rel, {}), ctx.tables.options
    )
    consented = []
    for cells in rows:
        pid = cells[id_col] if id_col < len(cells) else ""
        if pid in ctx.labels:
            consented.append([_table_cell(ctx, header[i], c, pid) for i, c in enumerate(cells)])
    if rel == "participants.tsv":
        # every released folder has a row (BIDS: PARTICIPANT_ID_MISMATCH), known or not
        listed = {cells[id_col] for cells in rows if id_col < len(cells)}
        for pid in sorted(set(ctx.labels) - listed):
            consented.append(
                [ctx.labels[pid] if i == id_col else "n/a" for i in range(len(header))]
            )
    names, released = columns.release_rows(decided, consented)
    released.sort(key=lambda r: r[names.index("participant_id")])
    text = "\t".join(names) + "\n" + "".join("\t".join(r) + "\n" for r in released)
    tmp = dst.with_name(dst.name + ".rows")
    tmp.write_text(text, encoding="utf-8")
    no_dates = dataclasses.replace(ctx.policy, retain_modified_dates=False)
    scrub_tsv_dates(tmp, dst, no_dates, 0, columns=columns.date_columns(decided))
    tmp.unlink()
    return [c for c in decided if c.released]


# --------------------------------------------------------------------------- description
def _study_text(study: Study, name: str) -> str:
    return datasets.git(study.root, "cat-file", "blob", f"HEAD:{name}", check=False)


def _write_generated(
    ctx: _Context,
    plan: ReleasePlan,
    previous: Mapping[str, Any],
    tracked: set[str],
    outputs: Mapping[str, str],
    data_changed: bool,
) -> dict[str, str]:
    """Write the description files; return release path → sha256."""
    made: dict[str, str] = {}
    study = ctx.study
    scratch = Path(tempfile.mkdtemp(dir=ctx.stage))
    participants_src = scratch / "participants.tsv"
    participants_src.write_text(_study_text(study, "participants.tsv") or "participant_id\n")
    kept = _participant_table(ctx, participants_src, scratch / "participants.out.tsv")
    made["participants.tsv"] = _place(ctx, scratch / "participants.out.tsv", "participants.tsv")
    sidecar = {c.name: columns.released_entry(c) for c in kept}
    sidecar["participant_id"] = {
        "Description": "Release label: random, stable across versions of this release line, "
        "unrelated to the label used at the scanner or in the study"
    }
    made["participants.json"] = _place_text(
        ctx, "participants.json", json.dumps(sidecar, indent=2) + "\n"
    )

    same_version = previous.get("version") == ctx.version
    kept_doi = _minted_doi(ctx.ds) if same_version else None
    description = json.loads(_study_text(study, "dataset_description.json") or "{}")
    description = released_description(study, description)  # typed text only as reviewed
    if kept_doi:  # a rebuild of a version whose DOI is minted keeps it (DataCite has it)
        description["DatasetDOI"] = f"doi:{kept_doi}"
    description["DatasetType"] = "raw"
    description["GeneratedBy"] = [
        {
            "Name": "windl",
            "Version": windl_version(),
            "Description": f"de-identified release {ctx.version} (scope {ctx.scope})",
        }
    ]
    made["dataset_description.json"] = _place_text(
        ctx, "dataset_description.json", json.dumps(description, indent=2) + "\n"
    )
    license_id = str(description.get("License") or "").strip()
    if ctx.scope == "external" and not license_id:
        raise ReleaseRefused(
            "dataset_description.json has no License; an external release needs one",
            study.root / "dataset_description.json",
        )
    url = LICENSE_URLS.get(license_id, "")
    made["LICENSE"] = _place_text(
        ctx,
        "LICENSE",
        f"This dataset is made available under the license {license_id or 'not stated'}."
        + (f"\nFull text: {url}\n" if url else "\n")
        + (
            "Access and use are also bound by the Data Usage Agreement in DUA.md.\n"
            if ctx.scope == "external"
            else ""
        ),
    )
    # the DUA and methods.md are not BIDS files; the validator must not count them against
    # the dataset
    # (and CITATION.cff, which BIDS 1.10 does not allow next to Authors)
    made[".bidsignore"] = _place_text(
        ctx, ".bidsignore", "DUA.md\nmethods.md\n" + ("CITATION.cff\n" if kept_doi else "")
    )
    dua_version = None
    if ctx.scope == "external":
        dua_version, dua_text = current_dua()
        made["DUA.md"] = _place_text(ctx, "DUA.md", dua_text)

    policy_options = list(ctx.policy.options)
    record = {
        "study": study.name,
        "scope": ctx.scope,
        "version": ctx.version,
        "windl_version": windl_version(),
        "policy": {
            "profile": "PS3.15 Annex E Basic Application Level Confidentiality Profile",
            "options": policy_options,
        },
        "include_dicom": ctx.scope in ctx.settings.include_dicom,
        "dua_version": dua_version,
        "participants": len(ctx.labels),
        "sessions": len(ctx.sessions),
        "date": build_date(),
    }
    unchanged = (
        not data_changed
        and same_version
        and {k: v for k, v in previous.items() if k != "date"}
        == {k: v for k, v in record.items() if k != "date"}
    )
    if unchanged:
        record["date"] = previous["date"]
    made[RELEASE_RECORD] = _place_text(ctx, RELEASE_RECORD, json.dumps(record, indent=2) + "\n")
    date = record["date"]

    readme = (TEMPLATES / "release" / "README.md").read_text(encoding="utf-8")
    dates = (
        "shifted per participant by a secret number of days (intervals kept)"
        if ctx.policy.retain_modified_dates
        else "removed"
    )
    readme_text = readme.format(
        name=description.get("Name", study.name),
        version=ctx.version,
        scope=ctx.scope,
        study=study.name,
        windl_version=windl_version(),
        n_participants=len(ctx.labels),
        n_sessions=len(ctx.sessions),
        options=", ".join(policy_options) or "none (the Basic Profile alone)",
        dates=dates,
        license=license_id or "not stated",
        dua=(
            f"\n- **Data Usage Agreement:** version {dua_version} (`DUA.md`); accept it "
            "before you clone or get the data."
            if dua_version
            else ""
        ),
        study_readme=_study_readme(study),
        qc=(
            "\n- **Quality control:** image and recording quality metrics of the released "
            "files in `derivatives/qc/` (one table per kind, `group_<kind>.tsv`; dataset report "
            "`derivatives/qc/group_qc.html`)."
            if QC_GROUP_REPORT in outputs
            else ""
        ),
    )
    if kept_doi:
        from windl.share.doi import citation_cff, readme_with_doi

        readme_text = readme_with_doi(readme_text, kept_doi)
        made["CITATION.cff"] = _place_text(
            ctx, "CITATION.cff", citation_cff(kept_doi, description, record, ctx.ds)
        )
    made["README.md"] = _place_text(ctx, "README.md", readme_text)
    from windl.methods import release_methods_markdown

    deface_records = [
        json.loads((ctx.ds / rel).read_text(encoding="utf-8"))
        for rel in sorted(outputs)
        if rel.startswith(DEFACE_RECORDS + "/")
    ]
    made["methods.md"] = _place_text(
        ctx,
        "methods.md",
        release_methods_markdown(
            ctx.site,
            study,
            record,
            deface_records,
            identifying_words=[*ctx.words, *_rekeyed_words(ctx.relabel)],
            relabel=ctx.relabel.label,
        ),
    )
    made["CHANGES"] = _place_text(
        ctx,
        "CHANGES",
        _changes(ctx, previous, tracked, outputs, same_version, date),
    )
    shutil.rmtree(scratch, ignore_errors=True)
    return made


def _label_digests(relabel: Relabel, plan: ReleasePlan) -> dict[str, str]:
    """Per participant, a hash of the labels its files' texts may name (for the cache)."""
    paths: dict[str, list[str]] = {}
    for planned in plan.files:
        if planned.participant and planned.src:
            paths.setdefault(planned.participant, []).append(planned.src)
    return {pid: relabel.digest(vetted_pairs(srcs)) for pid, srcs in paths.items()}


def _rekeyed_words(relabel: Relabel) -> list[str]:
    """The study's re-keyed labels, to redact from generated text as a safety net (short
    or numeric ones aside: they say nothing and would blank ordinary words and counts)."""
    return sorted({old for _, old in relabel.rekeyed() if len(old) >= 3 and not old.isdigit()})


def _minted_doi(ds: Path) -> str | None:
    """The DOI written into the release at HEAD by ``windl doi mint``, if any."""
    from windl.share.doi import doi_of

    text = datasets.git(ds, "cat-file", "blob", "HEAD:dataset_description.json", check=False)
    return doi_of(json.loads(text)) if text.strip() else None


def _study_readme(study: Study) -> str:
    """The study's README for the release README: only as the study lead approved it."""
    text = approved_readme(study)
    if text is None:
        return (
            "The study's description is withheld pending review by the study lead "
            f"(`windl release review {study.name}`): it is text written by people, and a "
            "release carries such text only as it was approved."
        )
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() or "(no description)"


def _changes(
    ctx: _Context,
    previous: Mapping[str, Any],
    tracked: set[str],
    outputs: Mapping[str, str],
    same_version: bool,
    date: str,
) -> str:
    """CHANGES with this version's entry on top (replacing it when rebuilt unpublished)."""
    old = datasets.git(ctx.ds, "cat-file", "blob", "HEAD:CHANGES", check=False)
    entries = re.split(r"\n(?=\d+\.\d+\.\d+ )", old.strip()) if old.strip() else []
    if same_version and entries and entries[0].startswith(ctx.version + " "):
        entries = entries[1:]
    data = set(outputs) - _generated_names()
    before = {n for n in tracked if n not in _generated_names()}
    labels = set(ctx.labels.values())
    earlier = ctx.released_before if entries else set()
    lines = [f"{ctx.version} {date}"]
    if not entries:
        lines.append(
            f"  - First release: {len(labels)} participants, {len(ctx.sessions)} sessions."
        )
    else:
        added = sorted(labels - earlier)
        gone = sorted(earlier - labels)
        if added:
            lines.append(f"  - Participants added: {', '.join(added)}.")
        if gone:
            lines.append(
                "  - Participants removed (consent withdrawn or no longer given): "
                f"{', '.join(gone)}."
            )
        new_files = len(data - before)
        dropped = len(before - data)
        if new_files or dropped:
            lines.append(f"  - Files added: {new_files}; removed: {dropped}.")
        if len(lines) == 1:
            lines.append("  - Description files updated; data unchanged.")
    return "\n".join(["\n".join(lines), *entries]) + "\n"


def _released_labels(ds: Path) -> set[str]:
    text = datasets.git(ds, "cat-file", "blob", "HEAD:participants.tsv", check=False)
    rows = [line.split("\t") for line in text.splitlines()[1:] if line.strip()]
    return {r[0] for r in rows if r and r[0].startswith("sub-")}


def current_dua() -> tuple[str, str]:
    """(version, text) of the newest Data Usage Agreement in ``templates/dua/``."""
    versions = []
    for path in (TEMPLATES / "dua").glob("*.md"):
        try:
            versions.append((parse_version(path.stem + ".0" * (2 - path.stem.count("."))), path))
        except ReleaseRefused:
            continue
    if not versions:
        raise ConfigError("no Data Usage Agreement in templates/dua/", TEMPLATES / "dua")
    _, path = max(versions)
    return path.stem, path.read_text(encoding="utf-8")


__all__ = [
    "SCOPES",
    "ReleaseFilesFailed",
    "ReleaseRefused",
    "ReleaseResult",
    "ReleaseSettings",
    "assemble_release",
    "build_release",
    "current_dua",
    "release_path",
]
