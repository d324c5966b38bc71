"""``windl backup``: every dataset of a study, raw data included, into the site's own RIA store.

At scale a study is hundreds of DataLad datasets: the study, ``restricted``, ``sourcedata``
and one dataset per subject in it (:mod:`windl.sourcedata`). They are stored as DataLad
users know it, in a RIA store: ``<site>/stores/backup`` by default, or ``[backup] url`` in
``windl.toml`` (e.g. ``ria+ssh://backup-host/srv/windl-store``, a disk the centre trusts).
It holds identifying raw data and consent records, so it is never one of the sharing
stores (``members``, ``external``) and the portal never serves it.

Each dataset gets a sibling ``backup`` (its annexed content goes to ``backup-storage``)
the first time; after that a backup pushes only the datasets whose branch moved since
their last backup (one ``git rev-parse`` each), children before their parents, so its
cost follows what changed, not the size of the study. After each push every annexed file
of the dataset's HEAD must be in the store, else the backup fails naming the dataset.
Restore: ``datalad clone 'ria+file:///…/stores/backup#~<study>'`` and ``datalad get``
(subject datasets are installed on the way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from windl import datasets
from windl.config import Site
from windl.errors import WindlError
from windl.study import Study, get_study, list_studies

SIBLING = "backup"
STORAGE = f"{SIBLING}-storage"
SHARING_STORES = ("members", "external", "individuals")


@dataclass
class BackupResult:
    """What a backup of one study did."""

    study: str
    store: str
    datasets: int = 0  # datasets of the study (the study itself included)
    pushed: list[str] = field(default_factory=list)  # paths relative to the study ("." itself)
    new_siblings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.pushed)


def store_url(site: Site) -> str:
    """The backup store: ``[backup] url`` of ``windl.toml``, else ``<site>/stores/backup``."""
    url = site.setting("backup", "url") or f"ria+file://{site.root / 'stores' / 'backup'}"
    if not str(url).startswith("ria+"):
        raise WindlError(f"[backup] url must be a RIA URL (ria+file://, ria+ssh://): {url}")
    for scope in SHARING_STORES:
        if str(url).rstrip("/") == f"ria+file://{site.root / 'stores' / scope}":
            raise WindlError(f"[backup] url is the {scope} sharing store; choose another")
    return str(url)


def _alias(study: Study, ds: Path) -> str:
    rel = ds.relative_to(study.root).as_posix()
    return study.name if rel == "." else f"{study.name}--{rel.replace('/', '--')}"


def _backed_up(ds: Path) -> bool:
    """True when the dataset's branch is where its last backup left it."""
    branch = datasets.git(ds, "symbolic-ref", "--short", "HEAD").strip()
    pushed = datasets.git(
        ds, "rev-parse", "-q", "--verify", f"refs/remotes/{SIBLING}/{branch}", check=False
    ).strip()
    return pushed == datasets.head(ds)


def backup_study(
    site: Site, study_name: str, progress: Callable[[str, int, int], None] | None = None
) -> BackupResult:
    """Back up study ``study_name`` and all its datasets to the backup store.

    Parameters
    ----------
    site, study_name
        The site and the study.
    progress
        Called with ``("backing up", done, total)`` per dataset.

    Returns
    -------
    BackupResult
        The datasets pushed (those whose branch moved since their last backup).
    """
    study = get_study(site, study_name)
    url = store_url(site)
    result = BackupResult(study.name, url)
    # children first: a parent's record of a subdataset commit is useless without it
    members = [*reversed(datasets.installed_subdatasets(study.root)), study.root]
    result.datasets = len(members)
    for done, ds in enumerate(members, 1):
        rel = ds.relative_to(study.root).as_posix()
        if datasets.create_sibling_ria(ds, SIBLING, url, _alias(study, ds)):
            result.new_siblings.append(rel)
        if not _backed_up(ds):
            datasets.push(ds, SIBLING)
            missing = datasets.git(ds, "annex", "find", "--not", "--in", STORAGE).split("\n")
            if any(missing):
                raise WindlError(
                    f"{len([m for m in missing if m])} annexed files are not in the backup "
                    "store after the push; run again",
                    ds,
                )
            result.pushed.append(rel)
        if progress:
            progress("backing up", done, len(members))
    return result


def backup(
    site: Site,
    study_name: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[BackupResult]:
    """Back up one study, or every study of the site."""
    names = [study_name] if study_name else [s.name for s in list_studies(site)]
    return [backup_study(site, name, progress) for name in names]
