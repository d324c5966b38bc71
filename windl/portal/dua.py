"""The Data Usage Agreement: versioned texts, and who accepted which version when.

The texts are ``<version>.md`` files, by default windl's ``templates/dua/`` (the same text a
release ships as ``DUA.md``); ``windl.toml`` ``[portal] dua_dir`` points at another folder.
The newest version is the current one, and only its acceptance counts: a new version
needs a new acceptance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from windl.config import TEMPLATES, Site
from windl.errors import ConfigError
from windl.portal import audit
from windl.portal.tables import dua_acceptances


@dataclass(frozen=True)
class Agreement:
    """One version of the DUA."""

    version: str
    text: str


def dua_dir(site: Site) -> Path:
    """The folder holding the DUA versions."""
    configured = site.setting("portal", "dua_dir")
    if not configured:
        return TEMPLATES / "dua"
    path = Path(configured)
    return path if path.is_absolute() else site.root / path


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def versions(site: Site) -> list[str]:
    """All DUA versions, oldest first."""
    folder = dua_dir(site)
    found = []
    for path in folder.glob("*.md"):
        try:
            _version_key(path.stem)
        except ValueError:
            raise ConfigError("a DUA file must be named <version>.md, e.g. 1.0.md", path) from None
        found.append(path.stem)
    if not found:
        raise ConfigError("no Data Usage Agreement (<version>.md) in this folder", folder)
    return sorted(found, key=_version_key)


_current: dict[Path, tuple[int, Agreement]] = {}


def current(site: Site) -> Agreement:
    """The newest DUA version and its text (read again only when the folder changes).

    A new version is a new file, which changes the folder's modification time; an edit
    of a published version's text in place is not a new version and is not looked for.
    """
    folder = dua_dir(site)
    try:
        stamp = folder.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = -1
    cached = _current.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    version = versions(site)[-1]
    agreement = Agreement(version, (folder / f"{version}.md").read_text(encoding="utf-8"))
    _current[folder] = (stamp, agreement)
    return agreement


def accept(engine: Engine, user_id: int, actor: str, version: str, remote_addr: str) -> bool:
    """Store that ``user_id`` accepted DUA ``version``; False when it was accepted already."""
    with engine.begin() as connection:
        exists = connection.execute(
            sa.select(dua_acceptances.c.id).where(
                dua_acceptances.c.user_id == user_id, dua_acceptances.c.dua_version == version
            )
        ).first()
        if exists:
            return False
        connection.execute(
            dua_acceptances.insert().values(
                user_id=user_id,
                dua_version=version,
                accepted_at=audit.now(),
                remote_addr=remote_addr,
            )
        )
        audit.record(connection, "dua-accept", actor, version=version, remote_addr=remote_addr)
    return True


def accepted_at(engine: Engine, user_id: int, version: str) -> datetime | None:
    """When ``user_id`` accepted DUA ``version``, or None."""
    with engine.connect() as connection:
        value = connection.execute(
            sa.select(dua_acceptances.c.accepted_at).where(
                dua_acceptances.c.user_id == user_id, dua_acceptances.c.dua_version == version
            )
        ).scalar()
    return audit.as_utc(value) if value is not None else None
