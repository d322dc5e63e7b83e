"""Real data that ships offline: scikit-learn's bundled handwritten digits, and the
book's recorded measurements.

``sklearn.datasets.load_digits`` reads 1,797 8x8 images from a file inside the
scikit-learn package, so nothing is downloaded at build or run time.

:data:`RECORDS` is the folder of results that the book reads but does not re-run at
build time (the bake-off study, the fast-paths benchmark, the GPU report). It is package
data, inside ``optbook``, so that a chapter downloaded as a notebook finds it wherever
optbook is installed (from the repository or from the wheel on the site).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["RECORDS", "Split", "load_digits"]

#: The recorded results (``*.csv``, ``*.json``) shipped inside the package.
RECORDS = Path(__file__).resolve().parent / "records"


@dataclass
class Split:
    """A train/test split as tensors (features standardised with train statistics)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    def to(self, device) -> "Split":
        return Split(*(t.to(device) for t in (self.X_train, self.y_train,
                                              self.X_test, self.y_test)))

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def load_digits(test_fraction: float = 0.25, seed: int = 0, images: bool = False,
                dtype: torch.dtype = torch.float32) -> Split:
    """The digits data set, split reproducibly.

    ``images=True`` keeps the 1x8x8 image shape (for a CNN); otherwise 64 features.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    X = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0) + 1e-8
    X = (X - mean) / std
    if images:
        X = X.reshape(-1, 1, 8, 8)
    as_x = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    as_y = lambda a: torch.tensor(a)  # noqa: E731
    return Split(as_x(X[train]), as_y(y[train]), as_x(X[test]), as_y(y[test]))
