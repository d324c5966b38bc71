"""What an operator does to the portal from the command line (``windl portal invite``,
``windl audit-log``): each opens the site's database with the portal's tables migrated."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from windl.config import Site
from windl.portal import accounts, audit
from windl.portal.app import portal_engine

DEFAULT_URL = "http://127.0.0.1:8080"


def invite(site: Site, email: str, role: str) -> accounts.User:
    """Invite ``email`` with ``role``; the invitation link uses ``[portal] url``."""
    base = site.setting("portal", "url") or DEFAULT_URL
    return accounts.invite(site, portal_engine(site), email, role, base)


def audit_log(site: Site, out: Path | None = None, since: date | None = None) -> tuple[str, int]:
    """The audit log as CSV (to ``out`` when given), from ``since`` on; text and row count."""
    return audit.export_csv(portal_engine(site), out, since)
