"""One figure style for the whole book, and the 2D-trajectory plot.

White, opaque backgrounds (legible in the site's dark mode), labelled axes, and the
look of Dive into Deep Learning's ``show_trace_2d``: contours of f with the path
drawn as connected dots.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_hex, to_rgb

__all__ = [
    "use_book_style", "show_trace_2d", "shades", "small_text", "COLORS", "MIN_TEXT_PX",
]

#: The width of the built site's text column at desktop size (sphinx-book-theme), in
#: CSS px: a figure wider than that is shrunk to it, and its text with it.
COLUMN_PX = 672
#: The smallest text a figure may show on that column, in CSS px (tick labels and
#: legends included): about the size of the page's footnotes. use_book_style() checks
#: every figure a chapter renders and warns, which fails the build
#: (stderr_output: error).
MIN_TEXT_PX = 10.0

#: One colour per method, book-wide: a method keeps its colour in every chapter, and no
#: two methods share one.  "gd" and "sgd" are one method (full-batch or mini-batch
#: gradient steps) and share a colour; variants of one method (several step sizes,
#: schedules) are told apart with :func:`shades` of that colour or with line styles,
#: never with another method's colour.  "other" (grey) is for baselines and curves
#: that are not a method (bounds, predictions, targets).
COLORS = {
    "gd": "#ff7f0e", "sgd": "#ff7f0e", "momentum": "#2ca02c", "nesterov": "#17becf",
    "adagrad": "#9467bd", "rmsprop": "#8c564b", "adam": "#d62728", "amsgrad": "#1f77b4",
    "adamw": "#e377c2", "nadam": "#bcbd22", "radam": "#393b79", "adamax": "#8c6d31",
    "adadelta": "#637939", "lookahead": "#843c39", "adabound": "#7b4173",
    # the frontier chapters (beyond_diagonal, less_memory)
    "shampoo": "#5254a3", "soap": "#e7969c", "muon": "#000000", "adafactor": "#ad494a",
    "lion": "#31a354", "schedulefree": "#3182bd",
    "other": "#7f7f7f",
}


def shades(role: str, n: int) -> List[str]:
    """``n`` shades of one role's colour, light to dark, for variants of one method
    (e.g. three step sizes of SGD), so that the method still reads as one colour."""
    if role not in COLORS:
        raise ValueError(f"Invalid role: {role!r} (one of {sorted(COLORS)})")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"Invalid n: {n!r} (a positive int)")
    base = np.array(to_rgb(COLORS[role]))
    out = []
    for s in (np.linspace(0.5, -0.4, n) if n > 1 else [0.0]):
        rgb = base + (1 - base) * s if s > 0 else base * (1 + s)  # toward white / black
        out.append(to_hex(np.clip(rgb, 0, 1)))
    return out


def small_text(fig, min_px: float = MIN_TEXT_PX) -> List[tuple]:
    """(text, size in CSS px) of every visible text of ``fig`` that renders smaller than
    ``min_px`` on the page: points at ``fig.dpi`` (as Jupyter renders it), scaled down
    when the figure is wider than the column."""
    from matplotlib.text import Text

    width_px = fig.get_figwidth() * fig.dpi
    shrink = min(1.0, COLUMN_PX / width_px)
    found = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        px = t.get_fontsize() / 72.0 * fig.dpi * shrink
        if px < min_px - 1e-9:
            found.append((t.get_text(), round(px, 1)))
    return found


def _checked(print_figure):
    def print_checked(self, *args, **kwargs):
        small = small_text(self.figure)
        if small:
            import warnings

            warnings.warn(
                f"figure text below {MIN_TEXT_PX:g} px on the page "
                f"({self.figure.get_figwidth():g} in wide): {small[:4]}",
                stacklevel=2,
            )
        return print_figure(self, *args, **kwargs)

    print_checked.checks_text = True
    return print_checked


def use_book_style() -> None:
    """Apply the book's matplotlib settings (call once at the top of a chapter), and
    check the text size of every figure rendered from then on (:func:`small_text`)."""
    from matplotlib.backend_bases import FigureCanvasBase

    if not getattr(FigureCanvasBase.print_figure, "checks_text", False):
        FigureCanvasBase.print_figure = _checked(FigureCanvasBase.print_figure)
    plt.rcParams.update({
        "figure.figsize": (6.0, 3.6),
        "figure.dpi": 100,
        "savefig.dpi": 120,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 11,  # with MIN_TEXT_PX: figures up to 10 in wide keep 10 px text
        "legend.frameon": False,
        "figure.autolayout": True,
    })


def show_trace_2d(
    f: Callable,
    traces: Dict[str, np.ndarray],
    xlim: Sequence[float] = (-5.5, 1.0),
    ylim: Sequence[float] = (-3.0, 1.0),
    ax: Optional[plt.Axes] = None,
    colors: Optional[Dict[str, str]] = None,
    levels: int = 12,
) -> plt.Axes:
    """Contours of ``f`` with one or more optimizer paths (d2l's ``show_trace_2d``
    look).

    ``traces`` maps a label to an array of shape (steps+1, 2).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    x1, x2 = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    z = f(torch.tensor(np.stack([x1, x2]))).numpy()
    # Grey contours: blue is AMSGrad's colour, and a path must not read as a method
    # it is not; a path without a colour in ``colors`` is drawn in "other" grey.
    ax.contour(x1, x2, z, levels=levels, colors="#b3b3b3", linewidths=0.6)
    for label, path in traces.items():
        color = (colors or {}).get(label, COLORS["other"])
        ax.plot(path[:, 0], path[:, 1], "-o", color=color, markersize=3, linewidth=1,
                label=label)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(False)
    if traces:
        ax.legend(loc="lower right")
    return ax
