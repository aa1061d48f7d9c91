"""Cases for tests/test_numpy_coverage.py: elementwise functions (see tests/numpy_cases.py)."""

import numpy as np
from numpy_cases import OpCase

from tinygrad_np.testing import strategies as tst


def unary(low, high, min_magnitude=0.0):
    """Draw one array with values in [low, high] (and |x| >= min_magnitude)."""

    def draw(data, dtype):
        shape = data.draw(tst.shapes())
        x = data.draw(
            tst.float_arrays(
                shape, dtype=dtype, min_value=low, max_value=high, min_magnitude=min_magnitude
            )
        )
        return (x,), {}

    return draw


CASES = [
    OpCase(np.sin, unary(-4, 4), torch=lambda t: t.sin, jax=lambda jnp: jnp.sin),
]
