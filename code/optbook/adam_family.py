"""The v1 import path of NAdam, RAdam, Adamax and Adadelta (each now in its own
module: :mod:`optbook.nadam`, :mod:`optbook.radam`, :mod:`optbook.adamax`,
:mod:`optbook.adadelta`)."""

from .adadelta import Adadelta, adadelta_update
from .adamax import Adamax, adamax_update
from .nadam import NAdam, nadam_mu, nadam_update
from .radam import RAdam, radam_rectification, radam_rho, radam_update

__all__ = ["NAdam", "RAdam", "Adamax", "Adadelta",
           "nadam_update", "radam_update", "adamax_update", "adadelta_update",
           "nadam_mu", "radam_rho", "radam_rectification"]
