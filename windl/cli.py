"""The ``windl`` command line: parse, call one library function, print.

User errors (:class:`windl.errors.WindlError`) become one line on stderr and a non-zero
exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from windl.config import Site, find_site
from windl.errors import WindlError


class WindlGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WindlError as exc:
            click.echo(f"windl: error: {exc}", err=True)
            sys.exit(exc.exit_code)


site_option = click.option(
    "--site",
    "site_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Site folder (default: $WINDL_SITE, else the current folder or a parent).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _site(site_dir: Path | None) -> Site:
    return find_site(site_dir)


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


@click.group(cls=WindlGroup)
@click.version_option(package_name="windl")
def main() -> None:
    """windl: the open-data server of a neuroimaging centre."""


# ----------------------------------------------------------------------------- site
@main.group()
def site() -> None:
    """Create and inspect a site."""


@site.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Site name (default: folder name).")
def site_init(directory: Path, name: str | None) -> None:
    """Create a site in DIRECTORY: windl.toml and the superdataset."""
    from windl.site import init_site

    created = init_site(directory, name=name)
    click.echo(f"site created: {created.root}")


# ----------------------------------------------------------------------------- study
@main.group()
def study() -> None:
    """Create and list studies."""


@study.command("create")
@click.argument("name")
@site_option
def study_create(name: str, site_dir: Path | None) -> None:
    """Create study NAME (a BIDS DataLad dataset with sourcedata/ and restricted/)."""
    from windl.study import create_study

    created = create_study(_site(site_dir), name)
    click.echo(f"study created: {created.root}")


@study.command("list")
@site_option
@json_option
def study_list(site_dir: Path | None, as_json: bool) -> None:
    """List the site's studies."""
    from windl.study import list_studies, study_summary

    summaries = [study_summary(s) for s in list_studies(_site(site_dir))]
    lines = [
        f"{s['name']}\t{s['subjects']} subjects\t{s['sessions']} sessions\t{s['path']}"
        for s in summaries
    ]
    _emit(summaries, as_json, "\n".join(lines) if lines else "no studies")


# ----------------------------------------------------------------------------- ingest
def _progress_printer() -> Any:
    """A one-line counter on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        end = "\n" if done == total else ""
        click.echo(f"\r{stage} {done}/{total}", err=True, nl=False)
        if end:
            click.echo("", err=True)

    return show


@main.command("ingest")
@click.argument("study_name", metavar="STUDY")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--subject", required=True, help="Subject label (01 or sub-01).")
@click.option("--session", default=None, help="Session label (optional).")
@site_option
@json_option
def ingest_cmd(
    study_name: str,
    source: Path,
    subject: str,
    session: str | None,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """Ingest SOURCE (folder, .zip, .tar[.gz]) into STUDY's sourcedata."""
    from dataclasses import asdict

    from windl.ingest import ingest

    result = ingest(
        _site(site_dir), study_name, source, subject, session, progress=_progress_printer()
    )
    lines = [f"{'series':>6}  {'modality':8}  {'files':>5}  {'kind':9}  description"]
    lines += [
        f"{s.number if s.number is not None else '-':>6}  {s.modality:8}  {s.files:>5}  "
        f"{s.kind:9}  {s.description}"
        for s in result.series
    ]
    lines += [
        f"{'-':>6}  {r.kind.upper():8}  {r.files:>5}  {r.format:9}  {r.name}"
        for r in result.recordings
    ]
    if result.other_files:
        lines.append(f"{result.other_files} other files kept under misc/")
    where = f"sub-{result.subject}" + (f" ses-{result.session}" if result.session else "")
    if result.changed:
        lines.append(
            f"ingested {result.added} files into {result.study} {where} "
            f"(commit {result.commit[:10] if result.commit else ''})"
        )
    else:
        lines.append(f"nothing new: all {result.already_present} files already in {where}")
    _emit(asdict(result), as_json, "\n".join(lines))


# ----------------------------------------------------------------------------- convert
@main.command("convert")
@click.argument("study_name", metavar="STUDY")
@click.option("--subject", default=None, help="Only this subject.")
@click.option("--session", default=None, help="Only this session.")
@click.option(
    "--task",
    default=None,
    help="BIDS task label for EEG/MEG recordings (default: code/study.toml, else file name).",
)
@site_option
@json_option
def convert_cmd(
    study_name: str,
    subject: str | None,
    session: str | None,
    task: str | None,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """Convert ingested sessions of STUDY to BIDS (heudiconv + dcm2niix, under datalad run)."""
    from dataclasses import asdict

    from windl.convert import convert, raise_for_failures

    results = convert(
        _site(site_dir), study_name, subject, session, task=task, progress=_progress_printer()
    )
    lines = []
    for r in results:
        lines.append(f"{r.prefix.replace('/', ' ')}: {r.status}")
        for s in r.series:
            target = (
                s["bids_name"] if s["status"] == "converted" else f"NOT CONVERTED: {s['reason']}"
            )
            lines.append(f"  series {s['series']:>4} {s['description'][:40]:40} -> {target}")
        for rec in r.recordings:
            lines.append(f"  {rec['kind']:>6} {rec['name'][:40]:40} -> {rec['bids_name']}")
        if r.error:
            lines.append(f"  FAILED: {r.error}")
    _emit([asdict(r) for r in results], as_json, "\n".join(lines))
    raise_for_failures(results)


# ----------------------------------------------------------------------------- validate
@main.command("validate")
@click.argument("study_name", metavar="STUDY")
@site_option
@json_option
def validate_cmd(study_name: str, site_dir: Path | None, as_json: bool) -> None:
    """Run the official BIDS validator on STUDY; exit 2 if it reports errors."""
    from windl.errors import ValidationFailed
    from windl.validate import validate

    report = validate(_site(site_dir), study_name)
    state = report.commit[:10] + ("" if report.clean else " + uncommitted changes (not stored)")
    lines = [f"{report.study} @ {state}: {report.n_errors} errors, {report.n_warnings} warnings"]
    lines += [
        f"  error   {code} x{n} e.g. {report.examples[code]}" for code, n in report.errors.items()
    ]
    lines += [f"  warning {code} x{n}" for code, n in report.warnings.items()]
    _emit({**report.__dict__}, as_json, "\n".join(lines))
    if report.n_errors:
        raise ValidationFailed(f"{report.n_errors} BIDS errors in study {report.study}")


# ----------------------------------------------------------------------------- demo
@main.command("demo")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def demo_cmd(directory: Path) -> None:
    """Build a demo site in DIRECTORY from ../shared/data, end to end."""
    from windl.demo import build_demo
    from windl.errors import ValidationFailed

    result = build_demo(directory, say=click.echo)
    if result.validation.n_errors:
        raise ValidationFailed(f"demo study has {result.validation.n_errors} BIDS errors")


# ----------------------------------------------------------------------------- import / add
@main.command("import")
@click.argument("study_name", metavar="STUDY")
@click.argument("bids_dir", type=click.Path(path_type=Path))
@site_option
@json_option
def import_cmd(study_name: str, bids_dir: Path, site_dir: Path | None, as_json: bool) -> None:
    """Import BIDS_DIR, a dataset that is already BIDS, into STUDY (validated first)."""
    from dataclasses import asdict

    from windl.bids_import import import_bids

    result = import_bids(_site(site_dir), study_name, bids_dir)
    lines = []
    if result.changed:
        written = len(result.added) + len(result.replaced) + len(result.merged)
        commit = f" (commit {result.commit[:10]})" if result.commit else ""
        lines.append(f"imported {written} files into {result.study}{commit}")
    else:
        lines.append(f"nothing new: all {result.unchanged} files already in {result.study}")
    if result.replaced:
        lines.append(f"  replaced the study's template {', '.join(result.replaced)}")
    if result.merged:
        lines.append(f"  merged into the study's {', '.join(result.merged)}")
    if result.kept:
        lines.append(f"  kept the study's own {', '.join(result.kept)} (the imported ones differ)")
    if result.sourcedata:
        lines.append(f"  {len(result.sourcedata)} files into the sourcedata subdataset, imported/")
    if result.skipped:
        lines.append(f"  not imported (hidden): {', '.join(result.skipped)}")
    lines.append(f"  validator: 0 errors, {result.validator_warnings} warnings in {bids_dir}")
    _emit({**asdict(result), "changed": result.changed}, as_json, "\n".join(lines))


@main.command("add")
@click.argument("study_name", metavar="STUDY")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--as",
    "kind",
    required=True,
    metavar="KIND",
    help="beh, phenotype, stimuli, code, docs or derivatives/NAME.",
)
@click.option("--subject", default=None, help="Subject label (--as beh).")
@click.option("--session", default=None, help="Session label (--as beh, optional).")
@click.option("--task", default=None, help="Task label (--as beh).")
@site_option
@json_option
def add_cmd(
    study_name: str,
    path: Path,
    kind: str,
    subject: str | None,
    session: str | None,
    task: str | None,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """Add PATH (file or folder) to STUDY at the BIDS place for KIND."""
    from dataclasses import asdict

    from windl.add import add

    result = add(_site(site_dir), study_name, path, kind, subject, session, task)
    if result.changed:
        lines = [f"added {len(result.added)} files to {result.study} as {result.kind}"]
        lines[0] += f" (commit {result.commit[:10] if result.commit else ''})"
        lines += [f"  {rel}" for rel in result.added]
    else:
        lines = [f"nothing new: all {len(result.unchanged)} files already in {result.study}"]
    if result.to_describe:
        lines.append("fill in the TODO descriptions in: " + ", ".join(result.to_describe))
    _emit({**asdict(result), "changed": result.changed}, as_json, "\n".join(lines))
