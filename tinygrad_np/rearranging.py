"""Elements rearranged: moved, copied, padded, or picked out by position.

Each output element is an input element (or a constant), so each VJP sends the cotangent
back to where the elements came from: ``roll`` rolls it back, ``flip`` flips it again,
``sort`` and ``partition`` apply the inverse permutation, ``pad`` slices the border off,
and copies (``tile``, ``repeat``) sum their cotangents. ``rot90``, ``fliplr``/``flipud``,
``tile``, ``repeat``, ``diag``, ``diagonal``, ``tril`` and ``triu`` are written with those
and with the shape ops, so they need no VJP of their own.

Sorting is differentiable where the values are distinct; at ties the sorted values do not
depend on which of the tied elements lands where, and the gradient follows a stable sort
(the tied element that comes first gets the cotangent of the first tied position).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np.construction import asarray
from tinygrad_np.elementwise import where
from tinygrad_np.extend import Primitive, implements, shape_of
from tinygrad_np.shape import (
    broadcast_to,
    getitem,
    ravel,
    reshape,
    scatter_add,
    statics_method,
    transpose,
)
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "diag",
    "diagonal",
    "flip",
    "fliplr",
    "flipud",
    "pad",
    "partition",
    "repeat",
    "roll",
    "rot90",
    "sort",
    "tile",
    "tril",
    "triu",
]

Axis = int | tuple[int, ...] | None

# --- roll and flip ---------------------------------------------------------------------------


def _roll(a: Any, *, shift: Any, axis: Axis = None) -> Any:
    """``a`` with its elements shifted by ``shift`` along ``axis`` (of the flattened array
    when ``axis`` is None), those pushed off one end coming back at the other."""
    return np.roll(a, shift, axis)


def _roll_vjps(ans: Any, a: Any, *, shift: Any, axis: Axis = None) -> tuple[Any]:
    back = np.negative(stop_gradient(shift))
    return (lambda g: roll(g, shift=back, axis=axis),)


def _flip(m: Any, *, axis: Axis = None) -> Any:
    """``m`` with the order of its elements reversed along ``axis`` (all axes when None)."""
    return np.flip(m, axis)


roll: Primitive = Primitive("roll", _roll, _roll_vjps, numpy=[np.roll])
flip: Primitive = Primitive(
    "flip", _flip, lambda ans, m, *, axis=None: (lambda g: flip(g, axis=axis),), numpy=[np.flip]
)


@implements(np.fliplr)
def fliplr(m: Any) -> Any:
    """``m`` with its columns (second axis) in reverse order."""
    if len(shape_of(m)) < 2:
        raise ValueError(f"fliplr: needs at least 2 dimensions, got shape {shape_of(m)}")
    return flip(m, axis=1)


@implements(np.flipud)
def flipud(m: Any) -> Any:
    """``m`` with its rows (first axis) in reverse order."""
    if len(shape_of(m)) < 1:
        raise ValueError("flipud: needs at least 1 dimension, got a 0-d array")
    return flip(m, axis=0)


@implements(np.rot90)
def rot90(m: Any, *, k: int = 1, axes: Sequence[int] = (0, 1)) -> Any:
    """``m`` rotated by ``k`` quarter turns in the plane of ``axes``, from the first axis
    towards the second."""
    axes, ndim = tuple(axes), len(shape_of(m))
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must name exactly 2 axes, got {axes}")
    if not all(-ndim <= axis < ndim for axis in axes):
        raise ValueError(f"rot90: axes {axes} out of range for an array of {ndim} dimensions")
    if normalize_axis_index(axes[0], ndim) == normalize_axis_index(axes[1], ndim):
        raise ValueError(f"rot90: the two axes must be different, got {axes}")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(m, axis=axes)
    swapped = list(range(ndim))
    swapped[axes[0]], swapped[axes[1]] = swapped[axes[1]], swapped[axes[0]]
    if k == 1:
        return transpose(flip(m, axis=axes[1]), axes=tuple(swapped))
    return flip(transpose(m, axes=tuple(swapped)), axis=axes[1])


# --- copies: tile and repeat -----------------------------------------------------------------


@implements(np.tile)
def tile(A: Any, *, reps: int | Sequence[int]) -> Any:
    """``A`` repeated ``reps[i]`` times along axis ``i`` (``A`` or ``reps`` padded with
    leading 1s to the same length). The copies are a broadcast, so their cotangents sum."""
    counts = tuple(int(r) for r in np.atleast_1d(stop_gradient(reps)))
    shape = shape_of(A)
    ndim = max(len(shape), len(counts))
    shape = (1,) * (ndim - len(shape)) + shape
    counts = (1,) * (ndim - len(counts)) + counts
    if all(c == 1 for c in counts):
        return reshape(A, shape=shape)
    interleaved = reshape(A, shape=tuple(x for n in shape for x in (1, n)))
    pairs = zip(counts, shape, strict=True)
    copies = broadcast_to(interleaved, shape=tuple(x for pair in pairs for x in pair))
    return reshape(copies, shape=tuple(c * n for c, n in zip(counts, shape, strict=True)))


@implements(np.repeat)
def repeat(a: Any, *, repeats: Any, axis: int | None = None) -> Any:
    """Each element of ``a`` repeated ``repeats`` times along ``axis`` (of the flattened
    array when None); ``repeats`` may give one count per element. The copies' cotangents sum.
    """
    if axis is None:
        a, axis = ravel(a), 0
    shape = shape_of(a)
    axis = normalize_axis_index(axis, len(shape))
    counts = np.asarray(stop_gradient(repeats))
    sources = np.repeat(np.arange(shape[axis]), counts)  # NumPy's checks of the counts
    if counts.size != 1:
        return getitem(a, (*(slice(None),) * axis, sources))
    count = int(counts.reshape(()))
    beside = reshape(a, shape=(*shape[: axis + 1], 1, *shape[axis + 1 :]))
    copies = broadcast_to(beside, shape=(*shape[: axis + 1], count, *shape[axis + 1 :]))
    return reshape(copies, shape=(*shape[:axis], shape[axis] * count, *shape[axis + 1 :]))


implements(methods=["repeat"])(statics_method(repeat, "repeats", "axis"))


# --- pad -------------------------------------------------------------------------------------


def _pad(array: Any, *, pad_width: tuple[tuple[int, int], ...], constant_values: Any) -> Any:
    return np.pad(array, pad_width, mode="constant", constant_values=constant_values)


def _pad_vjps(
    ans: Any, array: Any, *, pad_width: tuple[tuple[int, int], ...], constant_values: Any
) -> tuple[Any]:
    inside = tuple(
        slice(before, before + n) for (before, _), n in zip(pad_width, shape_of(array), strict=True)
    )
    return (lambda g: getitem(g, inside),)


_padded = Primitive("pad", _pad, _pad_vjps)

_GATHERING_MODES = ("edge", "reflect", "symmetric", "wrap")  # each output is an input element


def _pad_widths(pad_width: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    widths = np.asarray(stop_gradient(pad_width))
    if widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {widths.dtype}")
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width must not be negative, got {widths.tolist()}")
    try:
        pairs = np.broadcast_to(widths, (ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width of shape {widths.shape} does not give (before, after) for each "
            f"of {ndim} axes"
        ) from None
    return tuple((int(before), int(after)) for before, after in pairs)


@implements(np.pad)
def pad(
    array: Any,
    *,
    pad_width: Any,
    mode: Any = "constant",
    constant_values: Any = None,
    end_values: Any = None,
    reflect_type: str | None = None,
    stat_length: Any = None,
) -> Any:
    """``array`` with ``pad_width`` elements added before and after each axis.

    ``mode="constant"`` (``constant_values``, default 0) pads with numbers: the gradient
    is the cotangent's inner part. ``"edge"``, ``"reflect"``, ``"symmetric"`` and ``"wrap"``
    pad with copies of elements, whose cotangents add to theirs (``reflect_type="even"``,
    the default, only). Other modes (``"mean"``, ``"linear_ramp"``, ...) compute new values
    and are refused for traced arrays. The options are NumPy's, each only for its modes.
    """
    given = {
        "constant_values": constant_values,
        "end_values": end_values,
        "reflect_type": reflect_type,
        "stat_length": stat_length,
    }
    options = {name: value for name, value in given.items() if value is not None}
    if not isinstance(array, Tensor):
        return np.pad(array, stop_gradient(pad_width), mode=mode, **options)
    if not _supported_padding(mode, options):
        if array.traced:
            raise TypeError(
                f"pad: mode={mode!r}"
                + (f" with {options}" if options and mode in _GATHERING_MODES else "")
                + " is not differentiable in tinygrad_np yet; mode='constant' is, and so are "
                "'edge', 'reflect', 'symmetric' and 'wrap' (with reflect_type='even')"
            )
        return Tensor(np.pad(array.data, stop_gradient(pad_width), mode=mode, **options))
    shape = shape_of(array)
    widths = _pad_widths(pad_width, len(shape))
    if not shape:  # a 0-d array has no axis to pad
        return array
    if mode == "constant":
        unknown = set(options) - {"constant_values"}
        if unknown:
            raise ValueError(f"pad: unsupported keyword arguments for mode 'constant': {unknown}")
        values = options.get("constant_values", 0)
        if isinstance(values, Tensor) and values.traced:
            raise TypeError(
                "pad: constant_values must be numbers, not a traced Tensor (their gradient is "
                "not supported)"
            )
        return _padded(array, pad_width=widths, constant_values=stop_gradient(values))
    sources = np.ix_(
        *(np.pad(np.arange(n), w, mode=mode) for n, w in zip(shape, widths, strict=True))
    )
    return getitem(array, sources)


def _supported_padding(mode: Any, options: dict[str, Any]) -> bool:
    if isinstance(mode, str) and mode == "constant":
        return True
    if not (isinstance(mode, str) and mode in _GATHERING_MODES):
        return False
    return set(options) <= {"reflect_type"} and options.get("reflect_type", "even") == "even"


# --- sort and partition: permutations ------------------------------------------------------


def _take_along(x: Any, *, index: Any, axis: int) -> Any:
    """``x`` rearranged along ``axis`` by the permutation ``index``."""
    return np.take_along_axis(x, index, axis)


def _inverse_permutation(index: Any, axis: int) -> Any:
    inverse = np.empty_like(index)
    positions = np.arange(index.shape[axis]).reshape(
        [-1 if i == axis else 1 for i in range(index.ndim)]
    )
    np.put_along_axis(inverse, index, np.broadcast_to(positions, index.shape), axis)
    return inverse


def _take_along_vjps(ans: Any, x: Any, *, index: Any, axis: int) -> tuple[Any]:
    inverse = _inverse_permutation(index, axis)
    return (lambda g: _permute(g, index=inverse, axis=axis),)


_permute: Primitive = Primitive("permute", _take_along, _take_along_vjps)


def _along(a: Any, axis: int | None) -> tuple[Any, int]:
    """``a`` and the axis to sort along (the flattened array's, for None)."""
    if axis is None:
        return ravel(a), 0
    return a, normalize_axis_index(axis, len(shape_of(a)))


@implements(np.sort)
def sort(
    a: Any, *, axis: int | None = -1, kind: str | None = None, order: Any = None,
    stable: bool | None = None,
) -> Any:  # fmt: skip
    """``a`` sorted along ``axis`` (the flattened array when None); NaNs last.

    The gradient goes back through the sorting permutation. At ties it follows a stable sort,
    whatever ``kind`` says (the sorted values are the same for every kind).
    """
    if not isinstance(a, Tensor):
        numpy_sort: Any = np.sort  # (its overloads want a literal kind)
        return numpy_sort(a, axis=axis, kind=kind, order=order, stable=stable)
    if order is not None:
        raise ValueError("sort: order= sorts structured arrays by field; a Tensor has no fields")
    a, axis = _along(a, axis)
    return _permute(a, index=np.argsort(stop_gradient(a), axis=axis, kind="stable"), axis=axis)


@implements(np.partition)
def partition(
    a: Any, *, kth: Any, axis: int | None = -1, kind: str = "introselect", order: Any = None
) -> Any:
    """``a`` rearranged along ``axis`` so that the element at each index in ``kth`` is where
    sorting would put it, smaller ones before it and larger ones after, exactly as NumPy
    arranges them. The gradient goes back through that permutation (ties as in :func:`sort`).
    """
    kth = stop_gradient(kth)
    numpy_partition: Any = np.partition  # (its overloads want a literal kind)
    if not isinstance(a, Tensor):
        return numpy_partition(a, kth, axis=axis, kind=kind, order=order)
    if order is not None:
        raise ValueError("partition: order= is for structured arrays; a Tensor has no fields")
    a, axis = _along(a, axis)
    values = stop_gradient(a)
    arranged = numpy_partition(values, kth, axis=axis, kind=kind)
    # The element at each position is the one of that rank among a's values.
    by_rank = np.argsort(values, axis=axis, kind="stable")
    ranks = _inverse_permutation(np.argsort(arranged, axis=axis, kind="stable"), axis)
    return _permute(a, index=np.take_along_axis(by_rank, ranks, axis), axis=axis)


def _refuse_in_place(name: str) -> Any:
    def in_place(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Tensor.{name}() would {name} in place, as ndarray.{name} does, but Tensors are "
            f"immutable: use the returned value of np.{name}(x, ...) (or tg.{name})"
        )

    return in_place


implements(methods=["sort"])(_refuse_in_place("sort"))
implements(methods=["partition"])(_refuse_in_place("partition"))


# --- diagonals and triangles ---------------------------------------------------------------


def _diagonal_positions(rows: int, cols: int, offset: int) -> tuple[Any, Any]:
    """Row and column indices of diagonal ``offset`` of a ``rows`` x ``cols`` matrix."""
    length = max(0, min(rows + min(offset, 0), cols - max(offset, 0)))
    steps = np.arange(length)
    return steps + max(-offset, 0), steps + max(offset, 0)


@implements(np.diagonal)
def diagonal(a: Any, *, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """Diagonal ``offset`` of the matrices spanned by ``axis1`` and ``axis2`` (above the main
    one for ``offset > 0``), as the last axis of the result."""
    a = asarray(a)
    shape = shape_of(a)
    if len(shape) < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got shape {shape}")
    first, second = normalize_axis_index(axis1, len(shape)), normalize_axis_index(axis2, len(shape))
    if first == second:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}")
    others = tuple(i for i in range(len(shape)) if i not in (first, second))
    if (*others, first, second) != tuple(range(len(shape))):
        a = transpose(a, axes=(*others, first, second))
    rows, cols = _diagonal_positions(shape[first], shape[second], offset)
    return getitem(a, (Ellipsis, rows, cols))


implements(methods=["diagonal"])(statics_method(diagonal, "offset", "axis1", "axis2"))


@implements(np.diag)
def diag(v: Any, *, k: int = 0) -> Any:
    """For a 1-d ``v``, a square matrix with ``v`` on diagonal ``k`` and zeros elsewhere;
    for a 2-d ``v``, its diagonal ``k``."""
    v = asarray(v)
    shape = shape_of(v)
    if len(shape) == 2:
        return diagonal(v, offset=k)
    if len(shape) != 1:
        raise ValueError(f"diag: the input must be 1-d or 2-d, got shape {shape}")
    size = shape[0] + abs(k)
    return scatter_add(v, index=_diagonal_positions(size, size, k), shape=(size, size))


def _matrix_shape(m: Any, name: str) -> tuple[int, int]:
    """The shape of ``m``'s matrices: its last two axes (a 1-d ``m`` is the rows of a
    square matrix, as NumPy takes it)."""
    shape = shape_of(m)
    if not shape:
        raise ValueError(f"{name}: needs at least 1 dimension, got a 0-d array")
    return (shape[-2], shape[-1]) if len(shape) >= 2 else (shape[0], shape[0])


@implements(np.tril)
def tril(m: Any, *, k: int = 0) -> Any:
    """``m`` with the elements above diagonal ``k`` of its last two axes set to 0."""
    return where(np.tri(*_matrix_shape(m, "tril"), k=k, dtype=bool), m, 0)


@implements(np.triu)
def triu(m: Any, *, k: int = 0) -> Any:
    """``m`` with the elements below diagonal ``k`` of its last two axes set to 0."""
    return where(~np.tri(*_matrix_shape(m, "triu"), k=k - 1, dtype=bool), m, 0)
