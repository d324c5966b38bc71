"""The raw-data layout of a study: one DataLad subdataset per subject in ``sourcedata``.

A study's ``sourcedata`` is a DataLad dataset whose subjects are datasets of their own::

    sourcedata/                 dataset: README, .gitattributes, imported/, one gitlink a subject
      sub-<S>/                  dataset: the subject's raw data, as windl.ingest lays it out
        [ses-<X>/]dicom/…

Why: a centre's study grows to thousands of sessions and hundreds of thousands of DICOM
files. In one dataset every index write, ``git status`` and git-annex branch commit grows
with all of them (DataLad's ``status``/``save`` at ~0.12 ms per file, see
``docs/parallel-and-slurm.md``). With a dataset per subject (as the HCP and ABCD DataLad
releases do), ingesting session N+1 writes the subject's dataset (its own few sessions),
one gitlink in ``sourcedata`` (and ``.gitmodules`` at a subject's first ingest), one in
the study and one in the superdataset: a cost that does not grow with N.

Studies made before this layout hold their subjects as folders of the one ``sourcedata``
dataset. Every reader here works per subject on either form, new subjects of such a
study get datasets, and :func:`migrate` turns the folders into datasets.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from windl import datasets
from windl.checkpoints import checkpoint
from windl.config import TEMPLATES, Site
from windl.errors import WindlError
from windl.files import atomic_write_text
from windl.study import Study, copy_templates, get_study

#: subjects whose dataset has commits ``sourcedata`` may not have recorded yet
_UNRECORDED = datasets.WINDL_GITDIR / "unrecorded-subjects.json"
#: where :func:`migrate` builds a subject's dataset before it replaces the folder
_MIGRATING = datasets.WINDL_GITDIR / "migrate"
#: where a new subject's dataset is made, until it holds its first ingest
_NEW = datasets.WINDL_GITDIR / "new-subjects"


def subject_path(study: Study, subject: str) -> Path:
    """Folder of subject ``subject`` (a label without ``sub-``) in ``sourcedata``."""
    return study.sourcedata / f"sub-{subject}"


def _subjects(study: Study, rev: str = "HEAD") -> dict[str, tuple[str, str]]:
    """``sub-<S>`` entries of ``sourcedata`` at ``rev``: name → (``commit`` or ``tree``, id)."""
    found = {}
    for entry in datasets.git(study.sourcedata, "ls-tree", "-z", rev).split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            _, kind, obj = meta.split()
            if path.startswith("sub-"):
                found[path] = (kind, obj)
    return found


def subject_datasets(study: Study, rev: str = "HEAD") -> dict[str, str]:
    """Subject datasets ``sourcedata`` records at ``rev``: ``sub-<S>`` → commit."""
    return {name: obj for name, (kind, obj) in _subjects(study, rev).items() if kind == "commit"}


def _entry_kind(study: Study, subject: str) -> str | None:
    """``commit`` (a subject dataset), ``tree`` (a folder: old layout) or None."""
    out = datasets.git(study.sourcedata, "ls-tree", "HEAD", "--", f"sub-{subject}").split()
    return out[1] if out else None


def raw_files(study: Study) -> dict[str, str]:
    """Every committed file of ``sourcedata``, its subject datasets' included: path → blob.

    Paths are relative to ``sourcedata`` (``sub-01/ses-1/dicom/…`` in either layout); each
    subject dataset is read at the commit ``sourcedata`` records for it. Only git is read:
    no annexed content is needed.
    """
    files = {
        path: blob for _, kind, blob, path in datasets.ls_tree(study.sourcedata) if kind == "blob"
    }
    for name, commit in subject_datasets(study).items():
        files.update(
            (f"{name}/{path}", blob)
            for _, kind, blob, path in datasets.ls_tree(study.sourcedata / name, commit)
            if kind == "blob"
        )
    return files


def open_subject_dataset(study: Study, subject: str) -> Path:
    """The dataset an ingest of ``subject`` writes to.

    - the subject's dataset in ``sourcedata``, when it has one;
    - ``sourcedata`` itself, for a subject that is a folder of it (a study made before
      subject datasets; see :func:`migrate`);
    - for a new subject, a new dataset made aside, under ``sourcedata/.git/windl``:
      :func:`settle_subject_dataset` puts it in place once it holds the ingest's commit,
      so an ingest killed before that leaves ``sourcedata`` as it was.
    """
    path = subject_path(study, subject)
    kind = _entry_kind(study, subject)
    if kind == "tree":
        return study.sourcedata
    if kind == "commit":
        if not (path / ".git").exists():
            raise WindlError(
                f"the dataset of sub-{subject} is not installed; run: datalad get -n {path}",
                study.sourcedata,
            )
        return path
    if (path / ".datalad" / "config").exists():
        # put in place by an ingest killed before it was registered (and its journal
        # lost): it holds that ingest's commit, so it is recorded now
        mark_unrecorded(study, path)
        record_subjects(study, f"windl ingest: record earlier ingest of sub-{subject}")
        return path
    aside = study.sourcedata / _NEW / path.name
    if aside.exists():
        shutil.rmtree(aside)  # left by an ingest killed before its commit: holds nothing
    aside.parent.mkdir(parents=True, exist_ok=True)
    _create_subject_dataset(study, aside)
    return aside


def settle_subject_dataset(study: Study, ds: Path) -> None:
    """Put a new subject dataset made aside (:func:`open_subject_dataset`) in its place.

    It is moved in one rename; recording it in ``sourcedata`` follows and, if that is
    interrupted, the next ingest does it (:func:`record_subjects`).
    """
    if ds.parent != study.sourcedata / _NEW:
        return
    final = study.sourcedata / ds.name
    if final.exists():
        raise WindlError(f"{final.name} appeared while windl was writing to it; run again", final)
    mark_unrecorded(study, final)
    datasets.require_clean(study.sourcedata, [".gitmodules"])
    os.replace(ds, final)


def _create_subject_dataset(study: Study, path: Path) -> None:
    datasets.init_dataset(path, f"{study.name} raw data of {path.name}")
    copy_templates(TEMPLATES / "sourcedata-subject", path, {"name": study.name})
    datasets.git(path, "add", "--", ".gitattributes", "README")
    datasets.git(path, "commit", "--quiet", "--no-verify", "-m", f"windl: raw data of {path.name}")


# --------------------------------------------------------------------------- recording
def _unrecorded(study: Study) -> list[str]:
    journal = study.sourcedata / _UNRECORDED
    if not journal.exists():
        return []
    return list(json.loads(journal.read_text(encoding="utf-8")))


def mark_unrecorded(study: Study, subject_dataset: Path) -> None:
    """Note, before writing to ``subject_dataset``, that ``sourcedata`` must record it.

    An ingest killed after the subject's commit and before ``sourcedata`` recorded it (or,
    for a new subject, registered the dataset) is then rolled forward by the next ingest
    of any subject (:func:`record_subjects`), without looking at every subject dataset.
    """
    if subject_dataset == study.sourcedata:
        return
    names = sorted({*_unrecorded(study), subject_dataset.name})
    journal = study.sourcedata / _UNRECORDED
    journal.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(journal, json.dumps(names))


def record_subjects(study: Study, message: str) -> None:
    """Record in ``sourcedata`` the commits of the subject datasets written to lately."""
    names = _unrecorded(study)
    for name in names:
        path = study.sourcedata / name
        if not (path / ".git").exists():
            continue
        if _entry_kind(study, name.removeprefix("sub-")) == "commit":
            datasets.record_subdataset_state(study.sourcedata, path, message)
        else:
            datasets.register_subdataset(study.sourcedata, path, message)
    if names:
        (study.sourcedata / _UNRECORDED).unlink()


# --------------------------------------------------------------------------- migration
@dataclass
class Migration:
    """What :func:`migrate` did to a study."""

    study: str
    migrated: list[str] = field(default_factory=list)  # sub-<S> turned into datasets
    already: list[str] = field(default_factory=list)  # sub-<S> that were datasets already
    records_updated: list[str] = field(default_factory=list)  # code/conversion/*.json

    @property
    def changed(self) -> bool:
        return bool(self.migrated or self.records_updated)


def _legacy_subjects(study: Study) -> list[str]:
    return sorted(name for name, (kind, _) in _subjects(study).items() if kind == "tree")


def migrate(
    site: Site, study_name: str, progress: Callable[[str, int, int], None] | None = None
) -> Migration:
    """Turn the subject folders of an old-layout ``sourcedata`` into subject datasets.

    Per subject, in one commit of ``sourcedata``: a new dataset holding exactly the
    folder's files (same paths inside the subject, same git-annex keys; the content is
    hard-linked from ``sourcedata``'s annex, so nothing is copied) replaces the folder.
    Conversion inputs (``sourcedata/sub-S/…``) keep their paths, so run records and
    ``datalad rerun`` keep working. The conversion records of ``code/conversion/``
    fingerprint their raw input by git tree id, which changes with the move (annex links
    are relative, one folder shorter now) although the files do not: a record that was up
    to date is pointed at the new tree (one study commit), so no session is converted
    again; a stale one stays stale.

    Interrupted, it is run again: a subject's new dataset is built aside (under
    ``sourcedata/.git/windl/migrate``) and swapped in for the folder just before the
    commit; a swap without its commit is undone first.
    """
    study = get_study(site, study_name)
    result = Migration(study.name)
    _recover_migration(study)
    datasets.recover(study.sourcedata)
    datasets.require_clean(study.sourcedata)
    before = _fingerprints(study)
    subjects = _legacy_subjects(study)
    result.already = sorted(subject_datasets(study))
    for done, subject in enumerate(subjects, 1):
        _migrate_subject(study, subject)
        result.migrated.append(subject)
        if progress:
            progress("migrating", done, len(subjects))
    shutil.rmtree(study.sourcedata / _MIGRATING, ignore_errors=True)
    message = f"windl study migrate: {len(subjects)} subjects' raw data in subject datasets"
    datasets.record_subdataset_state(study.root, study.sourcedata, message)
    result.records_updated = _update_conversion_records(study, before)
    if result.records_updated:
        datasets.git(study.root, "add", "--", *result.records_updated)
        datasets.git(
            study.root, "commit", "--quiet", "--no-verify", "-m",
            "windl study migrate: conversion records fingerprint the subject datasets",
            "--", *result.records_updated,
        )  # fmt: skip
    datasets.record_subdataset_state(site.superdataset, study.root, message)
    return result


def _recover_migration(study: Study) -> None:
    """Undo a folder-to-dataset swap whose commit an interrupted :func:`migrate` never made."""
    scratch = study.sourcedata / _MIGRATING
    for trash in sorted(scratch.glob("*.old")):
        name = trash.name.removesuffix(".old")
        folder = study.sourcedata / name
        if _entry_kind(study, name.removeprefix("sub-")) == "tree":
            if (folder / ".git").exists():
                shutil.rmtree(folder)
            datasets.git(study.sourcedata, "reset", "-q", "--", name, ".gitmodules", check=False)
            datasets.git(study.sourcedata, "checkout", "-q", "--", ".gitmodules", check=False)
            if not folder.exists():
                os.replace(trash, folder)
        shutil.rmtree(trash, ignore_errors=True)


def _migrate_subject(study: Study, subject: str) -> None:
    sourcedata = study.sourcedata
    built = sourcedata / _MIGRATING / subject
    if built.exists():
        shutil.rmtree(built)
    built.parent.mkdir(parents=True, exist_ok=True)
    _create_subject_dataset(study, built)
    files = {
        path.removeprefix(f"{subject}/"): (mode, blob)
        for mode, _, blob, path in datasets.ls_tree(sourcedata, "HEAD", subject)
    }
    links = {rel: blob for rel, (mode, blob) in files.items() if mode == "120000"}
    keys = dict(
        zip(links, datasets.annex_keys_of_links(sourcedata, list(links.values())), strict=True)
    )
    datasets.place_annexed(built, keys, sourcedata)
    in_git = {rel: blob for rel, (mode, blob) in files.items() if mode != "120000"}
    for rel, blob in in_git.items():
        target = built / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(datasets.git_bytes(sourcedata, "cat-file", "blob", blob))
    if in_git:
        datasets.git(built, "add", "--", *in_git)
    datasets.git(
        built, "commit", "--quiet", "--no-verify", "-m",
        f"windl study migrate: raw data of {subject} from the study's sourcedata",
    )  # fmt: skip
    checkpoint("migrate-built")
    # the folder goes and the dataset takes its place in one rename each; the commit that
    # records it follows (a crash in between is undone by _recover_migration)
    trash = sourcedata / _MIGRATING / f"{subject}.old"
    os.replace(sourcedata / subject, trash)
    os.replace(built, sourcedata / subject)
    checkpoint("migrate-swapped")
    datasets.git(sourcedata, "rm", "-r", "-q", "--cached", "--", subject)
    datasets.register_subdataset(
        sourcedata, sourcedata / subject, f"windl study migrate: {subject} is a subject dataset"
    )
    shutil.rmtree(trash, ignore_errors=True)


_Fingerprint = Callable[[Path, str], "str | None"]


def _record_sources(record: dict) -> dict[str, str]:
    """Record key (``source_tree`` or ``source_trees/<kind>``) → the raw path it fingerprints."""
    source = record.get("source")
    if not isinstance(source, str):
        return {}
    keys = {"source_tree": source} if record.get("source_tree") else {}
    for kind, tree in (record.get("source_trees") or {}).items():
        if tree:
            keys[f"source_trees/{kind}"] = f"{source}/{kind}"
    return keys


def _fingerprints(study: Study) -> dict[str, dict[str, str | None]]:
    """Per conversion record file: each fingerprinted raw path's tree id now."""
    from windl.convert.finalize import source_fingerprint

    found = {}
    for path in sorted(study.conversion_records.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        found[path.name] = {
            key: source_fingerprint(study.root, source)
            for key, source in _record_sources(record).items()
        }
    return found


def _update_conversion_records(study: Study, before: dict[str, dict[str, str | None]]) -> list[str]:
    """Re-fingerprint the records that were up to date before the migration."""
    from windl.convert.finalize import source_fingerprint, write_record_json

    changed = []
    for path in sorted(study.conversion_records.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        updated = json.loads(json.dumps(record))
        for key, source in _record_sources(record).items():
            top, _, kind = key.partition("/")
            stored = record[top][kind] if kind else record[top]
            if stored != before.get(path.name, {}).get(key):
                continue  # stale before the move: it stays stale
            new = source_fingerprint(study.root, source)
            if kind:
                updated[top][kind] = new
            else:
                updated[top] = new
        if updated != record:
            write_record_json(path, updated)
            changed.append(path.relative_to(study.root).as_posix())
    return changed
