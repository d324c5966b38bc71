"""Methods reports and reproduction, both from the ``datalad run`` records of a dataset.

- :func:`run_records` reads every run record in a dataset's first-parent history (inline
  in the commit message, or in DataLad's sidecar form under ``.datalad/runinfo/``);
- :func:`study_methods` turns a study's records, its conversion records
  (``code/conversion/*.json``/``.tsv``) and its stored BIDS validation into a methods section
  a reviewer can paste into a paper: each step in order, repeated steps aggregated, each
  naming the commits that hold its record;
- :func:`release_methods` and :func:`release_methods_markdown` do the same for a release:
  the release build, the de-identification policy, defacing and -- in aggregate only --
  the study's conversion steps. That text ships inside external releases, so it never
  names a participant, a session, a file of the study, a study commit or anything from the
  study's commit messages but tool names, versions and parameters;
- :func:`reproduce` clones a study into a temporary folder, reruns every conversion there
  (``datalad rerun`` onto the commit's parent) and compares each output file with the
  original by annex key or blob id. The site's datasets are only read.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import hashlib
import html
import json
import lzma
import os
import re
import shlex
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from windl import datasets
from windl.config import Site, find_site
from windl.errors import WindlError
from windl.files import atomic_write_text
from windl.study import Study, get_study

#: how many hex digits of a commit the reports show
SHORT = 7
VALIDATION_NOTES = "windl/validation"
AUDIT_NOTES = "windl/audit"
RELEASE_RECORD = "code/windl/release.json"
DEFACE_RECORDS = "code/deface"
CONVERSION_RECORDS = "code/conversion"
DEFAULT_HEURISTIC_MODULE = "windl.convert.heuristic"
REPRODUCE_DIR = Path("reports") / "reproduce"
METHODS_DIR = Path("reports") / "methods"

_RUNCMD = re.compile(
    r"\[DATALAD RUNCMD\] (.*)=== Do not change lines below ===\n(.*)\n"
    r"\^\^\^ Do not change lines above \^\^\^",
    re.MULTILINE | re.DOTALL,
)
_SESSION_PREFIX = re.compile(r"^(sub-[A-Za-z0-9]+)(?:/(ses-[A-Za-z0-9]+))?(?:/|$)")
#: ``relabel(entity, label)``: a study label as a release spells it
Relabel = Callable[[str, str], str]
_LABEL = re.compile(r"\b(?:sub|ses)-[A-Za-z0-9]+")
_OUTPUT_TYPE = re.compile(r"(anat|func|dwi|fmap|perf)/[^,/]*_([A-Za-z0-9]+)\.nii(?:\.gz)?")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: arguments that name one session's data: left out of the aggregated command
_PER_SESSION_FLAGS = frozenset({"-s", "--subjects", "-ss", "--ses", "--subject", "--session"})
#: arguments whose values are paths: shown as a placeholder
_PATH_FLAGS = {
    "--files": "FILES",
    "-d": "DICOM_TEMPLATE",
    "--dicom_dir_template": "DICOM_TEMPLATE",
    "-f": "HEURISTIC",
    "--heuristic": "HEURISTIC",
    "-o": "OUTDIR",
    "--outdir": "OUTDIR",
    "--conv-outdir": "OUTDIR",
    "--plan": "PLAN",
    "--source": "SOURCE",
    "--scratch": "SCRATCH",
}


class RunRecordError(WindlError):
    """A ``datalad run`` record that cannot be read (invalid JSON, sidecar missing)."""


class NothingToReproduce(WindlError):
    """A study without any conversion run record."""


class NotARelease(WindlError):
    """A folder given as a release that holds no committed ``code/windl/release.json``."""


# =========================================================================== run records
@dataclass
class RunRecord:
    """One ``datalad run`` record and the commit that holds it."""

    commit: str
    date: str
    message: str
    cmd: str
    inputs: list[str]
    outputs: list[str]
    pwd: str
    exit: int | None
    extra_inputs: list[str] = field(default_factory=list)
    record_id: str | None = None  # set when the record lives in .datalad/runinfo/<id>

    @property
    def short(self) -> str:
        return self.commit[:SHORT]

    @property
    def kind(self) -> str:
        """``mri`` (heudiconv), ``ephys`` (mne-bids), ``release`` or ``other``."""
        return step_kind(self.cmd)

    @property
    def session(self) -> tuple[str | None, str | None]:
        """(``sub-X``, ``ses-Y`` or None) this run wrote, from its outputs; (None, None) if none."""
        for path in [*self.outputs, *self.inputs]:
            match = _SESSION_PREFIX.match(path.removeprefix("sourcedata/"))
            if match:
                return match.group(1), match.group(2)
        return None, None


def _tokens(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return cmd.split()


def step_kind(cmd: str) -> str:
    """What a recorded command does: ``mri``, ``ephys``, ``release`` or ``other``.

    Parameters
    ----------
    cmd : str
        The ``cmd`` of a run record.

    Returns
    -------
    str
        ``mri`` when it runs heudiconv, ``ephys`` when it runs ``windl.convert.ephys``,
        ``release`` for ``windl release assemble``, else ``other``.
    """
    tokens = _tokens(cmd)
    names = {Path(t).name for t in tokens}
    if "heudiconv" in names:
        return "mri"
    if "windl.convert.ephys" in tokens:
        return "ephys"
    for i, token in enumerate(tokens[:-2]):
        if Path(token).name == "windl" and tokens[i + 1 : i + 3] == ["release", "assemble"]:
            return "release"
    return "other"


def run_records(ds: Path) -> list[RunRecord]:
    """Every ``datalad run`` record in the first-parent history of ``ds``, oldest first.

    Parameters
    ----------
    ds : Path
        A DataLad dataset.

    Returns
    -------
    list of RunRecord
        One per run commit. Records kept in DataLad's sidecar form (the commit holds a JSON
        string id, the record is ``.datalad/runinfo/<id>``, xz-compressed JSON) are read
        from that file as committed.

    Raises
    ------
    RunRecordError
        If a record is not valid JSON or its sidecar file is missing or not present.
    """
    out = datasets.git(ds, "log", "--first-parent", "--reverse", "-z", "--format=%H%x1f%aI%x1f%B")
    records = []
    for entry in out.split("\0"):
        if "\x1f" not in entry:
            continue
        commit, date, body = entry.strip("\n").split("\x1f", 2)
        match = _RUNCMD.match(body)
        if match is None:
            continue
        message, raw = match.groups()
        try:
            info = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RunRecordError(
                f"run record of commit {commit[:SHORT]} is not JSON: {exc}", ds
            ) from None
        record_id = None
        if isinstance(info, str):
            record_id = info
            info = _sidecar_record(ds, commit, record_id)
        if isinstance(info, list):  # DataLad accepts a list holding the record
            info = info[0] if info else {}
        if not isinstance(info, dict) or "cmd" not in info:
            raise RunRecordError(f"run record of commit {commit[:SHORT]} has no command", ds)
        cmd = info["cmd"]
        records.append(
            RunRecord(
                commit=commit,
                date=date,
                message=message.strip().split("\n", 1)[0].strip(),
                cmd=shlex.join(cmd) if isinstance(cmd, list) else str(cmd),
                inputs=[str(p) for p in info.get("inputs") or []],
                outputs=[str(p) for p in info.get("outputs") or []],
                pwd=str(info.get("pwd", ".")),
                exit=info.get("exit"),
                extra_inputs=[str(p) for p in info.get("extra_inputs") or []],
                record_id=record_id,
            )
        )
    return records


def _record_directory(ds: Path, commit: str) -> str:
    for args in (
        ("config", "--get", "datalad.run.record-directory"),
        ("config", "--blob", f"{commit}:.datalad/config", "--get", "datalad.run.record-directory"),
    ):
        value = datasets.git(ds, *args, check=False).strip()
        if value:
            return value.rstrip("/")
    return ".datalad/runinfo"


def _sidecar_record(ds: Path, commit: str, record_id: str) -> Any:
    rel = f"{_record_directory(ds, commit)}/{record_id}"
    entries = datasets.ls_tree(ds, commit, rel)
    if not entries:
        raise RunRecordError(f"run record sidecar {rel} not in commit {commit[:SHORT]}", ds)
    mode, _, blob, _ = entries[0]
    if mode == "120000":  # annexed: read the content from the annex, if present
        (key,) = datasets.annex_keys_of_links(ds, [blob])
        where = datasets.git(ds, "annex", "contentlocation", key, check=False).strip()
        if not where:
            raise RunRecordError(f"content of run record sidecar {rel} is not present", ds)
        raw = (ds / where).read_bytes()
    else:
        raw = datasets.git_bytes(ds, "cat-file", "blob", blob)
    if raw.startswith(b"\xfd7zXZ"):
        raw = lzma.decompress(raw)
    try:
        record, _ = json.JSONDecoder().raw_decode(raw.decode("utf-8").lstrip())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunRecordError(f"run record sidecar {rel} is not JSON: {exc}", ds) from None
    return record


# =========================================================================== documents
@dataclass
class Section:
    """One section of a methods text: a title and blocks in order.

    A block is ``("p", text)`` (inline Markdown: ```code``` and ``**bold**``),
    ``("quote", text)`` (preformatted, quoted) or ``("table", (header, rows))``.
    """

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def p(self, text: str) -> Section:
        self.blocks.append(("p", text))
        return self

    def quote(self, text: str) -> Section:
        self.blocks.append(("quote", text))
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Section:
        self.blocks.append(("table", (list(header), [list(r) for r in rows])))
        return self


@dataclass
class Methods:
    """A methods text, rendered as Markdown (``.markdown``) or self-contained HTML (``.html``)."""

    kind: str  # "study" | "release"
    name: str  # study name, or study-scope-version
    title: str
    sections: list[Section]

    @property
    def markdown(self) -> str:
        return render_markdown(self.title, self.sections)

    @property
    def html(self) -> str:
        return render_html(self.title, self.sections)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """Markdown of a title and sections (headings, paragraphs, block quotes, pipe tables)."""
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for kind, payload in section.blocks:
            if kind == "p":
                out += [payload, ""]
            elif kind == "quote":
                out += [f"> {line}".rstrip() for line in payload.splitlines()] + [""]
            else:
                header, rows = payload
                out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 980px; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; font-size: 1.25em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code { font-family: ui-monospace, monospace; font-size: .9em; background: #f6f6f6;
       word-break: break-all; }
blockquote { margin: .5em 0 1em; padding: .3em 1em; border-left: 4px solid #bbb;
             background: #fafafa; }
blockquote pre { white-space: pre-wrap; margin: 0; font-family: inherit; }
.ok { color: #2e7d32; font-weight: bold; }
.bad { color: #c62828; font-weight: bold; }
"""


def _inline_html(text: str) -> str:
    """Escape ``text`` and turn ``code`` spans and ``**bold**`` into HTML."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            escaped = html.escape(part)
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped))
    return "".join(out)


def render_html(title: str, sections: Sequence[Section]) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external resources)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        for kind, payload in section.blocks:
            if kind == "p":
                body.append(f"<p>{_inline_html(payload)}</p>")
            elif kind == "quote":
                body.append(f"<blockquote><pre>{html.escape(payload)}</pre></blockquote>")
            else:
                header, rows = payload
                cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
                lines = [f"<table><thead><tr>{cells}</tr></thead><tbody>"]
                for row in rows:
                    lines.append(
                        "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                    )
                lines.append("</tbody></table>")
                body.append("\n".join(lines))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_methods(methods: Methods, out_dir: Path) -> tuple[Path, Path]:
    """Write ``methods.md`` and ``methods.html`` into ``out_dir`` (created if missing).

    Parameters
    ----------
    methods : Methods
        From :func:`study_methods` or :func:`release_methods`.
    out_dir : Path
        Target folder.

    Returns
    -------
    tuple of Path
        The Markdown and the HTML file.
    """
    out_dir = Path(out_dir)
    md, page = out_dir / "methods.md", out_dir / "methods.html"
    atomic_write_text(md, methods.markdown)
    atomic_write_text(page, methods.html)
    return md, page


# =========================================================================== study facts
def _version(package: str) -> str:
    try:
        return package_version(package)
    except PackageNotFoundError:
        return "not installed"


def _v(version: str | None) -> str:
    """A recorded version, or a note that none was recorded."""
    if not version:
        return "(version not recorded)"
    return version


def _dcm2niix(version: str | None) -> str:
    """dcm2niix calls itself ``v1.0.2026…``; the wheel's metadata drops the ``v``."""
    return f"v{version}" if version and version[0].isdigit() else _v(version)


def _commits(commits: Sequence[str], limit: int = 6) -> str:
    shorts = [c[:SHORT] for c in commits]
    if not shorts:
        return "none"
    if len(shorts) <= limit:
        return ", ".join(f"`{s}`" for s in shorts)
    return f"`{shorts[0]}`…`{shorts[-1]}` ({len(shorts)} commits)"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{k} ({n})" for k, n in sorted(counter.items()))


def _json_at(ds: Path, commit: str, rel: str) -> dict[str, Any]:
    text = datasets.git(ds, "cat-file", "blob", f"{commit}:{rel}", check=False)
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _tsv_at(ds: Path, commit: str, rel: str) -> list[dict[str, str]]:
    text = datasets.git(ds, "cat-file", "blob", f"{commit}:{rel}", check=False)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]


@dataclass(frozen=True)
class Heuristic:
    """The heudiconv heuristic a conversion used, at the commit of the conversion."""

    path: str
    sha256: str | None
    default: bool  # windl's default heuristic (the file imports windl.convert.heuristic)
    rules: str  # the rules, from its docstring ("" if it has none)


def _rst_to_md(text: str) -> str:
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _default_rules() -> str:
    import windl.convert.heuristic as default

    doc = (default.__doc__ or "").strip()
    return _rst_to_md(doc.split("\n", 1)[1].strip() if "\n" in doc else doc)


def heuristic_at(ds: Path, commit: str, path: str) -> Heuristic:
    """The heuristic ``path`` as committed in ``commit``: sha256, default or own, its rules."""
    try:
        raw = datasets.git_bytes(ds, "cat-file", "blob", f"{commit}:{path}")
    except WindlError:
        return Heuristic(path, None, False, "")
    sha = hashlib.sha256(raw).hexdigest()
    try:
        tree = ast.parse(raw.decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return Heuristic(path, sha, False, "")
    default = any(
        isinstance(node, ast.ImportFrom) and node.module == DEFAULT_HEURISTIC_MODULE
        for node in ast.walk(tree)
    )
    own = _rst_to_md((ast.get_docstring(tree) or "").strip())
    return Heuristic(path, sha, default, _default_rules() if default else own)


def normalized_command(cmd: str) -> str:
    """``cmd`` with per-session arguments left out and paths replaced by placeholders.

    Environment assignments before a program are dropped; the values of the arguments in
    ``_PATH_FLAGS`` become a capitalised placeholder (``-f HEURISTIC``); subject and session
    arguments are left out; any other word naming a ``sub-``/``ses-`` label becomes ``…``.
    """
    out: list[str] = []
    skipping: str | None = None  # "drop" or "placeholder" while consuming a flag's values
    segment_start = True
    for token in _tokens(cmd):
        if token in ("&&", "||", ";", "|"):
            out.append(token)
            skipping, segment_start = None, True
            continue
        if segment_start and _ENV_ASSIGNMENT.match(token):
            continue
        segment_start = False
        if skipping and not (token.startswith("-") and len(token) > 1):
            continue
        skipping = None
        if token in _PER_SESSION_FLAGS:
            skipping = "drop"
        elif token in _PATH_FLAGS:
            out += [token, _PATH_FLAGS[token]]
            skipping = "placeholder"
        elif _LABEL.search(token) or token.startswith("sourcedata/"):
            out.append("…")
        else:
            out.append(token)
    return " ".join(out)


@dataclass
class _Conversion:
    """One conversion run and what its conversion record says."""

    record: RunRecord
    kind: str
    subject: str | None
    session: str | None
    versions: dict[str, str | None]
    heuristic: Heuristic | None
    command: str
    line_freq: float | None
    rows: list[dict[str, str]]

    def key(self) -> tuple[Any, ...]:
        return (
            self.kind,
            tuple(sorted((k, v or "") for k, v in self.versions.items())),
            self.heuristic.sha256 if self.heuristic else None,
            self.heuristic.default if self.heuristic else None,
            self.command,
            self.line_freq,
        )


def _conversion(ds: Path, record: RunRecord) -> _Conversion:
    records = [o for o in record.outputs if o.startswith(f"{CONVERSION_RECORDS}/")]
    record_json = next((o for o in records if o.endswith(".json")), None)
    record_tsv = next((o for o in records if o.endswith(".tsv")), None)
    conv = _json_at(ds, record.commit, record_json) if record_json else {}
    subject, session = record.session
    heuristic = None
    if record.kind == "mri":
        versions = {"heudiconv": conv.get("heudiconv"), "dcm2niix": conv.get("dcm2niix")}
        tokens = _tokens(record.cmd)
        path = next(
            (tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t in ("-f", "--heuristic")),
            conv.get("heuristic"),
        )
        if path:
            heuristic = heuristic_at(ds, record.commit, str(path))
    else:
        versions = {"mne-bids": conv.get("mne_bids"), "mne": conv.get("mne")}
    freq = conv.get("power_line_frequency")
    return _Conversion(
        record=record,
        kind=record.kind,
        subject=subject,
        session=session,
        versions=versions,
        heuristic=heuristic,
        command=normalized_command(record.cmd),
        line_freq=float(freq) if isinstance(freq, int | float) else None,
        rows=_tsv_at(ds, record.commit, record_tsv) if record_tsv else [],
    )


def _groups(conversions: Iterable[_Conversion]) -> list[list[_Conversion]]:
    """Conversions with the same tools, versions, heuristic and parameters, in first order."""
    groups: dict[tuple[Any, ...], list[_Conversion]] = {}
    for conv in conversions:
        groups.setdefault(conv.key(), []).append(conv)
    return list(groups.values())


def _sessions(group: Sequence[_Conversion]) -> int:
    return len({(c.subject, c.session) for c in group})


def _mri_paragraphs(group: Sequence[_Conversion], public: bool) -> tuple[str, str | None]:
    first = group[0]
    n_sessions, n_runs = _sessions(group), len(group)
    heuristic = first.heuristic
    if heuristic is None or heuristic.sha256 is None:
        used = "a heuristic that is not in the dataset"
    elif heuristic.default:
        where = "the study's heuristic file" if public else f"`{heuristic.path}`"
        used = (
            f"windl's default heuristic (`{DEFAULT_HEURISTIC_MODULE}`, imported by {where}; "
            f"sha256 `{heuristic.sha256}`)"
        )
    else:
        own = f"the study's heuristic `{heuristic.path}`"
        used = f"{'a study-specific heuristic' if public else own} (sha256 `{heuristic.sha256}`)"
    text = (
        f"**MRI.** {_plural(n_sessions, 'session')} of DICOM data "
        f"({_plural(n_runs, '`datalad run` record')}) "
        f"{'was' if n_sessions == 1 else 'were'} converted to BIDS with "
        f"heudiconv {_v(first.versions.get('heudiconv'))} and "
        f"dcm2niix {_dcm2niix(first.versions.get('dcm2niix'))}, using {used}."
    )
    rows = [r for c in group for r in c.rows]
    if rows:
        converted = [r for r in rows if r.get("status") == "converted"]
        types: Counter[str] = Counter()
        for row in converted:
            for match in _OUTPUT_TYPE.finditer(row.get("bids_name", "")):
                types[f"{match.group(1)}/{match.group(2)}"] += 1
        text += (
            f" The conversion records list {_plural(len(rows), 'DICOM series', 'DICOM series')}: "
            f"{len(converted)} converted"
            + (f" ({_counts(types)})" if types else "")
            + f", {len(rows) - len(converted)} not converted"
        )
        reasons = Counter(r.get("reason", "") for r in rows if r.get("status") != "converted")
        text += f" ({_counts(reasons)})." if reasons and not public else "."
    text += (
        f" Each session was converted by one `datalad run` command (subject and session "
        f"arguments left out, paths as placeholders): `{first.command}`. "
        "`windl.convert.finalize`, part of the same command, drops heudiconv's random "
        "`scans.tsv` column, removes outputs of earlier conversions of the session, adds the "
        "participant to `participants.tsv` and writes the conversion record. Where heudiconv "
        "failed on a session, `windl.convert.fallback` (after `||` in the same command) "
        "converted it series by series: heudiconv on each series alone, and dcm2niix alone on "
        "a series heudiconv still failed on; the conversion record says so for each series."
    )
    if not public:
        text += f" Commits: {_commits([c.record.commit for c in group])}."
    return text, heuristic.rules if heuristic and heuristic.rules else None


def _released_label(relabel: Relabel | None, entity: str, label: str) -> str:
    """``label`` as a release spells it (``other`` when it has no release label)."""
    if relabel is None:
        return label
    try:
        return relabel(entity, label)
    except WindlError:
        return "other"


def _ephys_paragraph(
    group: Sequence[_Conversion], public: bool, relabel: Relabel | None = None
) -> str:
    first = group[0]
    n_sessions, n_runs = _sessions(group), len(group)
    rows = [r for c in group for r in c.rows]
    kinds = Counter(r.get("kind", "?").upper() for r in rows)
    tasks = Counter(_released_label(relabel, "task", r.get("task", "?")) for r in rows)
    text = (
        f"**EEG/MEG.** {_plural(n_sessions, 'session')} "
        f"({_plural(n_runs, '`datalad run` record')}"
        + (f"; {_plural(len(rows), 'recording')}: {_counts(kinds)}" if rows else "")
        + f") {'was' if n_sessions == 1 else 'were'} converted to BIDS with "
        f"mne-bids {_v(first.versions.get('mne-bids'))} and mne {_v(first.versions.get('mne'))}"
    )
    if first.line_freq is not None:
        text += f", power line frequency {first.line_freq:g} Hz"
    if tasks:
        text += f", task labels {_counts(tasks)}"
        if not public:
            sources = Counter(r.get("task_from", "?") for r in rows)
            text += f" (from: {_counts(sources)})"
    text += (
        f". Command (subject and session arguments left out, paths as placeholders): "
        f"`{first.command}`. mne-bids writes into a scratch BIDS folder; only the session's "
        "`eeg/`/`meg/` files, its `scans.tsv` rows and the participant row are taken over."
    )
    if not public:
        text += f" Commits: {_commits([c.record.commit for c in group])}."
    return text


def _validation(ds: Path, history: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """(commit, stored validator result) of the newest validated commit in ``history``."""
    listed = datasets.git(ds, "notes", f"--ref={VALIDATION_NOTES}", "list", check=False)
    noted = {line.split()[1] for line in listed.splitlines() if len(line.split()) == 2}
    for commit in reversed(history):
        if commit in noted:
            note = datasets.read_note(ds, VALIDATION_NOTES, commit)
            if note is not None:
                return commit, note
    return None


def _history(ds: Path) -> list[str]:
    return datasets.git(ds, "rev-list", "--first-parent", "--reverse", "HEAD").split()


def _windl_commits(ds: Path, prefix: str) -> list[str]:
    """Commits of the first-parent history whose message starts with ``prefix``."""
    out = datasets.git(
        ds, "log", "--first-parent", "--reverse", "--format=%H %s", check=False
    ).splitlines()
    return [line.split(" ", 1)[0] for line in out if line.split(" ", 1)[-1].startswith(prefix)]


def _software_rows(ds: Path, subjects: set[str] | None) -> list[list[str]]:
    """Tool, version, number of sessions: from the conversion records at HEAD."""
    used: Counter[tuple[str, str]] = Counter()
    for mode, _, _, path in datasets.ls_tree(ds, "HEAD", CONVERSION_RECORDS):
        if not path.endswith(".json") or mode == "120000":
            continue
        if subjects is not None and Path(path).name.split("_", 1)[0] not in subjects:
            continue
        record = _json_at(ds, "HEAD", path)
        for tool, key in (
            ("heudiconv", "heudiconv"),
            ("dcm2niix", "dcm2niix"),
            ("mne-bids", "mne_bids"),
            ("mne", "mne"),
        ):
            if record.get(key):
                value = _dcm2niix(record[key]) if tool == "dcm2niix" else str(record[key])
                used[(tool, value)] += 1
    return [[tool, ver, str(n)] for (tool, ver), n in sorted(used.items())]


def _conversions(study: Study, records: Sequence[RunRecord]) -> list[_Conversion]:
    return [_conversion(study.root, r) for r in records if r.kind in ("mri", "ephys")]


def _conversion_section(
    conversions: Sequence[_Conversion],
    public: bool,
    title: str = "Conversion to BIDS",
    relabel: Relabel | None = None,
) -> Section:
    section = Section(title)
    for group in _groups(conversions):
        if group[0].kind == "mri":
            text, rules = _mri_paragraphs(group, public)
            section.p(text)
            if rules:
                section.p("Rules of the heuristic, from its docstring:")
                section.quote(rules)
        else:
            section.p(_ephys_paragraph(group, public, relabel))
    return section


def _validation_text(ds: Path, history: Sequence[str], public: bool, name: str) -> str:
    found = _validation(ds, history)
    if found is None:
        return "No BIDS validation result is stored for this dataset" + (
            "." if public else f" (`windl validate {name}` stores one on the validated commit)."
        )
    commit, note = found
    errors = sum(int(n) for n in (note.get("errors") or {}).values())
    warnings = sum(int(n) for n in (note.get("warnings") or {}).values())
    when = str(note.get("validated_at", ""))[:10]
    text = (
        f"The dataset was validated with the official BIDS validator "
        f"({note.get('validator') or 'version not recorded'})"
        + ("" if public else f" at commit `{commit[:SHORT]}`")
        + (f" on {when}" if when and not public else "")
        + f": {_plural(errors, 'error')}, {_plural(warnings, 'warning')}."
    )
    later = len(history) - 1 - list(history).index(commit)
    if later and not public:
        verb = "is" if later == 1 else "are"
        text += f" The {_plural(later, 'later commit')} {verb} not validated."
    if not public and note.get("warnings"):
        codes = Counter({str(k): int(v) for k, v in note["warnings"].items()}).most_common()
        shown = ", ".join(f"{code} ({n})" for code, n in codes[:8])
        more = f" and {_plural(len(codes) - 8, 'more code')}" if len(codes) > 8 else ""
        text += f" Most frequent warnings: {shown}{more}."
    return text


# =========================================================================== study methods
def study_methods(site: Site, study: str) -> Methods:
    """The methods text of a study, from its run records, conversion records and validation.

    Parameters
    ----------
    site : Site
        The site.
    study : str
        Study name.

    Returns
    -------
    Methods
        Sections in the order the data went: raw data, conversion to BIDS (repeated steps
        aggregated, with their commits), other recorded steps, validation, software, and the
        run records themselves.
    """
    st = get_study(site, study)
    ds = st.root
    records = run_records(ds)
    history = _history(ds)
    head = history[-1] if history else ""
    intro = Section("About this text").p(
        f"Generated by windl {_version('windl')} from the `datalad run` records in the "
        f"first-parent history of study dataset `{st.name}` (at commit `{head[:SHORT]}`; "
        f"{_plural(len(records), 'run record')}). Each step names the commits that hold its "
        "record; `datalad rerun <commit>` repeats it, and `windl reproduce "
        f"{st.name}` reruns every conversion and compares the outputs."
    )
    sections = [intro]
    raw = Section("Raw data")
    ingests = _windl_commits(ds, "windl ingest:")
    imports = _windl_commits(ds, "windl import:")
    adds = _windl_commits(ds, "windl add:")
    if ingests:
        raw.p(
            f"Raw data were stored byte for byte in the `sourcedata` subdataset "
            f"({_plural(len(ingests), 'ingest')} with `windl ingest`; commits "
            f"{_commits(ingests)})."
        )
    if imports:
        raw.p(
            f"Data that arrived already in BIDS were validated and imported unchanged "
            f"({_plural(len(imports), 'import')} with `windl import`; commits {_commits(imports)})."
        )
    if adds:
        raw.p(
            f"Further files (behaviour, phenotype, stimuli, code, documents or derivatives) "
            f"were added with `windl add` (commits {_commits(adds)})."
        )
    if raw.blocks:
        sections.append(raw)
    conversions = _conversions(st, records)
    if conversions:
        sections.append(_conversion_section(conversions, public=False))
    others: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.kind in ("other", "release"):
            program = " ".join(normalized_command(record.cmd).split()[:2])
            others.setdefault(program, []).append(record)
    if others:
        section = Section("Other recorded steps")
        for program, group in others.items():
            section.p(
                f"`{program}` ran {_plural(len(group), 'time')} under `datalad run` "
                f"(commits {_commits([r.commit for r in group])})."
            )
        sections.append(section)
    sections.append(Section("BIDS validation").p(_validation_text(ds, history, False, st.name)))
    software = _software_rows(ds, None)
    if software:
        sections.append(
            Section("Software")
            .p("Tool versions from the conversion records (`code/conversion/*.json`):")
            .table(["Tool", "Version", "Sessions"], software)
        )
    if records:
        sections.append(
            Section("Run records").table(
                ["Date", "Commit", "Step", "Message"],
                [[r.date[:19], f"`{r.short}`", r.kind, r.message] for r in records],
            )
        )
    return Methods(kind="study", name=st.name, title=f"Methods: study {st.name}", sections=sections)


# =========================================================================== release methods
def _policy_rows(options: Sequence[str]) -> list[list[str]]:
    from windl.deid.dicom import OPTION_CODES, PROFILE_CODE

    rows = [[PROFILE_CODE[1], PROFILE_CODE[0]]]
    for name in options:
        code, meaning = OPTION_CODES.get(name, ("", name))
        rows.append([meaning, code or "n/a"])
    return rows


def _deface_paragraphs(deface_records: Sequence[Mapping[str, Any]]) -> list[str]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in deface_records:
        key = json.dumps(
            {k: record.get(k) for k in ("tool", "tool_version", "engine", "engine_version",
                                        "method", "template", "face_mask", "settings")},
            sort_keys=True,
        )  # fmt: skip
        groups.setdefault(key, []).append(record)
    paragraphs = []
    for group in groups.values():
        first = group[0]
        template = first.get("template") or {}
        mask = first.get("face_mask") or {}
        settings = first.get("settings") or {}
        text = (
            f"{_plural(len(group), 'image')} showing a face {'was' if len(group) == 1 else 'were'} "
            f"defaced with {first.get('tool', '?')} {first.get('tool_version', '?')} "
            f"({first.get('engine', '?')} {first.get('engine_version', '?')})"
            + (f": {str(first['method']).rstrip('.')}." if first.get("method") else ".")
        )
        for what, ref in (("Template", template), ("Face mask", mask)):
            if ref:
                text += (
                    f" {what}: {ref.get('package', '?')} {ref.get('package_version', '?')} "
                    f"`{ref.get('path', '?')}` (sha256 `{ref.get('sha256', '?')}`)."
                )
        if settings:
            text += (
                " Registration settings: "
                + ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(settings.items()))
                + "."
            )
        paragraphs.append(text)
    return paragraphs


def _identifiers_of(study: Study, records: Sequence[RunRecord]) -> list[str]:
    """Labels, session names and paths a public text must not hold (a last safety net)."""
    found: set[str] = set()
    for record in records:
        for path in [*record.inputs, *record.outputs, *record.extra_inputs]:
            found.update(_LABEL.findall(path))
    for base in (study.root, study.sourcedata):
        for sub in base.glob("sub-*"):
            found.add(sub.name)
            found.update(ses.name for ses in sub.glob("ses-*"))
    labels = {x.split("-", 1)[1] for x in found}
    found.update(x for x in labels if len(x) >= 6)  # e.g. a date used as session label
    return sorted(found | {str(study.root), str(study.root.resolve())}, key=len, reverse=True)


def _redact(text: str, identifiers: Iterable[str]) -> str:
    """``text`` with every identifier (a whole token, any case) replaced by ``[removed]``."""
    values = sorted({v for v in identifiers if v}, key=len, reverse=True)
    if not values:
        return text
    body = "|".join(re.escape(v) for v in values)
    pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])", re.IGNORECASE)
    return pattern.sub("[removed]", text)


def _raw_data_identifiers(study: Study) -> list[str]:
    """The identifiers the release audit looks for (names, ids, dates from the raw data)."""
    from windl.release.build import ReleaseSettings
    from windl.release.identifiers import study_identifiers

    try:
        return list(study_identifiers(study, ReleaseSettings.of(study).policy).kinds)
    except (WindlError, OSError):
        return []


def _release_sections(
    site: Site,
    study: Study,
    record: Mapping[str, Any],
    deface_records: Sequence[Mapping[str, Any]],
    subjects: set[str] | None,
    relabel: Relabel | None = None,
) -> tuple[str, list[Section], list[str]]:
    """Title, sections and identifiers to redact of a release's methods text."""
    del site  # the study is enough today; kept for settings a site may add
    records = run_records(study.root)
    scope, version = str(record.get("scope", "?")), str(record.get("version", "?"))
    title = f"Methods: release {version} ({scope}) of study {record.get('study', study.name)}"
    sections: list[Section] = []
    participants = _plural(int(record.get("participants", 0)), "participant")
    intro = Section("About this text").p(
        f"Release {version} for the {scope} scope, built on {record.get('date', '?')} with "
        f"windl {record.get('windl_version', '?')}: {participants}, "
        f"{_plural(int(record.get('sessions', 0)), 'session')}. This text comes from the "
        f"release record (`{RELEASE_RECORD}`), the defacing records (`{DEFACE_RECORDS}/`) and, "
        "in aggregate only, the `datalad run` records of the study; it names no participant, "
        "session or file of the study."
    )
    sections.append(intro)
    conversions = _conversions(study, records)
    if subjects is not None:
        conversions = [c for c in conversions if c.subject in subjects]
    conversion = _conversion_section(conversions, public=True, relabel=relabel)
    if subjects is not None:
        converted = {c.subject for c in conversions}
        imported = len(subjects - converted)
        if imported:
            conversion.p(
                f"Data of {_plural(imported, 'participant')} of this release did not go through "
                "a recorded conversion: they arrived already in BIDS and were validated and "
                "imported unchanged (`windl import`)."
            )
    elif _windl_commits(study.root, "windl import:"):
        conversion.p(
            "Some data arrived already in BIDS and were imported unchanged (`windl import`)."
        )
    if not conversion.blocks:
        conversion.p("No data of this release went through a recorded conversion step.")
    sections.append(conversion)
    sections.append(
        Section("BIDS validation of the study").p(
            _validation_text(study.root, _history(study.root), True, study.name)
        )
    )
    policy = record.get("policy") or {}
    options = [str(o) for o in policy.get("options") or []]
    dates = (
        "shifted per participant by a secret number of days, keeping intervals"
        if "retain_modified_dates" in options
        else "removed"
    )
    profile = policy.get(
        "profile", "PS3.15 Annex E Basic Application Level Confidentiality Profile"
    )
    deid = Section("De-identification").p(
        f"The release was assembled by `windl release assemble` (windl "
        f"{record.get('windl_version', '?')}) under `datalad run` into a fresh DataLad dataset "
        "that shares no history with the study. Only participants with standing consent for "
        f"the {scope} scope are included. Participants (and sessions) were given random "
        "release labels, stable across the versions of this release line and unrelated to "
        "the labels used at the scanner or in the study. DICOM headers, JSON sidecars, "
        "`scans.tsv` files, NIfTI headers and EEG/MEG headers were de-identified by one policy: "
        f"the DICOM {profile}"
        + (f" with {_plural(len(options), 'option')}" if options else " without options")
        + f" (codes from CID 7050, table below). Dates were {dates}. "
        + (
            "The de-identified raw DICOM files are included."
            if record.get("include_dicom")
            else "Raw DICOM files are not included."
        )
        + (
            f" Use is bound by the Data Usage Agreement version {record['dua_version']}."
            if record.get("dua_version")
            else ""
        )
    )
    deid.table(["Profile / option", "Code"], _policy_rows(options))
    sections.append(deid)
    defacing = Section("Defacing")
    for paragraph in _deface_paragraphs(deface_records):
        defacing.p(paragraph)
    if not defacing.blocks:
        defacing.p("No image of this release needed defacing.")
    sections.append(defacing)
    software = _software_rows(study.root, subjects)
    if software:
        sections.append(
            Section("Software")
            .p("Tool versions of the conversions, from the study's conversion records:")
            .table(["Tool", "Version", "Sessions"], software)
        )
    return title, sections, _identifiers_of(study, records)


def release_methods_markdown(
    site: Site,
    study: Study,
    release_record: Mapping[str, Any],
    deface_records: list[Mapping[str, Any]],
    identifying_words: Iterable[str] = (),
    relabel: Relabel | None = None,
) -> str:
    """The ``methods.md`` of a release, made before the release is committed.

    Deterministic for a given study commit, consent registry, release record and deface
    records, so a rebuild that changes nothing else leaves ``methods.md`` unchanged. It
    describes the study's conversions of the participants this release holds (those with
    standing consent for the scope) in aggregate only, and the release's de-identification
    and defacing; it names no participant, session, study file or study commit.

    Parameters
    ----------
    site : Site
        The site.
    study : Study
        The study the release is built from (its HEAD is what the release holds).
    release_record : Mapping
        The content of the release's ``code/windl/release.json``.
    deface_records : list of Mapping
        The release's deface records (as shipped under ``code/deface/``).
    identifying_words : iterable of str, optional
        Further values to keep out of the text (the build passes the study's identifiers,
        :func:`windl.release.identifiers.study_identifiers`, which it has gathered anyway);
        participant and session labels of the study are kept out without them.
    relabel : callable, optional
        ``relabel(entity, label)``: the release's spelling of a study label
        (:meth:`windl.release.relabel.Relabel.label`); the task labels of the conversions
        are named as the release names them, never as the study does.

    Returns
    -------
    str
        Markdown.
    """
    from windl.release.build import released_participants

    try:
        subjects: set[str] | None = set(
            released_participants(study, str(release_record.get("scope")))
        )
    except (WindlError, OSError):
        subjects = None
    title, sections, identifiers = _release_sections(
        site, study, release_record, deface_records, subjects, relabel
    )
    return _redact(render_markdown(title, sections), [*identifiers, *identifying_words])


def release_deface_records(release_dir: Path, rev: str = "HEAD") -> list[dict[str, Any]]:
    """The deface records (``code/deface/**.json``) of a release at ``rev``."""
    found = []
    for _, kind, _, path in datasets.ls_tree(release_dir, rev, DEFACE_RECORDS):
        if kind == "blob" and path.endswith(".json"):
            data = _json_at(release_dir, rev, path)
            if data:
                found.append(data)
    return found


def _release_record(release_dir: Path) -> dict[str, Any]:
    record = (
        _json_at(release_dir, "HEAD", RELEASE_RECORD) if (release_dir / ".git").exists() else {}
    )
    if not record.get("study") or not record.get("scope"):
        raise NotARelease(
            f"not a windl release dataset (no {RELEASE_RECORD} committed)", release_dir
        )
    return record


def _release_subjects(study: Study, scope: str, release_dir: Path) -> set[str] | None:
    """Study participant ids behind the release's participants (None: key not readable)."""
    from windl.pseudonyms import mapping

    try:
        labels = {f"sub-{label}": pid for pid, label in mapping(study, scope).items()}
    except (WindlError, OSError):
        return None
    rows = _tsv_at(release_dir, "HEAD", "participants.tsv")
    return {labels[r["participant_id"]] for r in rows if r.get("participant_id") in labels}


def release_methods(site: Site, release_dir: Path) -> Methods:
    """The methods text of a release dataset (what :func:`release_methods_markdown` ships,
    plus the release's own provenance: its run records and its stored audit).

    Parameters
    ----------
    site : Site
        The site the release belongs to.
    release_dir : Path
        The release dataset (``<site>/superdataset/releases/<study>/<scope>``).

    Returns
    -------
    Methods

    Raises
    ------
    NotARelease
        If ``release_dir`` holds no committed release record.
    """
    release_dir = Path(release_dir).resolve()
    record = _release_record(release_dir)
    study = get_study(site, str(record["study"]))
    subjects = _release_subjects(study, str(record["scope"]), release_dir)
    relabel = _scope_relabel(study, str(record["scope"]))
    title, sections, identifiers = _release_sections(
        site, study, record, release_deface_records(release_dir), subjects, relabel.label
    )
    identifiers += [o for _, o in relabel.rekeyed() if len(o) >= 3 and not o.isdigit()]
    provenance = Section("Provenance of this release")
    builds = [r for r in run_records(release_dir) if r.kind == "release"]
    if builds:
        provenance.p(
            "Each version is one `datalad run` record in the release dataset; "
            "`datalad rerun <commit>` rebuilds it."
        )
        provenance.table(
            ["Date", "Commit", "Command"],
            [[r.date[:10], f"`{r.short}`", f"`{r.cmd}`"] for r in builds],
        )
    head = datasets.head(release_dir)
    audit = datasets.read_note(release_dir, AUDIT_NOTES, head)
    if audit is not None:
        verdict = "passed" if audit.get("passed") else "did not pass"
        provenance.p(
            f"The release at commit `{head[:SHORT]}` {verdict} the windl audit (consent, "
            "DICOM profile check, sidecar keys, original identifiers, defacing, BIDS validator) "
            f"on {str(audit.get('audited_at', '?'))[:10]}."
        )
    else:
        provenance.p(f"No audit is stored for the release's current commit `{head[:SHORT]}`.")
    sections.append(provenance)
    name = f"{record['study']}-{record['scope']}-{record.get('version', '0')}"
    identifiers += _raw_data_identifiers(study)
    redacted = [
        Section(_redact(s.title, identifiers), _redact_blocks(s.blocks, identifiers))
        for s in sections
    ]
    return Methods(kind="release", name=name, title=_redact(title, identifiers), sections=redacted)


def _scope_relabel(study: Study, scope: str) -> Any:
    """The vetted labels of the study's ``scope`` release line (none: labels as they are)."""
    from windl.pseudonyms import entity_mapping
    from windl.release.relabel import Relabel as Labels
    from windl.vocabulary import vocabulary_of

    try:
        return Labels(vocabulary_of(study.settings(), study.code), entity_mapping(study, scope))
    except (WindlError, OSError):
        return Labels()


def _redact_blocks(
    blocks: list[tuple[str, Any]], identifiers: Sequence[str]
) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for kind, payload in blocks:
        if kind == "table":
            header, rows = payload
            out.append((kind, (header, [[_redact(c, identifiers) for c in r] for r in rows])))
        else:
            out.append((kind, _redact(payload, identifiers)))
    return out


# =========================================================================== CLI helper
@dataclass
class MethodsFiles:
    """What ``windl methods`` wrote."""

    kind: str
    name: str
    markdown: str
    html: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_methods_for(target: str, site_dir: Path | None, out_dir: Path | None) -> MethodsFiles:
    """``windl methods TARGET``: a release folder (holds ``code/windl/release.json``) or a study.

    The site is ``site_dir`` if given, else the usual lookup; for a release folder the
    lookup starts there. The default output folder is
    ``<site>/reports/methods/<study>/`` or ``<site>/reports/methods/<study>-<scope>-<version>/``.
    """
    path = Path(target)
    is_release = path.is_dir() and (path / RELEASE_RECORD).is_file()
    if is_release:
        site = find_site(site_dir) if site_dir else _site_of(path)
        methods = release_methods(site, path)
    elif os.sep in target or "/" in target:
        raise NotARelease(f"not a release dataset (no {RELEASE_RECORD}) nor a study name", path)
    else:
        site = find_site(site_dir)
        methods = study_methods(site, target)
    md, page = write_methods(methods, out_dir or site.root / METHODS_DIR / methods.name)
    return MethodsFiles(methods.kind, methods.name, str(md), str(page))


def _site_of(release_dir: Path) -> Site:
    if os.environ.get("WINDL_SITE"):
        return find_site()
    return find_site(cwd=release_dir.resolve())


# =========================================================================== reproduce
@dataclass
class FileComparison:
    """One output file: its annex key or blob id in the original and in the rerun."""

    path: str
    status: str  # identical | different | missing in rerun | missing in original
    original: str | None
    rerun: str | None


@dataclass
class RunComparison:
    """One rerun conversion."""

    commit: str
    message: str
    kind: str
    branch: str
    rerun_commit: str
    seconds: float
    files: list[FileComparison] = field(default_factory=list)
    error: str | None = None

    @property
    def identical(self) -> bool:
        return self.error is None and all(f.status == "identical" for f in self.files)

    def counts(self) -> dict[str, int]:
        return dict(Counter(f.status for f in self.files))


@dataclass
class ReproduceReport:
    """The result of :func:`reproduce`."""

    study: str
    commit: str
    started: str
    seconds: float
    runs: list[RunComparison] = field(default_factory=list)
    json_path: str = ""
    html_path: str = ""

    @property
    def all_identical(self) -> bool:
        return bool(self.runs) and all(r.identical for r in self.runs)

    def summary(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for run in self.runs:
            total.update(run.counts())
        return {
            "runs": len(self.runs),
            "failed runs": sum(1 for r in self.runs if r.error),
            "files": sum(total.values()),
            **{s: total.get(s, 0) for s in _STATUSES},
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for run, plain in zip(self.runs, data["runs"], strict=True):
            plain["identical"] = run.identical
            plain["counts"] = run.counts()
        return {**data, "all_identical": self.all_identical, "summary": self.summary()}


_STATUSES = ("identical", "different", "missing in rerun", "missing in original")


def _changed(ds: Path, base: str, rev: str) -> set[str]:
    out = datasets.git(ds, "diff", "--no-renames", "--name-only", "-z", base, rev)
    return {p for p in out.split("\0") if p}


def _entry_ids(ds: Path, rev: str, paths: Sequence[str]) -> dict[str, str]:
    """path → ``key:<annex key>`` (annexed) or ``blob:<id>`` in ``rev``; absent paths left out."""
    entries: list[tuple[str, str, str]] = []
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        out = datasets.git(ds, "ls-tree", "-r", "-z", rev, "--", *chunk)
        for entry in out.split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                mode, _, blob = meta.split()
                entries.append((mode, blob, path))
    links = [(blob, path) for mode, blob, path in entries if mode == "120000"]
    found = datasets.annex_keys_of_links(ds, [blob for blob, _ in links])
    keys = dict(zip([path for _, path in links], found, strict=True))
    return {
        path: (f"key:{keys[path]}" if path in keys else f"blob:{blob}") for _, blob, path in entries
    }


def compare_outputs(
    ds: Path, original: str, rerun: str, base: str | None = None
) -> list[FileComparison]:
    """Compare, file by file, what commit ``original`` and commit ``rerun`` changed.

    Parameters
    ----------
    ds : Path
        A dataset holding both commits.
    original, rerun : str
        The original run commit and the commit the rerun made (or the base, when the rerun
        changed nothing).
    base : str, optional
        The state both started from; default ``original^``.

    Returns
    -------
    list of FileComparison
        Every path changed by either commit, sorted: ``identical`` when the annex keys (or,
        for files in git, the blob ids) are equal or the file is absent in both,
        ``different`` otherwise, ``missing in rerun`` / ``missing in original`` when only one
        side has the file.
    """
    base = base or f"{original}^"
    paths = sorted(_changed(ds, base, original) | _changed(ds, base, rerun))
    before, after = _entry_ids(ds, original, paths), _entry_ids(ds, rerun, paths)
    result = []
    for path in paths:
        old, new = before.get(path), after.get(path)
        if old == new:
            status = "identical"
        elif new is None:
            status = "missing in rerun"
        elif old is None:
            status = "missing in original"
        else:
            status = "different"
        result.append(FileComparison(path, status, old, new))
    return result


def _remove_tree(path: Path) -> None:
    """Remove a folder that holds git-annex objects (read-only files in read-only folders)."""
    if not path.exists():
        return
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            folder = Path(root) / name
            if not folder.is_symlink():
                folder.chmod(0o700)
    path.chmod(0o700)
    shutil.rmtree(path, ignore_errors=True)


def _sync_subdatasets(clone: Path, installed: Sequence[Path]) -> None:
    """Check out each installed subdataset at the commit its parent's HEAD records.

    Parents first (``installed`` is in that order), so a subject dataset follows the
    ``sourcedata`` commit that was just checked out. A subdataset that the parent's
    commit holds as a plain folder instead (a subject of ``sourcedata`` before
    ``windl study migrate``) is moved aside while the parent is at such a commit, so the
    folder's files can be checked out, and comes back with a commit that has it again.
    """
    aside = clone.parent / "subdatasets-aside"

    def held(sub: Path) -> Path:
        return aside / sub.relative_to(clone).as_posix().replace("/", "%")

    def innermost_parent(sub: Path) -> Path:
        return max((p for p in [clone, *installed] if p in sub.parents), key=lambda p: len(p.parts))

    for sub in installed:
        if not (sub / ".git").exists():
            continue  # aside: its parent is at a commit that has it as a folder
        parent = innermost_parent(sub)
        fields = datasets.git(parent, "ls-tree", "HEAD", "--", str(sub.relative_to(parent)))
        fields = fields.split()
        if len(fields) < 3 or fields[1] != "commit" or datasets.head(sub) == fields[2]:
            continue
        children = {
            child: datasets.git(sub, "ls-tree", fields[2], "--", str(child.relative_to(sub)))
            for child in installed
            if innermost_parent(child) == sub
        }
        for child, entry in children.items():
            if " commit " not in entry and (child / ".git").exists():
                aside.mkdir(exist_ok=True)
                os.replace(child, held(child))
        datasets.git(sub, "checkout", "-q", "--detach", fields[2])
        for child, entry in children.items():
            if " commit " in entry and held(child).exists():
                if child.is_dir() and not any(child.iterdir()):
                    child.rmdir()
                os.replace(held(child), child)


def _rerun_one(
    clone: Path, record: RunRecord, number: int, installed: Sequence[Path], logs: Path
) -> RunComparison:
    """``datalad rerun --onto <commit>^ --branch reproduce-N <commit>``, done as its two steps:
    a branch from the parent (with the subdatasets as the parent records them), then the rerun
    of the record onto it."""
    branch = f"reproduce-{number}"
    datasets.discard_changes(clone, ["."])
    datasets.git(clone, "checkout", "-q", "-b", branch, f"{record.commit}^")
    _sync_subdatasets(clone, installed)
    start = time.monotonic()
    error = None
    try:
        datasets.rerun_logged(clone, record.commit, logs / f"{branch}.log")
    except WindlError as exc:
        error = exc.message.replace(str(logs), "<log>")
        datasets.discard_changes(clone, ["."])
    seconds = round(time.monotonic() - start, 2)
    rerun = datasets.head(clone)
    return RunComparison(
        commit=record.commit,
        message=record.message,
        kind=record.kind,
        branch=branch,
        rerun_commit=rerun,
        seconds=seconds,
        files=compare_outputs(clone, record.commit, rerun),
        error=error,
    )


def reproduce(
    site: Site, study_name: str, say: Callable[[str], None] = lambda _: None
) -> ReproduceReport:
    """Rerun every conversion of a study in a temporary clone and compare the outputs.

    The study is cloned (``datalad clone``) into a temporary folder; the subdatasets that hold
    the conversions' inputs are installed and the inputs got. Each conversion run record
    (heudiconv, or windl's EEG/MEG conversion) is rerun on a branch ``reproduce-N`` from its
    commit's parent; every file the original commit or the rerun changed is compared by
    annex key or blob id. The clone is removed at the end, also on failure; the site's
    datasets are only read. The report is written to
    ``<site>/reports/reproduce/<study>-<short commit>.{json,html}``.

    Parameters
    ----------
    site : Site
        The site.
    study_name : str
        Study name.
    say : callable
        Progress messages.

    Returns
    -------
    ReproduceReport
        ``all_identical`` is true when every output of every conversion came out the same.

    Raises
    ------
    NothingToReproduce
        If the study has no conversion run record.
    """
    study = get_study(site, study_name)
    head = datasets.head(study.root)
    records = [r for r in run_records(study.root) if r.kind in ("mri", "ephys")]
    if not records:
        raise NothingToReproduce(f"study {study.name} has no conversion run record to rerun")
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"windl-reproduce-{study.name}-"))
    runs: list[RunComparison] = []
    try:
        clone = tmp / study.name
        say(f"cloning {study.name} into a temporary folder")
        datasets.clone_dataset(study.root, clone)
        wanted = sorted({p for r in records for p in [*r.inputs, *r.extra_inputs]})
        # installs every subdataset on the way to an input (sourcedata, the subject's)
        datasets.get_content(clone, wanted, False)
        subs = [
            s
            for s in datasets.installed_subdatasets(clone)
            if any(p == s.relative_to(clone).as_posix() or p.startswith(
                s.relative_to(clone).as_posix() + "/") for p in wanted)
        ]  # fmt: skip
        present = [p for p in wanted if (clone / p).exists() or (clone / p).is_symlink()]
        say(f"getting the inputs of {_plural(len(records), 'conversion')}")
        datasets.get_content(clone, present)
        logs = tmp / "logs"
        logs.mkdir()
        # datalad run never removes its {tmpdir} (heudiconv's DICOM dumps land there): the
        # reruns make theirs inside the folder that is removed below
        with datasets.temporary_files_in(tmp / "scratch"):
            for number, record in enumerate(records, 1):
                say(f"[{number}/{len(records)}] rerunning {record.short} {record.message}")
                runs.append(_rerun_one(clone, record, number, subs, logs))
    finally:
        _remove_tree(tmp)
    report = ReproduceReport(
        study=study.name,
        commit=head,
        started=started,
        seconds=round(time.monotonic() - clock, 2),
        runs=runs,
    )
    _write_reproduce_report(site, report)
    return report


def _write_reproduce_report(site: Site, report: ReproduceReport) -> None:
    folder = site.root / REPRODUCE_DIR
    stem = f"{report.study}-{report.commit[:SHORT]}"
    report.json_path = str(folder / f"{stem}.json")
    report.html_path = str(folder / f"{stem}.html")
    atomic_write_text(Path(report.json_path), json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(Path(report.html_path), reproduce_html(report))


def reproduce_html(report: ReproduceReport) -> str:
    """The reproduction report as one self-contained HTML page."""
    summary = report.summary()
    verdict = (
        '<span class="ok">all outputs identical</span>'
        if report.all_identical
        else '<span class="bad">NOT all outputs identical</span>'
    )
    parts = [
        f"<p>Study <code>{html.escape(report.study)}</code> at commit "
        f"<code>{report.commit[:SHORT]}</code>, started {html.escape(report.started)}, "
        f"{report.seconds:.1f} s: {verdict}.</p>",
        "<table><thead><tr><th>Runs</th>"
        + "".join(f"<th>{html.escape(s)}</th>" for s in ("files", *_STATUSES))
        + "</tr></thead><tbody><tr>"
        + "".join(f"<td>{summary[s]}</td>" for s in ("runs", "files", *_STATUSES))
        + "</tr></tbody></table>",
    ]
    for run in report.runs:
        state = (
            '<span class="ok">identical</span>'
            if run.identical
            else '<span class="bad">differs</span>'
        )
        parts.append(
            f"<h2><code>{run.commit[:SHORT]}</code> {html.escape(run.message)}</h2>"
            f"<p>{html.escape(run.kind)}; rerun on branch <code>{html.escape(run.branch)}</code> "
            f"as <code>{run.rerun_commit[:SHORT]}</code> in {run.seconds:.1f} s: {state}</p>"
        )
        if run.error:
            parts.append(f'<p class="bad">rerun failed: {html.escape(run.error)}</p>')
        rows = "".join(
            f"<tr><td><code>{html.escape(f.path)}</code></td>"
            f'<td class="{"ok" if f.status == "identical" else "bad"}">'
            f"{html.escape(f.status)}</td>"
            f"<td><code>{html.escape(f.original or '-')}</code></td>"
            f"<td><code>{html.escape(f.rerun or '-')}</code></td></tr>"
            for f in run.files
        )
        parts.append(
            "<table><thead><tr><th>File</th><th>Result</th><th>Original</th><th>Rerun</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    title = f"Reproduction of {report.study} at {report.commit[:SHORT]}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


__all__ = [
    "FileComparison",
    "Heuristic",
    "Methods",
    "MethodsFiles",
    "NotARelease",
    "NothingToReproduce",
    "ReproduceReport",
    "RunComparison",
    "RunRecord",
    "RunRecordError",
    "Section",
    "compare_outputs",
    "heuristic_at",
    "normalized_command",
    "release_deface_records",
    "release_methods",
    "release_methods_markdown",
    "reproduce",
    "run_records",
    "step_kind",
    "study_methods",
    "write_methods",
    "write_methods_for",
]
