"""Specification of ``tinygrad_np.testing``: check_grads, numerical_grad, strategies, teeth.

The teeth tests build deliberately wrong VJPs in a sandbox: NEW ``Primitive``
objects with a real op's forward and a corrupted copy of its VJP maker. The
real op table is never touched, and a fixture proves it after every such test.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np import elementwise, linalg, nn, reductions, shape
from tinygrad_np.extend import Primitive
from tinygrad_np.testing import check_grads, default_tolerance, numerical_grad
from tinygrad_np.testing import strategies as tst

OP_MODULES = (elementwise, reductions, shape, linalg, nn)


@pytest.fixture
def rng():
    """A fresh generator per test, so each test sees the same inputs however it is run."""
    return np.random.default_rng(20240607)


def real_primitive(name):
    """The op table's Primitive called ``name`` (looked up, never modified)."""
    for module in OP_MODULES:
        for value in vars(module).values():
            if isinstance(value, Primitive) and value.name == name:
                return value
    raise LookupError(name)


def corrupted(name, corrupt):
    """A new Primitive: ``name``'s real forward, and its real VJPs passed through ``corrupt``.

    ``corrupt(gradient, argnum)`` returns what the broken VJP gives instead.
    """
    real = real_primitive(name)

    def vjp_maker(ans, *args, **kwargs):
        return tuple(
            None if vjp is None else (lambda g, vjp=vjp, i=i: corrupt(vjp(g), i))
            for i, vjp in enumerate(real.vjp(ans, *args, **kwargs))
        )

    return Primitive(name, real.impl, vjp_maker)


def snapshot_of_the_op_table():
    return {
        (module.__name__, attribute): (value, value.impl, value.vjp)
        for module in OP_MODULES
        for attribute, value in vars(module).items()
        if isinstance(value, Primitive)
    }


@pytest.fixture
def sandbox():
    """Asserts that a test leaves every real Primitive (object, forward, VJP maker) as it was."""
    before = snapshot_of_the_op_table()
    yield
    after = snapshot_of_the_op_table()
    assert after.keys() == before.keys()
    for key, (value, impl, vjp) in before.items():
        assert after[key][0] is value and value.impl is impl and value.vjp is vjp, key


def assert_check_fails(f, args, pattern, **kwargs):
    with pytest.raises(AssertionError) as caught:
        check_grads(f, args, **kwargs)
    assert re.search(pattern, str(caught.value)), str(caught.value)
    return str(caught.value)


# --- correct functions pass ------------------------------------------------------------


def test_a_correct_function_passes_at_first_and_second_order(rng):
    x = rng.uniform(-2, 2, (3, 4))
    check_grads(lambda x: tg.sum(tg.tanh(x) * x), (x,), order=2)


def test_vector_and_pytree_outputs_are_checked_through_a_random_cotangent(rng):
    x, y = rng.uniform(-2, 2, (3,)), rng.uniform(-2, 2, (2, 3))
    check_grads(lambda x, y: (tg.exp(x), {"product": x * y}), (x, y), order=2)


def test_pytree_arguments_are_checked_leaf_by_leaf(rng):
    params = {"W": rng.uniform(-1, 1, (3, 2)), "b": [rng.uniform(-1, 1, 2)]}
    x = rng.uniform(-1, 1, (4, 3))
    check_grads(lambda p, x: tg.sigmoid(x @ p["W"] + p["b"][0]), (params, x), order=2)


def test_a_bare_array_is_the_only_argument(rng):
    x = rng.uniform(-2, 2, (5,))
    check_grads(tg.exp, x)
    assert_check_fails(corrupted("exp", lambda g, i: 2 * g), x, r"argument 0, element")


def test_float32_inputs_pass_with_the_float32_default_tolerance(rng):
    x = rng.uniform(-2, 2, (4, 4)).astype(np.float32)
    check_grads(lambda x: tg.log_softmax(x @ x.T, axis=1), (x,), order=2)


def test_the_default_tolerances_follow_the_dtype():
    assert default_tolerance(np.float64) == 1e-6
    assert default_tolerance(np.float32) == pytest.approx(1000 * np.finfo(np.float32).eps)
    assert default_tolerance(np.float16) > default_tolerance(np.float32)
    assert default_tolerance(np.float16) == 2e-2  # capped: 1000 eps would be 0.98


def test_float16_checks_pass_when_right_and_catch_a_vjp_off_by_ten_percent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3)).astype(np.float16)
    w = rng.standard_normal((3, 2)).astype(np.float16)
    check_grads(lambda x, w: tg.sum(tg.tanh(x @ w)), (x, w), order=1)
    check_grads(lambda x: tg.sum(tg.exp(x) * x), (x,), order=1)
    skewed_exp = Primitive("skewed_exp", np.exp, lambda ans, x: (lambda g: g * ans * 1.1,))
    with pytest.raises(AssertionError):
        check_grads(lambda x: tg.sum(skewed_exp(x)), (x,), order=1)


# --- failures are reported precisely ----------------------------------------------------


def test_the_message_names_the_leaf_the_element_both_values_and_the_tolerance(rng, sandbox):
    bad_mul = corrupted("mul", lambda g, i: g * 2 if i == 0 else g)
    params = {"W1": rng.uniform(-1, 1, (2, 3)), "b1": rng.uniform(-1, 1, 3)}

    def f(p):
        return tg.sum(bad_mul(p["W1"], 3.0) + p["b1"])

    message = assert_check_fails(f, (params,), r"argument 0\['W1'\]")
    # Engine gives 2 * 3 = 6 for every element, finite differences give 3.
    assert re.search(r"element \(\d, \d\)", message)
    assert re.search(r"engine 6\b.*finite differences (3\b|2\.99999)", message)
    assert "tolerance 4e-06" in message  # atol 1e-6 + rtol 1e-6 * |3|
    assert "6 of 6 elements" in message
    assert "seed 0" in message


def test_the_worst_element_is_reported(rng, sandbox):
    def wrong_sign_at_flat_index_4(g, i):
        flip = np.ones(np.shape(g))
        flip.flat[4] = -1
        return g * flip

    x = rng.uniform(-1, 1, (3, 3))
    assert_check_fails(
        lambda x: tg.sum(corrupted("exp", wrong_sign_at_flat_index_4)(x)),
        (x,),
        r"argument 0, element \(1, 1\).*1 of 9 elements",
    )


@pytest.mark.parametrize("modes", [("rev",), ("fwd",)])
def test_a_step_across_a_near_tie_is_measured_again_at_smaller_steps(modes):
    # max of two values 3e-6 apart: the default step (1e-5) crosses the tie, eps/10 does not
    x = np.array([1.0, 1.0 + 3e-6])
    crossing = numerical_grad(lambda x: np.max(x), (x,))[0]
    assert abs(crossing[0]) > 0.1  # the control: the first step alone is wrong by 0.35
    check_grads(lambda x: np.max(x), (x,), modes=modes, method="elementwise")


@pytest.mark.parametrize("modes", [("rev",), ("fwd",)])
def test_a_function_of_high_curvature_passes_at_a_smaller_step(modes):
    # sin(1000 x): the truncation error h**2 / 6 times the third derivative is 1.7% of the
    # derivative at the default step (the 1e-6 tolerance allows 0.1% of 1000 cos), 0.017%
    # at eps/10
    x = np.array([0.3, 1.1, -0.7])
    check_grads(lambda x: np.sin(1000.0 * x), (x,), modes=modes, method="elementwise")


def test_the_same_seed_reproduces_a_failure_and_another_seed_draws_another_cotangent(rng, sandbox):
    bad_exp = corrupted("exp", lambda g, i: 1.5 * g)
    x = rng.uniform(-1, 1, (6,))
    first = assert_check_fails(bad_exp, (x,), "vector-Jacobian product", seed=3)
    assert assert_check_fails(bad_exp, (x,), "vector-Jacobian product", seed=3) == first
    assert assert_check_fails(bad_exp, (x,), "vector-Jacobian product", seed=4) != first


def test_explicit_tolerances_replace_the_defaults(rng, sandbox):
    slightly_off = corrupted("exp", lambda g, i: g * (1 + 1e-3))
    x = rng.uniform(-1, 1, (4,))
    assert_check_fails(slightly_off, (x,), "tolerance")
    check_grads(slightly_off, (x,), rtol=1e-2, atol=1e-2)


# --- the checks have teeth: every kind of wrong VJP is caught ----------------------------------


def test_a_gradient_off_by_a_factor_is_caught(rng, sandbox):
    bad_mul = corrupted("mul", lambda g, i: 1.5 * g)
    x, y = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3,))
    assert_check_fails(bad_mul, (x, y), r"mismatch at argument [01]")


@pytest.mark.parametrize(
    ("dtype", "factor"),
    [(np.float64, 1 + 1e-5), (np.float32, 1 + 1e-3)],
    ids=["float64", "float32"],
)
def test_a_gradient_off_by_a_small_factor_is_caught_in_either_precision(
    rng, sandbox, dtype, factor
):
    # The defaults (1e-6 and 1.2e-4) sit an order of magnitude below these errors.
    bad_tanh = corrupted("tanh", lambda g, i: factor * g)
    x = rng.uniform(-1, 1, (3, 3)).astype(dtype)
    check_grads(tg.tanh, (x,))  # the real op passes at the same inputs
    assert_check_fails(bad_tanh, (x,), "mismatch")


def test_a_transposed_gradient_of_the_right_shape_is_caught(rng, sandbox):
    bad_matmul = corrupted("matmul", lambda g, i: tg.transpose(g))
    a, b = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (3, 3))
    assert_check_fails(bad_matmul, (a, b), r"mismatch at argument [01], element")


def test_a_transposed_gradient_of_the_wrong_shape_is_an_assertion_error(rng, sandbox):
    bad_matmul = corrupted("matmul", lambda g, i: tg.transpose(g))
    a, b = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3, 4))
    assert_check_fails(bad_matmul, (a, b), r"\(3, 2\).*\(2, 3\)|\(2, 3\).*\(3, 2\)")


def test_a_permutation_applied_instead_of_its_inverse_is_caught(sandbox, rng):
    forward_not_inverse = Primitive(
        "transpose",
        real_primitive("transpose").impl,
        lambda ans, x, *, axes: (lambda g: tg.transpose(g, axes=axes),),
    )
    x = rng.uniform(-1, 1, (2, 2, 2))  # a cube: the wrong permutation keeps the shape
    assert_check_fails(lambda x: forward_not_inverse(x, axes=(2, 0, 1)), (x,), "mismatch")


def missing_unbroadcast_add():
    """``add`` whose VJPs hand back the full-size cotangent, unsummed."""
    real = real_primitive("add")
    return Primitive("add", real.impl, lambda ans, x, y: (lambda g: g, lambda g: g))


@pytest.mark.parametrize(
    "b_shape", [(3,), (1, 3), (2, 1)], ids=["missing-axis", "unit-row", "unit-column"]
)
def test_a_missing_unbroadcast_at_an_argument_is_a_clear_assertion_error(rng, sandbox, b_shape):
    x, b = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, b_shape)
    message = assert_check_fails(missing_unbroadcast_add(), (x, b), "shape")
    assert "the engine failed while computing" in message
    assert str(b_shape) in message and "(2, 3)" in message


def test_a_missing_unbroadcast_inside_the_graph_is_caught(rng, sandbox):
    bad_add = missing_unbroadcast_add()
    x, b = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3,))
    # The oversized cotangent flows on through exp's VJP before it reaches b.
    assert_check_fails(lambda x, b: tg.tanh(bad_add(x, tg.exp(b))), (x, b), "shape")


def test_a_wrong_sign_in_one_element_is_caught_in_a_vector_output(rng, sandbox):
    def flip_element_2(g, i):
        flip = np.ones(np.shape(g))
        flip.flat[2] = -1
        return g * flip

    x = rng.uniform(-1, 1, (5,))
    assert_check_fails(corrupted("sigmoid", flip_element_2), (x,), r"element \(2,\)")


def test_a_vjp_that_is_right_but_not_differentiable_is_caught_at_second_order(rng, sandbox):
    # The gradient is right, but computed as a constant: its own derivative is lost.
    frozen_tanh = corrupted("tanh", lambda g, i: tg.stop_gradient(g))
    x = rng.uniform(-1, 1, (2, 3))
    check_grads(lambda x: tg.sum(frozen_tanh(x) ** 2), (x,), order=1, modes="rev")
    assert_check_fails(
        lambda x: tg.sum(frozen_tanh(x) ** 2), (x,), "Hessian-vector product", order=2, modes="rev"
    )
    # Forward mode sees it at first order: it differentiates the VJP, by transposing it.
    assert_check_fails(
        lambda x: tg.sum(frozen_tanh(x) ** 2), (x,), "Jacobian-vector product", modes="fwd"
    )


def test_forward_mode_catches_a_vjp_that_is_right_only_for_constant_cotangents(rng):
    # Reverse mode seeds VJPs with constant cotangents, so a VJP that freezes its
    # cotangent passes every reverse-mode check, to second order. Forward mode runs the
    # VJPs on traced cotangents (it transposes them), where the frozen g is a zero rule.
    frozen_sin = Primitive(
        "sin", np.sin, lambda ans, x: (lambda g: tg.stop_gradient(g) * tg.cos(x),)
    )
    x = rng.uniform(-1, 1, (2, 3))
    check_grads(frozen_sin, (x,), order=2, modes="rev")
    assert_check_fails(frozen_sin, (x,), "Jacobian-vector product", modes="fwd")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_forward_mode_catches_a_vjp_off_by_a_small_factor(rng, sandbox, dtype):
    scaled = corrupted("tanh", lambda g, i: g * 1.001)
    x = rng.uniform(-1, 1, (3, 2)).astype(dtype)
    assert_check_fails(scaled, (x,), "Jacobian-vector product", modes="fwd")


def test_a_wrong_second_derivative_is_caught(rng, sandbox):
    # g * sqrt(ans) * sqrt(ans) is exp's VJP, g * ans, but with one factor frozen only half
    # of it is differentiated: first derivatives are right, second derivatives halved.
    def half_frozen_exp_vjp(ans, x):
        return (lambda g: g * tg.stop_gradient(ans) ** 0.5 * ans**0.5,)

    half_frozen = Primitive("exp", real_primitive("exp").impl, half_frozen_exp_vjp)
    x = rng.uniform(-1, 1, (4,))
    check_grads(lambda x: tg.sum(half_frozen(x)), (x,), order=1, modes=("fwd", "rev"))
    assert_check_fails(lambda x: tg.sum(half_frozen(x)), (x,), "Hessian-vector", order=2)
    assert_check_fails(
        lambda x: tg.sum(half_frozen(x)), (x,), "forward over reverse", order=2, modes="fwd"
    )


def test_the_real_op_table_still_passes_after_the_sandboxes(rng):
    x, y = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (3,))
    check_grads(tg.mul, (x, y), order=2)
    check_grads(tg.add, (x, y), order=2)
    check_grads(lambda a, b: a @ b, (x, rng.uniform(-1, 1, (3, 4))), order=2)
    check_grads(lambda x: tg.transpose(x, axes=(1, 0)), (x,), order=2)
    for name in ("exp", "tanh", "sigmoid"):
        check_grads(getattr(tg, name), (x,), order=2)


# --- misuse is a clear error, not an assertion ---------------------------------------------


def test_modes_are_fwd_and_rev():
    x = np.ones(2)
    with pytest.raises(ValueError, match=r"'jvp' is not supported.*\('fwd', 'rev'\)"):
        check_grads(tg.exp, (x,), modes=("jvp", "rev"))
    with pytest.raises(ValueError, match="modes is empty"):
        check_grads(tg.exp, (x,), modes=())
    for modes in ("rev", "fwd", ("fwd", "rev")):
        check_grads(tg.exp, (x,), modes=modes, order=2)


@pytest.mark.parametrize("order", [0, 3, True, 1.0])
def test_only_first_and_second_order_exist(order):
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        check_grads(tg.exp, (np.ones(2),), order=order)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("eps", 0.0), ("eps", -1e-3), ("eps", float("nan")), ("rtol", -1.0), ("atol", np.inf)],
)
def test_steps_and_tolerances_are_validated(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        check_grads(tg.exp, (np.ones(2),), **{keyword: value})


def test_a_dict_is_not_taken_for_the_argument_tuple():
    with pytest.raises(TypeError, match=r"tuple of f's positional arguments.*\(params,\)"):
        check_grads(lambda p: tg.sum(p["w"]), {"w": np.ones(2)})


def test_integer_leaves_are_rejected_by_name():
    with pytest.raises(TypeError, match=r"argument 1\['labels'\] has dtype int64.*closing over"):
        check_grads(lambda x, d: tg.sum(x), (np.ones(2), {"labels": np.array([0, 1])}))


def test_non_array_leaves_are_rejected_by_name():
    with pytest.raises(TypeError, match=r"argument 0\[1\] is a str"):
        check_grads(lambda p: tg.sum(p[0]), ([np.ones(2), "relu"],))


def test_arguments_without_leaves_are_rejected():
    with pytest.raises(ValueError, match="nothing to check"):
        check_grads(lambda: 1.0, ())


def test_integer_outputs_are_rejected():
    with pytest.raises(TypeError, match="output has dtype int64"):
        check_grads(lambda x: np.argmax(np.asarray(x.data)), (np.ones(3),))


def test_errors_raised_by_f_itself_are_not_disguised_as_gradient_failures():
    def f(x):
        raise KeyError("f's own bug")

    with pytest.raises(KeyError, match="f's own bug"):
        check_grads(f, (np.ones(2),))


# --- numerical_grad ----------------------------------------------------------------------


def test_numerical_grad_is_the_central_difference_with_relative_steps():
    # For x**3 the central difference is exactly 3 x**2 + h**2, h = eps * max(1, |x|).
    x = np.array([0.5, -2.0, 3.0])
    eps = 1e-3
    h = eps * np.maximum(1, np.abs(x))
    numeric = numerical_grad(lambda x: tg.sum(x**3), x, eps=eps)
    np.testing.assert_allclose(numeric, 3 * x**2 + h**2, rtol=1e-9)


def test_numerical_grad_matches_a_closed_form_within_its_error_bound(rng):
    x = rng.uniform(-2, 2, (3, 2))
    numeric = numerical_grad(lambda x: tg.sum(tg.tanh(x)), x)
    # tanh''' is at most 2 in size and |f| <= 6: truncation 1.7e-11 * 2 plus rounding
    # ~1e-11 * 6 leaves the default step's error under 1e-9.
    np.testing.assert_allclose(numeric, 1 - np.tanh(x) ** 2, rtol=0, atol=1e-9)


def test_numerical_grad_returns_float64_gradients_shaped_like_args(rng):
    params = {"W": rng.uniform(-1, 1, (2, 2)).astype(np.float32), "b": [np.float32(0.5)]}
    x = rng.uniform(-1, 1, (3, 2))
    grads = numerical_grad(lambda p, x: tg.sum(x @ p["W"] + p["b"][0]), (params, x))
    assert isinstance(grads, tuple) and len(grads) == 2
    assert list(grads[0]) == ["W", "b"] and isinstance(grads[0]["b"], list)
    assert grads[0]["W"].shape == (2, 2) and grads[0]["W"].dtype == np.float64
    assert grads[0]["b"][0].shape == ()
    np.testing.assert_allclose(grads[0]["b"][0], 6.0, rtol=1e-9)
    np.testing.assert_allclose(grads[1], np.tile(params["W"].sum(axis=1), (3, 1)), rtol=1e-6)


def test_numerical_grad_needs_a_scalar_output():
    with pytest.raises(ValueError, match=r"must return a scalar.*shape \(2,\)"):
        numerical_grad(tg.exp, np.ones(2))


def test_numerical_grad_reports_leaving_the_domain():
    with pytest.raises(ValueError, match=r"argument 0\[0\].*domain"), np.errstate(invalid="ignore"):
        numerical_grad(lambda x: tg.sum(tg.log(x)), np.array([1e-6, 1.0]), eps=1e-3)


# --- packaging ---------------------------------------------------------------------------


def test_importing_tinygrad_np_testing_does_not_import_hypothesis():
    code = (
        "import sys, tinygrad_np.testing; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis was imported'; "
        "import tinygrad_np.testing.strategies; assert 'hypothesis' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- strategies ----------------------------------------------------------------------------


@given(
    tst.float_arrays(
        dtype=np.float64, min_value=-3.0, max_value=2.0, min_magnitude=0.25, min_gap=0.05
    )
)
def test_float_arrays_keep_their_bounds_magnitude_and_gaps(x):
    assert x.dtype == np.float64
    assert np.all((x >= -3.0) & (x <= 2.0))
    assert np.all(np.abs(x) >= 0.25)
    assert np.all(np.diff(np.sort(x, axis=None)) >= 0.05 - 1e-12)


@given(tst.float_arrays((3, 4), dtype=np.float32, avoid=(-0.5, 0.5), margin=0.1))
def test_float_arrays_keep_away_from_the_points_to_avoid(x):
    assert x.shape == (3, 4) and x.dtype == np.float32
    # float32 rounding may move a value by one unit in the last place (6e-8 here).
    assert np.all(np.abs(np.abs(x) - 0.5) >= 0.1 - 1e-6)


@pytest.mark.parametrize(
    "bounds",
    [
        {"min_value": 1.0, "max_value": -1.0},
        {"min_value": -1.0, "max_value": 1.0, "min_magnitude": 2.0},
        {"min_gap": -0.1},
        {"max_value": np.inf},
    ],
)
def test_float_arrays_reject_impossible_bounds(bounds):
    with pytest.raises(ValueError, match="float_arrays"):
        tst.float_arrays(**bounds)


@given(st.integers(2, 3).flatmap(tst.broadcastable_shapes))
def test_broadcastable_shapes_broadcast_to_their_result(shapes):
    assert np.broadcast_shapes(*shapes.input_shapes) == shapes.result_shape


@given(tst.matmul_arrays())
def test_matmul_arrays_can_be_multiplied(operands):
    a, b = operands
    assert np.matmul(a, b).shape is not None


@given(tst.shapes().flatmap(lambda s: st.tuples(st.just(s), tst.axis_and_keepdims(s))))
def test_axis_and_keepdims_are_valid_for_the_shape(shape_and_reduction):
    shape, (axis, keepdims) = shape_and_reduction
    np.sum(np.zeros(shape), axis=axis, keepdims=keepdims)


@given(tst.shapes().flatmap(lambda s: st.tuples(st.just(s), tst.reshape_targets(s))))
def test_reshape_targets_have_the_same_size(shape_and_target):
    shape, target = shape_and_target
    assert np.zeros(shape).reshape(target).size == np.zeros(shape).size


@given(tst.mlp_params())
def test_mlp_params_chain_their_layer_sizes(params):
    layers = len(params) // 2
    assert list(params) == [f"{kind}{i}" for i in range(1, layers + 1) for kind in ("W", "b")]
    for i in range(1, layers + 1):
        fan_in, fan_out = params[f"W{i}"].shape
        assert params[f"b{i}"].shape == (fan_out,)
        assert np.all(np.abs(params[f"W{i}"]) <= 1 / np.sqrt(fan_in))
        if i > 1:
            assert params[f"W{i - 1}"].shape[1] == fan_in
