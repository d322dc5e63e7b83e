"""optbook: first-order optimizers written from scratch, bit-identical to torch.optim.

The package behind the book *First-order optimizers, derived and tested*.  Laid out as
torch.optim is: one module per algorithm family, each holding the pure single-tensor
update, the multi-tensor (``foreach``) update and the optimizer class.

* torch.optim twins: :mod:`~optbook.sgd` (``SGD``), :mod:`~optbook.adagrad`
  (``Adagrad``), :mod:`~optbook.rmsprop` (``RMSprop``), :mod:`~optbook.adam` (``Adam``,
  ``AdamW``), :mod:`~optbook.nadam`, :mod:`~optbook.radam`, :mod:`~optbook.adamax`,
  :mod:`~optbook.adadelta`, :mod:`~optbook.adafactor` (``Adafactor``),
  :mod:`~optbook.muon` (``Muon``);
* no torch twin, tested against the papers: :mod:`~optbook.lookahead`,
  :mod:`~optbook.adabound`, :mod:`~optbook.shampoo` (``Shampoo``), :mod:`~optbook.soap`
  (``SOAP``);
* twins of the authors' packages: :mod:`~optbook.lion` (``Lion``, of lion-pytorch),
  :mod:`~optbook.schedulefree` (``ScheduleFreeAdamW``, ``ScheduleFreeSGD``, of
  schedulefree);
* :mod:`~optbook.base` - the plumbing every optimizer shares (groups, lazy state,
  ``maximize``, code-path dispatch, validation), and :func:`compile_step`;
* :mod:`~optbook.ewma` - exponentially weighted moving averages;
* :mod:`~optbook.schedules` - learning-rate schedules, equal to torch's schedulers;
* :mod:`~optbook.variants` - the textbook forms that differ from torch on purpose;
* ``python -m optbook.bench`` measures the step time of every code path.

The book's experiment kit (data, devices, training loop, plots) is the subpackage
:mod:`optbook.book`, which ``import optbook`` leaves alone.  ``optbook.functional``,
``optbook.foreach``, ``optbook.optimizers``, ``optbook.adam_family`` and
``optbook.wrappers`` keep the v1 import paths working.
"""

from . import schedules  # noqa: F401
from .adabound import AdaBound
from .adafactor import Adafactor
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .base import IncompatibleStateDict, compile_step
from .ewma import EWMA, ewma_sq_update_, ewma_update_
from .lion import Lion
from .lookahead import Lookahead
from .muon import Muon
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD
from .sgd import SGD
from .shampoo import Shampoo
from .soap import SOAP
from .variants import (
    AdagradEpsInside,
    AdamKingmaBa,
    AdamNoBiasCorrection,
    AMSGradMaxVhat,
    AMSGradReddi,
    RMSpropEpsInside,
)

__version__ = "0.2.0"

#: optbook class name -> torch.optim twin
TWINS = {name: name for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
                                  "NAdam", "RAdam", "Adamax", "Adadelta",
                                  "Adafactor", "Muon")}

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "EWMA", "ewma_update_",
    "ewma_sq_update_", "AdamNoBiasCorrection", "AdamKingmaBa", "AdagradEpsInside",
    "RMSpropEpsInside", "AMSGradReddi", "AMSGradMaxVhat", "TWINS", "compile_step",
    "IncompatibleStateDict", "NAdam", "RAdam", "Adamax", "Adadelta", "Lookahead",
    "AdaBound", "schedules", "Adafactor", "Shampoo", "SOAP", "Muon", "Lion",
    "ScheduleFreeAdamW", "ScheduleFreeSGD",
]
