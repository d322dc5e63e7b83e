"""The book's experiment kit: what the chapters use to run and show experiments.

Kept apart from the optimizer library (``optbook.SGD``, ``optbook.Adam``, ...), which
is what users import into their own training code: ``import optbook`` does not import
this subpackage, nor its extra dependencies (scikit-learn for the digits data).

* :mod:`~optbook.book.device` - pick ``cuda``, then ``mps``, then the CPU; the scale
  knob;
* :mod:`~optbook.book.data` - offline data sets (scikit-learn's digits);
* :mod:`~optbook.book.training` - small models and the training loop;
* :mod:`~optbook.book.lm` - a character-level transformer LM on generated offline text
  (corpus, ``TinyGPT``, the matrix/other parameter split, ``train_lm``);
* :mod:`~optbook.book.trajectories` - 2-D test functions and optimizer paths on them;
* :mod:`~optbook.book.plotting` - the book's figure style and colours;
* :mod:`~optbook.book.claims` - ``claim(...)``: a sentence of the text as a predicate.
"""

from . import claims, data, device, lm, plotting, training, trajectories  # noqa: F401

__all__ = ["claims", "data", "device", "lm", "plotting", "training", "trajectories"]
