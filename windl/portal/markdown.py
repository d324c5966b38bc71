"""The little Markdown the portal shows (DUA texts, release READMEs) as safe HTML.

Headings, paragraphs, numbered and bulleted lists (with continuation lines), indented code
blocks, ``code`` and **bold**; everything else stays text. All text is escaped first.
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

from windl.methods import _inline_html as inline_html

_ITEM = re.compile(r"^\s*(\d+\.|[-*])\s+(.*)$")


def to_html(text: str, top: int = 2) -> Markup:
    """``text`` (Markdown) as HTML; ``#`` becomes ``<h{top}>`` (pages have their ``<h1>``)."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        lines = block.splitlines()
        if not lines:
            continue
        if all(line.startswith("    ") for line in lines):
            code = "\n".join(line[4:] for line in lines)
            out.append(f"<pre><code>{html.escape(code)}</code></pre>")
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", lines[0])
        if heading:
            level = min(len(heading.group(1)) + top - 1, 6)
            out.append(f"<h{level}>{inline_html(heading.group(2))}</h{level}>")
            lines = lines[1:]
            if not lines:
                continue
        if _ITEM.match(lines[0]):
            ordered = lines[0].strip()[0].isdigit()
            items: list[str] = []
            for line in lines:
                item = _ITEM.match(line)
                if item:
                    items.append(item.group(2))
                else:
                    items[-1] += " " + line.strip()
            tag = "ol" if ordered else "ul"
            body = "".join(f"<li>{inline_html(i)}</li>" for i in items)
            out.append(f"<{tag}>{body}</{tag}>")
            continue
        out.append(f"<p>{inline_html(' '.join(line.strip() for line in lines))}</p>")
    return Markup("\n".join(out))
