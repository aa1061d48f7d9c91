"""Cases for tests/test_numpy_coverage.py: arrays built from pieces and cut into pieces.

The joining functions take their arrays as one list argument, checked as a whole (every
array in it is differentiated); lists mixing Tensors with plain arrays and numbers, which
the table cannot express, are tests/test_construction.py's. ``tg.array``, ``tg.asarray``
and ``tg.full`` have no NumPy spelling that could return a Tensor, so their cases call
them directly.
"""

import numpy as np
from hypothesis import strategies as st
from numpy_cases import OpCase, float_array

import tinygrad_np as tg
from tinygrad_np.testing import strategies as tst


def arrays_along(data, dtype, shape, axis, count=None):
    """``count`` (1 to 3) arrays of ``shape`` except along ``axis``, where lengths vary
    (no axis: all of ``shape``)."""
    count = data.draw(st.integers(1, 3)) if count is None else count
    arrays = []
    for _ in range(count):
        piece = list(shape)
        if axis is not None:
            piece[axis] = data.draw(st.integers(0 if shape else 1, 3))
        arrays.append(float_array(data, dtype, tuple(piece)))
    return arrays


def nested_draw(data, dtype):
    """A list (of lists) of same-shaped arrays, as ``np.array`` takes them."""
    shape = data.draw(tst.shapes(max_dims=2, max_side=3))
    rows = data.draw(st.integers(1, 3))
    if data.draw(st.booleans()):
        return ([float_array(data, dtype, shape) for _ in range(rows)],), {}
    cols = data.draw(st.integers(1, 2))
    return ([[float_array(data, dtype, shape) for _ in range(cols)] for _ in range(rows)],), {}


def asarray_draw(data, dtype):
    if data.draw(st.booleans()):
        return (float_array(data, dtype),), {}
    shape = data.draw(tst.shapes(max_dims=2, max_side=3))
    return ([float_array(data, dtype, shape) for _ in range(data.draw(st.integers(1, 3)))],), {}


def stack_draw(data, dtype):
    shape = data.draw(tst.shapes(max_dims=2))
    arrays = arrays_along(data, dtype, shape, None)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    return (arrays,), {"axis": axis}


def concatenate_draw(data, dtype):
    shape = data.draw(tst.shapes(min_dims=1, max_dims=3))
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    if axis is None:  # any shapes: all are flattened
        arrays = [float_array(data, dtype) for _ in range(data.draw(st.integers(1, 3)))]
    else:
        arrays = arrays_along(data, dtype, shape, axis)
    sequence = data.draw(st.sampled_from([list, tuple]))
    return (sequence(arrays),), {"axis": axis}


def stack_family(join_axis):
    """Draws for vstack/hstack/dstack/column_stack: arrays of one number of dimensions,
    varying in length along the axis ``join_axis(ndim)`` they are joined along (None:
    arrays of one shape)."""

    def draw(data, dtype):
        shape = data.draw(tst.shapes(max_dims=3))
        arrays = arrays_along(data, dtype, shape, join_axis(len(shape)))
        return (data.draw(st.sampled_from([list, tuple]))(arrays),), {}

    return draw


def append_draw(data, dtype):
    shape = data.draw(tst.shapes(max_dims=3))
    axis = None if not shape else data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    if axis is None:
        return (float_array(data, dtype, shape), float_array(data, dtype)), {"axis": None}
    arr, values = arrays_along(data, dtype, shape, axis, count=2)
    return (arr, values), {"axis": axis}


def split_draw(equal_sections, along=None, min_dims=1, any_indices=False):
    """An array and a way to cut it: a number of sections, or increasing indices within
    the array (or, with ``any_indices``, unsorted, negative or past the end, which slice as
    Python slices do). ``along(ndim)`` fixes the axis, else one is drawn."""

    def draw(data, dtype):
        x = float_array(data, dtype, tst.shapes(min_dims=min_dims, max_side=5))
        statics = {}
        axis = along(x.ndim) if along else data.draw(st.integers(-x.ndim, x.ndim - 1))
        length = x.shape[axis]
        if data.draw(st.booleans()):
            divisors = [d for d in range(1, length + 1) if length % d == 0]
            sections = st.sampled_from(divisors) if equal_sections else st.integers(1, length + 2)
            statics["indices_or_sections"] = data.draw(sections)
        elif any_indices:
            index = st.integers(-length - 1, length + 1)
            statics["indices_or_sections"] = data.draw(st.lists(index, max_size=3))
        else:
            indices = st.lists(st.integers(0, length), max_size=3).map(sorted)
            statics["indices_or_sections"] = data.draw(indices)
        if along is None:
            statics["axis"] = axis
        return (x,), statics

    return draw


def full_draw(data, dtype):
    fill = float_array(data, dtype, tst.shapes(max_dims=2, max_side=3))
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    shape = (*lead, *(n if n != 1 else data.draw(st.integers(1, 3)) for n in fill.shape))
    if not shape or data.draw(st.booleans()):
        return (shape, fill), {}
    return (list(shape), fill), {}


def linspace_draw(data, dtype):
    shapes = data.draw(tst.broadcastable_shapes(2, max_dims=2, max_side=3))
    start, stop = (float_array(data, dtype, shape) for shape in shapes.input_shapes)
    ndim = len(shapes.result_shape) + 1
    retstep = data.draw(st.booleans())
    num = data.draw(st.integers(2 if retstep else 0, 5))  # (one sample's step is NaN)
    endpoint = data.draw(st.booleans())
    statics = {"num": num, "endpoint": endpoint, "retstep": retstep}
    statics["axis"] = data.draw(st.integers(-ndim, ndim - 1))
    return (start, stop), statics


def with_casting(draw):
    """``draw``'s arguments with one of NumPy's casting rules added (np.row_stack passes one
    to vstack); the pieces share one dtype, so every rule allows the join."""

    def with_rule(data, dtype):
        args, statics = draw(data, dtype)
        rules = st.sampled_from(["no", "equiv", "safe", "same_kind", "unsafe"])
        return args, {**statics, "casting": data.draw(rules)}

    return with_rule


def _torch_cat(torch):
    def cat(arrays, axis):
        if axis is None:
            return torch.cat([a.reshape(-1) for a in arrays])
        return torch.cat(list(arrays), dim=axis)

    return cat


CASES = [
    OpCase(tg.array, nested_draw, id="array", tg_function=None, jax=lambda jnp: jnp.array),
    OpCase(tg.asarray, asarray_draw, id="asarray", tg_function=None, jax=lambda jnp: jnp.asarray),
    OpCase(
        np.stack,
        stack_draw,
        torch=lambda torch: lambda arrays, axis: torch.stack(arrays, dim=axis),
        jax=lambda jnp: jnp.stack,
    ),
    OpCase(np.concatenate, concatenate_draw, torch=_torch_cat, jax=lambda jnp: jnp.concatenate),
    OpCase(
        np.vstack,
        stack_family(lambda ndim: 0 if ndim >= 2 else None),
        torch=lambda torch: torch.vstack,
        jax=lambda jnp: jnp.vstack,
    ),
    OpCase(
        np.hstack,
        stack_family(lambda ndim: None if ndim == 0 else 0 if ndim == 1 else 1),
        torch=lambda torch: torch.hstack,
        jax=lambda jnp: jnp.hstack,
    ),
    OpCase(
        np.dstack,
        stack_family(lambda ndim: 2 if ndim >= 3 else None),
        torch=lambda torch: torch.dstack,
        jax=lambda jnp: jnp.dstack,
    ),
    OpCase(
        np.column_stack,
        stack_family(lambda ndim: 1 if ndim >= 2 else None),
        torch=lambda torch: torch.column_stack,
        jax=lambda jnp: jnp.column_stack,
    ),
    # (concatenate, stack and hstack take casting= the same way: tests/test_construction.py)
    OpCase(
        np.vstack,
        with_casting(stack_family(lambda ndim: 0 if ndim >= 2 else None)),
        id="vstack with casting",
    ),
    OpCase(np.append, append_draw, jax=lambda jnp: jnp.append),
    OpCase(np.split, split_draw(equal_sections=True), jax=lambda jnp: jnp.split),
    # (JAX and PyTorch slice at unsorted or out-of-range indices otherwise)
    OpCase(np.split, split_draw(True, any_indices=True), id="split at any indices"),
    OpCase(np.array_split, split_draw(False, any_indices=True), id="array_split at any indices"),
    OpCase(
        np.array_split,
        split_draw(equal_sections=False),
        torch=lambda torch: (
            lambda x, indices_or_sections, axis: torch.tensor_split(
                x, indices_or_sections, dim=axis
            )
        ),
        jax=lambda jnp: jnp.array_split,
    ),
    OpCase(
        np.hsplit, split_draw(True, lambda ndim: 1 if ndim > 1 else 0), jax=lambda jnp: jnp.hsplit
    ),
    OpCase(np.vsplit, split_draw(True, lambda ndim: 0, min_dims=2), jax=lambda jnp: jnp.vsplit),
    OpCase(np.dsplit, split_draw(True, lambda ndim: 2, min_dims=3), jax=lambda jnp: jnp.dsplit),
    OpCase(tg.full, full_draw, id="full", tg_function=None, jax=lambda jnp: jnp.full),
    OpCase(np.linspace, linspace_draw, jax=lambda jnp: jnp.linspace),
]
