"""The v1 import path of SGD, Adagrad, RMSprop, Adam and AdamW (each now in its own
module: :mod:`optbook.sgd`, :mod:`optbook.adagrad`, :mod:`optbook.rmsprop`,
:mod:`optbook.adam`)."""

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]
