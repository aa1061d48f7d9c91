"""Specification of the extension API: an op of your own, written with public names only.

``tinygrad_np.extend`` is what the shipped ops are written with; an op declared with it
must work everywhere a shipped op does: every transform, second order, ``check_grads``
and NumPy dispatch. ``tg.custom_vjp`` replaces a function's derivative on purpose.
"""

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np.extend import Primitive, broadcast_vjp, custom_vjp, implements, shape_of
from tinygrad_np.tensor import NUMPY_OPS
from tinygrad_np.testing import check_grads

rng = np.random.default_rng(7)


# --- a user-defined op: hypot(x, y) = sqrt(x**2 + y**2), with broadcasting ------------------


def _hypot_vjps(ans, x, y):
    to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
    return lambda g: to_x(g * x / ans), lambda g: to_y(g * y / ans)


@pytest.fixture(autouse=True)
def registrations_are_undone():
    """Declaring an op registers it with NumPy dispatch and Tensor: undone after each test."""
    numpy_ops = dict(NUMPY_OPS)
    methods = set(vars(tg.Tensor))
    yield
    NUMPY_OPS.clear()
    NUMPY_OPS.update(numpy_ops)
    for name in set(vars(tg.Tensor)) - methods:
        delattr(tg.Tensor, name)


@pytest.fixture
def hypot():
    return Primitive(
        "hypot", np.hypot, _hypot_vjps, numpy=[np.hypot], doc="Elementwise sqrt(x**2 + y**2)."
    )


def away_from_zero(shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def test_a_user_op_has_the_right_gradients_to_second_order(hypot):
    x, y = away_from_zero((3, 4)), away_from_zero(4)
    check_grads(hypot, (x, y), order=2)


def test_a_user_op_works_under_every_transform(hypot):
    x, y = np.array([3.0, 1.0]), np.array([4.0, 1.0])
    # d/dx hypot = x / hypot
    np.testing.assert_allclose(tg.grad(lambda x: tg.sum(hypot(x, y)))(x), x / np.hypot(x, y))
    out, vjp_fn = tg.vjp(hypot, x, y)
    np.testing.assert_array_equal(out, np.hypot(x, y))
    gx, gy = vjp_fn(np.array([1.0, 2.0]))
    np.testing.assert_allclose(gx, [1.0, 2.0] * x / out)
    np.testing.assert_allclose(gy, [1.0, 2.0] * y / out)
    # Second derivative of hypot(x, c) in x: c**2 / hypot**3.
    second = tg.grad(lambda x: tg.grad(lambda x: hypot(x, 4.0))(x))(3.0)
    assert second == pytest.approx(16.0 / 125.0, rel=1e-14)
    hessian_v = tg.hvp(lambda x: tg.sum(hypot(x, y)), x, np.ones(2))
    np.testing.assert_allclose(hessian_v, y**2 / np.hypot(x, y) ** 3)


def test_a_user_op_runs_for_numpy_code_on_tensors(hypot):
    def loss(x):
        return np.sum(np.hypot(x, 4.0))  # NumPy's spelling, differentiated

    np.testing.assert_allclose(tg.grad(loss)(np.array([3.0])), [3.0 / 5.0])


def test_a_user_op_refuses_static_arguments_given_positionally():
    def _scale(x, *, factor):
        return x * factor

    scale = Primitive("scale", _scale, lambda ans, x, *, factor: (lambda g: g * factor,))
    assert tg.grad(lambda x: scale(x, factor=3.0))(2.0) == 3.0
    with pytest.raises(TypeError, match=r"at most 1 positional .* keyword-only"):
        tg.grad(lambda x: scale(x, 3.0))(2.0)


def test_a_static_the_forward_could_take_positionally_may_be_given_by_keyword():
    scale = Primitive(
        "scale", lambda x, factor: x * factor, lambda ans, x, *, factor: (lambda g: g * factor,)
    )
    assert tg.grad(lambda x: scale(x, factor=3.0))(2.0) == 3.0


def test_implements_declares_a_composite_for_numpy_and_tensor_methods():
    @implements(np.exp2, methods=["exp2"])
    def exp2(x):
        return tg.pow(2.0, x)

    x = np.array([0.5, 1.5])
    expected = np.log(2.0) * 2.0**x
    np.testing.assert_allclose(tg.grad(lambda x: tg.sum(exp2(x)))(x), expected, rtol=1e-15)
    np.testing.assert_allclose(tg.grad(lambda x: np.sum(np.exp2(x)))(x), expected, rtol=1e-15)
    np.testing.assert_allclose(tg.grad(lambda x: tg.sum(x.exp2()))(x), expected, rtol=1e-15)


# --- custom_vjp ---------------------------------------------------------------------------


@custom_vjp
def round_ste(x):
    return np.round(x)


def _round_fwd(x):
    return np.round(x), None


def _round_bwd(residuals, g):
    return (g,)  # straight through: the gradient of the identity, not of round


round_ste.defvjp(_round_fwd, _round_bwd)


@custom_vjp
def clip_gradient(x, bound):
    return x


clip_gradient.defvjp(
    lambda x, bound: (x, bound),
    lambda bound, g: (tg.clip(g, -bound, bound), None),
)


def test_a_straight_through_estimator_inside_value_and_grad_with_argnums():
    def loss(w, x, scale):
        return tg.sum(round_ste(w * x) * scale)

    w, x, scale = np.array([0.4, 1.6]), np.array([1.0, 2.0]), np.array([3.0, 5.0])
    (value, (gw, gscale)) = tg.value_and_grad(loss, argnums=(0, 2))(w, x, scale)
    assert value == np.sum(np.round(w * x) * scale)  # the forward is round's
    np.testing.assert_array_equal(gw, x * scale)  # the backward is the identity's
    np.testing.assert_array_equal(gscale, np.round(w * x))  # other arguments as usual


def test_custom_vjp_outside_a_transform_is_the_plain_function():
    np.testing.assert_array_equal(round_ste(np.array([0.4, 1.6])), [0.0, 2.0])


def test_custom_vjp_clips_the_gradient_not_the_value():
    g = tg.grad(lambda x: tg.sum(clip_gradient(x, 1.0) * np.array([0.5, 10.0])))(np.ones(2))
    np.testing.assert_array_equal(g, [0.5, 1.0])


def test_custom_vjp_under_second_order_uses_the_given_backward_with_ops():
    @custom_vjp
    def cube(x):
        return x**3

    cube.defvjp(lambda x: (x**3, x), lambda x, g: (3 * x**2 * g,))
    assert tg.grad(tg.grad(cube))(2.0) == 12.0


def test_custom_vjp_must_be_given_its_vjp_first():
    @custom_vjp
    def f(x):
        return x

    with pytest.raises(TypeError, match="defvjp"):
        tg.grad(f)(1.0)


def test_custom_vjp_backward_must_return_one_cotangent_per_argument():
    @custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, None), lambda residuals, g: (g,))
    with pytest.raises(ValueError, match="1 cotangents for 2 positional arguments"):
        tg.grad(f)(1.0, 2.0)


# --- debug checks of VJPs ---------------------------------------------------------------------


def test_debug_checks_name_a_vjp_that_returns_the_wrong_shape():
    forgot_to_unbroadcast = Primitive(
        "forgot_to_unbroadcast", np.add, lambda ans, x, y: (lambda g: g, lambda g: g)
    )
    f = lambda b: tg.sum(forgot_to_unbroadcast(np.ones((3, 2)), b))
    with (
        tg.debug_checks(),
        pytest.raises(
            RuntimeError,
            match=r"forgot_to_unbroadcast \(node %1\): its VJP returned a gradient of "
            r"shape \(3, 2\).*input %0 of shape \(2,\)",
        ),
    ):
        tg.grad(f)(np.ones(2))


def test_debug_checks_name_a_vjp_that_loses_precision():
    to_float32 = Primitive(
        "to_float32", lambda x: x * 2, lambda ans, x: (lambda g: (g * 2).astype(np.float32),)
    )
    with tg.debug_checks(), pytest.raises(RuntimeError, match=r"to_float32 .*dtype float32"):
        tg.grad(lambda x: tg.sum(to_float32(x)))(np.ones(2))


def test_every_shipped_op_passes_the_debug_checks_on_a_model():
    params = {
        "W1": rng.standard_normal((5, 4)),
        "b1": np.zeros(4),
        "W2": rng.standard_normal((4, 3)),
    }
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    X, y = rng.standard_normal((6, 5)), np.array([0, 1, 2, 0, 1, 2])

    def loss(p):
        h = tg.tanh(tg.nn.linear(X, p["W1"], p["b1"])) ** 2 + tg.relu(X @ p["W1"])
        logits = tg.log_softmax(h @ p["W2"], axis=1) + tg.max(h, axis=1, keepdims=True)
        return tg.nn.cross_entropy(logits, y) + tg.mean(tg.sigmoid(h[1:, ::2]))

    with tg.debug_checks():
        for p in (params, params32):
            plain = tg.grad(loss)(p)
            tg.hvp(loss, p, p)
    np.testing.assert_array_equal(plain["W2"], tg.grad(loss)(params32)["W2"])


def test_custom_vjp_backward_must_return_cotangents_of_the_arguments_shapes():
    @custom_vjp
    def f(x):
        return x * 2

    f.defvjp(lambda x: (x * 2, None), lambda residuals, g: (tg.sum(g),))
    with pytest.raises(ValueError, match=r"shape \(\) for argument 0 of shape \(3,\)"):
        tg.grad(lambda x: tg.sum(f(x * 3)))(np.ones(3))
