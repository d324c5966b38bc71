"""The HTML report of a release audit (the criteria gate a release passes before it is shared).

:func:`write_audit_report` turns the audit dict into one self-contained HTML file: no
JavaScript, no external resources, every image (plots and defacing mosaics) embedded as a
base64 ``data:`` URI, every string from the audit escaped with :func:`html.escape`.

The defacing mosaics show each head *before* defacing, face included: a report that embeds
them belongs with the restricted data, never in the release it audits.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from windl.files import atomic_write_text

#: At most this many findings are listed per check; the rest are only counted.
MAX_FINDINGS = 200

_PASS_COLOUR = "#2e7d32"
_FAIL_COLOUR = "#c62828"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = f"""
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.4; }}
h1 {{ font-size: 1.6em; }}
h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: left;
         vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.path, code {{ font-family: ui-monospace, monospace; font-size: .9em;
                 word-break: break-all; }}
.banner {{ color: #fff; font-size: 2.2em; font-weight: bold; text-align: center;
           padding: .4em; border-radius: 6px; }}
.banner small {{ display: block; font-size: .4em; font-weight: normal; }}
.banner.pass {{ background: {_PASS_COLOUR}; }}
.banner.fail {{ background: {_FAIL_COLOUR}; }}
.verdict {{ font-weight: bold; }}
.verdict.pass {{ color: {_PASS_COLOUR}; }}
.verdict.fail {{ color: {_FAIL_COLOUR}; }}
.note {{ color: #555; font-style: italic; }}
img {{ max-width: 100%; height: auto; }}
"""


def write_audit_report(audit: Mapping[str, Any], html_path: Path) -> Path:
    """Write the audit of a release as one self-contained HTML file.

    The report shows a PASSED or FAILED banner, a summary of the release (path, commit,
    time of the audit, windl version, policy options, participants, sessions, files and
    their total size), one section per check with its findings (at most
    :data:`MAX_FINDINGS` listed, the rest counted), a defacing section with a plot of the
    fraction of each image's face that is zero against the threshold and each image's
    before/after mosaic, and a plot of the file counts by kind.

    Parameters
    ----------
    audit : Mapping[str, Any]
        The result of the release audit, with the keys ``release``, ``study``, ``scope``,
        ``version``, ``commit``, ``audited_at``, ``windl_version``, ``policy``
        (``{"options": [...]}``), ``passed``, ``thresholds``
        (``{"face_zero_fraction": float}``), ``checks`` (dicts with ``name``, ``title``,
        ``passed``, ``checked`` and ``findings``, each finding a dict with ``path`` and
        ``message``), ``deface`` (dicts with ``path``, ``face_zero_fraction``, ``passed``,
        ``mosaic_png``, the path of a PNG or None, and optionally ``face_detector``: the
        independent check's ``verdict``, ``before``/``after`` results, ``settings`` and
        ``picture_png``), ``participants``
        (``{"count": int, "sessions": int}``) and ``files`` (``{"count": int,
        "bytes": int, "by_kind": {kind: count}}``).
    html_path : Path
        Where to write the report. Its folder is created if needed; the file is written
        to a temporary file in that folder, then renamed over ``html_path``.

    Returns
    -------
    Path
        ``html_path``.

    Notes
    -----
    A mosaic PNG that is missing or unreadable is shown as "(mosaic not available)"; it
    does not stop the report. The mosaics show faces (the "before" row), so the report
    must be kept with the restricted data, not shipped with the release.
    """
    return atomic_write_text(Path(html_path), _render(audit))


# --- rendering -----------------------------------------------------------------------------


def _render(audit: Mapping[str, Any]) -> str:
    title = f"Release audit: {audit['study']} / {audit['scope']} {audit['version']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        _banner(audit),
        _summary(audit),
        *(_check_section(check) for check in audit["checks"]),
        _deface_section(audit),
        _tokens_section(audit),
        _files_section(audit),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _banner(audit: Mapping[str, Any]) -> str:
    checks: Sequence[Mapping[str, Any]] = audit["checks"]
    failed = [str(check["name"]) for check in checks if not check["passed"]]
    if audit["passed"]:
        detail = f"all {len(checks)} checks passed"
        return f'<div class="banner pass">PASSED<small>{_e(detail)}</small></div>'
    detail = f"{len(failed)} of {len(checks)} checks failed"
    if failed:
        detail += ": " + ", ".join(failed)
    return f'<div class="banner fail">FAILED<small>{_e(detail)}</small></div>'


def _summary(audit: Mapping[str, Any]) -> str:
    options = list(audit["policy"]["options"])
    if options:
        policy = "<ul>" + "".join(f"<li><code>{_e(o)}</code></li>" for o in options) + "</ul>"
    else:
        policy = "(none)"
    files = audit["files"]
    participants = audit["participants"]
    rows = [
        ("Release", f"<code>{_e(audit['release'])}</code>"),
        ("Commit", f"<code>{_e(audit['commit'])}</code>"),
        ("Audited at", _e(audit["audited_at"])),
        ("windl version", _e(audit["windl_version"])),
        ("Policy options", policy),
        ("Participants", _e(participants["count"])),
        ("Sessions", _e(participants["sessions"])),
        ("Files", _e(files["count"])),
        ("Total size", _e(_megabytes(files["bytes"]))),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return f"<h2>Summary</h2>\n<table>{body}</table>"


def _check_section(check: Mapping[str, Any]) -> str:
    findings: Sequence[Mapping[str, Any]] = check["findings"]
    parts = [
        f'<h2 id="check-{_e(check["name"])}">{_e(check["title"])}</h2>',
        f"<p>{_verdict(check['passed'])} &middot; check <code>{_e(check['name'])}</code>"
        f" &middot; checked: {_e(check['checked'])}"
        f" &middot; findings: {len(findings)}</p>",
    ]
    if findings:
        rows = "".join(
            f'<tr><td class="path">{_e(f.get("path", ""))}</td>'
            f"<td>{_e(f.get('message', ''))}</td></tr>"
            for f in findings[:MAX_FINDINGS]
        )
        parts.append(f"<table><tr><th>Path</th><th>Message</th></tr>{rows}</table>")
        if len(findings) > MAX_FINDINGS:
            more = len(findings) - MAX_FINDINGS
            parts.append(
                f'<p class="note">Showing the first {MAX_FINDINGS} of {len(findings)} '
                f"findings; {more} more not shown.</p>"
            )
    else:
        parts.append('<p class="note">No findings.</p>')
    return "\n".join(parts)


def _deface_section(audit: Mapping[str, Any]) -> str:
    images: Sequence[Mapping[str, Any]] = audit["deface"]
    threshold = float(audit["thresholds"]["face_zero_fraction"])
    parts = [
        "<h2>Defacing</h2>",
        f"<p>An image passes when at least {_e(_percent(threshold))} of the voxels under "
        "its face are zero (the face mapped with the registration that defaced it).</p>",
        "<p>Independently, a face detector (OpenCV Haar cascades) looks at the head surface "
        "rendered from the front and from the sides, before and after defacing: it must find "
        "a face before and none after.</p>",
    ]
    if not images:
        parts.append('<p class="note">No defaced image in this release.</p>')
        return "\n".join(parts)
    plot = _face_plot(images, threshold)
    if plot:
        parts.append(f'<p><img alt="fraction of face voxels that are zero" src="{plot}"></p>')
    parts.append(
        '<p class="note">The mosaics show each head before defacing, face included: keep '
        "this report with the restricted data, never with the release.</p>"
    )
    for image in images:
        fraction = image.get("face_zero_fraction")
        shown = _percent(fraction) if _is_number(fraction) else "n/a"
        mosaic = _png_data_uri(image.get("mosaic_png"))
        if mosaic:
            picture = (
                f'<img alt="{_e("before/after defacing of " + str(image["path"]))}" src="{mosaic}">'
            )
        else:
            picture = '<p class="note">(mosaic not available)</p>'
        parts.append(
            f"<h3><code>{_e(image['path'])}</code></h3>\n"
            f"<p>{_verdict(image['passed'])} &middot; face voxels zero: {_e(shown)}</p>\n"
            f"{picture}"
        )
        detector = image.get("face_detector")
        if detector:
            parts.append(_detector_block(detector))
    return "\n".join(parts)


def _tokens_section(audit: Mapping[str, Any]) -> str:
    """How many words the unexplained-text check read, and what explained them."""
    counts: Mapping[str, Any] = audit.get("tokens") or {}
    if not counts:
        return ""
    checked = int(counts.get("checked", 0))
    rows = "".join(
        f"<tr><td>{_e(source)}</td><td>{_e(n)}</td></tr>"
        for source, n in (counts.get("explained") or {}).items()
    )
    rows += (
        f"<tr><th>unexplained</th><th>{_e(counts.get('unexplained', 0))}</th></tr>"
        f"<tr><th>checked</th><th>{_e(checked)}</th></tr>"
    )
    return "\n".join(
        [
            "<h2>Words in names and text</h2>",
            f"<p>{_e(checked)} words (tokens) of file names, tables, sidecars, text files and "
            "headers were checked; each must be explained by one of these sources. The "
            "unexplained ones are counted per file and field above, never shown.</p>",
            f"<table><tr><th>Explained by</th><th>Words</th></tr>{rows}</table>",
        ]
    )


#: What each verdict of the face detector means, as the report says it.
_DETECTOR_VERDICTS = {
    "no-face": ("pass", "face found before defacing, none after"),
    "face-found": ("fail", "a face is still found on the released image"),
    "not-judged": ("fail", "no face found before defacing: the detector cannot judge"),
}


def _detector_block(detector: Mapping[str, Any]) -> str:
    """The independent check of one image: verdict, strengths against thresholds, pictures."""
    verdict = str(detector.get("verdict", "not-judged"))
    kind, meaning = _DETECTOR_VERDICTS.get(verdict, ("fail", verdict))
    if verdict == "not-judged" and detector.get("accepted"):
        kind, meaning = "pass", meaning + " (accepted by the study's [audit] settings)"
    label = "NOT JUDGED" if verdict == "not-judged" else ("PASS" if kind == "pass" else "FAIL")
    thresholds = dict((detector.get("settings") or {}).get("min_neighbours") or {})
    cascades = sorted(thresholds)
    head = "".join(f"<th>{_e(c)} (needs {_e(thresholds[c])})</th>" for c in cascades)
    rows = []
    for when in ("before", "after"):
        seen = detector.get(when)
        if not seen:
            cells = f'<td colspan="{len(cascades) + 1}">(not available)</td>'
        else:
            found = "face found" if seen.get("found") else "no face"
            strongest = seen.get("strongest") or {}
            cells = f"<td>{_e(found)}</td>" + "".join(
                f"<td>{_e(strongest.get(c, 0))}</td>" for c in cascades
            )
        rows.append(f"<tr><th>{when}</th>{cells}</tr>")
    picture = _png_data_uri(detector.get("picture_png"))
    drawn = (
        f'<img alt="rendered head surfaces, faces framed" src="{picture}">'
        if picture
        else '<p class="note">(pictures not available)</p>'
    )
    return (
        '<div class="face-detector"><h4>Face detector (independent of the registration)</h4>\n'
        f'<p><span class="verdict {kind}">{label}</span> &middot; {_e(meaning)}</p>\n'
        f"<table><tr><th></th><th>result</th>{head}</tr>{''.join(rows)}</table>\n"
        '<p class="note">Numbers: the strongest candidate of each Haar cascade over all views '
        "(raw detections grouped into it). Red frames: faces; grey: weaker candidates.</p>\n"
        f"{drawn}</div>"
    )


def _files_section(audit: Mapping[str, Any]) -> str:
    by_kind: Mapping[str, Any] = audit["files"]["by_kind"]
    parts = ["<h2>Files by kind</h2>"]
    if not by_kind:
        parts.append('<p class="note">No files.</p>')
        return "\n".join(parts)
    parts.append(f'<p><img alt="file counts by kind" src="{_kind_plot(by_kind)}"></p>')
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(n)}</td></tr>" for k, n in by_kind.items())
    parts.append(f"<table><tr><th>Kind</th><th>Files</th></tr>{rows}</table>")
    return "\n".join(parts)


# --- plots ---------------------------------------------------------------------------------


def _face_plot(images: Sequence[Mapping[str, Any]], threshold: float) -> str | None:
    """Horizontal bars of each image's zero fraction, a line at the threshold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [i for i in images if _is_number(i.get("face_zero_fraction"))]
    if not shown:
        return None
    labels = [str(i["path"]) for i in shown][::-1]  # first image at the top
    values = [float(i["face_zero_fraction"]) for i in shown][::-1]
    colours = [_PASS_COLOUR if i["passed"] else _FAIL_COLOUR for i in shown][::-1]
    height = min(40.0, 1.4 + 0.3 * len(shown))
    fig = Figure(figsize=(10, height), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(values)), values, color=colours)
    ax.axvline(threshold, color="black", linestyle="--")
    if len(shown) <= 120:
        ax.set_yticks(range(len(values)), labels, fontsize=8)
    else:
        ax.set_yticks([])
    # zoom in on the range that matters, so small differences near the threshold show
    low = min([*values, threshold]) - 0.05
    ax.set_xlim(max(0.0, math.floor(low * 20) / 20), 1.0)
    ax.set_xlabel("fraction of face voxels that are zero")
    ax.set_title(f"dashed line: threshold {threshold:g}", fontsize=9)
    fig.tight_layout()
    return _figure_data_uri(fig)


def _kind_plot(by_kind: Mapping[str, Any]) -> str:
    """Vertical bars of the file count of each kind."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kinds = [str(k) for k in by_kind]
    counts = [int(n) for n in by_kind.values()]
    fig = Figure(figsize=(max(4.0, 0.9 * len(kinds) + 1.5), 3.5), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = ax.bar(kinds, counts, color="#4a6fa5")
    ax.bar_label(bars, fontsize=9)
    ax.set_ylabel("files")
    ax.margins(y=0.15)
    fig.tight_layout()
    return _figure_data_uri(fig)


def _figure_data_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --- helpers -------------------------------------------------------------------------------


def _png_data_uri(path: Any) -> str | None:
    """The PNG at ``path`` as a data URI, or None if there is none (or it is no PNG)."""
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _verdict(passed: Any) -> str:
    if passed:
        return '<span class="verdict pass">PASS</span>'
    return '<span class="verdict fail">FAIL</span>'


def _percent(fraction: float) -> str:
    """``0.991`` -> ``"99.1 %"``, rounded down so a failing value never shows as passing."""
    return f"{math.floor(round(float(fraction) * 1000, 6)) / 10:.1f} %"


def _megabytes(size: Any) -> str:
    size = int(size)
    return f"{size / 1e6:.1f} MB ({size:,} bytes)"


def _is_number(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, str) and math.isfinite(value)
    except TypeError:
        return False


def _e(value: Any) -> str:
    return html.escape(str(value))
