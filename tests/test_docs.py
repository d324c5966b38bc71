"""The documentation holds together: links resolve, commands exist, the reference is current."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from windl.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *(ROOT / "docs").glob("*.md")]
)
#: the top-level README is the front door, not the manual
README_MAX_LINES = 150
#: pages other branches write (issue 17); a link to them is checked once they exist
PENDING = {ROOT / "docs" / "publishing.md"}  # issue 21

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_COMMAND = re.compile(r"(?:^|[\s/(`'\"])windl(\s+[^`]*)")
#: where a shell command line ends (in prose, ``a | b`` also separates alternatives)
_COMMAND_END = {"|", "||", "&&", ";", "&"}


def _prose_and_code(page: Path) -> tuple[list[str], list[str]]:
    """The page's lines outside fenced code blocks, and its code (blocks and spans)."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            code.append(line)
            continue
        code.extend(m.group(2) for m in _CODE_SPAN.finditer(line))
        prose.append(line)
    return prose, code


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page`` (repeated headings get -1, -2, … as on GitHub)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose_and_code(page)[0]:
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_anchor(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or #anchor does not exist."""
    broken: list[str] = []
    for line in _prose_and_code(page)[0]:
        for target in _LINK.findall(_CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …
                continue
            path_part, _, anchor = target.partition("#")
            path = (page.parent / path_part).resolve() if path_part else page
            if not path.exists():
                if path not in PENDING:
                    broken.append(f"{target} (no such file)")
                continue
            if anchor and (path.suffix != ".md" or anchor not in anchors(path)):
                broken.append(f"{target} (no heading #{anchor} in {path.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_link_checker_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading: yes\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#a-code-heading-yes) [self](#page) [web](https://example.org)\n"
        "[gone](missing.md) [bad](other.md#nope) `[in code](missing.md)`\n"
        "```\n[in a block](missing.md)\n```\n"
    )
    assert broken_links(page) == [
        "missing.md (no such file)",
        "other.md#nope (no heading #nope in other.md)",
    ]


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES


def test_readme_names_the_ci_test_command() -> None:
    """README's test command is the one CI runs (``.ci/run`` execs it)."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"^exec (.+)$", ci, re.MULTILINE)
    assert command is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert command.group(1).strip() in readme and "make demo" in readme


def _gen_cli():  # docs/ is no package: load the script by its path
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_reference_is_current() -> None:
    gen_cli = _gen_cli()
    assert gen_cli.PAGE.read_text(encoding="utf-8") == gen_cli.render(), (
        "docs/cli.md is out of date: run 'PYTHONPATH=. .venv/bin/python docs/gen_cli.py'"
    )


def test_command_reference_is_what_the_installed_command_prints() -> None:
    """One section against the real ``windl`` process in an 80-column terminal."""
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = re.search(r"^## windl release build\n\n```text\n(.*?)```", page, re.S | re.M)
    assert section is not None
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
    shown = subprocess.run(
        [sys.executable, "-m", "windl", "release", "build", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.replace("python -m windl", "windl") == section.group(1)


def _invocations(page: Path) -> list[list[str]]:
    """The ``windl …`` command lines in a page's code (up to a pipe, ``&&``, ``;`` or ``#``)."""
    found: list[list[str]] = []
    for code in _prose_and_code(page)[1]:
        for match in _COMMAND.finditer(code):
            try:
                words = shlex.split(match.group(1), comments=True)
            except ValueError:  # an unbalanced quote: words as they stand
                words = match.group(1).split()
            end = next((i for i, w in enumerate(words) if w in _COMMAND_END), len(words))
            found.append(words[:end])
    return found


def unknown_commands(page: Path) -> list[str]:
    """Each ``windl`` subcommand or ``--option`` in ``page``'s code that the CLI lacks."""
    problems: list[str] = []
    for words in _invocations(page):
        command: click.Command = main
        path = ["windl"]
        rest = list(words)
        while isinstance(command, click.Group) and rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]):
            sub = command.get_command(click.Context(command), rest[0])
            if sub is None:
                problems.append(f"{' '.join(path)} has no command {rest[0]!r}")
                break
            command, path = sub, [*path, rest.pop(0)]
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        options.add("--help")
        for word in rest:
            name = word.split("=", 1)[0].strip(".,[]|")
            if name.startswith("--") and name not in options:
                problems.append(f"{' '.join(path)} has no option {name}")
    return sorted(set(problems))


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if p.name != "cli.md"],  # cli.md is windl's own --help (prose included)
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_documented_commands_exist(page: Path) -> None:
    assert unknown_commands(page) == []


def test_command_checker_finds_an_unknown_command_and_option(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `windl ingset s1 DIR` or `windl release build s1 --scope x --colour red`;\n"
        "```sh\nwindl convert s1 --jobs 2 --executor slurm   # fine\n```\n"
    )
    assert unknown_commands(page) == [
        "windl has no command 'ingset'",
        "windl release build has no option --colour",
    ]


def _template_keys(path: Path) -> set[str]:
    """Every table and key of a settings template, the commented-out examples included."""
    keys: set[str] = set()

    def walk(table: dict[str, Any]) -> None:
        for key, value in table.items():
            keys.add(key)
            if isinstance(value, dict):
                walk(value)

    text = path.read_text(encoding="utf-8")
    walk(tomllib.loads(text))
    keys.update(re.findall(r"^#\s*\[+([a-z_.]+)\]+\s*$", text, re.MULTILINE))
    keys.update(re.findall(r"^#\s*([a-z_]+)\s*=", text, re.MULTILINE))
    return {k.rsplit(".", 1)[-1] for k in keys}


@pytest.mark.parametrize("template", ["templates/windl.toml", "templates/study/code/study.toml"])
def test_configuration_reference_names_every_template_key(template: str) -> None:
    keys = _template_keys(ROOT / template)
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`\[*([a-z_.]+)\]*`", page))
    named |= {n.rsplit(".", 1)[-1] for n in named}
    assert keys and sorted(keys - named) == []
