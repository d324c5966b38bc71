"""The ``windl`` command line: parse, call one library function, print.

User errors (:class:`windl.errors.WindlError`) become one line on stderr and a non-zero
exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from windl.config import Site, find_site
from windl.errors import WindlError

ERROR_PREFIX = "windl: error: "
#: click's exit status for a command line it cannot parse (argparse and POSIX tools agree)
USAGE_EXIT = 2


def error_line(message: str) -> str:
    """``message`` as the one line the CLI prints: one prefix, no line breaks.

    Errors relayed from child processes (a ``datalad run`` of a windl step, a worker)
    quote the line the child printed, prefix included; the prefix is dropped here, the
    one place every error passes on its way out, so it is printed once.
    """
    text = " ".join(message.split())
    while ERROR_PREFIX.strip() in text:
        text = text.replace(ERROR_PREFIX.strip(), "").strip()
        text = " ".join(text.split())
    return ERROR_PREFIX + text


def _fail(message: str, code: int) -> None:
    click.echo(error_line(message), err=True)
    sys.exit(code)


class WindlGroup(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line; click's own usage errors become one ``windl: error:`` line.

        click would print the usage, a hint and the error (four lines); a script or a
        person reading stderr gets the one line windl prints for every error instead,
        and exit status 2.
        """
        standalone = kwargs.pop("standalone_mode", True)
        if not standalone:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            # a bare 'windl' or command group asks for help: it gets the help, as in click
            exc.show()
            sys.exit(USAGE_EXIT)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(exc.format_message() + hint, USAGE_EXIT)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        # without standalone mode click returns the exit status of --help/--version
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WindlError as exc:
            _fail(str(exc), exc.exit_code)


site_option = click.option(
    "--site",
    "site_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Site folder (default: $WINDL_SITE, else the current folder or a parent).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def jobs_option(what: str) -> Any:
    """``--jobs/-j N`` (N ≥ 1, default 1); ``what`` says what runs N at a time."""
    return click.option(
        "--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1), help=what
    )


def _site(site_dir: Path | None) -> Site:
    return find_site(site_dir)


def writes_study(param: str = "study_name", superdataset: bool = False) -> Any:
    """Run the command holding the lock of the study named by its argument ``param``.

    Waits (with a message on stderr) while another windl command writes that study;
    with ``superdataset`` the superdataset's lock is held too, taken after the study's
    (the order :mod:`windl.locks` prescribes). A command without that study name (an
    optional argument left out) runs without the lock.
    """

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from windl.labels import study_name
            from windl.locks import study_lock, superdataset_lock

            name = kwargs.get(param)
            if name is None:
                return func(*args, **kwargs)
            root = _site(kwargs.get("site_dir")).root
            outer = superdataset_lock(root) if superdataset else contextlib.nullcontext()
            with study_lock(root, study_name(name)), outer:
                return func(*args, **kwargs)

        return wrapper

    return decorate


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
@writes_study("name", superdataset=True)
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


@study.command("migrate")
@click.argument("study_name", metavar="STUDY")
@site_option
@json_option
@writes_study()
def study_migrate(study_name: str, site_dir: Path | None, as_json: bool) -> None:
    """Give each subject of STUDY's sourcedata a dataset of its own (the layout for scale).

    For studies made before windl kept one dataset per subject; no data is copied, and
    running it again changes nothing.
    """
    from dataclasses import asdict

    from windl.sourcedata import migrate

    result = migrate(_site(site_dir), study_name, progress=_progress_printer())
    text = (
        f"{len(result.migrated)} subjects of {result.study} moved into subject datasets"
        f" ({len(result.records_updated)} conversion records re-fingerprinted)"
        if result.changed
        else f"{result.study}: every subject has a dataset already; nothing to do"
    )
    _emit(asdict(result), as_json, text)


# ----------------------------------------------------------------------------- ingest
def _progress_printer() -> Any:
    """A one-line counter on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return None
    # a descriptor of its own for the terminal: while a recorded step (qc, release
    # assemble) runs, datalad run sends this process's stderr to the step's log, and the
    # step's progress is shown meanwhile
    terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", encoding="utf-8", buffering=1)

    def show(stage: str, done: int, total: int) -> None:
        end = "\n" if done == total else ""
        terminal.write(f"\r{stage} {done}/{total}{end}")
        terminal.flush()

    return show


@main.command("ingest")
@click.argument("study_name", metavar="STUDY")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--subject", required=True, help="Subject label (01 or sub-01).")
@click.option("--session", default=None, help="Session label (optional).")
@site_option
@json_option
@writes_study()
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
@jobs_option("Sessions converted at the same time (each a job in a worktree of its own).")
@click.option(
    "--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
    help="Where jobs run: this machine, or one Slurm job per session ([slurm] in windl.toml).",
)  # fmt: skip
@site_option
@json_option
@writes_study()
def convert_cmd(
    study_name: str,
    subject: str | None,
    session: str | None,
    task: str | None,
    jobs: int,
    executor: str,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """Convert ingested sessions of STUDY to BIDS (heudiconv + dcm2niix, under datalad run)."""
    from dataclasses import asdict

    from windl.convert import convert, raise_for_failures

    results = convert(
        _site(site_dir),
        study_name,
        subject,
        session,
        task=task,
        progress=_progress_printer(),
        jobs=jobs,
        executor=executor,
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
@writes_study()
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
    if result.removed:
        lines.append(f"  removed the study's template {', '.join(result.removed)}")
    if result.participants_added:
        added = ", ".join(result.participants_added)
        lines.append(f"  participants.tsv: a row (n/a) for each folder it lacked: {added}")
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
@writes_study()
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
    if result.link_to:
        lines.insert(0, f"{path} is a symbolic link to {result.link_to}")
    if result.to_describe:
        lines.append("fill in the TODO descriptions in: " + ", ".join(result.to_describe))
    _emit({**asdict(result), "changed": result.changed}, as_json, "\n".join(lines))


# ----------------------------------------------------------------------------- consent
@main.group()
def consent() -> None:
    """Record which sharing scopes participants consented to (kept in restricted/)."""


def _consent_line(record: dict[str, Any]) -> str:
    text = (
        f"{record['participant_id']}\t{', '.join(record['scopes']) or 'no scopes'}\t"
        f"form {record['form_version'] or 'n/a'}\t{record['date'] or 'n/a'}"
    )
    return text + (f"\tWITHDRAWN {record['withdrawn']}" if record["withdrawn"] else "")


def _consent_change_lines(change: Any) -> list[str]:
    if change.commit is None:
        who = ", ".join(change.unchanged)
        return [f"unchanged: the consent registry of {change.study} already says this for {who}"]
    n = len(change.changed)
    lines = [f"{change.action}: {n} consent record{'s' * (n != 1)} of {change.study}"]
    lines[0] += f" (commit {change.commit[:10]})"
    lines += [f"  {_consent_line(r.to_dict())}" for r in change.changed]
    if change.unchanged:
        lines.append(f"  unchanged: {', '.join(change.unchanged)}")
    return lines


@consent.command("set")
@click.argument("study_name", metavar="STUDY")
@click.argument("subject")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help="individuals, members or external; repeat for several.",
)
@click.option("--form-version", default=None, help="Version of the consent form signed.")
@click.option(
    "--date",
    default=None,
    metavar="YYYY-MM-DD",
    help="Date of consent (default: today; kept if scopes and form are unchanged).",
)
@site_option
@json_option
@writes_study()
def consent_set(
    study_name: str,
    subject: str,
    scopes: tuple[str, ...],
    form_version: str | None,
    date: str | None,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """Record that SUBJECT of STUDY consented to exactly the given scopes."""
    from windl.consent import set_consent

    change = set_consent(_site(site_dir), study_name, subject, scopes, form_version, date)
    _emit(change.to_dict(), as_json, "\n".join(_consent_change_lines(change)))


@consent.command("show")
@click.argument("study_name", metavar="STUDY")
@click.argument("subject", required=False)
@site_option
@json_option
def consent_show(
    study_name: str, subject: str | None, site_dir: Path | None, as_json: bool
) -> None:
    """Show the consent records of STUDY, or SUBJECT's record and its history."""
    from windl.consent import show_consent

    shown = show_consent(_site(site_dir), study_name, subject)
    lines = [_consent_line(r) for r in shown["records"]]
    if subject is not None:
        lines = lines or [f"{shown['participant']}\tno consent recorded"]
        lines += [
            f"  {h['timestamp']} {h['action']}: {h['scopes']}, form {h['form_version']}, "
            f"{h['date']}" + (f", withdrawn {h['withdrawn']}" if h["withdrawn"] != "n/a" else "")
            for h in shown["history"]
        ]
    _emit(shown, as_json, "\n".join(lines) or f"no consent recorded in {study_name}")


@consent.command("withdraw")
@click.argument("study_name", metavar="STUDY")
@click.argument("subject")
@click.option("--date", default=None, metavar="YYYY-MM-DD", help="Date (default: today).")
@site_option
@json_option
@writes_study()
def consent_withdraw(
    study_name: str, subject: str, date: str | None, site_dir: Path | None, as_json: bool
) -> None:
    """Record that SUBJECT withdrew consent; list published versions that contain them."""
    from windl.consent import withdraw_consent

    change = withdraw_consent(_site(site_dir), study_name, subject, date)
    record = (change.changed or [None])[0]
    pid = record.participant_id if record else change.unchanged[0]
    if record is not None and change.commit:
        lines = [f"{pid} withdrew consent on {record.withdrawn} (commit {change.commit[:10]})"]
    else:
        lines = [f"unchanged: {pid} has already withdrawn consent"]
    if change.published:
        lines.append(f"published versions that still contain {pid} (under a release label):")
        lines += [f"  {p.scope} {p.tag}\t{p.dataset}" for p in change.published]
    else:
        lines.append(f"no published versions contain {pid}")
    _emit(change.to_dict(), as_json, "\n".join(lines))


@consent.command("import")
@click.argument("study_name", metavar="STUDY")
@click.argument("csv_file", metavar="CSV", type=click.Path(path_type=Path))
@site_option
@json_option
@writes_study()
def consent_import(study_name: str, csv_file: Path, site_dir: Path | None, as_json: bool) -> None:
    """Record consent from CSV (participant_id, scopes, form_version, date) in one commit."""
    from windl.consent import import_consent

    change = import_consent(_site(site_dir), study_name, csv_file)
    _emit(change.to_dict(), as_json, "\n".join(_consent_change_lines(change)))


# --------------------------------------------------------------------------- qc
@main.command("qc")
@click.argument("study_name", metavar="STUDY")
@click.option("--subject", default=None, help="Only this subject (01 or sub-01).")
@jobs_option("Files whose QC is computed at the same time (worker processes; same outputs).")
@site_option
@json_option
@writes_study()
def qc_cmd(
    study_name: str, subject: str | None, jobs: int, site_dir: Path | None, as_json: bool
) -> None:
    """Quality metrics + HTML reports of STUDY's MRI/EEG/MEG into derivatives/qc (datalad run)."""
    from windl.qc import raise_for_failures, run_qc

    result = run_qc(_site(site_dir), study_name, subject, jobs=jobs, progress=_progress_printer())
    state = f"commit {(result.commit or '')[:10]}" if result.changed else "unchanged"
    lines = [
        f"qc {result.study}: {result.recordings} files ({result.computed} computed, "
        f"{result.reused} unchanged, {len(result.failed)} failed), {state}",
        f"  {result.path}",
        f"  report: {result.path / 'group_qc.html'}",
    ]
    lines += [f"  FAILED {rel}: {error}" for rel, error in result.failed.items()]
    _emit(result.to_dict(), as_json, "\n".join(lines))
    raise_for_failures(result)


# --------------------------------------------------------------------------- release
@main.group()
def release() -> None:
    """Build de-identified release datasets."""


@release.command("build")
@click.argument("study_name", metavar="STUDY")
@click.option("--scope", required=True, help="individuals, members or external.")
@click.option("--version", "version", required=True, metavar="X.Y.Z", help="Release version.")
@jobs_option("Files made at the same time (defacing, de-identification; same release).")
@site_option
@json_option
@writes_study()
def release_build(
    study_name: str, scope: str, version: str, jobs: int, site_dir: Path | None, as_json: bool
) -> None:
    """Build version X.Y.Z of STUDY's release for SCOPE (consented participants only)."""
    from windl.release import build_release

    result = build_release(
        _site(site_dir),
        study_name,
        scope,
        version,
        say=lambda m: click.echo(m, err=True),
        jobs=jobs,
        progress=_progress_printer(),
    )
    state = f"commit {result.commit[:10]}" if result.changed else "unchanged"
    lines = [
        f"release {result.study} {result.scope} {result.version}: {state}",
        f"  {result.path}",
        f"  {result.participants} participants, {result.sessions} sessions, {result.files} files "
        f"({result.made} made, {result.reused} reused, {result.removed} removed)",
    ]
    if result.participants_added:
        lines.append(f"  participants added: {', '.join(result.participants_added)}")
    if result.participants_removed:
        lines.append(f"  participants removed: {', '.join(result.participants_removed)}")
    if result.refused:
        lines.append(f"  not shipped (pixels may show text): {len(result.refused)} files")
    lines.append(f"  next: windl audit {result.path}")
    _emit(result.to_dict(), as_json, "\n".join(lines))


@release.command("review")
@click.argument("study_name", metavar="STUDY")
@click.option("--approve", is_flag=True, help="Approve every text as it stands (one commit).")
@site_option
@json_option
@writes_study()
def release_review(study_name: str, approve: bool, site_dir: Path | None, as_json: bool) -> None:
    """Print the texts written by people that STUDY's releases carry only once approved."""
    from windl.release.review import approve as approve_texts
    from windl.release.review import review
    from windl.study import get_study

    study = get_study(_site(site_dir), study_name)
    texts = approve_texts(study) if approve else review(study)
    lines = []
    for item in texts:
        state = "approved" if item.approved else "NOT approved (withheld from releases)"
        lines += [f"== {item.name}: {state} (sha256 {item.sha256[:12]})", item.text.rstrip(), ""]
    pending = sum(not t.approved for t in texts)
    lines.append(
        f"{len(texts)} text(s), {pending} pending review"
        + (
            f"; approve them as shown: windl release review {study.name} --approve"
            if pending
            else ""
        )
    )
    _emit([t.to_dict() for t in texts], as_json, "\n".join(lines))


@release.command("assemble", hidden=True)
@click.argument("study_name", metavar="STUDY")
@click.option("--scope", required=True)
@click.option("--version", "version", required=True)
@click.option(
    "--jobs", envvar="WINDL_JOBS", default=1, type=click.IntRange(min=1), hidden=True,
    help="Worker processes; from $WINDL_JOBS, so the recorded command does not name it.",
)  # fmt: skip
@site_option
def release_assemble(
    study_name: str, scope: str, version: str, jobs: int, site_dir: Path | None
) -> None:
    """The step 'release build' records with datalad run (not for direct use)."""
    from windl.release import assemble_release

    stats = assemble_release(_site(site_dir), study_name, scope, version, jobs=jobs)
    click.echo(json.dumps(stats))


@main.command("audit")
@click.argument("release_dir", metavar="RELEASE", type=click.Path(path_type=Path))
@site_option
@json_option
def audit_cmd(release_dir: Path, site_dir: Path | None, as_json: bool) -> None:
    """Check every file of a release against the de-identification criteria (the gate)."""
    from windl.release import audit_release

    result = audit_release(release_dir, site=_site(site_dir) if site_dir else None)
    lines = [
        f"audit {result.study} {result.scope} {result.version} at {result.commit[:10]}: "
        + ("PASSED" if result.passed else f"FAILED ({len(result.findings)} findings)")
    ]
    lines += [f"  {f['check']}: {f['path']}: {f['message']}" for f in result.findings[:50]]
    if len(result.findings) > 50:
        lines.append(f"  … {len(result.findings) - 50} more in the report")
    lines.append(f"  report: {result.html}")
    _emit(result.to_dict(), as_json, "\n".join(lines))
    if not result.passed:
        sys.exit(AUDIT_FAILED_EXIT)


AUDIT_FAILED_EXIT = 4


# --------------------------------------------------------------------------- publish / share
@main.command("publish")
@click.argument("study_name", metavar="STUDY")
@click.option("--scope", required=True, help="individuals, members or external.")
@click.option("--version", "version", required=True, metavar="X.Y.Z", help="Built version.")
@site_option
@json_option
@writes_study()
def publish_cmd(
    study_name: str, scope: str, version: str, site_dir: Path | None, as_json: bool
) -> None:
    """Tag an audited release version and push it to its scope's store."""
    from windl.share.publish import publish

    result = publish(
        _site(site_dir), study_name, scope, version, say=lambda m: click.echo(m, err=True)
    )
    lines = [
        f"published {result.study} {result.scope} {result.tag} ({result.commit[:10]})"
        + ("" if result.tagged else ", already tagged: pushed again"),
        f"  {result.annexed_files} annexed files in the store ({result.sibling})",
        f"  datalad clone '{result.clone_url}'",
    ]
    if result.then:
        lines.append(f"  then, with a granted GPG key: {result.then}")
    _emit(result.to_dict(), as_json, "\n".join(lines))


@main.command("backup")
@click.argument("study_name", metavar="[STUDY]", required=False)
@site_option
@json_option
@writes_study()
def backup_cmd(study_name: str | None, site_dir: Path | None, as_json: bool) -> None:
    """Push STUDY (default: every study), raw data included, to the site's backup RIA store."""
    from dataclasses import asdict

    from windl.backup import backup

    results = backup(_site(site_dir), study_name, progress=_progress_printer())
    lines = [
        f"{r.study}: {len(r.pushed)} of {r.datasets} datasets pushed to {r.store}"
        if r.changed
        else f"{r.study}: all {r.datasets} datasets backed up already ({r.store})"
        for r in results
    ]
    _emit([asdict(r) for r in results], as_json, "\n".join(lines) or "no studies")


@main.group()
def share() -> None:
    """Access to the individuals scope for named people (GPG keys)."""


@share.command("grant")
@click.argument("study_name", metavar="STUDY")
@click.argument("person")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path),
    help="The person's OpenPGP public key (armored or binary).",
)
@site_option
@json_option
@writes_study()
def share_grant(
    study_name: str, person: str, key_file: Path, site_dir: Path | None, as_json: bool
) -> None:
    """Let PERSON read the individuals release of STUDY."""
    from windl.share.individuals import grant

    result = grant(_site(site_dir), study_name, person, key_file)
    state = "granted" if result.changed else "unchanged"
    text = f"{state}: {result.person} ({result.fingerprint})\n  {result.note}"
    _emit(result.to_dict(), as_json, text)


@share.command("revoke")
@click.argument("study_name", metavar="STUDY")
@click.argument("person")
@site_option
@json_option
@writes_study()
def share_revoke(study_name: str, person: str, site_dir: Path | None, as_json: bool) -> None:
    """Take PERSON's access away (re-encrypts the store); says what it cannot undo."""
    from windl.share.individuals import revoke

    result = revoke(_site(site_dir), study_name, person)
    text = f"revoked: {result.person} ({result.fingerprint})\n  {result.note}"
    _emit(result.to_dict(), as_json, text)


# --------------------------------------------------------------------------- doi
@main.group()
def doi() -> None:
    """DataCite DOIs for release versions."""


@doi.command("mint")
@click.argument("study_name", metavar="STUDY")
@click.option("--scope", default="external", show_default=True, help="Release scope.")
@click.option("--version", "version", required=True, metavar="X.Y.Z", help="Built version.")
@site_option
@json_option
@writes_study()
def doi_mint(
    study_name: str, scope: str, version: str, site_dir: Path | None, as_json: bool
) -> None:
    """Validate DataCite metadata of a release version and register its DOI (before publish)."""
    from windl.share.doi import mint_doi

    result = mint_doi(
        _site(site_dir), study_name, scope, version, say=lambda m: click.echo(m, err=True)
    )
    if not result.registered:
        lines = [
            f"validated draft written to {result.metadata_path}; not registered: {result.reason}",
            f"  draft DOI {result.doi}; the release is unchanged",
        ]
    else:
        lines = [
            f"DOI {result.doi} {result.action} at DataCite -> {result.landing_url}",
            f"  metadata: {result.metadata_path}",
        ]
        if result.changed:
            lines += [
                f"  release changed: {', '.join(result.files)} "
                f"(commit {(result.commit or '')[:10]})",
                f"  audit it again before publishing: windl audit {result.path}",
            ]
        else:
            lines.append("  release unchanged: it already holds this DOI")
    _emit(result.to_dict(), as_json, "\n".join(lines))


# --------------------------------------------------------------------------- methods / reproduce
REPRODUCE_DIFFERENT_EXIT = 5


@main.command("methods")
@click.argument("target", metavar="TARGET")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: <site>/reports/methods/<study or study-scope-version>/).",
)
@site_option
@json_option
def methods_cmd(target: str, out_dir: Path | None, site_dir: Path | None, as_json: bool) -> None:
    """Write methods.md + methods.html for TARGET: a study name or a release dataset folder."""
    from windl.methods import write_methods_for

    result = write_methods_for(target, site_dir, out_dir)
    _emit(result.to_dict(), as_json, f"{result.markdown}\n{result.html}")


@main.command("reproduce")
@click.argument("study_name", metavar="STUDY")
@site_option
@json_option
@writes_study()
def reproduce_cmd(study_name: str, site_dir: Path | None, as_json: bool) -> None:
    """Rerun STUDY's conversions in a temporary clone and compare every output (exit 5: differ)."""
    from windl.methods import reproduce

    report = reproduce(_site(site_dir), study_name, say=lambda m: click.echo(m, err=True))
    summary = report.summary()
    lines = [
        f"reproduce {report.study} @ {report.commit[:10]}: {summary['runs']} conversion runs "
        f"in {report.seconds:.0f} s"
    ]
    for run in report.runs:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(run.counts().items()))
        lines.append(f"  {run.commit[:10]} {run.message}: {counts or 'no output files'}")
        if run.error:
            lines.append(f"    rerun failed: {run.error}")
    lines.append(
        f"  {'ALL IDENTICAL' if report.all_identical else 'NOT ALL IDENTICAL'}: "
        + ", ".join(
            f"{summary[s]} {s}"
            for s in ("identical", "different", "missing in rerun", "missing in original")
        )
        + f" of {summary['files']} files"
    )
    lines.append(f"  report: {report.html_path}")
    _emit(report.to_dict(), as_json, "\n".join(lines))
    if not report.all_identical:
        sys.exit(REPRODUCE_DIFFERENT_EXIT)


# --------------------------------------------------------------------------- catalog / search
@main.group()
def catalog() -> None:
    """The search index of the site's studies and releases."""


@catalog.command("index")
@site_option
@json_option
def catalog_index(site_dir: Path | None, as_json: bool) -> None:
    """Index every study and release dataset (only those whose commits changed are read)."""
    from windl.catalog.index import index_site

    result = index_site(_site(site_dir), progress=_progress_printer())
    if not result.changed:
        text = f"catalog up to date: {result.datasets} datasets, nothing changed"
    else:
        text = (
            f"catalog indexed: {result.datasets} datasets; read again: "
            f"{', '.join(result.read) or 'none'} ({result.versions_read} versions, "
            f"{result.files} files)"
        )
        if result.removed:
            text += f"\n  removed: {', '.join(result.removed)}"
        if result.grants_changed:
            text += f"\n  grants updated: {', '.join(result.grants_changed)}"
    _emit(result.to_dict(), as_json, text)


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return str(size)


@main.command("search")
@click.argument("text", nargs=-1)
@click.option("--modality", multiple=True, help="mri, eeg, meg, ieeg, … (repeatable).")
@click.option("--suffix", multiple=True, help="T1w, FLAIR, bold, eeg, … (repeatable).")
@click.option("--task", multiple=True, help="Task label (repeatable).")
@click.option("--datatype", multiple=True, help="anat, func, eeg, … (repeatable).")
@click.option("--min-participants", type=int, default=None, help="At least N participants.")
@click.option("--scope", multiple=True, help="individuals, members or external (repeatable).")
@click.option("--license", "license_", multiple=True, help="License (repeatable).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--as-external", is_flag=True, help="Show what an external user would see.")
@site_option
@json_option
def search_cmd(
    text: tuple[str, ...],
    modality: tuple[str, ...],
    suffix: tuple[str, ...],
    task: tuple[str, ...],
    datatype: tuple[str, ...],
    min_participants: int | None,
    scope: tuple[str, ...],
    license_: tuple[str, ...],
    page: int,
    per_page: int,
    as_external: bool,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """Search the catalog: free TEXT with key:value filters (e.g. 'rest modality:eeg')."""
    from windl.catalog.access import Viewer
    from windl.catalog.query import parse_query
    from windl.catalog.search import search_site

    query = parse_query(
        " ".join(text),
        modality=modality,
        suffix=suffix,
        task=task,
        datatype=datatype,
        min_participants=min_participants,
        scope=scope,
        license=license_,
    )
    viewer = Viewer("external") if as_external else Viewer("operator")
    found = search_site(_site(site_dir), query, viewer, page=page, per_page=per_page)
    lines = [
        f"{found.total} datasets match"
        + (f" (page {found.page} of {found.pages})" if found.pages > 1 else "")
        + (" — as an external user sees it" if as_external else "")
    ]
    for r in found.results:
        version = f"v{r.version}" if r.version else "HEAD"
        state = "" if r.published or r.kind == "study" else ", unpublished"
        lines.append(
            f"  {r.id:24} {version}{state}  {r.n_participants} participants, "
            f"{', '.join(r.modalities) or '-'}; {_size(r.size)}; {r.name}"
        )
        lines.append(
            f"  {'':24} suffixes: {', '.join(r.suffixes) or '-'}; "
            f"tasks: {', '.join(r.tasks) or '-'}"
        )
    for facet, counts in found.facets.items():
        if counts:
            shown = ", ".join(f"{value} ({n})" for value, n in list(counts.items())[:12])
            lines.append(f"  {facet}: {shown}")
    _emit(found.to_dict(), as_json, "\n".join(lines))


# ----------------------------------------------------------------------------- portal
@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (production: about one per core, behind nginx).",
)
@site_option
def serve_cmd(host: str, port: int, workers: int, site_dir: Path | None) -> None:
    """Run the web portal and HTTP API (token-gated clone/get under /git/STUDY/SCOPE)."""
    from windl.portal.app import serve

    serve(_site(site_dir), host=host, port=port, workers=workers)


@main.group()
def portal() -> None:
    """Manage the portal's accounts."""


@portal.command("invite")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["member", "operator", "external"]),
    default="member",
    show_default=True,
)
@site_option
def portal_invite(email: str, role: str, site_dir: Path | None) -> None:
    """Invite EMAIL to the portal with ROLE (the link to set a password is mailed)."""
    from windl.portal.operate import invite

    user = invite(_site(site_dir), email, role)
    click.echo(f"invited {user.email} as {role}")


@main.command("audit-log")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    metavar="YYYY-MM-DD",
    help="Only entries from this day (UTC) on.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the CSV to FILE (default: standard output).",
)
@site_option
def audit_log_cmd(since: Any, csv_file: Path | None, site_dir: Path | None) -> None:
    """Export the portal's audit log (logins, DUA acceptances, searches, clones…) as CSV."""
    from windl.portal.operate import audit_log

    text, rows = audit_log(_site(site_dir), csv_file, since.date() if since else None)
    if csv_file is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"{rows} entries written to {csv_file}", err=True)


# ----------------------------------------------------------------------------- receive
@main.command("receive")
@click.option("--port", type=int, default=None, help="TCP port (default: receive.port, 11112).")
@click.option("--status", "show_status", is_flag=True, help="Show queues, last studies, errors.")
@click.option(
    "--requeue",
    "requeue_uid",
    metavar="STUDY_UID",
    default=None,
    help="Route a quarantined study again (after fixing the rules, or with --study).",
)
@click.option("--study", "study_name", default=None, help="With --requeue: the windl study.")
@site_option
@json_option
def receive_cmd(
    port: int | None,
    show_status: bool,
    requeue_uid: str | None,
    study_name: str | None,
    site_dir: Path | None,
    as_json: bool,
) -> None:
    """DICOM C-STORE receiver (settings and routing rules in windl.toml [receive])."""
    from windl.receive.service import requeue, serve, status, status_text

    site_obj = _site(site_dir)
    if show_status:
        data = status(site_obj)
        _emit(data, as_json, status_text(data))
        return
    if requeue_uid is not None:
        path = requeue(site_obj, requeue_uid, study_name)
        _emit(
            {"requeued": requeue_uid, "study": study_name, "spool": str(path)},
            as_json,
            f"requeued {requeue_uid}" + (f" to {study_name}" if study_name else ""),
        )
        return
    if study_name is not None:
        raise click.UsageError("--study goes with --requeue")
    serve(site_obj, port=port)
