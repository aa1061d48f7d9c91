"""Specification of NumPy dispatch: NumPy code run on Tensors is differentiated unchanged.

NumPy hands ufunc calls and public functions with Tensor arguments to the Tensor, which
runs them as tinygrad_np ops (tinygrad_np/numpy_dispatch.py). These tests pin: the
tutorial's own NumPy code against its hand-derived backprop; gradients through NumPy's
spellings (positional and keyword statics, bounds of every kind) against finite differences
(every registered function has its generated properties in tests/test_numpy_coverage.py);
NumPy's values and dtypes; the conventions at kinks; plain results for what has no
gradient; and a clear TypeError for everything else.
"""

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np.testing import check_grads

rng = np.random.default_rng(20240611)


# --- the tutorial, verbatim apart from taking the parameters as an argument --------------


def relu(z):
    return np.maximum(0, z)


def softmax(z):
    exps = np.exp(z - np.max(z, axis=1, keepdims=True))
    return exps / np.sum(exps, axis=1, keepdims=True)


def categorical_cross_entropy(y_true, y_pred):
    y_pred = np.clip(y_pred, 1e-12, 1 - 1e-12)
    return -np.mean(np.sum(y_true * np.log(y_pred), axis=1))


def forward(params, X):
    Z1 = np.dot(X, params["W1"]) + params["b1"]
    A1 = relu(Z1)
    Z2 = np.dot(A1, params["W2"]) + params["b2"]
    A2 = softmax(Z2)
    return Z1, A1, Z2, A2


def loss(params, X, Y):
    A2 = forward(params, X)[3]
    return categorical_cross_entropy(Y, A2)


def hand_derived_backprop(params, X, Y):
    """The tutorial's backward pass: softmax and cross-entropy differentiated jointly.

    It ignores the clip, which is inactive while every probability lies in (1e-12, 1 - 1e-12).
    """
    m = X.shape[0]
    Z1, A1, _, A2 = forward(params, X)
    dZ2 = A2 - Y
    dW2 = np.dot(A1.T, dZ2) / m
    db2 = np.sum(dZ2, axis=0, keepdims=True) / m
    dA1 = np.dot(dZ2, params["W2"].T)
    dZ1 = dA1 * (Z1 > 0)
    dW1 = np.dot(X.T, dZ1) / m
    db1 = np.sum(dZ1, axis=0, keepdims=True) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def tutorial_problem(n=32, d=64, h=32, c=10):
    params = {
        "W1": 0.1 * rng.standard_normal((d, h)),
        "b1": 0.1 * rng.standard_normal((1, h)),
        "W2": 0.1 * rng.standard_normal((h, c)),
        "b2": 0.1 * rng.standard_normal((1, c)),
    }
    X = rng.random((n, d))
    Y = np.eye(c)[rng.integers(0, c, n)]
    return params, X, Y


def relative_error(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_tutorial_code_differentiates_to_its_hand_derived_gradients():
    params, X, Y = tutorial_problem()
    probabilities = forward(params, X)[3]
    assert 1e-12 < probabilities.min() and probabilities.max() < 1 - 1e-12  # clip inactive

    grads = tg.grad(loss)(params, X, Y)

    # The engine also differentiates the max-shift of softmax: z - max(z) feeds the max's
    # gradient path with minus the row sum of the cotangent at the shifted logits. Softmax is
    # invariant to adding a constant to a row, so that row sum is zero (to rounding), and the
    # shift contributes nothing: the result is the unshifted softmax's gradient.
    expected = hand_derived_backprop(params, X, Y)
    for name in params:
        assert grads[name].shape == params[name].shape
        # The same quantities, summed in another order: float64 rounding of a few ulps of the
        # largest terms, far below 1e-10.
        assert relative_error(grads[name], expected[name]) < 1e-10, name


def test_tutorial_loss_traced_has_numpys_value():
    params, X, Y = tutorial_problem()
    value, _ = tg.value_and_grad(loss)(params, X, Y)
    # The traced forward runs the same NumPy calls on the same data, in the same order.
    assert value == loss(params, X, Y)


def test_tutorial_code_on_plain_arrays_is_plain_numpy():
    params, X, Y = tutorial_problem()
    Z1, A1, Z2, A2 = forward(params, X)
    for value in (Z1, A1, Z2, A2):
        assert type(value) is np.ndarray
    assert type(loss(params, X, Y)) is np.float64
    exps = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(A2, exps / exps.sum(axis=1, keepdims=True))


def test_tutorial_second_order_through_numpy_spelling():
    params, X, Y = tutorial_problem(n=4, d=3, h=4, c=3)
    check_grads(lambda p: loss(p, X, Y), (params,), order=2)


# --- every dispatched function, through its NumPy spelling --------------------------------


def distinct(shape, gap=0.3):
    """Values at least ``gap`` apart, so no max/min ties within a finite-difference step."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap + 0.05 * rng.random(n) - n * gap / 2).reshape(shape)


def away_from(values, kinks, margin=0.05):
    """``values`` pushed at least ``margin`` away from each kink."""
    values = np.array(values, dtype=np.float64)
    for kink in kinks:
        near = np.abs(values - kink) < margin
        values[near] += 2 * margin
    return values


def positive(shape):
    return rng.uniform(0.5, 2.0, shape)


def normal(shape):
    return rng.standard_normal(shape)


class Case(NamedTuple):
    name: str
    dispatched: Any  # the NumPy callable the case goes through
    f: Callable[..., Any]
    args: tuple[np.ndarray, ...]


x34 = normal((3, 4))
y_gapped = x34 + rng.choice([-1, 1], (3, 4)) * rng.uniform(0.1, 1.0, (3, 4))
row_gapped = x34[1] + 0.5  # broadcast against x34 rows; no ties with any row
clip_inputs = away_from(rng.uniform(-1.5, 1.5, (3, 4)), [-0.5, 0.5])
cond34 = rng.random((3, 4)) > 0.5
A34, A4 = normal((3, 4)), normal(4)  # plain operands: fixed, as finite differences re-run f

CASES = [
    Case("add broadcast", np.add, lambda x, y: np.add(x, y), (normal((3, 4)), normal(4))),
    Case("add 3-d", np.add, lambda x, y: x + y, (normal((2, 1, 3)), normal((4, 1)))),
    Case("ndarray + Tensor", np.add, lambda y: np.ones((3, 4)) + y, (normal(4),)),
    Case("subtract", np.subtract, lambda x, y: np.subtract(x, y), (normal((3, 4)), normal(()))),
    Case("ndarray - Tensor", np.subtract, lambda y: np.ones((2, 3)) - y, (normal((2, 3)),)),
    Case("multiply", np.multiply, lambda x, y: np.multiply(x, y), (normal((3, 1)), normal(4))),
    Case("ndarray * Tensor", np.multiply, lambda y: A34 * y, (normal(4),)),
    Case(
        "true_divide", np.true_divide, lambda x, y: np.divide(x, y), (normal((3, 4)), positive(4))
    ),
    Case("ndarray / Tensor", np.true_divide, lambda y: np.ones(4) / y, (positive((3, 4)),)),
    Case("negative", np.negative, lambda x: np.negative(x), (normal((3, 4)),)),
    Case("power", np.power, lambda x, y: np.power(x, y), (positive((3, 4)), normal(4))),
    Case("power by int", np.power, lambda x: np.power(x, 3), (normal((3, 4)),)),
    Case("matmul 2-d", np.matmul, lambda a, b: np.matmul(a, b), (normal((3, 4)), normal((4, 2)))),
    Case("matmul batched", np.matmul, lambda a, b: a @ b, (normal((2, 3, 4)), normal((4, 5)))),
    Case("ndarray @ Tensor", np.matmul, lambda b: A34 @ b, (normal(4),)),
    Case("exp", np.exp, lambda x: np.exp(x), (normal((3, 4)),)),
    Case("log", np.log, lambda x: np.log(x), (positive((3, 4)),)),
    Case("tanh", np.tanh, lambda x: np.tanh(x), (normal((3, 4)),)),
    Case("sqrt", np.sqrt, lambda x: np.sqrt(x), (positive((3, 4)),)),
    Case("square", np.square, lambda x: np.square(x), (normal((3, 4)),)),
    Case("log1p", np.log1p, lambda x: np.log1p(x), (rng.uniform(-0.5, 2.0, (3, 4)),)),
    Case("expm1", np.expm1, lambda x: np.expm1(x), (normal((3, 4)),)),
    Case("sin", np.sin, lambda x: np.sin(x), (normal((3, 4)),)),
    Case("cos", np.cos, lambda x: np.cos(x), (normal((3, 4)),)),
    Case("abs", np.absolute, lambda x: np.abs(x), (away_from(normal((3, 4)), [0.0]),)),
    Case("maximum", np.maximum, lambda x, y: np.maximum(x, y), (x34, y_gapped)),
    Case("maximum broadcast", np.maximum, lambda x, y: np.maximum(x, y), (x34, row_gapped)),
    Case("maximum(0, z)", np.maximum, lambda z: np.maximum(0, z), (away_from(x34, [0.0]),)),
    Case("minimum", np.minimum, lambda x, y: np.minimum(x, y), (x34, y_gapped)),
    Case("minimum(z, 1)", np.minimum, lambda z: np.minimum(z, 1.0), (away_from(x34, [1.0]),)),
    Case("dot 2-d", np.dot, lambda a, b: np.dot(a, b), (normal((3, 4)), normal((4, 2)))),
    Case("dot 1-d", np.dot, lambda a, b: np.dot(a, b), (normal(4), normal(4))),
    Case("dot matrix-vector", np.dot, lambda a, b: np.dot(a, b), (normal((3, 4)), normal(4))),
    Case("dot vector-matrix", np.dot, lambda a, b: np.dot(a, b), (normal(4), normal((4, 3)))),
    Case("dot 3-d by 2-d", np.dot, lambda a, b: np.dot(a, b), (normal((2, 3, 4)), normal((4, 2)))),
    Case("dot 2-d by 3-d", np.dot, lambda a, b: np.dot(a, b), (normal((2, 3)), normal((4, 3, 2)))),
    Case(
        "dot 3-d by 3-d", np.dot, lambda a, b: np.dot(a, b), (normal((2, 2, 3)), normal((2, 3, 2)))
    ),
    Case("dot scalar", np.dot, lambda a, b: np.dot(a, b), (normal(()), normal((2, 3)))),
    Case("dot ndarray first", np.dot, lambda b: np.dot(A34, b), (normal((4, 2)),)),
    Case("sum all", np.sum, lambda x: np.sum(x), (normal((2, 3, 4)),)),
    Case("sum axis", np.sum, lambda x: np.sum(x, axis=1), (normal((2, 3, 4)),)),
    Case("sum axes kept", np.sum, lambda x: np.sum(x, (0, 2), keepdims=True), (normal((2, 3, 4)),)),
    Case(
        "sum same dtype", np.sum, lambda x: np.sum(x, axis=-1, dtype=np.float64), (normal((3, 4)),)
    ),
    Case("mean all", np.mean, lambda x: np.mean(x), (normal((2, 3, 4)),)),
    Case("mean axis kept", np.mean, lambda x: np.mean(x, 1, keepdims=True), (normal((2, 3, 4)),)),
    Case("mean axes", np.mean, lambda x: np.mean(x, axis=(0, -1)), (normal((2, 3, 4)),)),
    Case("max all", np.max, lambda x: np.max(x), (distinct((2, 3, 4)),)),
    Case(
        "max axis kept", np.max, lambda x: np.max(x, axis=1, keepdims=True), (distinct((2, 3, 4)),)
    ),
    Case("max axes", np.max, lambda x: np.max(x, axis=(0, 2)), (distinct((2, 3, 4)),)),
    Case("amax", np.amax, lambda x: np.amax(x, axis=0), (distinct((3, 4)),)),
    Case("min axis", np.min, lambda x: np.min(x, axis=-1), (distinct((2, 3, 4)),)),
    Case("amin kept", np.amin, lambda x: np.amin(x, 1, keepdims=True), (distinct((3, 4)),)),
    Case("clip", np.clip, lambda x: np.clip(x, -0.5, 0.5), (clip_inputs,)),
    Case("clip one-sided", np.clip, lambda x: np.clip(x, None, 0.5), (clip_inputs,)),
    Case("clip keywords", np.clip, lambda x: np.clip(x, min=-0.5, max=0.5), (clip_inputs,)),
    Case(
        "clip array bounds",
        np.clip,
        lambda x: np.clip(x, np.full(4, -0.5), np.full((3, 1), 0.5)),
        (clip_inputs,),
    ),
    Case(
        "clip Tensor bounds",
        np.clip,
        lambda x, lo, hi: np.clip(x, lo, hi),
        (clip_inputs, np.full(4, -0.5), np.full((3, 1), 0.5)),
    ),
    Case("reshape", np.reshape, lambda x: np.reshape(x, (4, -1)), (normal((2, 3, 2)),)),
    Case("reshape flat", np.reshape, lambda x: np.reshape(x, -1), (normal((3, 4)),)),
    Case("transpose", np.transpose, lambda x: np.transpose(x), (normal((2, 3, 4)),)),
    Case(
        "transpose axes", np.transpose, lambda x: np.transpose(x, (1, 0, 2)), (normal((2, 3, 4)),)
    ),
    Case(
        "transpose negative axes",
        np.transpose,
        lambda x: np.transpose(x, (-1, 0, 1)),
        (normal((2, 3, 4)),),
    ),
    Case("where", np.where, lambda x, y: np.where(cond34, x, y), (normal(4), normal((3, 1)))),
    Case("where scalar", np.where, lambda x: np.where(x > 0, x, 0.1 * x), (normal((3, 4)),)),
    Case("broadcast_to", np.broadcast_to, lambda x: np.broadcast_to(x, (2, 3, 4)), (normal(4),)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient_through_numpy_spelling_matches_finite_differences(case):
    check_grads(case.f, case.args)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_inside_a_transform_numpy_calls_return_traced_tensors_with_numpys_values(case):
    seen = []

    def f(*xs):
        out = case.f(*xs)
        seen.append(out)
        return out

    tg.vjp(f, *case.args)
    (out,) = seen
    assert isinstance(out, tg.Tensor) and out.traced
    expected = case.f(*case.args)  # NumPy itself, on the arrays
    assert out.dtype == np.asarray(expected).dtype
    if case.name.startswith("dot") and case.name.endswith("by 3-d"):
        # np.dot with a 3-d second operand runs as one matmul of reshaped operands: the same
        # products, possibly summed in another order. With 3 terms of size ~1 per sum the
        # difference is a few ulps, well below 1e-13.
        np.testing.assert_allclose(out.data, expected, rtol=0, atol=1e-13)
    else:
        np.testing.assert_array_equal(out.data, expected)


SECOND_ORDER = [
    ("maximum", lambda x, y: np.tanh(np.maximum(x, y)), (x34, y_gapped)),
    ("minimum", lambda x, y: np.exp(np.minimum(x, y)), (x34, y_gapped)),
    ("clip", lambda x: np.square(np.clip(x, -0.5, 0.5)), (clip_inputs,)),
    ("where", lambda x, y: np.tanh(np.where(cond34, x, y)), (normal(4), normal((3, 1)))),
    ("sqrt", lambda x: np.sqrt(x), (positive((3, 4)),)),
    ("square", lambda x: np.tanh(np.square(x)), (normal((3, 4)),)),
    ("log1p", lambda x: np.log1p(x), (rng.uniform(-0.5, 2.0, (3, 4)),)),
    ("expm1", lambda x: np.expm1(x), (normal((3, 4)),)),
    ("abs", lambda x: np.tanh(np.abs(x)), (away_from(normal((3, 4)), [0.0]),)),
    ("dot 2-d by 3-d", lambda a, b: np.tanh(np.dot(a, b)), (normal((2, 3)), normal((4, 3, 2)))),
    ("max keepdims", lambda x: np.exp(np.max(x, axis=1, keepdims=True)), (distinct((2, 3, 4)),)),
]


@pytest.mark.parametrize(
    ("f", "args"), [(f, args) for _, f, args in SECOND_ORDER], ids=[n for n, _, _ in SECOND_ORDER]
)
def test_new_ops_have_differentiable_vjps(f, args):
    check_grads(f, args, order=2)


# --- dtypes: NumPy's rules, NumPy 2 scalars included --------------------------------------

z32 = rng.standard_normal((3, 4)).astype(np.float32)
W32 = rng.standard_normal((4, 2)).astype(np.float32)

DTYPE_CALLS = [
    ("maximum(0, z)", lambda z: np.maximum(0, z)),
    ("maximum(0.0, z)", lambda z: np.maximum(0.0, z)),
    ("maximum(float64 scalar, z)", lambda z: np.maximum(np.float64(0), z)),
    ("clip", lambda z: np.clip(z, 1e-12, 1 - 1e-12)),
    ("where", lambda z: np.where(z > 0, z, 0)),
    ("exp", lambda z: np.exp(z)),
    ("sqrt", lambda z: np.sqrt(np.abs(z))),
    ("log1p", lambda z: np.log1p(np.abs(z))),
    ("sum", lambda z: np.sum(z, axis=0)),
    ("mean", lambda z: np.mean(z)),
    ("max", lambda z: np.max(z, axis=1, keepdims=True)),
    ("dot", lambda z: np.dot(z, W32)),
    ("times float64 array", lambda z: z * np.ones(4)),
    ("plus python float", lambda z: z + 0.5),
]


@pytest.mark.parametrize("call", [c for _, c in DTYPE_CALLS], ids=[n for n, _ in DTYPE_CALLS])
def test_result_dtype_is_numpys(call):
    dtypes = []

    def f(z):
        out = call(z)
        dtypes.append(out.dtype)
        return np.sum(out)

    grad = tg.grad(f)(z32)
    assert dtypes == [np.asarray(call(z32)).dtype]
    assert grad.dtype == np.float32


def test_float32_tutorial_stays_float32():
    params, X, Y = tutorial_problem()
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    dtypes = []

    def f(p):
        value = loss(p, X32, Y32)
        dtypes.append(value.dtype)
        return value

    grads = tg.grad(f)(params32)
    assert dtypes == [np.float32]
    expected = hand_derived_backprop(params32, X32, Y32)
    for name in params:
        assert grads[name].dtype == np.float32
        # float32 rounding (eps 6e-8) over sums of up to 64 terms: at worst 64 eps = 4e-6.
        assert relative_error(grads[name], expected[name]) < 1e-4, name


# --- conventions where a derivative does not exist ----------------------------------------


def grad_of_sum(f, *args, argnums=0):
    return tg.grad(lambda *xs: np.sum(f(*xs)), argnums=argnums)(*args)


kinked = np.array([-1.0, 0.0, 2.0])


@pytest.mark.parametrize(
    "f",
    [lambda z: np.maximum(0, z), lambda z: np.maximum(z, 0), lambda z: np.maximum(z, 0.0)],
    ids=["maximum(0, z)", "maximum(z, 0)", "maximum(z, 0.0)"],
)
def test_maximum_against_a_plain_zero_is_relu_with_derivative_0_at_0(f):
    np.testing.assert_array_equal(grad_of_sum(f, kinked), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(grad_of_sum(f, kinked), grad_of_sum(tg.relu, kinked))


def test_minimum_against_a_plain_bound_passes_gradient_only_strictly_below():
    np.testing.assert_array_equal(grad_of_sum(lambda z: np.minimum(0, z), kinked), [1.0, 0, 0])


def test_tied_tensors_share_the_gradient_equally():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    gx, gy = grad_of_sum(np.maximum, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(gx, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gy, [0.5, 1.0, 0.0])
    gx, gy = grad_of_sum(np.minimum, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(gx, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gy, [0.5, 0.0, 1.0])


def test_maximum_of_a_tensor_with_itself_has_derivative_1():
    np.testing.assert_array_equal(grad_of_sum(lambda x: np.maximum(x, x), kinked), [1.0, 1, 1])


def test_a_constant_tensor_is_a_tensor_for_the_tie_rule():
    zero = tg.Tensor(np.zeros(3))
    np.testing.assert_array_equal(
        grad_of_sum(lambda z: np.maximum(zero, z), kinked), [0.0, 0.5, 1.0]
    )


def test_clip_passes_the_gradient_strictly_inside_the_bounds():
    z = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(grad_of_sum(lambda z: np.clip(z, 0, 1), z), [0, 0, 1, 0, 0])


def test_clip_with_tensor_bounds_sends_the_gradient_to_the_active_bound():
    z, lo, hi = np.array([-1.0, 0.5, 2.0]), np.zeros(3), np.ones(3)
    gz, glo, ghi = grad_of_sum(np.clip, z, lo, hi, argnums=(0, 1, 2))
    np.testing.assert_array_equal(gz, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(glo, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(ghi, [0.0, 0.0, 1.0])


def test_max_shares_the_gradient_among_tied_maxima():
    np.testing.assert_array_equal(grad_of_sum(np.max, np.array([1.0, 3.0, 3.0])), [0, 0.5, 0.5])


def test_abs_has_derivative_0_at_0():
    np.testing.assert_array_equal(grad_of_sum(np.abs, kinked), [-1.0, 0.0, 1.0])


def test_where_sends_the_gradient_to_the_chosen_branch():
    z = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(grad_of_sum(lambda z: np.where(z > 0, z**2, -z), z), [-1, 6])


# --- results with no gradient are plain NumPy values ----------------------------------------


NO_GRADIENT = [
    (np.less, lambda z: z < 0.5),
    (np.greater_equal, lambda z: 0.5 >= z),
    (np.less, lambda z: np.ones(3) < z),  # ndarray on the left: np.less via __array_ufunc__
    (np.greater, lambda z: np.greater(z, 0)),
    (np.equal, lambda z: np.equal(z, z)),
    (np.not_equal, lambda z: np.not_equal(z, 1.0)),
    (np.less_equal, lambda z: np.less_equal(z, 0)),
    (np.greater_equal, lambda z: np.greater_equal(z, 0)),
    (np.isfinite, lambda z: np.isfinite(z)),
    (np.isnan, lambda z: np.isnan(z)),
    (np.isinf, lambda z: np.isinf(z)),
    (np.sign, lambda z: np.sign(z)),
    (np.floor, lambda z: np.floor(z)),
    (np.ceil, lambda z: np.ceil(z)),
    (np.argmax, lambda z: np.argmax(z)),
    (np.argmin, lambda z: np.argmin(z, axis=0)),
    (np.zeros_like, lambda z: np.zeros_like(z)),
    (np.ones_like, lambda z: np.ones_like(z)),
    (np.full_like, lambda z: np.full_like(z, 7.0)),
    (np.shape, lambda z: np.shape(z)),
    (np.ndim, lambda z: np.ndim(z)),
    (np.size, lambda z: np.size(z)),
    (np.result_type, lambda z: np.result_type(z, 1.0)),
    (np.nonzero, lambda z: np.nonzero(z)),
    (np.where, lambda z: np.where(z)),  # one argument: indices, like np.nonzero
    (np.isclose, lambda z: np.isclose(z, 0.5)),
    (np.allclose, lambda z: np.allclose(z, z)),
    (np.array_equal, lambda z: np.array_equal(z, z)),
]


@pytest.mark.parametrize("call", [c for _, c in NO_GRADIENT])
def test_results_without_gradient_are_numpys_plain_results(call):
    z = np.array([-1.5, 0.0, 2.5])
    results = []
    tg.grad(lambda z: results.append(call(z)) or np.sum(z))(z)
    (inside,) = results
    expected = call(z)
    assert type(inside) is type(expected)
    np.testing.assert_array_equal(inside, expected)
    assert np.asarray(inside).dtype == np.asarray(expected).dtype


def test_a_mask_from_a_comparison_multiplies_as_a_constant():
    z = np.array([-1.0, 2.0, 3.0])
    np.testing.assert_array_equal(grad_of_sum(lambda z: z * (z > 0), z), [0.0, 1.0, 1.0])


# --- constant Tensors (outside any transform) ------------------------------------------------

x_const = np.array([[0.5, -1.0], [2.0, 0.25]])


@pytest.mark.parametrize(
    "call",
    [
        lambda x: np.exp(x),
        lambda x: np.maximum(0, x),
        lambda x: np.sum(x, axis=0),
        lambda x: np.dot(x, x),
        lambda x: np.clip(x, 0, 1),
        lambda x: np.ones(2) + x,
    ],
)
def test_constant_tensors_give_constant_tensors(call):
    out = call(tg.Tensor(x_const))
    assert isinstance(out, tg.Tensor) and not out.traced
    np.testing.assert_array_equal(out.data, call(x_const))


def test_constant_tensors_run_unsupported_numpy_on_their_data():
    # A constant has no gradient to lose, and converts to an ndarray anyway (__array__).
    out = np.unwrap(tg.Tensor(x_const), axis=1)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, np.unwrap(x_const, axis=1))
    np.testing.assert_array_equal(np.add.reduce(tg.Tensor(x_const)), np.add.reduce(x_const))
    np.testing.assert_array_equal(np.cbrt(tg.Tensor(x_const)), np.cbrt(x_const))
    buffer = np.zeros(2)
    assert np.sum(tg.Tensor(x_const), axis=0, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, x_const.sum(axis=0))


def test_a_tensor_is_never_an_out_argument():
    with pytest.raises(TypeError, match=r"np.add\(..., out=a Tensor\): Tensors are immutable"):
        np.add(x_const, 1.0, out=tg.Tensor(np.zeros((2, 2))))
    with pytest.raises(TypeError, match="Tensors are immutable"):
        np.sum(tg.Tensor(x_const), out=tg.Tensor(np.zeros(())))


# --- what is not supported says so ----------------------------------------------------------


def raises_inside_grad(f, message, x=None):
    x = np.array([0.5, 1.5, 2.5]) if x is None else x
    with pytest.raises(TypeError, match=message):
        tg.grad(lambda z: np.sum(f(z)))(x)


@pytest.mark.parametrize(
    ("f", "message"),
    [
        (lambda z: np.unwrap(z), r"^np\.unwrap is not differentiable in tinygrad_np yet$"),
        (lambda z: np.cbrt(z), r"^np\.cbrt is not differentiable in tinygrad_np yet$"),
        (lambda z: np.cumprod(z), r"^np\.cumprod is not differentiable in tinygrad_np yet$"),
        (lambda z: np.average(z), r"np\.average is not differentiable .*; use np\.mean"),
        (lambda z: np.float_power(z, 2), r"np\.float_power .*; use np\.power\(x, y\)"),
        (lambda z: np.linalg.qr(z), r"^np\.linalg\.qr is not differentiable in tinygrad_np yet$"),
        (lambda z: np.trapezoid(z), r"np\.trapezoid is not differentiable"),
        (lambda z: np.interp(z, [0.0, 1.0], [1.0, 2.0]), r"np\.interp is not differentiable"),
        (lambda z: np.add.reduce(z), r"np\.add\.reduce is not differentiable .*; use np\.sum"),
        (lambda z: np.maximum.reduce(z), r"np\.maximum\.reduce .*; use np\.max"),
        (lambda z: np.add.accumulate(z), r"^np\.add\.accumulate is not differentiable"),
        (lambda z: np.multiply.outer(z, z), r"^np\.multiply\.outer is not differentiable"),
    ],
)
def test_unsupported_numpy_functions_name_themselves(f, message):
    raises_inside_grad(f, message)


def test_ufunc_at_explains_that_tensors_are_immutable():
    def f(z):
        np.add.at(z, [0], 1.0)
        return np.sum(z)

    with pytest.raises(TypeError, match=r"np\.add\.at .*Tensors are immutable"):
        tg.grad(f)(np.ones(3))


@pytest.mark.parametrize(
    ("f", "message"),
    [
        (lambda z: np.add(z, 1.0, out=np.zeros(3)), r"np\.add\(\.\.\., out=\.\.\.\)"),
        (lambda z: np.sum(z, out=np.zeros(())), r"np\.sum\(\.\.\., out=\.\.\.\)"),
        (lambda z: np.dot(z, z, out=np.zeros(())), r"np\.dot\(\.\.\., out=\.\.\.\)"),
        (lambda z: np.clip(z, 0, 1, out=np.zeros(3)), r"np\.clip\(\.\.\., out=\.\.\.\)"),
        (lambda z: np.exp(z, where=z > 1), r"np\.exp\(\.\.\., where=\.\.\.\).*np\.where"),
        (lambda z: np.sum(z, where=z > 1), r"np\.sum\(\.\.\., where=\.\.\.\)"),
        (lambda z: np.max(z, initial=0.0), r"np\.max\(\.\.\., initial=\.\.\.\)"),
        (lambda z: np.mean(z, dtype=np.float32), r"np\.mean\(\.\.\., dtype=float32\) would"),
        (lambda z: np.exp(z, dtype=np.float32), r"change the dtype from float64 to float32"),
        (lambda z: np.reshape(z, 3, order="F"), r"np\.reshape\(\.\.\., order=\.\.\.\)"),
        (lambda z: np.add(z, 1.0, casting="unsafe"), r"np\.add\(\.\.\., casting=\.\.\.\)"),
    ],
)
def test_unsupported_options_name_the_function_and_option(f, message):
    raises_inside_grad(f, message)


def test_in_place_update_of_an_ndarray_with_a_traced_tensor_is_refused():
    def f(z):
        total = np.zeros(3)
        total += z
        return np.sum(total)

    with pytest.raises(TypeError, match=r"out=.*use the returned value instead \(`a = a \+ t`\)"):
        tg.grad(f)(np.ones(3))


def test_options_that_change_nothing_are_accepted():
    z = np.array([0.5, 1.5])
    g = tg.grad(
        lambda z: np.sum(np.exp(z, dtype=np.float64, where=True), dtype=np.float64, where=True)
    )(z)
    np.testing.assert_allclose(g, np.exp(z), rtol=1e-15)


def test_dot_reports_misaligned_shapes():
    with pytest.raises(ValueError, match=re.escape("dot: shapes (2, 3) and (4, 5) not aligned")):
        tg.grad(lambda a: np.sum(np.dot(a, np.ones((4, 5)))))(np.ones((2, 3)))
    with pytest.raises(ValueError, match=re.escape("(2, 3) and (4, 2, 5) not aligned")):
        np.dot(tg.Tensor(np.ones((2, 3))), np.ones((4, 2, 5)))


def test_another_array_type_gets_its_turn():
    class Other:
        def __array_function__(self, func, types, args, kwargs):
            return "Other handled it" if func is np.concatenate else NotImplemented

    assert np.concatenate([tg.Tensor(np.ones(2)), Other()]) == "Other handled it"


def test_the_tutorial_unchanged_script_agrees_with_its_hand_derived_gradients():
    script = Path(__file__).resolve().parents[1] / "experiments" / "tutorial_unchanged.py"
    result = subprocess.run(
        [sys.executable, str(script), "--batch", "32"], capture_output=True, text=True, check=True
    )
    rows = re.findall(r"^(W1|b1|W2|b2) .* (\S+)$", result.stdout, flags=re.MULTILINE)
    assert [name for name, _ in rows] == ["W1", "b1", "W2", "b2"], result.stdout
    for name, difference in rows:
        assert float(difference) < 1e-10, name  # float64 rounding, as in the test above
