"""Functions whose results carry no gradient give NumPy's plain result on traced Tensors.

Generated from tinygrad_np.numpy_dispatch's ``CONSTANT_UFUNCS`` and ``CONSTANT_FUNCTIONS``:
each one, called inside a transform with traced Tensors for its array arguments, returns
exactly what NumPy returns on the values (type, dtype, value) and nothing that could carry
a gradient; so do its ``tg.*`` spelling (tinygrad_np.nograd) and its ndarray method on a
Tensor, where they exist. A member of the sets without arguments below fails, so a new
constant function cannot go untested.
"""

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_np as tg
from tinygrad_np import nograd
from tinygrad_np.numpy_dispatch import CONSTANT_FUNCTIONS, CONSTANT_UFUNCS
from tinygrad_np.testing import strategies as tst

# Values with the points where rounding, signs, predicates and comparisons change: exact
# integers and halves, zeros of both signs, infinities and NaN.
SPECIAL = st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.0, -1.5, 2.5, np.inf, -np.inf, np.nan])
VALUES = st.floats(-3, 3, allow_subnormal=False) | SPECIAL


def arrays(shape):
    return hnp.arrays(np.float64, shape, elements=VALUES)


@st.composite
def one_array(draw):
    return (draw(arrays(tst.shapes(max_side=3))),), {}


@st.composite
def two_arrays(draw):
    shapes = draw(tst.broadcastable_shapes(2, max_side=3)).input_shapes
    return (draw(arrays(shapes[0])), draw(arrays(shapes[1]))), {}


@st.composite
def with_axis(draw):
    (x,), _ = draw(one_array())
    return (x,), {"axis": draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None}


@st.composite
def rounding(draw):
    (x,), _ = draw(one_array())
    return (x,), {"decimals": draw(st.integers(-1, 2))}


@st.composite
def searchsorted_arguments(draw):
    a = np.sort(draw(arrays(st.tuples(st.integers(0, 5)))))
    (v,), _ = draw(one_array())
    return (a, v), {"side": draw(st.sampled_from(["left", "right"]))}


@st.composite
def argpartition_arguments(draw):
    x = draw(arrays(st.tuples(st.integers(1, 6))))
    return (x, draw(st.integers(0, x.size - 1))), {}


@st.composite
def array_and_number(draw):
    (x,), _ = draw(one_array())
    return (x, draw(st.floats(-2, 2))), {}


@st.composite
def angle_arguments(draw):
    (x,), _ = draw(one_array())
    return (x,), {"deg": draw(st.booleans())}


# How to call each constant function; ufuncs take one array per input by default.
ARGUMENTS = {
    np.angle: angle_arguments(),
    np.argmax: with_axis(),
    np.argmin: with_axis(),
    np.argsort: with_axis(),
    np.argpartition: argpartition_arguments(),
    np.count_nonzero: with_axis(),
    np.all: with_axis(),
    np.any: with_axis(),
    np.round: rounding(),
    np.around: rounding(),
    np.searchsorted: searchsorted_arguments(),
    np.full_like: array_and_number(),
    np.result_type: array_and_number(),
    np.isclose: two_arrays(),
    np.allclose: two_arrays(),
    np.array_equal: two_arrays(),
    np.array_equiv: two_arrays(),
}

CONSTANTS = sorted(CONSTANT_UFUNCS | CONSTANT_FUNCTIONS, key=lambda f: f.__name__)


def arguments(function):
    if function in ARGUMENTS:
        return ARGUMENTS[function]
    if isinstance(function, np.ufunc):
        return two_arrays() if function.nin == 2 else one_array()
    return one_array()


def spellings(function, args):
    """(label, callable) for NumPy's function, its tg.* name and the ndarray method."""
    yield f"np.{function.__name__}", function
    tg_function = getattr(nograd, function.__name__, None)
    if tg_function is not None:
        yield f"tg.{function.__name__}", tg_function
    if callable(getattr(np.ndarray, function.__name__, None)):
        name = function.__name__
        yield f"Tensor.{name}", lambda x, *rest, **kw: getattr(x, name)(*rest, **kw)


def assert_same_plain_result(got, want, label):
    if isinstance(want, tuple):  # nonzero: a tuple of index arrays
        assert isinstance(got, tuple) and len(got) == len(want), label
        for g, w in zip(got, want, strict=True):
            assert_same_plain_result(g, w, label)
        return
    assert not isinstance(got, tg.Tensor), f"{label} returned a Tensor"
    assert type(got) is type(want), f"{label}: {type(got)} against NumPy's {type(want)}"
    if isinstance(want, np.ndarray | np.generic):
        assert got.dtype == want.dtype, f"{label}: dtype {got.dtype} against {want.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=label)
    else:  # a Python number or a dtype
        assert got == want, f"{label}: {got!r} against NumPy's {want!r}"


# A quarter of the profile's examples (10 by default): each array is half special values, so
# ten draws meet every kind, and the 50 functions stay within a few seconds.
@pytest.mark.parametrize("function", CONSTANTS, ids=lambda f: f.__name__)
@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(data=st.data())
def test_traced_tensors_in_numpys_plain_result_out(function, data):
    args, kwargs = data.draw(arguments(function))
    traced_positions = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    try:
        with np.errstate(all="ignore"):  # floor_divide by 0, comparisons with NaN
            expected, refusal = function(*args, **kwargs), None
    except (TypeError, ValueError) as error:  # e.g. np.nonzero of a 0-d array
        expected, refusal = None, type(error)
    checked = []

    def f(*traced):
        full = list(args)
        for i, t in zip(traced_positions, traced, strict=True):
            full[i] = t
        for label, spelling in spellings(function, args):
            if refusal is not None:
                with pytest.raises(refusal):
                    spelling(*full, **kwargs)
            else:
                with np.errstate(all="ignore"):
                    got = spelling(*full, **kwargs)
                assert_same_plain_result(got, expected, label)
            checked.append(label)
        return traced

    tg.vjp(f, *(args[i] for i in traced_positions))
    assert f"np.{function.__name__}" in checked


def test_the_tg_functions_are_the_constant_numpy_functions_and_say_so():
    for name in nograd.__all__:
        function = getattr(tg, name)
        assert function is getattr(nograd, name)
        assert getattr(np, name) in CONSTANT_UFUNCS | CONSTANT_FUNCTIONS, name
        assert "no gradient" in function.__doc__, name
        assert inspect.signature(function) == inspect.signature(getattr(np, name)), name


def test_floor_division_of_a_traced_tensor_is_a_plain_array():
    seen = []

    def f(x):
        seen.extend([x // 0.5, 3.0 // x])
        return tg.sum(x)

    x = np.array([0.75, -1.25, 2.0])
    tg.grad(f)(x)
    assert [type(s) for s in seen] == [np.ndarray, np.ndarray]
    np.testing.assert_array_equal(seen[0], x // 0.5)
    np.testing.assert_array_equal(seen[1], 3.0 // x)


def test_rounding_has_zero_gradient_where_numpy_has_one():
    # d/dx floor(x) * x = floor(x): the floor is a constant factor, never differentiated.
    x = np.array([0.25, -1.5, 2.75])
    np.testing.assert_array_equal(tg.grad(lambda x: tg.sum(np.floor(x) * x))(x), np.floor(x))
    assert math.isclose(tg.grad(lambda x: x * np.round(x, 1))(np.float64(1.26)), 1.3)
