"""Elementwise ops: each one's forward and its VJPs side by side.

``Primitive(name, forward, vjps, ...)`` is the whole declaration of an op (see
``tinygrad_np.extend`` for the rules). ``vjps(ans, *args)`` returns one closure per
positional argument mapping the output's cotangent ``g`` to that argument's
gradient; the closures use ops, so a gradient can itself be differentiated.
Binary ops broadcast, so their gradients are summed back to each operand's shape
(``broadcast_vjp``). Masks are plain arrays: they have no gradient.

Where a derivative does not exist we choose:

* a plain (non-Tensor) number or array facing a Tensor is a bound: ``maximum(z, c)``,
  ``minimum(z, c)`` and ``clip(z, lo, hi)`` pass the gradient to ``z`` only where it is
  strictly beyond the bound, or strictly inside the bounds. So ``maximum(0, z)`` is
  ``relu``, with derivative 0 at ``z == 0`` whichever side the 0 is written on;
* two Tensors (constant ones included) that tie share the gradient equally, as tied
  maxima of ``tg.max`` do, so ``maximum(x, x)`` has derivative 1, like ``x``;
* ``relu`` and ``absolute`` have derivative 0 at 0 (``np.sign``'s value there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_np.extend import Primitive, broadcast_vjp, implements, shape_of
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "absolute",
    "add",
    "clip",
    "cos",
    "div",
    "exp",
    "expm1",
    "log",
    "log1p",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "square",
    "sub",
    "tanh",
    "where",
]

# --- arithmetic ------------------------------------------------------------------------


def _add_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    return broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))


def _sub_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_y = broadcast_vjp(y, shape_of(ans))
    return broadcast_vjp(x, shape_of(ans)), lambda g: to_y(-g)


def _mul_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    return lambda g: to_x(g * y), lambda g: to_y(g * x)


def _div_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    return lambda g: to_x(g / y), lambda g: to_y(-g * ans / y)


def _pow_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    if isinstance(y, int | float):  # x ** 2, x ** 0.5: the exponent is a known number
        if y == 0:
            dx = lambda g: to_x(g * 0)  # d/dx x**0 = 0, even at x = 0
        else:
            dx = lambda g: to_x(g * y * x ** (y - 1))
    else:
        # Where y == 0 the derivative is 0 even at x = 0, where y * x**(y - 1) is 0 * inf:
        # a base of 1 at exactly those points keeps the product finite.
        dx = lambda g: to_x(g * y * where((y == 0) & (x == 0), 1, x) ** (y - 1))
    # d/dy x**y = x**y log x, which is 0 at x = 0 for y > 0 (0 * log 0 would be nan): a
    # base of 1 there. A Python-number base is given ans's dtype first: np.log(2.0) would
    # be a float64 scalar that promotes a float32 gradient.
    base = np.asarray(x, np.result_type(stop_gradient(ans))) if isinstance(x, int | float) else x
    return dx, lambda g: to_y(g * ans * log(where(base == 0, 1, base)))


add = Primitive(
    "add", np.add, _add_vjps, numpy=[np.add], methods=["__add__"], reflected=["__radd__"],
    doc="``x + y`` with broadcasting.",
)  # fmt: skip
sub = Primitive(
    "sub", np.subtract, _sub_vjps, numpy=[np.subtract], methods=["__sub__"],
    reflected=["__rsub__"], doc="``x - y`` with broadcasting.",
)  # fmt: skip
mul = Primitive(
    "mul", np.multiply, _mul_vjps, numpy=[np.multiply], methods=["__mul__"],
    reflected=["__rmul__"], doc="``x * y`` with broadcasting.",
)  # fmt: skip
div = Primitive(
    "div", np.divide, _div_vjps, numpy=[np.divide], methods=["__truediv__"],
    reflected=["__rtruediv__"], doc="``x / y`` with broadcasting.",
)  # fmt: skip
neg = Primitive(
    "neg", np.negative, lambda ans, x: (lambda g: -g,), numpy=[np.negative],
    methods=["__neg__"], doc="``-x``.",
)  # fmt: skip
pow = Primitive(
    "pow", np.power, _pow_vjps, numpy=[np.power], methods=["__pow__"], reflected=["__rpow__"],
    doc="``x ** y``; differentiable in ``x`` and, where ``x > 0``, in ``y``.",
)  # fmt: skip

# --- functions of one argument ---------------------------------------------------------------


def _sigmoid(x: Any) -> Any:
    """Elementwise logistic function ``1 / (1 + exp(-x))``, computed stably."""
    # exp(-log(1 + exp(-x))) keeps full relative precision for large |x| of either sign.
    return np.exp(-np.logaddexp(0, -x))


def _relu(x: Any) -> Any:
    """Elementwise ``max(x, 0)``; its derivative at 0 is taken as 0."""
    return np.maximum(x, 0)


def _relu_vjps(ans: Any, x: Any) -> tuple[Any]:
    # Save the boolean mask, not the output: an eighth of the memory, and the output can be
    # freed once the op that consumed it has run its own VJP.
    positive = ans > 0
    return (lambda g: g * positive,)


exp = Primitive(
    "exp", np.exp, lambda ans, x: (lambda g: g * ans,), numpy=[np.exp], methods=["exp"],
    doc="Elementwise ``e**x``.",
)  # fmt: skip
log = Primitive(
    "log", np.log, lambda ans, x: (lambda g: g / x,), numpy=[np.log], methods=["log"],
    doc="Elementwise natural logarithm.",
)  # fmt: skip
tanh = Primitive(
    "tanh", np.tanh, lambda ans, x: (lambda g: g * (1 - ans * ans),), numpy=[np.tanh],
    methods=["tanh"], doc="Elementwise hyperbolic tangent.",
)  # fmt: skip
# sigmoid' = sigmoid(x) sigmoid(-x): 1 - sigmoid(x) would round to 0 for large x.
sigmoid: Primitive = Primitive(
    "sigmoid", _sigmoid, lambda ans, x: (lambda g: g * (ans * sigmoid(-x)),), methods=["sigmoid"]
)
relu = Primitive("relu", _relu, _relu_vjps, methods=["relu"])
sqrt = Primitive(
    "sqrt", np.sqrt, lambda ans, x: (lambda g: g / (2 * ans),), numpy=[np.sqrt],
    doc="Elementwise square root (the gradient is infinite at 0).",
)  # fmt: skip
square = Primitive(
    "square", np.square, lambda ans, x: (lambda g: g * (2 * x),), numpy=[np.square],
    doc="Elementwise ``x * x``.",
)  # fmt: skip
log1p = Primitive(
    "log1p", np.log1p, lambda ans, x: (lambda g: g / (1 + x),), numpy=[np.log1p],
    doc="Elementwise ``log(1 + x)``, accurate for small ``x``.",
)  # fmt: skip
# exp(x), not ans + 1: near ans = -1 (x << 0) the sum would lose every digit.
expm1 = Primitive(
    "expm1", np.expm1, lambda ans, x: (lambda g: g * exp(x),), numpy=[np.expm1],
    doc="Elementwise ``exp(x) - 1``, accurate for small ``x``.",
)  # fmt: skip
absolute = Primitive(
    "absolute", np.absolute, lambda ans, x: (lambda g: g * np.sign(stop_gradient(x)),),
    numpy=[np.absolute], methods=["__abs__"],
    doc="Elementwise ``|x|``; its derivative at 0 is taken as 0.",
)  # fmt: skip

sin: Primitive = Primitive(
    "sin", np.sin, lambda ans, x: (lambda g: g * cos(x),), numpy=[np.sin],
    doc="Elementwise sine (radians).",
)  # fmt: skip
cos: Primitive = Primitive(
    "cos", np.cos, lambda ans, x: (lambda g: -g * sin(x),), numpy=[np.cos],
    doc="Elementwise cosine (radians).",
)  # fmt: skip

# --- maximum, minimum, clip, where ---------------------------------------------------------


def _pairwise_extremum_vjps(wins: Any) -> Any:
    """VJPs of an elementwise max or min; ``wins(a, b)`` marks where ``a`` is the result."""

    def vjps(ans: Any, x: Any, y: Any, *, tie_share: float) -> tuple[Any, Any]:
        x_data, y_data = stop_gradient(x), stop_gradient(y)
        x_wins, y_wins = wins(x_data, y_data), wins(y_data, x_data)
        if tie_share:
            dtype = np.result_type(stop_gradient(ans))
            ties = (x_data == y_data) * dtype.type(tie_share)
            x_wins, y_wins = x_wins + ties, y_wins + ties  # weights in ans's dtype
        to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
        return lambda g: to_x(g * x_wins), lambda g: to_y(g * y_wins)

    return vjps


_maximum = Primitive(
    "maximum", lambda x, y, *, tie_share: np.maximum(x, y), _pairwise_extremum_vjps(np.greater)
)
_minimum = Primitive(
    "minimum", lambda x, y, *, tie_share: np.minimum(x, y), _pairwise_extremum_vjps(np.less)
)


def _tie_share(x: Any, y: Any) -> float:
    return 0.5 if isinstance(x, Tensor) and isinstance(y, Tensor) else 0.0


@implements(np.maximum)
def maximum(x: Any, y: Any) -> Any:
    """Elementwise maximum with broadcasting.

    Where ``x == y``: two Tensors share the gradient equally; a plain number or array is a
    bound, and the Tensor gets no gradient there (``maximum(z, 0)`` is ``relu``).
    """
    return _maximum(x, y, tie_share=_tie_share(x, y))


@implements(np.minimum)
def minimum(x: Any, y: Any) -> Any:
    """Elementwise minimum with broadcasting; ties as in :func:`maximum`."""
    return _minimum(x, y, tie_share=_tie_share(x, y))


def _clip_vjps(ans: Any, x: Any, *, lo: Any, hi: Any) -> tuple[Any]:
    x_data = stop_gradient(x)
    inside = np.ones(shape_of(ans), dtype=bool)
    if lo is not None:
        inside &= x_data > lo
    if hi is not None:
        inside &= x_data < hi
    to_x = broadcast_vjp(x, shape_of(ans))
    return (lambda g: to_x(g * inside),)


_clip = Primitive("clip", lambda x, *, lo, hi: np.clip(x, lo, hi), _clip_vjps)


@implements(np.clip, methods=["clip"])
def clip(x: Any, min: Any = None, max: Any = None) -> Any:
    """``x`` limited to ``[min, max]`` (``None`` for no bound), with broadcasting.

    With plain bounds the gradient passes where ``min < x < max`` strictly. Tensor bounds
    are differentiated too: that is ``minimum(maximum(x, min), max)``, with its tie rule.
    """
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x if min is None else maximum(x, min)
        return out if max is None else minimum(out, max)
    return _clip(x, lo=min, hi=max)


def _where_vjps(ans: Any, x: Any, y: Any, *, condition: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    return (
        lambda g: to_x(where(condition, g, 0)),
        lambda g: to_y(where(condition, 0, g)),
    )


_where = Primitive("where", lambda x, y, *, condition: np.where(condition, x, y), _where_vjps)
_NOT_GIVEN: Any = object()


@implements(np.where)
def where(condition: Any, x: Any = _NOT_GIVEN, y: Any = _NOT_GIVEN) -> Any:
    """``x`` where ``condition`` holds, else ``y``, with broadcasting.

    The gradient flows to ``x`` where the condition holds and to ``y`` elsewhere. The
    condition is only tested for truth, which has no gradient: a Tensor there counts by value.
    As in NumPy, ``where(condition)`` alone gives the indices where it holds.

    The trap: both branches are computed everywhere, and so are their VJPs. In
    ``where(x > 0, log(x), 0)`` the unselected ``log(x)`` at ``x = 0`` gets a zero
    cotangent, and log's VJP turns ``0 / 0`` into NaN, which then reaches ``x``'s
    gradient. Make the unselected inputs harmless instead:
    ``safe = where(x > 0, x, 1); where(x > 0, log(safe), 0)``.
    """
    if x is _NOT_GIVEN and y is _NOT_GIVEN:
        return np.nonzero(stop_gradient(condition))  # indices: no gradient
    if x is _NOT_GIVEN or y is _NOT_GIVEN:
        raise ValueError("where: either both or neither of x and y should be given")
    return _where(x, y, condition=np.asarray(stop_gradient(condition)))
