"""Study datasets: one BIDS root per study, with ``sourcedata`` and ``restricted`` subdatasets."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from windl import clock, datasets
from windl.config import TEMPLATES, Site, find_site
from windl.errors import ConfigError, SiteNotFound, StudyExists, StudyNotFound, WindlError
from windl.labels import study_name

STUDY_PROCEDURE = "windl_study"


@dataclass(frozen=True)
class Study:
    """Paths of one study dataset."""

    name: str
    root: Path

    @property
    def sourcedata(self) -> Path:
        return self.root / "sourcedata"

    @property
    def restricted(self) -> Path:
        return self.root / "restricted"

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def heuristic(self) -> Path:
        return self.code / "heuristic.py"

    @property
    def conversion_records(self) -> Path:
        return self.code / "conversion"

    def settings(self) -> dict[str, Any]:
        path = self.code / "study.toml"
        if not path.exists():
            return {}
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path) from None


def get_study(site: Site, name: str) -> Study:
    """Return the study ``name`` of ``site`` or raise :class:`StudyNotFound`."""
    study_name(name)
    root = site.studies / name
    if not (root / ".datalad").is_dir():
        known = ", ".join(s.name for s in list_studies(site)) or "none"
        raise StudyNotFound(f"unknown study {name!r} (studies: {known})")
    return Study(name=name, root=root)


def list_studies(site: Site) -> list[Study]:
    """Studies registered in the site's superdataset, sorted by name."""
    return sorted(
        (
            Study(name=p.name, root=p)
            for p in datasets.subdatasets(site.superdataset)
            if p.parent == site.studies and (p / ".datalad").is_dir()
        ),
        key=lambda s: s.name,
    )


def create_study(site: Site, name: str) -> Study:
    """Create study ``name`` via the ``cfg_windl_study`` DataLad procedure."""
    study_name(name)
    root = site.studies / name
    if root.exists():
        raise StudyExists(f"study {name!r} exists", root)
    datasets.require_clean(site.superdataset, ["studies"])
    try:
        datasets.create_dataset(
            root, parent=site.superdataset, procedures=[STUDY_PROCEDURE], description=name
        )
    except WindlError:
        # never leave half a study behind: the superdataset goes back to its last commit
        shutil.rmtree(root, ignore_errors=True)
        datasets.discard_changes(site.superdataset, [".gitmodules", "studies"])
        raise
    datasets.record_subdataset_state(site.superdataset, root, f"windl: create study {name}")
    return Study(name=name, root=root)


def _render(template: Path, target: Path, values: dict[str, str]) -> None:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def copy_templates(source: Path, target: Path, values: dict[str, str]) -> None:
    """Render every template under ``source`` into ``target``.

    A template ``.gitattributes`` is appended to the one DataLad wrote, so DataLad's
    rules (MD5E backend, ``.git*`` files in git) stay in force.
    """
    attributes = target / ".gitattributes"
    datalad_rules = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    for template in sorted(source.rglob("*")):
        if template.is_file():
            _render(template, target / template.relative_to(source), values)
    if datalad_rules and (source / ".gitattributes").exists():
        attributes.write_text(
            datalad_rules.rstrip("\n") + "\n" + attributes.read_text(encoding="utf-8"),
            encoding="utf-8",
        )


def shape_study_dataset(root: Path) -> None:
    """Body of the ``cfg_windl_study`` procedure (see ``procedures/``)."""
    try:
        site_name = find_site(cwd=root).setting("site", "name", "windl") or "windl"
    except SiteNotFound:
        site_name = "windl"
    values = {
        "name": root.name,
        "site_name": site_name,
        "date": clock.today(),
    }
    copy_templates(TEMPLATES / "study", root, values)
    for sub, description in (("sourcedata", "raw data"), ("restricted", "consent and keys")):
        datasets.create_dataset(root / sub, parent=root, description=f"{root.name} {description}")
        copy_templates(TEMPLATES / sub, root / sub, values)
        datasets.save(root / sub, ["."], f"windl: {sub} subdataset of study {root.name}")
    datasets.save(root, ["."], f"windl: study {root.name} from templates")


def study_summary(study: Study) -> dict[str, Any]:
    """Name, path and counts of BIDS subjects/sessions (from the working tree)."""
    subjects = sorted(p.name for p in study.root.glob("sub-*") if p.is_dir())
    sessions = [p for s in subjects for p in (study.root / s).glob("ses-*") if p.is_dir()]
    return {
        "name": study.name,
        "path": str(study.root),
        "subjects": len(subjects),
        "sessions": len(sessions) or len(subjects),
    }
