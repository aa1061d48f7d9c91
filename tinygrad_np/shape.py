"""Shape and indexing ops: values moved, not changed, so each VJP moves them back.

``reshape``'s VJP reshapes back, ``transpose``'s applies the inverse permutation,
``broadcast_to``'s sums over the broadcast axes, and ``x[index]``'s scatters the
cotangent into zeros of ``x``'s shape (adding where an index repeats).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np.extend import Primitive, broadcast_vjp, implements, shape_of
from tinygrad_np.tensor import stop_gradient

__all__ = ["broadcast_to", "getitem", "reshape", "scatter_add", "transpose"]


def _reshape(x: Any, *, shape: int | tuple[int, ...]) -> Any:
    """``x`` with a new shape (one axis may be -1)."""
    return np.reshape(x, shape)


def _transpose(x: Any, *, axes: tuple[int, ...] | None = None) -> Any:
    """Permute axes (reverse them when ``axes`` is ``None``; negative axes count from the end)."""
    return np.transpose(x, axes)


def _transpose_vjps(ans: Any, x: Any, *, axes: tuple[int, ...] | None = None) -> tuple[Any]:
    if axes is None:
        return (lambda g: transpose(g),)
    ndim = len(shape_of(x))
    inverse = tuple(np.argsort([normalize_axis_index(int(a), ndim) for a in axes]).tolist())
    return (lambda g: transpose(g, axes=inverse),)


def _broadcast_to(x: Any, *, shape: int | tuple[int, ...]) -> Any:
    """``x`` broadcast to ``shape`` (a read-only view of the same data)."""
    return np.broadcast_to(x, shape)


reshape: Primitive = Primitive(
    "reshape",
    _reshape,
    lambda ans, x, *, shape: (lambda g: reshape(g, shape=shape_of(x)),),
    numpy=[np.reshape],
)
transpose = Primitive(
    "transpose", _transpose, _transpose_vjps, numpy=[np.transpose], properties=["T"]
)
broadcast_to = Primitive(
    "broadcast_to",
    _broadcast_to,
    lambda ans, x, *, shape: (broadcast_vjp(x, shape_of(ans)),),
    numpy=[np.broadcast_to],
)


# ndarray's methods take shapes and axes as separate arguments too: x.reshape(2, 3).
@implements(methods=["reshape"])
def _reshape_method(x: Any, *shape: Any) -> Any:
    return reshape(x, shape=shape[0] if len(shape) == 1 else shape)


@implements(methods=["transpose"])
def _transpose_method(x: Any, *axes: Any) -> Any:
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], tuple | list)):
        return transpose(x, axes=None if axes[0] is None else tuple(axes[0]))
    return transpose(x, axes=axes or None)


# --- indexing ----------------------------------------------------------------------------


def _is_basic(index: Any) -> bool:
    """True when ``x[index]`` is a view, so no element can be selected twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, slice | int | np.integer) for p in parts)


def _scatter_add(g: Any, *, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``index`` (the transpose of ``x[index]``)."""
    out = np.zeros(shape, dtype=np.result_type(g))
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)  # repeated indices accumulate
    return out


def _getitem(x: Any, *, index: Any) -> Any:
    """``x[index]``: basic slicing or integer-array indexing; repeats accumulate."""
    return x[index]


_getitem_primitive = Primitive(
    "getitem",
    _getitem,
    lambda ans, x, *, index: (lambda g: scatter_add(g, index=index, shape=shape_of(x)),),
)


@implements(methods=["__getitem__"])
def getitem(x: Any, index: Any) -> Any:
    """``x[index]``: basic slicing or integer-array indexing; repeats accumulate.

    Index arrays are constants: a Tensor among them counts by its value.
    """
    if isinstance(index, tuple):
        index = tuple(stop_gradient(i) for i in index)
    else:
        index = stop_gradient(index)
    return _getitem_primitive(x, index=index)


scatter_add: Primitive = Primitive(
    "scatter_add",
    _scatter_add,
    lambda ans, g, *, index, shape: (lambda gg: getitem(gg, index),),
)
