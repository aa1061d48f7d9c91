"""Shape ops: the same values under another shape or axis order, and indexing.

Every op here is a ``reshape``, a ``transpose``, a ``broadcast_to`` or an index, and so is
every VJP: ``reshape``'s reshapes back, ``transpose``'s applies the inverse permutation,
``broadcast_to``'s sums over the broadcast axes, and ``x[index]``'s scatters the cotangent
into zeros of ``x``'s shape (adding where an index repeats). ``squeeze``, ``expand_dims``,
``ravel`` and the ``atleast_*d`` functions are reshapes; ``moveaxis``, ``swapaxes``,
``rollaxis`` and ``.mT`` are transposes, so they need no VJP of their own.

``astype`` changes the dtype: between floating dtypes it keeps the gradient (cast back to
the input's dtype on the way back); to any other kind the result is a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from tinygrad_np.extend import Primitive, broadcast_vjp, implements, shape_of
from tinygrad_np.jit import asarray as as_array
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "astype",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "broadcast_to",
    "copy",
    "expand_dims",
    "getitem",
    "matrix_transpose",
    "moveaxis",
    "ravel",
    "reshape",
    "rollaxis",
    "scatter_add",
    "squeeze",
    "swapaxes",
    "transpose",
]

Axis = int | tuple[int, ...] | None


def _reshape(x: Any, *, shape: int | tuple[int, ...]) -> Any:
    """``x`` with a new shape (one axis may be -1)."""
    return np.reshape(x, shape)


def _reshape_vjps(ans: Any, x: Any, *, shape: int | tuple[int, ...]) -> tuple[Any]:
    original = shape_of(x)  # the shape only: the closure does not keep x alive
    return (lambda g: reshape(g, shape=original),)


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


reshape: Primitive = Primitive("reshape", _reshape, _reshape_vjps, numpy=[np.reshape])
transpose = Primitive(
    "transpose", _transpose, _transpose_vjps, numpy=[np.transpose], properties=["T"]
)
broadcast_to = Primitive(
    "broadcast_to",
    _broadcast_to,
    lambda ans, x, *, shape: (broadcast_vjp(x, shape_of(ans)),),
    numpy=[np.broadcast_to],
)


def statics_method(op: Callable[..., Any], *names: str) -> Callable[..., Any]:
    """A Tensor method calling ``op(self, **statics)`` that, like ndarray's, also takes the
    static arguments positionally, in the order ``names``: ``x.swapaxes(0, 1)``."""

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(names):
            raise TypeError(
                f"{op.__name__}: takes at most {len(names)} arguments "
                f"({', '.join(names)}), got {len(args)}"
            )
        for name, value in zip(names, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{op.__name__}: got {name!r} both by position and by keyword")
            kwargs[name] = value
        return op(self, **kwargs)

    return method


# ndarray's methods take shapes and axes as separate arguments too: x.reshape(2, 3).
@implements(methods=["reshape"])
def _reshape_method(x: Any, *dims: Any, shape: Any = None) -> Any:
    if shape is not None and dims:
        raise TypeError("reshape: give the shape by position or as shape=, not both")
    return reshape(x, shape=shape if shape is not None else dims[0] if len(dims) == 1 else dims)


@implements(methods=["transpose"])
def _transpose_method(x: Any, *axes: Any) -> Any:
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], tuple | list)):
        return transpose(x, axes=None if axes[0] is None else tuple(axes[0]))
    return transpose(x, axes=axes or None)


# --- reshapes: unit axes removed or added, flattening ------------------------------------


@implements(np.squeeze)
def squeeze(a: Any, *, axis: Axis = None) -> Any:
    """``a`` without its axes of length 1: all of them, or those named by ``axis``."""
    shape = shape_of(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    else:
        axes = normalize_axis_tuple(axis, len(shape))
        longer = [i for i in axes if shape[i] != 1]
        if longer:
            raise ValueError(
                f"squeeze: axis {longer[0]} of an array of shape {shape} has length "
                f"{shape[longer[0]]}; only axes of length 1 can be squeezed out"
            )
    return reshape(a, shape=tuple(n for i, n in enumerate(shape) if i not in axes))


implements(methods=["squeeze"])(statics_method(squeeze, "axis"))


@implements(np.expand_dims)
def expand_dims(a: Any, *, axis: int | tuple[int, ...]) -> Any:
    """``a`` with a new axis of length 1 at each position in ``axis`` (of the result)."""
    shape = shape_of(a)
    added = 1 if isinstance(axis, int | np.integer) else len(axis)
    new_axes = normalize_axis_tuple(axis, len(shape) + added)
    lengths = iter(shape)
    return reshape(
        a, shape=tuple(1 if i in new_axes else next(lengths) for i in range(len(shape) + added))
    )


@implements(np.ravel)
def ravel(a: Any, *, order: str = "C") -> Any:
    """``a`` as a 1-d array, read row by row (``order="C"``) or column by column (``"F"``).

    ``"A"`` and ``"K"`` (memory order) are refused: the memory layout of a Tensor's value is
    not part of its meaning.
    """
    if order == "C":
        return reshape(a, shape=-1)
    if order == "F":
        return reshape(transpose(a), shape=-1)
    raise ValueError(
        f"ravel: order={order!r} is not supported; use 'C' (row by row) or 'F' (column by "
        "column): the memory layout of a Tensor's value is not part of its meaning"
    )


implements(methods=["ravel", "flatten"])(statics_method(ravel, "order"))


def _at_least(ndim: int, arys: tuple[Any, ...], new_shape: Callable[[tuple[int, ...]], Any]) -> Any:
    shaped = []
    for a in arys:
        shape = shape_of(a)
        shaped.append(a if len(shape) >= ndim else reshape(a, shape=new_shape(shape)))
    return shaped[0] if len(shaped) == 1 else tuple(shaped)


@implements(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    """Each array with at least one axis (a 0-d one becomes shape ``(1,)``); one array
    for one argument, else a tuple."""
    return _at_least(1, arys, lambda shape: (1,))


@implements(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    """Each array with at least two axes: ``()`` becomes ``(1, 1)``, ``(n,)`` ``(1, n)``."""
    return _at_least(2, arys, lambda shape: (1, *shape) if shape else (1, 1))


@implements(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    """Each array with at least three axes: ``()`` becomes ``(1, 1, 1)``, ``(n,)``
    ``(1, n, 1)`` and ``(m, n)`` ``(m, n, 1)``."""
    return _at_least(
        3, arys, lambda shape: (1, *(shape or (1,)), 1) if len(shape) < 2 else (*shape, 1)
    )


# --- transposes: axes moved -----------------------------------------------------------------


@implements(np.moveaxis)
def moveaxis(a: Any, *, source: int | tuple[int, ...], destination: int | tuple[int, ...]) -> Any:
    """``a`` with the axes ``source`` moved to positions ``destination``, the others keeping
    their order."""
    ndim = len(shape_of(a))
    source = normalize_axis_tuple(source, ndim, "source")
    destination = normalize_axis_tuple(destination, ndim, "destination")
    if len(source) != len(destination):
        raise ValueError(
            f"moveaxis: source {source} and destination {destination} must name as many axes"
        )
    order = [i for i in range(ndim) if i not in source]
    for to, axis in sorted(zip(destination, source, strict=True)):
        order.insert(to, axis)
    return transpose(a, axes=tuple(order))


@implements(np.swapaxes)
def swapaxes(a: Any, *, axis1: int, axis2: int) -> Any:
    """``a`` with axes ``axis1`` and ``axis2`` interchanged."""
    ndim = len(shape_of(a))
    order = list(range(ndim))
    i, j = normalize_axis_index(axis1, ndim), normalize_axis_index(axis2, ndim)
    order[i], order[j] = j, i
    return transpose(a, axes=tuple(order))


implements(methods=["swapaxes"])(statics_method(swapaxes, "axis1", "axis2"))


@implements(np.rollaxis)
def rollaxis(a: Any, *, axis: int, start: int = 0) -> Any:
    """``a`` with ``axis`` moved to stand before the axis now at ``start`` (NumPy's older
    :func:`moveaxis`; ``start`` may be ``a.ndim``, the end)."""
    ndim = len(shape_of(a))
    axis = normalize_axis_index(axis, ndim)
    if start < 0:
        start += ndim
    if not 0 <= start <= ndim:
        raise np.exceptions.AxisError(
            f"rollaxis: start must be in [-{ndim}, {ndim}] for an array of {ndim} axes, "
            f"got {start - ndim if start < 0 else start}"
        )
    if axis < start:
        start -= 1  # the axis leaves its place first
    order = [i for i in range(ndim) if i != axis]
    order.insert(start, axis)
    return transpose(a, axes=tuple(order))


@implements(np.matrix_transpose, properties=["mT"])
def matrix_transpose(x: Any) -> Any:
    """``x`` with its last two axes swapped: a stack of transposed matrices (``x.mT``)."""
    ndim = len(shape_of(x))
    if ndim < 2:
        raise ValueError(
            f"matrix_transpose: needs an array of at least 2 dimensions, got shape {shape_of(x)}"
        )
    return transpose(x, axes=(*range(ndim - 2), ndim - 1, ndim - 2))


# --- dtypes and copies ---------------------------------------------------------------------


def _cast_vjps(ans: Any, x: Any, *, dtype: np.dtype[Any]) -> tuple[Any]:
    original = np.result_type(stop_gradient(x))
    return (lambda g: _cast(g, dtype=original),)


_cast: Primitive = Primitive("astype", lambda x, *, dtype: as_array(x).astype(dtype), _cast_vjps)


@implements(np.astype)
def astype(x: Any, *, dtype: Any, copy: bool = True) -> Any:
    """``x`` converted to ``dtype``.

    Between floating dtypes the gradient flows, cast back to ``x``'s dtype. To an integer
    or boolean dtype the result is a constant, a plain ndarray: rounding has derivative 0
    wherever it has one. Complex dtypes are refused, and so are object, string and time
    dtypes for a traced Tensor (they could not carry its gradient). ``copy`` is accepted
    for NumPy's signature; Tensors are immutable, so it changes nothing.
    """
    target = np.dtype(dtype)
    if not isinstance(x, Tensor):
        return as_array(x).astype(target, copy=copy)
    source = np.result_type(stop_gradient(x))
    if target.kind == "c":
        raise TypeError(
            f"astype: cannot convert a Tensor to {target}: tinygrad_np differentiates real "
            "floating-point functions only, and complex numbers are not supported"
        )
    if target.kind not in "biuf" and x.traced:
        raise TypeError(
            f"astype: cannot convert a traced Tensor to {target}: an array of that dtype "
            "cannot carry its gradient; convert to a numeric dtype"
        )
    if target.kind != "f" or source.kind != "f":
        return as_array(stop_gradient(x)).astype(target)
    return x if target == source else _cast(x, dtype=target)


implements(methods=["astype"])(statics_method(astype, "dtype"))


@implements(np.copy)
def copy(a: Any, *, order: str = "K", subok: bool = False) -> Any:
    """A copy of ``a``: for a Tensor, the Tensor itself (Tensors are immutable, so it
    cannot change under a copy, and the gradient passes through unchanged)."""
    if isinstance(a, Tensor):
        return a
    return np.copy(a, order=order, subok=subok)  # type: ignore[call-overload]


implements(methods=["copy"])(statics_method(copy, "order"))


# --- indexing ----------------------------------------------------------------------------


def _is_basic(index: Any) -> bool:
    """True when ``x[index]`` is a view, so no element can be selected twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, slice | int | np.integer) for p in parts)


def _scatter_add(g: Any, *, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``index`` (the transpose of ``x[index]``)."""
    # Made from g, so that under tg.jit it is traced too (and order="C", as np.zeros makes it).
    out = np.zeros_like(g, shape=shape, order="C")
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)  # repeated indices accumulate
    return out


def _getitem(x: Any, *, index: Any) -> Any:
    """``x[index]``: basic slicing or integer-array indexing; repeats accumulate."""
    return x[index]


def _getitem_vjps(ans: Any, x: Any, *, index: Any) -> tuple[Any]:
    shape = shape_of(x)
    return (lambda g: scatter_add(g, index=index, shape=shape),)


_getitem_primitive = Primitive("getitem", _getitem, _getitem_vjps)


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
