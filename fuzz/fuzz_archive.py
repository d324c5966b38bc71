"""Fuzz the archive listing and its limits: :func:`windl.ingest.sources.open_source`."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from common import scratch, write_seeds

from windl.errors import WindlError
from windl.ingest.sources import ArchiveLimits, open_source

MAX_LEN = 8192
#: small enough that a zip bomb in a few KB cannot fill the disk; the checks are the same
LIMITS = ArchiveLimits(max_bytes=64 * 2**20, max_members=10_000)
_KINDS = ("x.zip", "x.tar", "x.tar.gz", "x.tgz")


def one_input(data: bytes) -> None:
    # first byte: which name (so which reader); the rest: the archive's bytes
    if not data:
        return
    work = scratch("archive")
    source = work / _KINDS[data[0] % len(_KINDS)]
    source.write_bytes(data[1:])
    try:
        with open_source(source, work / "unpacked", LIMITS) as files:
            for file in files:
                file.path.stat()
    except WindlError:
        pass


def _zip(members: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        if link:
            info = zipfile.ZipInfo(link[0])
            info.external_attr = (0o120777) << 16
            zf.writestr(info, link[1])
    return out.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w", links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return out.getvalue()


def seed(corpus: Path) -> None:
    files = {"sub/a.txt": b"hello\n" * 20, "sub/b.dcm": bytes(128) + b"DICM" + bytes(64)}
    write_seeds(
        corpus,
        {
            "zip": b"\x00" + _zip(files),
            "zip-dotdot": b"\x00" + _zip({"../evil": b"x"}),
            "zip-link": b"\x00" + _zip(files, ("sub/l", "../../etc/passwd")),
            "zip-zeros": b"\x00" + _zip({"z": bytes(2**20)}),
            "tar": b"\x01" + _tar(files),
            "tar-link": b"\x01" + _tar(files, links={"sub/l": "a.txt", "sub/m": "/etc"}),
            "tar-gz": b"\x02" + _tar(files, "w:gz"),
        },
    )
