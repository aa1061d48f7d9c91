"""Cases for tests/test_numpy_coverage.py: reductions and statistics (see tests/numpy_cases.py).

Every case draws its axis arguments (``None``, an int counted from either end, a tuple)
and ``keepdims`` where NumPy takes them. Conditioning as in tests/cases_elementwise.py:
``max``/``min``/``ptp``/``std`` see values pairwise 0.05 apart (no ties, no constant slice),
``prod`` magnitudes in [0.7, 1.4] so that products of up to 27 factors stay in [1e-4, 1e4].
"""

import numpy as np
from cases_elementwise import KINK_MARGIN, MAX_SIDE, jnp_only, shapes
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy_cases import OpCase

import tinygrad_np as tg
from tinygrad_np.testing import strategies as tst


def reduction(min_gap=0.0, min_magnitude=0.0, low=-2.0, high=2.0):
    """Draw ``x`` and ``axis``/``keepdims`` statics."""

    def draw(data, dtype):
        x = data.draw(
            tst.float_arrays(
                shapes(),
                dtype=dtype,
                min_value=low,
                max_value=high,
                min_gap=min_gap,
                min_magnitude=min_magnitude,
            )
        )
        axis, keepdims = data.draw(tst.axis_and_keepdims(x.shape))
        return (x,), {"axis": axis, "keepdims": keepdims}

    return draw


def prod_with_zeros(data, dtype):
    """``prod``'s arguments with exact zeros at drawn places (a polynomial: smooth there)."""
    (x,), statics = reduction(low=-1.4, high=1.4, min_magnitude=0.7)(data, dtype)
    zeros = data.draw(hnp.arrays(np.bool_, x.shape))
    return (np.where(zeros, 0, x).astype(dtype),), statics


def statistics(min_gap=0.0):
    """Draw ``x``, ``axis``/``keepdims`` and a ``ddof`` smaller than every slice's length."""

    def draw(data, dtype):
        (x,), statics = reduction(min_gap=min_gap)(data, dtype)
        axis = statics["axis"]
        axes = range(x.ndim) if axis is None else np.atleast_1d(axis)
        count = int(np.prod([x.shape[a] for a in axes]))
        return (x,), {**statics, "ddof": data.draw(st.integers(0, count - 1))}

    return draw


def cumsum_arguments(data, dtype):
    x = data.draw(tst.float_arrays(shapes(), dtype=dtype))
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None
    return (x,), {"axis": axis}


def diff_arguments(data, dtype):
    x = data.draw(tst.float_arrays(tst.shapes(min_dims=1, max_side=MAX_SIDE), dtype=dtype))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    return (x,), {"n": data.draw(st.integers(0, 3)), "axis": axis}


def diff_with_ends(data, dtype):
    """``diff(x, n, axis, prepend, append)``, positional: ends that are arrays are differentiated.

    An end is a scalar (broadcast to one slice) or an array of one or two slices.
    """
    x = data.draw(tst.float_arrays(tst.shapes(min_dims=1, max_side=MAX_SIDE), dtype=dtype))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))

    def end():
        shape = list(x.shape)
        shape[axis] = data.draw(st.integers(1, 2))
        return data.draw(st.sampled_from([(), tuple(shape)]))

    prepend = data.draw(tst.float_arrays(end(), dtype=dtype))
    append = data.draw(tst.float_arrays(end(), dtype=dtype))
    prepend = prepend[()] if prepend.ndim == 0 else prepend  # a NumPy scalar: a constant end
    return (x, data.draw(st.integers(1, 2)), axis, prepend, append), {}


def trace_arguments(data, dtype):
    x = data.draw(tst.float_arrays(tst.shapes(min_dims=2, max_side=MAX_SIDE), dtype=dtype))
    axis1, axis2 = data.draw(st.permutations(range(x.ndim)))[:2]
    from_end = data.draw(st.booleans())
    if from_end:
        axis1 -= x.ndim
    offset = data.draw(st.integers(-MAX_SIDE, MAX_SIDE))
    return (x,), {"offset": offset, "axis1": axis1, "axis2": axis2}


def torch_dims(x, axis):
    """``x`` and torch's ``dim`` for NumPy's ``axis``: ``axis=()`` reduces over no axis in
    NumPy but over all in torch, so there a unit axis is added and reduced instead."""
    if axis == ():
        return x.unsqueeze(-1), -1
    return x, tuple(range(x.ndim)) if axis is None else axis


def torch_reduction(name):
    def function(torch):
        def reduce(x, axis=None, keepdims=False):
            x, dims = torch_dims(x, axis)
            return getattr(torch, name)(x, dim=dims, keepdim=keepdims and axis != ())

        return reduce

    return function


def torch_statistic(name):
    def function(torch):
        def reduce(x, axis=None, keepdims=False, ddof=0):
            x, dims = torch_dims(x, axis)
            keep = keepdims and axis != ()
            return getattr(torch, name)(x, dim=dims, keepdim=keep, correction=ddof)

        return reduce

    return function


def torch_cumsum(torch):
    return lambda x, axis=None: torch.cumsum(x.flatten() if axis is None else x, dim=axis or 0)


SMOOTH = reduction()
UNTIED = reduction(min_gap=KINK_MARGIN)

CASES = [
    OpCase(np.sum, SMOOTH, method="sum", torch=torch_reduction("sum"), jax=jnp_only("sum")),
    OpCase(np.mean, SMOOTH, method="mean", torch=torch_reduction("mean"), jax=jnp_only("mean")),
    OpCase(np.max, UNTIED, method="max", torch=torch_reduction("amax"), jax=jnp_only("max")),
    OpCase(np.amax, UNTIED, tg_function=tg.max, jax=jnp_only("max")),
    OpCase(np.min, UNTIED, method="min", torch=torch_reduction("amin"), jax=jnp_only("min")),
    OpCase(np.amin, UNTIED, tg_function=tg.min, jax=jnp_only("min")),
    # ndarray lost its ptp method in NumPy 2; the Tensor's t.ptp() is np.ptp(t).
    OpCase(np.ptp, UNTIED, jax=jnp_only("ptp")),
    OpCase(
        np.prod,
        reduction(low=-1.4, high=1.4, min_magnitude=0.7),
        method="prod",
        jax=jnp_only("prod"),
    ),
    OpCase(np.prod, prod_with_zeros, id="prod[zeros]", method="prod", jax=jnp_only("prod")),
    OpCase(
        np.cumsum,
        cumsum_arguments,
        method="cumsum",
        torch=lambda torch: torch_cumsum(torch),
        jax=jnp_only("cumsum"),
    ),
    OpCase(np.diff, diff_arguments, jax=jnp_only("diff")),
    OpCase(
        np.diff,
        diff_with_ends,
        id="diff[prepend, append]",
        tg_function=lambda x, n, axis, prepend, append: tg.diff(
            x, n=n, axis=axis, prepend=prepend, append=append
        ),
        jax=jnp_only("diff"),
    ),
    OpCase(np.var, statistics(), method="var", torch=torch_statistic("var"), jax=jnp_only("var")),
    # 0.05 apart: a slice is constant only when it has one element, where std's gradient is
    # 0, as in torch (JAX's is NaN there).
    OpCase(np.std, statistics(min_gap=KINK_MARGIN), method="std", torch=torch_statistic("std")),
    OpCase(
        np.trace,
        trace_arguments,
        method="trace",
        tg_function=tg.reductions.trace,
        jax=jnp_only("trace"),
    ),
]
