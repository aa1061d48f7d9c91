"""Arrays built from traced values, and arrays cut back into pieces.

``array`` / ``asarray`` build an array from (nested) lists and tuples of Tensors, arrays
and numbers; ``stack``, ``concatenate``, ``vstack``, ``hstack``, ``dstack``,
``column_stack``, ``append``, ``r_`` / ``c_``, ``full`` and ``linspace`` build one from
traced pieces. Each piece's VJP takes its part of the cotangent back out with a slice, so a
piece that is a plain array or number simply gets none. The ``split`` family cuts an array
into a list of slices; each slice's VJP puts its cotangent back in place (into zeros of the
whole: ``k`` pieces cost ``k`` arrays of the whole's size on the way back).

``np.array``, ``np.asarray``, ``np.full`` and ``np.r_`` / ``np.c_`` cannot return a Tensor:
NumPy converts their arguments to ndarrays without handing the call to them, and a traced
Tensor refuses that conversion with a TypeError (a gradient would be dropped). They are
spelled ``tg.array``, ``tg.asarray``, ``tg.full``, ``tg.r_`` and ``tg.c_``. The others
(``np.stack``, ``np.concatenate``, ...) look inside their list for Tensors and hand the
call to them, so NumPy code using them differentiates unchanged, with Tensors, arrays
and numbers mixed in the list.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np.elementwise import where
from tinygrad_np.extend import Primitive, implements, shape_of
from tinygrad_np.jit import Tracer
from tinygrad_np.jit import asarray as as_array
from tinygrad_np.shape import (
    astype,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    broadcast_to,
    getitem,
    moveaxis,
    ravel,
    reshape,
    transpose,
)
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "append",
    "array",
    "array_split",
    "asarray",
    "c_",
    "column_stack",
    "concatenate",
    "dsplit",
    "dstack",
    "full",
    "hsplit",
    "hstack",
    "linspace",
    "r_",
    "split",
    "stack",
    "vsplit",
    "vstack",
]

Index = tuple[Any, ...]


def _taking(index: Index) -> Callable[[Any], Any]:
    """The VJP of a piece found at ``index`` of the result: ``g -> g[index]``."""
    return lambda g: getitem(g, index)


# --- array: nested lists and tuples of Tensors ---------------------------------------------


class _Slot:
    """Where a Tensor stood in a nested list given to :func:`array`."""

    def __repr__(self) -> str:
        return "<Tensor>"


_SLOT = _Slot()


def _has_tensor(obj: Any) -> bool:
    """Whether ``obj`` holds a Tensor, or an array that tg.jit traces (which NumPy cannot
    put into an array either)."""
    if isinstance(obj, Tensor | Tracer):
        return True
    return isinstance(obj, list | tuple) and any(_has_tensor(item) for item in obj)


def _template(obj: Any, path: Index, tensors: list[Any], paths: list[Index]) -> Any:
    """``obj`` with every Tensor replaced by a slot; the Tensors and their index paths are
    appended to ``tensors`` and ``paths`` (in a well-formed nested list, an element's path
    of list positions is its index in the array NumPy builds)."""
    if isinstance(obj, Tensor | Tracer):
        tensors.append(obj)
        paths.append(path)
        return _SLOT
    if isinstance(obj, list | tuple):
        return [_template(item, (*path, i), tensors, paths) for i, item in enumerate(obj)]
    return obj


def _filled(template: Any, values: Iterator[Any]) -> Any:
    if template is _SLOT:
        return next(values)
    if isinstance(template, list):
        return [_filled(item, values) for item in template]
    return template


def _array_from_slots(*tensors: Any, template: Any, paths: tuple[Index, ...]) -> Any:
    """``np.array`` of ``template`` with the slots filled by ``tensors``, in order."""
    traced = [t for t in tensors if isinstance(t, Tracer)]
    if not traced:
        return np.array(_filled(template, iter(tensors)))
    # tg.jit: np.array would convert the traced values, which the trace refuses. Built from
    # stand-ins of their shapes and dtypes (so of NumPy's shape and dtype), then each one is
    # written into its place: recorded, and replayed at every call.
    stand_ins = (np.zeros(np.shape(t), np.result_type(t)) for t in tensors)
    built = np.array(_filled(template, stand_ins))
    out = np.zeros_like(traced[0], dtype=built.dtype, shape=built.shape)
    out[...] = built
    for tensor, path in zip(tensors, paths, strict=True):
        out[path] = tensor
    return out


_array_from_pieces = Primitive(
    "array",
    _array_from_slots,
    lambda ans, *tensors, template, paths: [_taking(path) for path in paths],
)


def array(object: Any, *, dtype: Any = None, copy: bool = True, ndmin: int = 0) -> Any:
    """An array built from ``object``: a Tensor, an array, a number, or (nested) lists and
    tuples of them, as ``np.array`` builds one; each Tensor in it gets its part of the
    gradient.

    ``np.array([t1, t2])`` itself cannot return a Tensor (NumPy converts each element to an
    ndarray, which a traced Tensor refuses): write ``tg.array([t1, t2])`` or
    ``np.stack([t1, t2])``. ``dtype`` converts as :func:`astype` does (to an integer dtype
    the result is a constant); ``ndmin`` prepends axes of length 1. ``copy`` is accepted
    for NumPy's signature: a Tensor is immutable, so it is never copied.
    """
    result: Any
    if isinstance(object, Tensor):
        result = object
    elif isinstance(object, Tracer):  # an array that tg.jit traces: copied as np.array does
        result = np.copy(object) if copy else object
    elif isinstance(object, list | tuple) and _has_tensor(object):
        tensors: list[Any] = []
        paths: list[Index] = []
        template = _template(object, (), tensors, paths)
        result = _array_from_pieces(*tensors, template=template, paths=tuple(paths))
        built = np.result_type(stop_gradient(result))
        if built.kind not in "biuf" and result.traced:
            raise TypeError(
                f"array: the list builds an array of dtype {built} (it holds strings, None, "
                "or other objects), which cannot carry the gradients of its Tensors"
            )
    else:
        return np.array(object, dtype=dtype, copy=copy, ndmin=ndmin)
    if dtype is not None:
        result = astype(result, dtype=dtype)
    shape = shape_of(result)
    if len(shape) < ndmin:
        result = reshape(result, shape=(1,) * (ndmin - len(shape)) + shape)
    return result


def asarray(a: Any, *, dtype: Any = None) -> Any:
    """``a`` as an array: a Tensor stays itself (converted to ``dtype`` if given), (nested)
    lists and tuples with Tensors in them are built with :func:`array`, anything else is
    ``np.asarray(a, dtype)``."""
    if isinstance(a, Tensor) or (isinstance(a, list | tuple) and _has_tensor(a)):
        return array(a, dtype=dtype)
    return as_array(a, dtype)  # (an array that tg.jit traces stays one)


# --- stack and concatenate -------------------------------------------------------------------


def _pieces(arrays: Any, name: str) -> list[Any]:
    """The arrays a joining function was given, each as an array or Tensor.

    As in NumPy, they come as a list or tuple, or as one array whose first axis is iterated.
    """
    if isinstance(arrays, Tensor | np.ndarray):
        if not shape_of(arrays):
            raise TypeError(f"{name}: cannot iterate over a 0-d array to find the arrays to join")
        return [getitem(arrays, i) for i in range(len(arrays))]
    if not isinstance(arrays, list | tuple):
        raise TypeError(
            f"{name}: the arrays to join must be passed as a sequence such as a list or tuple, "
            f"got {type(arrays).__name__}"
        )
    return [asarray(a) for a in arrays]


Casting = Literal["no", "equiv", "safe", "same_kind", "unsafe"]
_CASTINGS: tuple[Casting, ...] = ("no", "equiv", "safe", "same_kind", "unsafe")


def _joined_dtype(pieces: list[Any], dtype: Any, casting: Casting, name: str) -> Any:
    """The result's dtype (``dtype``, or the pieces' common one), once every piece may be
    cast to it under NumPy's ``casting`` rule, as NumPy checks before joining."""
    if casting not in _CASTINGS:
        raise ValueError(
            f"{name}: casting must be one of {', '.join(map(repr, _CASTINGS))} (got {casting!r})"
        )
    dtypes = [np.result_type(stop_gradient(p)) for p in pieces]
    target = np.result_type(*dtypes) if dtype is None else np.dtype(dtype)
    for have in dtypes:
        if not np.can_cast(have, target, casting):
            raise TypeError(
                f"{name}: cannot cast array data from {have} to {target} according to the "
                f"rule {casting!r}"
            )
    return dtype


def _converted(x: Any, dtype: Any) -> Any:
    return x if dtype is None else astype(x, dtype=dtype)


def _concatenate_impl(*arrays: Any, axis: int) -> Any:
    return np.concatenate(arrays, axis=axis)


def _concatenate_vjps(ans: Any, *arrays: Any, axis: int) -> list[Callable[[Any], Any]]:
    axis = normalize_axis_index(axis, len(shape_of(ans)))
    lead = (slice(None),) * axis
    vjps, start = [], 0
    for a in arrays:
        stop = start + shape_of(a)[axis]
        vjps.append(_taking((*lead, slice(start, stop))))
        start = stop
    return vjps


_concatenate = Primitive("concatenate", _concatenate_impl, _concatenate_vjps)


@implements(np.concatenate)  # np.concat is the same function
def concatenate(
    arrays: Any, *, axis: int | None = 0, dtype: Any = None, casting: Casting = "same_kind"
) -> Any:
    """The arrays joined along an existing ``axis`` (flattened first when ``axis`` is None).

    The list may mix Tensors, arrays, numbers and nested lists; ``dtype`` converts the
    result as :func:`astype` does, once NumPy's ``casting`` rule allows each piece's dtype
    to be cast to it (``"same_kind"``: float64 to float32, not float to int).
    """
    pieces = _pieces(arrays, "concatenate")
    if not pieces:
        raise ValueError("concatenate: need at least one array to concatenate")
    dtype = _joined_dtype(pieces, dtype, casting, "concatenate")
    if axis is None:
        pieces, axis = [ravel(p) for p in pieces], 0
    return _converted(_concatenate(*pieces, axis=axis), dtype)


def _stack_impl(*arrays: Any, axis: int) -> Any:
    return np.stack(arrays, axis=axis)


_stack = Primitive(
    "stack",
    _stack_impl,
    lambda ans, *arrays, axis: [_taking((*(slice(None),) * axis, i)) for i in range(len(arrays))],
)


@implements(np.stack)
def stack(arrays: Any, *, axis: int = 0, dtype: Any = None, casting: Casting = "same_kind") -> Any:
    """The arrays, all of one shape, joined along a new ``axis`` of the result (``dtype``
    and ``casting`` as in :func:`concatenate`)."""
    pieces = _pieces(arrays, "stack")
    if not pieces:
        raise ValueError("stack: need at least one array to stack")
    dtype = _joined_dtype(pieces, dtype, casting, "stack")
    shapes = sorted({shape_of(p) for p in pieces})
    if len(shapes) > 1:
        raise ValueError(f"stack: all input arrays must have the same shape, got shapes {shapes}")
    axis = normalize_axis_index(axis, len(shapes[0]) + 1)
    return _converted(_stack(*pieces, axis=axis), dtype)


@implements(np.vstack)
def vstack(tup: Any, *, dtype: Any = None, casting: Casting = "same_kind") -> Any:
    """The arrays joined along the first axis, 1-d ones ``(n,)`` taken as rows ``(1, n)``
    (``dtype`` and ``casting`` as in :func:`concatenate`)."""
    pieces = [atleast_2d(p) for p in _pieces(tup, "vstack")]
    return concatenate(pieces, axis=0, dtype=dtype, casting=casting)


@implements(np.hstack)
def hstack(tup: Any, *, dtype: Any = None, casting: Casting = "same_kind") -> Any:
    """The arrays joined along the second axis, or along the only one if they are 1-d
    (``dtype`` and ``casting`` as in :func:`concatenate`)."""
    pieces = [atleast_1d(p) for p in _pieces(tup, "hstack")]
    axis = 0 if pieces and len(shape_of(pieces[0])) == 1 else 1
    return concatenate(pieces, axis=axis, dtype=dtype, casting=casting)


@implements(np.dstack)
def dstack(tup: Any) -> Any:
    """The arrays joined along the third axis (after :func:`atleast_3d`)."""
    return concatenate([atleast_3d(p) for p in _pieces(tup, "dstack")], axis=2)


@implements(np.column_stack)
def column_stack(tup: Any) -> Any:
    """The arrays joined as columns: 1-d ones ``(n,)`` become columns ``(n, 1)``."""
    pieces = _pieces(tup, "column_stack")
    return concatenate(
        [p if len(shape_of(p)) >= 2 else reshape(p, shape=(-1, 1)) for p in pieces], axis=1
    )


@implements(np.append)
def append(arr: Any, values: Any, *, axis: int | None = None) -> Any:
    """``values`` appended to ``arr`` along ``axis``; with ``axis=None`` both are flattened."""
    arr, values = asarray(arr), asarray(values)
    if axis is None:
        if len(shape_of(arr)) != 1:
            arr = ravel(arr)
        values, axis = ravel(values), 0
    return concatenate((arr, values), axis=axis)


# --- r_ and c_ -------------------------------------------------------------------------------


class AxisConcatenator:
    """``tg.r_[...]`` and ``tg.c_[...]``: NumPy's ``np.r_`` / ``np.c_`` for traced values.

    Items are joined with :func:`concatenate`; slices become ranges (``1:4``) or, with a
    complex step, ``linspace`` (``0:1:5j``); numbers become 1-element arrays; a leading
    string sets the axis, the minimum number of dimensions and where 1-d items put their
    axis (``"0,2,-1"``), as in NumPy. The matrix directives ``"r"`` and ``"c"`` make an
    ``np.matrix``, which is not supported.
    """

    def __init__(self, name: str, axis: int, ndmin: int, trans1d: int) -> None:
        self.name, self.axis, self.ndmin, self.trans1d = name, axis, ndmin, trans1d

    def __repr__(self) -> str:
        return f"tg.{self.name}"

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            raise TypeError(f"{self.name}[{key!r}]: the matrix syntax makes an np.matrix, "
                            "which tinygrad_np does not support")  # fmt: skip
        items = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        pieces: list[Any] = []
        kinds: list[Any] = []  # dtypes, and numbers as NumPy's weak scalars
        for k, item in enumerate(items):
            if isinstance(item, str):
                if k != 0:
                    raise ValueError(f"{self.name}: special directives must be the first entry")
                axis, ndmin, trans1d = self._directive(item, axis, ndmin, trans1d)
                continue
            if isinstance(item, slice):
                piece = np.r_[item]  # a range or a linspace: a constant
                if ndmin > 1:
                    piece = np.array(piece, ndmin=ndmin)
                    if trans1d != -1:
                        piece = piece.swapaxes(-1, trans1d)
                kinds.append(piece.dtype)
            elif type(item) in np.ScalarType:
                piece = item
                kinds.append(item)
            else:
                piece = self._at_least(asarray(item), ndmin, trans1d)
                kinds.append(np.result_type(stop_gradient(piece)))
            pieces.append(piece)
        if kinds:
            dtype = np.result_type(*kinds)
            pieces = [astype(self._at_least(asarray(p), ndmin, -1), dtype=dtype) for p in pieces]
        return concatenate(pieces, axis=axis)

    def _directive(self, item: str, axis: int, ndmin: int, trans1d: int) -> tuple[int, int, int]:
        if item in ("r", "c"):
            raise TypeError(
                f"{self.name}: the directive {item!r} makes an np.matrix, which tinygrad_np "
                "does not support"
            )
        try:
            if "," not in item:
                return int(item), ndmin, trans1d
            parts = item.split(",")
            axis, ndmin = int(parts[0]), int(parts[1])
            return axis, ndmin, int(parts[2]) if len(parts) == 3 else trans1d
        except (ValueError, IndexError) as error:
            raise ValueError(f"{self.name}: unknown special directive {item!r}") from error

    @staticmethod
    def _at_least(piece: Any, ndmin: int, trans1d: int) -> Any:
        """``piece`` with axes of length 1 added in front up to ``ndmin`` axes, then, if
        ``trans1d`` is not -1, its own axes moved to start at position ``trans1d``."""
        shape = shape_of(piece)
        if len(shape) >= ndmin:
            return piece
        added = ndmin - len(shape)
        piece = reshape(piece, shape=(1,) * added + shape)
        if trans1d == -1:
            return piece
        start = trans1d + added + 1 if trans1d < 0 else trans1d
        order = list(range(ndmin))
        return transpose(piece, axes=(*order[:start], *order[added:], *order[start:added]))


r_ = AxisConcatenator("r_", axis=0, ndmin=1, trans1d=-1)
c_ = AxisConcatenator("c_", axis=-1, ndmin=2, trans1d=0)


# --- full and linspace -------------------------------------------------------------------


def full(shape: int | tuple[int, ...], fill_value: Any, *, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (broadcast to it), which may be
    traced: its gradient is the sum of the cotangent over the copies.

    ``np.full`` cannot return a Tensor (it converts ``fill_value`` to an ndarray first);
    this is its traced spelling. ``shape`` comes first, as in NumPy.
    """
    value = asarray(fill_value)
    if not isinstance(value, Tensor):
        return np.full(shape, value, dtype=dtype)
    dims = tuple(shape) if isinstance(shape, tuple | list) else (operator.index(shape),)
    return _converted(broadcast_to(value, shape=dims), dtype)


def _weak(value: Any) -> Any:
    """``value`` as ``np.result_type`` should see it: Python numbers stay weak (NEP 50)."""
    return value if isinstance(value, int | float) else as_array(stop_gradient(value))


@implements(np.linspace)
def linspace(
    start: Any,
    stop: Any,
    *,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: int = 0,
) -> Any:
    """``num`` evenly spaced samples from ``start`` to ``stop`` (included when
    ``endpoint``), along a new ``axis`` when the endpoints are arrays.

    The endpoints may be traced: sample ``j`` is ``start + j * (stop - start) / div``
    (``div = num - 1``, or ``num`` without the endpoint), and the last one is ``stop``
    itself, as in NumPy. ``retstep=True`` returns ``(samples, step)`` as well.
    """
    if not (isinstance(start, Tensor) or isinstance(stop, Tensor)):
        numpy_linspace: Any = np.linspace  # (its overloads want literal flags)
        return numpy_linspace(
            start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype, axis=axis
        )
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: the number of samples must be non-negative, got {num}")
    div = num - 1 if endpoint else num
    computed = np.result_type(_weak(start), _weak(stop), 1.0)  # integers give float64
    delta = stop - start
    position = np.arange(num, dtype=computed).reshape((-1,) + (1,) * len(shape_of(delta)))
    step: Any
    if div > 0:
        step = delta / div
        # NumPy scales before multiplying where a step rounds to 0: the same samples
        rounds_to_0 = np.any(stop_gradient(step) == 0)
        if isinstance(rounds_to_0, Tracer):  # tg.jit: each call chooses, as eagerly
            samples = where(rounds_to_0, position / div * delta, position * step)
        elif rounds_to_0:
            samples = position / div * delta
        else:
            samples = position * step
    else:
        step = computed.type(np.nan)
        samples = position * delta
    samples = samples + start
    if endpoint and num > 1:
        samples = where(np.arange(num).reshape(position.shape) == num - 1, stop, samples)
    if axis != 0:
        samples = moveaxis(samples, source=0, destination=axis)
    if dtype is not None:
        if np.issubdtype(dtype, np.integer):  # NumPy rounds down: a constant
            samples = np.floor(stop_gradient(samples)).astype(dtype)
        else:
            samples = astype(samples, dtype=dtype)
    return (samples, step) if retstep else samples


# --- splitting -------------------------------------------------------------------------------


def _bounds(length: int, indices_or_sections: Any) -> list[tuple[int, int]]:
    """``(start, stop)`` of each piece: ``n`` near-equal sections, or cuts at given indices
    (which slice as Python slices do: past the end, or decreasing, give empty pieces)."""
    cuts = stop_gradient(indices_or_sections)
    if np.ndim(cuts) == 0:
        sections = int(cuts)
        if sections <= 0:
            raise ValueError(f"array_split: the number of sections must be positive, got {cuts}")
        each, extra = divmod(length, sections)
        sizes = [each + 1] * extra + [each] * (sections - extra)
        points = np.cumsum([0, *sizes]).tolist()
    else:
        points = [0, *(int(i) for i in np.asarray(cuts).reshape(-1)), length]
    return list(itertools.pairwise(points))


@implements(np.array_split)
def array_split(ary: Any, *, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """``ary`` cut along ``axis`` into a list of pieces: ``indices_or_sections`` near-equal
    sections (the first ones one longer), or cut before each of the given indices."""
    ary = asarray(ary)
    shape = shape_of(ary)
    axis = normalize_axis_index(axis, len(shape))
    lead = (slice(None),) * axis
    return [
        getitem(ary, (*lead, slice(start, stop)))
        for start, stop in _bounds(shape[axis], indices_or_sections)
    ]


@implements(np.split)
def split(ary: Any, *, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """``ary`` cut along ``axis`` into equal sections, or before each of the given indices;
    sections that would not be equal are an error (:func:`array_split` allows them)."""
    shape = shape_of(ary)
    sections = stop_gradient(indices_or_sections)
    if np.ndim(sections) == 0:
        length = shape[normalize_axis_index(axis, len(shape))]
        if int(sections) > 0 and length % int(sections):
            raise ValueError(
                f"split: length {length} along axis {axis} does not split into {sections} "
                "equal sections; use array_split for unequal ones"
            )
    return array_split(ary, indices_or_sections=indices_or_sections, axis=axis)


def _split_along(name: str, axis: int, min_ndim: int) -> Callable[..., list[Any]]:
    def split_along(ary: Any, *, indices_or_sections: Any) -> list[Any]:
        ary = asarray(ary)
        ndim = len(shape_of(ary))
        if ndim < min_ndim:
            raise ValueError(
                f"{name}: needs an array of at least {min_ndim} dimensions, got shape "
                f"{shape_of(ary)}"
            )
        along = 1 if name == "hsplit" and ndim > 1 else axis
        return split(ary, indices_or_sections=indices_or_sections, axis=along)

    split_along.__name__ = split_along.__qualname__ = name
    return split_along


hsplit = implements(np.hsplit)(_split_along("hsplit", 0, 1))
hsplit.__doc__ = """``split`` along the second axis (the first, for a 1-d array)."""
vsplit = implements(np.vsplit)(_split_along("vsplit", 0, 2))
vsplit.__doc__ = """``split`` along the first axis, of an array of at least 2 dimensions."""
dsplit = implements(np.dsplit)(_split_along("dsplit", 2, 3))
dsplit.__doc__ = """``split`` along the third axis, of an array of at least 3 dimensions."""
