"""Typed errors. Each one is a user-facing problem that the CLI prints as one line.

Anything that is *not* a :class:`WindlError` is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class WindlError(Exception):
    """Base class of errors caused by input, configuration or environment."""

    exit_code = 1

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class SiteNotFound(WindlError):
    """No windl site could be located (no --site, $WINDL_SITE or windl.toml above cwd)."""


class SiteExists(WindlError):
    """``site init`` was pointed at a folder that already holds a site."""


class StudyNotFound(WindlError):
    """A study name that is not in the site's superdataset."""


class StudyExists(WindlError):
    """``study create`` for a name that is taken."""


class InvalidLabel(WindlError):
    """A study, subject or session label that BIDS or windl does not allow."""


class BadInput(WindlError):
    """An input file or folder that cannot be ingested (names the file and the reason)."""


class UnsafeArchive(BadInput):
    """An archive member that would escape the extraction folder."""


class ConflictingInput(BadInput):
    """Input that clashes with data already in the dataset (same path, other content)."""


class ToolMissing(WindlError):
    """An external program that windl needs is not installed."""

    exit_code = 3


class DatasetDirty(WindlError):
    """A dataset has uncommitted changes that windl did not make."""


class ConversionFailed(WindlError):
    """heudiconv/dcm2niix failed on a session."""


class NothingToConvert(WindlError):
    """No ingested session matches the request."""


class ValidationFailed(WindlError):
    """The BIDS validator found errors."""

    exit_code = 2


class ConfigError(WindlError):
    """windl.toml or a study settings file is malformed."""


class UnknownParticipant(WindlError):
    """A subject the study does not know (no ``sub-*`` folder, participants.tsv row or raw data)."""


class InvalidConsent(BadInput):
    """A consent record or consent table that cannot be accepted (names the row and the reason)."""


class PseudonymMissing(WindlError):
    """No release label exists yet for a participant in a scope, and none was to be created."""


class InvalidMetadata(BadInput):
    """Metadata that its schema refuses (e.g. a DOI's DataCite record); names the first problem."""


class ReceiveError(WindlError):
    """The DICOM receiver cannot start or its state cannot be read (port, settings, spool)."""


class MalformedDataset(BadInput):
    """Received DICOM dataset bytes that are not one complete dataset (truncated, no UIDs)."""


class Unroutable(ReceiveError):
    """A received study that no routing rule of ``[[receive.routes]]`` maps to a windl study."""


class ReleaseRefused(WindlError):
    """A release that cannot be built as asked (no consented participant, bad version, ...)."""


def capped_list(items: Sequence[str], log: Path, first: int = 5) -> str:
    """``items`` for an error line: how many, the ``first`` few, and the log with them all.

    A release of a large dataset can fail on thousands of files; one line naming all
    of them (57 KB was seen) is unreadable, so the full list goes to ``log``, one a line.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"{item}\n" for item in items), encoding="utf-8")
    shown = "; ".join(items[:first])
    more = f"; and {len(items) - first} more" if len(items) > first else ""
    return f"{shown}{more} (all {len(items)} listed in {log})"
