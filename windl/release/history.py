"""The git metadata of a release: who wrote its commits, what their messages and tags say.

A release's history is published with it, so everything git records besides the files must
be windl's own: every commit (of every branch, the git-annex branch and the notes too) is
authored and committed by :data:`windl.datasets.NEUTRAL_IDENTITY`; the messages of the
release's branches are the ones windl and DataLad write (:data:`MESSAGES`), and a
``datalad run`` record runs a ``windl`` command; every tag is an annotated ``vX.Y.Z`` tag
by windl whose message windl wrote; ``.datalad/config`` holds only the dataset id.

:func:`git_metadata_findings` lists what breaks these rules as (where, what) pairs that
name the commit or ref, never the name, e-mail or text found there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from windl import datasets

#: first lines of the commit messages a release's branches may hold
MESSAGES = (
    re.compile(r"^\[DATALAD\] new dataset$"),
    re.compile(r"^\[DATALAD RUNCMD\] windl release \S+ of \S+ \(\w+\)$"),
    re.compile(r"^windl( [a-z]+)*: [^\n]*$"),
)
TAG_NAME = re.compile(r"^v\d+\.\d+\.\d+$")
TAG_MESSAGE = re.compile(r"^windl release \d+\.\d+\.\d+ of \S+ \(\w+\)$")
#: keys ``.datalad/config`` of a release may hold
DATALAD_CONFIG_KEYS = frozenset({"datalad.dataset.id"})
_RUN_RECORD = re.compile(
    r"\n=== Do not change lines below ===\n(.*)\n\^\^\^ Do not change lines above \^\^\^",
    re.DOTALL,
)
_SEP, _END = "\x1f", "\x1e"  # git writes them as %x1f, %x1e


def _identity_ok(name: str, email: str, who: str) -> bool:
    wanted = datasets.NEUTRAL_IDENTITY
    return name == wanted[f"GIT_{who}_NAME"] and email == wanted[f"GIT_{who}_EMAIL"]


def _commits(ds: Path, *selection: str) -> list[list[str]]:
    fmt = "%x1f".join(("%H", "%an", "%ae", "%cn", "%ce", "%B")) + "%x1e"
    out = datasets.git(ds, "log", f"--format={fmt}", *selection, "--", check=False)
    return [r.lstrip("\n").split(_SEP) for r in out.split(_END) if r.strip()]


def message_ok(message: str) -> bool:
    """Whether a commit message of a release branch is one windl or DataLad writes."""
    first, _, rest = message.strip().partition("\n")
    if not any(p.match(first) for p in MESSAGES):
        return False
    if first.startswith("[DATALAD RUNCMD]"):
        match = _RUN_RECORD.search(message)
        if match is None or message.strip() != f"{first}\n{match.group(0)}".strip():
            return False
        try:
            record = json.loads(match.group(1))
        except ValueError:
            return False
        return str(record.get("cmd", "")).startswith("windl release assemble ")
    return not rest.strip()


def git_metadata_findings(ds: Path) -> tuple[int, list[tuple[str, str]]]:
    """Check the git metadata of the release ``ds``; return (items checked, findings)."""
    findings: list[tuple[str, str]] = []
    every = _commits(ds, "--exclude=refs/remotes/*", "--all")
    for sha, an, ae, cn, ce, _ in every:
        if not _identity_ok(an, ae, "AUTHOR"):
            findings.append((f"commit {sha[:12]}", "author is not windl's neutral identity"))
        if not _identity_ok(cn, ce, "COMMITTER"):
            findings.append((f"commit {sha[:12]}", "committer is not windl's neutral identity"))
    branches = _commits(
        ds,
        "--exclude=refs/remotes/*",
        "--exclude=refs/notes/*",
        "--exclude=refs/heads/git-annex",
        "--exclude=refs/heads/synced/*",
        "--all",
    )
    for sha, *_, message in branches:
        if not message_ok(message):
            findings.append((f"commit {sha[:12]}", "message not written by windl"))
    tags = datasets.git(
        ds,
        "for-each-ref",
        "refs/tags",
        "--format=%(refname:short)%1f%(objecttype)%1f%(taggername)%1f"
        "%(taggeremail:trim)%1f%(contents)%1e",
    )
    checked = len(every) + len(branches)
    for row in (r.lstrip("\n") for r in tags.split(_END) if r.strip()):
        checked += 1
        name, kind, tagger, email, text = row.split(_SEP)
        where = f"tag {name}" if TAG_NAME.match(name) else "a tag"
        if not TAG_NAME.match(name):
            findings.append((where, "tag name is not a windl version tag"))
        if kind != "tag" or not _identity_ok(tagger, email, "COMMITTER"):
            findings.append((where, "not an annotated tag by windl's neutral identity"))
        if not TAG_MESSAGE.match(text.strip()):
            findings.append((where, "tag message not written by windl"))
    config = datasets.git(ds, "config", "-f", ".datalad/config", "--list", check=False)
    checked += 1
    for line in config.splitlines():
        if line.split("=", 1)[0] not in DATALAD_CONFIG_KEYS:
            findings.append((".datalad/config", "holds a setting windl did not write"))
            break
    return checked, findings


__all__ = ["MESSAGES", "git_metadata_findings", "message_ok"]
