"""optbook.book.tables: one styled table as HTML, Markdown (the PDF) and text."""

from __future__ import annotations

import pandas as pd
from markdown_it import MarkdownIt

from optbook.book.tables import Table, markdown_escape


def _table() -> Table:
    frame = pd.DataFrame({"η": [0.1, 0.25], "x_{t−1}": [1.23456, 2.0],
                          "rel": [0.01, 0.5], "note": ["zig-zags, *grows*", "a|b"]})
    styler = frame.style.format({"η": "{:.4g}", "rel": "{:.1%}"}).hide(axis="index")
    return Table(styler)


def test_cells_are_formatted_as_the_styler_formats_them():
    header, *body = _table().cells()
    assert header == ["η", "x_{t−1}", "rel", "note"]
    assert body == [["0.1", "1.234560", "1.0%", "zig-zags, *grows*"],
                    ["0.25", "2.000000", "50.0%", "a|b"]]


def test_markdown_is_a_table_whose_cells_read_back_literally():
    html = MarkdownIt("gfm-like").render(_table()._repr_markdown_())
    assert html.count("<tr>") == 3 and html.count("<td>") == 8
    # no emphasis from *grows*, no extra column from a|b, braces and % kept
    assert "<em>" not in html and "*grows*" in html and "a|b" in html
    assert "x_{t−1}" in html and "50.0%" in html


def test_every_ascii_punctuation_mark_is_escaped():
    assert markdown_escape("a_b*c|d") == r"a\_b\*c\|d"
    assert markdown_escape("ηλ 12") == "ηλ 12"


def test_html_is_the_stylers_and_text_is_aligned():
    table = _table()
    assert "<table" in table._repr_html_() and "1.234560" in table._repr_html_()
    lines = repr(table).splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1
