"""Sidecar keys the BIDS schema REQUIRES for a file, and the value a release may give them.

De-identification removes every sidecar key it has not classified as safe, and every date
or time the policy does not retain (:mod:`windl.deid.sidecars`). A key that BIDS requires
for the datatype (PET ``TimeZero``, ASL ``BackgroundSuppression``, microscopy
``PixelSize``, ...) must not simply go, or a valid study makes an invalid release. For such
a key the release keeps a value that cannot identify anyone:

- numbers, booleans and lists of numbers are kept (they are measurements or settings);
- a text is kept when it is one of the values the schema enumerates for the key;
- a time of day (``format: time``) the date policy removes becomes ``00:00:00``: BIDS
  gives the PET times relative to ``TimeZero``, so the timing of the recording stays;
- any other text becomes ``n/a`` (BIDS allows it for a text value; the key stays);
- anything else (objects, mixed lists) is still removed: a removed required key fails the
  audit's validation, which is right when no safe value exists.

The rules are read from the schema of the installed ``bidsschematools`` (``rules.sidecars``).
Their selectors are evaluated for the file's datatype, suffix, entities and sidecar
values; a selector this module cannot read counts as true, so a key is rather treated as required
(and given a safe value) than dropped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

#: what a removed time of day becomes when the key is required
DUMMY_TIME = "00:00:00"
_Q = r"""(?:"[^"]*"|'[^']*')"""
_EQ = re.compile(rf"^(datatype|suffix|extension|modality)\s*(==|!=)\s*({_Q})$")
_IN_LIST = re.compile(
    r"^intersects\(\[(suffix|datatype|modality|sidecar\.\w+)\],\s*\[([^\]]*)\]\)$"
)
_SIDECAR_EQ = re.compile(rf"^sidecar\.(\w+)\s*==\s*({_Q}|true|false|-?\d+(?:\.\d+)?)$")
_ENTITY_EQ = re.compile(rf"^entities\.(\w+)\s*==\s*({_Q})$")
_HAS_KEY = re.compile(r'^"(\w+)"\s+in\s+(sidecar|entities)$')
#: selectors about the dataset as a whole: a release is a raw dataset
_RAW_DATASET = 'dataset.dataset_description.DatasetType == "derivative"'


@functools.lru_cache(maxsize=1)
def _schema() -> Any:
    from bidsschematools import schema

    return schema.load_schema()


def _rules(node: Any) -> Iterator[Any]:
    """Every sidecar rule (a node with ``selectors`` and ``fields``) below ``node``."""
    if "selectors" in node and "fields" in node:
        yield node
        return
    for value in node.values():
        if hasattr(value, "items"):
            yield from _rules(value)


@functools.lru_cache(maxsize=1)
def _required_rules() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """(selectors, required key names) of every sidecar rule with a required field."""
    metadata = _schema().objects.metadata
    found = []
    for rule in _rules(_schema().rules.sidecars):
        names = []
        for field, spec in rule.fields.items():
            level = spec if isinstance(spec, str) else spec.get("level")
            if level == "required":
                names.append(metadata.get(field, {}).get("name", field))
        if names:
            found.append((tuple(rule.selectors), tuple(names)))
    return tuple(found)


def _literal(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in "\"'":
        return text[1:-1]
    try:
        return float(text)
    except ValueError:
        return text


def _selected(selector: str, facts: Mapping[str, Any], data: Mapping[str, Any]) -> bool | None:
    """The value of one selector; ``None`` when this module cannot read it."""
    selector = selector.strip()
    if selector in ("false", "true"):
        return selector == "true"
    if selector == _RAW_DATASET:
        return False
    if selector.startswith("!"):
        inner = _selected(selector[1:].strip().removeprefix("(").removesuffix(")"), facts, data)
        return None if inner is None else not inner
    match = _EQ.match(selector)
    if match:
        known = facts.get(match.group(1))
        if known is None:
            return None
        return (known == _literal(match.group(3))) == (match.group(2) == "==")
    match = _IN_LIST.match(selector)
    if match:
        options = {_literal(v) for v in match.group(2).split(",") if v.strip()}
        name = match.group(1)
        if name.startswith("sidecar."):
            value = data.get(name.removeprefix("sidecar."))
            return isinstance(value, str | int | float | bool) and value in options
        known = facts.get(name)
        return None if known is None else known in options
    match = _SIDECAR_EQ.match(selector)
    if match:
        return data.get(match.group(1)) == _literal(match.group(2))
    match = _ENTITY_EQ.match(selector)
    if match:
        return facts["entities"].get(match.group(1)) == _literal(match.group(2))
    match = _HAS_KEY.match(selector)
    if match:
        return match.group(1) in (data if match.group(2) == "sidecar" else facts["entities"])
    return None


def _facts(rel: str) -> dict[str, Any]:
    """Datatype, modality, suffix and entities of a BIDS JSON path (``None``: not known
    from the path, as for a top-level sidecar that holds for many files)."""
    path = PurePosixPath(rel)
    *pieces, suffix = path.name.split(".", 1)[0].split("_")
    entities = dict(p.split("-", 1) for p in pieces if "-" in p)
    names = {e.name: key for key, e in _schema().objects.entities.items()}
    entities = {names.get(k, k): v for k, v in entities.items()}
    datatypes = set(_schema().objects.datatypes)
    datatype = path.parent.name if path.parent.name in datatypes else None
    modality = next(
        (m for m, rule in _schema().rules.modalities.items() if datatype in rule.datatypes), None
    )
    return {
        "datatype": datatype,
        "modality": modality,
        "suffix": suffix,
        "extension": None,
        "entities": entities,
    }


def required_keys(rel: str, data: Mapping[str, Any]) -> frozenset[str]:
    """The top-level keys BIDS requires in the sidecar ``rel`` whose content is ``data``.

    Parameters
    ----------
    rel : str
        The sidecar's BIDS path (its folder gives the datatype, its name the suffix).
    data : Mapping
        The sidecar itself (rules may depend on its values, e.g. ``M0Type``).
    """
    facts = _facts(rel)
    keys: set[str] = set()
    for selectors, names in _required_rules():
        if all(_selected(s, facts, data) is not False for s in selectors):
            keys.update(names)
    return frozenset(keys)


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )


def safe_value(key: str, value: Any, time_removed: bool = False) -> Any | None:
    """The value a release gives the required ``key`` (``None``: remove it).

    Parameters
    ----------
    key : str
        A key :func:`required_keys` names.
    value : Any
        Its value in the study.
    time_removed : bool
        The date policy removes the key's dates and times (it has no Retain Modified
        Dates): a time of day becomes :data:`DUMMY_TIME`.
    """
    spec = _schema().objects.metadata.get(key, {})
    if time_removed:
        return DUMMY_TIME if spec.get("format") == "time" else None
    if isinstance(value, bool | int | float) or _numbers(value):
        return value
    if isinstance(value, str):
        allowed = _enumerated(spec)
        if value in allowed or value == "n/a":
            return value
        return None if allowed else "n/a"
    return None


def _enumerated(spec: Mapping[str, Any]) -> set[str]:
    """The text values the schema enumerates for a key (its ``enum``, or in ``anyOf``)."""
    values = {v for v in spec.get("enum", []) if isinstance(v, str)}
    for option in spec.get("anyOf", []):
        values |= {v for v in option.get("enum", []) if isinstance(v, str)}
    return values
