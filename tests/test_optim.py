"""Specification of tinygrad_np.optim: pure optimizer functions over parameter pytrees."""

from __future__ import annotations

import copy
import tracemalloc
from typing import Any

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import optim


def small_problem(dtype: Any = np.float64) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parameters in a nested pytree and a fixed sequence of gradients for them."""
    rng = np.random.default_rng(42)
    params = {
        "layer": {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
        "s": [rng.standard_normal(())],
    }
    params = tg.tree_map(lambda p: np.asarray(p, dtype), params)
    grads = [
        tg.tree_map(lambda p: rng.standard_normal(p.shape).astype(dtype), params) for _ in range(10)
    ]
    return params, grads


def run(opt: optim.Optimizer, params: Any, grads: list[Any]) -> tuple[Any, Any]:
    state = opt.init(params)
    for g in grads:
        params, state = opt.update(params, g, state)
    return params, state


def leaves(tree: Any) -> list[Any]:
    return tg.tree_leaves(tree)


# --- each optimizer against a hand-written reference ---------------------------------------


def test_sgd_matches_the_textbook_update_exactly() -> None:
    params, grads = small_problem()
    expected = copy.deepcopy(params)
    for g in grads:
        expected = tg.tree_map(lambda p, g: p - 0.1 * g, expected, g)
    got, state = run(optim.sgd(0.1), params, grads)
    # p + g * (-lr) and p - lr * g round identically (negation is exact), so no tolerance.
    for a, b in zip(leaves(got), leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    assert state["step"] == len(grads)


def test_sgd_momentum_matches_the_textbook_update_exactly() -> None:
    params, grads = small_problem()
    expected = copy.deepcopy(params)
    velocity = tg.tree_map(np.zeros_like, params)
    for g in grads:
        velocity = tg.tree_map(lambda v, g: 0.9 * v + g, velocity, g)
        expected = tg.tree_map(lambda p, v: p - 0.05 * v, expected, velocity)
    got, state = run(optim.sgd(0.05, momentum=0.9), params, grads)
    # Same operations in the same order as the reference: equal to the last bit.
    for a, b in zip(leaves(got), leaves(expected), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(leaves(state["velocity"]), leaves(velocity), strict=True):
        np.testing.assert_array_equal(a, b)


def test_adam_matches_the_paper_algorithm() -> None:
    params, grads = small_problem()
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    expected = copy.deepcopy(params)
    m = tg.tree_map(np.zeros_like, params)
    v = tg.tree_map(np.zeros_like, params)
    for t, g in enumerate(grads, start=1):
        m = tg.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tg.tree_map(lambda v, g: b2 * v + (1 - b2) * g**2, v, g)

        def step(p: Any, m: Any, v: Any, t: int = t) -> Any:
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            return p - lr * m_hat / (np.sqrt(v_hat) + eps)

        expected = tg.tree_map(step, expected, m, v)
    got, state = run(optim.adam(lr, b1, b2, eps), params, grads)
    # The implementation regroups the arithmetic (m + (1-b1)(g-m), sqrt(v)/sqrt(1-b2^t)) to
    # save temporaries, so it rounds differently: each step's update (size <= ~lr) is off by a
    # few float64 ulps, i.e. ~1e-17; ten steps stay far below the 1e-13 allowed here, while a
    # real mistake (a missing bias correction, a swapped beta) changes the result by > 1e-4.
    for a, b in zip(leaves(got), leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    for a, b in zip(leaves(state["m"]), leaves(m), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    for a, b in zip(leaves(state["v"]), leaves(v), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert state["step"] == len(grads)


# --- convergence on a quadratic -------------------------------------------------------------

CURVATURE = np.array([1.0, 2.0, 5.0, 10.0])
MINIMUM = np.array([3.0, -1.0, 0.5, 2.0])


def quadratic(params: dict[str, Any]) -> Any:
    return 0.5 * tg.sum(CURVATURE * (params["x"] - MINIMUM) ** 2)


@pytest.mark.parametrize(
    ("opt", "steps"),
    [
        # Contraction per step max|1 - lr * a| = 0.9: 0.9**300 * 4 ~ 5e-14.
        (optim.sgd(0.1), 300),
        # Heavy ball with mu = 0.9 contracts like sqrt(mu) ~ 0.95 per step: 0.95**800 ~ 1e-18.
        (optim.sgd(0.05, momentum=0.9), 800),
        # Adam's steps have size ~lr near the minimum, so the rate must decay to converge;
        # after 3000 steps it has shrunk to 0.1 * 0.5**30 ~ 1e-10.
        (optim.adam(optim.exponential_decay(0.1, 0.5, 100)), 3000),
    ],
    ids=["sgd", "momentum", "adam"],
)
def test_optimizers_converge_on_a_quadratic(opt: optim.Optimizer, steps: int) -> None:
    params = {"x": np.zeros(4)}
    state = opt.init(params)
    for _ in range(steps):
        params, state = opt.update(params, tg.grad(quadratic)(params), state)
    np.testing.assert_allclose(params["x"], MINIMUM, rtol=0, atol=1e-8)


# --- dtypes, purity, state ---------------------------------------------------------------------

NUMPY_FLOAT64 = np.float64(0.01)  # a float64 scalar: promotes float32 arrays if used as is

OPTIMIZERS = {
    "sgd": lambda: optim.sgd(NUMPY_FLOAT64),
    "momentum": lambda: optim.sgd(NUMPY_FLOAT64, momentum=np.float64(0.9)),
    "adam": lambda: optim.adam(NUMPY_FLOAT64, np.float64(0.9), np.float64(0.999), np.float64(1e-8)),
    "adam-schedule": lambda: optim.adam(lambda step: np.float64(0.01) / (1 + step)),
    "adam-cosine": lambda: optim.adam(optim.cosine_decay(0.01, 5)),
}


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_keep_the_parameters_dtype(make: Any, dtype: Any) -> None:
    params, grads = small_problem(dtype)
    got, state = run(make(), params, grads)
    for leaf in leaves(got):
        assert leaf.dtype == dtype
    for path_leaf in leaves({k: v for k, v in state.items() if k != "step"}):
        assert path_leaf.dtype == dtype
    assert state["step"].dtype == np.int64 and state["step"].shape == ()


def test_float32_adam_tracks_the_float64_reference() -> None:
    params64, grads64 = small_problem(np.float64)
    params32 = tg.tree_map(lambda p: p.astype(np.float32), params64)
    grads32 = [tg.tree_map(lambda g: g.astype(np.float32), g) for g in grads64]
    got32, _ = run(optim.adam(0.01), params32, grads32)
    got64, _ = run(optim.adam(0.01), params64, grads64)
    # Inputs were rounded to float32 (relative 6e-8); |params| < 4, so the start is off by
    # < 3e-7, and each of the ten updates (size ~0.01) by a few float32 ulps of 0.01.
    for a, b in zip(leaves(got32), leaves(got64), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_update_does_not_modify_its_arguments(make: Any) -> None:
    params, grads = small_problem()
    opt = make()
    state = opt.update(params, grads[0], opt.init(params))[1]
    before = copy.deepcopy((params, grads[1], state))
    opt.update(params, grads[1], state)
    for a, b in zip(leaves((params, grads[1], state)), leaves(before), strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_is_a_pytree_mirroring_the_parameters() -> None:
    params, _ = small_problem()
    state = optim.adam().init(params)
    assert set(state) == {"step", "m", "v"}
    assert state["step"] == 0
    for moments in (state["m"], state["v"]):
        assert tg.tree_flatten(moments)[1] == tg.tree_flatten(params)[1]
        assert all(np.all(leaf == 0) for leaf in leaves(moments))
    assert set(optim.sgd(0.1).init(params)) == {"step"}
    assert set(optim.sgd(0.1, momentum=0.5).init(params)) == {"step", "velocity"}


def test_schedule_receives_the_number_of_updates_already_applied() -> None:
    seen: list[int] = []

    def schedule(step: int) -> float:
        seen.append(step)
        return 0.1

    params, grads = small_problem()
    run(optim.sgd(schedule), params, grads[:3])
    assert seen == [0, 1, 2]


def test_schedules() -> None:
    decay = optim.exponential_decay(1.0, 0.5, 10)
    assert decay(0) == 1.0 and decay(10) == 0.5 and decay(20) == 0.25
    assert decay(5) == pytest.approx(0.5**0.5)
    cosine = optim.cosine_decay(1.0, 10, final_lr=0.1)
    assert cosine(0) == 1.0 and cosine(10) == pytest.approx(0.1) and cosine(50) == cosine(10)
    assert cosine(5) == pytest.approx(0.55)


# --- no needless temporaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "new_arrays"),
    [(lambda: optim.sgd(0.1), 1), (lambda: optim.sgd(0.1, 0.9), 2), (optim.adam, 3)],
    ids=["sgd", "momentum", "adam"],
)
def test_update_allocates_only_its_results(make: Any, new_arrays: int) -> None:
    # The results (new params, plus new velocity or new m and v) must be allocated; a naive
    # implementation also allocates temporaries such as lr * g, g**2 or sqrt(v_hat) + eps.
    params = {"W": np.ones((500, 500), np.float32)}
    grads = {"W": np.full((500, 500), 0.5, np.float32)}
    opt = make()
    state = opt.init(params)
    tracemalloc.start()
    try:
        opt.update(params, grads, state)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Allow half an array of slack for bookkeeping, far less than one extra temporary.
    assert peak < (new_arrays + 0.5) * params["W"].nbytes


# --- errors ------------------------------------------------------------------------------------


def test_gradients_must_mirror_the_parameters() -> None:
    params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
    opt = optim.adam()
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"grads does not have the structure of params"):
        opt.update(params, {"W": np.zeros((2, 3))}, state)
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(4,\) but the parameter has"):
        opt.update(params, {"W": np.zeros((2, 3)), "b": np.zeros(4)}, state)
    with pytest.raises(TypeError, match=r"grads\['W'\] has dtype float32 but the parameter"):
        opt.update(params, {"W": np.zeros((2, 3), np.float32), "b": np.zeros(3)}, state)


def test_state_must_come_from_the_same_optimizer_and_parameters() -> None:
    params = {"W": np.zeros((2, 3))}
    grads = {"W": np.ones((2, 3))}
    with pytest.raises(ValueError, match=r"state\['m'\] is missing"):
        optim.adam().update(params, grads, optim.sgd(0.1).init(params))
    with pytest.raises(ValueError, match=r"state\['velocity'\] is missing"):
        optim.sgd(0.1, momentum=0.9).update(params, grads, optim.sgd(0.1).init(params))
    other = optim.adam().init({"W": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"state\['m'\]\['W'\] has shape \(3, 3\)"):
        optim.adam().update(params, grads, other)
    with pytest.raises(ValueError, match=r"'step' entry"):
        optim.sgd(0.1).update(params, grads, {})
    with pytest.raises(ValueError, match=r"state\['step'\] must be a non-negative integer"):
        optim.sgd(0.1).update(params, grads, {"step": np.array(1.5)})


def test_parameters_must_be_floating_point_arrays() -> None:
    floating = "must be a floating-point ndarray"
    with pytest.raises(TypeError, match=rf"params\['n'\] {floating}, got int64"):
        optim.adam().init({"n": np.arange(3)})
    with pytest.raises(TypeError, match=rf"params\['x'\] {floating}, got float"):
        optim.sgd(0.1).init({"x": 1.0})
    with pytest.raises(ValueError, match="no leaves"):
        optim.sgd(0.1).init({})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optim.sgd(0.0), "lr must be a positive finite number"),
        (lambda: optim.sgd(float("nan")), "lr must be a positive finite number"),
        (lambda: optim.sgd(0.1, momentum=1.0), r"momentum must lie in \[0, 1\)"),
        (lambda: optim.adam(b1=1.0), r"b1 must lie in \[0, 1\)"),
        (lambda: optim.adam(b2=-0.1), r"b2 must lie in \[0, 1\)"),
        (lambda: optim.adam(eps=-1.0), "eps must be non-negative"),
        (lambda: optim.exponential_decay(0.1, 1.5, 10), r"decay_rate must lie in \(0, 1\]"),
        (lambda: optim.exponential_decay(0.1, 0.5, 0), "decay_steps must be positive"),
        (lambda: optim.cosine_decay(0.1, 10, final_lr=0.2), r"final_lr must lie in \[0, lr"),
    ],
)
def test_bad_hyperparameters_are_rejected(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
