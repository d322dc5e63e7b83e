"""One figure style for the whole book, and the 2D-trajectory plot.

White, opaque backgrounds (legible in the site's dark mode), labelled axes, and the
look of Dive into Deep Learning's ``show_trace_2d``: contours of f with the path
drawn as connected dots.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["use_book_style", "show_trace_2d", "COLORS"]

#: Colours by role, so a method keeps its colour across chapters.
COLORS = {
    "gd": "#ff7f0e", "sgd": "#ff7f0e", "momentum": "#2ca02c", "nesterov": "#17becf",
    "adagrad": "#9467bd", "rmsprop": "#8c564b", "adam": "#d62728", "amsgrad": "#1f77b4",
    "other": "#7f7f7f",
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (call once at the top of a chapter)."""
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
        "font.size": 10,
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
    """Contours of ``f`` with one or more optimizer paths (d2l's ``show_trace_2d`` look).

    ``traces`` maps a label to an array of shape (steps+1, 2).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    x1, x2 = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    z = f(torch.tensor(np.stack([x1, x2]))).numpy()
    ax.contour(x1, x2, z, levels=levels, colors="#1f77b4", linewidths=0.6)
    palette = list(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for i, (label, path) in enumerate(traces.items()):
        color = (colors or {}).get(label, palette[(i + 1) % len(palette)])
        ax.plot(path[:, 0], path[:, 1], "-o", color=color, markersize=3, linewidth=1, label=label)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(False)
    if traces:
        ax.legend(loc="lower right", fontsize=8)
    return ax
