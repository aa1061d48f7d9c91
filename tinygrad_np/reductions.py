"""Reductions, statistics and the softmax family: ops over an axis.

A reduction's cotangent has the reduced shape; its VJP spreads it back over the
reduced axes (``_spread``). ``max``/``min`` give it to the extremal elements, ties
sharing it equally (so does ``ptp``, their difference). float16 sums are carried out in
float32, as ``np.mean`` itself does, and rounded back: NumPy's float16 sum along a strided
axis accumulates in float16 (10**4 halves sum to 1024.0) and overflows past 65504.

Where a derivative needs a choice:

* ``prod``'s gradient is the product of the other elements, also where elements are 0
  (``ans / x`` would be 0/0 there, which is what autograd computes): when a slice holds a
  zero the products of the others are built with multiplications alone, a pairwise tree
  along the axis, so every order of derivative is right there too, as in JAX;
* ``std`` of a constant slice (``std = 0``) has gradient 0, a subgradient of the norm it is,
  as ``absolute`` has at 0 (PyTorch takes 0 too; JAX's ``sqrt`` of the variance gives NaN);
* ``var`` and ``std`` with ``ddof`` at or beyond the slice length divide by ``n - ddof <= 0``
  as NumPy does, so value and gradient are infinite or NaN.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np.construction import asarray
from tinygrad_np.elementwise import exp, where
from tinygrad_np.extend import Primitive, implements, shape_of
from tinygrad_np.jit import Tracer, might
from tinygrad_np.jit import asarray as as_array
from tinygrad_np.shape import broadcast_to, reshape, scatter_add, transpose
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "cumsum",
    "diff",
    "log_softmax",
    "logsumexp",
    "max",
    "mean",
    "min",
    "prod",
    "ptp",
    "softmax",
    "std",
    "sum",
    "var",
]
# ``trace`` (np.trace) is tg.reductions.trace: tg.trace is the transform that prints a tape.

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
    nan_extremum = np.isnan(extremum)
    if might(nan_extremum):  # a NaN is the extremum of its slice: it takes the gradient
        mask = mask | (np.isnan(values) & nan_extremum)
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
_mean_primitive = Primitive("mean", _mean, _mean_vjps)


@implements(np.mean)
def mean(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes when ``None``).

    ``x`` may be a (nested) list or tuple of Tensors, arrays and numbers, built into one
    array first as ``np.mean`` does: ``tg.mean([t1, t2])``. (NumPy's own ``np.mean([t1, t2])``
    converts the list to an ndarray without handing the call to the Tensors, which a traced
    Tensor refuses with a TypeError naming ``tg.mean``.)
    """
    return _mean_primitive(asarray(x), axis=axis, keepdims=keepdims)


max = Primitive("max", _max, _extremum_vjps, numpy=[np.max, np.amax])
min = Primitive("min", _min, _extremum_vjps, numpy=[np.min, np.amin])


@implements(np.ptp)
def ptp(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """``max - min`` over ``axis`` (peak to peak); tied extrema share the gradient equally."""
    return max(x, axis=axis, keepdims=keepdims) - min(x, axis=axis, keepdims=keepdims)


# --- products ------------------------------------------------------------------------------


def _prod(x: Any, *, axis: Axis = None, keepdims: bool = False) -> Any:
    """Product over ``axis`` (all axes when ``None``); gradients are right where elements are 0."""
    return np.prod(x, axis=axis, keepdims=keepdims)


def _prod_vjps(ans: Any, x: Any, *, axis: Axis = None, keepdims: bool = False) -> tuple[Any]:
    shape, product = shape_of(x), stop_gradient(ans)
    # Where no product is 0 (or inf), no element is 0: each gradient is the product over it.
    no_zero = np.all(product != 0) & np.all(np.isfinite(product))
    if not isinstance(no_zero, Tracer) and no_zero:
        return (lambda g: _spread(g * ans, shape, axis, keepdims) / x,)
    others = _products_of_others(x, _axes(axis, len(shape)))
    if not isinstance(no_zero, Tracer):
        return (lambda g: _spread(g, shape, axis, keepdims) * others,)
    # tg.jit: which formula holds is known only at each call, so both are recorded and the
    # call chooses, as eager execution does (bit for bit). The quick one, where it is not
    # chosen, multiplies by 0 and divides by 1 rather than make 0 / 0 or inf * 0.
    quick_ans, divisor = where(no_zero, ans, 0), where(no_zero, x, 1)
    return (
        lambda g: where(
            no_zero,
            _spread(g * quick_ans, shape, axis, keepdims) / divisor,
            _spread(g, shape, axis, keepdims) * others,
        ),
    )


def _products_of_others(x: Any, axes: tuple[int, ...]) -> Any:
    """For each element, the product of the others in its slice along ``axes``."""
    shape = shape_of(x)
    kept = [a for a in range(len(shape)) if a not in axes]
    order = (*kept, *axes)
    moved = transpose(x, axes=order) if order != tuple(range(len(shape))) else x
    moved_shape = shape_of(moved)
    count = math.prod(shape[a] for a in axes)
    others = _exclusive_products(reshape(moved, shape=(*moved_shape[: len(kept)], count)))
    others = reshape(others, shape=moved_shape)
    if order == tuple(range(len(shape))):
        return others
    return transpose(others, axes=tuple(np.argsort(order).tolist()))


def _exclusive_products(x: Any) -> Any:
    """``out[..., i] = prod(x[..., j] for j != i)``, with multiplications only.

    Neighbours are multiplied in pairs, the pairs' exclusive products found recursively,
    and each element's is its pair's times its partner: O(n) work in log2(n) rounds, exact
    with zeros, and differentiable to any order because it is built from ops.
    """
    *batch, n = shape_of(x)
    dtype = np.result_type(stop_gradient(x))
    if n <= 1:
        return np.ones((*batch, n), dtype)  # the empty product, a constant
    padded_shape = (*batch, n + n % 2)
    if n % 2:  # an odd count: a 1 pairs with the last element
        one = np.zeros(padded_shape, dtype)
        one[..., -1] = 1
        x = scatter_add(x, index=(Ellipsis, slice(0, n)), shape=padded_shape) + one
    evens, odds = x[..., 0::2], x[..., 1::2]
    pairs = _exclusive_products(evens * odds)
    out = scatter_add(pairs * odds, index=(Ellipsis, slice(0, None, 2)), shape=padded_shape)
    out = out + scatter_add(pairs * evens, index=(Ellipsis, slice(1, None, 2)), shape=padded_shape)
    return out[..., :n] if n % 2 else out


prod = Primitive("prod", _prod, _prod_vjps, numpy=[np.prod])


def _cumsum(x: Any, *, axis: int | None = None) -> Any:
    """Cumulative sum along ``axis`` (of the flattened array when ``None``)."""
    return np.cumsum(x, axis=axis)


def _cumsum_vjps(ans: Any, x: Any, *, axis: int | None = None) -> tuple[Any]:
    # The transpose of a running sum is the running sum from the other end.
    shape = shape_of(x)
    if axis is None:
        return (lambda g: reshape(cumsum(g[::-1], axis=0)[::-1], shape=shape),)
    along = normalize_axis_index(axis, len(shape))
    reverse = (slice(None),) * along + (slice(None, None, -1),)
    return (lambda g: cumsum(g[reverse], axis=along)[reverse],)


cumsum: Primitive = Primitive("cumsum", _cumsum, _cumsum_vjps, numpy=[np.cumsum])


@implements(np.diff)
def diff(x: Any, *, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th forward difference along ``axis``: ``x[1:] - x[:-1]``, ``n`` times.

    ``prepend`` and ``append`` are joined to ``x`` along ``axis`` first (a scalar is
    broadcast to one slice); they are differentiated too when they are Tensors.
    """
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    ndim = len(shape_of(x))
    if ndim == 0:
        raise ValueError("diff: x must be at least one-dimensional, got a 0-d value")
    axis = normalize_axis_index(axis, ndim)
    if n == 0:
        return x
    if prepend is not None or append is not None:
        parts = [x] if prepend is None else [_one_slice_if_scalar(prepend, x, axis), x]
        parts += [] if append is None else [_one_slice_if_scalar(append, x, axis)]
        x = _concatenate(parts, axis)
    later = (slice(None),) * axis + (slice(1, None),)
    earlier = (slice(None),) * axis + (slice(None, -1),)
    for _ in range(n):
        x = x[later] - x[earlier]
    return x


def _one_slice_if_scalar(value: Any, like: Any, axis: int) -> Any:
    """``value`` as ``np.diff`` takes it: a scalar fills one slice of ``like`` along ``axis``."""
    if shape_of(value) != ():
        return value if isinstance(value, Tensor) else np.asarray(value)
    shape = list(shape_of(like))
    shape[axis] = 1
    return broadcast_to(value, shape=tuple(shape))


def _concatenate(parts: list[Any], axis: int) -> Any:
    """``parts`` joined along ``axis``: each placed into zeros of the whole, and added."""
    if not any(isinstance(part, Tensor) for part in parts):
        return np.concatenate(parts, axis=axis)
    shapes = [shape_of(part) for part in parts]
    total = list(shapes[0])
    total[axis] = builtins.sum(shape[axis] for shape in shapes)
    out: Any = None
    start = 0
    for part, shape in zip(parts, shapes, strict=True):
        index = (slice(None),) * axis + (slice(start, start + shape[axis]),)
        placed = scatter_add(part, index=index, shape=tuple(total))
        out = placed if out is None else out + placed
        start += shape[axis]
    return out


# --- statistics -----------------------------------------------------------------------------


def _slice_size(shape: tuple[int, ...], axis: Axis) -> int:
    return math.prod(shape[a] for a in _axes(axis, len(shape)))


def _var(
    x: Any, *, axis: Axis = None, ddof: float = 0, keepdims: bool = False, correction: Any = None
) -> Any:
    """Variance over ``axis``, dividing by ``n - ddof`` (``correction`` is another name for it)."""
    return np.var(x, axis=axis, ddof=_ddof(ddof, correction), keepdims=keepdims)


def _std(
    x: Any, *, axis: Axis = None, ddof: float = 0, keepdims: bool = False, correction: Any = None
) -> Any:
    """Standard deviation over ``axis``, ``sqrt(var(x, axis, ddof))``; gradient 0 where it is 0."""
    return np.std(x, axis=axis, ddof=_ddof(ddof, correction), keepdims=keepdims)


def _ddof(ddof: float, correction: Any) -> float:
    if correction is None:
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction are the same argument: give one of them")
    return correction  # type: ignore[no-any-return]


def _centered_per_count(x: Any, axis: Axis, ddof: float) -> Any:
    """``(x - mean(x)) / (n - ddof)``, the shared part of var's and std's gradients."""
    count = _slice_size(shape_of(x), axis) - ddof
    return (x - mean(x, axis=axis, keepdims=True)) / count


def _var_vjps(
    ans: Any, x: Any, *, axis: Axis = None, ddof: float = 0, keepdims: bool = False,
    correction: Any = None,
) -> tuple[Any]:  # fmt: skip
    shape, scaled = shape_of(x), 2 * _centered_per_count(x, axis, _ddof(ddof, correction))
    return (lambda g: _spread(g, shape, axis, keepdims) * scaled,)


def _std_vjps(
    ans: Any, x: Any, *, axis: Axis = None, ddof: float = 0, keepdims: bool = False,
    correction: Any = None,
) -> tuple[Any]:  # fmt: skip
    shape, scaled = shape_of(x), _centered_per_count(x, axis, _ddof(ddof, correction))
    constant = stop_gradient(ans) == 0
    if not might(constant):
        return (lambda g: _spread(g / ans, shape, axis, keepdims) * scaled,)
    # g / std would be g / 0 on constant slices: there g is dropped and 1 divides it. (Where
    # no slice is constant this is g / ans, bit for bit: tg.jit takes this branch always.)
    safe = where(constant, 1, ans)
    return (lambda g: _spread(where(constant, 0, g) / safe, shape, axis, keepdims) * scaled,)


var = Primitive("var", _var, _var_vjps, numpy=[np.var])
std = Primitive("std", _std, _std_vjps, numpy=[np.std])


def _trace(x: Any, *, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """Sum along the diagonal ``offset`` of the planes spanned by ``axis1`` and ``axis2``."""
    return np.trace(x, offset=offset, axis1=axis1, axis2=axis2)


def _trace_vjps(ans: Any, x: Any, *, offset: int = 0, axis1: int = 0, axis2: int = 1) -> tuple[Any]:
    # Each diagonal element receives the cotangent of its plane: g, spread by a 0/1 mask.
    shape = shape_of(x)
    first, second = (normalize_axis_index(a, len(shape)) for a in (axis1, axis2))
    dtype = np.result_type(stop_gradient(ans))
    diagonal = np.eye(shape[first], shape[second], k=offset, dtype=dtype)
    if first > second:
        diagonal = diagonal.T
    mask_shape = [1] * len(shape)
    mask_shape[first], mask_shape[second] = shape[first], shape[second]
    mask = diagonal.reshape(mask_shape)
    planes = tuple(1 if a in (first, second) else n for a, n in enumerate(shape))
    return (lambda g: reshape(g, shape=planes) * mask,)


trace = Primitive("trace", _trace, _trace_vjps, numpy=[np.trace])

# --- the softmax family ------------------------------------------------------------------


def _accumulating(x: Any) -> Any:
    """``x`` in a dtype whose sums do not overflow: float16 sums beyond 65504 would be inf,
    so float16 is computed in float32 (as ``np.mean`` does) and the result rounded back."""
    x = as_array(x)
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
