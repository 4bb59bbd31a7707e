"""``report.html``: one self-contained page per run, readable offline.

Everything is inside the file: the style sheet, the tables, and every figure as a base64
``data:`` URI. The page references nothing outside itself (no scripts, fonts or links), so it
can be mailed, archived, or opened from a USB stick years later.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from descend.io import atomic_write

__all__ = ["Report", "format_number"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #fff; line-height: 1.45; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 10px; border-bottom: 1px solid #d0d7de;
     padding-bottom: 4px; }
.subtitle { color: #57606a; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.92em; }
.wide { overflow-x: auto; max-width: 100%; }
.wide table { font-size: 0.82em; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums;
         font-family: ui-monospace, monospace; }
table.kv th { width: 14em; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.9em; margin-top: 4px; }
pre { background: #f6f8fa; padding: 10px 12px; overflow-x: auto; font-size: 0.88em; }
.note { color: #57606a; font-size: 0.92em; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; }
footer { color: #57606a; font-size: 0.85em; margin-top: 40px; }
"""


def format_number(value: Any, digits: int = 4) -> str:
    """A number as a person reads it: ints as they are, floats to ``digits`` significant digits.

    >>> format_number(0.123456), format_number(1234567.0), format_number(3), format_number(None)
    ('0.1235', '1.235e+06', '3', '')
    >>> format_number(-0.0)  # a negative number times a zero derivative has no sign to show
    '0'
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
        value = float(value)  # a NumPy float32 scalar too
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value + 0.0:.{digits}g}"  # + 0.0 turns -0.0 into 0.0
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Report:
    """An HTML page built section by section, written in one go by :meth:`write`.

    Parameters
    ----------
    title : str
    subtitle : str, optional

    Examples
    --------
    >>> import tempfile, pathlib
    >>> page = Report("digits 0-3", "a run of descend train")
    >>> page.section("Final metrics")
    >>> page.table([{"split": "test", "accuracy": 0.975}])
    >>> path = page.write(pathlib.Path(tempfile.mkdtemp()) / "report.html")
    >>> "0.975" in path.read_text()
    True
    """

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self.parts: list[str] = []
        self.figures: list[str] = []

    def section(self, heading: str) -> None:
        """Start a new section with a heading."""
        self.parts.append(f"<h2>{html.escape(heading)}</h2>")

    def paragraph(self, text: str, css: str | None = None) -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def key_values(self, items: Mapping[str, Any]) -> None:
        """A two-column table of settings or facts."""
        rows = []
        for key, value in items.items():
            if isinstance(value, list | tuple):
                value = ", ".join(format_number(v) for v in value) or "none"
            elif value is None:
                value = "not set"
            cls = ' class="num"' if _is_number(value) else ""
            rows.append(
                f"<tr><th>{html.escape(str(key))}</th>"
                f"<td{cls}>{html.escape(format_number(value))}</td></tr>"
            )
        self.parts.append(f'<table class="kv">{"".join(rows)}</table>')

    def table(self, rows: Sequence[Mapping[str, Any]], caption: str | None = None) -> None:
        """A table with one column per key of the first row."""
        if not rows:
            return
        head = list(rows[0])
        # A wide table scrolls inside the page's width instead of running off it.
        out = ['<div class="wide"><table>']
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>")
        for row in rows:
            cells = []
            for key in head:
                value = row.get(key)
                cls = ' class="num"' if _is_number(value) else ""
                cells.append(f"<td{cls}>{html.escape(format_number(value))}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table></div>")
        self.parts.append("".join(out))

    def preformatted(self, text: str) -> None:
        """Text shown as it is, in a monospace block (a Markdown table, a command line)."""
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def image(self, png: bytes | str | os.PathLike, caption: str, alt: str | None = None) -> None:
        """A PNG figure, embedded in the page as a base64 data URI."""
        data = png if isinstance(png, bytes) else Path(png).read_bytes()
        encoded = base64.b64encode(data).decode("ascii")
        alt_text = html.escape(alt or caption, quote=True)
        self.figures.append(caption)
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{encoded}" alt="{alt_text}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def images(self, made: Iterable[tuple], skipped: Iterable[tuple] = ()) -> None:
        """The figures drawn, ``(path, caption)`` pairs, then a line for each one that was not,
        ``(caption, why)`` pairs (as :class:`~descend.cli.figures.Figures` keeps them)."""
        for path, caption in made:
            self.image(path, caption)
        self.bullet_list(f"{c}: not drawn ({why})" for c, why in skipped)

    def bullet_list(self, items: Iterable[str]) -> None:
        """A list of short lines."""
        lis = "".join(f"<li>{html.escape(item)}</li>" for item in items)
        if lis:
            self.parts.append(f"<ul>{lis}</ul>")

    def render(self) -> str:
        """The whole page as a string."""
        from descend import __version__

        subtitle = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
            f"<body>\n<main>\n<h1>{html.escape(self.title)}</h1>\n{subtitle}\n"
            + "\n".join(self.parts)
            + f"\n<footer>Written by descend {__version__} on {stamp}. This page is "
            "self-contained: it needs no network and no other file.</footer>\n"
            "</main>\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        """Write the page atomically; returns its path."""
        text = self.render().encode("utf-8")
        return atomic_write(path, lambda f: f.write(text))
