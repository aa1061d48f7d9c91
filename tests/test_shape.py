"""Specification of the shape ops beyond the coverage table (tests/cases_shape.py).

``astype``'s dtype rules (float to float keeps the gradient and casts it back; to an
integer type the result is a constant), ``copy`` of an immutable Tensor, the ndarray
methods and properties with ndarray's calling conventions, and the errors.
"""

import re

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np.testing import check_grads

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 3))


def test_astype_to_a_narrower_float_keeps_the_gradient_in_the_input_dtype():
    def f(x):
        return x.astype(np.float32) * 3

    out, vjp_fn = tg.vjp(f, X)
    assert out.dtype == np.float32
    (g,) = vjp_fn(np.ones((2, 3), np.float32))
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, np.full((2, 3), 3.0))
    # The value is rounded to float32 (relative 6e-8), which finite differences at the
    # default step (1e-5) would see as a derivative error of 6e-3. The function is linear, so
    # a step of 1e-2 has no truncation error and leaves a rounding error of 6e-6 < 1.2e-4.
    check_grads(f, (X,), order=2, eps=1e-2)


def test_astype_from_float32_up_and_back_keeps_float32_gradients():
    x = np.arange(3, dtype=np.float32)
    g = tg.grad(lambda x: tg.sum(np.sin(x.astype("float64"))))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.cos(x.astype(np.float64)), rtol=1e-7)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, bool, "uint8"])
def test_astype_to_an_integer_or_boolean_dtype_is_a_constant(dtype):
    x = np.array([0.5, 1.5, 2.5])
    seen = []

    def f(x):
        rounded = x.astype(dtype)
        seen.append(rounded)
        return tg.sum(x * rounded)

    g = tg.grad(f)(x)
    assert type(seen[0]) is np.ndarray and seen[0].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(g, x.astype(dtype))  # d/dx (x * c) = c
    assert np.astype(tg.Tensor(x), np.int32).dtype == np.int32


def test_astype_refuses_complex_dtypes():
    with pytest.raises(TypeError, match="complex numbers are not supported"):
        tg.grad(lambda x: tg.sum(x.astype(np.complex128)))(X)


def test_astype_to_the_same_dtype_is_the_tensor_itself():
    def f(x):
        assert np.astype(x, np.float64) is x and x.astype(np.float64, copy=False) is x
        return tg.sum(x)

    tg.grad(f)(X)


def test_copy_of_a_tensor_is_the_tensor_and_passes_the_gradient():
    def f(x):
        assert x.copy() is x and np.copy(x) is x
        return tg.sum(np.copy(x) * x)

    np.testing.assert_allclose(tg.grad(f)(X), 2 * X)
    plain = tg.copy(X)
    assert plain is not X and np.array_equal(plain, X)


@pytest.mark.parametrize(
    ("method", "numpy"),
    [
        (lambda x: x.ravel(), lambda x: x.ravel()),
        (lambda x: x.ravel("F"), lambda x: x.ravel("F")),
        (lambda x: x.flatten(), lambda x: x.flatten()),
        (lambda x: x.flatten(order="F"), lambda x: x.flatten(order="F")),
        (lambda x: x[None].squeeze(), lambda x: x[None].squeeze()),
        (lambda x: x[:, None].squeeze(1), lambda x: x[:, None].squeeze(1)),
        (lambda x: x.swapaxes(0, 1), lambda x: x.swapaxes(0, 1)),
        (lambda x: x.repeat(2), lambda x: x.repeat(2)),
        (lambda x: x.repeat([1, 2, 0], axis=1), lambda x: x.repeat([1, 2, 0], axis=1)),
        (lambda x: x.diagonal(1), lambda x: x.diagonal(1)),
        (lambda x: x.reshape(3, 2), lambda x: x.reshape(3, 2)),
        (lambda x: x.reshape((3, 2)), lambda x: x.reshape((3, 2))),
        (lambda x: x.reshape(shape=(6,)), lambda x: np.reshape(x, (6,))),
        (lambda x: x[None].mT, lambda x: x[None].mT),
        (lambda x: x.T, lambda x: x.T),
    ],
    ids=[
        "ravel",
        "ravel F",
        "flatten",
        "flatten F",
        "squeeze",
        "squeeze axis",
        "swapaxes",
        "repeat",
        "repeat counts",
        "diagonal",
        "reshape dims",
        "reshape tuple",
        "reshape shape=",
        "mT",
        "T",
    ],
)
def test_tensor_methods_follow_ndarray(method, numpy):
    check_grads(method, (X,), order=2)
    out, _ = tg.vjp(method, X)
    np.testing.assert_array_equal(out, numpy(X))


def test_ndarrays_in_place_sort_and_partition_are_refused_on_tensors():
    for name in ("sort", "partition"):
        with pytest.raises(TypeError, match=rf"Tensor\.{name}\(\) would {name} in place"):
            getattr(tg.Tensor(X), name)(0)


def test_atleast_functions_through_numpy_take_several_arrays():
    def f(x, y):
        a, b = np.atleast_2d(x, y)
        assert a.shape == (1, 1) and b.shape == (2, 3)
        return tg.sum(a) + tg.sum(b * b)

    check_grads(f, (1.5, X), order=2)


@pytest.mark.parametrize(
    ("f", "error", "message"),
    [
        (lambda x: np.squeeze(x, axis=0), ValueError, "axis 0 of an array of shape (2, 3)"),
        (lambda x: np.expand_dims(x, (0, 0)), ValueError, "repeated axis"),
        (lambda x: np.ravel(x, order="K"), ValueError, "order='K' is not supported"),
        (lambda x: x.ravel("A"), ValueError, "order='A' is not supported"),
        (lambda x: np.moveaxis(x, (0, 1), 0), ValueError, "must name as many axes"),
        (lambda x: np.moveaxis(x, 2, 0), np.exceptions.AxisError, "source"),
        (lambda x: np.swapaxes(x, 0, 2), np.exceptions.AxisError, "axis 2 is out of bounds"),
        (lambda x: np.rollaxis(x, 0, 3), np.exceptions.AxisError, "start must be in [-2, 2]"),
        (lambda x: np.matrix_transpose(x[0]), ValueError, "at least 2 dimensions, got shape (3,)"),
        (lambda x: x[0].mT, ValueError, "at least 2 dimensions"),
        (lambda x: x.swapaxes(0, 1, 2), TypeError, "takes at most 2 arguments"),
        (lambda x: x.reshape(6, shape=6), TypeError, "not both"),
    ],
)
def test_shape_errors_name_the_problem(f, error, message):
    with pytest.raises(error, match=re.escape(message)):
        tg.grad(lambda x: tg.sum(f(x)))(X)
