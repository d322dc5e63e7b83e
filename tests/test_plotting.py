"""The book's figure style: one colour per method (tests/test_book.py), and a minimum
text size on the page, checked on every figure a chapter renders."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from optbook.book.plotting import COLUMN_PX, MIN_TEXT_PX, small_text, use_book_style  # noqa: E402


def figure(width, fontsize=None):
    fig, ax = plt.subplots(figsize=(width, 3), dpi=100)
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(fontsize=fontsize)
    ax.set_xlabel("x")
    return fig


def test_text_size_on_the_page_follows_the_column():
    use_book_style()
    narrow = figure(6.0)                 # 600 px: shown at natural size, 11 pt = 15.3 px
    assert small_text(narrow) == []
    wide = figure(12.0)                  # 1200 px shrunk to the 672 px column
    sizes = dict(small_text(wide))
    shrink = COLUMN_PX / 1200
    assert sizes["a line"] == pytest.approx(round(11 / 72 * 100 * shrink, 1))
    assert sizes["x"] < MIN_TEXT_PX
    tiny = figure(6.0, fontsize=6)       # 6 pt at natural size: 8.3 px
    assert [t for t, _ in small_text(tiny)] == ["a line"]
    plt.close("all")


def test_rendering_a_figure_with_small_text_warns():
    """The warning is what fails the build (stderr_output: error) and the scale-2 test."""
    use_book_style()
    use_book_style()                     # idempotent: the hook is installed once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure(6.0).savefig(io.BytesIO(), format="png")
        assert not caught
        figure(6.0, fontsize=6).savefig(io.BytesIO(), format="png")
    assert len(caught) == 1 and "figure text below 10 px" in str(caught[0].message)
    plt.close("all")
