"""The multi-tensor (``foreach=True``) updates, gathered under their v1 import path.

Each now lives in its algorithm's module, beside its class and its single-tensor
update, as in torch.optim; this module keeps ``optbook.foreach.adam_foreach_update``
and friends working for code that imports them from here.
"""

from .adagrad import adagrad_foreach_update
from .adam import adam_foreach_apply, adam_foreach_update, adam_step_scalars
from .rmsprop import rmsprop_foreach_update
from .sgd import sgd_foreach_update

__all__ = ["sgd_foreach_update", "adagrad_foreach_update", "rmsprop_foreach_update",
           "adam_foreach_update", "adam_step_scalars", "adam_foreach_apply"]
