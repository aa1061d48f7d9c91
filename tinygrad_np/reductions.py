"""Reductions and the softmax family: ops over an axis.

A reduction's cotangent has the reduced shape; its VJP spreads it back over the
reduced axes (``_spread``). ``max``/``min`` give it to the extremal elements, ties
sharing it equally. float16 sums are carried out in float32, as ``np.mean`` itself
does, and rounded back: NumPy's float16 sum along a strided axis accumulates in
float16 (10**4 halves sum to 1024.0) and overflows past 65504.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np.elementwise import exp
from tinygrad_np.extend import Primitive, shape_of
from tinygrad_np.shape import broadcast_to, reshape
from tinygrad_np.tensor import stop_gradient

__all__ = [
    "log_softmax",
    "logsumexp",
    "max",
    "mean",
    "min",
    "softmax",
    "sum",
]

Axis = int | tuple[int, ...] | None


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    return tuple(sorted(normalize_axis_index(int(a), ndim) for a in axes))


def _keepdims_shape(shape: tuple[int, ...], axis: Axis) -> tuple[int, ...]:
    axes = _axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _spread(g: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """Broadcast a reduction's cotangent back over the reduced axes."""
    if not keepdims:
        g = reshape(g, shape=_keepdims_shape(shape, axis))
    return broadcast_to(g, shape=shape)


def per_count(g: Any, count: int) -> Any:
    """``g / count``, also where ``count`` overflows ``g``'s dtype.

    float16 holds at most 65504, so ``g / 70000`` would be ``g / inf = 0``; there the
    reciprocal, which float16 can hold (if only as a subnormal), is used instead.
    """
    if count <= float(np.finfo(np.result_type(stop_gradient(g))).max):
        return g / count
    return g * (1 / count)


def _sum(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (all axes when ``None``)."""
    if np.result_type(x) == np.float16:  # NumPy sums a strided float16 axis in float16
        return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float32).astype(np.float16)
    return np.sum(x, axis=axis, keepdims=keepdims)


def _mean(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes when ``None``)."""
    return np.mean(x, axis=axis, keepdims=keepdims)


def _mean_vjps(ans: Any, x: Any, *, axis: Axis = None, keepdims: bool = False) -> tuple[Any]:
    shape = shape_of(x)
    count = math.prod(shape[a] for a in _axes(axis, len(shape)))
    return (lambda g: _spread(per_count(g, count), shape, axis, keepdims),)


def _max(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return np.max(x, axis=axis, keepdims=keepdims)


def _min(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis``; tied minima share the gradient equally."""
    return np.min(x, axis=axis, keepdims=keepdims)


def _extremum_vjps(ans: Any, x: Any, *, axis: Axis = None, keepdims: bool = False) -> tuple[Any]:
    # Ties share the gradient equally: the mask marks every extremal element.
    shape, values = shape_of(x), stop_gradient(x)
    extremum = stop_gradient(ans)
    if not keepdims:
        extremum = np.reshape(extremum, _keepdims_shape(shape, axis))
    mask = values == extremum
    if np.isnan(extremum).any():  # a NaN is the extremum of its slice: it takes the gradient
        mask |= np.isnan(values) & np.isnan(extremum)
    share = (mask / np.sum(mask, axis=axis, keepdims=True)).astype(np.result_type(values))
    return (lambda g: _spread(g, shape, axis, keepdims) * share,)


sum = Primitive(
    "sum",
    _sum,
    lambda ans, x, *, axis=None, keepdims=False: (
        lambda g: _spread(g, shape_of(x), axis, keepdims),
    ),
    numpy=[np.sum],
)
mean = Primitive("mean", _mean, _mean_vjps, numpy=[np.mean])
max = Primitive("max", _max, _extremum_vjps, numpy=[np.max, np.amax])
min = Primitive("min", _min, _extremum_vjps, numpy=[np.min, np.amin])

# --- the softmax family ------------------------------------------------------------------


def _accumulating(x: Any) -> Any:
    """``x`` in a dtype whose sums do not overflow: float16 sums beyond 65504 would be inf,
    so float16 is computed in float32 (as ``np.mean`` does) and the result rounded back."""
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _logsumexp(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x), axis))`` without overflow."""
    dtype = np.result_type(x)
    x = _accumulating(x)
    shift = np.max(x, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)  # rows of -inf stay -inf, not nan
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer for such rows
        out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    out = out if keepdims else np.reshape(out, np.shape(np.sum(x, axis=axis)))
    return out.astype(dtype, copy=False)


def _logsumexp_vjps(ans: Any, x: Any, *, axis: Axis = None, keepdims: bool = False) -> tuple[Any]:
    shape = shape_of(x)
    return (
        lambda g: _spread(g, shape, axis, keepdims) * exp(x - _spread(ans, shape, axis, keepdims)),
    )


def _log_softmax(x: Any, *, axis: int = -1) -> Any:
    """``x - logsumexp(x, axis, keepdims=True)``, computed stably."""
    dtype = np.result_type(x)
    x = _accumulating(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return out.astype(dtype, copy=False)


def _softmax(x: Any, *, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x), axis)``, computed stably."""
    dtype = np.result_type(x)
    x = _accumulating(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e.astype(dtype, copy=False)


logsumexp = Primitive("logsumexp", _logsumexp, _logsumexp_vjps, methods=["logsumexp"])
log_softmax = Primitive(
    "log_softmax",
    _log_softmax,
    lambda ans, x, *, axis=-1: (lambda g: g - exp(ans) * sum(g, axis=axis, keepdims=True),),
    methods=["log_softmax"],
)
softmax = Primitive(
    "softmax",
    _softmax,
    lambda ans, x, *, axis=-1: (lambda g: ans * (g - sum(g * ans, axis=axis, keepdims=True)),),
    methods=["softmax"],
)
