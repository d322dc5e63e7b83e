"""The single-tensor updates, gathered under their v1 import path.

Each now lives in its algorithm's module, beside its class and its multi-tensor
update, as in torch.optim (``optbook.adam.adam_update`` is ``torch/optim/adam.py``'s
``_single_tensor_adam``).  This module keeps ``optbook.functional.adam_update`` and
friends working for code (and chapters) that import them from here.
"""

from .adadelta import adadelta_update
from .adagrad import adagrad_update
from .adam import adam_update
from .adamax import adamax_update
from .nadam import nadam_update
from .radam import radam_update
from .rmsprop import rmsprop_update
from .sgd import sgd_update

__all__ = ["sgd_update", "adagrad_update", "rmsprop_update", "adam_update",
           "nadam_update", "radam_update", "adamax_update", "adadelta_update"]
