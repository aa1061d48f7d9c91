"""Cases for tests/test_numpy_coverage.py: shape ops (see tests/numpy_cases.py).

Shapes, axes and the other static arguments are drawn over their whole valid range:
0-d and 1-d arrays, negative axes, ``axis=None`` and tuples of axes.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy_cases import OpCase, float_array

import tinygrad_np as tg
from tinygrad_np.testing import strategies as tst


def one_array(statics=lambda data, shape: {}, **shape_bounds):
    """Draw one array of any small shape (within ``shape_bounds``) and its statics."""

    def draw(data, dtype):
        x = float_array(data, dtype, tst.shapes(**shape_bounds))
        return (x,), statics(data, x.shape)

    return draw


def with_unit_axes(data, dtype):
    """An array whose shape has some axes of length 1 among the others."""
    shape = list(data.draw(tst.shapes(max_dims=2)))
    for _ in range(data.draw(st.integers(0, 2))):
        shape.insert(data.draw(st.integers(0, len(shape))), 1)
    return float_array(data, dtype, tuple(shape))


def reshape_statics(data, shape):
    return {"shape": data.draw(tst.reshape_targets(shape))}


def transpose_statics(data, shape):
    ndim = len(shape)
    axes = data.draw(st.none() | st.permutations(range(ndim)))
    if axes is not None:  # each axis also as its negative alias
        axes = tuple(a - ndim if data.draw(st.booleans()) else a for a in axes)
    return {"axes": axes}


def broadcast_statics(data, shape):
    target = [n if n != 1 else data.draw(st.integers(1, 3)) for n in shape]
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    return {"shape": (*lead, *target)}


def squeeze_draw(data, dtype):
    x = with_unit_axes(data, dtype)
    units = [i for i, n in enumerate(x.shape) if n == 1]
    chosen = data.draw(st.lists(st.sampled_from(units), unique=True)) if units else []
    as_negative = [i - x.ndim if data.draw(st.booleans()) else i for i in chosen]
    axis = data.draw(st.sampled_from([None, tuple(as_negative), *as_negative[:1]]))
    return (x,), {"axis": axis}


def expand_dims_statics(data, shape):
    added = data.draw(st.integers(1, 2))
    positions = data.draw(hnp.valid_tuple_axes(len(shape) + added, min_size=added, max_size=added))
    return {"axis": positions[0] if added == 1 and data.draw(st.booleans()) else positions}


def arrays_to_lift(data, dtype):
    """One to three arrays of 0 to 4 dimensions, for the atleast_*d functions."""
    count = data.draw(st.integers(1, 3))
    return tuple(float_array(data, dtype, tst.shapes(max_dims=4, max_side=2)) for _ in range(count))


def moveaxis_statics(data, shape):
    ndim = len(shape)
    count = data.draw(st.integers(0, ndim))
    source = data.draw(st.permutations(range(ndim)))[:count]
    destination = data.draw(st.permutations(range(-ndim, 0)))[:count]
    if count == 1 and data.draw(st.booleans()):
        return {"source": source[0], "destination": destination[0]}
    return {"source": tuple(source), "destination": tuple(destination)}


def swapaxes_statics(data, shape):
    axis = st.integers(-len(shape), len(shape) - 1)
    return {"axis1": data.draw(axis), "axis2": data.draw(axis)}


def rollaxis_statics(data, shape):
    ndim = len(shape)
    return {
        "axis": data.draw(st.integers(-ndim, ndim - 1)),
        "start": data.draw(st.integers(-ndim, ndim)),
    }


def _torch_permute(torch):
    def permute(x, axes):
        return torch.permute(x, tuple(reversed(range(x.dim()))) if axes is None else axes)

    return permute


def _torch_squeeze(torch):
    return lambda x, axis: torch.squeeze(x) if axis is None else torch.squeeze(x, axis)


CASES = [
    OpCase(
        np.reshape,
        one_array(reshape_statics),
        method="reshape",
        method_positional=("shape",),
        torch=lambda torch: lambda x, shape: torch.reshape(x, shape),
        jax=lambda jnp: jnp.reshape,
    ),
    OpCase(
        np.transpose,
        one_array(transpose_statics),
        torch=_torch_permute,
        jax=lambda jnp: jnp.transpose,
    ),
    OpCase(
        np.broadcast_to,
        one_array(broadcast_statics),
        torch=lambda torch: lambda x, shape: torch.broadcast_to(x, shape),
        jax=lambda jnp: jnp.broadcast_to,
    ),
    OpCase(
        np.squeeze,
        squeeze_draw,
        method="squeeze",
        torch=_torch_squeeze,
        jax=lambda jnp: jnp.squeeze,
    ),
    OpCase(np.expand_dims, one_array(expand_dims_statics), jax=lambda jnp: jnp.expand_dims),
    OpCase(
        np.ravel,
        one_array(lambda data, shape: {"order": data.draw(st.sampled_from("CF"))}),
        method="ravel",
        jax=lambda jnp: jnp.ravel,
    ),
    OpCase(
        np.ravel,
        one_array(lambda data, shape: {"order": data.draw(st.sampled_from("CF"))}),
        id="ravel as flatten",
        method="flatten",
        tg_function=None,
    ),
    OpCase(
        np.atleast_1d,
        lambda data, dtype: (arrays_to_lift(data, dtype), {}),
        torch=lambda torch: torch.atleast_1d,
        jax=lambda jnp: jnp.atleast_1d,
    ),
    OpCase(
        np.atleast_2d,
        lambda data, dtype: (arrays_to_lift(data, dtype), {}),
        torch=lambda torch: torch.atleast_2d,
        jax=lambda jnp: jnp.atleast_2d,
    ),
    OpCase(
        np.atleast_3d,
        lambda data, dtype: (arrays_to_lift(data, dtype), {}),
        torch=lambda torch: torch.atleast_3d,
        jax=lambda jnp: jnp.atleast_3d,
    ),
    OpCase(
        np.moveaxis,
        one_array(moveaxis_statics),
        torch=lambda torch: torch.moveaxis,
        jax=lambda jnp: jnp.moveaxis,
    ),
    OpCase(
        np.swapaxes,
        one_array(swapaxes_statics, min_dims=1),
        method="swapaxes",
        method_positional=("axis1", "axis2"),
        torch=lambda torch: lambda x, axis1, axis2: torch.swapaxes(x, axis1, axis2),
        jax=lambda jnp: jnp.swapaxes,
    ),
    OpCase(np.rollaxis, one_array(rollaxis_statics, min_dims=1), jax=lambda jnp: jnp.rollaxis),
    OpCase(
        np.matrix_transpose,
        one_array(min_dims=2),
        method="mT",
        torch=lambda torch: lambda x: x.mT,
        jax=lambda jnp: jnp.matrix_transpose,
    ),
    # From float32 the cast goes up to float64 and the gradient comes back down; from
    # float64 it changes nothing. The other direction (float64 to float32 rounds the value,
    # which finite differences at the default step cannot see past) is tests/test_shape.py's.
    OpCase(
        np.astype,  # (x, dtype, /): the dtype is positional
        lambda data, dtype: ((float_array(data, dtype), np.float64), {}),
        method="astype",
        tg_function=lambda x, dtype: tg.astype(x, dtype=dtype),
        dtype_argument=1,
        torch=lambda torch: lambda x, dtype: x.to(torch.float64),
        jax=lambda jnp: jnp.astype,
    ),
    OpCase(
        np.copy,
        one_array(),
        method="copy",
        torch=lambda torch: torch.clone,
        jax=lambda jnp: jnp.copy,
    ),
]
