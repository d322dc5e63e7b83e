"""The v1 import path of Lookahead and AdaBound (now :mod:`optbook.lookahead` and
:mod:`optbook.adabound`)."""

from .adabound import AdaBound, adabound_bounds, adabound_update
from .lookahead import Lookahead

__all__ = ["Lookahead", "AdaBound", "adabound_update", "adabound_bounds"]
