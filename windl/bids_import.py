"""Import a dataset that is already BIDS into a study (``windl import``).

The rules:

- The input is validated first with the official validator; any error refuses the whole
  import (one line listing the error codes) before anything is written.
- Files land in the study byte for byte, in one atomic commit
  (:func:`windl.datasets.commit_files`); the study's ``.gitattributes`` decides git or annex.
- The study's top-level description files (:data:`TOP_LEVEL`) are replaced by the imported
  ones while they are still as the study template made them. Once changed (by convert, an
  earlier import, or a person), ``participants.tsv`` is merged row by row and
  ``participants.json`` key by key, and the study's own ``dataset_description.json``,
  ``README`` and ``CHANGES`` are kept (the result lists them).
- Any other path that the study already holds with different content is refused
  (:class:`~windl.errors.ConflictingInput`); identical files are skipped, so importing the
  same folder again makes no commit.
- ``sourcedata/`` of the input goes into the study's ``sourcedata`` subdataset under
  ``imported/`` (raw data stays in the subdataset that never leaves the centre), committed
  the same atomic way before the study commit. ``restricted/`` and any other path inside a
  subdataset of the study are refused.
- Hidden files and folders (``.git``, ``.datalad``, ``.heudiconv``, ...) are not imported:
  the validator ignores them and they may hold identifying data (heudiconv's DICOM dumps).
  ``.bidsignore`` files are the exception: the top-level one's lines are added to the
  study's, nested ones (e.g. in a derivative dataset) are imported as they are.

The helpers in the last part of this module (listing input files, comparing them with
a dataset's HEAD, reading TSV, committing into a study) are shared with :mod:`windl.add`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from windl import datasets
from windl.checkpoints import checkpoint
from windl.config import Site
from windl.errors import BadInput, ConflictingInput
from windl.study import Study, get_study
from windl.validate import run_validator, summarize

#: study files that describe the dataset as a whole; see the module docstring
TOP_LEVEL = (
    "dataset_description.json",
    "CHANGES",
    "participants.tsv",
    "participants.json",
)
#: the names BIDS allows for the one README of a dataset (two of them: MULTIPLE_README_FILES)
README_NAMES = ("README", "README.md", "README.rst", "README.txt")
PARTICIPANTS = "participants.tsv"
BIDSIGNORE = ".bidsignore"
#: where the input's ``sourcedata/`` goes inside the study's sourcedata subdataset
IMPORTED_SOURCEDATA = "imported"
#: at most this many error codes are listed in the one-line refusal
_MAX_CODES = 8


@dataclass
class ImportResult:
    """What ``windl import`` did (paths relative to the study, or to its sourcedata)."""

    study: str
    source: str
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # top-level files taken from the import
    merged: list[str] = field(default_factory=list)  # participants.tsv/json merged
    kept: list[str] = field(default_factory=list)  # study's own top-level files kept
    removed: list[str] = field(default_factory=list)  # template files another name replaced
    participants_added: list[str] = field(default_factory=list)  # rows made from folders
    unchanged: int = 0
    sourcedata: list[str] = field(default_factory=list)  # written into sourcedata/imported
    skipped: list[str] = field(default_factory=list)  # hidden input paths, not imported
    validator_warnings: int = 0
    commit: str | None = None
    sourcedata_commit: str | None = None

    @property
    def changed(self) -> bool:
        return self.commit is not None or self.sourcedata_commit is not None


def import_bids(site: Site, study_name: str, bids_dir: Path) -> ImportResult:
    """Import the BIDS dataset ``bids_dir`` into study ``study_name``.

    Parameters
    ----------
    site
        The site that holds the study.
    study_name
        Name of an existing study.
    bids_dir
        Folder with a valid BIDS dataset (a DataLad dataset works too; its annexed
        content must be present).

    Returns
    -------
    ImportResult
        What was written; ``commit`` is ``None`` when everything was already there.

    Raises
    ------
    BadInput
        ``bids_dir`` is missing, not valid BIDS, or holds unreadable files.
    ConflictingInput
        A file would overwrite different content in the study, or land in ``restricted``.
    DatasetDirty
        The study has uncommitted changes.
    """
    study = get_study(site, study_name)
    source = Path(bids_dir)
    if not source.exists():
        raise BadInput("no such folder", source)
    if not source.is_dir():
        raise BadInput("not a folder (windl import takes a BIDS dataset folder)", source)
    root = source.resolve()
    if root == study.root or study.root in root.parents or root in study.root.parents:
        raise BadInput(f"overlaps with the study {study.name} itself", source)
    # before the validator reads anything: a link out of the input is refused unread
    files, skipped = list_files(root)
    prepare_study(site, study)

    output = run_validator(root, site.setting("validate", "extra_args", []))
    errors, warnings, _ = summarize(output)
    if errors:
        codes = [f"{code} x {n}" for code, n in errors.most_common()]
        listed = ", ".join(codes[:_MAX_CODES]) + (", ..." if len(codes) > _MAX_CODES else "")
        raise BadInput(f"not valid BIDS: {sum(errors.values())} errors ({listed})", source)

    result = ImportResult(
        study=study.name, source=str(root), validator_warnings=sum(warnings.values())
    )
    result.skipped = skipped
    files.pop(BIDSIGNORE, None)  # merged below
    into_study, into_sourcedata = _route(study, files)
    top = {rel: into_study.pop(rel) for rel in TOP_LEVEL if rel in into_study}
    readme = next(((n, into_study.pop(n)) for n in README_NAMES if n in into_study), None)

    with scratch_dir(study.root) as scratch:
        writes, unchanged = plan_writes(study.root, into_study)
        result.unchanged = len(unchanged)
        result.added = sorted(writes)
        if readme is not None:
            top.update(_readme(study, *readme, result))
        for rel, path in sorted(top.items()):
            action, written = _top_level_file(study, rel, path, scratch)
            if action == "kept":
                result.kept.append(rel)
            elif action == "unchanged":
                result.unchanged += 1
            else:
                getattr(result, action).append(rel)
                writes[rel] = written
        table = _completed_participants(study.root, writes, into_study, scratch, result)
        if table is not None:
            writes[PARTICIPANTS] = table
        ignore = _merged_bidsignore(study.root, root / BIDSIGNORE, scratch)
        if ignore is not None:
            writes[BIDSIGNORE] = ignore
            result.merged.append(BIDSIGNORE)

        source_writes: dict[str, Path] = {}
        if into_sourcedata:
            datasets.recover(study.sourcedata)
            datasets.require_clean(study.sourcedata)
            source_writes, same = plan_writes(study.sourcedata, into_sourcedata)
            result.unchanged += len(same)
            result.sourcedata = sorted(source_writes)

        message = f"windl import: {len(writes) + len(source_writes)} files from {root.name}"
        if source_writes:
            result.sourcedata_commit = datasets.commit_files(
                study.sourcedata, source_writes, message
            )
            checkpoint("imported-sourcedata")
            datasets.record_subdataset_state(study.root, study.sourcedata, message)
        if writes:
            result.commit = datasets.commit_files(
                study.root, writes, message, remove=result.removed
            )
            checkpoint("study-committed")
    datasets.record_subdataset_state(site.superdataset, study.root, message)
    return result


def _route(study: Study, files: Mapping[str, Path]) -> tuple[dict[str, Path], dict[str, Path]]:
    """Split input files into (study path → file, sourcedata path → file)."""
    into_study: dict[str, Path] = {}
    into_sourcedata: dict[str, Path] = {}
    subdatasets = {
        p.relative_to(study.root).as_posix(): p for p in datasets.subdatasets(study.root)
    }
    for rel, path in files.items():
        top, _, rest = rel.partition("/")
        if top == "sourcedata" and rest:
            into_sourcedata[f"{IMPORTED_SOURCEDATA}/{rest}"] = path
            continue
        inside = next((s for s in subdatasets if rel == s or rel.startswith(s + "/")), None)
        if inside is not None:
            raise ConflictingInput(
                f"{rel} would land in the study's {inside} subdataset, which windl keeps "
                "for its own records; move it out of the BIDS folder",
                path,
            )
        into_study[rel] = path
    return into_study, into_sourcedata


def _top_level_file(study: Study, rel: str, path: Path, scratch: Path) -> tuple[str, Path]:
    """Decide what happens to an imported top-level file.

    Returns (action, file to write); action is ``added``, ``replaced``, ``merged``,
    ``kept`` or ``unchanged`` (the last two write nothing).
    """
    _, unchanged = plan_writes(study.root, {rel: path}, replace=[rel])
    if unchanged:
        return "unchanged", path
    if rel not in tracked_files(study.root):
        return "added", path
    if _as_created(study.root, rel):
        return "replaced", path
    if rel == "participants.tsv":
        merged = merge_participants(study.root / rel, path)
    elif rel == "participants.json":
        merged = _merge_json(study.root / rel, path)
    else:
        return "kept", path
    if merged is None:
        return "unchanged", path
    target = scratch / rel
    target.write_text(merged, encoding="utf-8")
    return "merged", target


def _readme(study: Study, rel: str, path: Path, result: ImportResult) -> dict[str, Path]:
    """The imported README as a top-level file; {} when the study keeps its own.

    A dataset has one README whatever its extension. When the study's is another name
    (the template's ``README`` against an imported ``README.md``), the imported one takes
    its place only while the study's is as the template made it; the template file is
    then removed in the same commit, so the study never holds two.
    """
    tracked = tracked_files(study.root)
    own = [n for n in README_NAMES if n in tracked and n != rel]
    if not own:
        return {rel: path}
    if all(_as_created(study.root, n) for n in own):
        result.removed.extend(own)
        return {rel: path}
    result.kept.extend(own)
    return {}


def _completed_participants(
    ds: Path,
    writes: Mapping[str, Path],
    imported: Mapping[str, Path],
    scratch: Path,
    result: ImportResult,
) -> Path | None:
    """``participants.tsv`` with a row for every participant folder (None: it has them).

    An imported dataset need not have a participants table (BIDS recommends it), but a
    table that misses a folder is invalid (PARTICIPANT_ID_MISMATCH): the study's table
    (as written by this import, or as it stands) gets a row for each folder it lacks,
    every other column ``n/a``.
    """
    current = writes.get(PARTICIPANTS) or (ds / PARTICIPANTS)
    if not current.is_file():
        return None
    columns, rows = read_tsv(current)
    if "participant_id" not in columns:
        raise BadInput("participants.tsv has no participant_id column", current)
    paths = [*imported, *tracked_files(ds)]
    folders = {rel.split("/", 1)[0] for rel in paths if rel.startswith("sub-") and "/" in rel}
    missing = sorted(folders - {r["participant_id"] for r in rows})
    if not missing:
        return None
    rows += [{c: pid if c == "participant_id" else "n/a" for c in columns} for pid in missing]
    rows.sort(key=lambda r: r["participant_id"])
    lines = ["\t".join(columns), *("\t".join(r[c] for c in columns) for r in rows)]
    target = scratch / PARTICIPANTS
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result.participants_added = missing
    if PARTICIPANTS not in result.merged + result.replaced + result.added:
        result.merged.append(PARTICIPANTS)
    return target


def _as_created(ds: Path, rel: str) -> bool:
    """True if ``rel`` was never changed after the commit that added it (a template)."""
    return datasets.git(ds, "rev-list", "--count", "HEAD", "--", rel).strip() == "1"


def merge_participants(study_file: Path, imported_file: Path) -> str | None:
    """The union of two ``participants.tsv`` tables, one row per participant_id.

    Columns of the study come first; a value ``n/a`` is filled from the other table;
    two different values for the same participant and column are a conflict. Returns
    ``None`` when the imported table adds nothing to the study's.
    """
    columns, rows = read_tsv(study_file)
    new_columns, new_rows = read_tsv(imported_file)
    for name, cols in ((study_file, columns), (imported_file, new_columns)):
        if "participant_id" not in cols:
            raise BadInput("participants.tsv has no participant_id column", name)
    before = (list(columns), rows)
    columns += [c for c in new_columns if c not in columns]
    merged = {r["participant_id"]: {c: r.get(c, "n/a") for c in columns} for r in rows}
    for row in new_rows:
        pid = row["participant_id"]
        known = merged.setdefault(pid, {c: "n/a" for c in columns})
        for column, value in row.items():
            old = known.get(column, "n/a")
            if old in ("n/a", ""):
                known[column] = value
            elif value not in ("n/a", "", old):
                raise ConflictingInput(
                    f"participants.tsv: {pid} has {column}={old!r} in the study "
                    f"but {value!r} in the import",
                    imported_file,
                )
    if (columns, list(merged.values())) == before:
        return None
    lines = ["\t".join(columns)]
    lines += ["\t".join(merged[pid][c] for c in columns) for pid in sorted(merged)]
    return "\n".join(lines) + "\n"


def _merge_json(study_file: Path, imported_file: Path) -> str | None:
    """Study's keys kept; keys only the imported file has are added (None: none)."""
    merged = _read_json(study_file)
    new = {k: v for k, v in _read_json(imported_file).items() if k not in merged}
    if not new:
        return None
    merged.update(new)
    return json.dumps(merged, indent=2, ensure_ascii=False) + "\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"not valid JSON: {exc}", path) from None
    if not isinstance(value, dict):
        raise BadInput("not a JSON object", path)
    return value


def _merged_bidsignore(ds: Path, imported: Path, scratch: Path) -> Path | None:
    """The study's ``.bidsignore`` plus the imported lines it lacks (None: no change)."""
    if not imported.is_file():
        return None
    return bidsignore_with(ds, imported.read_text(encoding="utf-8").splitlines(), scratch)


# ----------------------------------------------------------------------------- shared helpers
def bidsignore_with(ds: Path, patterns: list[str], scratch: Path) -> Path | None:
    """A new ``.bidsignore`` for ``ds`` with ``patterns`` added (None if all are there)."""
    current = ds / BIDSIGNORE
    text = current.read_text(encoding="utf-8") if current.is_file() else ""
    have = {line.strip().strip("/") for line in text.splitlines()}
    missing = [p.strip() for p in patterns if p.strip() and p.strip().strip("/") not in have]
    if not missing:
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    target = scratch / BIDSIGNORE
    target.write_text(text + "".join(f"{p}\n" for p in dict.fromkeys(missing)), encoding="utf-8")
    return target


def prepare_study(site: Site, study: Study) -> None:
    """Make ``study`` ready for a write: finish interrupted work, require a clean tree."""
    datasets.recover(study.root)
    # roll forward a write killed between a subdataset commit and recording it upwards
    # (only then: a subdataset with uncommitted files is refused by require_clean below)
    for parent, sub in ((study.root, study.sourcedata), (site.superdataset, study.root)):
        recorded = datasets.tree_id(parent, os.path.relpath(sub, parent))
        if recorded is not None and recorded != datasets.head(sub):
            datasets.record_subdataset_state(parent, sub, f"windl: record {sub.name}")
    datasets.require_clean(study.root)
    checkpoint("study-prepared")


@contextmanager
def scratch_dir(ds: Path) -> Iterator[Path]:
    """A private folder inside ``ds``'s git dir for generated files; removed afterwards."""
    path = ds / datasets.WINDL_GITDIR / "scratch" / uuid.uuid4().hex
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def link_target(link: Path, shown: Path | str) -> Path:
    """Where the symbolic link ``link`` ends (following every link on the way).

    Raises
    ------
    BadInput
        The link loops or points to nothing (named as ``shown``).
    """
    try:
        return link.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a loop so; 3.13 as OSError(ELOOP)
        raise BadInput("symbolic link loop", shown) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput("symbolic link loop", shown) from None
        raise BadInput(
            "dangling symbolic link (annexed content not here? 'datalad get' it)", shown
        ) from None


def require_inside(link: Path, target: Path, root: Path, shown: Path | str) -> None:
    """Refuse a link whose ``target`` is outside ``root`` (e.g. to ``/etc/shadow``).

    A link would otherwise commit the content of whatever it points to, anywhere on the
    machine; an annexed file of a DataLad dataset points into the dataset's own
    ``.git/annex/objects`` and stays inside.
    """
    if not target.is_relative_to(root):
        raise BadInput(
            f"symbolic link to {target}, outside {root}; links must stay inside the input",
            shown,
        )


def _require_utf8(rel: str, root: Path) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
        raise BadInput(f"{shown}: file name is not UTF-8; rename it", root) from None


def list_files(root: Path) -> tuple[dict[str, Path], list[str]]:
    """Regular files under ``root`` (POSIX relative path → file), and hidden paths skipped.

    Hidden files and folders are skipped, except ``.bidsignore`` files. Symbolic links to
    files inside ``root`` are followed (annexed files of a DataLad dataset); links that
    leave ``root``, loop or dangle, links to folders and names that are not UTF-8 are
    refused.
    """
    files: dict[str, Path] = {}
    skipped: list[str] = []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = PurePosixPath(here.relative_to(root).as_posix())
        for name in sorted(dirnames):
            if name.startswith("."):
                skipped.append(str(rel_dir / name) + "/")
                dirnames.remove(name)
            elif (here / name).is_symlink():
                raise BadInput("symbolic link to a folder (not followed)", here / name)
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            rel = str(rel_dir / name)
            if name.startswith(".") and name != BIDSIGNORE:
                skipped.append(rel)
                continue
            _require_utf8(rel, root)
            if "\n" in rel:
                raise BadInput("file name with a line break", path)
            if path.is_symlink():
                require_inside(path, link_target(path, path), real_root, path)
            if not path.is_file():
                raise BadInput("not a regular file", path)
            files[rel] = path
    return files, skipped


def tracked_files(ds: Path) -> dict[str, tuple[str, str]]:
    """Every path in ``ds``'s HEAD → (mode, object id); subdatasets have mode 160000."""
    out = datasets.git(ds, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    entries: dict[str, tuple[str, str]] = {}
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, _kind, obj = meta.split()
            entries[path] = (mode, obj)
    return entries


def plan_writes(
    ds: Path, files: Mapping[str, Path], replace: Collection[str] = ()
) -> tuple[dict[str, Path], list[str]]:
    """Split ``files`` (dataset path → source) into those to write and those already there.

    A path that ``ds`` holds with the same content (in git or in the annex) is unchanged.
    One with other content is written only if listed in ``replace``; otherwise, and for
    paths that clash with a file, folder or subdataset of ``ds``, nothing is written and
    :class:`ConflictingInput` names the first such path.
    """
    tracked = tracked_files(ds)
    folders = {str(p) for path in tracked for p in PurePosixPath(path).parents}
    writes: dict[str, Path] = {}
    existing: dict[str, Path] = {}
    for rel, given in sorted(files.items()):
        source = Path(os.path.abspath(given))  # git runs in ds; relative paths would break
        parent = next((str(p) for p in PurePosixPath(rel).parents if str(p) in tracked), None)
        if parent is not None:
            kind = "subdataset" if tracked[parent][0] == "160000" else "file"
            raise ConflictingInput(f"{rel}: {parent} is a {kind} in {ds.name}", source)
        if rel in folders or tracked.get(rel, ("",))[0] == "160000":
            raise ConflictingInput(f"{rel} is a folder in {ds.name}", source)
        if rel in tracked:
            existing[rel] = source
        else:
            writes[rel] = source
    same = _same_content(ds, tracked, existing)
    unchanged: list[str] = []
    for rel, source in existing.items():
        if same[rel]:
            unchanged.append(rel)
        elif rel in replace:
            writes[rel] = source
        else:
            raise ConflictingInput(f"{rel} is already in {ds.name} with different content", source)
    return writes, unchanged


def _same_content(
    ds: Path, tracked: Mapping[str, tuple[str, str]], files: Mapping[str, Path]
) -> dict[str, bool]:
    """For tracked paths: does the committed content equal the source file's bytes?"""
    in_git = [rel for rel in files if tracked[rel][0] != "120000"]
    links = [rel for rel in files if tracked[rel][0] == "120000"]
    same: dict[str, bool] = {}
    if in_git:
        sources = "".join(f"{files[rel]}\n" for rel in in_git)
        ids = datasets.git(ds, "hash-object", "--no-filters", "--stdin-paths", input_text=sources)
        for rel, obj in zip(in_git, ids.split(), strict=True):
            same[rel] = obj == tracked[rel][1]
    keys = datasets.annex_keys_of_links(ds, [tracked[rel][1] for rel in links])
    for rel, key in zip(links, keys, strict=True):
        same[rel] = _matches_key(key, files[rel])
    return same


def _matches_key(key: str, path: Path) -> bool:
    """Whether ``path`` has the content named by git-annex ``key`` (hash backends only)."""
    identity = datasets.annex_key_identity(key)
    if identity is None or identity[1] != path.stat().st_size:
        return False
    algorithm, _size, digest = identity
    return datasets.file_digest(path, algorithm) == digest


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of a TSV file; :class:`BadInput` naming the file if it is not TSV.

    A BOM and CRLF line ends are tolerated; a header with empty or repeated column names,
    empty lines inside the table and rows with another number of fields than the header
    (ragged rows) are not.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"not a valid TSV: not UTF-8 text ({exc.reason})", path) from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise BadInput("not a valid TSV: the file is empty", path)
    columns = lines[0].split("\t")
    if any(not c.strip() for c in columns):
        raise BadInput("not a valid TSV: empty column name in the header", path)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise BadInput(f"not a valid TSV: column {repeated[0]!r} appears twice", path)
    rows: list[dict[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise BadInput(
                f"not a valid TSV: line {number} has {len(fields)} fields, "
                f"the header has {len(columns)}",
                path,
            )
        rows.append(dict(zip(columns, fields, strict=True)))
    return columns, rows


def commit_to_study(
    site: Site, study: Study, files: Mapping[str, Path], message: str
) -> str | None:
    """Commit ``files`` into the study atomically and record it in the superdataset."""
    commit = datasets.commit_files(study.root, files, message) if files else None
    checkpoint("study-committed")
    datasets.record_subdataset_state(site.superdataset, study.root, message)
    return commit
