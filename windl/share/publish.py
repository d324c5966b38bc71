"""``windl publish``: a built, audited release version goes to its scope's store, tagged.

Scopes map to siblings of the release dataset:

``members``
    a DataLad RIA store on the site, ``<site>/stores/members`` (sibling ``members-store``);
    ``datalad clone ria+file://<site>/stores/members#~<study>-members`` (or ``…@vX.Y.Z``).
``external``
    a RIA store of its own, ``<site>/stores/external``, with nothing else in it; the portal
    serves it behind the Data Usage Agreement.
``individuals``
    a git repository plus a git-annex directory special remote with ``encryption=hybrid``
    under ``<site>/stores/individuals/<study>/``: the content is readable only with a GPG
    key that was granted (:mod:`windl.share.individuals`).

Rules: the version must be the one the release holds at HEAD, HEAD must have passed
``windl audit`` (the stored result on that very commit; there is no flag to skip this), and
a published version is never rewritten: its tag ``vX.Y.Z`` is created once and never moved.
After the push every annexed file of the version must be in the store, else publishing
fails (windl never drops anything; the site's copy stays). Re-running a publish that was
interrupted completes it. ``sourcedata/`` and ``restricted/`` of a study never get a
sibling: only release datasets are published.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from windl import datasets
from windl.checkpoints import checkpoint
from windl.config import Site
from windl.consent import parse_scopes
from windl.errors import WindlError
from windl.release.audit import stored_audit
from windl.release.build import (
    built_record,
    parse_version,
    published_versions,
    release_path,
)
from windl.study import get_study

RIA_SCOPES = ("members", "external")


class PublishRefused(WindlError):
    """A release version that may not be published (not built, not audited, rewritten...)."""


@dataclass
class PublishResult:
    """What a publish did."""

    study: str
    scope: str
    version: str
    tag: str
    commit: str
    sibling: str
    clone_url: str
    tagged: bool
    annexed_files: int
    then: str = ""  # what a reader does after cloning, besides datalad get

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sibling_name(scope: str) -> str:
    """The release dataset's git remote for ``scope``'s store."""
    return f"{scope}-store"


def store_path(site: Site, scope: str) -> Path:
    """Where ``scope``'s store lives on the site."""
    return site.root / "stores" / scope


def ria_alias(study: str, scope: str) -> str:
    return f"{study}-{scope}"


def clone_url(site: Site, study: str, scope: str, version: str | None = None) -> str:
    """What a user passes to ``datalad clone`` for this release (at ``version`` if given)."""
    at = f"@v{version}" if version else ""
    if scope in RIA_SCOPES:
        return f"ria+file://{store_path(site, scope)}#~{ria_alias(study, scope)}{at}"
    from windl.share.individuals import repository

    return str(repository(site, study))


def publish(
    site: Site,
    study_name: str,
    scope: str,
    version: str,
    say: Callable[[str], None] = lambda _: None,
) -> PublishResult:
    """Publish version ``version`` of a study's ``scope`` release to that scope's store.

    Raises
    ------
    PublishRefused
        If the release does not hold ``version`` at HEAD, HEAD has no passed audit, the
        version is tagged at another commit, or a newer version is published already.
    """
    study = get_study(site, study_name)
    (scope,) = parse_scopes([scope])
    wanted = parse_version(version)
    version = ".".join(map(str, wanted))
    tag = f"v{version}"
    ds = release_path(site, study.name, scope)
    record = built_record(ds)
    if not record:
        raise PublishRefused(f"no {scope} release of {study.name} (windl release build)", ds)
    if record.get("version") != version:
        raise PublishRefused(
            f"the release holds version {record.get('version')}, not {version} "
            f"(windl release build {study.name} --scope {scope} --version {version})",
            ds,
        )
    datasets.require_clean(ds)
    head = datasets.head(ds)
    tagged_at = datasets.git(ds, "rev-parse", "--verify", "-q", f"{tag}^{{commit}}", check=False)
    if tagged_at.strip() and tagged_at.strip() != head:
        raise PublishRefused(f"{tag} is published at another commit; it is never rewritten", ds)
    newer = [v for v in published_versions(ds) if v > wanted]
    if newer:
        raise PublishRefused(f"v{'.'.join(map(str, newer[-1]))} is published already", ds)
    _require_audit(ds, head)
    say(f"== publish {study.name} {scope} {version} ({head[:10]}, audit passed)")
    checkpoint("publish-start")
    tagged = not tagged_at.strip()
    if tagged:
        # only ever at the audited HEAD, so a killed run's tag is the one the next run checks
        datasets.git(
            ds, "tag", "-a", tag, "-m", f"windl release {version} of {study.name} ({scope})", head
        )
    checkpoint("publish-tagged")
    sibling = sibling_name(scope)
    env: dict[str, str] = {}
    if scope in RIA_SCOPES:
        store = store_path(site, scope)
        # completes a sibling that a killed run left half made
        datasets.create_sibling_ria(
            ds, sibling, f"ria+file://{store}", ria_alias(study.name, scope)
        )
        storage = f"{sibling}-storage"
    else:
        from windl.share.individuals import ensure_sibling

        storage, env = ensure_sibling(site, study.name, ds)
    say(f"   push to {sibling} …")
    checkpoint("publish-sibling")
    datasets.push(ds, sibling, env=env)
    checkpoint("publish-pushed")
    datasets.git(ds, "push", "--quiet", sibling, f"refs/tags/{tag}", env=env)
    checkpoint("publish-tag-pushed")
    missing = datasets.git(
        ds, "annex", "find", f"--branch={tag}", "--not", f"--in={storage}", env=env
    )
    if missing.strip():
        first = missing.splitlines()[0]
        raise PublishRefused(f"content not in the store after the push (e.g. {first}); run again")
    annexed = datasets.git(
        ds, "annex", "find", f"--branch={tag}", f"--in={storage}", env=env
    ).splitlines()
    return PublishResult(
        study=study.name,
        scope=scope,
        version=version,
        tag=tag,
        commit=head,
        sibling=sibling,
        clone_url=clone_url(site, study.name, scope, version),
        tagged=tagged,
        annexed_files=len(annexed),
        then=""
        if scope in RIA_SCOPES
        else f"git checkout {tag}; git annex enableremote {storage} "
        f"directory={site.root / 'stores' / scope / study.name / 'annex' / storage}",
    )


def _require_audit(ds: Path, head: str) -> None:
    audit = stored_audit(ds, head)
    if audit is None:
        raise PublishRefused(
            f"not audited at its current commit {head[:10]}: run 'windl audit {ds}' first", ds
        )
    if not audit.get("passed"):
        raise PublishRefused(
            f"failed the audit at {head[:10]} ({audit.get('findings')} findings; report: "
            f"{audit.get('report')}); fix and rebuild",
            ds,
        )
