"""Hand-off: idle studies from the spool into the datasets, through ``windl ingest``.

The worker runs in its own thread; the SCP never waits for it. A study counts as complete
once nothing arrived for ``idle_seconds``. It is then moved to ``handoff/`` (later
instances of the same study start a new spool folder), routed, and ingested with
:func:`windl.ingest.ingest`, the code path of ``windl ingest`` — one commit per session,
or per series with ``commit_per = "series"`` — and optionally converted. Only then is the
hand-off folder removed. Ingest is idempotent, so a hand-off cut by a crash is simply
done again on the next start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pydicom

from windl.checkpoints import checkpoint
from windl.config import Site, load_site
from windl.errors import Unroutable, WindlError
from windl.ingest import ingest
from windl.locks import study_lock
from windl.receive import ReceiveSettings
from windl.receive.routing import Destination, forced_rules, route
from windl.receive.spool import SERIES_DIR, STUDY_FILE, Spool, study_files

log = logging.getLogger("windl.receive")


class Worker(threading.Thread):
    """Hands idle studies off to ingest (and convert) until ``stop`` is set.

    Parameters
    ----------
    site, settings, spool
        What to hand off, with which rules, from where.
    stop
        Set to end the worker after the hand-off in progress.
    poll_seconds
        How often to look for idle studies.
    """

    def __init__(
        self,
        site: Site,
        settings: ReceiveSettings,
        spool: Spool,
        stop: threading.Event,
        poll_seconds: float = 0.5,
    ) -> None:
        super().__init__(name="windl-receive-worker", daemon=True)
        self.site = site
        self.settings = settings
        self.spool = spool
        self.stop = stop
        self.poll_seconds = poll_seconds

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep receiving whatever happens here
                log.exception("worker error")
                self.spool.log_event("worker error", error=f"{type(exc).__name__}: {exc}")
            self.stop.wait(self.poll_seconds)

    def run_once(self) -> int:
        """Hand off what was claimed before and every idle study; return how many."""
        done = 0
        for claimed in self.spool.claimed():
            if self.stop.is_set():
                return done
            self.hand_off(claimed)
            done += 1
        for study_dir in self.spool.idle_studies(self.settings.idle_seconds):
            if self.stop.is_set():
                return done
            self.hand_off(self.spool.claim(study_dir))
            done += 1
        return done

    def hand_off(self, claimed: Path) -> None:
        """Route, ingest and (optionally) convert one claimed study; quarantine on failure."""
        checkpoint("receive-claimed")
        files = study_files(claimed)
        if not files:
            self.spool.finish(claimed)
            return
        info = {}
        if (claimed / STUDY_FILE).is_file():
            info = json.loads((claimed / STUDY_FILE).read_text(encoding="utf-8"))
        header = pydicom.dcmread(files[0], stop_before_pixels=True)
        rules = self._routes()
        if info.get("route_to"):  # requeued by an operator with --study
            rules = forced_rules(rules, str(info["route_to"]))
        try:
            dest = route(self.site, rules, header, info.get("called_ae", ""))
        except Unroutable as exc:
            log.warning("unroutable", extra={"study_uid": claimed.name, "reason": exc.message})
            self.spool.to_quarantine(claimed, exc.message, files=len(files), **info)
            return
        started = time.monotonic()
        # the study's lock, as `windl ingest` takes it: an operator's ingest or convert of
        # the same study waits for the hand-off, and the hand-off for them
        with study_lock(self.site.root, dest.study):
            try:
                commits = self._ingest(claimed, dest)
            except WindlError as exc:
                log.error("ingest failed", extra={"study_uid": claimed.name, "reason": str(exc)})
                self.spool.to_quarantine(
                    claimed, f"ingest failed: {exc}", files=len(files), study=dest.study, **info
                )
                return
            checkpoint("receive-ingested")
            conversion = None
            if self.settings.convert:
                conversion = self._convert(dest)
        self.spool.log_event(
            "ingested",
            study_uid=claimed.name,
            study=dest.study,
            subject=dest.subject,
            session=dest.session,
            files=len(files),
            commits=commits,
            conversion=conversion,
            seconds=round(time.monotonic() - started, 2),
            rule=dest.rule,
        )
        log.info(
            "ingested",
            extra={"study_uid": claimed.name, "study": dest.study, "files": len(files)},
        )
        self.spool.finish(claimed)

    def _routes(self) -> tuple[dict[str, Any], ...]:
        """The routing rules in ``windl.toml`` now: fixed rules apply without a restart."""
        try:
            return ReceiveSettings.from_site(load_site(self.site.root)).routes
        except WindlError as exc:  # a half-edited file: keep the rules it started with
            self.spool.log_event("settings error", error=str(exc))
            return self.settings.routes

    def _ingest(self, claimed: Path, dest: Destination) -> list[str]:
        source = claimed / SERIES_DIR
        sources = (
            sorted(p for p in source.iterdir() if p.is_dir())
            if self.settings.commit_per == "series"
            else [source]
        )
        commits = []
        for folder in sources:
            result = ingest(self.site, dest.study, folder, dest.subject, dest.session)
            if result.commit:
                commits.append(result.commit)
        return commits

    def _convert(self, dest: Destination) -> str:
        from windl.convert import convert

        try:
            results = convert(self.site, dest.study, dest.subject, dest.session)
        except WindlError as exc:
            self.spool.log_event("conversion failed", study=dest.study, error=str(exc))
            return f"failed: {exc}"
        failed = [r for r in results if r.status == "failed"]
        if failed:
            error = "; ".join(f"{r.prefix}: {r.error}" for r in failed)
            self.spool.log_event("conversion failed", study=dest.study, error=error)
            return f"failed: {error}"
        return ",".join(sorted({r.status for r in results})) or "nothing to convert"
