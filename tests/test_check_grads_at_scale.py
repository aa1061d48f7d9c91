"""Specification of check_grads at model scale: random projections, kinks, teeth, localization.

Above a few dozen input elements ``check_grads`` compares random projections ``<v, J u>``
(``method="projection"``; see ``tinygrad_np.testing._projections``): O(1) evaluations of
``f`` per direction instead of two per element. These tests pin down what that must keep:

* a correct 100k-parameter MLP passes, to second order, in both modes;
* correct ReLU and max-pool models whose inputs are NOT kept away from their kinks pass
  for 100 random seeds in float64 and float32, although moving every input at once makes
  the finite differences cross kinks (a control proves they do);
* every kind of wrong VJP the element-wise teeth tests inject is still caught, and the
  report names the argument and the element whose gradient is wrong.
"""

import itertools
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_check_grads import corrupted, real_primitive
from test_check_grads import sandbox as sandbox  # a fixture the teeth tests use

import tinygrad_np as tg
from tinygrad_np.extend import Primitive
from tinygrad_np.testing import _check, _projections, check_grads

dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def mlp_params(rng, sizes, dtype, scale=1.0):
    params = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        params[f"W{i}"] = (rng.standard_normal((n_in, n_out)) * scale / math.sqrt(n_in)).astype(
            dtype
        )
        params[f"b{i}"] = (rng.standard_normal(n_out) * 0.1 * scale).astype(dtype)
    return params


def mlp_loss(**layers):
    """Cross-entropy of a ReLU MLP; ``layers`` replaces dense layers: ``W2=corrupted_linear``."""

    def loss(params, x, labels):
        depth = len(params) // 2
        h = x
        for i in range(1, depth + 1):
            h = layers.get(f"W{i}", tg.nn.linear)(h, params[f"W{i}"], params[f"b{i}"])
            if i < depth:
                h = tg.relu(h)
        return tg.nn.cross_entropy(h, labels)

    return loss


def maxpool_loss(params, images, labels):
    """relu, 2x2 max-pooling (by reshaping), then a dense layer: kinks and ties everywhere."""
    n, side = images.shape[0], images.shape[1]
    z = tg.relu(images * params["scale"] + params["shift"])
    pooled = np.max(np.reshape(z, (n, side // 2, 2, side // 2, 2)), axis=(2, 4))
    return tg.nn.cross_entropy(np.reshape(pooled, (n, -1)) @ params["W"] + params["b"], labels)


def maxpool_problem(rng, dtype, n=4, side=8, classes=3, scale=1.0):
    params = {
        "scale": rng.standard_normal((side, side)) * scale,
        "shift": rng.standard_normal((side, side)) * scale,
        "W": rng.standard_normal(((side // 2) ** 2, classes)) / side,
        "b": rng.standard_normal(classes) * 0.1,
    }
    params = {k: v.astype(dtype) for k, v in params.items()}
    images = rng.standard_normal((n, side, side)).astype(dtype)
    return params, images, rng.integers(0, classes, n)


def mlp_problem(rng, dtype, sizes=(12, 16, 16, 4), batch=8, scale=1.0):
    params = mlp_params(rng, sizes, dtype, scale)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    return params, x, rng.integers(0, sizes[-1], batch)


# --- a 100k-parameter model, checked fast and correctly -----------------------------------------


@pytest.mark.parametrize("order", [1, 2])
def test_the_784_128_10_mlp_passes_at_batch_32_in_both_modes(order):
    rng = np.random.default_rng(0)
    params, x, labels = mlp_problem(rng, np.float64, sizes=(784, 128, 10), batch=32)
    assert sum(p.size for p in params.values()) == 101_770
    check_grads(lambda p: mlp_loss()(p, x, labels), (params,), order=order)


# --- no false alarm at kinks --------------------------------------------------------------------


def kinked_problem(seed, dtype):
    """A ReLU MLP and a max-pool model in one loss, their inputs drawn from ``seed`` with no
    care for kinks: pre-activations and pooled values are small (std ~0.05) and close to
    each other, so relu inputs sit near 0 and pooling windows near ties, and a finite
    difference that moves every parameter at once crosses some of them (see the control)."""
    rng = np.random.default_rng(seed)
    mlp, x, labels = mlp_problem(rng, dtype, sizes=(12, 32, 32, 4), batch=64, scale=0.05)
    pool, images, pool_labels = maxpool_problem(rng, dtype, n=32, scale=0.05)

    def loss(params):
        return mlp_loss()(params["mlp"], x, labels) + maxpool_loss(
            params["pool"], images, pool_labels
        )

    return loss, {"mlp": mlp, "pool": pool}


# 100 seeds per dtype, more under the thorough profile.
SEEDS = settings(max_examples=max(100, settings().max_examples))


@SEEDS
@dtypes
@given(seed=st.integers(0, 2**32 - 1))
def test_correct_relu_and_max_pool_models_pass_wherever_their_kinks_are(dtype, seed):
    loss, params = kinked_problem(seed, dtype)
    check_grads(loss, (params,), order=2, seed=seed)


def test_the_kinked_models_do_cross_kinks_at_the_first_step(monkeypatch):
    # The control for the property above: with the re-measurement at smaller steps switched
    # off, the same correct models fail for many seeds.
    monkeypatch.setattr(_projections, "STEP_DIVISORS", (1,))
    monkeypatch.setattr(_check, "STEP_DIVISORS", (1,))
    failures = 0
    for seed in range(20):
        loss, params = kinked_problem(seed, np.float64)
        try:
            check_grads(loss, (params,), order=2, seed=seed)
        except AssertionError:
            failures += 1
    assert failures >= 5


# --- teeth: wrong VJPs in a model are caught and located ------------------------------------------

SIZES = (24, 16, 16, 5)  # 769 parameters: the projection method, and a square W2


def located(message):
    """``(leaf, element)`` that a projection failure names."""
    match = re.search(r"to argument 0\['(\w+)'\], element (\([\d, ]*\))", message)
    assert match, message
    return match.group(1), eval(match.group(2))


def check_fails(loss, params, x, labels, **kwargs):
    with pytest.raises(AssertionError) as caught:
        check_grads(lambda p: loss(p, x, labels), (params,), method="projection", **kwargs)
    message = str(caught.value)
    assert "not a kink crossing" in message and "Localized by bisection" in message, message
    return message


def corrupted_linear_weight(corrupt):
    """``linear`` whose weight gradient (argument 1) is passed through ``corrupt``."""
    return corrupted("linear", lambda g, i: corrupt(g) if i == 1 else g)


def problem(dtype, seed=0):
    return mlp_problem(np.random.default_rng(seed), dtype, sizes=SIZES, batch=8)


@dtypes
@pytest.mark.parametrize("modes", [("rev",), ("fwd",)], ids=["rev", "fwd"])
def test_a_weight_gradient_off_by_a_factor_of_1_001_is_caught(sandbox, dtype, modes):
    params, x, labels = problem(dtype)
    check_grads(lambda p: mlp_loss()(p, x, labels), (params,), method="projection", modes=modes)
    loss = mlp_loss(W1=corrupted_linear_weight(lambda g: g * 1.001))
    leaf, _ = located(check_fails(loss, params, x, labels, modes=modes))
    assert leaf == "W1"


@dtypes
def test_a_transposed_weight_gradient_is_caught_at_an_off_diagonal_element(sandbox, dtype):
    params, x, labels = problem(dtype)
    loss = mlp_loss(W2=corrupted_linear_weight(tg.transpose))  # W2 is 16 x 16
    leaf, (row, column) = located(check_fails(loss, params, x, labels))
    assert leaf == "W2" and row != column


@dtypes
@pytest.mark.parametrize("flat_index", [0, 37, 24 * 16 - 1])
def test_a_sign_error_in_one_element_is_caught_and_located_exactly(sandbox, dtype, flat_index):
    def flip(g):
        sign = np.ones(np.shape(g))
        sign.flat[flat_index] = -1
        return g * sign

    params, x, labels = problem(dtype)
    # Make sure the element's gradient is not negligible: it is what must be found.
    params["W1"].flat[flat_index] += 0.5
    message = check_fails(mlp_loss(W1=corrupted_linear_weight(flip)), params, x, labels)
    assert located(message) == ("W1", np.unravel_index(flat_index, params["W1"].shape))


@dtypes
def test_a_bias_summed_over_the_wrong_axis_is_caught(sandbox, dtype):
    # The bias of a square layer broadcasts over rows; its VJP sums over columns instead:
    # the shape is right and the values are wrong.
    real = real_primitive("add")

    def wrong_axis_vjps(ans, h, b):
        return (lambda g: g), (lambda g: tg.sum(g, axis=1))

    bad_add = Primitive("add", real.impl, wrong_axis_vjps)
    rng = np.random.default_rng(1)
    params = {
        "W": rng.standard_normal((8, 8)).astype(dtype),
        "b": rng.standard_normal(8).astype(dtype),
    }
    x = rng.standard_normal((8, 8)).astype(dtype)
    labels = rng.integers(0, 8, 8)

    def loss(params, x, labels):
        return tg.nn.cross_entropy(tg.tanh(bad_add(x @ params["W"], params["b"])), labels)

    leaf, _ = located(check_fails(loss, params, x, labels))
    assert leaf == "b"


def test_localization_stays_within_its_evaluation_bound(sandbox):
    params, x, labels = problem(np.float64)
    message = check_fails(
        mlp_loss(W1=corrupted_linear_weight(lambda g: g * 1.01)), params, x, labels
    )
    evaluations = int(re.search(r"\((\d+) evaluations of f\)", message).group(1))
    leaves, largest = len(params), max(p.size for p in params.values())
    assert evaluations <= 4 * (leaves + 2 * math.ceil(math.log2(largest)) + 1)


def test_auto_checks_small_inputs_element_by_element_and_large_ones_by_projection(sandbox):
    bad_exp = corrupted("exp", lambda g, i: 1.5 * g)
    small, large = np.linspace(-1, 1, 50), np.linspace(-1, 1, 51)
    with pytest.raises(AssertionError, match="elements of argument 0 are out of tolerance"):
        check_grads(lambda x: tg.sum(bad_exp(x)), (small,))
    with pytest.raises(AssertionError, match="Localized by bisection"):
        check_grads(lambda x: tg.sum(bad_exp(x)), (large,))
    with pytest.raises(AssertionError, match="elements of argument 0 are out of tolerance"):
        check_grads(lambda x: tg.sum(bad_exp(x)), (large,), method="elementwise")


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        check_grads(tg.exp, (np.ones(2),), method="fast")
