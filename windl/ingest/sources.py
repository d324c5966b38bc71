"""Turn an ingest SOURCE (folder, .zip, .tar, .tar.gz) into a list of files, safely.

Archives are checked member by member *before* anything is extracted: absolute paths,
``..`` components, links that leave the archive, device files, duplicate names and sizes
beyond :class:`ArchiveLimits` are refused with the member named; the bytes written are
counted again while extracting.
"""

from __future__ import annotations

import errno
import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

from windl.errors import BadInput, ConfigError, UnsafeArchive

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
    if not name:
        # zipfile itself fails on one (IndexError); found by fuzzing (issue 22)
        raise UnsafeArchive("a member has an empty name; refusing the archive", archive)
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


#: unpacked bytes below which an archive's compression ratio is not checked
RATIO_FROM = 16 * 2**20


@dataclass(frozen=True)
class ArchiveLimits:
    """How big an archive may unpack: ``[ingest]`` of ``windl.toml`` may change each.

    An archive's directory says what it will unpack to, so most bombs (a 1 GiB member of
    zeros packs into 1 MB) are refused before a byte is written; the bytes written are
    counted as well, since a zip's directory can lie about its sizes.
    """

    #: bytes all members unpack to together
    max_bytes: int = 200 * 2**30
    #: unpacked bytes per byte of archive (DICOM and EEG pack 2-10:1; zeros 1000:1)
    max_ratio: float = 100.0
    #: members (files, folders and links)
    max_members: int = 1_000_000

    KEYS: ClassVar[dict[str, str]] = {
        "max_archive_bytes": "max_bytes",
        "max_archive_ratio": "max_ratio",
        "max_archive_members": "max_members",
    }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], where: Path | None = None) -> ArchiveLimits:
        """The limits of a site's ``[ingest]`` table (``settings`` is all of windl.toml)."""
        table = settings.get("ingest", {})
        if not isinstance(table, Mapping):
            raise ConfigError("[ingest] must be a table", where)
        values: dict[str, Any] = {}
        for key, field_name in cls.KEYS.items():
            if key not in table:
                continue
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"[ingest] {key} must be a positive number, not {value!r}", where)
            values[field_name] = value
        return cls(**values)

    def check_declared(self, archive: Path, sizes: Sequence[int]) -> None:
        """Refuse, before extracting, an archive whose directory exceeds a limit."""
        if len(sizes) > self.max_members:
            raise UnsafeArchive(
                f"{len(sizes)} members, more than the {self.max_members} allowed "
                "([ingest] max_archive_members in windl.toml)",
                archive,
            )
        total = sum(sizes)
        self.check_total(archive, total)
        packed = max(archive.stat().st_size, 1)
        # a small archive is no bomb whatever its ratio (a few KB of text pack 100:1)
        if total > RATIO_FROM and total / packed > self.max_ratio:
            raise UnsafeArchive(
                f"unpacks to {total} bytes, {total / packed:.0f} times its size; at most "
                f"{self.max_ratio:g} allowed ([ingest] max_archive_ratio in windl.toml)",
                archive,
            )

    def check_total(self, archive: Path, total: int) -> None:
        if total > self.max_bytes:
            raise UnsafeArchive(
                f"unpacks to more than {self.max_bytes} bytes "
                "([ingest] max_archive_bytes in windl.toml)",
                archive,
            )


def _refuse_duplicates(archive: Path, names: Iterable[PurePosixPath]) -> None:
    # the second member of a name would silently replace the first on extraction
    seen: set[PurePosixPath] = set()
    for name in names:
        if name in seen:
            raise UnsafeArchive(f"member {str(name)!r} appears twice in the archive", archive)
        seen.add(name)


def _copy_counted(
    src: IO[bytes], target: Path, declared: int, written: int, archive: Path, limits: ArchiveLimits
) -> int:
    """Copy one member to ``target``; return the archive's bytes written so far."""
    own = 0
    with open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            own += len(chunk)
            written += len(chunk)
            if own > declared:
                raise UnsafeArchive(
                    f"member {target.name!r} unpacks to more than the {declared} bytes its "
                    "header says",
                    archive,
                )
            limits.check_total(archive, written)
            out.write(chunk)
    return written


def _refuse_encrypted(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse a password-protected member by name (zipfile raised RuntimeError; fuzzing)."""
    for info in members:
        if info.flag_bits & 0x1:  # general purpose bit 0: the member is encrypted
            raise BadInput(
                f"member {info.filename!r} is encrypted; give the archive without a password",
                archive,
            )


def _extract_zip(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            names = [_check_member_name(archive, info.filename) for info in members]
            _refuse_duplicates(
                archive, (n for n, i in zip(names, members, strict=True) if not i.is_dir())
            )
            limits.check_declared(archive, [info.file_size for info in members])
            _refuse_encrypted(archive, members)
            for info, member in zip(members, names, strict=True):
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
            written = 0
            for info, member in zip(members, names, strict=True):
                target = dest.joinpath(*member.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src:
                        written = _copy_counted(
                            src, target, info.file_size, written, archive, limits
                        )
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    # a deflate stream that does not decompress: zlib.error (found by fuzzing)
                    raise BadInput(
                        f"member {info.filename!r} is corrupt ({_one_line(exc)})", archive
                    ) from None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        NotImplementedError,  # a zip version or compression method zipfile lacks (issue 22)
        UnicodeDecodeError,  # a name flagged UTF-8 that is not (issue 22)
    ) as exc:
        raise BadInput(f"not a readable zip archive ({_one_line(exc)})", archive) from None


def _extract_tar(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            names = [_check_member_name(archive, info.name) for info in members]
            _refuse_duplicates(
                archive, (n for n, i in zip(names, members, strict=True) if not i.isdir())
            )
            limits.check_declared(archive, [info.size for info in members])
            for info, member in zip(members, names, strict=True):
                if info.issparse():
                    # a sparse member's header size is not what it unpacks to
                    raise UnsafeArchive(f"member {info.name!r} is a sparse file", archive)
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
            # the 'data' filter re-checks everything above inside tarfile itself; a tar
            # member's data is exactly as long as its header says (sparse ones are
            # refused above), so the sizes checked are the bytes written
            tf.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BadInput(f"not a readable tar archive ({_one_line(exc)})", archive) from None


def shown_name(name: str) -> str:
    """``name`` printable: bytes that are not UTF-8 (kept by Python as surrogates) escaped."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _require_utf8(rel: PurePosixPath, shown: Path) -> None:
    # git, JSON records and BIDS all need text names; a name in another encoding (Latin-1
    # from an old scanner PC) cannot be stored as it is, and guessing its encoding could
    # turn two different names into one
    try:
        str(rel).encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            f"{shown_name(str(rel))}: file name is not UTF-8; rename it", shown_name_path(shown)
        ) from None


def shown_name_path(path: Path) -> Path:
    """``path`` with any bytes that are not UTF-8 escaped (for error messages)."""
    return Path(shown_name(str(path)))


def _resolved_link(path: Path, rel: PurePosixPath, root: Path, shown: Path) -> None:
    """Refuse a link that leaves ``root``, loops or points nowhere."""
    target = os.readlink(path)
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a loop so; 3.13 as OSError(ELOOP)
        raise BadInput(f"{rel} is a symbolic link loop", shown) from None
    except OSError as exc:
        problem = "a symbolic link loop" if exc.errno == errno.ELOOP else "a broken link"
        raise BadInput(f"{rel} is {problem}", shown) from None
    if _link_escapes(rel, target) or not resolved.is_relative_to(root.resolve()):
        raise UnsafeArchive(f"{rel} is a link to {target!r} outside the source", shown)
    if not resolved.is_file():
        raise BadInput(f"{rel} is a link to something that is not a file", shown)


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
            _require_utf8(rel, shown)
            if path.is_symlink():
                _resolved_link(path, rel, root, shown)
            elif not path.is_file():
                continue
            if not os.access(path, os.R_OK):
                raise BadInput("file is not readable (permission denied)", path)
            files.append(SourceFile(path=path, relpath=rel))
    return files


@contextmanager
def open_source(
    source: Path, scratch: Path, limits: ArchiveLimits | None = None
) -> Iterator[list[SourceFile]]:
    """Yield the files of ``source``; archives are extracted under ``scratch`` first.

    ``limits`` bound what an archive may unpack to (default: :class:`ArchiveLimits`).
    ``scratch`` is removed afterwards whatever happens.
    """
    limits = limits or ArchiveLimits()
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
            (_extract_zip if kind == "zip" else _extract_tar)(source, scratch, limits)
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
