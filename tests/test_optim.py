"""Specification of tinygrad_np.optim: optax's optimizers and schedules over parameter pytrees.

The optimizers are checked against references written here from optax's formulas (and
against optax itself when it is installed), ten steps in float32 and float64.
"""

from __future__ import annotations

import copy
import math
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import optim

DTYPES = [np.float32, np.float64]
STRUCTURES = ["nested", "flat"]
STEPS = 10


def small_problem(
    dtype: Any = np.float64, structure: str = "nested"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parameters in a nested pytree (or a flat dict, which the optimizers handle without
    flattening) and a fixed sequence of gradients for them."""
    rng = np.random.default_rng(42)
    W, b, s = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(())
    if structure == "flat":
        params: dict[str, Any] = {"W": W, "b": b, "s": s}
    else:
        params = {"layer": {"W": W, "b": b}, "s": [s]}
    params = tg.tree_map(lambda p: np.asarray(p, dtype), params)
    grads = [
        tg.tree_map(lambda p: rng.standard_normal(p.shape).astype(dtype), params)
        for _ in range(STEPS)
    ]
    return params, grads


def leaves(tree: Any) -> list[Any]:
    return tg.tree_leaves(tree)


def run(opt: optim.GradientTransformation, params: Any, grads: list[Any]) -> tuple[Any, Any]:
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
    return params, state


# --- optax's formulas, written out leaf by leaf -----------------------------------------------
# Each takes the gradient, the moments and the count of updates already applied and returns
# (update, new moments), in the order of operations optax uses.


def reference_adam(
    g: Any, mu: Any, nu: Any, count: int, lr: float, b1: float, b2: float, eps: float
) -> tuple[Any, Any, Any]:
    mu = (1 - b1) * g + b1 * mu
    nu = (1 - b2) * g**2 + b2 * nu
    t = count + 1
    mu_hat = mu / (1 - b1**t)
    nu_hat = nu / (1 - b2**t)
    return -lr * (mu_hat / (np.sqrt(nu_hat) + eps)), mu, nu


def reference_trace(g: Any, trace: Any, lr: float, momentum: float, nesterov: bool) -> Any:
    trace = g + momentum * trace
    direction = g + momentum * trace if nesterov else trace
    return -lr * direction, trace


# Rounding: a float result of k correctly rounded operations differs from the exact one by at
# most k half-ulps (relative), so two orders of the same product/quotient chain differ by at most
# the sum of their counts. Adam's update here rounds mu/den, the folded scalar lr/bc1 and the
# product (3); the reference rounds bc1, mu/bc1, /den, and -lr * (4, with lr exact): 7 half-ulps,
# under 4 ulps = 4 * eps relative. The moments take the same operations in the same order: equal.
ADAM_UPDATE_RTOL = 4


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_is_optax_formula_for_ten_steps(dtype: Any, structure: str) -> None:
    params, grads = small_problem(dtype, structure)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = optim.adam(lr, b1=b1, b2=b2, eps=eps)
    state = opt.init(params)
    mu = [np.zeros_like(p) for p in leaves(params)]
    nu = [np.zeros_like(p) for p in leaves(params)]
    for count, g in enumerate(grads):
        updates, state = opt.update(g, state, params)
        expected = [
            reference_adam(*leaf, count, lr, b1, b2, eps)
            for leaf in zip(leaves(g), mu, nu, strict=True)
        ]
        for got, (want, want_mu, want_nu), got_mu, got_nu in zip(
            leaves(updates), expected, leaves(state["mu"]), leaves(state["nu"]), strict=True
        ):
            assert got.dtype == dtype and got_mu.dtype == dtype and got_nu.dtype == dtype
            np.testing.assert_array_equal(got_mu, want_mu)
            np.testing.assert_array_equal(got_nu, want_nu)
            eps_dtype = np.finfo(dtype).eps
            np.testing.assert_allclose(got, want, rtol=ADAM_UPDATE_RTOL * eps_dtype, atol=0)
        mu, nu = [e[1] for e in expected], [e[2] for e in expected]
        params = optim.apply_updates(params, updates)
        assert state["count"] == count + 1
    assert state["count"].dtype == np.int64


@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_is_adam_plus_decoupled_weight_decay_for_ten_steps(dtype: Any) -> None:
    params, grads = small_problem(dtype)
    lr, wd = 0.01, 0.3
    mask = {"layer": {"W": True, "b": False}, "s": True}  # no decay for the bias
    opt = optim.adamw(lr, weight_decay=wd, mask=mask)
    state = opt.init(params)
    decays = leaves(mask)
    mu = [np.zeros_like(p) for p in leaves(params)]
    nu = [np.zeros_like(p) for p in leaves(params)]
    for count, g in enumerate(grads):
        updates, state = opt.update(g, state, params)
        for i, (got, p, gi) in enumerate(
            zip(leaves(updates), leaves(params), leaves(g), strict=True)
        ):
            adam_update, mu[i], nu[i] = reference_adam(
                gi, mu[i], nu[i], count, lr, 0.9, 0.999, 1e-8
            )
            direction = adam_update / -lr  # optax: (adam direction + wd * p) * -lr
            decay = wd * p if decays[i] else np.zeros_like(p)
            want = -lr * (direction + decay)
            # A sum of two terms, computed in two orders: each term carries a few half-ulps
            # (at most 6 in all, see ADAM_UPDATE_RTOL) of its own size, and the sum one more,
            # so the bound is relative to |direction| + |decay|, not to the (maybe cancelling)
            # sum itself.
            bound = 4 * np.finfo(dtype).eps * lr * (np.abs(direction) + np.abs(decay))
            assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) - bound)
        params = optim.apply_updates(params, updates)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_momentum_is_optax_trace_for_ten_steps(
    dtype: Any, nesterov: bool, structure: str
) -> None:
    params, grads = small_problem(dtype, structure)
    lr, momentum = 0.05, 0.9
    opt = optim.sgd(lr, momentum=momentum, nesterov=nesterov)
    state = opt.init(params)
    trace = [np.zeros_like(p) for p in leaves(params)]
    for g in grads:
        updates, state = opt.update(g, state, params)
        for i, (got, gi) in enumerate(zip(leaves(updates), leaves(g), strict=True)):
            want, trace[i] = reference_trace(gi, trace[i], lr, momentum, nesterov)
            # The same operations in the same order: equal to the last bit.
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(leaves(state["trace"])[i], trace[i])
        params = optim.apply_updates(params, updates)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_plain_sgd_is_minus_learning_rate_times_the_gradient(dtype: Any, structure: str) -> None:
    params, grads = small_problem(dtype, structure)
    expected = copy.deepcopy(params)
    for g in grads:
        expected = tg.tree_map(lambda p, g: p + -0.1 * g, expected, g)
    got, state = run(optim.sgd(0.1), params, grads)
    for a, b in zip(leaves(got), leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    assert set(state) == {"count"} and state["count"] == STEPS


# --- optax itself, when installed -------------------------------------------------------------


def bias_correction_error_float32(decay: float, steps: int) -> float:
    """The largest relative error of ``1 - decay**t`` computed in float32, for t <= steps."""
    exact = [1 - decay**t for t in range(1, steps + 1)]
    rounded = [
        float(np.float32(1) - np.float32(decay) ** np.float32(t)) for t in range(1, steps + 1)
    ]
    return max(abs(r - e) / e for r, e in zip(rounded, exact, strict=True))


MASK = {"layer": {"W": True, "b": False}, "s": True}
# name -> (optax's optimizer, ours, weight decay, mask), from the optax module
OPTAX_CASES: dict[str, Callable[[Any], tuple[Any, Any, float, Any]]] = {
    "adam": lambda o: (o.adam(0.01), optim.adam(0.01), 0.0, None),
    "adam-eps-root": lambda o: (
        o.adam(0.01, eps_root=1e-6),
        optim.adam(0.01, eps_root=1e-6),
        0.0,
        None,
    ),
    "adamw-masked": lambda o: (
        o.adamw(0.01, weight_decay=0.3, mask=MASK),
        optim.adamw(0.01, weight_decay=0.3, mask=MASK),
        0.3,
        MASK,
    ),
    "adamw-schedule": lambda o: (
        o.adamw(o.exponential_decay(0.01, 3, 0.5)),
        optim.adamw(optim.exponential_decay(0.01, 3, 0.5)),
        1e-4,
        None,
    ),
    "sgd": lambda o: (o.sgd(0.05), optim.sgd(0.05), 0.0, None),
    "sgd-momentum": lambda o: (o.sgd(0.05, momentum=0.9), optim.sgd(0.05, momentum=0.9), 0.0, None),
    "sgd-nesterov": lambda o: (
        o.sgd(0.05, momentum=0.9, nesterov=True),
        optim.sgd(0.05, momentum=0.9, nesterov=True),
        0.0,
        None,
    ),
}


def update_terms(state: Any, params: Any, count: int, weight_decay: float, mask: Any) -> list[Any]:
    """|Adam's direction| + |weight_decay * params| per leaf, in float64, from the state after
    update ``count`` (0-based): the size of the terms an update sums before the learning rate."""
    t = count + 1
    decays = leaves(mask) if mask is not None else [True] * len(leaves(params))
    terms = []
    for mu, nu, p, decayed in zip(
        leaves(state["mu"]), leaves(state["nu"]), leaves(params), decays, strict=True
    ):
        mu_hat = mu.astype(np.float64) / (1 - 0.9**t)
        nu_hat = nu.astype(np.float64) / (1 - 0.999**t)
        direction = np.abs(mu_hat) / (np.sqrt(nu_hat) + 1e-8)
        terms.append(direction + (weight_decay * np.abs(p) if decayed else 0.0))
    return terms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", OPTAX_CASES)
def test_ten_steps_equal_optax(case: str, dtype: Any) -> None:
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    params, grads = small_problem(dtype)
    theirs, ours, weight_decay, mask = OPTAX_CASES[case](optax)
    eps = np.finfo(dtype).eps
    if dtype == np.float32 and case.startswith("adam"):
        # optax computes 1 - b**t in float32, whose relative error (1.3e-5 for b2 = 0.999 at
        # t = 1: float32(0.999) is 1.3e-8 off) reaches the update through sqrt(nu_hat), halved;
        # b1's correction is far more accurate. Ours is computed in float64.
        rtol = bias_correction_error_float32(0.999, STEPS) / 2 + 16 * eps
    else:
        # The same formulas with other roundings (see ADAM_UPDATE_RTOL), over ten steps whose
        # errors add up: 16 ulps leaves a factor ~4 of room, yet catches any change of formula.
        rtol = 16 * eps
    if "schedule" in case:
        # optax evaluates a schedule at its int32 count, in float32 even with 64-bit jax:
        # 0.01 * 0.5 ** (count / 3) rounds count / 3, the power and the product (3 half-ulps),
        # and the exponent's rounding grows by ln(2) * count / 3 <= 2.1 in the power: under 6
        # half-ulps of float32, 3 ulps; 4 are allowed.
        rtol += 4 * float(np.finfo(np.float32).eps)
    with jax.enable_x64(dtype == np.float64):
        their_params = tg.tree_map(jax.numpy.asarray, params)
        their_state = theirs.init(their_params)
        state = ours.init(params)
        for count, g in enumerate(grads):
            their_updates, their_state = theirs.update(
                tg.tree_map(jax.numpy.asarray, g), their_state, their_params
            )
            their_params = optax.apply_updates(their_params, their_updates)
            updates, state = ours.update(g, state, params)
            if case.startswith("adam"):
                # adamw's update sums Adam's direction and the decay, which may cancel: its
                # rounding is relative to the terms (times the learning rate), not to the sum.
                rate = 0.01 * (0.5 ** (count / 3) if "schedule" in case else 1.0)
                sizes = [rate * t for t in update_terms(state, params, count, weight_decay, mask)]
            else:
                sizes = [np.abs(np.asarray(u)) for u in leaves(their_updates)]
            for got, want, size in zip(leaves(updates), leaves(their_updates), sizes, strict=True):
                assert got.dtype == want.dtype == dtype
                assert np.all(np.abs(got - np.asarray(want)) <= rtol * size)
            params = optim.apply_updates(params, updates)
        for got, want in zip(leaves(params), leaves(their_params), strict=True):
            # |params| < 4 and ten updates each within the bound above.
            np.testing.assert_allclose(got, np.asarray(want), rtol=0, atol=STEPS * 4 * rtol)


SCHEDULES: dict[str, Callable[[Any], Any]] = {
    "constant": lambda o: o.constant_schedule(0.3),
    "linear": lambda o: o.linear_schedule(1.0, 0.1, 20, transition_begin=5),
    "polynomial": lambda o: o.polynomial_schedule(1.0, 0.01, 2.0, 30),
    "exponential": lambda o: o.exponential_decay(0.1, 7, 0.5),
    "exponential-staircase-begin-end": lambda o: o.exponential_decay(
        0.1, 7, 0.5, transition_begin=4, staircase=True, end_value=0.02
    ),
    "exponential-growing": lambda o: o.exponential_decay(0.1, 5, 2.0, end_value=0.5),
    "cosine": lambda o: o.cosine_decay_schedule(0.2, 25, alpha=0.1, exponent=2.0),
    "warmup-cosine": lambda o: o.warmup_cosine_decay_schedule(0.0, 1.0, 10, 40, end_value=0.05),
    "piecewise": lambda o: o.piecewise_constant_schedule(1.0, {10: 0.5, 25: 0.1}),
    "join": lambda o: o.join_schedules(
        [o.constant_schedule(1.0), o.linear_schedule(1.0, 0.0, 10)], [5]
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_equal_optax(name: str) -> None:
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    ours, theirs = SCHEDULES[name](optim), SCHEDULES[name](optax)
    with jax.enable_x64(True):  # optax evaluates in jax's float type: float64 for a fair test
        for count in range(60):
            want = float(theirs(jax.numpy.asarray(count)))
            got = ours(count)
            assert isinstance(got, float)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15), count


# --- schedules: their definitions ------------------------------------------------------------


def test_schedules_follow_their_formulas() -> None:
    decay = optim.exponential_decay(1.0, 10, 0.5)
    assert decay(0) == 1.0 and decay(10) == 0.5 and decay(20) == 0.25
    assert decay(5) == pytest.approx(0.5**0.5)
    stairs = optim.exponential_decay(1.0, 10, 0.5, staircase=True)
    assert stairs(9) == 1.0 and stairs(10) == 0.5 and stairs(19) == 0.5
    floor = optim.exponential_decay(1.0, 1, 0.5, end_value=0.1)
    assert floor(3) == 0.125 and floor(4) == 0.1 and floor(100) == 0.1
    cosine = optim.cosine_decay_schedule(1.0, 10, alpha=0.1)
    assert cosine(0) == 1.0 and cosine(10) == pytest.approx(0.1) and cosine(50) == cosine(10)
    assert cosine(5) == pytest.approx(0.55)
    warm = optim.warmup_cosine_decay_schedule(0.0, 1.0, 4, 14, end_value=0.0)
    assert [warm(k) for k in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert warm(9) == pytest.approx(0.5) and warm(14) == pytest.approx(0.0)
    piecewise = optim.piecewise_constant_schedule(1.0, {10: 0.1, 20: 0.5})
    assert [piecewise(k) for k in (9, 10, 19, 20)] == [1.0, 0.1, 0.1, pytest.approx(0.05)]
    linear = optim.linear_schedule(1.0, 0.0, 4, transition_begin=2)
    assert [linear(k) for k in range(8)] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert optim.constant_schedule(3)(1000) == 3.0


def test_the_schedule_receives_the_number_of_updates_already_applied() -> None:
    seen: list[int] = []

    def schedule(count: int) -> float:
        seen.append(count)
        return 0.1

    params, grads = small_problem()
    for make in (lambda: optim.sgd(schedule), lambda: optim.adam(schedule)):
        seen.clear()
        run(make(), params, grads[:3])
        assert seen == [0, 1, 2]


def test_a_schedule_sets_each_steps_learning_rate() -> None:
    params, grads = small_problem()
    rates = [0.1 * 0.5**k for k in range(3)]
    got, _ = run(optim.sgd(lambda count: rates[count]), params, grads[:3])
    expected = params
    for rate, g in zip(rates, grads[:3], strict=True):
        expected = tg.tree_map(lambda p, g, rate=rate: p + -rate * g, expected, g)
    for a, b in zip(leaves(got), leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)


# --- convergence on a quadratic -------------------------------------------------------------

CURVATURE = np.array([1.0, 2.0, 5.0, 10.0])
MINIMUM = np.array([3.0, -1.0, 0.5, 2.0])


def quadratic(params: dict[str, Any]) -> Any:
    return 0.5 * tg.sum(CURVATURE * (params["x"] - MINIMUM) ** 2)


@pytest.mark.parametrize(
    ("make", "steps"),
    [
        # Contraction per step max|1 - lr * a| = 0.9: 0.9**300 * 4 ~ 5e-14.
        (lambda: optim.sgd(0.1), 300),
        # Heavy ball with mu = 0.9 contracts like sqrt(mu) ~ 0.95 per step: 0.95**800 ~ 1e-18.
        (lambda: optim.sgd(0.05, momentum=0.9), 800),
        (lambda: optim.sgd(0.05, momentum=0.9, nesterov=True), 800),
        # Adam's steps have size ~lr near the minimum, so the rate must decay to converge;
        # after 3000 steps it has shrunk to 0.1 * 0.5**30 ~ 1e-10.
        (lambda: optim.adam(optim.exponential_decay(0.1, 100, 0.5)), 3000),
    ],
    ids=["sgd", "momentum", "nesterov", "adam"],
)
def test_optimizers_converge_on_a_quadratic(make: Any, steps: int) -> None:
    opt = make()
    params = {"x": np.zeros(4)}
    state = opt.init(params)
    for _ in range(steps):
        updates, state = opt.update(tg.grad(quadratic)(params), state, params)
        params = optim.apply_updates(params, updates)
    np.testing.assert_allclose(params["x"], MINIMUM, rtol=0, atol=1e-8)


def test_adamw_weight_decay_pulls_unmasked_parameters_to_zero() -> None:
    # With zero gradients Adam's direction is zero and only the decay acts: p <- p (1 - lr wd).
    params = {"w": np.ones(3), "b": np.ones(3)}
    opt = optim.adamw(0.1, weight_decay=0.5, mask=lambda p: {"w": True, "b": False})
    state = opt.init(params)
    for _ in range(5):
        updates, state = opt.update(tg.tree_map(np.zeros_like, params), state, params)
        params = optim.apply_updates(params, updates)
    np.testing.assert_allclose(params["w"], 0.95**5, rtol=1e-15)
    np.testing.assert_array_equal(params["b"], 1.0)


# --- dtypes, purity, state ---------------------------------------------------------------------

NUMPY_FLOAT64 = np.float64(0.01)  # a float64 scalar: promotes float32 arrays if used as is

OPTIMIZERS = {
    "sgd": lambda: optim.sgd(NUMPY_FLOAT64),
    "momentum": lambda: optim.sgd(NUMPY_FLOAT64, momentum=np.float64(0.9)),
    "nesterov": lambda: optim.sgd(NUMPY_FLOAT64, momentum=np.float64(0.9), nesterov=True),
    "adam": lambda: optim.adam(NUMPY_FLOAT64, np.float64(0.9), np.float64(0.999), np.float64(1e-8)),
    "adam-schedule": lambda: optim.adam(lambda count: np.float64(0.01) / (1 + count)),
    "adam-cosine": lambda: optim.adam(optim.cosine_decay_schedule(0.01, 5)),
    "adamw": lambda: optim.adamw(NUMPY_FLOAT64, weight_decay=np.float64(0.1)),
}


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("dtype", DTYPES)
def test_updates_and_state_keep_the_parameters_dtype(make: Any, dtype: Any) -> None:
    params, grads = small_problem(dtype)
    got, state = run(make(), params, grads)
    for leaf in leaves(got):
        assert leaf.dtype == dtype
    for leaf in leaves({k: v for k, v in state.items() if k != "count"}):
        assert leaf.dtype == dtype
    assert state["count"].dtype == np.int64 and state["count"].shape == ()


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_update_and_apply_updates_do_not_modify_their_arguments(make: Any) -> None:
    params, grads = small_problem()
    opt = make()
    state = opt.update(grads[0], opt.init(params), params)[1]
    before = copy.deepcopy((params, grads[1], state))
    updates, _ = opt.update(grads[1], state, params)
    updates_before = copy.deepcopy(updates)
    optim.apply_updates(params, updates)
    for a, b in zip(leaves((params, grads[1], state)), leaves(before), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(updates), leaves(updates_before), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_state_is_a_pytree_of_arrays_mirroring_the_parameters() -> None:
    params, _ = small_problem()
    state = optim.adam(1e-3).init(params)
    assert set(state) == {"count", "mu", "nu"}
    assert state["count"] == 0
    for moments in (state["mu"], state["nu"]):
        assert tg.tree_flatten(moments)[1] == tg.tree_flatten(params)[1]
        assert all(np.all(leaf == 0) for leaf in leaves(moments))
    assert set(optim.sgd(0.1).init(params)) == {"count"}
    assert set(optim.sgd(0.1, momentum=0.5).init(params)) == {"count", "trace"}
    assert set(optim.adamw(0.1).init(params)) == {"count", "mu", "nu"}


def test_a_flat_dict_and_a_nested_tree_get_the_same_numbers() -> None:
    for make in OPTIMIZERS.values():
        flat, flat_grads = small_problem(structure="flat")
        nested, nested_grads = small_problem(structure="nested")
        got_flat, _ = run(make(), flat, flat_grads)
        got_nested, _ = run(make(), nested, nested_grads)
        flat_again = {"W": got_nested["layer"]["W"], "b": got_nested["layer"]["b"]}
        for key, value in flat_again.items():
            np.testing.assert_array_equal(got_flat[key], value)
        np.testing.assert_array_equal(got_flat["s"], got_nested["s"][0])


def test_apply_updates_keeps_each_parameters_dtype() -> None:
    params = {"w": np.ones(2, np.float32)}
    new = optim.apply_updates(params, {"w": np.full(2, 0.5)})  # a float64 update, as optax
    assert new["w"].dtype == np.float32
    np.testing.assert_array_equal(new["w"], [1.5, 1.5])


# --- no needless temporaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "new_arrays"),
    [
        (lambda: optim.sgd(0.1), 1),
        (lambda: optim.sgd(0.1, 0.9), 2),
        (lambda: optim.sgd(0.1, 0.9, nesterov=True), 2),
        (lambda: optim.adam(0.1), 3),
    ],
    ids=["sgd", "momentum", "nesterov", "adam"],
)
def test_update_allocates_only_its_results(make: Any, new_arrays: int) -> None:
    # The results (the updates, plus the new trace or the new mu and nu) must be allocated; a
    # naive implementation also allocates temporaries such as g**2 or sqrt(nu_hat) + eps.
    params = {"W": np.ones((500, 500), np.float32)}
    grads = {"W": np.full((500, 500), 0.5, np.float32)}
    opt = make()
    state = opt.init(params)
    tracemalloc.start()
    try:
        opt.update(grads, state, params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Half an array of slack for bookkeeping, far less than one extra temporary.
    assert peak < (new_arrays + 0.5) * params["W"].nbytes


# --- errors ------------------------------------------------------------------------------------


def test_gradients_must_mirror_the_parameters() -> None:
    params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
    for opt in (optim.adam(1e-3), optim.sgd(0.1, momentum=0.9)):
        state = opt.init(params)
        with pytest.raises(ValueError, match=r"grads does not have the structure of state\["):
            opt.update({"W": np.zeros((2, 3))}, state, params)
        with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(4,\) but state\["):
            opt.update({"W": np.zeros((2, 3)), "b": np.zeros(4)}, state, params)
        with pytest.raises(TypeError, match=r"grads\['W'\] has dtype float32 but state\["):
            opt.update({"W": np.zeros((2, 3), np.float32), "b": np.zeros(3)}, state, params)
        with pytest.raises(TypeError, match=r"grads\['b'\] must be an ndarray, got float"):
            opt.update({"W": np.zeros((2, 3)), "b": 0.0}, state, params)
    with pytest.raises(TypeError, match=r"grads\['b'\] must be a floating-point ndarray, got int"):
        optim.sgd(0.1).update(
            {"W": np.zeros((2, 3)), "b": np.zeros(3, int)}, {"count": np.array(0)}
        )


def test_the_old_argument_order_is_an_error_naming_the_new_one() -> None:
    params = {"W": np.zeros((2, 3))}
    grads = {"W": np.ones((2, 3))}
    opt = optim.adam(1e-3)
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"the call is update\(grads, state, params\)"):
        opt.update(params, grads, state)  # type: ignore[arg-type]


def test_the_state_must_come_from_the_same_optimizer_and_parameters() -> None:
    params = {"W": np.zeros((2, 3))}
    grads = {"W": np.ones((2, 3))}
    with pytest.raises(ValueError, match=r"state has no 'mu' entry"):
        optim.adam(1e-3).update(grads, optim.sgd(0.1).init(params))
    with pytest.raises(ValueError, match=r"state has no 'trace' entry"):
        optim.sgd(0.1, momentum=0.9).update(grads, optim.sgd(0.1).init(params))
    other = optim.adam(1e-3).init({"W": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(2, 3\) but state\['mu'\]"):
        optim.adam(1e-3).update(grads, other)
    with pytest.raises(ValueError, match=r"state has no 'count' entry"):
        optim.sgd(0.1).update(grads, {})
    with pytest.raises(ValueError, match=r"state\['count'\] must be a non-negative integer"):
        optim.sgd(0.1).update(grads, {"count": np.array(1.5)})
    state = optim.adam(1e-3).init(params)
    state["nu"] = {"W": np.zeros((2, 3), np.float32)}
    with pytest.raises(TypeError, match=r"state\['nu'\]\['W'\] has dtype float32"):
        optim.adam(1e-3).update(grads, state)


def test_adamw_needs_the_parameters_and_a_matching_mask() -> None:
    params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
    grads = tg.tree_map(np.ones_like, params)
    opt = optim.adamw(1e-3)
    with pytest.raises(ValueError, match=r"params must be given \(update\(grads, state, params\)"):
        opt.update(grads, opt.init(params))
    with pytest.raises(ValueError, match=r"mask has keys \['W'\], params has \['W', 'b'\]"):
        optim.adamw(1e-3, mask={"W": True}).init(params)
    with pytest.raises(TypeError, match="mask must be a pytree of bools"):
        optim.adamw(1e-3, mask={"W": 1, "b": 0})
    # A prefix: one bool for a whole subtree.
    nested = {"layer": params, "scale": np.ones(1)}
    masked = optim.adamw(1e-3, mask={"layer": False, "scale": True})
    updates, _ = masked.update(tg.tree_map(np.zeros_like, nested), masked.init(nested), nested)
    assert np.all(updates["layer"]["W"] == 0) and np.all(updates["scale"] < 0)


def test_parameters_must_be_floating_point_arrays() -> None:
    floating = "must be a floating-point ndarray"
    with pytest.raises(TypeError, match=rf"params\['n'\] {floating}, got int64"):
        optim.adam(1e-3).init({"n": np.arange(3)})
    with pytest.raises(TypeError, match=rf"params\['x'\] {floating}, got float"):
        optim.sgd(0.1).init({"x": 1.0})
    with pytest.raises(ValueError, match="no leaves"):
        optim.sgd(0.1).init({})


def test_apply_updates_refuses_mismatched_updates() -> None:
    params = {"W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"updates does not have the structure of params"):
        optim.apply_updates(params, {"V": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"updates\['W'\] has shape \(3,\) but params has"):
        optim.apply_updates(params, {"W": np.zeros(3)})  # never broadcast


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optim.sgd(0.0), "learning_rate must be a positive finite number"),
        (lambda: optim.adam(math.inf), "learning_rate must be a positive finite number"),
        (lambda: optim.sgd(float("nan")), "learning_rate must be a positive finite number"),
        (lambda: optim.sgd(0.1, momentum=1.0), r"momentum must lie in \[0, 1\)"),
        (lambda: optim.sgd(0.1, nesterov=True), "nesterov=True needs a momentum"),
        (lambda: optim.adam(0.1, b1=1.0), r"b1 must lie in \[0, 1\)"),
        (lambda: optim.adam(0.1, b2=-0.1), r"b2 must lie in \[0, 1\)"),
        (lambda: optim.adam(0.1, eps=-1.0), "eps must be at least 0"),
        (lambda: optim.adam(0.1, eps=math.inf), "eps must be a finite number"),
        (lambda: optim.adamw(0.1, weight_decay=-1.0), "weight_decay must be at least 0"),
        (lambda: optim.exponential_decay(0.1, 10, 0.0), "decay_rate must be positive"),
        (lambda: optim.exponential_decay(0.1, 0, 0.5), "transition_steps must be a positive"),
        (lambda: optim.exponential_decay(0.1, 10, 0.5, transition_begin=-1), "transition_begin"),
        (lambda: optim.cosine_decay_schedule(0.1, 0), "decay_steps must be a positive integer"),
        (lambda: optim.warmup_cosine_decay_schedule(0, 1, 10, 10), "must exceed warmup_steps"),
        (lambda: optim.piecewise_constant_schedule(1.0, {5: -0.1}), "must be non-negative"),
        (lambda: optim.join_schedules([optim.constant_schedule(1)], [3]), "need 0 boundaries"),
        (lambda: optim.constant_schedule(math.nan), "value must be a finite number"),
    ],
)
def test_bad_hyperparameters_are_rejected(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
