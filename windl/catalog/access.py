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

from windl.catalog.models import datasets_t, grants_t, versions_t

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


def dataset_visible(viewer: Viewer) -> sa.ColumnElement[bool]:
    """SQL condition on ``catalog_datasets``: may ``viewer`` see this dataset at all."""
    d = datasets_t.c
    if viewer.role == "operator":
        return sa.true()
    if viewer.role == "member":
        allowed = [d.kind == "study", d.scope.in_(("members", "external"))]
        if viewer.person:
            granted = sa.exists().where(
                grants_t.c.dataset_id == d.id,
                grants_t.c.person == viewer.person.strip().lower(),
            )
            allowed.append(sa.and_(d.scope == "individuals", granted))
        return sa.or_(*allowed)
    return sa.and_(d.kind == "release", d.scope == "external")


def version_visible(viewer: Viewer) -> sa.ColumnElement[bool]:
    """SQL condition on a ``catalog_versions`` row joined to its dataset."""
    v = versions_t.c
    published = v.published.is_(True) if not viewer.sees_unpublished else sa.true()
    return sa.and_(dataset_visible(viewer), published)


def representative(viewer: Viewer) -> sa.ColumnElement[bool]:
    """SQL condition picking the one version per dataset that search shows to ``viewer``.

    The HEAD for members and the operator (it is never older than a published version), the
    newest published version for everyone else.
    """
    v = versions_t.c
    pick = v.is_head.is_(True) if viewer.sees_unpublished else v.latest_published.is_(True)
    return sa.and_(version_visible(viewer), pick)
