"""The catalog's query language: free text plus ``key:value`` filters.

::

    rest modality:eeg suffix:FLAIR task:rest participants>=20 scope:external

Words without a key are free text (all must match, as prefixes, ranked). Filters:

``modality:`` ``datatype:`` ``suffix:`` ``task:`` ``scope:`` ``license:``
    the dataset has this value (case-insensitive); ``key:a,b`` means a *or* b;
    different keys must all hold
``participants>=N`` (also ``>N``, ``=N``, ``participants:N`` meaning at least N)
    the minimum number of participants (N at most :data:`MAX_PARTICIPANTS`)
``qc:yes`` / ``qc:no``
    whether a QC summary is present

A query holds at most :data:`MAX_TERMS` words and filter values together, and
:data:`MAX_LENGTH` characters. Double quotes keep spaces together: ``license:"CC BY 4.0"``.
The same filters are keyword arguments of :class:`Query` (the HTTP API and the portal
build it from form fields).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from windl.errors import BadInput

#: list filters: query key -> Query field
LIST_KEYS = {
    "modality": "modality",
    "datatype": "datatype",
    "suffix": "suffix",
    "task": "task",
    "scope": "scope",
    "license": "license",
}
SCOPES = ("individuals", "members", "external")
_TRUE = {"yes", "true", "1", "y"}
_FALSE = {"no", "false", "0", "n"}
#: the largest participants>=N (more people than live on earth; fits every database's int)
MAX_PARTICIPANTS = 10**9
#: filter values and free-text words in one query: each becomes a condition of one SQL
#: statement, and 500 of them exceed what SQLite or PostgreSQL plan
MAX_TERMS = 64
#: characters of one query
MAX_LENGTH = 2000
_NUMBER = re.compile(r"[0-9]{1,12}")
_TOKEN = re.compile(r"^(?P<key>[A-Za-z_]+)(?P<op>:|>=|>|=)(?P<value>.*)$", re.S)


class QueryError(BadInput):
    """A search query that cannot be understood (one line: what is wrong and what would be)."""


def _values(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        out += [part.strip() for part in str(item).split(",") if part.strip()]
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Query:
    """A parsed search: free ``text`` and filters (a str or a list is accepted for lists)."""

    text: str = ""
    modality: Sequence[str] = ()
    suffix: Sequence[str] = ()
    task: Sequence[str] = ()
    datatype: Sequence[str] = ()
    min_participants: int | None = None
    scope: Sequence[str] = ()
    license: Sequence[str] = ()
    has_qc: bool | None = None

    def __post_init__(self) -> None:
        for name in LIST_KEYS.values():
            object.__setattr__(self, name, _values(getattr(self, name)))
        object.__setattr__(self, "text", " ".join((self.text or "").split()))
        bad = [s for s in self.scope if s.lower() not in SCOPES]
        if bad:
            raise QueryError(f"unknown scope {bad[0]!r} (scopes: {', '.join(SCOPES)})")
        if self.min_participants is not None:
            if isinstance(self.min_participants, bool) or not isinstance(
                self.min_participants, int
            ):
                raise QueryError(
                    f"participants must be a whole number, not {self.min_participants!r}"
                )
            if not 0 <= self.min_participants <= MAX_PARTICIPANTS:
                raise QueryError(
                    f"participants must be 0 to {MAX_PARTICIPANTS}, not {self.min_participants}"
                )
        terms = len(self.words) + sum(len(getattr(self, name)) for name in LIST_KEYS.values())
        if terms > MAX_TERMS:
            raise QueryError(
                f"query has {terms} words and filter values; at most {MAX_TERMS} are allowed"
            )

    @property
    def words(self) -> list[str]:
        """The free-text words, as the full-text index splits them (letters and digits)."""
        return re.findall(r"\w+", self.text.lower())

    def to_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    def to_text(self) -> str:
        """This query in the query language (what :func:`parse_query` reads back)."""
        parts = [self.text] if self.text else []
        for name in LIST_KEYS.values():
            values = getattr(self, name)
            if values:
                joined = ",".join(values)
                parts.append(f"{name}:{shlex.quote(joined) if ' ' in joined else joined}")
        if self.min_participants is not None:
            parts.append(f"participants>={self.min_participants}")
        if self.has_qc is not None:
            parts.append(f"qc:{'yes' if self.has_qc else 'no'}")
        return " ".join(parts)


def parse_query(text: str, **filters: Any) -> Query:
    """Parse the query language; keyword ``filters`` (as for :class:`Query`) add to it.

    Raises
    ------
    QueryError
        For an unknown key, an empty value, a bad number or unbalanced quotes.
    """
    if len(text or "") > MAX_LENGTH:
        raise QueryError(f"query is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    try:
        tokens = shlex.split(text or "", posix=True)
    except ValueError as exc:
        raise QueryError(f"malformed query {text!r}: {exc}") from None
    words: list[str] = []
    fields: dict[str, Any] = {name: [] for name in LIST_KEYS.values()}
    min_participants: int | None = None
    has_qc: bool | None = None
    for token in tokens:
        match = _TOKEN.match(token)
        if match is None:
            if re.match(r"^[A-Za-z_]*[<>]", token):
                raise QueryError(
                    f"malformed filter {token!r}: only participants>=N compares numbers"
                )
            words.append(token)
            continue
        key, op, value = match["key"].lower(), match["op"], match["value"].strip()
        if not value:
            raise QueryError(f"filter {token!r} has no value (e.g. {key}:VALUE)")
        if key in LIST_KEYS and op == ":":
            fields[LIST_KEYS[key]].append(value)
        elif key in ("participants", "min_participants"):
            if not value.isascii() or not value.isdigit():
                raise QueryError(
                    f"{token!r}: participants takes a whole number, e.g. participants>=20"
                )
            if not _NUMBER.fullmatch(value):
                raise QueryError(f"{token!r}: participants must be 0 to {MAX_PARTICIPANTS}")
            number = int(value) + (1 if op == ">" else 0)
            min_participants = max(min_participants or 0, number)
        elif key in ("qc", "has_qc") and op == ":":
            if value.lower() not in _TRUE | _FALSE:
                raise QueryError(f"{token!r}: qc takes yes or no")
            has_qc = value.lower() in _TRUE
        else:
            known = ", ".join([*(f"{k}:" for k in LIST_KEYS), "participants>=N", "qc:yes|no"])
            raise QueryError(f"unknown filter {token!r} (filters: {known})")
    for name in LIST_KEYS.values():
        fields[name] = list(_values(fields[name])) + list(_values(filters.pop(name, None)))
    text_extra = filters.pop("text", None)
    if filters.get("min_participants") is not None:
        min_participants = max(min_participants or 0, filters.pop("min_participants"))
    filters.pop("min_participants", None)
    if filters.get("has_qc") is not None:
        has_qc = filters.pop("has_qc")
    filters.pop("has_qc", None)
    if filters:
        raise TypeError(f"unknown query filters: {', '.join(filters)}")
    return Query(
        text=" ".join([*words, *([text_extra] if text_extra else [])]),
        min_participants=min_participants,
        has_qc=has_qc,
        **fields,
    )
