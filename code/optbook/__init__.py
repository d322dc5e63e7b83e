"""optbook: first-order optimizers written from scratch, bit-identical to torch.optim.

The package behind the book *First-order optimizers, derived and tested*.

* :mod:`optbook.functional` - one pure update function per algorithm (what the
  chapters display);
* :mod:`optbook.foreach` - the same updates on lists of tensors, with
  ``torch._foreach_*`` operations (the ``foreach=True`` path);
* :mod:`optbook.optimizers` - ``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``:
  drop-in twins of their torch.optim counterparts; :func:`compile_step` switches one
  to the ``torch.compile``-d multi-tensor update;
* :mod:`optbook.adam_family` - ``NAdam``, ``RAdam``, ``Adamax``, ``Adadelta``, also
  twins of torch.optim (single-tensor path);
* :mod:`optbook.wrappers` - ``Lookahead`` and ``AdaBound`` (no torch twin; tested
  against the papers' algorithms);
* :mod:`optbook.schedules` - learning-rate schedules (warm-up, step, cosine, SGDR,
  one-cycle, cyclical), equal to their torch.optim.lr_scheduler twins;
* :mod:`optbook.variants` - the textbook forms that differ from torch on purpose;
* :mod:`optbook.ewma` - exponentially weighted moving averages;
* helpers for the chapters: :mod:`~optbook.device`, :mod:`~optbook.data`,
  :mod:`~optbook.training`, :mod:`~optbook.trajectories`, :mod:`~optbook.plotting`;
  ``python -m optbook.bench`` measures the step time of every code path.
"""

from .base import compile_step
from . import data, device, schedules, training, trajectories  # noqa: F401  (optbook.device.get_device() etc.)
from .adam_family import Adadelta, Adamax, NAdam, RAdam
from .ewma import EWMA, ewma_sq_update_, ewma_update_
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from .wrappers import AdaBound, Lookahead
from .variants import (
    AdagradEpsInside,
    AdamKingmaBa,
    AdamNoBiasCorrection,
    AMSGradMaxVhat,
    AMSGradReddi,
    RMSpropEpsInside,
)

__version__ = "0.1.0"

#: optbook class name -> torch.optim twin
TWINS = {name: name for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW",
                                  "NAdam", "RAdam", "Adamax", "Adadelta")}

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "EWMA", "ewma_update_", "ewma_sq_update_",
    "AdamNoBiasCorrection", "AdamKingmaBa", "AdagradEpsInside", "RMSpropEpsInside",
    "AMSGradReddi", "AMSGradMaxVhat", "TWINS", "compile_step",
    "NAdam", "RAdam", "Adamax", "Adadelta", "Lookahead", "AdaBound", "schedules",
]
