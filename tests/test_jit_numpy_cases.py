"""tg.jit over every case of the NumPy table (tests/numpy_cases.py): the function's value and
gradient, traced at one draw and replayed at the same arguments with their elements shuffled,
are bitwise those of eager execution (or both raise the same error)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy_cases import all_cases
from test_jit import assert_bitwise_equal
from test_numpy_coverage import _compared, _split

import tinygrad_np as tg
from tinygrad_np.jit import ConcretizationTypeError

CASES = all_cases()
# Cases a trace refuses, each with its reason (a ConcretizationTypeError naming the call):
REFUSED = {
    # the rank, counted in NumPy, decides which terms of the gradient exist (they vanish at
    # full rank)
    "linalg.pinv": "conversion to an ndarray",
    "linalg.pinv hermitian": "conversion to an ndarray",
    # NumPy's own np.full converts its fill value (tg.full takes a traced one)
    "full": "conversion to an ndarray",
}


def _shuffled(value, rng):
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return rng.permutation(value.ravel()).reshape(value.shape).astype(value.dtype)
    if isinstance(value, list | tuple):
        return type(value)(_shuffled(v, rng) for v in value)
    return value


def _outcome(f, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return "value", f(*args)
        except Exception as error:  # compared: both must raise the same kind
            return "error", type(error)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@settings(max_examples=max(5, settings.default.max_examples // 8))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_jitted_numpy_cases_replay_eager_values_and_gradients(case, data, seed):
    args, statics = case.draw(data, np.float64)
    nums, call = _split(case, args)

    def f(*diff):
        def total(*d):
            out = _compared(case, case.function(*call(case.function, *d), **statics))
            return sum(tg.sum(leaf) for leaf in tg.tree_leaves(out))

        out = _compared(case, case.function(*call(case.function, *diff), **statics))
        return out, tg.grad(total, tuple(range(len(diff))))(*diff)

    jitted = tg.jit(f)
    first = tuple(args[n] for n in nums)
    kind, expected = _outcome(f, *first)
    if kind == "error":
        return
    if case.name in REFUSED:
        with pytest.raises(ConcretizationTypeError, match=REFUSED[case.name]):
            jitted(*first)
        return
    assert_bitwise_equal(jitted(*first), expected)
    other = tuple(_shuffled(a, np.random.default_rng(seed)) for a in first)
    kind, expected = _outcome(f, *other)
    got_kind, got = _outcome(jitted, *other)
    if kind == "error" or got_kind == "error":
        assert (got_kind, got) == (kind, expected), case.name
    else:
        assert_bitwise_equal(got, expected)
