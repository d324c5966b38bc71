"""Who may see what in the catalog: the single place of the rule (CLI, HTTP API and portal).

==============  ================================================================
viewer          sees
==============  ================================================================
anonymous,      *published* versions of ``external`` releases
external
member          study datasets, ``members`` and ``external`` releases (their
                unpublished HEAD too), ``individuals`` releases it is an active
                grantee of (``grants.tsv`` of :mod:`windl.share.individuals`)
operator        everything (the local command-line user of the site)
==============  ================================================================

The rule is a SQL condition on a version row joined to its dataset, so that search filters
before counting and paging: a dataset a viewer may not see is indistinguishable from one
that does not exist (no name, no facet count, no total).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from windl.catalog.models import datasets_t, entries_t, grants_t, versions_t

Role = Literal["anonymous", "external", "member", "operator"]
ROLES: tuple[Role, ...] = ("anonymous", "external", "member", "operator")


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a role, and for members the account e-mail (for individuals grants)."""

    role: Role
    person: str | None = None  # matches the `person` column of an individuals grants.tsv

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown viewer role {self.role!r} (one of {', '.join(ROLES)})")

    @property
    def sees_unpublished(self) -> bool:
        """Whether this viewer sees HEADs (members, operator) or only published versions."""
        return self.role in ("member", "operator")


OPERATOR = Viewer("operator")
ANONYMOUS = Viewer("anonymous")


def _allowed(
    viewer: Viewer,
    dataset_id: sa.ColumnElement[str],
    kind: sa.ColumnElement[str],
    scope: sa.ColumnElement[str | None],
) -> sa.ColumnElement[bool]:
    """The rule, on whichever table's columns name the dataset, its kind and its scope."""
    if viewer.role == "operator":
        return sa.true()
    if viewer.role == "member":
        allowed = [kind == "study", scope.in_(("members", "external"))]
        if viewer.person:
            granted = sa.exists().where(
                grants_t.c.dataset_id == dataset_id,
                grants_t.c.person == viewer.person.strip().lower(),
            )
            allowed.append(sa.and_(scope == "individuals", granted))
        return sa.or_(*allowed)
    return sa.and_(kind == "release", scope == "external")


def _published(viewer: Viewer, published: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return sa.true() if viewer.sees_unpublished else published.is_(True)


def dataset_visible(viewer: Viewer) -> sa.ColumnElement[bool]:
    """SQL condition on ``catalog_datasets``: may ``viewer`` see this dataset at all."""
    d = datasets_t.c
    return _allowed(viewer, d.id, d.kind, d.scope)


def version_visible(viewer: Viewer) -> sa.ColumnElement[bool]:
    """SQL condition on a ``catalog_versions`` row joined to its dataset."""
    return sa.and_(dataset_visible(viewer), _published(viewer, versions_t.c.published))


def representative(viewer: Viewer) -> sa.ColumnElement[bool]:
    """SQL condition on ``catalog_entries``: the one version per dataset search shows ``viewer``.

    The HEAD for members and the operator (it is never older than a published version), the
    newest published version for everyone else.
    """
    e = entries_t.c
    pick = e.is_head.is_(True) if viewer.sees_unpublished else e.latest_published.is_(True)
    return sa.and_(
        _allowed(viewer, e.dataset_id, e.kind, e.scope), _published(viewer, e.published), pick
    )
