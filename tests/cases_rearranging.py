"""Cases for tests/test_numpy_coverage.py: elements rearranged (tinygrad_np/rearranging.py)."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy_cases import OpCase, float_array

from tinygrad_np.testing import strategies as tst


def one_array(statics=lambda data, shape: {}, gap=0.0, **shape_bounds):
    """Draw one array of any small shape (within ``shape_bounds``) and its statics; ``gap``
    keeps its values that far apart (no ties for sorting)."""

    def draw(data, dtype):
        shape = data.draw(tst.shapes(**shape_bounds))
        high = max(2.0, gap * np.prod(shape))
        x = float_array(data, dtype, shape, min_value=-high, max_value=high, min_gap=gap)
        return (x,), statics(data, x.shape)

    return draw


def axis_or_none(data, ndim):
    return data.draw(st.none() | st.integers(-ndim, ndim - 1)) if ndim else None


def roll_statics(data, shape):
    ndim = len(shape)
    if not ndim or data.draw(st.booleans()):
        return {"shift": data.draw(st.integers(-5, 5)), "axis": axis_or_none(data, ndim)}
    axes = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=3))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(axes), max_size=len(axes)))
    return {"shift": tuple(shifts), "axis": tuple(axes)}


def flip_statics(data, shape):
    return {"axis": data.draw(tst.axes(len(shape)))}


def rot90_statics(data, shape):
    ndim = len(shape)
    first, second = data.draw(st.permutations(range(ndim)))[:2]
    axes = (first - ndim if data.draw(st.booleans()) else first, second)
    return {"k": data.draw(st.integers(-5, 5)), "axes": axes}


def tile_statics(data, shape):
    reps = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    return {"reps": reps[0] if len(reps) == 1 and data.draw(st.booleans()) else tuple(reps)}


def repeat_statics(data, shape):
    axis = axis_or_none(data, len(shape))
    length = int(np.prod(shape)) if axis is None else shape[axis]
    if data.draw(st.booleans()):
        return {"repeats": data.draw(st.integers(0, 3)), "axis": axis}
    counts = st.lists(st.integers(0, 3), min_size=length, max_size=length)
    return {"repeats": data.draw(counts), "axis": axis}


def pad_statics(data, shape):
    ndim = len(shape)
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    width = st.integers(0, 3)
    per_axis = st.lists(st.tuples(width, width), min_size=ndim, max_size=ndim).map(tuple)
    pad_width = data.draw(st.one_of(width, st.tuples(width, width), *[per_axis] * (ndim > 0)))
    statics = {"pad_width": pad_width, "mode": mode}
    if mode == "constant" and data.draw(st.booleans()):
        statics["constant_values"] = data.draw(st.floats(-2, 2))
    return statics


def partition_statics(data, shape):
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    length = int(np.prod(shape)) if axis is None else shape[axis]
    kth = st.integers(-length, length - 1)
    return {"kth": data.draw(kth | st.lists(kth, min_size=1, max_size=3)), "axis": axis}


def diag_statics(data, shape):
    return {"k": data.draw(st.integers(-4, 4))}


def diagonal_statics(data, shape):
    ndim = len(shape)
    axis1, axis2 = data.draw(hnp.valid_tuple_axes(ndim, min_size=2, max_size=2))
    return {"offset": data.draw(st.integers(-4, 4)), "axis1": axis1, "axis2": axis2}


def _torch_flip(torch):
    def flip(x, axis):
        axes = tuple(range(x.dim())) if axis is None else axis
        return torch.flip(x, (axes,) if isinstance(axes, int) else axes)

    return flip


def _torch_repeat(torch):
    def repeat(x, repeats, axis):
        counts = repeats if isinstance(repeats, int) else torch.tensor(repeats)
        return torch.repeat_interleave(x, counts, dim=axis)

    return repeat


def _torch_triangle(torch, name):
    def triangle(m, k):  # a 1-d m is the rows of a square matrix, as in NumPy
        return getattr(torch, name)(m.expand(len(m), len(m)) if m.dim() == 1 else m, diagonal=k)

    return triangle


def _jax_triangle(jnp, name):
    def triangle(m, k):  # a 1-d m is the rows of a square matrix, as in NumPy
        return getattr(jnp, name)(jnp.broadcast_to(m, (len(m), len(m))) if m.ndim == 1 else m, k)

    return triangle


CASES = [
    OpCase(
        np.roll,
        one_array(roll_statics),
        torch=lambda torch: lambda a, shift, axis: torch.roll(a, shift, axis),
        jax=lambda jnp: jnp.roll,
    ),
    OpCase(np.flip, one_array(flip_statics), torch=_torch_flip, jax=lambda jnp: jnp.flip),
    OpCase(
        np.fliplr,
        one_array(min_dims=2),
        torch=lambda torch: torch.fliplr,
        jax=lambda jnp: jnp.fliplr,
    ),
    OpCase(
        np.flipud,
        one_array(min_dims=1),
        torch=lambda torch: torch.flipud,
        jax=lambda jnp: jnp.flipud,
    ),
    OpCase(
        np.rot90,
        one_array(rot90_statics, min_dims=2),
        torch=lambda torch: lambda m, k, axes: torch.rot90(m, k, axes),
        jax=lambda jnp: jnp.rot90,
    ),
    OpCase(
        np.tile,
        one_array(tile_statics),
        torch=lambda torch: (
            lambda x, reps: torch.tile(x, (reps,) if isinstance(reps, int) else reps)
        ),
        jax=lambda jnp: jnp.tile,
    ),
    OpCase(
        np.repeat,
        one_array(repeat_statics),
        method="repeat",
        torch=_torch_repeat,
        jax=lambda jnp: lambda x, repeats, axis: jnp.repeat(x, np.asarray(repeats), axis=axis),
    ),
    OpCase(np.pad, one_array(pad_statics), jax=lambda jnp: jnp.pad),
    OpCase(
        np.sort,
        one_array(lambda data, shape: {"axis": axis_or_none(data, len(shape))}, gap=0.1),
        torch=lambda torch: (
            lambda a, axis: (
                torch.sort(
                    a.reshape(-1) if axis is None else a, dim=0 if axis is None else axis
                ).values
            )
        ),
        jax=lambda jnp: jnp.sort,
    ),
    # No torch or jax: the order of the elements around the kth is NumPy's own.
    OpCase(np.partition, one_array(partition_statics, gap=0.1, min_dims=1)),
    OpCase(
        np.diag,
        one_array(diag_statics, min_dims=1, max_dims=2),
        torch=lambda torch: lambda v, k: torch.diag(v, diagonal=k),
        jax=lambda jnp: jnp.diag,
    ),
    OpCase(
        np.diagonal,
        one_array(diagonal_statics, min_dims=2),
        method="diagonal",
        torch=lambda torch: lambda a, offset, axis1, axis2: torch.diagonal(a, offset, axis1, axis2),
        jax=lambda jnp: jnp.diagonal,
    ),
    OpCase(
        np.tril,
        one_array(diag_statics, min_dims=1),
        torch=lambda torch: _torch_triangle(torch, "tril"),
        jax=lambda jnp: _jax_triangle(jnp, "tril"),
    ),
    OpCase(
        np.triu,
        one_array(diag_statics, min_dims=1),
        torch=lambda torch: _torch_triangle(torch, "triu"),
        jax=lambda jnp: _jax_triangle(jnp, "triu"),
    ),
]
