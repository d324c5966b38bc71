"""``windl doi mint``: a DataCite DOI for one version of a release.

The DOI of version ``X.Y.Z`` of the ``scope`` release of study ``S`` is
``<prefix>/windl.<s>.<scope>.vX.Y.Z`` (lower case). Minting:

1. builds the DataCite metadata (schema 4.5, the JSON form the ``datacite`` package
   validates) from the release: ``dataset_description.json`` (Name, Authors, License,
   Funding, ReferencesAndLinks), ``README.md``, ``code/windl/release.json``, its files and
   the DOIs of its earlier, published versions;
2. validates it against the official schema and refuses it, naming the first problem,
   before anything goes over the network;
3. writes it to ``<site>/reports/doi/<study>-<scope>-<version>.json``;
4. with credentials in ``windl.toml`` ``[datacite]`` (the password in an environment
   variable, never in the file), registers and publishes the DOI with DataCite's REST API,
   or updates it when it exists already;
5. writes the DOI into the release (``DatasetDOI`` in ``dataset_description.json``,
   ``CITATION.cff``, a ``**DOI:**`` line in ``README.md``) in one commit. The release then
   changed, so it must pass ``windl audit`` again before ``windl publish``.

A version is minted before it is published: a published (tagged) version is never
rewritten, so one without its DOI is refused. Minting again changes nothing in the
release; DataCite receives the same metadata again (an update).

The metadata describes the release as it is once the DOI is written into it (its file count
and size include ``CITATION.cff`` and the DOI lines), so the draft and every later mint of
the same version send identical metadata.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl import datasets
from windl.clock import build_date
from windl.config import SITE_FILE, Site
from windl.consent import parse_scopes
from windl.errors import ConfigError, InvalidMetadata, WindlError
from windl.files import atomic_write_text
from windl.release.build import (
    LICENSE_URLS,
    built_record,
    parse_version,
    published_versions,
    release_path,
)

#: DataCite's test service; production is https://api.datacite.org/
TEST_URL = "https://api.test.datacite.org/"
#: DataCite's test prefix, used for drafts when windl.toml names none
TEST_PREFIX = "10.5072"
DEFAULT_PASSWORD_ENV = "WINDL_DATACITE_PASSWORD"
SCHEMA_VERSION = "http://datacite.org/schema/kernel-4"
REPORT_DIR = Path("reports") / "doi"
CITATION = "CITATION.cff"
DESCRIPTION = "dataset_description.json"
README = "README.md"
BIDSIGNORE = ".bidsignore"
_SETTINGS_KEYS = ("url", "prefix", "username", "password_env", "landing_url")
_PREFIX = re.compile(r"^10\.\d{4,9}$")
_DOI_LINE = re.compile(r"^\*\*DOI:\*\*.*$", re.MULTILINE)
_URL = re.compile(r"^https?://[^\s/]+\S*$")
_DOI_URL = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)(10\.\d{4,9}/\S+)$", re.IGNORECASE)
#: BIDS datatype folders (``sub-*/[ses-*/]<datatype>/``)
BIDS_DATATYPES = frozenset(
    {"anat", "beh", "dwi", "eeg", "fmap", "func", "ieeg", "meg", "micr", "motion", "mrs"}
    | {"nirs", "perf", "pet"}
)
#: file name ending → format named in the metadata (first match wins)
FORMATS: tuple[tuple[str, str], ...] = (
    (".nii.gz", "application/x-nifti"),
    (".nii", "application/x-nifti"),
    (".json", "application/json"),
    (".tsv.gz", "text/tab-separated-values"),
    (".tsv", "text/tab-separated-values"),
    (".vhdr", "EEG BrainVision"),
    (".vmrk", "EEG BrainVision"),
    (".eeg", "EEG BrainVision"),
    (".edf", "EDF"),
    (".bdf", "BDF"),
    (".set", "EEGLAB"),
    (".fdt", "EEGLAB"),
    (".fif", "FIF"),
    (".snirf", "SNIRF"),
    (".dcm", "DICOM"),
    (".md", "text/markdown"),
    (".cff", "application/yaml"),
    (".bval", "text/plain"),
    (".bvec", "text/plain"),
    (".txt", "text/plain"),
)
#: license as written in dataset_description.json (upper case) → SPDX identifier
SPDX_IDS = {
    "CC0": "CC0-1.0",
    "CC0-1.0": "CC0-1.0",
    "CC-BY-4.0": "CC-BY-4.0",
    "CC-BY-SA-4.0": "CC-BY-SA-4.0",
    "CC-BY-NC-4.0": "CC-BY-NC-4.0",
    "PDDL": "PDDL-1.0",
    "PDDL-1.0": "PDDL-1.0",
    "ODBL-1.0": "ODbL-1.0",
}
SPDX_NAMES = {
    "CC0-1.0": "Creative Commons Zero v1.0 Universal",
    "CC-BY-4.0": "Creative Commons Attribution 4.0 International",
    "CC-BY-SA-4.0": "Creative Commons Attribution Share Alike 4.0 International",
    "CC-BY-NC-4.0": "Creative Commons Attribution Non Commercial 4.0 International",
    "PDDL-1.0": "Open Data Commons Public Domain Dedication & License 1.0",
    "ODbL-1.0": "Open Data Commons Open Database License v1.0",
}
#: words that make an author an organisation rather than a person
_ORGANISATION = re.compile(
    r"\b(universit\w*|institut\w*|cent(re|er)s?|lab|labs|laborator\w*|consorti\w*|group|"
    r"hospital|department|foundation|society|team|network|project|school|college|council|"
    r"agency|clinic|initiative|inc|ltd|gmbh|e\.v)\b",
    re.IGNORECASE,
)
#: lower-case particles that belong to a family name ("Ludwig van Beethoven")
_PARTICLES = frozenset(
    {"al", "bin", "da", "das", "de", "del", "della", "den", "der", "di", "do", "dos", "du"}
    | {"el", "la", "le", "ten", "ter", "van", "von", "zu"}
)


class DoiRefused(WindlError):
    """A DOI that may not be minted for this release version (not built, published, ...)."""


class DoiRegistrationFailed(WindlError):
    """DataCite did not accept the DOI (credentials, prefix, network); nothing was written."""


@dataclass
class DoiResult:
    """What ``windl doi mint`` did."""

    study: str
    scope: str
    version: str
    doi: str
    path: str
    metadata_path: str
    registered: bool
    action: str | None = None
    landing_url: str | None = None
    reason: str | None = None
    changed: bool = False
    commit: str | None = None
    files: list[str] = field(default_factory=list)

    @property
    def audit_needed(self) -> bool:
        """The release got a new commit: ``windl audit`` must pass on it before publishing."""
        return self.changed

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "audit_needed": self.audit_needed}


@dataclass(frozen=True)
class DataciteSettings:
    """``[datacite]`` of ``windl.toml``; the password comes from the environment."""

    url: str = TEST_URL
    prefix: str | None = None
    username: str | None = None
    password_env: str = DEFAULT_PASSWORD_ENV
    landing_url: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, site: Site) -> DataciteSettings:
        """Read and check ``[datacite]``; :class:`ConfigError` names the bad key."""
        where = site.root / SITE_FILE
        table = site.settings.get("datacite", {}) or {}
        if not isinstance(table, Mapping):
            raise ConfigError("[datacite] must be a table", where)
        unknown = sorted(set(table) - set(_SETTINGS_KEYS))
        if unknown:
            hint = (
                " (the password goes in the environment variable named by password_env)"
                if "password" in unknown
                else ""
            )
            raise ConfigError(f"[datacite]: unknown key(s) {', '.join(unknown)}{hint}", where)
        for key, value in table.items():
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"[datacite] {key} must be a non-empty string", where)
        values = {k: v.strip() for k, v in table.items()}
        prefix = values.get("prefix")
        if prefix is not None and not _PREFIX.match(prefix):
            raise ConfigError(f"[datacite] prefix {prefix!r} is not a DOI prefix (10.NNNN)", where)
        url = values.get("url", TEST_URL)
        if not _URL.match(url):
            raise ConfigError(f"[datacite] url {url!r} is not an http(s) URL", where)
        password_env = values.get("password_env", DEFAULT_PASSWORD_ENV)
        return cls(
            url=url,
            prefix=prefix,
            username=values.get("username"),
            password_env=password_env,
            landing_url=values.get("landing_url"),
            password=os.environ.get(password_env) or None,
        )

    def missing(self) -> list[str]:
        """What registration still needs (empty when all credentials are there)."""
        missing = [] if self.prefix else ["prefix"]
        missing += [] if self.username else ["username"]
        missing += [] if self.password else [f"the password in ${self.password_env}"]
        return missing

    def landing_page(self, study: str, scope: str, version: str, doi: str) -> str:
        """The landing URL the DOI resolves to, from the ``landing_url`` template."""
        where = f"{SITE_FILE} [datacite] landing_url"
        if not self.landing_url:
            raise ConfigError(
                f"a DOI must resolve to a landing page: set {where}, e.g. "
                '"https://data.example.org/datasets/{study}/{scope}/{version}"'
            )
        try:
            url = self.landing_url.format(study=study, scope=scope, version=version, doi=doi)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{where}: bad template ({exc}); use {{study}}, {{scope}}, {{version}}, {{doi}}"
            ) from None
        if not _URL.match(url):
            raise ConfigError(f"{where}: {url!r} is not an http(s) URL")
        return url


# --------------------------------------------------------------------------- metadata
def release_doi(prefix: str, study: str, scope: str, version: str) -> str:
    """``<prefix>/windl.<study>.<scope>.v<version>``, lower case (DOIs are case-insensitive)."""
    return f"{prefix}/windl.{study}.{scope}.v{version}".lower()


def creator(author: str) -> dict[str, Any]:
    """A DataCite creator from a BIDS ``Authors`` entry.

    ``"Doe, Jane"`` and ``"Jane Doe"`` become a Personal name (family name: the last word
    with its lower-case particles, as in ``"Ludwig van Beethoven"``); a single word, or a
    name with a word such as *Centre*, *University* or *Consortium*, is Organizational.
    """
    name = " ".join(author.split())
    organisation = bool(_ORGANISATION.search(name)) or any(ch.isdigit() for ch in name)
    if not organisation and "," in name:
        family, given = (part.strip() for part in name.split(",", 1))
        if family and given:
            return _person(given, family)
    tokens = name.split()
    if organisation or len(tokens) < 2:
        return {"name": name, "nameType": "Organizational"}
    start = len(tokens) - 1
    while start > 1 and tokens[start - 1] in _PARTICLES:
        start -= 1
    return _person(" ".join(tokens[:start]), " ".join(tokens[start:]))


def _person(given: str, family: str) -> dict[str, Any]:
    return {
        "name": f"{family}, {given}",
        "nameType": "Personal",
        "givenName": given,
        "familyName": family,
    }


def _text_at(ds: Path, rel: str, rev: str = "HEAD") -> str:
    return datasets.git(ds, "cat-file", "blob", f"{rev}:{rel}", check=False)


def _description(ds: Path, rev: str = "HEAD") -> dict[str, Any]:
    text = _text_at(ds, DESCRIPTION, rev)
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidMetadata(f"not valid JSON at {rev}: {exc}", ds / DESCRIPTION) from None
    if not isinstance(data, dict):
        raise InvalidMetadata(f"not a JSON object at {rev}", ds / DESCRIPTION)
    return data


def _strings(description: Mapping[str, Any], key: str, ds: Path) -> list[str]:
    """A list-of-strings field of dataset_description.json (absent: empty)."""
    value = description.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidMetadata(f"{key} must be a list of strings", ds / DESCRIPTION)
    return [" ".join(v.split()) for v in value if v.strip()]


def doi_of(description: Mapping[str, Any]) -> str | None:
    """The DOI in ``DatasetDOI`` (``doi:10.x/y`` or a doi.org URL), lower case, or ``None``."""
    value = description.get("DatasetDOI")
    if not isinstance(value, str):
        return None
    value = value.strip()
    match = _DOI_URL.match(value)
    if match:
        return match.group(1).lower()
    return value.lower() if value.startswith("10.") else None


def _abstract(readme: str) -> str:
    """First paragraph of README's "About the study" section, else of the README."""
    lines = readme.splitlines()
    start = next(
        (
            i + 1
            for i, line in enumerate(lines)
            if re.match(r"^#{1,6}\s+about the study\s*$", line.strip(), re.IGNORECASE)
        ),
        None,
    )
    in_section = start is not None
    paragraph: list[str] = []
    for line in lines[start or 0 :]:
        text = line.strip()
        if text.startswith("#"):
            if paragraph or in_section:
                break
            continue
        if not text or _DOI_LINE.match(text):
            if paragraph:
                break
            continue
        paragraph.append(text)
    abstract = re.sub(r"\*\*|`", "", " ".join(paragraph)).strip()
    return "" if abstract == "(no description)" else abstract


def _rights(license_text: str, dua_version: str | None) -> list[dict[str, str]]:
    rights: list[dict[str, str]] = []
    spdx = SPDX_IDS.get(license_text.upper())
    if spdx is not None:
        rights.append(
            {
                "rights": SPDX_NAMES[spdx],
                "rightsUri": LICENSE_URLS[spdx],
                "rightsIdentifier": spdx,
                "rightsIdentifierScheme": "SPDX",
                "schemeUri": "https://spdx.org/licenses/",
            }
        )
    elif license_text:
        rights.append({"rights": license_text})
    if dua_version:
        rights.append(
            {
                "rights": f"Access requires accepting the Data Usage Agreement version "
                f"{dua_version} (DUA.md in the dataset)"
            }
        )
    return rights


def _related(ds: Path, version: str, references: Sequence[str]) -> list[dict[str, str]]:
    """DOIs of earlier published versions (IsNewVersionOf) and URL references."""
    related: list[dict[str, str]] = []
    wanted = parse_version(version)
    for earlier in published_versions(ds):
        if earlier >= wanted:
            continue
        tag = "v" + ".".join(map(str, earlier))
        try:
            doi = doi_of(_description(ds, tag))
        except InvalidMetadata:
            doi = None
        if doi:
            related.append(
                {
                    "relatedIdentifier": doi,
                    "relatedIdentifierType": "DOI",
                    "relationType": "IsNewVersionOf",
                }
            )
    for reference in references:
        match = _DOI_URL.match(reference)
        if match:
            identifier, kind = match.group(1), "DOI"
        elif _URL.match(reference):
            identifier, kind = reference, "URL"
        else:
            continue  # a citation in words: not an identifier
        entry = {
            "relatedIdentifier": identifier,
            "relatedIdentifierType": kind,
            "relationType": "References",
        }
        if entry not in related:
            related.append(entry)
    return related


def _format(rel: str) -> str:
    parts = rel.split("/")
    if any(part.endswith(".ds") for part in parts[:-1]):
        return "CTF"
    name = parts[-1].lower()
    for ending, kind in FORMATS:
        if name.endswith(ending):
            return kind
    suffix = Path(name).suffix
    return suffix[1:].upper() if suffix else "text/plain"


def _datatype(rel: str) -> str | None:
    parts = rel.split("/")
    if not parts[0].startswith("sub-") or len(parts) < 3:
        return None
    folder = parts[2] if parts[1].startswith("ses-") and len(parts) > 3 else parts[1]
    return folder if folder in BIDS_DATATYPES else None


def _size(ds: Path, rel: str, mode: str) -> int:
    """Bytes of a tracked file: its content here, else the size in its annex key."""
    path = ds / rel
    if path.exists():
        return path.stat().st_size
    if mode == "120000":
        match = re.search(r"-s(\d+)-", Path(os.readlink(path)).name)
        if match:
            return int(match.group(1))
    return 0


def _files_with(ds: Path, planned: Mapping[str, str]) -> dict[str, int]:
    """Tracked files (dotfiles aside) → bytes, as they will be with ``planned`` written."""
    sizes = {
        rel: _size(ds, rel, mode)
        for mode, _, _, rel in datasets.ls_tree(ds, "HEAD")
        if not any(part.startswith(".") for part in rel.split("/"))
    }
    for rel, text in planned.items():
        if not rel.startswith("."):
            sizes[rel] = len(text.encode("utf-8"))
    return sizes


def datacite_metadata(site: Site, release_dir: Path, doi: str) -> dict[str, Any]:
    """DataCite metadata (schema 4.5, JSON) of the version a release holds at HEAD.

    Parameters
    ----------
    site
        The site (its name is the publisher).
    release_dir
        A release dataset (``<site>/superdataset/releases/<study>/<scope>``).
    doi
        The DOI the metadata is for.

    Returns
    -------
    dict
        The JSON form validated by ``datacite.schema45``: creators from ``Authors``,
        title from ``Name``, version, rights from ``License`` (and the DUA), descriptions
        (README's "About the study" and what the release is), funding, BIDS datatypes as
        subjects, file count and bytes, formats, the release date, related identifiers
        (DOIs of earlier published versions, URLs in ``ReferencesAndLinks``). Not
        validated: see :func:`validate_metadata`.

    Raises
    ------
    DoiRefused
        If ``release_dir`` holds no built release.
    InvalidMetadata
        If ``dataset_description.json`` is not JSON or a field has the wrong type.
    """
    ds = Path(release_dir)
    record = built_record(ds)
    if not record:
        raise DoiRefused("not a built release (windl release build)", ds)
    description = _description(ds)
    authors = _strings(description, "Authors", ds)
    creators = [creator(a) for a in authors]
    planned = release_files(ds, doi, description, record)
    return _metadata(site, ds, doi, description, record, creators, planned)


def _metadata(
    site: Site,
    ds: Path,
    doi: str,
    description: Mapping[str, Any],
    record: Mapping[str, Any],
    creators: list[dict[str, Any]],
    planned: Mapping[str, str],
) -> dict[str, Any]:
    version = str(record.get("version", ""))
    date = str(record.get("date") or build_date())
    files = _files_with(ds, planned)
    name = str(description.get("Name") or record.get("study") or ds.name).strip()
    license_text = str(description.get("License") or "").strip()
    options = record.get("policy", {}).get("options", []) or []
    technical = (
        f"De-identified, consent-filtered release {version} (scope {record.get('scope')}) of "
        f"the study {record.get('study')}, built by windl {record.get('windl_version')}: "
        f"{record.get('participants', 0)} participants, {record.get('sessions', 0)} sessions. "
        "Only participants who consented to sharing at this scope are included; participant "
        "labels are random release labels. DICOM de-identified with the PS3.15 Annex E Basic "
        "Application Level Confidentiality Profile (options: "
        f"{', '.join(options) or 'none'}); JSON sidecars, NIfTI and EEG/MEG headers scrubbed "
        "by the same policy; anatomical images defaced. BIDS dataset, DataLad dataset."
    )
    descriptions = []
    abstract = _abstract(_text_at(ds, README))
    if abstract:
        descriptions.append({"description": abstract, "descriptionType": "Abstract"})
    descriptions.append({"description": technical, "descriptionType": "TechnicalInfo"})
    metadata: dict[str, Any] = {
        "doi": doi,
        "schemaVersion": SCHEMA_VERSION,
        "creators": creators,
        "titles": [{"title": name}],
        "publisher": {"name": str(site.setting("site", "name", site.root.name))},
        "publicationYear": date[:4],
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "BIDS dataset"},
        "version": version,
        "language": "en",
        "dates": [{"date": date, "dateType": "Issued"}],
        "subjects": [
            {"subject": kind, "subjectScheme": "BIDS datatype"}
            for kind in sorted({d for d in map(_datatype, files) if d})
        ],
        "sizes": [f"{len(files)} files", f"{sum(files.values())} bytes"],
        "formats": sorted({_format(rel) for rel in files}),
        "rightsList": _rights(license_text, record.get("dua_version")),
        "descriptions": descriptions,
        "fundingReferences": [
            {"funderName": funder} for funder in _strings(description, "Funding", ds)
        ],
        "relatedIdentifiers": _related(
            ds, version, _strings(description, "ReferencesAndLinks", ds)
        ),
    }
    optional = ("subjects", "rightsList", "fundingReferences", "relatedIdentifiers")
    return {k: v for k, v in metadata.items() if v or k not in optional}


def validate_metadata(metadata: Mapping[str, Any]) -> None:
    """Check DataCite metadata against the official schema 4.5 (``datacite`` package).

    Raises
    ------
    InvalidMetadata
        Naming the first violation, e.g. ``DataCite metadata invalid: 'creators' is a
        required property``; also for an empty creators list (no ``Authors``).
    """
    from datacite.schema45 import validator

    creators = metadata.get("creators")
    if isinstance(creators, list) and not creators:
        raise InvalidMetadata(
            "DataCite metadata invalid: no creators (dataset_description.json lists no Authors)"
        )
    errors = sorted(validator.iter_errors(dict(metadata)), key=lambda e: len(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        message = " ".join(first.message.split())
        if len(message) > 200:
            message = message[:200] + "…"
        raise InvalidMetadata(
            f"DataCite metadata invalid: {where + ': ' if where else ''}{message}"
        )


# --------------------------------------------------------------------------- release files
def _quoted(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def citation_cff(
    doi: str, description: Mapping[str, Any], record: Mapping[str, Any], ds: Path
) -> str:
    """``CITATION.cff`` (Citation File Format 1.2.0) of a release version."""
    lines = [
        "# Written by windl doi mint: how to cite this dataset.",
        "cff-version: 1.2.0",
        f"message: {_quoted('If you use this dataset, please cite it as below.')}",
        "type: dataset",
        f"title: {_quoted(str(description.get('Name') or record.get('study') or ''))}",
        f"version: {_quoted(str(record.get('version', '')))}",
        f"doi: {_quoted(doi)}",
        f"date-released: {_quoted(str(record.get('date', '')))}",
    ]
    spdx = SPDX_IDS.get(str(description.get("License") or "").strip().upper())
    if spdx:
        lines.append(f"license: {_quoted(spdx)}")
    lines.append("authors:")
    for author in _strings(description, "Authors", ds):
        person = creator(author)
        if person["nameType"] == "Personal":
            lines.append(f"  - family-names: {_quoted(person['familyName'])}")
            lines.append(f"    given-names: {_quoted(person['givenName'])}")
        else:
            lines.append(f"  - name: {_quoted(person['name'])}")
    return "\n".join(lines) + "\n"


def readme_with_doi(text: str, doi: str) -> str:
    """README with the line ``**DOI:** https://doi.org/<doi>`` (replaced, else after the title)."""
    line = f"**DOI:** https://doi.org/{doi}"
    if _DOI_LINE.search(text):
        return _DOI_LINE.sub(lambda _: line, text, count=1)
    lines = text.split("\n")
    heading = 0
    while heading < len(lines) and lines[heading].startswith("#"):
        heading += 1
    rest = lines[heading:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    new = [*lines[:heading], "", line, "", *rest] if heading else [line, "", *rest]
    return "\n".join(new)


def release_files(
    ds: Path, doi: str, description: Mapping[str, Any], record: Mapping[str, Any]
) -> dict[str, str]:
    """The release's files as they are with the DOI written: path → text."""
    files: dict[str, str] = {}
    current = dict(description)
    if doi_of(current) != doi:
        current["DatasetDOI"] = f"doi:{doi}"
        files[DESCRIPTION] = json.dumps(current, indent=2) + "\n"
    else:
        files[DESCRIPTION] = _text_at(ds, DESCRIPTION)
    files[CITATION] = citation_cff(doi, description, record, ds)
    readme = _text_at(ds, README)
    if readme:
        files[README] = readme_with_doi(readme, doi)
    ignore = _text_at(ds, BIDSIGNORE)
    # BIDS 1.10: CITATION.cff and "Authors" in dataset_description.json are mutually
    # exclusive (a validator error). Authors stays (DataCite's creators come from it).
    if CITATION not in ignore.split():
        files[BIDSIGNORE] = ignore + ("" if not ignore or ignore.endswith("\n") else "\n")
        files[BIDSIGNORE] += f"{CITATION}\n"
    else:
        files[BIDSIGNORE] = ignore
    return files


def _changed_files(ds: Path, planned: Mapping[str, str]) -> list[str]:
    """Planned files whose text differs from HEAD's."""
    return sorted(rel for rel, text in planned.items() if _text_at(ds, rel) != text)


def _leftovers_ok(ds: Path, planned: Mapping[str, str]) -> None:
    """Allow only uncommitted changes that an interrupted mint left: exactly planned text."""
    for rel in datasets.dirty_paths(ds):
        path = ds / rel
        if rel not in planned or not path.is_file() or path.read_text("utf-8") != planned[rel]:
            datasets.require_clean(ds)  # raises DatasetDirty naming the files


def _write_report(site: Site, study: str, scope: str, version: str, data: Any) -> Path:
    target = site.root / REPORT_DIR / f"{study}-{scope}-{version}.json"
    return atomic_write_text(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- mint
def mint_doi(
    site: Site,
    study: str,
    scope: str,
    version: str,
    say: Callable[[str], None] = lambda _: None,
) -> DoiResult:
    """Mint (or update) the DataCite DOI of version ``version`` of a study's ``scope`` release.

    Parameters
    ----------
    site, study
        The site and study.
    scope
        ``individuals``, ``members`` or ``external``.
    version
        ``X.Y.Z``: the version the release holds at HEAD.
    say
        Progress messages.

    Returns
    -------
    DoiResult
        ``registered`` is False when ``windl.toml`` ``[datacite]`` has no credentials: the
        validated draft was written to ``metadata_path`` and nothing else happened.
        ``changed`` says the release got a commit (it must be audited again).

    Raises
    ------
    DoiRefused
        No such release, another version at HEAD, a published version without its DOI, or
        a release that already holds another DOI.
    InvalidMetadata
        Metadata the DataCite schema refuses (nothing is sent to DataCite).
    ConfigError
        A malformed ``[datacite]`` table, or no ``landing_url`` when registering.
    DoiRegistrationFailed
        DataCite refused the request or could not be reached (the release is unchanged).
    DatasetDirty
        The release has uncommitted changes.
    """
    from windl.study import get_study

    study = get_study(site, study).name
    (scope,) = parse_scopes([scope])
    version = ".".join(map(str, parse_version(version)))
    ds = release_path(site, study, scope)
    record = built_record(ds)
    if not record:
        raise DoiRefused(
            f"no {scope} release of {study} (windl release build {study} --scope {scope} "
            f"--version {version})",
            ds,
        )
    if record.get("version") != version:
        raise DoiRefused(
            f"the release holds version {record.get('version')}, not {version}; a DOI names "
            "the version a release holds",
            ds,
        )
    settings = DataciteSettings.of(site)
    doi = release_doi(settings.prefix or TEST_PREFIX, study, scope, version)
    description = _description(ds)
    present = doi_of(description)
    if present and present != doi:
        raise DoiRefused(f"the release already has the DOI {present}; one version gets one DOI", ds)
    tagged = parse_version(version) in published_versions(ds)
    # a draft is only validated and written to the reports: allowed for any version; a
    # registration of a published version would have to rewrite it
    if tagged and present is None and not settings.missing():
        raise DoiRefused(
            f"v{version} is published without a DOI; mint the DOI before publishing: "
            "a published version is never rewritten",
            ds,
        )
    creators = [creator(a) for a in _strings(description, "Authors", ds)]
    if not creators:
        raise InvalidMetadata(
            "DataCite metadata invalid: no creators (Authors lists nobody)", ds / DESCRIPTION
        )
    planned = release_files(ds, doi, description, record)
    changes = _changed_files(ds, planned)
    if tagged and changes and not settings.missing():
        raise DoiRefused(
            f"v{version} is published; writing its DOI would change {', '.join(changes)}: "
            "a published version is never rewritten",
            ds,
        )
    _leftovers_ok(ds, planned)
    metadata = _metadata(site, ds, doi, description, record, creators, planned)
    validate_metadata(metadata)
    report = _write_report(site, study, scope, version, metadata)
    say(f"== DOI {doi}: DataCite metadata valid, written to {report}")
    result = DoiResult(
        study=study,
        scope=scope,
        version=version,
        doi=doi,
        path=str(ds),
        metadata_path=str(report),
        registered=False,
        commit=datasets.head(ds),
    )
    missing = settings.missing()
    if missing:
        result.reason = "no DataCite credentials in windl.toml [datacite]"
        if len(missing) < 3:
            result.reason += f" (missing: {', '.join(missing)})"
        return result
    landing = settings.landing_page(study, scope, version, doi)
    result.landing_url = landing
    say(f"   registering at DataCite ({settings.url}) …")
    result.action = _register(settings, doi, metadata, landing, exists=present == doi)
    result.registered = True
    if changes:
        say(f"   writing the DOI into the release: {', '.join(changes)}")
        for rel in changes:
            atomic_write_text(ds / rel, planned[rel])
        datasets.save(ds, changes, f"windl doi: {doi}")
        datasets.record_subdataset_state(
            site.superdataset, ds, f"windl: DOI {doi} in the {scope} release of {study}"
        )
        result.changed = True
        result.files = changes
        result.commit = datasets.head(ds)
    return result


def _register(
    settings: DataciteSettings, doi: str, metadata: Mapping[str, Any], url: str, exists: bool
) -> str:
    """Publish ``doi`` at DataCite, or update it if it exists; "created" or "updated"."""
    from datacite import DataCiteRESTClient
    from datacite.errors import DataCiteError, DataCiteUnauthorizedError, HttpError

    assert settings.username and settings.password and settings.prefix
    client = DataCiteRESTClient(
        settings.username, settings.password, settings.prefix, url=settings.url, timeout=(10, 60)
    )
    try:
        if not exists:
            try:
                client.public_doi(json.loads(json.dumps(metadata)), url, doi)
                return "created"
            except DataCiteError as exc:
                if "has already been taken" not in str(exc):
                    raise
        client.update_doi(doi, {**json.loads(json.dumps(metadata)), "event": "publish"}, url)
        return "updated"
    except DataCiteUnauthorizedError:
        raise DoiRegistrationFailed(
            f"DataCite at {settings.url} refused the credentials of {settings.username} "
            f"(password from ${settings.password_env})"
        ) from None
    except DataCiteError as exc:
        raise DoiRegistrationFailed(
            f"DataCite at {settings.url} refused {doi}: {_datacite_reason(exc)}"
        ) from None
    except HttpError as exc:
        detail = " ".join(str(exc).split())
        errno = re.search(r"\[Errno -?\d+\][^'\")]*", detail)
        detail = errno.group(0).strip() if errno else detail[:200]
        raise DoiRegistrationFailed(f"cannot reach DataCite at {settings.url}: {detail}") from None


def _datacite_reason(exc: Exception) -> str:
    """The first JSON:API error of a DataCite answer, else its text, on one line."""
    text = str(exc.args[0]) if exc.args else ""
    try:
        errors = json.loads(text).get("errors") or []
        first = errors[0]
        reason = str(first.get("title") or first.get("detail") or first)
        if first.get("source"):
            reason = f"{first['source']}: {reason}"
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        reason = text or type(exc).__name__
    reason = " ".join(reason.split())
    return reason[:200] + ("…" if len(reason) > 200 else "")


__all__ = [
    "DataciteSettings",
    "DoiRefused",
    "DoiRegistrationFailed",
    "DoiResult",
    "citation_cff",
    "creator",
    "datacite_metadata",
    "mint_doi",
    "readme_with_doi",
    "release_doi",
    "release_files",
    "validate_metadata",
]
