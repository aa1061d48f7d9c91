"""Hypothesis strategies for gradient checks: well-conditioned inputs and valid arguments.

Finite differences are only meaningful where the function is smooth at the
scale of the step, so these strategies produce bounded values and can keep
them away from the kinks of ``relu`` (``min_magnitude``) and from the ties of
``max``/``min`` (``min_gap``). Shapes, broadcasting, matmul operands, axes and
reshapes use :mod:`hypothesis.extra.numpy` where it has them.

Importing this module imports hypothesis; ``tinygrad_np.testing`` does not.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra.numpy import BroadcastableShapes

__all__ = [
    "Axis",
    "BroadcastableShapes",
    "axes",
    "axis_and_keepdims",
    "broadcastable_arrays",
    "broadcastable_shapes",
    "float_arrays",
    "matmul_arrays",
    "matmul_shapes",
    "mlp_params",
    "reshape_targets",
    "shapes",
]

Array = np.ndarray[Any, Any]
Shape = tuple[int, ...]
Axis = int | tuple[int, ...] | None

DEFAULT_MAX_DIMS = 3
DEFAULT_MAX_SIDE = 4


def shapes(
    *,
    min_dims: int = 0,
    max_dims: int = DEFAULT_MAX_DIMS,
    min_side: int = 1,
    max_side: int = DEFAULT_MAX_SIDE,
) -> st.SearchStrategy[Shape]:
    """Array shapes, small by default so that finite differences stay cheap."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def _allowed_intervals(
    min_value: float, max_value: float, excluded: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``[min_value, max_value]`` without the open intervals in ``excluded``."""
    pieces, start = [], min_value
    for lo, hi in sorted(excluded):
        if lo > start:
            pieces.append((start, min(lo, max_value)))
        start = max(start, hi)
    pieces.append((start, max_value))
    return [(lo, hi) for lo, hi in pieces if lo <= hi]


def _validated_bounds(
    min_value: float,
    max_value: float,
    min_magnitude: float,
    avoid: Sequence[float],
    margin: float,
    min_gap: float,
) -> list[tuple[float, float]]:
    named = [
        ("min_value", min_value),
        ("max_value", max_value),
        ("min_magnitude", min_magnitude),
        ("margin", margin),
        ("min_gap", min_gap),
    ]
    for name, value in [*named, *(("avoid", point) for point in avoid)]:
        if not math.isfinite(value):
            raise ValueError(f"float_arrays: {name} must be finite, got {value!r}")
    if min_value > max_value:
        raise ValueError(f"float_arrays: min_value {min_value} exceeds max_value {max_value}")
    if min_magnitude < 0 or margin < 0 or min_gap < 0:
        raise ValueError("float_arrays: min_magnitude, margin and min_gap must be >= 0")
    excluded = [(point - margin, point + margin) for point in avoid if margin > 0]
    if min_magnitude > 0:
        excluded.append((-min_magnitude, min_magnitude))
    intervals = _allowed_intervals(min_value, max_value, excluded)
    if not intervals:
        raise ValueError(
            f"float_arrays: no value in [{min_value}, {max_value}] has magnitude >= "
            f"{min_magnitude} and is {margin} away from {list(avoid)}"
        )
    return intervals


def _spaced_values(
    draw: st.DrawFn, count: int, intervals: list[tuple[float, float]], min_gap: float
) -> Array:
    """``count`` values from the union of ``intervals``, pairwise at least ``min_gap`` apart.

    Built, not filtered: sorted offsets ``u`` in ``[0, slack]`` plus ``i * min_gap``
    are spaced by at least ``min_gap`` on the intervals laid end to end; mapping
    back onto the intervals only widens gaps (it jumps the excluded middle). A
    drawn permutation then scatters them over the array.
    """
    lengths = [hi - lo for lo, hi in intervals]
    slack = sum(lengths) - (count - 1) * min_gap
    if slack < 0:
        raise ValueError(
            f"float_arrays: {count} values spaced {min_gap} apart do not fit in the allowed "
            f"range {intervals}; lower min_gap or widen the bounds"
        )
    offsets = draw(hnp.arrays(np.float64, count, elements=st.floats(0.0, slack)))
    laid_out = np.sort(offsets) + min_gap * np.arange(count)
    starts = np.cumsum([0.0, *lengths[:-1]])
    piece = np.clip(np.searchsorted(starts, laid_out, side="right") - 1, 0, len(intervals) - 1)
    lows = np.array([lo for lo, _ in intervals])
    highs = np.array([hi for _, hi in intervals])
    # The clip only absorbs rounding in the additions above (a unit in the last place).
    values: Array = np.clip(lows[piece] + (laid_out - starts[piece]), lows[piece], highs[piece])
    order = draw(st.permutations(range(count)))
    return values[list(order)]


@st.composite
def _float_arrays(
    draw: st.DrawFn,
    /,
    shape: Shape | st.SearchStrategy[Shape],
    dtype: np.dtype[Any],
    intervals: list[tuple[float, float]],
    min_gap: float,
) -> Array:
    resolved = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    count = math.prod(resolved)
    values: Array
    if min_gap > 0:
        values = _spaced_values(draw, count, intervals, min_gap).reshape(resolved)
    else:
        elements = st.one_of(
            [st.floats(lo, hi, allow_nan=False, allow_subnormal=False) for lo, hi in intervals]
        )
        values = draw(hnp.arrays(np.float64, resolved, elements=elements))
    # Rounding to float32 keeps every value in its interval up to one unit in the last place.
    return values.astype(dtype)


def float_arrays(
    shape: int | Shape | st.SearchStrategy[Shape] | None = None,
    *,
    dtype: Any = np.float64,
    min_value: float = -2.0,
    max_value: float = 2.0,
    min_magnitude: float = 0.0,
    avoid: Sequence[float] = (),
    margin: float = 0.0,
    min_gap: float = 0.0,
) -> st.SearchStrategy[Array]:
    """Float arrays with values in ``[min_value, max_value]``, conditioned for a gradient check.

    ``shape`` is a shape, an int, a strategy of shapes, or ``None`` for any small
    shape (:func:`shapes`). ``min_magnitude`` keeps every value at least that far
    from 0 (the kink of ``relu``; poles of ``1/x``), and ``avoid`` lists other points
    to keep ``margin`` away from (the bounds of a ``clip``). ``min_gap`` makes all the values
    of an array pairwise at least that far apart, so ``max``/``min`` have no ties
    or near-ties along any axis; it needs ``(size - 1) * min_gap`` to fit in the range.
    Both margins hold up to rounding to ``dtype`` and should exceed the finite
    difference step (``1e-5 * max(1, |x|)`` by default) many times over.
    """
    intervals = _validated_bounds(min_value, max_value, min_magnitude, avoid, margin, min_gap)
    resolved: Shape | st.SearchStrategy[Shape]
    if shape is None:
        resolved = shapes()
    elif isinstance(shape, int):
        resolved = (shape,)
    else:
        resolved = shape
    return _float_arrays(resolved, np.dtype(dtype), intervals, min_gap)


def broadcastable_shapes(
    num_shapes: int = 2,
    *,
    min_dims: int = 0,
    max_dims: int = DEFAULT_MAX_DIMS,
    max_side: int = DEFAULT_MAX_SIDE,
) -> st.SearchStrategy[BroadcastableShapes]:
    """``num_shapes`` mutually broadcastable shapes (pairs, triples, ...) and their result.

    Each draw is hypothesis' ``BroadcastableShapes(input_shapes, result_shape)``.
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    )


@st.composite
def broadcastable_arrays(
    draw: st.DrawFn, /, num_arrays: int = 2, *, dtype: Any = np.float64, **value_bounds: Any
) -> tuple[Array, ...]:
    """A tuple of float arrays of mutually broadcastable shapes.

    ``value_bounds`` (``min_value``, ``max_value``, ``min_magnitude``, ``avoid``,
    ``margin``, ``min_gap``)
    apply to every array, as in :func:`float_arrays`.
    """
    drawn = draw(broadcastable_shapes(num_arrays))
    return tuple(
        draw(float_arrays(shape, dtype=dtype, **value_bounds)) for shape in drawn.input_shapes
    )


def matmul_shapes(
    *, max_batch_dims: int = 2, max_side: int = DEFAULT_MAX_SIDE
) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Shape pairs valid for ``a @ b``: 1-d operands, matrices, and broadcast batches.

    Drawn from NumPy's own gufunc signature for matmul, ``(n?,k),(k,m?)->(n?,m?)``,
    so every case NumPy accepts can appear (vector @ vector, vector @ batch, ...).
    """
    signature = np.matmul.signature
    assert signature is not None  # matmul is a gufunc
    return hnp.mutually_broadcastable_shapes(
        signature=signature, max_dims=max_batch_dims, max_side=max_side
    ).map(lambda drawn: (drawn.input_shapes[0], drawn.input_shapes[1]))


@st.composite
def matmul_arrays(
    draw: st.DrawFn, /, *, dtype: Any = np.float64, **value_bounds: Any
) -> tuple[Array, Array]:
    """A pair of float arrays ``a, b`` for which ``a @ b`` is defined."""
    a_shape, b_shape = draw(matmul_shapes())
    return (
        draw(float_arrays(a_shape, dtype=dtype, **value_bounds)),
        draw(float_arrays(b_shape, dtype=dtype, **value_bounds)),
    )


def axes(
    ndim: int, *, allow_none: bool = True, allow_tuple: bool = True
) -> st.SearchStrategy[Axis]:
    """Valid ``axis`` arguments for an array of ``ndim`` dims: ``None``, ints, tuples.

    Ints and tuple entries may be negative; tuples never name an axis twice.
    """
    options: list[st.SearchStrategy[Axis]] = []
    if allow_none:
        options.append(st.none())
    if ndim > 0:
        options.append(st.integers(-ndim, ndim - 1))
    if allow_tuple:
        options.append(hnp.valid_tuple_axes(ndim))
    if not options:
        raise ValueError(f"axes: no axis argument is valid for ndim {ndim} with these options")
    return st.one_of(options)


def axis_and_keepdims(shape: Sequence[int]) -> st.SearchStrategy[tuple[Axis, bool]]:
    """``(axis, keepdims)`` pairs valid for a reduction of an array of ``shape``."""
    return st.tuples(axes(len(shape)), st.booleans())


@st.composite
def reshape_targets(draw: st.DrawFn, /, shape: Sequence[int], *, allow_infer: bool = True) -> Shape:
    """Shapes with as many elements as ``shape``, possibly with one ``-1`` to infer.

    The element count's prime factors are dealt out to a random number of axes
    (with unit axes sprinkled in), so every factorization can appear.
    """
    size = math.prod(shape)
    factors = _prime_factors(size)
    num_axes = draw(st.integers(0 if size == 1 else 1, max(1, len(factors)) + 1))
    if num_axes == 0:
        return ()
    sides = [1] * num_axes
    for factor in draw(st.permutations(factors)):
        sides[draw(st.integers(0, num_axes - 1))] *= factor
    if size > 0 and allow_infer and draw(st.booleans()):
        sides[draw(st.integers(0, num_axes - 1))] = -1
    return tuple(sides)


def _prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return [*factors, n] if n > 1 else factors


@st.composite
def mlp_params(
    draw: st.DrawFn,
    /,
    layer_sizes: Sequence[int] | st.SearchStrategy[Sequence[int]] | None = None,
    *,
    dtype: Any = np.float64,
    max_width: int = 6,
) -> dict[str, Array]:
    """An MLP's parameters ``{"W1", "b1", "W2", "b2", ...}`` for the given or drawn sizes.

    ``layer_sizes`` lists the widths from the input to the output
    (``[784, 128, 10]`` gives ``W1: (784, 128)``, ``b1: (128,)``, ``W2: (128, 10)``,
    ``b2: (10,)``); ``None`` draws 1 to 3 layers of widths 1 to ``max_width``.
    Weights are uniform in ``+-1/sqrt(fan_in)`` (the usual initialization scale,
    which keeps activations and gradients of order 1), biases in ``+-0.5``.
    """
    if layer_sizes is None:
        sizes = draw(st.lists(st.integers(1, max_width), min_size=2, max_size=4))
    elif isinstance(layer_sizes, st.SearchStrategy):
        sizes = list(draw(layer_sizes))
    else:
        sizes = list(layer_sizes)
    if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
        raise ValueError(f"mlp_params: need at least two positive layer sizes, got {sizes}")
    params: dict[str, Array] = {}
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"W{layer}"] = draw(
            float_arrays((fan_in, fan_out), dtype=dtype, min_value=-bound, max_value=bound)
        )
        params[f"b{layer}"] = draw(
            float_arrays((fan_out,), dtype=dtype, min_value=-0.5, max_value=0.5)
        )
    return params
