"""``datalad clone`` and ``datalad get`` over HTTP, with a token checked on every request.

A published members or external release is served at ``/git/<study>/<scope>`` straight
from its RIA store (``<site>/stores/<scope>/alias/<study>-<scope>``, a bare repository that
holds only what ``windl publish`` pushed: published tags and their content):

* git's smart HTTP protocol (``info/refs?service=git-upload-pack`` and POST
  ``git-upload-pack``) by ``git http-backend`` run as a CGI per request, streamed both ways;
  pushing is impossible;
* ``config``: what git-annex reads from an HTTP remote to learn its annex UUID. The portal
  answers with the UUID of the store's ORA special remote: the location log says the
  content is there, and the objects served below are exactly that remote's objects;
* ``annex/objects/<hashdir>/<KEY>/<KEY>``: the content. git-annex tries the lower-case
  hash directories (``abc/def``) first, then the mixed-case ones (``Xk/65``) that DataLad's
  ORA remote writes; the file is served from whichever exists in the store.

Every request needs HTTP Basic authentication with a personal token as the password (git
and git-annex ask the user's git credential helpers after a 401). See :mod:`.rights`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Hashable
from pathlib import Path
from typing import TypeVar

from windl import datasets
from windl.config import Site
from windl.lru import LRU
from windl.share.publish import RIA_SCOPES, ria_alias, store_path

_HASHDIR = re.compile(r"^[0-9a-zA-Z]{2,3}$")
# git-annex keys of releases: BACKEND-sSIZE--HASH.ext (no slash, no leading dot)
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,+=~-]*$")


T = TypeVar("T")


class _StateCache:
    """Answers about store repositories, kept while the repository's state is unchanged.

    The state is the modification times of what ``windl publish`` changes (the refs, the
    packed refs, the config): a publish makes every earlier answer stale, and nothing
    else writes to a store. This spares a git process per clone, page and config request.
    """

    def __init__(self, size: int = 512) -> None:
        self._answers = LRU(size)

    @staticmethod
    def state(repo: Path) -> tuple[int, ...]:
        stamps = []
        for part in ("packed-refs", "refs/tags", "refs/heads", "HEAD", "config"):
            try:
                stamps.append((repo / part).stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        return tuple(stamps)

    def peek(self, key: Hashable, state: tuple[int, ...]) -> tuple[bool, object]:
        hit, kept = self._answers.get(key)
        if hit and kept[0] == state:
            return True, kept[1]
        return False, None

    def put(self, key: Hashable, state: tuple[int, ...], value: object) -> None:
        self._answers.put(key, (state, value))

    def get(self, repo: Path, key: Hashable, compute: Callable[[], T]) -> T:
        state = self.state(repo)
        hit, value = self.peek(key, state)
        if hit:
            return value  # type: ignore[return-value]
        computed = compute()
        self.put(key, state, computed)
        return computed


_cache = _StateCache()


def published_repo(site: Site, study: str, scope: str) -> Path | None:
    """The store repository of a published members/external release, or None."""
    if scope not in RIA_SCOPES or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", study):
        return None
    alias = store_path(site, scope) / "alias" / ria_alias(study, scope)
    repo = alias.resolve() if alias.is_symlink() else None
    if repo is None or not (repo / "config").is_file() or not (repo / "refs").is_dir():
        return None
    return repo


def served_config(repo: Path) -> bytes:
    """The git config git-annex reads from the HTTP remote: bare, with the store's UUID."""

    def compute() -> bytes:
        lines = ["[core]", "\tbare = true"]
        uuid = datasets.config_value(repo, "datalad.ora-remote.uuid")
        if uuid:
            lines += ["[annex]", f"\tuuid = {uuid}"]
        return ("\n".join(lines) + "\n").encode()

    return _cache.get(repo, (repo, "config"), compute)


def newest_version(repo: Path) -> str:
    """The newest published version tag (``vX.Y.Z``) of a store repository ("" if none)."""

    def compute() -> str:
        found = datasets.git(repo, "tag", "--list", "v*", "--sort=-v:refname").split()
        return found[0] if found else ""

    return _cache.get(repo, (repo, "newest"), compute)


def published_text(repo: Path, tag: str | None, path: str) -> str | None:
    """A text file of a published version (``tag``) in the store, or None."""
    if not tag:
        return None

    def compute() -> str | None:
        proc = datasets.run_tool(["git", "-C", str(repo), "show", f"{tag}:{path}"], check=False)
        return proc.stdout if proc.returncode == 0 else None

    return _cache.get(repo, (repo, "text", tag, path), compute)


def annex_object(repo: Path, first: str, second: str, key: str) -> Path | None:
    """The stored file of ``key`` at ``annex/objects/first/second/key/key``, or None."""
    if not (_HASHDIR.match(first) and _HASHDIR.match(second) and _KEY.match(key)):
        return None
    if ".." in key:
        return None
    path = repo / "annex" / "objects" / first / second / key / key
    return path if path.is_file() else None


def store_relative(site: Site, scope: str, path: Path) -> str:
    """``path`` (an object in ``scope``'s store) relative to that store, as a URL path."""
    return path.resolve().relative_to(store_path(site, scope).resolve()).as_posix()


async def advertisement(
    repo: Path, headers: dict[str, str], remote_user: str, remote_addr: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The answer to ``info/refs?service=git-upload-pack``, from git or from the cache.

    The advertisement depends only on the refs and the protocol version the client asks
    for (``Git-Protocol``), so one git process per publish and version serves every clone.
    """
    protocol = headers.get("git-protocol", "")
    # one entry per protocol version, whatever else a client puts in the header
    version = "2" if "version=2" in protocol else "1" if "version=1" in protocol else ""
    key = (repo, "advertisement", version)
    state = _cache.state(repo)
    hit, cached = _cache.peek(key, state)
    if hit:
        return cached  # type: ignore[return-value]
    status, out_headers, stream = await run_backend(
        repo,
        "GET",
        "info/refs",
        "service=git-upload-pack",
        {"git-protocol": protocol} if protocol else {},
        b"",
        remote_user,
        remote_addr,
    )
    body = b"".join([chunk async for chunk in stream])
    answer = (status, out_headers, body)
    if status == 200:
        _cache.put(key, state, answer)
    return answer


async def run_backend(
    repo: Path,
    method: str,
    path_info: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    remote_user: str,
    remote_addr: str,
) -> tuple[int, list[tuple[str, str]], AsyncIterator[bytes]]:
    """Run ``git http-backend`` for one request; returns status, headers and the body stream.

    The request body (git's negotiation: wants and haves) is read whole before the answer
    starts: the server's disconnect watch shares the request's channel once a streamed
    answer runs. The answer (the pack, which can be large) is streamed, and the body is fed
    to the CGI while its answer is read, so a full pipe never blocks either side.
    """
    cgi = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/" + path_info,
        "QUERY_STRING": query,
        "REMOTE_USER": remote_user,
        "REMOTE_ADDR": remote_addr,
        "CONTENT_TYPE": headers.get("content-type", ""),
    }
    if "content-length" in headers:
        cgi["CONTENT_LENGTH"] = headers["content-length"]
    if "content-encoding" in headers:
        cgi["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
    if "git-protocol" in headers:
        cgi["GIT_PROTOCOL"] = headers["git-protocol"]
    proc = await datasets.start_http_backend(repo, cgi)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def feed() -> None:
        try:
            if body:
                stdin.write(body)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            # the backend answered (and exited) without reading everything; uvloop says
            # so with RuntimeError ("the handler is closed"), asyncio with BrokenPipeError
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                stdin.close()

    feeder = asyncio.create_task(feed())
    # read the CGI's stderr all along: a full pipe would stall it mid-answer
    errors = asyncio.create_task(proc.stderr.read())
    head = b""
    while b"\r\n\r\n" not in head and b"\n\n" not in head:
        chunk = await stdout.read(65536)
        if not chunk:
            break
        head += chunk
    separator = b"\r\n\r\n" if b"\r\n\r\n" in head else b"\n\n"
    header_block, _, rest = head.partition(separator)
    status = 200
    out_headers: list[tuple[str, str]] = []
    for line in header_block.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if not name.strip():
            continue
        if name.strip().lower() == "status":
            status = int(value.strip().split()[0])
        else:
            out_headers.append((name.strip(), value.strip()))

    async def stream() -> AsyncIterator[bytes]:
        try:
            if rest:
                yield rest
            while chunk := await stdout.read(65536):
                yield chunk
            await feeder
            await errors
            await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    if not header_block:
        # the backend died before answering: report its error
        await feeder
        err = (await errors).decode(errors="replace").strip()
        await proc.wait()
        raise RuntimeError(f"git http-backend failed: {err or proc.returncode}")
    return status, out_headers, stream()
