"""Consent registry: which sharing scopes each participant of a study consented to.

The registry lives in the study's ``restricted/`` subdataset, which is never published or
released, as plain text in git:

``consent.tsv``
    One row per participant, the current state: ``participant_id`` (``sub-01``), ``scopes``
    (``;``-separated, from ``individuals``, ``members``, ``external``), ``form_version``,
    ``date`` (ISO date of consent) and ``withdrawn`` (ISO date, or ``n/a``).
``consent-log.tsv``
    Append-only: every change with its UTC timestamp and action (``set``, ``import``,
    ``withdraw``); earlier lines are never rewritten.

Every change is one commit in ``restricted/``. The new files are written in a scratch
worktree and the branch only fast-forwards to the finished commit
(:func:`windl.datasets.commit_files`), so a crash never leaves half a change; the commit is
then recorded in the study and the superdataset with a message that names no participant.
Readers use the committed state (``HEAD``), so a release is always built from a versioned
consent record.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from windl import clock, datasets
from windl.checkpoints import checkpoint
from windl.config import Site
from windl.errors import BadInput, InvalidConsent, UnknownParticipant, WindlError
from windl.labels import bids_label
from windl.study import Study, get_study

#: sharing scopes, narrowest first
SCOPES: tuple[str, ...] = ("individuals", "members", "external")
CONSENT_FILE = "consent.tsv"
CONSENT_LOG = "consent-log.tsv"
CONSENT_COLUMNS = ("participant_id", "scopes", "form_version", "date", "withdrawn")
LOG_COLUMNS = (
    "timestamp",
    "action",
    "participant_id",
    "scopes",
    "form_version",
    "date",
    "withdrawn",
)
#: columns of a CSV for ``windl consent import`` (form_version and date may be left empty)
IMPORT_COLUMNS = ("participant_id", "scopes", "form_version", "date")
NA = "n/a"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORM_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ConsentRecord:
    """The current consent of one participant (one row of ``consent.tsv``).

    Attributes
    ----------
    participant_id
        ``sub-<label>``, as in ``participants.tsv``.
    scopes
        The scopes consented to, in the order of :data:`SCOPES`.
    form_version
        Version of the consent form signed, if recorded.
    date
        ISO date of consent (``None`` if only a withdrawal was recorded).
    withdrawn
        ISO date of withdrawal, ``None`` while consent stands.
    """

    participant_id: str
    scopes: tuple[str, ...] = ()
    form_version: str | None = None
    date: str | None = None
    withdrawn: str | None = None

    @property
    def active(self) -> bool:
        """True unless consent was withdrawn."""
        return self.withdrawn is None

    def allows(self, scope: str) -> bool:
        """True if the participant consented to ``scope`` and has not withdrawn."""
        return self.active and scope in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scopes": list(self.scopes)}

    def to_row(self) -> list[str]:
        return [
            self.participant_id,
            ";".join(self.scopes) or NA,
            self.form_version or NA,
            self.date or NA,
            self.withdrawn or NA,
        ]

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> ConsentRecord:
        def value(key: str) -> str | None:
            text = row.get(key, NA)
            return None if text in ("", NA) else text

        scopes = value("scopes")
        return cls(
            participant_id=row["participant_id"],
            scopes=tuple(s for s in SCOPES if scopes and s in scopes.split(";")),
            form_version=value("form_version"),
            date=value("date"),
            withdrawn=value("withdrawn"),
        )


@dataclass
class ConsentChange:
    """What a ``set``, ``import`` or ``withdraw`` did.

    ``changed`` holds the new records; ``unchanged`` the participants whose record already
    said the same; ``commit`` is the new commit of ``restricted/`` (``None`` if nothing
    changed); ``published`` lists, for a withdrawal, the published versions that still
    contain the participant.
    """

    study: str
    action: str
    changed: list[ConsentRecord] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    commit: str | None = None
    published: list[PublishedVersion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "action": self.action,
            "changed": [r.to_dict() for r in self.changed],
            "unchanged": self.unchanged,
            "commit": self.commit,
            "published": [asdict(p) for p in self.published],
        }


@dataclass(frozen=True)
class PublishedVersion:
    """A tagged release version that contains a participant (under its release label)."""

    scope: str
    version: str
    tag: str
    dataset: str


# --------------------------------------------------------------------------- validation
def known_participants(study: Study) -> set[str]:
    """Participant ids (``sub-<label>``) the study knows.

    A participant is known by a ``sub-*`` folder in the study, a row of its
    ``participants.tsv``, or raw data in ``sourcedata/sub-*``.
    """
    found = {
        p.name for base in (study.root, study.sourcedata) for p in base.glob("sub-*") if p.is_dir()
    }
    table = study.root / "participants.tsv"
    if table.is_file():
        lines = table.read_text(encoding="utf-8", errors="replace").splitlines()
        header = lines[0].split("\t") if lines else []
        if "participant_id" in header:
            column = header.index("participant_id")
            for line in lines[1:]:
                values = line.split("\t")
                if len(values) > column and values[column].startswith("sub-"):
                    found.add(values[column].strip())
    return found


def participant_id(study: Study, subject: str) -> str:
    """Return ``sub-<label>`` for ``subject`` (``01`` or ``sub-01``) if the study knows it.

    Raises
    ------
    InvalidLabel
        If ``subject`` is not a valid BIDS label.
    UnknownParticipant
        If the study has no such participant (see :func:`known_participants`).
    """
    pid = f"sub-{bids_label(subject.strip(), 'sub')}"
    known = known_participants(study)
    if pid not in known:
        listed = ", ".join(sorted(known)[:5]) + (", …" if len(known) > 5 else "")
        raise UnknownParticipant(
            f"study {study.name} has no participant {pid} (no sub-* folder, participants.tsv "
            f"row or raw data; known: {listed or 'none'})"
        )
    return pid


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """Validate scopes (each value may hold several, ``;``-separated); in :data:`SCOPES` order.

    Raises
    ------
    InvalidConsent
        On an unknown scope or when no scope is given.
    """
    given = [part.strip() for value in values for part in value.split(";") if part.strip()]
    for scope in given:
        if scope not in SCOPES:
            raise InvalidConsent(f"unknown scope {scope!r} (scopes: {', '.join(SCOPES)})")
    if not given:
        raise InvalidConsent(f"no scope given (scopes: {', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in given)


def parse_date(value: str, what: str = "date") -> str:
    """Validate an ISO date ``YYYY-MM-DD`` that is not in the future.

    Raises
    ------
    InvalidConsent
        If ``value`` is not such a date.
    """
    text = value.strip()
    try:
        if not _DATE.match(text):
            raise ValueError
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidConsent(f"{what} {value!r} is not an ISO date (YYYY-MM-DD)") from None
    if day > dt.date.today():
        raise InvalidConsent(f"{what} {text} is in the future")
    return text


def parse_form_version(value: str) -> str:
    """Validate a consent-form version (letters, digits, ``.``, ``_``, ``+``, ``-``)."""
    text = value.strip()
    if not _FORM_VERSION.match(text):
        raise InvalidConsent(
            f"form version {value!r}: use letters, digits, '.', '_', '+' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return text


# --------------------------------------------------------------------------- restricted I/O
def require_restricted(study: Study) -> Path:
    """The study's ``restricted`` dataset; an error if it is not installed.

    Without this check, git run in an empty ``restricted/`` folder would act on the study
    dataset itself, and consent records could end up in a dataset that is released.
    """
    ds = study.restricted
    if not (ds / ".git").exists() or not (ds / ".datalad").is_dir():
        raise WindlError(f"the restricted subdataset of study {study.name} is not installed", ds)
    return ds


def read_restricted_text(study: Study, name: str) -> str:
    """Committed content of ``restricted/<name>`` (``""`` if it does not exist yet)."""
    ds = require_restricted(study)
    return datasets.git(ds, "cat-file", "blob", f"HEAD:{name}", check=False)


def parse_table(text: str, columns: Sequence[str], path: Path) -> list[dict[str, str]]:
    """Rows of a windl TSV as dicts; the header must hold ``columns`` (extra ones are kept)."""
    lines = [line for line in text.splitlines() if line]
    if not lines:
        return []
    header = lines[0].split("\t")
    missing = [c for c in columns if c not in header]
    if missing:
        raise WindlError(f"line 1: missing column(s) {', '.join(missing)}", path)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        values = line.split("\t")
        if len(values) != len(header):
            raise WindlError(f"line {number}: {len(values)} fields, header has {len(header)}", path)
        rows.append(dict(zip(header, values, strict=True)))
    return rows


def read_restricted_table(study: Study, name: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """Committed rows of the TSV ``restricted/<name>``."""
    return parse_table(read_restricted_text(study, name), columns, study.restricted / name)


def format_rows(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """TSV lines (no header); a value with a tab or line break is refused."""
    text = ""
    for row in rows:
        if len(row) != len(columns) or any(
            "\t" in v or "\n" in v or "\r" in v or not v for v in row
        ):
            raise WindlError(f"refusing to write a malformed TSV row: {list(row)!r}")
        text += "\t".join(row) + "\n"
    return text


def format_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A TSV with header (see :func:`format_rows`)."""
    return "\t".join(columns) + "\n" + format_rows(columns, rows)


def appended_text(
    study: Study, name: str, columns: Sequence[str], rows: Iterable[Sequence[str]]
) -> str:
    """Committed text of ``restricted/<name>`` with ``rows`` appended (earlier bytes kept)."""
    text = read_restricted_text(study, name)
    if not text:
        text = "\t".join(columns) + "\n"
    elif not text.endswith("\n"):
        text += "\n"
    return text + format_rows(columns, rows)


def record_upwards(study: Study, message: str) -> None:
    """Record ``restricted``'s commit in the study, and the study's in the superdataset.

    Only when the recorded commit differs: a dataset with untracked files but the same
    commit needs no new record.
    """
    if datasets.tree_id(study.root, "restricted") != datasets.head(study.restricted):
        datasets.record_subdataset_state(study.root, study.restricted, message)
        checkpoint("restricted-recorded")
    superdataset = study.root.parent.parent
    rel = study.root.relative_to(superdataset).as_posix()
    if (superdataset / ".datalad").is_dir() and datasets.tree_id(
        superdataset, rel
    ) != datasets.head(study.root):
        datasets.record_subdataset_state(superdataset, study.root, message)


@contextmanager
def restricted_change(study: Study) -> Iterator[None]:
    """Hold the study's ``restricted`` lock for a read-modify-commit of its records.

    On entry: an exclusive lock (so two windl processes never overwrite each other's new
    rows), removal of scratch left by a killed run, a clean tree required, and a commit
    that a killed run made but did not record yet is recorded in the study and superdataset.
    """
    ds = require_restricted(study)
    lock = ds / datasets.WINDL_GITDIR / "restricted.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            datasets.recover(ds)
            datasets.require_clean(ds)
            record_upwards(study, f"windl: record restricted state of study {study.name}")
            checkpoint("restricted-prepared")
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def commit_restricted(study: Study, contents: Mapping[str, str], message: str) -> str:
    """Write ``contents`` (file name → text) to ``restricted`` in one commit, atomically.

    The texts are written to scratch files inside ``restricted/.git/windl`` and moved into
    the commit by :func:`windl.datasets.commit_files`; the commit is then recorded in the
    study and the superdataset with a message that names no participant.

    Returns
    -------
    str
        The new commit of ``restricted``.
    """
    ds = require_restricted(study)
    scratch = ds / datasets.WINDL_GITDIR / "write" / uuid.uuid4().hex
    scratch.mkdir(parents=True)
    try:
        files: dict[str, Path] = {}
        for number, (rel, text) in enumerate(sorted(contents.items())):
            tmp = scratch / f"{number}.tmp"
            tmp.write_text(text, encoding="utf-8")
            files[rel] = tmp
        commit = datasets.commit_files(ds, files, message, move=True)
        checkpoint("restricted-committed")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    record_upwards(study, f"windl: update restricted records of study {study.name}")
    return commit


# --------------------------------------------------------------------------- queries
def read_records(study: Study) -> dict[str, ConsentRecord]:
    """Committed consent records of the study, by participant id."""
    rows = read_restricted_table(study, CONSENT_FILE, CONSENT_COLUMNS)
    return {row["participant_id"]: ConsentRecord.from_row(row) for row in rows}


def consent_record(study: Study, subject: str) -> ConsentRecord | None:
    """The committed consent record of ``subject`` (``01`` or ``sub-01``), or ``None``."""
    return read_records(study).get(f"sub-{bids_label(subject.strip(), 'sub')}")


def consented_participants(study: Study, scope: str) -> set[str]:
    """Participant ids (``sub-<label>``) whose standing consent includes ``scope``.

    Withdrawn participants and participants without a record are excluded.
    """
    (scope,) = parse_scopes([scope])
    return {pid for pid, record in read_records(study).items() if record.allows(scope)}


def consent_history(study: Study, subject: str) -> list[dict[str, str]]:
    """Every logged change of ``subject``'s consent, oldest first."""
    pid = f"sub-{bids_label(subject.strip(), 'sub')}"
    rows = read_restricted_table(study, CONSENT_LOG, LOG_COLUMNS)
    return [row for row in rows if row["participant_id"] == pid]


def show_consent(site: Site, study_name: str, subject: str | None = None) -> dict[str, Any]:
    """Consent records of a study, or one participant's record and history.

    Returns
    -------
    dict
        ``{"study", "records": [...]}``, plus ``"participant"`` and ``"history"`` when
        ``subject`` is given (``records`` is then empty if none is recorded).
    """
    study = get_study(site, study_name)
    records = read_records(study)
    if subject is None:
        return {"study": study.name, "records": [r.to_dict() for _, r in sorted(records.items())]}
    pid = participant_id(study, subject)
    record = records.get(pid)
    return {
        "study": study.name,
        "participant": pid,
        "records": [record.to_dict()] if record else [],
        "history": consent_history(study, pid),
    }


def published_versions_containing(site: Site, study: Study, subject: str) -> list[PublishedVersion]:
    """Tagged release versions (``vX.Y.Z``) of ``study`` that contain ``subject``.

    Releases are datasets under ``<site>/superdataset/releases/<study>/<scope>/``. A release
    names participants only by their release label (see :mod:`windl.pseudonyms`), so a
    version contains the participant if a path in its tree has a component ``sub-<label>``
    or one starting with ``sub-<label>_``.
    """
    from windl.pseudonyms import mapping

    pid = f"sub-{bids_label(subject.strip(), 'sub')}"
    found: list[PublishedVersion] = []
    for scope in SCOPES:
        ds = site.releases / study.name / scope
        if not (ds / ".git").exists():
            continue
        label = mapping(study, scope).get(pid)
        if label is None:
            continue
        needle = f"sub-{label}"
        tags = [
            (tuple(int(n) for n in match.groups()), tag)
            for tag in datasets.git(ds, "tag", "--list", "v*").split()
            if (match := _RELEASE_TAG.match(tag))
        ]
        for _, tag in sorted(tags):
            names = datasets.git(ds, "ls-tree", "-r", "-z", "--name-only", tag).split("\0")
            if any(
                part == needle or part.startswith(needle + "_")
                for name in names
                for part in name.split("/")
            ):
                found.append(PublishedVersion(scope, tag[1:], tag, str(ds)))
    return found


# --------------------------------------------------------------------------- changes
def _consented(
    current: ConsentRecord | None,
    pid: str,
    scopes: tuple[str, ...],
    form_version: str | None,
    date: str | None,
) -> ConsentRecord:
    """The record after ``pid`` consented to ``scopes``.

    Without a date, a consent that repeats the standing one keeps its date (so setting the
    same consent again changes nothing); any other change is dated today. A form version
    that is not given is kept from the standing record.
    """
    if date is None:
        if (
            current is not None
            and current.active
            and current.scopes == scopes
            and form_version in (None, current.form_version)
        ):
            return current
        date = clock.today()
    if form_version is None and current is not None:
        form_version = current.form_version
    if current is not None and current.withdrawn is not None and date < current.withdrawn:
        raise InvalidConsent(
            f"{pid} withdrew on {current.withdrawn}; a new consent must not be dated before that"
        )
    return ConsentRecord(pid, scopes, form_version, date, None)


def _apply(
    study: Study,
    records: Mapping[str, ConsentRecord],
    new: Mapping[str, ConsentRecord],
    action: str,
) -> ConsentChange:
    """Write the records that differ and log them, as one commit in ``restricted``."""
    changed = {pid: rec for pid, rec in sorted(new.items()) if records.get(pid) != rec}
    result = ConsentChange(
        study=study.name,
        action=action,
        changed=list(changed.values()),
        unchanged=sorted(set(new) - set(changed)),
    )
    if not changed:
        return result
    merged = {**records, **changed}
    table = format_table(CONSENT_COLUMNS, (merged[pid].to_row() for pid in sorted(merged)))
    stamp = clock.utc_stamp()
    log = appended_text(
        study, CONSENT_LOG, LOG_COLUMNS, [[stamp, action, *r.to_row()] for r in changed.values()]
    )
    what = ", ".join(changed) if len(changed) <= 5 else f"{len(changed)} participants"
    result.commit = commit_restricted(
        study,
        {CONSENT_FILE: table, CONSENT_LOG: log},
        f"windl consent {action}: {what}",
    )
    return result


def set_consent(
    site: Site,
    study_name: str,
    subject: str,
    scopes: Iterable[str],
    form_version: str | None = None,
    date: str | None = None,
) -> ConsentChange:
    """Record that ``subject`` consented to exactly ``scopes``.

    Parameters
    ----------
    site, study_name
        The site and the study.
    subject
        A participant the study knows (``01`` or ``sub-01``).
    scopes
        Scopes from :data:`SCOPES` (values may hold several, ``;``-separated).
    form_version
        Version of the consent form; kept from the standing record if not given.
    date
        ISO date of consent. Default: today, or the standing record's date when scopes and
        form version are unchanged (then nothing is committed). A consent after a
        withdrawal clears the withdrawal and must not be dated before it.
    """
    study = get_study(site, study_name)
    pid = participant_id(study, subject)
    wanted = parse_scopes(scopes)
    version = parse_form_version(form_version) if form_version is not None else None
    day = parse_date(date) if date is not None else None
    with restricted_change(study):
        records = read_records(study)
        record = _consented(records.get(pid), pid, wanted, version, day)
        return _apply(study, records, {pid: record}, "set")


def withdraw_consent(
    site: Site, study_name: str, subject: str, date: str | None = None
) -> ConsentChange:
    """Record that ``subject`` withdrew consent (on ``date``, default today).

    The record keeps what was consented to, with the withdrawal date; the participant is no
    longer in :func:`consented_participants` for any scope. Withdrawing again changes
    nothing. The result lists the published versions that still contain the participant.
    """
    study = get_study(site, study_name)
    pid = participant_id(study, subject)
    day = parse_date(date, "withdrawal date") if date is not None else clock.today()
    with restricted_change(study):
        records = read_records(study)
        current = records.get(pid) or ConsentRecord(pid)
        if current.withdrawn is None:
            if current.date is not None and day < current.date:
                raise InvalidConsent(
                    f"withdrawal date {day} is before {pid}'s consent of {current.date}"
                )
            current = ConsentRecord(pid, current.scopes, current.form_version, current.date, day)
        result = _apply(study, records, {pid: current}, "withdraw")
    result.published = published_versions_containing(site, study, pid)
    return result


def _read_import(study: Study, path: Path) -> list[tuple[int, str, ConsentRecord]]:
    """Validate every row of a consent CSV; the first bad row raises, naming its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput("no such file", path) from None
    except IsADirectoryError:
        raise BadInput("is a folder, not a CSV file", path) from None
    except UnicodeDecodeError:
        raise InvalidConsent("not UTF-8 text", path) from None
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", path) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InvalidConsent("line 1: empty file, expected a header", path) from None
    except csv.Error as exc:
        raise InvalidConsent(f"line 1: {exc}", path) from None
    expected = f"(columns: {', '.join(IMPORT_COLUMNS)})"
    unknown = [h for h in header if h not in IMPORT_COLUMNS]
    missing = [c for c in IMPORT_COLUMNS[:2] if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        problem = (
            f"unknown column {unknown[0]!r}"
            if unknown
            else f"missing column {missing[0]!r}"
            if missing
            else "a column appears twice"
        )
        raise InvalidConsent(f"line 1: {problem} {expected}", path)
    rows: list[tuple[int, str, ConsentRecord]] = []
    first_line: dict[str, int] = {}
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidConsent(f"line {reader.line_num}: {exc}", path) from None
        number = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise InvalidConsent(
                f"line {number}: {len(values)} fields, the header has {len(header)}", path
            )
        row = dict(zip(header, (v.strip() for v in values), strict=True))
        try:
            pid = participant_id(study, row["participant_id"])
            scopes = parse_scopes([row["scopes"]])
            version = parse_form_version(row["form_version"]) if row.get("form_version") else None
            day = parse_date(row["date"]) if row.get("date") else None
        except WindlError as exc:
            raise InvalidConsent(f"line {number}: {exc.message}", path) from None
        if pid in first_line:
            raise InvalidConsent(f"line {number}: {pid} is also on line {first_line[pid]}", path)
        first_line[pid] = number
        rows.append((number, pid, ConsentRecord(pid, scopes, version, day)))
    if not rows:
        raise InvalidConsent("no consent rows after the header", path)
    return rows


def import_consent(site: Site, study_name: str, path: Path) -> ConsentChange:
    """Record the consent of many participants from a CSV, in one commit.

    The CSV has the columns ``participant_id``, ``scopes`` (``;``-separated), and
    optionally ``form_version`` and ``date`` (empty cells as for :func:`set_consent`).
    All rows are validated first: the first bad one raises :class:`InvalidConsent` naming
    the file and its line, and nothing is changed.
    """
    study = get_study(site, study_name)
    rows = _read_import(study, path)
    with restricted_change(study):
        records = read_records(study)
        new: dict[str, ConsentRecord] = {}
        for number, pid, row in rows:
            try:
                new[pid] = _consented(records.get(pid), pid, row.scopes, row.form_version, row.date)
            except InvalidConsent as exc:
                raise InvalidConsent(f"line {number}: {exc.message}", path) from None
        return _apply(study, records, new, "import")
