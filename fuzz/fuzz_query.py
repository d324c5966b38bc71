"""Fuzz the catalog's search query parser: :func:`windl.catalog.query.parse_query`.

The input is UTF-8 text; NUL separates the query from form fields (modality, task, scope,
license, as the HTTP API passes them). What parses is printed back with ``to_text`` and
parsed again: that must not crash either.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from common import write_seeds

from windl.catalog.query import parse_query
from windl.errors import WindlError

MAX_LEN = 2100  # a little over the parser's MAX_LENGTH
FIELDS = ("modality", "task", "scope", "license")


def one_input(data: bytes) -> None:
    text, *fields = data.decode("utf-8", "replace").split("\x00")
    try:
        query = parse_query(text, **dict(zip(FIELDS, fields, strict=False)))
    except WindlError:
        return
    query.to_dict()
    with contextlib.suppress(WindlError):
        parse_query(query.to_text())


QUERIES = [
    "rest modality:eeg",
    "rest modality:eeg suffix:FLAIR task:rest participants>=20 scope:external",
    'license:"CC BY 4.0" qc:yes',
    "modality:eeg,meg datatype:anat participants>5 qc:no",
    "participants=3 min_participants:4 has_qc:true",
    "participants>=99999999999999 task:",
    "'unbalanced",
    "x<3 >=2 =1 :a",
    "scope:members,external\x00mri\x00rest\x00external\x00MIT",
    "Ünïcödé wörds ٣ participants>=٣",
]


def seed(corpus: Path) -> None:
    write_seeds(corpus, {str(i): q.encode() for i, q in enumerate(QUERIES)})
