"""Turn an ingest SOURCE (folder, .zip, .tar, .tar.gz) into a list of files, safely.

Archives are checked member by member *before* anything is extracted: absolute paths,
``..`` components, links that leave the archive and device files are refused with the
member named.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from windl.errors import BadInput, UnsafeArchive

#: files that operating systems and archivers leave behind; never data
JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
JUNK_DIRS = frozenset({"__MACOSX", ".git", ".datalad"})


@dataclass(frozen=True)
class SourceFile:
    """One input file: where it is now and its path relative to the source root."""

    path: Path
    relpath: PurePosixPath


def archive_kind(source: Path) -> str | None:
    name = source.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return None


def _check_member_name(archive: Path, name: str) -> PurePosixPath:
    member = PurePosixPath(name.replace("\\", "/"))
    if member.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"member {name!r} has an absolute path; refusing the archive", archive)
    if ".." in member.parts:
        raise UnsafeArchive(f"member {name!r} points outside the archive ('..')", archive)
    return member


def _link_escapes(member: PurePosixPath, target: str) -> bool:
    if target.startswith("/"):
        return True
    depth = len(member.parent.parts)
    for part in PurePosixPath(target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line (tarfile lists every method it tried, one a line)."""
    return " ".join(str(exc).split())


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                member = _check_member_name(archive, info.filename)
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if is_link:
                    target = zf.read(info).decode("utf-8", "replace")
                    if _link_escapes(member, target):
                        raise UnsafeArchive(
                            f"member {info.filename!r} is a link to {target!r} outside the archive",
                            archive,
                        )
                    raise UnsafeArchive(
                        f"member {info.filename!r} is a symbolic link; links are not accepted",
                        archive,
                    )
            bad = zf.testzip()
            if bad is not None:
                raise BadInput(f"member {bad!r} is corrupt (CRC mismatch)", archive)
            zf.extractall(dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise BadInput(f"not a readable zip archive ({_one_line(exc)})", archive) from None


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for info in members:
                member = _check_member_name(archive, info.name)
                if info.issym() or info.islnk():
                    if info.issym() and not _link_escapes(member, info.linkname):
                        continue
                    if info.islnk() and not _link_escapes(PurePosixPath("x"), info.linkname):
                        continue
                    raise UnsafeArchive(
                        f"member {info.name!r} links to {info.linkname!r} outside the archive",
                        archive,
                    )
                if not (info.isfile() or info.isdir()):
                    raise UnsafeArchive(
                        f"member {info.name!r} is a device or special file", archive
                    )
            # the 'data' filter re-checks everything above inside tarfile itself
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadInput(f"not a readable tar archive ({_one_line(exc)})", archive) from None


def _walk(root: Path, archive: Path | None) -> list[SourceFile]:
    files: list[SourceFile] = []
    shown = archive or root
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in JUNK_DIRS)
        base = Path(dirpath)
        for name in sorted(filenames):
            if name in JUNK_NAMES or name.startswith("._"):
                continue
            path = base / name
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if path.is_symlink():
                target = os.readlink(path)
                resolved = path.resolve()
                if _link_escapes(rel, target) or not resolved.is_relative_to(root.resolve()):
                    raise UnsafeArchive(f"{rel} is a link to {target!r} outside the source", shown)
                if not resolved.is_file():
                    raise BadInput(f"{rel} is a broken link", shown)
            elif not path.is_file():
                continue
            if not os.access(path, os.R_OK):
                raise BadInput("file is not readable (permission denied)", path)
            files.append(SourceFile(path=path, relpath=rel))
    return files


@contextmanager
def open_source(source: Path, scratch: Path) -> Iterator[list[SourceFile]]:
    """Yield the files of ``source``; archives are extracted under ``scratch`` first.

    ``scratch`` is removed afterwards whatever happens.
    """
    if not source.exists():
        raise BadInput("no such file or folder", source)
    kind = None if source.is_dir() else archive_kind(source)
    if not source.is_dir() and kind is None:
        raise BadInput("not a folder, .zip or .tar[.gz] archive", source)
    try:
        if kind is None:
            files = _walk(source, None)
        else:
            scratch.mkdir(parents=True, exist_ok=True)
            (_extract_zip if kind == "zip" else _extract_tar)(source, scratch)
            files = _walk(scratch, source)
        if not files:
            raise BadInput("contains no files", source)
        try:
            yield files
        except BadInput as exc:
            # a file of an archive is known by its member name, not by the scratch copy
            if kind is None or exc.path is None or not exc.path.is_relative_to(scratch):
                raise
            member = exc.path.relative_to(scratch).as_posix()
            raise type(exc)(f"member {member!r}: {exc.message}", source) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
