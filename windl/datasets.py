"""The one place where windl talks to DataLad, git and git-annex.

Everything that changes a dataset goes through here, so the rules that keep data safe
(atomic commits, clean-tree checks, recovery of interrupted work) live in one module.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import chdir, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from windl.checkpoints import checkpoint
from windl.config import PROCEDURES
from windl.errors import DatasetDirty, ToolMissing, WindlError
from windl.locks import superdataset_lock_for

#: where windl keeps its own scratch state inside a dataset's git dir (never tracked)
WINDL_GITDIR = Path(".git") / "windl"
_TXN_DIR = WINDL_GITDIR / "txn"

# Quiet, non-interactive DataLad; our CLI prints its own summaries.
os.environ.setdefault("DATALAD_LOG_LEVEL", "WARNING")
os.environ.setdefault("DATALAD_UI_PROGRESSBAR", "none")


#: author and committer of every commit, tag, note and git-annex branch entry of a release
#: dataset: windl itself, never the operator's git identity (the history is published)
NEUTRAL_IDENTITY: Mapping[str, str] = {
    "GIT_AUTHOR_NAME": "windl",
    "GIT_AUTHOR_EMAIL": "windl@localhost",
    "GIT_COMMITTER_NAME": "windl",
    "GIT_COMMITTER_EMAIL": "windl@localhost",
}
#: marks a dataset whose git calls all run as :data:`NEUTRAL_IDENTITY` (in its git dir)
_NEUTRAL_MARK = WINDL_GITDIR / "neutral-identity"


def mark_neutral_identity(ds: Path) -> None:
    """Make every later git and DataLad call of windl on ``ds`` use :data:`NEUTRAL_IDENTITY`."""
    (ds / _NEUTRAL_MARK).parent.mkdir(parents=True, exist_ok=True)
    (ds / _NEUTRAL_MARK).write_text("release dataset: commits by windl only\n")


def neutral_identity_of(path: Path | str | None) -> bool:
    """Whether ``path`` lies in a dataset marked by :func:`mark_neutral_identity` (or one of
    its scratch worktrees below its git dir)."""
    if path is None:
        return False
    here = Path(path).absolute()
    for folder in (here, *here.parents):
        if (folder / _NEUTRAL_MARK).is_file():
            return True
        if (folder / ".git").is_dir():
            return False  # the dataset it lies in is not marked
    return False


def _identity_env(path: Path | str | None) -> dict[str, str]:
    return dict(NEUTRAL_IDENTITY) if neutral_identity_of(path) else {}


@contextmanager
def neutral_environ(active: bool = True) -> Iterator[None]:
    """Run the block (and the programs it starts) as :data:`NEUTRAL_IDENTITY` when ``active``."""
    saved = {k: os.environ.get(k) for k in NEUTRAL_IDENTITY}
    if active:
        os.environ.update(NEUTRAL_IDENTITY)
    try:
        yield
    finally:
        if active:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def tool_env() -> dict[str, str]:
    """Environment for child processes: this interpreter's bin dir first on PATH.

    The virtualenv's ``heudiconv``, ``dcm2niix`` and ``bids-validator-deno`` must be found
    even when windl was started as ``.venv/bin/windl`` without activating the venv.
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        env["PATH"] = os.pathsep.join([bindir, path])
    env["DATALAD_LOCATIONS_EXTRA__PROCEDURES"] = str(PROCEDURES)
    env.setdefault("DATALAD_LOG_LEVEL", "WARNING")
    env["NO_COLOR"] = "1"
    env.setdefault("NO_ET", "1")  # heudiconv/nipype: no version check over the network
    return env


def _apply_tool_env() -> None:
    # DataLad's Python API runs procedures and ``run`` commands with os.environ.
    os.environ.update(tool_env())


def require_tool(name: str) -> str:
    """Return the path of an external program, or raise :class:`ToolMissing`."""
    found = shutil.which(name, path=tool_env()["PATH"])
    if found is None:
        raise ToolMissing(f"required program '{name}' is not installed (run 'make setup')")
    return found


def run_tool(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    check: bool = True,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an external program with :func:`tool_env` (plus ``env``), capturing text output."""
    require_tool(str(args[0]))
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**tool_env(), **(env or {})},
        capture_output=True,
        text=True,
        input=input_text,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise WindlError(
            f"{Path(str(args[0])).name} {' '.join(map(str, args[1:3]))} failed: "
            f"{detail[-1] if detail else f'exit {proc.returncode}'}"
        )
    return proc


def git(
    ds: Path,
    *args: str,
    check: bool = True,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``git -C ds ARGS`` and return stdout (as windl, in a release dataset)."""
    return run_tool(
        ["git", "-C", str(ds), *args],
        check=check,
        input_text=input_text,
        env={**_identity_env(ds), **(env or {})},
    ).stdout


# --------------------------------------------------------------------------- DataLad API
def _datalad() -> Any:
    _apply_tool_env()
    import datalad.api as dl  # imported lazily: it takes ~1 s

    return dl


def import_datalad() -> None:
    """Import DataLad's API now (it takes ~1 s), e.g. before forking workers that use it."""
    _datalad()


def _call(func: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Call a DataLad command; turn failed results into one :class:`WindlError`."""
    kwargs.setdefault("result_renderer", "disabled")
    kwargs.setdefault("return_type", "list")
    kwargs.setdefault("on_failure", "ignore")
    kwargs.setdefault("result_xfm", None)
    neutral = neutral_identity_of(kwargs.get("dataset")) or neutral_identity_of(
        kwargs.get("path") if isinstance(kwargs.get("path"), str) else None
    )
    with neutral_environ(neutral):
        results: list[dict[str, Any]] = func(**kwargs)
    failed = [r for r in results if r.get("status") in ("error", "impossible")]
    if failed:
        first = failed[0]
        message = first.get("message", "")
        if isinstance(message, tuple):
            message = message[0] % message[1:]
        raise WindlError(f"datalad {first.get('action')} failed: {message}", first.get("path"))
    return results


def create_dataset(
    path: Path,
    parent: Path | None = None,
    procedures: Sequence[str] = (),
    description: str | None = None,
    neutral_identity: bool = False,
) -> None:
    """Create a DataLad dataset, registered as subdataset of ``parent`` if given.

    With ``neutral_identity`` (release datasets) it is created, and every later call of
    windl on it runs, as :data:`NEUTRAL_IDENTITY`.
    """
    dl = _datalad()
    with (
        superdataset_lock_for(parent) if parent else nullcontext(),
        neutral_environ(neutral_identity),
    ):
        _call(
            dl.create,
            path=str(path),
            dataset=str(parent) if parent else None,
            cfg_proc=list(procedures) or None,
            description=description,
        )
    if neutral_identity:
        mark_neutral_identity(path)


def init_dataset(path: Path, description: str) -> None:
    """A new, standalone DataLad dataset at ``path``, written with git and git-annex.

    The same repository ``datalad create`` makes (annex initialised with ``description``,
    a new ``datalad.dataset.id`` in ``.datalad/config``, DataLad's ``.gitattributes``:
    MD5E keys, ``.git*`` and ``.datalad/config`` in git; one commit "[DATALAD] new
    dataset"), without importing DataLad: import and create cost ~1.5 s here, which was
    most of the ingest of a new subject, whose raw data gets a dataset of its own.
    """
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet")
    git(path, "annex", "init", "--quiet", description)
    files = {
        ".datalad/config": f'[datalad "dataset"]\n\tid = {uuid.uuid4()}\n',
        ".datalad/.gitattributes": "config annex.largefiles=nothing\n",
        ".gitattributes": "* annex.backend=MD5E\n**/.git* annex.largefiles=nothing\n",
    }
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text, encoding="utf-8")
    git(path, "add", "--", *files)
    git(path, "commit", "--quiet", "--no-verify", "-m", "[DATALAD] new dataset")


def save(ds: Path, paths: Iterable[str | Path], message: str) -> None:
    """Save exactly ``paths`` (relative to ``ds`` or absolute) with ``message``."""
    dl = _datalad()
    # absolute paths: DataLad resolves relative ones against the cwd, not the dataset
    _call(dl.save, dataset=str(ds), path=[str(ds / p) for p in paths], message=message)


def remotes(ds: Path) -> list[str]:
    """Names of the dataset's git remotes."""
    return git(ds, "remote").split()


def create_sibling_ria(ds: Path, name: str, url: str, alias: str) -> bool:
    """A RIA sibling ``name`` (git repo + ``name-storage`` annex remote) in the store at ``url``.

    Resumable: DataLad sets the storage remote up before the git remote, and skips a
    sibling whose storage remote exists, so a run killed in between would leave a sibling
    that no later run completes. The two halves are made one after the other here, the
    second one reconfiguring whatever the first (or a killed run) left.

    Returns
    -------
    bool
        False if both remotes were there already (nothing done).
    """
    storage = f"{name}-storage"
    have = remotes(ds)
    if name in have and storage in have:
        return False
    dl = _datalad()
    common = {"url": url, "dataset": str(ds), "alias": alias, "new_store_ok": True}
    with _output_to(ds / WINDL_GITDIR / "logs" / "create-sibling-ria.log"):  # it prints
        if storage not in have:
            _call(
                dl.create_sibling_ria,
                name=storage,
                storage_sibling="only",
                existing="reconfigure",
                **common,
            )
        checkpoint("sibling-storage-created")
        _call(
            dl.create_sibling_ria,
            name=name,
            storage_name=storage,
            existing="reconfigure",
            **common,
        )
    return True


def push(ds: Path, to: str, env: Mapping[str, str] | None = None) -> None:
    """``datalad push --to to``: the branch, the git-annex branch and all annexed content."""
    dl = _datalad()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        _call(dl.push, dataset=str(ds), to=to, data="anything")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_procedure(ds: Path, name: str) -> None:
    dl = _datalad()
    _call(dl.run_procedure, dataset=str(ds), spec=[name])


@contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout/stderr to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("wb") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextmanager
def temporary_files_in(folder: Path) -> Iterator[None]:
    """Let this process (``tempfile``) and its children (``$TMPDIR``) make temporary files in
    ``folder`` only, for the duration of the block."""
    folder.mkdir(parents=True, exist_ok=True)
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env


def datalad_run(
    ds: Path,
    cmd: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    message: str,
    log: Path,
    explicit: bool = True,
) -> None:
    """``datalad run``, by default ``--explicit``: only the declared outputs are saved.

    With ``explicit=False`` the dataset must be clean and everything the command changed is
    saved (for commands that rewrite a whole dataset, whose outputs are not known before).
    The command's output goes to ``log``. On failure the outputs (or, not explicit, the
    whole dataset) are reset to the last commit, so a failed command never leaves
    half-written files behind, and the error names the log and quotes its last line.
    """
    dl = _datalad()
    # DataLad's {tmpdir} is a mkdtemp it never removes; heudiconv leaves DICOM header dumps
    # (patient data) in it, so the run's temporary files live in the dataset's git dir
    # and are deleted afterwards, whatever happens
    scratch = ds / WINDL_GITDIR / "run-tmp" / uuid.uuid4().hex
    journal = write_run_journal(ds, outputs if explicit else ["."], message)
    try:
        # run from the dataset root so relative paths in the record mean the same on rerun
        with _output_to(log), chdir(ds), temporary_files_in(scratch):
            checkpoint("run-started")
            _call(
                dl.run,
                cmd=cmd,
                dataset=str(ds),
                inputs=list(inputs),
                outputs=list(outputs),
                message=message,
                explicit=explicit,
            )
        checkpoint("run-saved")
    except WindlError as exc:
        discard_changes(ds, outputs if explicit else ["."])
        _forget(journal)
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else str(exc)
        raise WindlError(f"{detail} (full log: {log})") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _forget(journal)


# --------------------------------------------------------------------------- run journal
#: one JSON file per ``datalad run`` in progress: the paths it may write, written before
_JOURNAL_DIR = WINDL_GITDIR / "journal"


def write_run_journal(ds: Path, outputs: Sequence[str], message: str) -> Path | None:
    """Note, durably and before a step starts, the paths of ``ds`` that it will write.

    What a killed step left in those paths is windl's own, and :func:`recover_runs`
    discards it; changes anywhere else are someone else's and stay (and are refused).
    Returns the journal file (None in a linked worktree: a job's worktree is thrown away
    whole when it is recovered).
    """
    if not (ds / ".git").is_dir():
        return None
    folder = ds / _JOURNAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"outputs": list(outputs), "head": head(ds), "message": message, "pid": os.getpid()}
    target = folder / f"{uuid.uuid4().hex}.json"
    partial = target.with_suffix(".part")
    with partial.open("w", encoding="utf-8") as fh:
        json.dump(entry, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, target)
    return target


def _forget(journal: Path | None) -> None:
    if journal is not None:
        journal.unlink(missing_ok=True)


def recover_runs(ds: Path) -> list[str]:
    """Undo what killed runs of ``datalad run`` left in ``ds``; return their messages.

    Each journal's paths go back to the last commit (its run, if it got as far as its
    commit, changed nothing there since); a ``.git/index.lock`` that the killed git left
    is removed, and so are the runs' temporary folders. Call it holding the study's lock
    (:mod:`windl.locks`): no run of windl is in progress then.
    """
    folder = ds / _JOURNAL_DIR
    journals = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not journals:
        return []
    stale_index = ds / ".git" / "index.lock"
    stale_index.unlink(missing_ok=True)
    messages = []
    for journal in journals:
        try:
            entry = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entry = {}
        discard_changes(ds, entry.get("outputs", []))
        messages.append(str(entry.get("message", "")))
        journal.unlink()
    for leftover in folder.glob("*.part"):
        leftover.unlink()
    shutil.rmtree(ds / WINDL_GITDIR / "run-tmp", ignore_errors=True)
    return messages


def rerun(ds: Path, revision: str) -> None:
    dl = _datalad()
    _call(dl.rerun, dataset=str(ds), revision=revision)


def subdatasets(ds: Path) -> list[Path]:
    """Registered subdatasets of ``ds`` (from .gitmodules; does not touch their content)."""
    if not (ds / ".gitmodules").exists():
        return []  # most datasets have none: no git process for them
    proc = git(
        ds, "config", "-f", ".gitmodules", "--get-regexp", r"submodule\..*\.path", check=False
    )
    return [ds / line.split(" ", 1)[1] for line in proc.splitlines() if " " in line]


def installed_subdatasets(ds: Path) -> list[Path]:
    """Installed subdatasets of ``ds`` at any depth, parents before their children."""
    found = []
    for sub in subdatasets(ds):
        if (sub / ".git").exists():
            found.append(sub)
            found.extend(installed_subdatasets(sub))
    return found


def locate(ds: Path, relpath: str) -> tuple[Path, str]:
    """The dataset that tracks ``relpath`` (relative to ``ds``) and the path inside it.

    Descends through the subdatasets (gitlinks) on the way, at their checked-out
    commits: ``sourcedata/sub-01/ses-1/dicom`` of a study is ``ses-1/dicom`` of
    ``sourcedata/sub-01`` when that is a subject dataset, else ``sub-01/ses-1/dicom`` of
    ``sourcedata``. One ``git ls-tree`` per dataset level.
    """
    holder, rest = ds, relpath.strip("/")
    while rest:
        parts = rest.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        out = git(holder, "ls-tree", "-z", "HEAD", "--", *prefixes)
        gitlinks = [
            entry.split("\t", 1)[1]
            for entry in out.split("\0")
            if entry and entry.split()[1] == "commit"
        ]
        if not gitlinks:
            break
        inner = min(gitlinks, key=len)
        holder, rest = holder / inner, rest[len(inner) :].lstrip("/")
    return holder, rest


# --------------------------------------------------------------------------- git state
def head(ds: Path) -> str:
    return git(ds, "rev-parse", "HEAD").strip()


def dirty_paths(ds: Path, paths: Sequence[str] = ()) -> list[str]:
    """Paths with uncommitted changes (untracked included), optionally limited to ``paths``."""
    out = git(ds, "status", "--porcelain", "--untracked-files=all", "--", *paths)
    return [line[3:] for line in out.splitlines() if line.strip()]


def require_clean(ds: Path, paths: Sequence[str] = ()) -> None:
    dirty = dirty_paths(ds, paths)
    if dirty:
        raise DatasetDirty(
            f"uncommitted changes ({', '.join(dirty[:3])}{', …' if len(dirty) > 3 else ''}); "
            "save or discard them first",
            ds,
        )


def discard_changes(ds: Path, paths: Sequence[str]) -> None:
    """Reset ``paths`` to HEAD and remove untracked files under them.

    Paths that HEAD does not have are only cleaned: ``git checkout`` refuses all of its
    paths when one of them is unknown, and would restore none.
    """
    if not paths:
        return
    git(ds, "reset", "-q", "--", *paths, check=False)
    tracked = [p for p in paths if p in (".", "") or tree_id(ds, p) is not None]
    if tracked:
        git(ds, "checkout", "-q", "HEAD", "--", *tracked, check=False)
    git(ds, "clean", "-fdq", "--", *paths, check=False)


def tree_id(ds: Path, relpath: str, rev: str = "HEAD") -> str | None:
    """git tree/blob id of ``relpath`` at ``rev`` (a cheap fingerprint of a folder's content)."""
    proc = run_tool(["git", "-C", str(ds), "rev-parse", f"{rev}:{relpath}"], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def annex_keys_of_links(ds: Path, blobs: Sequence[str]) -> list[str]:
    """git-annex key named by each symlink blob (one ``git cat-file --batch`` for all)."""
    if not blobs:
        return []
    lines = iter(
        git(ds, "cat-file", "--batch", input_text="".join(f"{b}\n" for b in blobs)).split("\n")
    )
    keys = []
    for _blob in blobs:
        next(lines)  # "<sha> blob <size>"
        keys.append(Path(next(lines)).name)
    return keys


def ls_tree(
    ds: Path, rev: str = "HEAD", relpath: str | None = None
) -> list[tuple[str, str, str, str]]:
    """Entries (mode, type, object id, path) of ``rev``'s tree, recursively."""
    out = git(ds, "ls-tree", "-r", "-z", rev, *(["--", relpath] if relpath else []))
    entries = []
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, kind, blob = meta.split()
            entries.append((mode, kind, blob, path))
    return entries


def ls_tree_sized(ds: Path, rev: str = "HEAD") -> list[tuple[str, str, str, int | None]]:
    """Entries (mode, object id, path, blob size) of ``rev``'s tree, recursively.

    Only files and symlinks (``blob``); submodules (subdatasets) are left out. The size
    of a symlink is the size of the link text, not of annexed content
    (see :func:`annex_key_size`).
    """
    out = git(ds, "ls-tree", "-r", "-l", "-z", rev)
    entries = []
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, kind, blob, size = meta.split()
            if kind == "blob":
                entries.append((mode, blob, path, int(size) if size.isdigit() else None))
    return entries


def is_ancestor(ds: Path, ancestor: str, rev: str) -> bool:
    """True when commit ``ancestor`` is reachable from ``rev`` (or is it)."""
    proc = run_tool(
        ["git", "-C", str(ds), "merge-base", "--is-ancestor", ancestor, rev], check=False
    )
    return proc.returncode == 0


def changed_paths(ds: Path, old: str, new: str) -> list[str]:
    """Paths (files, links, gitlinks) that differ between commits ``old`` and ``new``."""
    out = git(ds, "diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new)
    return [path for path in out.split("\0") if path]


def annex_key_size(key: str) -> int | None:
    """The content size a git-annex key names (``…-s<size>-…--…``), if it names one."""
    fields = key.partition("--")[0].split("-")
    return next((int(f[1:]) for f in fields[1:] if f[:1] == "s" and f[1:].isdigit()), None)


def read_blobs(ds: Path, rev: str, paths: Sequence[str]) -> dict[str, bytes | None]:
    """Content of ``paths`` at ``rev`` as stored in git (``None`` for a missing path).

    One ``git cat-file --batch`` for all of them: nothing is checked out and annexed
    content is never needed (a symlink's blob is its link text).
    """
    if not paths:
        return {}
    require_tool("git")
    query = "".join(f"{rev}:{p}\n" for p in paths).encode()
    proc = subprocess.run(
        ["git", "-C", str(ds), "cat-file", "--batch"],
        input=query,
        capture_output=True,
        env=tool_env(),
    )
    if proc.returncode != 0:
        raise WindlError(f"git cat-file failed: {proc.stderr.decode(errors='replace')}", ds)
    out, pos, found = proc.stdout, 0, {}
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3 or header[1] == b"missing":
            found[path] = None
            continue
        size = int(header[2])
        found[path] = out[pos : pos + size]
        pos += size + 1  # content is followed by a newline
    return found


def commit_dates(ds: Path, revs: Sequence[str]) -> dict[str, str]:
    """Committer date (ISO 8601) of each of ``revs``."""
    if not revs:
        return {}
    out = git(ds, "show", "-s", "--format=%cI", *revs, "--")
    return dict(zip(revs, out.split(), strict=True))


def first_commit_date(ds: Path, rev: str = "HEAD") -> str:
    """Committer date (ISO 8601) of the oldest root commit reachable from ``rev``."""
    roots = git(ds, "rev-list", "--max-parents=0", rev).split()
    return min(commit_dates(ds, roots).values())


def version_tags(ds: Path) -> list[tuple[str, str, str]]:
    """``(tag, commit, date)`` of each tag ``v*`` (date: the tag's, else its commit's)."""
    out = git(
        ds,
        "for-each-ref",
        "refs/tags/v*",
        "--format=%(refname:strip=2) %(objectname) %(*objectname) %(creatordate:iso-strict)",
    )
    tags = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            tags.append((fields[0], fields[2], fields[3]))  # annotated: the peeled commit
        elif len(fields) == 3:
            tags.append((fields[0], fields[1], fields[2]))  # lightweight
    return tags


def tracked_annex_keys(ds: Path, relpath: str | None) -> dict[str, str]:
    """Tracked path → git-annex key of the annexed files under ``relpath`` (None: all) in HEAD."""
    symlinks = [
        (path, blob) for mode, _, blob, path in ls_tree(ds, "HEAD", relpath) if mode == "120000"
    ]
    keys = annex_keys_of_links(ds, [blob for _, blob in symlinks])
    return {path: key for (path, _), key in zip(symlinks, keys, strict=True)}


#: git-annex hash backends (with or without the E suffix) → hashlib name
ANNEX_HASHES = {
    "MD5": "md5",
    "SHA1": "sha1",
    "SHA224": "sha224",
    "SHA256": "sha256",
    "SHA384": "sha384",
    "SHA512": "sha512",
}


def annex_key_identity(key: str) -> tuple[str, int, str] | None:
    """(hashlib algorithm, size, digest) of a key such as ``MD5E-s12--ab12.dcm``.

    ``None`` for keys of non-hash backends (e.g. URL, WORM), which say nothing about content.
    """
    head, sep, rest = key.partition("--")
    fields = head.split("-")
    algorithm = ANNEX_HASHES.get(fields[0].removesuffix("E"))
    if not sep or algorithm is None:
        return None
    size = next((int(f[1:]) for f in fields[1:] if f.startswith("s")), -1)
    return algorithm, size, rest.split(".", 1)[0]


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- atomic commits
def recover(ds: Path) -> None:
    """Remove scratch worktrees of interrupted transactions; the branch never saw them."""
    txn_root = ds / _TXN_DIR
    if txn_root.is_dir() and any(txn_root.iterdir()):
        shutil.rmtree(txn_root)
        git(ds, "worktree", "prune")


def commit_files(
    ds: Path,
    files: Mapping[str, Path],
    message: str,
    move: bool = False,
    remove: Sequence[str] = (),
) -> str:
    """Add ``files`` (dataset-relative path → source file) in one commit, atomically.

    ``remove``: tracked paths the same commit deletes (e.g. a template file that an
    imported one takes the place of under another name).

    The files are copied (or moved) into a scratch worktree of the dataset under
    ``.git/windl/txn``, annexed and committed there; the dataset's branch then
    fast-forwards to that commit. Until the fast-forward, the dataset's working tree,
    index and branch are untouched, so a crash at any point leaves ``git status`` clean
    and :func:`recover` removes the leftovers. Annexed content that was already moved
    into ``.git/annex/objects`` is reused when the command is run again.

    Returns the new commit.
    """
    recover(ds)
    base = head(ds)
    txn = ds / _TXN_DIR / uuid.uuid4().hex
    txn.parent.mkdir(parents=True, exist_ok=True)
    git(ds, "worktree", "add", "--quiet", "--no-checkout", "--detach", str(txn), base)
    try:
        git(txn, "read-tree", base)
        attributes = [
            p for p in git(txn, "ls-files", "--", ".gitattributes", "*/.gitattributes").split()
        ]
        if attributes:
            git(txn, "checkout", base, "--", *attributes)
        for rel, source in files.items():
            target = txn / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if move:
                os.replace(source, target)
            else:
                shutil.copy2(source, target)
        if remove:
            git(txn, "rm", "--cached", "--quiet", "--", *remove)
        checkpoint("staged")
        if files:
            annex_add_placed(txn, sorted(files))
        checkpoint("annexed")
        git(txn, "commit", "--quiet", "--no-verify", "-m", message)
        commit = head(txn)
        checkpoint("committed")
        if head(ds) != base:
            raise WindlError("dataset changed while windl was writing to it; run again", ds)
        git(ds, "merge", "--quiet", "--ff-only", commit)
    finally:
        shutil.rmtree(txn, ignore_errors=True)
        git(ds, "worktree", "prune", check=False)
    return commit


def _check_attrs(worktree: Path, rels: Sequence[str], *attrs: str) -> dict[str, dict[str, str]]:
    out = git(worktree, "check-attr", "-z", "--stdin", *attrs, input_text="\0".join(rels) + "\0")
    fields = out.split("\0")
    values: dict[str, dict[str, str]] = {}
    for i in range(0, len(fields) - 2, 3):
        values.setdefault(fields[i], {})[fields[i + 1]] = fields[i + 2]
    return values


def _batch(worktree: Path, args: Sequence[str], lines: Sequence[str]) -> list[str]:
    """Run a git/git-annex ``--batch`` command once for all ``lines``; one answer each."""
    out = git(worktree, *args, input_text="".join(f"{line}\n" for line in lines))
    answers = out.split("\n")[: len(lines)]
    if len(answers) != len(lines) or not all(answers):
        raise WindlError(f"git {' '.join(args[:2])} gave no answer for some files", worktree)
    return answers


def annex_add_placed(worktree: Path, rels: Sequence[str]) -> None:
    """Add files already placed in ``worktree`` to the index, annexing the large ones.

    The same result as ``git annex add`` (content in ``.git/annex/objects``, a symlink
    in git, the location log updated), done with git-annex's batch plumbing
    (``calckey``, ``examinekey``, ``setpresentkey``): git-annex 10.20230126 starts two
    ``git`` processes per file in ``add``, which made it most of ingest's time.
    Files whose ``annex.largefiles`` is an expression rather than ``anything`` or
    ``nothing`` are left to ``git annex add`` itself.
    """
    attrs = _check_attrs(worktree, rels, "annex.largefiles", "annex.backend")
    default_backend = git(worktree, "config", "--default", "SHA256E", "annex.backend").strip()
    to_annex: dict[str, list[str]] = {}
    to_git: list[str] = []
    to_annex_add: list[str] = []
    for rel in rels:
        rule = attrs.get(rel, {}).get("annex.largefiles", "unspecified")
        backend = attrs.get(rel, {}).get("annex.backend", "unspecified")
        backend = default_backend if backend in ("unspecified", "unset", "set") else backend
        if "\n" in rel:
            to_annex_add.append(rel)
        elif rule == "anything":
            to_annex.setdefault(backend, []).append(rel)
        elif rule == "nothing":
            to_git.append(rel)
        else:
            to_annex_add.append(rel)
    keys: dict[str, str] = {}
    for backend, paths in to_annex.items():
        found = _batch(worktree, ["annex", "calckey", "--batch", f"--backend={backend}"], paths)
        keys.update(zip(paths, found, strict=True))
    _link_annexed(worktree, keys, lambda rel, location: worktree / rel)
    if to_git:
        git(worktree, "update-index", "--add", "-z", "--stdin", input_text="\0".join(to_git) + "\0")
    if to_annex_add:
        git(worktree, "annex", "add", "--quiet", "--", *to_annex_add)


def _annex_objects(repo: Path) -> Path:
    objects = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    return (repo / objects if not objects.is_absolute() else objects) / "annex" / "objects"


def _link_annexed(
    worktree: Path, keys: Mapping[str, str], content_of: Callable[[str, str], Path | None]
) -> None:
    """Stage each path of ``keys`` as an annex link to its key, the content put in the annex.

    ``content_of(path, location)`` names the file holding the content (``location``: the
    key's place below ``annex/objects``, the same in every non-bare repository, so another
    dataset's object is ``its objects folder / location``): it is moved into the
    annex when it sits in ``worktree`` itself, else hard-linked (another dataset's annex
    object; nothing is copied). ``None``, or a file that is missing, leaves the key
    absent here (a link without content, as after ``git annex drop``).
    """
    if not keys:
        return
    rels = list(keys)
    where = _batch(
        worktree,
        ["annex", "examinekey", "--batch", "--format=${hashdirmixed}${key}/${key}\n"],
        [keys[rel] for rel in rels],
    )
    objects = _annex_objects(worktree)
    uuid_ = git(worktree, "config", "annex.uuid").strip()
    present: list[str] = []
    for rel, location in zip(rels, where, strict=True):
        key, placed, content = keys[rel], worktree / rel, objects / location
        source = content_of(rel, location)
        if not content.exists() and source is not None and source.exists():
            content.parent.mkdir(parents=True, exist_ok=True)
            if source == placed:
                os.replace(placed, content)
            else:
                try:
                    os.link(source, content)
                except OSError:  # another filesystem, or no hard links there
                    shutil.copy2(source, content)
            content.chmod(0o444)
            content.parent.chmod(0o555)  # git-annex freezes the key's directory too
        if placed.exists() or placed.is_symlink():
            placed.unlink()  # same content already annexed: keep one copy
        placed.parent.mkdir(parents=True, exist_ok=True)
        placed.symlink_to("../" * (len(Path(rel).parts) - 1) + ".git/annex/objects/" + location)
        if content.exists():
            present.append(f"{key} {uuid_} 1")
    git(worktree, "update-index", "--add", "-z", "--stdin", input_text="\0".join(rels) + "\0")
    if present:
        git(worktree, "annex", "setpresentkey", "--batch", input_text="\n".join(present) + "\n")
        # setpresentkey (10.20230126) leaves the location log in the journal; a clone reads
        # only the git-annex branch and would find no copy ("not available") until some
        # later git-annex command here commits it: `merge` commits it now
        git(worktree, "annex", "merge", "--quiet")


def place_annexed(ds: Path, keys: Mapping[str, str], source: Path) -> None:
    """Stage annexed files of dataset ``source`` in ``ds`` under new paths, keys unchanged.

    ``keys`` maps a path in ``ds`` to the git-annex key of the file; content that
    ``source`` has is hard-linked into ``ds``'s annex (no copy, and ``git annex fsck``
    of ``ds`` checks it like any other).
    """
    objects = _annex_objects(source)
    _link_annexed(ds, keys, lambda rel, location: objects / location)


def record_subdataset_state(parent: Path, sub: Path, message: str) -> None:
    """Commit the current commit of subdataset ``sub`` in ``parent`` (no-op if unchanged).

    Plain git, not ``datalad save``: recording a gitlink is all that save does for an
    installed subdataset, and this runs after every ingest (DataLad's import and status
    machinery cost ~1 s per call here).
    """
    rel = os.path.relpath(sub, parent)
    with superdataset_lock_for(parent):
        recorded = git(parent, "ls-tree", "HEAD", "--", rel).split()
        # compare commits, not `git status`: untracked files inside the subdataset make
        # status report it modified although there is nothing to record
        if not recorded or recorded[2] != head(sub):
            git(parent, "add", "--", rel)
            git(parent, "commit", "--quiet", "--no-verify", "-m", message, "--", rel)


def register_subdataset(parent: Path, sub: Path, message: str) -> None:
    """Register the dataset ``sub`` (in ``parent``'s working tree) as a subdataset, in one commit.

    What ``datalad save`` writes for a new subdataset (a ``.gitmodules`` entry with path,
    url ``./<path>`` and ``datalad-id``, and the gitlink), with plain git: DataLad's save
    looks at every subdataset of the parent, and a study's ``sourcedata`` gets one per
    subject.
    """
    rel = os.path.relpath(sub, parent)
    dataset_id = git(
        sub, "config", "-f", ".datalad/config", "--get", "datalad.dataset.id", check=False
    ).strip()
    with superdataset_lock_for(parent):
        for key, value in (("path", rel), ("url", f"./{rel}"), ("datalad-id", dataset_id)):
            if value:
                git(parent, "config", "-f", ".gitmodules", f"submodule.{rel}.{key}", value)
        git(parent, "update-index", "--add", "--cacheinfo", f"160000,{head(sub)},{rel}")
        git(parent, "add", "--", ".gitmodules")
        git(parent, "commit", "--quiet", "--no-verify", "-m", message, "--", ".gitmodules", rel)


# --------------------------------------------------------------------------- git notes
def write_note(ds: Path, ref: str, commit: str, payload: Mapping[str, Any]) -> None:
    """Attach JSON to ``commit`` under ``refs/notes/<ref>`` (does not change the tree)."""
    git(ds, "notes", f"--ref={ref}", "add", "-f", "-m", json.dumps(payload, indent=1), commit)


def read_note(ds: Path, ref: str, commit: str) -> dict[str, Any] | None:
    proc = run_tool(["git", "-C", str(ds), "notes", f"--ref={ref}", "show", commit], check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


# --------------------------------------------------------------------------- reproduction
def git_bytes(ds: Path, *args: str) -> bytes:
    """Run ``git -C ds ARGS`` and return stdout as bytes (file content, exactly as stored)."""
    require_tool("git")
    proc = subprocess.run(["git", "-C", str(ds), *args], env=tool_env(), capture_output=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise WindlError(
            f"git {' '.join(args[:2])} failed: {detail[-1] if detail else proc.returncode}", ds
        )
    return proc.stdout


def clone_dataset(source: Path, path: Path) -> None:
    """``datalad clone source path``: a new dataset at ``path``; ``source`` is only read."""
    dl = _datalad()
    _call(dl.clone, source=str(source), path=str(path))


def get_content(ds: Path, paths: Sequence[str], get_data: bool = True) -> None:
    """``datalad get`` of ``paths`` (relative to ``ds``), installing subdatasets on the way.

    With ``get_data=False`` only the subdatasets are installed (``datalad get -n``).
    """
    if not paths:
        return
    dl = _datalad()
    _call(dl.get, dataset=str(ds), path=[str(ds / p) for p in paths], get_data=get_data)


def rerun_logged(
    ds: Path,
    revision: str,
    log: Path,
    onto: str | None = None,
    branch: str | None = None,
) -> None:
    """``datalad rerun [--onto ONTO] [--branch BRANCH] REVISION``, its output sent to ``log``.

    On failure the error quotes the log's last line and names the log; the working tree
    is left as the command left it (callers discard or inspect it).
    """
    dl = _datalad()
    try:
        with _output_to(log), chdir(ds):
            _call(dl.rerun, dataset=str(ds), revision=revision, onto=onto, branch=branch)
    except WindlError as exc:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else str(exc)
        raise WindlError(f"{detail} (full log: {log})") from None


# --------------------------------------------------------------------------- git over HTTP
async def start_http_backend(repo: Path, cgi_env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start ``git http-backend`` (CGI) for the bare repository ``repo``, pipes on all ends.

    ``cgi_env`` holds the request's CGI variables (``REQUEST_METHOD``, ``PATH_INFO``
    relative to ``repo``, ``QUERY_STRING``, ``CONTENT_TYPE``, ``GIT_PROTOCOL``…). Only
    fetching is possible: ``http.receivepack`` is off whatever the repository says, and the
    repository is trusted as a ``safe.directory`` (the server may run as another user).
    """
    require_tool("git")
    env = {
        "PATH": tool_env()["PATH"],
        "GIT_PROJECT_ROOT": str(repo),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": str(repo),
        "GIT_CONFIG_KEY_1": "http.receivepack",
        "GIT_CONFIG_VALUE_1": "false",
        **cgi_env,
    }
    return await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def config_value(repo: Path, key: str) -> str | None:
    """``git config --get KEY`` of ``repo`` (bare or not), None when unset."""
    proc = run_tool(["git", "-C", str(repo), "config", "--get", key], check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


# --------------------------------------------------------------------------- job worktrees
#: where job worktrees live: inside the dataset's git dir, so a cluster node that sees the
#: dataset sees them, and nothing in them is ever tracked
_JOBS_DIR = WINDL_GITDIR / "jobs"
_JOB_BRANCH = "windl-job/"


@contextmanager
def _job_worktrees_locked(ds: Path) -> Iterator[None]:
    """Hold the lock that makes adding and removing job worktrees of ``ds`` one at a time.

    Two ``git worktree add`` in one repository race: each lists the other's half-made
    administrative folder and fails ("failed to read .git/worktrees/<id>/commondir"). The
    lock covers ``ds`` and its subdatasets; it is a ``flock``, released if a job dies.
    """
    lock_path = ds / ".git" / "windl" / "job-worktrees.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def add_job_worktree(
    ds: Path,
    name: str,
    base: str,
    folders: Sequence[str],
    subdatasets: Mapping[str, Sequence[str]],
    pinned: Mapping[str, str] | None = None,
) -> Path:
    """A worktree of ``ds`` at ``base`` on branch ``windl-job/<name>``, for one job's runs.

    Each subdataset in ``subdatasets`` (path → the paths inside it that the job reads) gets a
    worktree of its own at the commit ``pinned`` names for it, else the one ``base``
    records, checked out sparsely to those paths.
    Worktrees share the object store and the annex of ``ds``: a job costs no copy of its
    inputs, and what ``datalad run`` annexes there is in ``ds``'s annex already. The
    worktree of ``ds`` itself holds the top-level files, ``.datalad/``, ``code/`` and
    ``folders`` (the job's own; a cone-mode sparse checkout), so creating one does not grow
    with the study.
    """
    with _job_worktrees_locked(ds):
        return _add_job_worktree(ds, name, base, folders, subdatasets, pinned)


def _add_job_worktree(
    ds: Path,
    name: str,
    base: str,
    folders: Sequence[str],
    subdatasets: Mapping[str, Sequence[str]],
    pinned: Mapping[str, str] | None,
) -> Path:
    path = ds / _JOBS_DIR / name
    branch = _JOB_BRANCH + name
    _remove_job(ds, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    git(ds, "worktree", "add", "--quiet", "--no-checkout", "-b", branch, str(path), base)
    cone = sorted({*folders, *_top_folders(subdatasets), "code", ".datalad"})
    git(path, "sparse-checkout", "set", "--cone", *cone)
    _checkout_without_hooks(path, branch)
    sub_commits = dict(pinned or {})
    # parents first: a nested subdataset (sourcedata/sub-01) sits in its parent's worktree
    for sub in sorted(subdatasets, key=lambda s: len(Path(s).parts)):
        parent = max((p for p in subdatasets if sub.startswith(p + "/")), key=len, default="")
        if sub not in sub_commits:
            repo, rev = (ds / parent, sub_commits[parent]) if parent else (ds, base)
            rel = sub[len(parent) :].lstrip("/")
            entry = git(repo, "ls-tree", rev, "--", rel).split()
            if not entry or entry[1] != "commit":
                raise WindlError(f"{sub} is not a subdataset at {rev[:10]}", ds)
            sub_commits[sub] = entry[2]
        commit = sub_commits[sub]
        target = path / sub
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        _enable_worktree_config(ds / sub)
        git(
            ds / sub, "worktree", "add", "--quiet", "--no-checkout", "--detach", str(target), commit
        )
        # the subdataset's top-level files (.datalad/config, .gitattributes) and what is read
        patterns = ["/*", "!/*/", "/.datalad/", *(f"/{p.strip('/')}/" for p in subdatasets[sub])]
        git(target, "sparse-checkout", "set", "--no-cone", *patterns)
        _checkout_without_hooks(target, "--detach", commit)
    return path


def _enable_worktree_config(repo: Path) -> None:
    """Turn on per-worktree config (where sparse settings live) before the first worktree.

    git turns it on itself the first time, in the shared config; done here, under the
    job-worktree lock, two jobs starting together cannot race for it.
    """
    if (
        git(repo, "config", "--bool", "--default", "false", "extensions.worktreeConfig").strip()
        != "true"
    ):
        git(repo, "config", "extensions.worktreeConfig", "true")


#: ``git -c`` options that keep git from starting git-annex's filter (``git-annex
#: filter-process``) for one command. Every git command that checks out or hashes a regular
#: file of an annex repository starts one, and each start costs ~50 ms of CPU with the git
#: helpers it runs itself: in job worktrees and the replay that was most of what ``--jobs
#: 2`` cost over ``--jobs 1``. Without the filter git reads and writes a file's bytes as
#: they are, which is what the filter does for files in git; annexed files are locked
#: (symlinks, which git never filters), and windl datasets have no unlocked ones.
NO_ANNEX_FILTER = ("-c", "filter.annex.process=")


def _checkout_without_hooks(worktree: Path, *args: str) -> None:
    """``git checkout`` in a new job worktree, made ready for git-annex by hand.

    Annex links (``../.git/annex/objects/…``) resolve only through a ``.git`` that is a
    symlink to the worktree's git dir, which holds an ``annex`` symlink to the repository's
    annex. git-annex makes both the first time it runs in a worktree, but windl starts it
    neither here nor through the post-checkout hook (``smudge --update``, for unlocked
    files, which windl datasets do not have) nor through the filter (see
    :data:`NO_ANNEX_FILTER`): those starts were most of a job's set-up time.
    """
    git(worktree, "-c", "core.hooksPath=/dev/null", *NO_ANNEX_FILTER, "checkout", "--quiet", *args)
    dot_git = worktree / ".git"
    if dot_git.is_file():
        gitdir = Path(dot_git.read_text(encoding="utf-8").split(":", 1)[1].strip())
        gitdir = gitdir if gitdir.is_absolute() else (worktree / gitdir).resolve()
        dot_git.unlink()
        dot_git.symlink_to(os.path.relpath(gitdir, worktree))
        common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        annex_link = gitdir / "annex"
        if (common / "annex").is_dir() and not annex_link.exists():
            annex_link.symlink_to(os.path.relpath(common / "annex", gitdir))
    _settle_index(worktree)


def _settle_index(worktree: Path) -> None:
    """Make the files a checkout just wrote not "racily clean" in the worktree's index.

    They have the same mtime (second) as the index, so git cannot trust their stat data and
    re-reads them in every later command that looks at them (DataLad's ``ls-files`` before
    and after a run, ``git annex add``, ``git commit``), each time through git-annex's
    filter, which starts a ``git-annex filter-process``. Dated two seconds back and
    refreshed once (without the filter: the bytes are the blobs), the index records them
    as clean. A sparse job worktree holds few regular files (the DICOMs are symlinks).
    """
    past = time.time() - 2
    for folder, dirs, files in os.walk(worktree):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.utime(path, (past, past))
    git(worktree, *NO_ANNEX_FILTER, "update-index", "-q", "--refresh", check=False)


def _top_folders(subdatasets: Mapping[str, Sequence[str]]) -> set[str]:
    # a subdataset's mount point must be in the cone for its worktree to sit there
    return {Path(sub).parts[0] for sub in subdatasets}


def job_commits(ds: Path, name: str, base: str) -> list[str]:
    """The commits job ``name`` made on its branch since ``base``, oldest first."""
    ref = f"refs/heads/{_JOB_BRANCH}{name}"
    if run_tool(["git", "-C", str(ds), "rev-parse", "-q", "--verify", ref], check=False).returncode:
        return []
    return git(ds, "rev-list", "--reverse", f"{base}..{ref}").split()


def remove_job_worktree(ds: Path, name: str) -> None:
    """Remove job ``name``'s worktrees (its subdatasets' too); its branch stays.

    Each worktree goes with its own administrative folder in its repository's git dir,
    and nothing else: ``git worktree prune`` here would race with the other jobs, whose
    worktrees are being made at the same time.
    """
    with _job_worktrees_locked(ds):
        _remove_job_worktree(ds, name)


def _remove_job_worktree(ds: Path, name: str) -> None:
    path = ds / _JOBS_DIR / name
    if not path.exists():
        return
    # the subdatasets' worktrees inside first (a sparse job worktree holds few files)
    nested = sorted(
        (p for p in path.rglob(".git") if p != path / ".git"), key=lambda p: -len(p.parts)
    )
    for dot_git in [*nested, path / ".git"]:
        admin = _worktree_admin_dir(dot_git)
        if admin is not None and admin.is_dir():
            # renamed away in one step: git commands of other jobs list every worktree and
            # fail on a half-deleted administrative folder
            trash = admin.parent.parent / "windl" / "trash" / uuid.uuid4().hex
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(admin, trash)
            shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(dot_git.parent, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def _worktree_admin_dir(dot_git: Path) -> Path | None:
    """The ``.git/worktrees/<id>`` folder of the worktree whose ``.git`` is ``dot_git``."""
    if dot_git.is_symlink():
        return dot_git.resolve()
    if dot_git.is_file():
        target = Path(dot_git.read_text(encoding="utf-8").split(":", 1)[1].strip())
        return target if target.is_absolute() else (dot_git.parent / target).resolve()
    return None


def remove_job(ds: Path, name: str) -> None:
    """Remove job ``name``'s worktrees and its branch."""
    with _job_worktrees_locked(ds):
        _remove_job(ds, name)


def _remove_job(ds: Path, name: str) -> None:
    _remove_job_worktree(ds, name)
    git(ds, "branch", "-q", "-D", _JOB_BRANCH + name, check=False)


def prepare_jobs(ds: Path) -> None:
    """Make ``ds`` ready for job worktrees; remove what interrupted jobs left.

    Per-worktree config is turned on for ``ds`` (its subdatasets get it when a job first
    uses them, see :func:`_enable_worktree_config`). Leftover worktrees and branches of
    interrupted jobs go: the dataset never saw them.
    """
    with _job_worktrees_locked(ds):
        _enable_worktree_config(ds)
    recover_jobs(ds)


def recover_jobs(ds: Path) -> None:
    """Remove what interrupted jobs left (worktrees, branches); the dataset never saw them.

    Run when no job is running. A job killed inside ``git worktree add`` leaves its
    worktree registered and locked, which ``git worktree prune`` keeps: such entries,
    all pointing into the jobs folder, are removed by hand first.
    """
    jobs_dir = ds / _JOBS_DIR
    for repo in [ds, *installed_subdatasets(ds)]:
        if not (repo / ".git" / "worktrees").is_dir():
            continue  # never had a job (most subject datasets): no git process for it
        for admin in (repo / ".git" / "worktrees").glob("*"):
            gitdir = admin / "gitdir"
            target = gitdir.read_text(encoding="utf-8").strip() if gitdir.exists() else ""
            if target.startswith(str(jobs_dir) + os.sep) or not target:
                shutil.rmtree(admin, ignore_errors=True)
        git(repo, "worktree", "prune", check=False)
    if jobs_dir.is_dir():
        shutil.rmtree(jobs_dir)
    refs = git(ds, "for-each-ref", "--format=%(refname:short)", "refs/heads/" + _JOB_BRANCH)
    for branch in refs.split():
        git(ds, "branch", "-q", "-D", branch)


#: merges a path both the job and the dataset changed: (base, ours, theirs) → merged bytes
Resolver = Callable[[bytes, bytes, bytes], bytes]


def replay_commits(
    ds: Path, commits: Sequence[str], resolvers: Mapping[str, Resolver] | None = None
) -> str:
    """Put ``commits`` (a job's, oldest first) onto ``ds``'s branch, one commit each.

    A commit whose parent is HEAD is fast-forwarded to, so it lands unchanged. Otherwise
    it is replayed like ``git cherry-pick``, with plumbing and no checkout: HEAD's tree
    with the commit's changes, keeping its message (the run record) and author. A path
    the commit changed that HEAD also changed since the commit's parent is merged by
    ``resolvers[path]`` when there is one, else refused (:class:`WindlError`); nothing
    is written to the branch before every commit has been replayed. The working tree
    follows by a fast-forward. Returns the new HEAD.
    """
    resolvers = resolvers or {}
    start = tip = head(ds)
    for commit in commits:
        parent = git(ds, "rev-parse", f"{commit}^").strip()
        if parent == tip:
            tip = commit
            continue
        changes = git(ds, "diff-tree", "-r", "-z", "--no-renames", parent, commit).split("\0")
        changed = list(zip(changes[0::2], changes[1::2], strict=False))
        at_tip = _blobs_at(ds, tip, [path for _, path in changed])
        entries = []
        for meta, path in changed:
            _, new_mode, old_blob, new_blob, _ = meta.lstrip(":").split()
            ours = at_tip.get(path)
            if ours == (old_blob if set(old_blob) != {"0"} else None):
                entries.append(f"{new_mode} {new_blob}\t{path}")
            elif path in resolvers:
                merged = resolvers[path](
                    _blob_bytes(ds, old_blob), _blob_bytes(ds, ours), _blob_bytes(ds, new_blob)
                )
                # the merged bytes as they are (a file in git): with --path, git would
                # start git-annex's filter for them
                blob = git(ds, "hash-object", "-w", "--stdin", "--no-filters",
                           input_text=merged.decode("utf-8")).strip()  # fmt: skip
                entries.append(f"{new_mode} {blob}\t{path}")
            else:
                raise WindlError(f"{path} was changed since the job started; run again", ds)
        tip = _commit_with_entries(ds, tip, commit, entries)
    if head(ds) != start:
        raise WindlError("dataset changed while windl was writing to it; run again", ds)
    if tip != start:
        # without git-annex's post-merge hook (`smudge --update`, for unlocked files) and
        # its filter: the replayed files are datalad run outputs, annexed ones locked, and
        # each started git-annex once per job in this serial part
        git(ds, "-c", "core.hooksPath=/dev/null", *NO_ANNEX_FILTER, "merge", "--quiet",
            "--ff-only", tip)  # fmt: skip
    return tip


def _blobs_at(ds: Path, rev: str, paths: Sequence[str]) -> dict[str, str]:
    """Object id of each of ``paths`` that ``rev`` has, in one ``ls-tree`` for all (one per
    path was most of a replay's git processes: a session writes tens of files)."""
    if not paths:
        return {}
    wanted = set(paths)
    found = {}
    # --full-tree and literal pathspecs: paths are the diff-tree's, relative to the root
    out = git(ds, "--literal-pathspecs", "ls-tree", "-z", "--full-tree", rev, "--", *paths)
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            if path in wanted:
                found[path] = meta.split()[2]
    return found


def _blob_bytes(ds: Path, blob: str | None) -> bytes:
    if blob is None or set(blob) == {"0"}:
        return b""
    return git_bytes(ds, "cat-file", "blob", blob)


def _commit_with_entries(ds: Path, parent: str, like: str, entries: Sequence[str]) -> str:
    """A commit on ``parent`` whose tree is ``parent``'s with ``entries`` (index-info lines)
    applied, carrying ``like``'s message, author and dates."""
    with tempfile.TemporaryDirectory(dir=ds / WINDL_GITDIR) as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(ds, "read-tree", parent, env=env)
        # mode 000000 deletes the path (how diff-tree reports a removed file)
        lines = [e if not e.startswith("000000 ") else "0 " + "0" * 40 + "\t" + e.split("\t", 1)[1]
                 for e in entries]  # fmt: skip
        if lines:
            git(ds, "update-index", "--index-info", input_text="\n".join(lines) + "\n", env=env)
        tree = git(ds, "write-tree", env=env).strip()
    fields = git(ds, "log", "-1", "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI", like).split(
        "\0"
    )
    message = git(ds, "cat-file", "commit", like).split("\n\n", 1)[1]  # exactly as stored
    author = dict(zip(
        ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
         "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE"),
        (f.strip() for f in fields), strict=True,
    ))  # fmt: skip
    return git(ds, "commit-tree", tree, "-p", parent, input_text=message, env=author).strip()
