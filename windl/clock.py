"""The times windl writes into its records.

Event times (an audit, a grant, a pseudonym) are the wall clock in UTC. The date a
release is *built* on is what ends up in its files (``CHANGES``, ``methods.md``, the
release record, the DOI metadata); it honours ``SOURCE_DATE_EPOCH``, the
reproducible-builds convention, so that ``datalad rerun`` of a release on a later day
rebuilds the same bytes when that date is handed in.
"""

from __future__ import annotations

import datetime as dt
import os

from windl.errors import BadInput

__all__ = ["build_date", "today", "utc_stamp"]


def utc_stamp() -> str:
    """Now in UTC, to the second: ``2026-12-05T11:02:43Z``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> str:
    """Today's date (ISO 8601) on the site's clock."""
    return dt.date.today().isoformat()


def build_date() -> str:
    """The date a release is built on: ``SOURCE_DATE_EPOCH`` (UTC) when set, else today.

    Raises
    ------
    BadInput
        ``SOURCE_DATE_EPOCH`` is set but is not a whole, non-negative number of seconds.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return today()
    if not epoch.isdigit():
        raise BadInput(f"SOURCE_DATE_EPOCH={epoch!r}: not a whole number of seconds since 1970")
    try:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).date().isoformat()
    except (OverflowError, ValueError, OSError) as err:
        raise BadInput(f"SOURCE_DATE_EPOCH={epoch}: out of range ({err})") from None
