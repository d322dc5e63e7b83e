"""A formatted table that reads well on each medium the book goes to.

A pandas ``Styler`` renders as HTML only, so in the PDF (which cannot show HTML) it
printed as ``<pandas.io.formats.style.Styler at 0x...>``. :class:`Table` wraps one and
offers three forms: HTML (the site, Jupyter), a Markdown table (what the PDF build
chooses when there is no HTML: it becomes a LaTeX table whose columns wrap) and aligned
text (a terminal, and the notebook's ``text/plain``, the same on every run).

    Table(frame.style.format({"η": "{:.4g}"}).hide(axis="index"))
"""

from __future__ import annotations

import string

_SEP = "\x1f"  # a delimiter no formatted cell contains


def markdown_escape(text: str) -> str:
    """``text`` as literal Markdown: every ASCII punctuation character backslash-escaped
    (CommonMark allows that for each of them), so nothing becomes emphasis or a role."""
    return "".join("\\" + ch if ch in string.punctuation else ch for ch in text)


class Table:
    """A ``pandas.io.formats.style.Styler`` shown as HTML, Markdown or aligned text."""

    def __init__(self, styler):
        self.styler = styler

    def cells(self) -> list[list[str]]:
        """The header row, then the body rows, as the styler formats them."""
        text = self.styler.to_string(delimiter=_SEP)
        return [line.split(_SEP) for line in text.splitlines()]

    def _repr_html_(self) -> str:
        return self.styler.to_html()

    def _repr_markdown_(self) -> str:
        header, *body = self.cells()

        def row(cells: list[str]) -> str:
            return "| " + " | ".join(map(markdown_escape, cells)) + " |"

        return "\n".join([row(header), "|" + "---|" * len(header), *map(row, body)])

    def __repr__(self) -> str:
        rows = self.cells()
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)
