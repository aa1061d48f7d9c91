"""Functions whose results carry no gradient: NumPy's own result on the values, a constant.

Rounding (``floor``, ``round``, ...), ``sign``, ``angle`` (of real input) and
``floor_divide`` are piecewise constant: their derivative is 0 wherever it exists, and
autograd and JAX define it as 0 everywhere.
Predicates (``isfinite``, ``isnan``, ...) give booleans and index functions (``argmax``,
``argsort``, ``nonzero``, ``searchsorted``) integers, which have no gradient at all. So on
Tensors, traced or not, each returns NumPy's plain ndarray computed on the values: it
multiplies or indexes like any other constant, and nothing flows back through it.

NumPy's spelling works on Tensors too (``np.floor(t)``, ``t.argmax()``, ``t // 2``):
tinygrad_np.numpy_dispatch lists these functions in ``CONSTANT_UFUNCS`` and
``CONSTANT_FUNCTIONS``; the ``tg.*`` functions here are the same calls, documented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_np.extend import implements

__all__ = [
    "angle",
    "argmax",
    "argmin",
    "argsort",
    "ceil",
    "fix",
    "floor",
    "floor_divide",
    "isfinite",
    "isinf",
    "isnan",
    "nonzero",
    "rint",
    "round",
    "searchsorted",
    "sign",
    "trunc",
]

_PIECEWISE_CONSTANT = "it is piecewise constant, so its derivative is 0 wherever it exists"
_BOOLEAN = "its result is boolean"
_INDICES = "its result is integer indices"


def _no_gradient(function: Callable[..., Any], why: str) -> Callable[..., Any]:
    """``function`` itself, documented: NumPy dispatch runs it on a Tensor's values."""
    name = function.__name__

    def on_values(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    on_values.__name__ = on_values.__qualname__ = name
    on_values.__wrapped__ = function  # type: ignore[attr-defined]  # (NumPy's signature)
    on_values.__doc__ = (
        f"``np.{name}`` on the values, with no gradient: {why}. On Tensors, traced or not, "
        f"it returns NumPy's plain result, a constant.\n\nNumPy's documentation:\n\n"
        f"{function.__doc__ or ''}"
    )
    return on_values


floor = _no_gradient(np.floor, _PIECEWISE_CONSTANT)
ceil = _no_gradient(np.ceil, _PIECEWISE_CONSTANT)
rint = _no_gradient(np.rint, _PIECEWISE_CONSTANT)
round = _no_gradient(np.round, _PIECEWISE_CONSTANT)
fix = _no_gradient(np.fix, _PIECEWISE_CONSTANT)
trunc = _no_gradient(np.trunc, _PIECEWISE_CONSTANT)
sign = _no_gradient(np.sign, _PIECEWISE_CONSTANT)
angle = _no_gradient(np.angle, _PIECEWISE_CONSTANT + " (0 or pi for real input)")
floor_divide = implements(methods=["__floordiv__"], reflected=["__rfloordiv__"])(
    _no_gradient(np.floor_divide, _PIECEWISE_CONSTANT)
)
isfinite = _no_gradient(np.isfinite, _BOOLEAN)
isinf = _no_gradient(np.isinf, _BOOLEAN)
isnan = _no_gradient(np.isnan, _BOOLEAN)
argmax = _no_gradient(np.argmax, _INDICES)
argmin = _no_gradient(np.argmin, _INDICES)
argsort = _no_gradient(np.argsort, _INDICES)
nonzero = _no_gradient(np.nonzero, _INDICES)
searchsorted = _no_gradient(np.searchsorted, _INDICES)
