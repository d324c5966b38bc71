"""Site discovery and settings (``windl.toml``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl.errors import ConfigError, SiteNotFound

SITE_FILE = "windl.toml"
SITE_ENV = "WINDL_SITE"
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "templates"
PROCEDURES = REPO_ROOT / "procedures"
SUPERDATASET_SKELETON = REPO_ROOT / "superdataset"


@dataclass(frozen=True)
class Site:
    """One windl installation: ``windl.toml`` plus a DataLad superdataset."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def superdataset(self) -> Path:
        return self.root / "superdataset"

    @property
    def studies(self) -> Path:
        return self.superdataset / "studies"

    @property
    def releases(self) -> Path:
        return self.superdataset / "releases"

    def setting(self, section: str, key: str, default: Any = None) -> Any:
        return self.settings.get(section, {}).get(key, default)


def load_site(root: Path) -> Site:
    """Read ``root/windl.toml``; one clear error if it is malformed."""
    path = root / SITE_FILE
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiteNotFound(
            f"no {SITE_FILE} here; create a site with 'windl site init'", root
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path) from None
    return Site(root=root.resolve(), settings=settings)


def find_site(explicit: Path | None = None, cwd: Path | None = None) -> Site:
    """Locate the site: ``explicit`` (``--site``), else ``$WINDL_SITE``, else cwd or a parent."""
    if explicit is not None:
        return load_site(Path(explicit))
    env = os.environ.get(SITE_ENV)
    if env:
        return load_site(Path(env))
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / SITE_FILE).is_file():
            return load_site(candidate)
    raise SiteNotFound(
        f"no windl site found from {start}: pass --site DIR, set ${SITE_ENV}, "
        "or run 'windl site init DIR'"
    )
