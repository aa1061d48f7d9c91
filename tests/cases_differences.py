"""Cases for tests/test_numpy_coverage.py: ``np.gradient`` (tinygrad_np/differences.py).

The spacings are differentiated too: one number for every axis, or per axis a number or
the coordinates of the samples (increasing, at least 0.3 apart, so that no step is near 0).
"""

import numpy as np
from hypothesis import strategies as st
from numpy_cases import OpCase, float_array

from tinygrad_np.testing import strategies as tst


def coordinates(data, dtype, length):
    steps = float_array(data, dtype, (length,), min_value=0.3, max_value=1.5)
    return (np.cumsum(steps, dtype=np.float64) - 1.0).astype(dtype)


def gradient_draw(data, dtype):
    edge_order = data.draw(st.sampled_from([1, 2]))
    f = float_array(data, dtype, tst.shapes(min_dims=1, min_side=edge_order + 1))
    axis = data.draw(st.none() | tst.axes(f.ndim, allow_none=False))
    axes = range(f.ndim) if axis is None else np.atleast_1d(axis)
    kind = data.draw(st.sampled_from(["none", "one number", "per axis"]))
    if kind == "none":
        spacings = ()
    elif kind == "one number":
        spacings = (float_array(data, dtype, (), min_value=0.3, max_value=2.0),)
    else:
        spacings = tuple(
            coordinates(data, dtype, f.shape[a])
            if data.draw(st.booleans())
            else float_array(data, dtype, (), min_value=0.3, max_value=2.0)
            for a in axes
        )
    return (f, *spacings), {"axis": axis, "edge_order": edge_order}


CASES = [OpCase(np.gradient, gradient_draw)]
