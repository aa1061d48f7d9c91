"""The op catalogue: every primitive with its forward and its VJPs side by side.

Each entry is ``Primitive(name, forward, vjps)``. ``forward`` gets NumPy values;
``vjps(ans, *args, **kwargs)`` returns one closure per positional argument that
maps the output's cotangent ``g`` to that argument's gradient. The closures use
only differentiable ops (operators and the functions of this module), so a
gradient can itself be differentiated. Adding an op means adding one entry here.

Conventions: gradients of broadcasting ops are summed back to the operand's
shape (``unbroadcast``); masks and indices are plain arrays (no gradient).
"""

from __future__ import annotations

import builtins
import functools
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np.tensor import Primitive, Tensor, _data, identity_vjp

__all__ = [
    "absolute",
    "add",
    "broadcast_to",
    "clip",
    "div",
    "dot",
    "exp",
    "expm1",
    "getitem",
    "log",
    "log1p",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "per_count",
    "pow",
    "relu",
    "reshape",
    "scatter_add",
    "sigmoid",
    "softmax",
    "sqrt",
    "square",
    "stop_gradient",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "unbroadcast",
    "where",
]

Axis = int | tuple[int, ...] | None


def _shape(x: Any) -> tuple[int, ...]:
    if type(x) is np.ndarray:
        return x.shape  # type: ignore[no-any-return]
    if isinstance(x, float | int):
        return ()
    shape = getattr(x, "shape", None)
    return np.shape(x) if shape is None else tuple(shape)


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    return tuple(sorted(normalize_axis_index(int(a), ndim) for a in axes))


def _keepdims_shape(shape: tuple[int, ...], axis: Axis) -> tuple[int, ...]:
    axes = _axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes along which an operand of ``shape`` was broadcast."""
    shape = tuple(shape)
    g_shape = g.shape if type(g) is np.ndarray else _shape(g)
    return g if g_shape == shape else _summing_to(shape, g_shape)(g)


@functools.lru_cache(maxsize=256)  # pure, and asked the same question at every step
def _summing_to(shape: tuple[int, ...], ans_shape: tuple[int, ...]) -> Any:
    """A function summing an array of ``ans_shape`` down to broadcast-compatible ``shape``.

    Plain arrays (the common case) are summed by ``np.add.reduce``, which is what
    ``ndarray.sum`` calls minus a Python wrapper; Tensors by their method, so that the
    sum is recorded.
    """
    lead = len(ans_shape) - len(shape)  # leading axes added by broadcasting
    axes = tuple(range(lead))
    if 1 not in shape:
        return lambda g: np.add.reduce(g, axes) if type(g) is np.ndarray else g.sum(axis=axes)
    # and axes stretched from length 1, summed keeping their place
    axes += tuple(lead + i for i, n in enumerate(shape) if n == 1 and ans_shape[lead + i] != 1)
    return lambda g: (
        np.add.reduce(g, axes).reshape(shape)
        if type(g) is np.ndarray
        else g.sum(axis=axes).reshape(shape)
    )


def _sum_to(x: Any, ans_shape: tuple[int, ...]) -> Any:
    """The VJP of broadcasting operand ``x`` up to ``ans_shape``.

    Worked out when the op is recorded: its cotangents will all have ``ans_shape``.
    """
    shape = x.shape if type(x) is np.ndarray else _shape(x)
    return identity_vjp if shape == ans_shape else _summing_to(shape, ans_shape)


# --- elementwise arithmetic ---------------------------------------------------------


# `to_x = _sum_to(x, shape(ans))` sums a cotangent of ans's shape back to x's shape.
def _add_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    shape = ans.shape if type(ans) is np.ndarray else _shape(ans)
    return _sum_to(x, shape), _sum_to(y, shape)


_add = Primitive("add", np.add, _add_vjps)


def _sub_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    shape = _shape(ans)
    to_y = _sum_to(y, shape)
    return _sum_to(x, shape), lambda g: to_y(-g)


def _mul_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    shape = _shape(ans)
    to_x, to_y = _sum_to(x, shape), _sum_to(y, shape)
    return lambda g: to_x(g * y), lambda g: to_y(g * x)


def _div_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    shape = _shape(ans)
    to_x, to_y = _sum_to(x, shape), _sum_to(y, shape)
    return lambda g: to_x(g / y), lambda g: to_y(-g * ans / y)


_sub = Primitive("sub", np.subtract, _sub_vjps)
_mul = Primitive("mul", np.multiply, _mul_vjps)
_div = Primitive("div", np.divide, _div_vjps)
_neg = Primitive("neg", np.negative, lambda ans, x: (lambda g: -g,))


def _pow_vjps(ans: Any, x: Any, y: Any) -> tuple[Any, Any]:
    shape = _shape(ans)
    to_x, to_y = _sum_to(x, shape), _sum_to(y, shape)
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
    base = np.asarray(x, _data(ans).dtype) if isinstance(x, int | float) else x
    return dx, lambda g: to_y(g * ans * log(where(base == 0, 1, base)))


_pow = Primitive("pow", np.power, _pow_vjps)


def add(x: Any, y: Any) -> Any:
    """``x + y`` with broadcasting."""
    return _add(x, y)


def sub(x: Any, y: Any) -> Any:
    """``x - y`` with broadcasting."""
    return _sub(x, y)


def mul(x: Any, y: Any) -> Any:
    """``x * y`` with broadcasting."""
    return _mul(x, y)


def div(x: Any, y: Any) -> Any:
    """``x / y`` with broadcasting."""
    return _div(x, y)


def neg(x: Any) -> Any:
    """``-x``."""
    return _neg(x)


def pow(x: Any, y: Any) -> Any:
    """``x ** y``; differentiable in ``x`` and, where ``x > 0``, in ``y``."""
    return _pow(x, y)


# --- matrix product -------------------------------------------------------------------


def _matmul_forward(a: Any, b: Any) -> Any:
    try:
        return np.matmul(a, b)
    except ValueError:
        raise ValueError(
            f"matmul: shapes {np.shape(a)} and {np.shape(b)} are incompatible "
            "(the last axis of the first must match the "
            + ("only" if np.ndim(b) == 1 else "second-to-last")
            + " axis of the second, batch axes must broadcast, and neither may be 0-d)"
        ) from None


def _swap_last(x: Any) -> Any:
    nd = len(_shape(x))
    return transpose(x, (*range(nd - 2), nd - 1, nd - 2))


def _matmul_vjps(ans: Any, a: Any, b: Any) -> tuple[Any, Any]:
    a_shape = a.shape if type(a) is np.ndarray else _shape(a)
    b_shape = b.shape if type(b) is np.ndarray else _shape(b)
    if len(a_shape) == 2 and len(b_shape) == 2:  # the common case, kept short
        return (lambda g: g @ b.T), (lambda g: a.T @ g)
    if len(a_shape) == 1 and len(b_shape) == 1:  # inner product
        return (lambda g: g * b), (lambda g: g * a)
    # Treat a 1-d operand as a matrix with a unit axis, as NumPy does, then drop it.
    a2 = a if len(a_shape) > 1 else reshape(a, (1, a_shape[0]))
    b2 = b if len(b_shape) > 1 else reshape(b, (b_shape[0], 1))
    a2_shape, b2_shape = _shape(a2), _shape(b2)

    def as_matrix_cotangent(g: Any) -> Any:
        shape = _shape(g)
        if len(a_shape) == 1:
            shape = (*shape[:-1], 1, shape[-1]) if len(b_shape) > 1 else shape
        if len(b_shape) == 1:
            shape = (*shape, 1)
        return reshape(g, shape) if shape != _shape(g) else g

    def da(g: Any) -> Any:
        return reshape(unbroadcast(as_matrix_cotangent(g) @ _swap_last(b2), a2_shape), a_shape)

    def db(g: Any) -> Any:
        return reshape(unbroadcast(_swap_last(a2) @ as_matrix_cotangent(g), b2_shape), b_shape)

    return da, db


_matmul = Primitive("matmul", _matmul_forward, _matmul_vjps)


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` with NumPy's rules for 1-d, 2-d and batched operands."""
    return _matmul(a, b)


# --- elementwise functions ------------------------------------------------------------


def _sigmoid_forward(x: Any) -> Any:
    # exp(-log(1 + exp(-x))) keeps full relative precision for large |x| of either sign.
    return np.exp(-np.logaddexp(0, -x))


_exp = Primitive("exp", np.exp, lambda ans, x: (lambda g: g * ans,))
_log = Primitive("log", np.log, lambda ans, x: (lambda g: g / x,))
_tanh = Primitive("tanh", np.tanh, lambda ans, x: (lambda g: g * (1 - ans * ans),))
# sigmoid' = sigmoid(x) sigmoid(-x): 1 - sigmoid(x) would round to 0 for large x.
_sigmoid = Primitive(
    "sigmoid", _sigmoid_forward, lambda ans, x: (lambda g: g * (ans * sigmoid(-x)),)
)


def _relu_vjps(ans: Any, x: Any) -> tuple[Any]:
    # Save the boolean mask, not the output: an eighth of the memory, and the output can be
    # freed once the op that consumed it has run its own VJP. The mask is a plain array, so
    # relu's derivative at 0 is 0.
    positive = ans > 0
    return (lambda g: g * positive,)


_relu = Primitive("relu", lambda x: np.maximum(x, 0), _relu_vjps)


def exp(x: Any) -> Any:
    """Elementwise ``e**x``."""
    return _exp(x)


def log(x: Any) -> Any:
    """Elementwise natural logarithm."""
    return _log(x)


def tanh(x: Any) -> Any:
    """Elementwise hyperbolic tangent."""
    return _tanh(x)


def sigmoid(x: Any) -> Any:
    """Elementwise logistic function ``1 / (1 + exp(-x))``, computed stably."""
    return _sigmoid(x)


def relu(x: Any) -> Any:
    """Elementwise ``max(x, 0)``; its derivative at 0 is taken as 0."""
    return _relu(x)


# --- reductions ---------------------------------------------------------------------


def _spread(g: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """Broadcast a reduction's cotangent back over the reduced axes."""
    if not keepdims:
        g = reshape(g, _keepdims_shape(shape, axis))
    return broadcast_to(g, shape)


def _reduced_count(shape: tuple[int, ...], axis: Axis) -> int:
    return int(np.prod([shape[a] for a in _axes(axis, len(shape))], dtype=np.int64))


def per_count(g: Any, count: int) -> Any:
    """``g / count``, also where ``count`` overflows ``g``'s dtype.

    float16 holds at most 65504, so ``g / 70000`` would be ``g / inf = 0``; there the
    reciprocal, which float16 can hold (if only as a subnormal), is used instead.
    """
    if count <= float(np.finfo(np.result_type(_data(g))).max):
        return g / count
    return g * (1 / count)


_sum = Primitive(
    "sum",
    np.sum,
    lambda ans, x, axis=None, keepdims=False: (lambda g: _spread(g, _shape(x), axis, keepdims),),
)
_mean = Primitive(
    "mean",
    np.mean,
    lambda ans, x, axis=None, keepdims=False: (
        lambda g: _spread(per_count(g, _reduced_count(_shape(x), axis)), _shape(x), axis, keepdims),
    ),
)


def _extremum_vjps(ans: Any, x: Any, axis: Axis = None, keepdims: bool = False) -> tuple[Any]:
    # Ties share the gradient equally: the mask marks every extremal element.
    shape = _shape(x)
    extremum = _data(ans) if keepdims else np.reshape(_data(ans), _keepdims_shape(shape, axis))
    mask = _data(x) == extremum
    if np.isnan(extremum).any():  # a NaN is the extremum of its slice: it takes the gradient
        mask |= np.isnan(_data(x)) & np.isnan(extremum)
    share = (mask / np.sum(mask, axis=axis, keepdims=True)).astype(np.result_type(_data(x)))
    return (lambda g: _spread(g, shape, axis, keepdims) * share,)


_max = Primitive("max", np.max, _extremum_vjps)
_min = Primitive("min", np.min, _extremum_vjps)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (all axes when ``None``)."""
    return _sum(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes when ``None``)."""
    return _mean(x, axis=axis, keepdims=keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return _max(x, axis=axis, keepdims=keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis``; tied minima share the gradient equally."""
    return _min(x, axis=axis, keepdims=keepdims)


# --- shape ----------------------------------------------------------------------------

_reshape = Primitive(
    "reshape", np.reshape, lambda ans, x, shape: (lambda g: reshape(g, _shape(x)),)
)


def _transpose_vjps(ans: Any, x: Any, axes: tuple[int, ...] | None = None) -> tuple[Any]:
    inverse = None if axes is None else tuple(np.argsort(axes))
    return (lambda g: transpose(g, inverse),)


_transpose = Primitive("transpose", np.transpose, _transpose_vjps)
_broadcast_to = Primitive(
    "broadcast_to",
    np.broadcast_to,
    lambda ans, x, shape: (_sum_to(x, _shape(ans)),),
)


def reshape(x: Any, shape: int | tuple[int, ...]) -> Any:
    """``x`` with a new shape (one axis may be -1)."""
    return _reshape(x, shape=shape)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    """Permute axes (reverse them when ``axes`` is ``None``; negative axes count from the end)."""
    if axes is not None:  # normalized, so that the VJP can invert the permutation by argsort
        ndim = len(_shape(x))
        axes = tuple(normalize_axis_index(int(a), ndim) for a in axes)
    return _transpose(x, axes=axes)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """``x`` broadcast to ``shape`` (a read-only view of the same data)."""
    return _broadcast_to(x, shape=tuple(shape))


# --- indexing ---------------------------------------------------------------------------


def _is_basic(index: Any) -> bool:
    """True when ``x[index]`` is a view, so no element can be selected twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.all(
        p is None or p is Ellipsis or isinstance(p, slice | int | np.integer) for p in parts
    )


def _scatter_add_forward(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    out = np.zeros(shape, dtype=np.result_type(g))
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)  # repeated indices accumulate
    return out


_getitem = Primitive(
    "getitem",
    lambda x, index: x[index],
    lambda ans, x, index: (lambda g: scatter_add(g, index, _shape(x)),),
)
_scatter_add = Primitive(
    "scatter_add",
    _scatter_add_forward,
    lambda ans, g, index, shape: (lambda gg: getitem(gg, index),),
)


def scatter_add(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``index`` (the transpose of ``x[index]``)."""
    return _scatter_add(g, index=index, shape=shape)


def getitem(x: Any, index: Any) -> Any:
    """``x[index]``: basic slicing or integer-array indexing; repeats accumulate."""
    if isinstance(index, tuple):
        index = tuple(_data(i) for i in index)
    else:
        index = _data(index)
    return _getitem(x, index=index)


# --- softmax family -----------------------------------------------------------------


def _accumulating(x: Any) -> Any:
    """``x`` in a dtype whose sums do not overflow: float16 sums beyond 65504 would be inf,
    so float16 is computed in float32 (as ``np.mean`` does) and the result rounded back."""
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _logsumexp_forward(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    dtype = np.result_type(x)
    x = _accumulating(x)
    shift = np.max(x, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)  # rows of -inf stay -inf, not nan
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer for such rows
        out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    out = out if keepdims else np.reshape(out, np.shape(np.sum(x, axis=axis)))
    return out.astype(dtype, copy=False)


def _logsumexp_vjps(ans: Any, x: Any, axis: Axis = None, keepdims: bool = False) -> tuple[Any]:
    shape = _shape(x)
    return (
        lambda g: _spread(g, shape, axis, keepdims) * exp(x - _spread(ans, shape, axis, keepdims)),
    )


def _log_softmax_forward(x: Any, axis: int = -1) -> Any:
    dtype = np.result_type(x)
    x = _accumulating(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return out.astype(dtype, copy=False)


def _softmax_forward(x: Any, axis: int = -1) -> Any:
    dtype = np.result_type(x)
    x = _accumulating(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e.astype(dtype, copy=False)


_logsumexp = Primitive("logsumexp", _logsumexp_forward, _logsumexp_vjps)
_log_softmax = Primitive(
    "log_softmax",
    _log_softmax_forward,
    lambda ans, x, axis=-1: (lambda g: g - exp(ans) * sum(g, axis, keepdims=True),),
)
_softmax = Primitive(
    "softmax",
    _softmax_forward,
    lambda ans, x, axis=-1: (lambda g: ans * (g - sum(g * ans, axis, keepdims=True)),),
)


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x), axis))`` without overflow."""
    return _logsumexp(x, axis=axis, keepdims=keepdims)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x, axis, keepdims=True)``, computed stably."""
    return _log_softmax(x, axis=axis)


def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x), axis)``, computed stably."""
    return _softmax(x, axis=axis)


# --- no gradient ----------------------------------------------------------------------


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` as a constant: no gradient flows through it, at any level."""
    return _data(x)


# --- ops NumPy code needs (maximum, minimum, where, clip, ...) ------------------------------
# tinygrad_np.numpy_dispatch maps NumPy's spellings (np.maximum, np.where, np.dot, ...) onto
# these; they are public too (tg.maximum, ...). Where a derivative does not exist we choose:
#   * A plain (non-Tensor) number or array facing a Tensor is a bound: np.maximum(z, c),
#     np.minimum(z, c) and np.clip(z, lo, hi) pass the gradient to z only where z is strictly
#     beyond the bound, or strictly inside the bounds. So np.maximum(0, z) is tg.relu, with
#     derivative 0 at z == 0, whichever side the 0 is written on.
#   * Two Tensors (constant ones included) that tie share the gradient equally, as tied
#     maxima of tg.max do, so np.maximum(x, x) has derivative 1, like x.
#   * abs has derivative 0 at 0 (np.sign's value there).
# Masks and weights are plain arrays built from the data: they are piecewise constant.


def _pairwise_extremum_vjps(wins: Any) -> Any:
    """VJPs of an elementwise max or min; ``wins(a, b)`` marks where ``a`` is the result."""

    def vjps(ans: Any, x: Any, y: Any, tie_share: float) -> tuple[Any, Any]:
        x_data, y_data = _data(x), _data(y)
        x_wins, y_wins = wins(x_data, y_data), wins(y_data, x_data)
        if tie_share:
            dtype = np.result_type(_data(ans))
            ties = (x_data == y_data) * dtype.type(tie_share)
            x_wins, y_wins = x_wins + ties, y_wins + ties  # weights in ans's dtype
        shape = _shape(ans)
        to_x, to_y = _sum_to(x, shape), _sum_to(y, shape)
        return lambda g: to_x(g * x_wins), lambda g: to_y(g * y_wins)

    return vjps


_maximum = Primitive(
    "maximum",
    lambda x, y, tie_share: np.maximum(x, y),
    _pairwise_extremum_vjps(np.greater),
)
_minimum = Primitive(
    "minimum",
    lambda x, y, tie_share: np.minimum(x, y),
    _pairwise_extremum_vjps(np.less),
)


def _tie_share(x: Any, y: Any) -> float:
    return 0.5 if isinstance(x, Tensor) and isinstance(y, Tensor) else 0.0


def maximum(x: Any, y: Any) -> Any:
    """Elementwise maximum with broadcasting.

    Where ``x == y``: two Tensors share the gradient equally; a plain number or array is a
    bound, and the Tensor gets no gradient there (``maximum(z, 0)`` is ``relu``).
    """
    return _maximum(x, y, tie_share=_tie_share(x, y))


def minimum(x: Any, y: Any) -> Any:
    """Elementwise minimum with broadcasting; ties as in :func:`maximum`."""
    return _minimum(x, y, tie_share=_tie_share(x, y))


def _clip_vjps(ans: Any, x: Any, lo: Any, hi: Any) -> tuple[Any]:
    x_data = _data(x)
    inside = np.ones(np.shape(_data(ans)), dtype=bool)
    if lo is not None:
        inside &= x_data > lo
    if hi is not None:
        inside &= x_data < hi
    to_x = _sum_to(x, _shape(ans))
    return (lambda g: to_x(g * inside),)


_clip = Primitive("clip", lambda x, lo, hi: np.clip(x, lo, hi), _clip_vjps)


def clip(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` limited to ``[lo, hi]`` (``None`` for no bound), with broadcasting.

    With plain bounds the gradient passes where ``lo < x < hi`` strictly. Tensor bounds are
    differentiated too: that is ``minimum(maximum(x, lo), hi)``, with its tie rule.
    """
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        out = x if lo is None else maximum(x, lo)
        return out if hi is None else minimum(out, hi)
    return _clip(x, lo=lo, hi=hi)


def _where_vjps(ans: Any, x: Any, y: Any, condition: Any) -> tuple[Any, Any]:
    shape = _shape(ans)
    to_x, to_y = _sum_to(x, shape), _sum_to(y, shape)
    return (
        lambda g: to_x(where(condition, g, 0)),
        lambda g: to_y(where(condition, 0, g)),
    )


_where = Primitive("where", lambda x, y, condition: np.where(condition, x, y), _where_vjps)


def where(condition: Any, x: Any, y: Any) -> Any:
    """``x`` where ``condition`` holds, else ``y``, with broadcasting.

    The gradient flows to ``x`` where the condition holds and to ``y`` elsewhere. The
    condition is only tested for truth, which has no gradient: a Tensor there counts by value.

    The trap: both branches are computed everywhere, and so are their VJPs. In
    ``where(x > 0, log(x), 0)`` the unselected ``log(x)`` at ``x = 0`` gets a zero
    cotangent, and log's VJP turns ``0 / 0`` into NaN, which then reaches ``x``'s
    gradient. Make the unselected inputs harmless instead:
    ``safe = where(x > 0, x, 1); where(x > 0, log(safe), 0)``.
    """
    return _where(x, y, condition=np.asarray(_data(condition)))


_sqrt = Primitive("sqrt", np.sqrt, lambda ans, x: (lambda g: g / (2 * ans),))
_square = Primitive("square", np.square, lambda ans, x: (lambda g: g * (2 * x),))
_log1p = Primitive("log1p", np.log1p, lambda ans, x: (lambda g: g / (1 + x),))
# exp(x), not ans + 1: near ans = -1 (x << 0) the sum would lose every digit.
_expm1 = Primitive("expm1", np.expm1, lambda ans, x: (lambda g: g * exp(x),))
_absolute = Primitive("absolute", np.absolute, lambda ans, x: (lambda g: g * np.sign(_data(x)),))


def sqrt(x: Any) -> Any:
    """Elementwise square root (the gradient is infinite at 0)."""
    return _sqrt(x)


def square(x: Any) -> Any:
    """Elementwise ``x * x``."""
    return _square(x)


def log1p(x: Any) -> Any:
    """Elementwise ``log(1 + x)``, accurate for small ``x``."""
    return _log1p(x)


def expm1(x: Any) -> Any:
    """Elementwise ``exp(x) - 1``, accurate for small ``x``."""
    return _expm1(x)


def absolute(x: Any) -> Any:
    """Elementwise ``|x|``; its derivative at 0 is taken as 0."""
    return _absolute(x)


_dot = Primitive("dot", np.dot, _matmul_vjps)


def dot(a: Any, b: Any) -> Any:
    """``np.dot(a, b)``: a product for 0-d operands, else a sum over the last axis of ``a``
    and the second-to-last (or only) axis of ``b``.

    Only for ``a.ndim >= 2`` and ``b.ndim >= 3`` does this differ from ``matmul`` (whose
    batch axes broadcast): there every row of ``a`` meets every matrix of ``b``, and the
    result has shape ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``.
    """
    a_shape, b_shape = _shape(a), _shape(b)
    if not a_shape or not b_shape:
        return mul(a, b)
    contracted = -2 if len(b_shape) > 1 else -1
    if a_shape[-1] != b_shape[contracted]:
        raise ValueError(
            f"dot: shapes {a_shape} and {b_shape} not aligned: the last axis of the first "
            f"({a_shape[-1]}) must match the "
            + ("second-to-last" if contracted == -2 else "only")
            + f" axis of the second ({b_shape[contracted]})"
        )
    if len(a_shape) == 1 or len(b_shape) <= 2:
        return _dot(a, b)  # here dot is matmul, computed by np.dot itself
    # Move b's contracted axis to the front, flatten both sides to matrices, multiply once.
    n, b_ndim = a_shape[-1], len(b_shape)
    b_front = transpose(b, (b_ndim - 2, *range(b_ndim - 2), b_ndim - 1))
    columns = int(np.prod(b_shape[:-2], dtype=np.int64)) * b_shape[-1]
    b_matrix = reshape(b_front, (n, columns))
    a_rows = int(np.prod(a_shape[:-1], dtype=np.int64))
    product = matmul(reshape(a, (a_rows, n)), b_matrix)
    return reshape(product, (*a_shape[:-1], *b_shape[:-2], b_shape[-1]))


# Tensor's NumPy protocol methods delegate to numpy_dispatch, whose tables need every op
# above: importing it last here loads it as soon as the op table is complete.
from tinygrad_np import numpy_dispatch as numpy_dispatch  # noqa: E402
