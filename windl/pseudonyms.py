"""Release labels: new random participant (and date-like session) labels for releases.

A release names a participant only by a *release label*: :data:`LABEL_LENGTH` random
letters and digits from :mod:`secrets`, BIDS-valid, drawn once per study, scope and
participant and reused by every later version of that scope's release line. Labels are
unique within the study (case-insensitively, for case-insensitive file systems), across all
scopes, so two scopes' releases cannot be linked by label; a label never equals a study
label of any participant and is not derived from it.

Session labels that encode a date (``20180918``, ``2018-09-18``, ``180918``, any run of six
or more digits, …; see :func:`is_date_like`) are re-keyed the same way, per participant and
scope, and so are labels a person typed (``JohnsVisit``): only short numbers (``1``,
``02``) and the labels the study approved (``[vocabulary] ses = ["pre", "post"]``) are kept.

The key lives only in the study's ``restricted/`` subdataset, which is never released:
``pseudonyms.tsv`` (scope, participant_id, release_label, created) and
``session-pseudonyms.tsv`` (scope, participant, session, release_session). Rows are only
ever added; the new labels of one call are one commit (see :func:`ensure_labels`).

Every other entity label (``task``, ``acq``, ``rec``, ``dir``, ...) and the free
``B0FieldIdentifier`` labels of a release are vetted: one the study has not approved
(:mod:`windl.vocabulary`) is re-keyed to a neutral ``<entity><n>`` (``task-task1``,
``acq-acq2``), numbered per scope and entity in order of first use and kept for every later
version of the scope's release line: ``entity-labels.tsv`` (scope, entity, label,
release_label, created; see :func:`ensure_entity_labels`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable, Mapping

from windl.clock import utc_stamp
from windl.consent import (
    appended_text,
    commit_restricted,
    known_participants,
    parse_scopes,
    participant_id,
    read_restricted_table,
    restricted_change,
)
from windl.errors import InvalidLabel, PseudonymMissing
from windl.labels import bids_label
from windl.study import Study
from windl.vocabulary import Vocabulary, vocabulary_of

PSEUDONYMS_FILE = "pseudonyms.tsv"
SESSION_PSEUDONYMS_FILE = "session-pseudonyms.tsv"
PSEUDONYM_COLUMNS = ("scope", "participant_id", "release_label", "created")
SESSION_COLUMNS = ("scope", "participant", "session", "release_session")
LABEL_LENGTH = 8
_ALPHABET = string.ascii_letters + string.digits

_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"
_DATE_PATTERNS = (
    re.compile(r"\d{6,}"),  # 20180918, 180918, 18092018, any long run of digits
    re.compile(r"\d{1,4}[-_./]\d{1,2}[-_./]\d{1,4}"),  # 2018-09-18, 18.09.2018, 9/18/18
    re.compile(rf"\d{{1,2}}[-_.]?{_MONTH}", re.IGNORECASE),  # 18sep2018, 18-Sept
    re.compile(rf"{_MONTH}[-_.]?\d{{2,4}}", re.IGNORECASE),  # sep2018, Sept-18
)
_SESSION_TEXT = re.compile(r"^[A-Za-z0-9._-]+$")
#: session labels of at most this many digits are kept (visit numbers, not dates)
_KEPT_SESSION_DIGITS = 3


def is_date_like(label: str) -> bool:
    """True if a session label looks like it encodes a date (and must be re-keyed).

    Examples
    --------
    >>> [is_date_like(s) for s in ("20180918", "2018-09-18", "180918", "1", "pre", "ge")]
    [True, True, True, False, False, False]
    """
    text = label.removeprefix("ses-")
    return any(p.search(text) for p in _DATE_PATTERNS)


def _scope(scope: str) -> str:
    (valid,) = parse_scopes([scope])
    return valid


def _pid(subject: str) -> str:
    return f"sub-{bids_label(subject.strip(), 'sub')}"


def _random_label(taken: set[str]) -> str:
    """A new label: not in ``taken`` (casefolded), not date-like; added to ``taken``."""
    while True:
        label = "".join(secrets.choice(_ALPHABET) for _ in range(LABEL_LENGTH))
        if label.casefold() not in taken and not is_date_like(label):
            taken.add(label.casefold())
            return label


# --------------------------------------------------------------------------- participants
def mapping(study: Study, scope: str) -> dict[str, str]:
    """Committed release labels of ``scope``: participant id (``sub-01``) → release label.

    Release labels are bare BIDS labels; a release names the participant ``sub-<label>``.
    """
    scope = _scope(scope)
    rows = read_restricted_table(study, PSEUDONYMS_FILE, PSEUDONYM_COLUMNS)
    return {r["participant_id"]: r["release_label"] for r in rows if r["scope"] == scope}


def ensure_labels(study: Study, scope: str, subjects: Iterable[str]) -> dict[str, str]:
    """Release labels of ``subjects`` in ``scope``, creating the missing ones in one commit.

    Parameters
    ----------
    study
        The study; its ``restricted`` subdataset holds the key.
    scope
        One of :data:`windl.consent.SCOPES`.
    subjects
        Participants the study knows (``01`` or ``sub-01``).

    Returns
    -------
    dict[str, str]
        Participant id (``sub-01``) → release label, for each of ``subjects``.

    Raises
    ------
    UnknownParticipant
        If the study does not know one of ``subjects``.
    """
    scope = _scope(scope)
    pids = sorted({participant_id(study, s) for s in subjects})
    known = mapping(study, scope)
    if all(pid in known for pid in pids):
        return {pid: known[pid] for pid in pids}
    with restricted_change(study):
        rows = read_restricted_table(study, PSEUDONYMS_FILE, PSEUDONYM_COLUMNS)
        known = {r["participant_id"]: r["release_label"] for r in rows if r["scope"] == scope}
        taken = {r["release_label"].casefold() for r in rows}
        taken |= {pid.removeprefix("sub-").casefold() for pid in known_participants(study)}
        created = utc_stamp()
        new = []
        for pid in pids:
            if pid not in known:
                known[pid] = _random_label(taken)
                new.append([scope, pid, known[pid], created])
        if new:
            text = appended_text(study, PSEUDONYMS_FILE, PSEUDONYM_COLUMNS, new)
            commit_restricted(
                study,
                {PSEUDONYMS_FILE: text},
                f"windl pseudonyms: {len(new)} new release labels for scope {scope}",
            )
    return {pid: known[pid] for pid in pids}


def release_label(study: Study, scope: str, subject: str, create: bool = True) -> str:
    """The release label of ``subject`` in ``scope`` (created and committed if new).

    Raises
    ------
    PseudonymMissing
        If ``create`` is false and the participant has no label in ``scope`` yet.
    """
    if not create:
        pid = _pid(subject)
        label = mapping(study, scope).get(pid)
        if label is None:
            raise PseudonymMissing(f"{pid} has no release label in scope {scope} of {study.name}")
        return label
    return ensure_labels(study, scope, [subject])[participant_id(study, subject)]


# --------------------------------------------------------------------------- sessions
def session_kept(study: Study, session: str) -> bool:
    """Whether a session label is released as it is: a short number or a label the study
    approved (``[vocabulary] ses``), and never one that looks like a date.

    Anything else was typed by a person (``ses-JohnsVisit``) and is re-keyed like a date.
    """
    if is_date_like(session):
        return False
    if session.isdigit() and len(session) <= _KEPT_SESSION_DIGITS:
        return True
    return vocabulary_of(study.settings(), study.code / "study.toml").approves("ses", session)


def _session(session: str) -> str:
    """A session label as given (without ``ses-``); date-like ones may hold ``-._``."""
    text = session.strip().removeprefix("ses-")
    if is_date_like(text):
        if not _SESSION_TEXT.match(text):
            raise InvalidLabel(f"invalid session label {session!r}")
        return text
    return bids_label(text, "ses")


def session_mapping(study: Study, scope: str) -> dict[tuple[str, str], str]:
    """Committed re-keyed sessions of ``scope``: (participant id, session) → release session."""
    scope = _scope(scope)
    rows = read_restricted_table(study, SESSION_PSEUDONYMS_FILE, SESSION_COLUMNS)
    return {
        (r["participant"], r["session"]): r["release_session"] for r in rows if r["scope"] == scope
    }


def _study_sessions(study: Study, pid: str) -> set[str]:
    """Session labels of ``pid`` in the study and its raw data (casefolded)."""
    return {
        p.name.removeprefix("ses-").casefold()
        for base in (study.root, study.sourcedata)
        for p in (base / pid).glob("ses-*")
        if p.is_dir()
    }


def ensure_sessions(
    study: Study, scope: str, sessions: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Release session labels for (subject, session) pairs, re-keying date-like ones.

    Sessions that are not kept (:func:`session_kept`: dates, typed text) get a random
    label, unique among the participant's sessions in ``scope``; the new ones are committed
    together. Short numbers and approved labels are kept.

    Returns
    -------
    dict[tuple[str, str], str]
        (participant id ``sub-01``, session as given without ``ses-``) → release session.
    """
    scope = _scope(scope)
    pairs = sorted({(participant_id(study, sub), _session(ses)) for sub, ses in sessions})
    result = {pair: pair[1] for pair in pairs if session_kept(study, pair[1])}
    rekey = [pair for pair in pairs if pair not in result]
    known = session_mapping(study, scope)
    if all(pair in known for pair in rekey):
        return {**result, **{pair: known[pair] for pair in rekey}}
    with restricted_change(study):
        rows = read_restricted_table(study, SESSION_PSEUDONYMS_FILE, SESSION_COLUMNS)
        known = {
            (r["participant"], r["session"]): r["release_session"]
            for r in rows
            if r["scope"] == scope
        }
        new = []
        for pid, ses in rekey:
            if (pid, ses) in known:
                continue
            taken = {r["release_session"].casefold() for r in rows if r["participant"] == pid}
            taken |= {label.casefold() for (p, _), label in known.items() if p == pid}
            taken |= _study_sessions(study, pid) | {ses.casefold()}
            known[(pid, ses)] = _random_label(taken)
            new.append([scope, pid, ses, known[(pid, ses)]])
        if new:
            text = appended_text(study, SESSION_PSEUDONYMS_FILE, SESSION_COLUMNS, new)
            commit_restricted(
                study,
                {SESSION_PSEUDONYMS_FILE: text},
                f"windl pseudonyms: {len(new)} new release session labels for scope {scope}",
            )
    return {**result, **{pair: known[pair] for pair in rekey}}


def release_session(
    study: Study, scope: str, subject: str, session: str, create: bool = True
) -> str:
    """The release label of ``subject``'s ``session`` in ``scope``.

    Kept when :func:`session_kept` says so; any other (a date, typed text) is
    replaced by a random label, created and committed if new.

    Raises
    ------
    PseudonymMissing
        If ``create`` is false and a date-like session has no release label yet.
    """
    ses = _session(session)
    if session_kept(study, ses):
        return ses
    if not create:
        pid = _pid(subject)
        label = session_mapping(study, scope).get((pid, ses))
        if label is None:
            raise PseudonymMissing(
                f"{pid} session {ses} has no release label in scope {scope} of {study.name}"
            )
        return label
    pid = participant_id(study, subject)
    return ensure_sessions(study, scope, [(pid, ses)])[(pid, ses)]


# --------------------------------------------------------------------------- release keys
RELEASE_KEYS_FILE = "release-keys.tsv"
RELEASE_KEY_COLUMNS = ("scope", "secret", "created")
#: date shifts are drawn from this range of days (never 0: a shift must change the date)
DATE_OFFSET_RANGE = (-1095, -366)


def release_secret(study: Study, scope: str) -> str:
    """The secret of ``scope``'s release line (created and committed on first use).

    It keys the release's UID remapping (:class:`windl.deid.UIDMap`) and the participants'
    date shifts (:func:`date_offset`), so both stay the same across versions of the line,
    and a release never reveals how to map back. It lives only in ``restricted/``.
    """
    scope = _scope(scope)
    rows = read_restricted_table(study, RELEASE_KEYS_FILE, RELEASE_KEY_COLUMNS)
    known = {r["scope"]: r["secret"] for r in rows}
    if scope in known:
        return known[scope]
    with restricted_change(study):
        rows = read_restricted_table(study, RELEASE_KEYS_FILE, RELEASE_KEY_COLUMNS)
        known = {r["scope"]: r["secret"] for r in rows}
        if scope not in known:
            known[scope] = secrets.token_hex(32)
            text = appended_text(
                study, RELEASE_KEYS_FILE, RELEASE_KEY_COLUMNS, [[scope, known[scope], utc_stamp()]]
            )
            commit_restricted(
                study, {RELEASE_KEYS_FILE: text}, f"windl pseudonyms: release key for {scope}"
            )
    return known[scope]


def date_offset(secret: str, participant: str) -> int:
    """The participant's date shift in days, within :data:`DATE_OFFSET_RANGE`.

    Derived with HMAC-SHA256 from the release line's secret, so it is the same in every
    version and for every file of the participant (DICOM, sidecars, scans.tsv, EEG/MEG),
    and differs between participants and between scopes.
    """
    digest = hmac.new(secret.encode(), f"date-offset:{participant}".encode(), hashlib.sha256)
    low, high = DATE_OFFSET_RANGE
    return low + int.from_bytes(digest.digest()[:8], "big") % (high - low + 1)


# --------------------------------------------------------------------------- entity labels
ENTITY_LABELS_FILE = "entity-labels.tsv"
ENTITY_COLUMNS = ("scope", "entity", "label", "release_label", "created")
#: the prefix of a neutral label where it is not the entity's own name
NEUTRAL_PREFIX: Mapping[str, str] = {"B0FieldIdentifier": "b0field"}


def neutral_prefix(entity: str) -> str:
    """What a neutral label of ``entity`` starts with (``task`` → ``task1``, ``task2``...)."""
    return NEUTRAL_PREFIX.get(entity, entity)


def is_neutral(entity: str, label: str) -> bool:
    """True if ``label`` has the form of a neutral re-key label of ``entity``."""
    prefix = neutral_prefix(entity)
    number = label.removeprefix(prefix)
    return number != label and number.isdigit() and not number.startswith("0")


def entity_mapping(study: Study, scope: str) -> dict[tuple[str, str], str]:
    """Committed re-keyed labels of ``scope``: (entity, study label) → neutral release label."""
    scope = _scope(scope)
    rows = read_restricted_table(study, ENTITY_LABELS_FILE, ENTITY_COLUMNS)
    return {(r["entity"], r["label"]): r["release_label"] for r in rows if r["scope"] == scope}


def ensure_entity_labels(
    study: Study, scope: str, pairs: Iterable[tuple[str, str]], vocabulary: Vocabulary
) -> dict[tuple[str, str], str]:
    """Neutral release labels of the unapproved (entity, label) ``pairs``, created in one commit.

    A pair ``vocabulary`` approves keeps its label and gets no row. A new neutral label
    is the lowest ``<entity><n>`` not yet used in the scope for that entity, not approved
    itself and not a label of ``pairs`` (so it never reads as a study label).

    Parameters
    ----------
    study
        The study; its ``restricted`` subdataset holds the table.
    scope
        One of :data:`windl.consent.SCOPES`.
    pairs
        (entity, label) as they stand in the study's paths and sidecars.
    vocabulary
        The study's approved labels (:func:`windl.vocabulary.vocabulary_of`).

    Returns
    -------
    dict[tuple[str, str], str]
        (entity, label) → neutral label, for each unapproved pair of ``pairs``.
    """
    scope = _scope(scope)
    wanted = sorted({p for p in pairs if not vocabulary.approves(*p)})
    known = entity_mapping(study, scope)
    if all(p in known for p in wanted):
        return {p: known[p] for p in wanted}
    with restricted_change(study):
        known = entity_mapping(study, scope)
        study_labels = {(e, v.casefold()) for e, v in wanted}
        created = utc_stamp()
        new = []
        for entity, label in wanted:
            if (entity, label) in known:
                continue
            used = {v.casefold() for (e, _), v in known.items() if e == entity}
            n = 1
            while True:
                candidate = f"{neutral_prefix(entity)}{n}"
                if (
                    candidate.casefold() not in used
                    and (entity, candidate.casefold()) not in study_labels
                    and not vocabulary.approves(entity, candidate)
                ):
                    break
                n += 1
            known[(entity, label)] = candidate
            new.append([scope, entity, label, candidate, created])
        if new:
            text = appended_text(study, ENTITY_LABELS_FILE, ENTITY_COLUMNS, new)
            commit_restricted(
                study,
                {ENTITY_LABELS_FILE: text},
                f"windl pseudonyms: {len(new)} new neutral entity labels for scope {scope}",
            )
    return {p: known[p] for p in wanted}
