"""A windl site: ``windl.toml`` plus a DataLad superdataset."""

from __future__ import annotations

import shutil
from pathlib import Path

from windl import datasets
from windl.config import SITE_FILE, SUPERDATASET_SKELETON, TEMPLATES, Site, load_site
from windl.errors import BadInput, SiteExists
from windl.files import atomic_write_text


def init_site(root: Path, name: str | None = None) -> Site:
    """Create a site in ``root`` (created if missing; must not already be a site).

    Parameters
    ----------
    root
        Folder of the new site.
    name
        Human-readable site name written to ``windl.toml`` (default: folder name).
    """
    root = root.resolve()
    if (root / SITE_FILE).exists() or (root / "superdataset").exists():
        raise SiteExists("already a windl site (windl.toml or superdataset/ exists)", root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create the site folder ({exc.strerror})", root) from None
    superdataset = root / "superdataset"
    datasets.create_dataset(superdataset, procedures=["text2git"], description="windl site")
    shutil.copytree(SUPERDATASET_SKELETON, superdataset, dirs_exist_ok=True)
    datasets.save(superdataset, ["."], "windl: site superdataset skeleton")
    text = (TEMPLATES / "windl.toml").read_text(encoding="utf-8")
    # windl.toml last: its presence is what makes the folder a site.
    atomic_write_text(root / SITE_FILE, text.replace("{name}", name or root.name))
    return load_site(root)
