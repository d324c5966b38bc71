"""Receive: a DICOM Storage SCP that spools instances durably, routes and hands them off.

The way of one instance::

    C-STORE ─▶ network (allowlist) ─▶ scp (check) ─▶ spool (.part, fsync) ─▶ Success
    spool/<study-uid>/ idle for ``idle_seconds`` ─▶ worker: routing ─▶ windl.ingest.ingest
                                                                └▶ quarantine (unroutable)

Layout under ``<site>/receive/``::

    spool/.incoming/<sop>.<size>.<crc32>.<thread>.part     being written; kept after a crash
                                                   only if size and CRC match (then moved in)
    spool/<study-uid>/series/<series-uid>/<sop-uid>.dcm   received, acknowledged, not yet handed off
    spool/<study-uid>/study.json                   called/calling AE of the first association
    handoff/<study-uid>/                           claimed by the worker, being ingested
    quarantine/<study-uid>/ + reason.json          unroutable or failed; kept, never dropped
                                                   (``windl receive --requeue``)
    quarantine/conflicts/<study-uid>/<sop>.<ns>.dcm  other bytes under a SOP Instance UID
                                                   already received (the first is kept too)
    events.jsonl                                   hand-offs and errors (``--status`` reads it)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl.config import Site
from windl.errors import ConfigError


@dataclass(frozen=True)
class ReceiveSettings:
    """The ``[receive]`` section of ``windl.toml``."""

    ae_title: str = "WINDL"
    port: int = 11112
    host: str = "0.0.0.0"
    allowed_calling: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    idle_seconds: float = 60.0
    commit_per: str = "session"  # or "series"
    convert: bool = False
    routes: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @classmethod
    def from_site(cls, site: Site, port: int | None = None) -> ReceiveSettings:
        """Read and check ``[receive]``; ``port`` overrides the setting."""
        section = site.settings.get("receive", {})
        if not isinstance(section, dict):
            raise ConfigError("[receive] must be a table", site.root / "windl.toml")
        ae_title = str(section.get("ae_title", cls.ae_title))
        if not 0 < len(ae_title) <= 16:
            raise ConfigError(f"receive.ae_title {ae_title!r}: 1 to 16 characters")
        commit_per = str(section.get("commit_per", cls.commit_per))
        if commit_per not in ("session", "series"):
            raise ConfigError(f"receive.commit_per {commit_per!r}: 'session' or 'series'")
        routes = section.get("routes", [])
        if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
            raise ConfigError("receive.routes must be an array of tables ([[receive.routes]])")
        toml = site.root / "windl.toml"
        for index, rule in enumerate(routes):
            # checked here, so a bad rule stops the receiver at start, not each hand-off
            if "study" not in rule:
                raise ConfigError(f"receive.routes[{index}] has no 'study'", toml)
            match = rule.get("match", {})
            if not isinstance(match, dict):
                raise ConfigError(f"receive.routes[{index}].match: a table of tag = pattern", toml)
            for keyword, pattern in match.items():
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    raise ConfigError(
                        f"receive.routes[{index}].match.{keyword}: {exc}", toml
                    ) from None
        return cls(
            ae_title=ae_title,
            port=int(port if port is not None else section.get("port", cls.port)),
            host=str(section.get("host", cls.host)),
            allowed_calling=tuple(str(a) for a in section.get("allowed_calling", ())),
            allowed_hosts=tuple(str(h) for h in section.get("allowed_hosts", ())),
            idle_seconds=float(section.get("idle_seconds", cls.idle_seconds)),
            commit_per=commit_per,
            convert=bool(section.get("convert", cls.convert)),
            routes=tuple(routes),
        )


def receive_root(site: Site) -> Path:
    """``<site>/receive``: spool, hand-off and quarantine folders, event log."""
    return site.root / "receive"
