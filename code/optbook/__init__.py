"""optbook: first-order optimizers written from scratch, bit-identical to torch.optim.

The package behind the book *First-order optimizers, derived and tested*.

* :mod:`optbook.functional` - one pure update function per algorithm (what the
  chapters display);
* :mod:`optbook.foreach` - the same updates on lists of tensors, with
  ``torch._foreach_*`` operations (the ``foreach=True`` path);
* :mod:`optbook.optimizers` - ``SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``:
  drop-in twins of their torch.optim counterparts; :func:`compile_step` switches one
  to the ``torch.compile``-d multi-tensor update;
* :mod:`optbook.variants` - the textbook forms that differ from torch on purpose;
* :mod:`optbook.ewma` - exponentially weighted moving averages;
* helpers for the chapters: :mod:`~optbook.device`, :mod:`~optbook.data`,
  :mod:`~optbook.training`, :mod:`~optbook.trajectories`, :mod:`~optbook.plotting`;
  ``python -m optbook.bench`` measures the step time of every code path.
"""

from .base import compile_step
from . import data, device, training, trajectories  # noqa: F401  (optbook.device.get_device() etc.)
from .ewma import EWMA, ewma_sq_update_, ewma_update_
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
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
TWINS = {"SGD": "SGD", "Adagrad": "Adagrad", "RMSprop": "RMSprop", "Adam": "Adam", "AdamW": "AdamW"}

__all__ = [
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "EWMA", "ewma_update_", "ewma_sq_update_",
    "AdamNoBiasCorrection", "AdamKingmaBa", "AdagradEpsInside", "RMSpropEpsInside",
    "AMSGradReddi", "AMSGradMaxVhat", "TWINS", "compile_step",
]
