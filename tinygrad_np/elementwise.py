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
* ``relu``, ``absolute`` and ``fabs`` have derivative 0 at 0 (``np.sign``'s value there, as
  in autograd; JAX takes 1);
* ``fmax`` and ``fmin`` follow ``maximum``'s tie rule, and a NaN loses: where one argument is
  NaN the result is the other one, which gets the whole gradient (where both are NaN,
  neither gets any). autograd shares ties equally too; JAX and PyTorch give a tie to one
  side;
* ``remainder`` (``mod``) is ``x - floor(x / y) * y``: its derivative is 1 in ``x`` and
  ``-floor_divide(x, y)`` in ``y``, NumPy's quotient, also at the jumps where ``x / y`` is an
  integer (there the value is the right-hand limit, and so is the derivative). autograd and
  JAX take the same;
* ``hypot`` at ``(0, 0)`` has gradient 0, a subgradient of the norm there, like
  ``absolute``'s (autograd and PyTorch give NaN, JAX 0.5 to each); ``arctan2`` at ``(0, 0)``
  is discontinuous and gives NaN, as in autograd and JAX;
* ``nan_to_num`` passes the gradient where ``x`` is finite and none where it was replaced
  (autograd's rule);
* ``sinc`` is smooth everywhere, 0 included: its derivatives of every order are exact there
  (``sinc''(0) = -pi**2 / 3``), as in JAX (autograd's formula is 0/0 at 0);
* ``real``, ``imag`` and ``conj`` take real input (complex values are refused, as everywhere):
  ``real`` and ``conj`` pass the gradient through, ``imag`` is 0 and has gradient 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_np.extend import Primitive, broadcast_vjp, identity_vjp, implements, shape_of
from tinygrad_np.jit import Tracer, might
from tinygrad_np.jit import asarray as as_array
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "absolute",
    "add",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "clip",
    "conj",
    "conjugate",
    "cos",
    "cosh",
    "deg2rad",
    "degrees",
    "div",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "fmax",
    "fmin",
    "hypot",
    "imag",
    "log",
    "log1p",
    "log2",
    "log10",
    "logaddexp",
    "logaddexp2",
    "maximum",
    "minimum",
    "mod",
    "mul",
    "nan_to_num",
    "neg",
    "pow",
    "rad2deg",
    "radians",
    "real",
    "real_if_close",
    "reciprocal",
    "relu",
    "remainder",
    "select",
    "sigmoid",
    "sin",
    "sinc",
    "sinh",
    "sqrt",
    "square",
    "sub",
    "tan",
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


# --- trigonometric and hyperbolic functions --------------------------------------------------
# Derivatives of the inverse functions factor 1 - x**2 as (1 - x)(1 + x): near |x| = 1 the
# product keeps full relative precision where the difference would lose it.

tan = Primitive(
    "tan", np.tan, lambda ans, x: (lambda g: g * (1 + ans * ans),), numpy=[np.tan],
    doc="Elementwise tangent (radians).",
)  # fmt: skip
arcsin = Primitive(
    "arcsin", np.arcsin, lambda ans, x: (lambda g: g / sqrt((1 - x) * (1 + x)),),
    numpy=[np.arcsin], doc="Elementwise inverse sine (infinite gradient at -1 and 1).",
)  # fmt: skip
arccos = Primitive(
    "arccos", np.arccos, lambda ans, x: (lambda g: -g / sqrt((1 - x) * (1 + x)),),
    numpy=[np.arccos], doc="Elementwise inverse cosine (infinite gradient at -1 and 1).",
)  # fmt: skip
arctan = Primitive(
    "arctan", np.arctan, lambda ans, x: (lambda g: g / (1 + x * x),), numpy=[np.arctan],
    doc="Elementwise inverse tangent.",
)  # fmt: skip
sinh: Primitive = Primitive(
    "sinh", np.sinh, lambda ans, x: (lambda g: g * cosh(x),), numpy=[np.sinh],
    doc="Elementwise hyperbolic sine.",
)  # fmt: skip
cosh: Primitive = Primitive(
    "cosh", np.cosh, lambda ans, x: (lambda g: g * sinh(x),), numpy=[np.cosh],
    doc="Elementwise hyperbolic cosine.",
)  # fmt: skip
# hypot(x, 1), not sqrt(x * x + 1): x * x overflows from |x| ~ 1e154 (float32: 1.8e19).
arcsinh = Primitive(
    "arcsinh", np.arcsinh, lambda ans, x: (lambda g: g / hypot(x, 1),), numpy=[np.arcsinh],
    doc="Elementwise inverse hyperbolic sine.",
)  # fmt: skip
arccosh = Primitive(
    "arccosh", np.arccosh, lambda ans, x: (lambda g: g / sqrt((x - 1) * (x + 1)),),
    numpy=[np.arccosh], doc="Elementwise inverse hyperbolic cosine (infinite gradient at 1).",
)  # fmt: skip
arctanh = Primitive(
    "arctanh", np.arctanh, lambda ans, x: (lambda g: g / ((1 - x) * (1 + x)),),
    numpy=[np.arctanh], doc="Elementwise inverse hyperbolic tangent.",
)  # fmt: skip


def _arctan2_vjps(ans: Any, x1: Any, x2: Any) -> tuple[Any, Any]:
    to_x1, to_x2 = broadcast_vjp(x1, shape_of(ans)), broadcast_vjp(x2, shape_of(ans))
    # x2 / (x1**2 + x2**2) as (x2 / r) / r: the squares underflow to 0 below ~1e-154 (an
    # infinite gradient) and overflow above ~1e154 (a zero one) while the derivative, about
    # 1 / r, is a float there. r is 0 at the origin, where arctan2 jumps: 0/0 is NaN there.
    radius = hypot(x1, x2)
    return (
        lambda g: to_x1(g * (x2 / radius) / radius),
        lambda g: to_x2(-g * (x1 / radius) / radius),
    )


def _hypot_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    at_origin = stop_gradient(ans) == 0
    if might(at_origin):  # x / ans would be 0 / 0: dividing by 1 makes the gradient 0 there
        ans = where(at_origin, 1, ans)
    return lambda g: to_x(g * (x / ans)), lambda g: to_y(g * (y / ans))


arctan2 = Primitive(
    "arctan2", np.arctan2, _arctan2_vjps, numpy=[np.arctan2],
    doc="Elementwise angle of the point ``(x2, x1)`` (NumPy's argument order), with "
    "broadcasting; NaN gradient at the origin.",
)  # fmt: skip
hypot: Primitive = Primitive(
    "hypot", np.hypot, _hypot_vjps, numpy=[np.hypot],
    doc="Elementwise ``sqrt(x**2 + y**2)`` without overflow, with broadcasting; gradient 0 "
    "at ``(0, 0)``.",
)  # fmt: skip

# Degrees and radians: Python floats, which keep float32 float32.
_DEGREES_PER_RADIAN = 180 / math.pi
rad2deg = Primitive(
    "rad2deg", np.rad2deg, lambda ans, x: (lambda g: g * _DEGREES_PER_RADIAN,),
    numpy=[np.rad2deg, np.degrees], doc="Radians to degrees (``np.degrees`` too).",
)  # fmt: skip
deg2rad = Primitive(
    "deg2rad", np.deg2rad, lambda ans, x: (lambda g: g * (1 / _DEGREES_PER_RADIAN),),
    numpy=[np.deg2rad, np.radians], doc="Degrees to radians (``np.radians`` too).",
)  # fmt: skip
degrees, radians = rad2deg, deg2rad


# --- sinc, smooth at 0 to every order ------------------------------------------------------


def _sinc_derivative(x: Any, *, order: int) -> Any:
    """The ``order``-th derivative of ``np.sinc`` (``order >= 1``), exact at 0 too.

    With ``t = pi x``, ``sinc(x) = sin(t) / t``. For ``|t| < 3`` the Maclaurin series
    ``sum_n (-1)**n t**(2n) / (2n + 1)!`` is differentiated term by term (20 terms reach
    3**40 / 40! ~ 1e-29); further out, Leibniz's rule on ``sin(t) * t**-1`` has no
    cancellation to speak of. Computed in float64, returned in ``x``'s float dtype.
    """
    dtype = np.result_type(x, 1.0)
    t = np.pi * as_array(x, np.float64)
    # Both formulas on every element, each given a harmless stand-in where the other one is
    # chosen (no selecting by mask: its shapes would depend on the values, which tg.jit
    # cannot replay); elementwise, so each chosen value is what it would be on its own.
    near = np.abs(t) < 3.0
    t_near, t_far = np.where(near, t, 0.0), np.where(near, 3.0, t)
    series = np.zeros_like(t_near)
    first = (order + 1) // 2  # the first term whose power of t survives `order` derivatives
    for n in range(first, first + 20):
        power = 2 * n - order
        series += (-1) ** n * t_near**power / ((2 * n + 1) * math.factorial(power))
    leibniz = np.zeros_like(t_far)
    for j in range(order + 1):
        sine = np.sin(t_far + (order - j) * (np.pi / 2))  # the (order - j)-th derivative of sin
        leibniz += math.comb(order, j) * sine * (-1) ** j * math.factorial(j) / t_far ** (j + 1)
    return (np.pi**order * np.where(near, series, leibniz)).astype(dtype, copy=False)


_sinc_derivatives: Primitive = Primitive(
    "sinc_derivative",
    _sinc_derivative,
    lambda ans, x, *, order: (lambda g: g * _sinc_derivatives(x, order=order + 1),),
)
sinc = Primitive(
    "sinc", np.sinc, lambda ans, x: (lambda g: g * _sinc_derivatives(x, order=1),),
    numpy=[np.sinc],
    doc="Elementwise ``sin(pi x) / (pi x)`` (1 at 0), differentiable to any order everywhere.",
)  # fmt: skip

# --- exponentials and logarithms in other bases -----------------------------------------------

_LN2, _LN10 = math.log(2), math.log(10)  # Python floats: they keep float32 float32

exp2: Primitive = Primitive(
    "exp2", np.exp2, lambda ans, x: (lambda g: g * (ans * _LN2),), numpy=[np.exp2],
    doc="Elementwise ``2**x``.",
)  # fmt: skip
log2 = Primitive(
    "log2", np.log2, lambda ans, x: (lambda g: g / (x * _LN2),), numpy=[np.log2],
    doc="Elementwise base-2 logarithm.",
)  # fmt: skip
log10 = Primitive(
    "log10", np.log10, lambda ans, x: (lambda g: g / (x * _LN10),), numpy=[np.log10],
    doc="Elementwise base-10 logarithm.",
)  # fmt: skip


def _logaddexp_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    return lambda g: to_x(g * exp(x - ans)), lambda g: to_y(g * exp(y - ans))


def _logaddexp2_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    return lambda g: to_x(g * exp2(x - ans)), lambda g: to_y(g * exp2(y - ans))


logaddexp = Primitive(
    "logaddexp", np.logaddexp, _logaddexp_vjps, numpy=[np.logaddexp],
    doc="Elementwise ``log(exp(x) + exp(y))`` without overflow, with broadcasting.",
)  # fmt: skip
logaddexp2 = Primitive(
    "logaddexp2", np.logaddexp2, _logaddexp2_vjps, numpy=[np.logaddexp2],
    doc="Elementwise ``log2(2**x + 2**y)`` without overflow, with broadcasting.",
)  # fmt: skip
reciprocal = Primitive(
    "reciprocal", np.reciprocal, lambda ans, x: (lambda g: -g * (ans * ans),),
    numpy=[np.reciprocal], doc="Elementwise ``1 / x``.",
)  # fmt: skip
fabs = Primitive(
    "fabs", np.fabs, lambda ans, x: (lambda g: g * np.sign(stop_gradient(x)),), numpy=[np.fabs],
    doc="Elementwise ``|x|`` of real numbers; its derivative at 0 is taken as 0.",
)  # fmt: skip

# --- remainder -------------------------------------------------------------------------------


def _remainder_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    # x - floor(x / y) * y, with NumPy's own quotient (it rounds x / y exactly as the value
    # does), a piecewise constant: its derivative is 0 wherever it has one.
    quotient = np.floor_divide(stop_gradient(x), stop_gradient(y))
    quotient = quotient.astype(np.result_type(stop_gradient(ans)), copy=False)
    to_y = broadcast_vjp(y, shape_of(ans))
    return broadcast_vjp(x, shape_of(ans)), lambda g: to_y(-g * quotient)


remainder = Primitive(
    "remainder", np.remainder, _remainder_vjps, numpy=[np.remainder], methods=["__mod__"],
    reflected=["__rmod__"],
    doc="Elementwise ``x mod y`` with the sign of ``y`` (``np.mod``, ``%``), with broadcasting. "
    "The gradient is 1 for ``x`` and ``-floor(x / y)`` for ``y``, also at the jumps.",
)  # fmt: skip
mod = remainder

# --- NaN and infinity, real and imaginary parts ---------------------------------------------


def _nan_to_num(
    x: Any, *, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
    neginf: float | None = None,
) -> Any:  # fmt: skip
    """``x`` with NaN and infinities replaced by finite numbers (NumPy's defaults: 0 and the
    dtype's largest magnitudes). The gradient flows where ``x`` is finite, and nowhere else.
    ``copy=False`` is accepted, but a Tensor is never changed in place: the result is new."""
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def _nan_to_num_vjps(ans: Any, x: Any, **replacements: Any) -> tuple[Any]:
    finite = np.isfinite(stop_gradient(x))
    return (lambda g: g * finite,)


nan_to_num = Primitive("nan_to_num", _nan_to_num, _nan_to_num_vjps, numpy=[np.nan_to_num])
real = Primitive(
    "real", np.real, lambda ans, x: (identity_vjp,), numpy=[np.real], properties=["real"],
    doc="The real part: real input itself (complex numbers are not supported).",
)  # fmt: skip
real_if_close = Primitive(
    "real_if_close", lambda x, *, tol=100: np.real_if_close(x, tol=tol),
    lambda ans, x, **tol: (identity_vjp,), numpy=[np.real_if_close],
    doc="Complex input with imaginary parts within ``tol`` machine epsilons of 0 made real: "
    "real input itself (complex numbers are not supported).",
)  # fmt: skip
imag = Primitive(
    "imag", np.imag, lambda ans, x: (lambda g: g * 0,), numpy=[np.imag], properties=["imag"],
    doc="The imaginary part: zeros for real input, with gradient 0 (complex numbers are "
    "not supported).",
)  # fmt: skip
conj = Primitive(
    "conj", np.conjugate, lambda ans, x: (identity_vjp,), numpy=[np.conjugate],
    methods=["conj", "conjugate"],
    doc="The complex conjugate: real input itself (complex numbers are not supported).",
)  # fmt: skip
conjugate = conj

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


def _beats_nan(compare: Any) -> Any:
    """``compare``, where also a number beats a NaN (fmax and fmin ignore NaNs)."""
    return lambda a, b: compare(a, b) | (np.isnan(b) & ~np.isnan(a))


_fmax = Primitive(
    "fmax", lambda x, y, *, tie_share: np.fmax(x, y),
    _pairwise_extremum_vjps(_beats_nan(np.greater)),
)  # fmt: skip
_fmin = Primitive(
    "fmin", lambda x, y, *, tie_share: np.fmin(x, y), _pairwise_extremum_vjps(_beats_nan(np.less))
)


@implements(np.fmax)
def fmax(x: Any, y: Any) -> Any:
    """Elementwise maximum ignoring NaNs, with broadcasting; ties as in :func:`maximum`.

    Where one argument is NaN the result is the other one, and so is the gradient's path.
    """
    return _fmax(x, y, tie_share=_tie_share(x, y))


@implements(np.fmin)
def fmin(x: Any, y: Any) -> Any:
    """Elementwise minimum ignoring NaNs, with broadcasting; ties as in :func:`maximum`."""
    return _fmin(x, y, tie_share=_tie_share(x, y))


def _clip_vjps(ans: Any, x: Any, *, lo: Any, hi: Any) -> tuple[Any]:
    x_data = stop_gradient(x)
    # Not written in place: under tg.jit the comparisons are traced and the ones are not.
    inside = np.ones(shape_of(ans), dtype=bool)
    if lo is not None:
        inside = inside & (x_data > lo)
    if hi is not None:
        inside = inside & (x_data < hi)
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
    condition = stop_gradient(condition)
    if not isinstance(condition, Tracer):
        condition = np.asarray(condition)
    return _where(x, y, condition=condition)


@implements(np.select)
def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """Element by element, the first entry of ``choicelist`` whose condition in ``condlist``
    holds, else ``default``; everything broadcast together, as ``np.select``.

    Built from :func:`where` (the last pair innermost), so the gradient flows to the choice
    selected at each element, and to ``default`` where no condition holds. The conditions
    are boolean arrays and have no gradient; a Tensor there counts by value.
    """
    if len(condlist) != len(choicelist):
        raise ValueError(
            f"select: condlist has {len(condlist)} conditions but choicelist has "
            f"{len(choicelist)} choices; they must be of the same length"
        )
    if not condlist:
        raise ValueError("select: an empty condition list is not possible")
    conditions = [as_array(stop_gradient(c)) for c in condlist]
    for i, condition in enumerate(conditions):
        if condition.dtype != np.bool_:
            raise TypeError(
                f"select: entry {i} of condlist has dtype {condition.dtype}; conditions must "
                "be boolean arrays"
            )
    result = default
    for condition, choice in zip(reversed(conditions), reversed(choicelist), strict=True):
        result = where(condition, choice, result)
    return result
