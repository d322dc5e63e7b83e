"""Claims: the qualitative sentences of the book, as predicates that fail the build.

A sentence such as "Adam ends below SGD on every seed" is backed by one call in the
cell before it::

    claim("adam-below-sgd", "Adam's final loss is below SGD's on every seed",
          holds=bool((adam_final < sgd_final).all()),
          adam_final=adam_final.max(), sgd_final=sgd_final.min())

``claim`` glues each keyword value into the page under its own name (so the prose
can quote it with ``{glue:text}``), records the claim (page, id, statement, values,
result, scale) for the claims ledger, and raises :class:`ClaimFailed` when the
predicate is false, so the cell, and with it the build, fails.

``holds`` is a bool, or a callable that receives the values as keyword arguments.
Values are numbers, strings, or anything with ``.item()``/``.tolist()``.  Name a value
that measures this machine's speed ``..._seconds`` (a wall time) or ``..._live`` (a live
timing ratio): the reproducibility test compares every other value across re-runs.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Union

__all__ = ["ClaimFailed", "claim", "glue", "recorded", "scale"]

#: The glue key under which each claim's record is stored (``claim:<id>``).
RECORD_PREFIX = "claim:"

_RECORDED: List[Dict[str, Any]] = []


class ClaimFailed(AssertionError):
    """A claim of the book is false for the numbers this build measured."""


def scale() -> int:
    """The scale this build runs at (:func:`optbook.book.device.scale` on the
    book's device: ``OPTBOOK_SCALE``, by default 1 on the CPU and 4 on a GPU)."""
    from .device import get_device
    from .device import scale as device_scale
    return device_scale(get_device())


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a value (numbers stay numbers)."""
    if hasattr(value, "tolist") and not isinstance(value, (int, float, str, bool)):
        value = value.tolist()
    elif hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def glue(name: str, value: Any, display: bool = True) -> None:
    """``myst_nb.glue`` when MyST-NB is installed (the book's build), so the prose can
    quote ``value`` as ``{glue:text}`name```; elsewhere (a downloaded notebook in plain
    Jupyter) there is no page to glue into: the value is shown when ``display`` is true
    and otherwise dropped. Chapters import this one, so they run without MyST-NB."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def _glue(name: str, value: Any) -> None:
    glue(name, value, display=False)


def claim(claim_id: str, statement: str, holds: Union[bool, Callable[..., bool]],
          **values: Any) -> bool:
    """Check one claim of the text; glue its values; record it; raise if it is false."""
    if not claim_id or any(c.isspace() for c in claim_id):
        raise ValueError(f"Invalid claim id: {claim_id!r} "
                         "(a non-empty name without spaces)")
    plain = {name: _plain(value) for name, value in values.items()}
    result = holds(**values) if callable(holds) else holds
    result = bool(result.item() if hasattr(result, "item") else result)
    record = {"id": claim_id, "statement": statement, "values": plain,
              "result": "holds" if result else "FAILS", "scale": scale()}
    _RECORDED.append(record)
    for name, value in values.items():
        _glue(name, value.item()
              if hasattr(value, "item") and getattr(value, "ndim", 0) == 0
              else value)
    _glue(RECORD_PREFIX + claim_id, json.dumps(record))
    if not result:
        shown = ", ".join(f"{k}={v}" for k, v in plain.items())
        raise ClaimFailed(f"claim {claim_id!r} is false at OPTBOOK_SCALE={scale()}: "
                          f"{statement} ({shown})")
    return True


def recorded() -> List[Dict[str, Any]]:
    """The claims checked so far in this process (a copy)."""
    return [dict(r) for r in _RECORDED]
