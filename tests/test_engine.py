"""Specification of the core engine: transforms, Tensor, dtype rules, errors.

Gradients of individual ops against finite differences live in the property
suites; here each behaviour is pinned with a closed form or an exact value.
"""

import gc
import re
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_np as tg

rng = np.random.default_rng(1234)


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


# --- the tutorial's MLP --------------------------------------------------------------


def mlp_loss(params, X, y):
    hidden = tg.relu(X @ params["W1"] + params["b1"])
    return tg.nn.cross_entropy(hidden @ params["W2"] + params["b2"], y)


def hand_derived_gradients(params, X, y):
    """The tutorial's backprop, written out by hand."""
    m = X.shape[0]
    Z1 = X @ params["W1"] + params["b1"]
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ params["W2"] + params["b2"]
    A2 = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    A2 /= A2.sum(axis=1, keepdims=True)
    Y = np.eye(Z2.shape[1])[y]
    dZ2 = A2 - Y
    dA1 = dZ2 @ params["W2"].T
    dZ1 = dA1 * (Z1 > 0)
    return {
        "W1": X.T @ dZ1 / m,
        "b1": dZ1.sum(axis=0) / m,
        "W2": A1.T @ dZ2 / m,
        "b2": dZ2.sum(axis=0) / m,
    }


def make_mlp(n=32, d=784, h=128, c=10, dtype=np.float64):
    params = {
        "W1": 0.1 * rng.standard_normal((d, h)),
        "b1": 0.1 * rng.standard_normal(h),
        "W2": 0.1 * rng.standard_normal((h, c)),
        "b2": 0.1 * rng.standard_normal(c),
    }
    params = {k: v.astype(dtype) for k, v in params.items()}
    return params, rng.random((n, d)).astype(dtype), rng.integers(0, c, n)


def test_mlp_gradient_equals_the_hand_derived_backprop():
    params, X, y = make_mlp()
    grads = tg.grad(mlp_loss)(params, X, y)
    expected = hand_derived_gradients(params, X, y)
    assert list(grads) == ["W1", "b1", "W2", "b2"]
    for name in params:
        # Same arithmetic in a different order: float64 rounding, far below 1e-10.
        assert relative_error(grads[name], expected[name]) < 1e-10, name


def test_trace_lists_the_mlp_as_a_wengert_list():
    params, X, y = make_mlp(n=64)
    tape = tg.trace(mlp_loss, params, X, y)
    assert [op.name for op in tape.ops] == [
        "matmul",
        "add",
        "relu",
        "matmul",
        "add",
        "cross_entropy",
    ]
    text = str(tape)
    assert "%0 = input arg0['W1'] (784, 128) float64" in text
    assert "%4 = matmul(const (64, 784), %0 (784, 128)) -> (64, 128) float64" in text
    assert "%9 = cross_entropy(%8 (64, 10), const (64,)) -> () float64" in text


# --- transforms ----------------------------------------------------------------------


def test_value_and_grad_returns_value_then_gradient():
    value, g = tg.value_and_grad(lambda x: tg.sum(x**2))(np.array([1.0, 2.0]))
    assert value == 5.0
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_argnums_tuple_gives_a_tuple_of_gradients():
    f = lambda a, b, c: tg.sum(a * b) + c
    ga, gc_ = tg.grad(f, argnums=(0, 2))(np.array([1.0, 2.0]), np.array([3.0, 4.0]), 5.0)
    np.testing.assert_array_equal(ga, [3.0, 4.0])
    assert gc_ == 1.0 and isinstance(gc_, np.float64)


def test_has_aux_follows_jax_conventions():
    def f(x):
        return tg.sum(x**2), {"doubled": x * 2, "label": "aux"}

    (value, aux), g = tg.value_and_grad(f, has_aux=True)(np.array([3.0]))
    assert value == 9.0
    assert isinstance(aux["doubled"], np.ndarray) and aux["label"] == "aux"
    np.testing.assert_array_equal(aux["doubled"], [6.0])
    g2, aux2 = tg.grad(f, has_aux=True)(np.array([3.0]))
    np.testing.assert_array_equal(g2, g)
    assert aux2["label"] == "aux"


def test_gradient_has_the_structure_shape_and_dtype_of_the_argument():
    params = {"layers": [{"W": np.ones((2, 3), np.float32)}, (np.ones(3, np.float64),)]}
    grads = tg.grad(lambda p: tg.sum(p["layers"][0]["W"]) * 2.0)(params)
    assert isinstance(grads["layers"], list) and isinstance(grads["layers"][1], tuple)
    assert grads["layers"][0]["W"].dtype == np.float32
    np.testing.assert_array_equal(grads["layers"][0]["W"], np.full((2, 3), 2.0))
    # An argument the output does not depend on gets zeros, not an error.
    np.testing.assert_array_equal(grads["layers"][1][0], np.zeros(3))
    assert grads["layers"][1][0].dtype == np.float64


def test_function_independent_of_its_argument_has_zero_gradient():
    g = tg.grad(lambda x: 3.0)(np.ones((2, 2), np.float32))
    assert g.shape == (2, 2) and g.dtype == np.float32 and not g.any()


def test_float32_in_float32_out_with_python_scalars():
    x = rng.standard_normal((4, 3)).astype(np.float32)
    f = lambda x: tg.mean(tg.exp(x * 0.5) / 3 + 1.0) ** 2
    value, g = tg.value_and_grad(f)(x)
    assert value.dtype == np.float32 and g.dtype == np.float32


def test_float64_stays_float64():
    value, g = tg.value_and_grad(lambda x: tg.sum(tg.tanh(x)))(np.ones(3))
    assert value.dtype == np.float64 and g.dtype == np.float64


def test_gradient_is_a_fresh_writable_array():
    x = np.ones((3, 4))
    g = tg.grad(lambda x: tg.sum(x))(x)  # sum's VJP broadcasts: a read-only view inside
    assert g.flags.writeable and g.flags.owndata
    g += 1  # the caller may update it in place


def test_vjp_of_a_non_scalar_output_and_reuse_of_vjp_fn():
    A = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    out, vjp_fn = tg.vjp(lambda x: A @ x, x)
    np.testing.assert_allclose(out, A @ x)
    for row in np.eye(3):  # rows of the Jacobian, one call each
        (g,) = vjp_fn(row)
        np.testing.assert_allclose(g, row @ A)


def test_vjp_with_pytree_output_and_several_primals():
    out, vjp_fn = tg.vjp(lambda a, b: {"s": a * b, "t": a + b}, np.array(2.0), np.array(5.0))
    assert out["s"] == 10.0 and out["t"] == 7.0
    ga, gb = vjp_fn({"s": np.array(1.0), "t": np.array(10.0)})
    assert ga == 5.0 + 10.0 and gb == 2.0 + 10.0


@pytest.mark.parametrize(
    "f",
    [lambda x: x, lambda x: x + 0.0, lambda x: tg.reshape(x, shape=(3, 1)), lambda x: x.T],
    ids=["identity", "plus a constant", "reshape", "transpose"],
)
def test_vjp_never_hands_back_the_callers_cotangent(f):
    # Ops whose VJP passes the cotangent through (or a view of it) must not let the caller's
    # array come back as a gradient: updating the gradient in place would change it.
    _, vjp_fn = tg.vjp(f, np.ones(3))
    cotangent = np.arange(3.0).reshape(np.shape(f(np.ones(3))))
    (g,) = vjp_fn(cotangent)
    assert not np.shares_memory(g, cotangent)
    g *= 2
    np.testing.assert_array_equal(cotangent.ravel(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 2.0, 4.0])


def test_vjp_rejects_a_cotangent_of_the_wrong_shape():
    _, vjp_fn = tg.vjp(lambda x: x * 2, np.ones(3))
    with pytest.raises(
        ValueError, match=r"cotangent has shape \(2,\) but the output has shape \(3,\)"
    ):
        vjp_fn(np.ones(2))


# --- higher order --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "second_derivative"),
    [
        (lambda x: x**3, lambda x: 6 * x),
        (tg.exp, np.exp),
        (tg.log, lambda x: -1 / x**2),
        (tg.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
        (tg.sigmoid, lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
        (lambda x: 1 / x, lambda x: 2 / x**3),
        (
            lambda x: tg.sum(tg.reshape(x, shape=(1, 1)) @ tg.reshape(x, shape=(1, 1))),
            lambda x: 2.0,
        ),
    ],
)
def test_grad_of_grad_matches_closed_form(f, second_derivative):
    for x in [0.3, 1.7]:
        assert tg.grad(tg.grad(f))(x) == pytest.approx(second_derivative(x), rel=1e-12)


def test_third_derivative():
    assert tg.grad(tg.grad(tg.grad(lambda x: x**4)))(2.0) == pytest.approx(48.0)


def test_hessian_of_softmax_cross_entropy_is_diag_p_minus_ppT_over_n():
    n, c = 5, 4
    logits = rng.standard_normal((n, c))
    labels = rng.integers(0, c, n)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = lambda z: tg.nn.cross_entropy(z, labels)
    for _ in range(3):
        v = rng.standard_normal((n, c))
        expected = np.stack([(np.diag(p[i]) - np.outer(p[i], p[i])) @ v[i] for i in range(n)]) / n
        np.testing.assert_allclose(tg.hvp(loss, logits, v), expected, rtol=1e-12, atol=1e-15)


def test_hvp_on_a_pytree_matches_the_analytic_hessian():
    # f(W, b) = sum((W @ x + b) ** 2) / 2 has H = [[x x^T (per row), x], [x^T, 1]].
    x = rng.standard_normal(3)
    f = lambda p: tg.sum((p["W"] @ x + p["b"]) ** 2) / 2
    params = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}
    v = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}
    hv = tg.hvp(f, params, v)
    r = v["W"] @ x + v["b"]  # the directional change of the residual
    np.testing.assert_allclose(hv["W"], np.outer(r, x), rtol=1e-12)
    np.testing.assert_allclose(hv["b"], r, rtol=1e-12)


def test_inner_gradients_are_traced_tensors_outer_ones_are_arrays():
    seen = []

    def f(x):
        g = tg.grad(lambda y: tg.sum(y**3))(x)
        seen.append(g)
        return tg.sum(g)

    g = tg.grad(f)(np.array([1.0, 2.0]))
    assert isinstance(seen[0], tg.Tensor) and seen[0].traced
    assert type(g) is np.ndarray
    np.testing.assert_allclose(g, [6.0, 12.0])


def test_grad_of_a_linear_function_has_zero_second_derivative():
    assert tg.grad(tg.grad(lambda x: 3 * x))(2.0) == 0.0


# --- op semantics pinned by exact values --------------------------------------------


def test_repeated_indices_accumulate_their_gradient():
    g = tg.grad(lambda x: tg.sum(x[np.array([0, 0, 2, 0])]))(np.zeros(3))
    np.testing.assert_array_equal(g, [3.0, 0.0, 1.0])


def test_basic_slicing_gradient():
    g = tg.grad(lambda x: tg.sum(x[1:, ::2] * 2))(np.zeros((3, 4)))
    expected = np.zeros((3, 4))
    expected[1:, ::2] = 2
    np.testing.assert_array_equal(g, expected)


def test_relu_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(
        tg.grad(lambda x: tg.sum(tg.relu(x)))(np.array([-1.0, 0.0, 2.0])), [0, 0, 1]
    )


def test_tied_maxima_share_the_gradient_equally():
    g = tg.grad(lambda x: tg.max(x))(np.array([1.0, 3.0, 3.0, 0.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5, 0.0])


def test_stop_gradient_blocks_every_level():
    x = np.array(2.0)
    assert tg.grad(lambda x: x * tg.stop_gradient(x))(x) == 2.0
    assert tg.grad(tg.grad(lambda x: x * tg.stop_gradient(x) ** 2))(x) == 0.0


def test_cross_entropy_with_huge_logits_is_finite():
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, -1e4]])
    value, g = tg.value_and_grad(tg.nn.cross_entropy)(logits, np.array([1, 0]))
    assert value == pytest.approx(15000.0)
    assert np.isfinite(g).all()
    # softmax is one-hot at the max, so the gradient is (onehot(max) - onehot(label)) / N
    np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]])


def test_cross_entropy_accepts_probability_rows():
    logits = rng.standard_normal((4, 3))
    labels = rng.integers(0, 3, 4)
    onehot = np.eye(3)[labels]
    v1, g1 = tg.value_and_grad(tg.nn.cross_entropy)(logits, labels)
    v2, (g2, g_labels) = tg.value_and_grad(tg.nn.cross_entropy, argnums=(0, 1))(logits, onehot)
    assert v1 == pytest.approx(v2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-14)
    np.testing.assert_allclose(g_labels, -tg.log_softmax(logits) / 4, rtol=1e-14)


def test_logsumexp_handles_rows_of_minus_infinity():
    x = np.array([[-np.inf, -np.inf], [0.0, np.log(3.0)]])
    np.testing.assert_allclose(tg.logsumexp(x, axis=1), [-np.inf, np.log(4.0)])


# --- Tensor ---------------------------------------------------------------------------


def test_tensor_properties_and_operators():
    t = tg.Tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.dtype == np.float64
    assert not t.traced
    np.testing.assert_array_equal((1 + t * 2 - 1).data, np.arange(6.0).reshape(2, 3) * 2)
    np.testing.assert_array_equal((np.ones((2, 3)) + t).data, t.data + 1)  # ndarray on the left
    np.testing.assert_array_equal((t @ t.T).data, t.data @ t.data.T)
    np.testing.assert_array_equal((2.0**t).data, 2.0**t.data)
    np.testing.assert_array_equal((-t / 2).data, -t.data / 2)
    np.testing.assert_array_equal(t.reshape(3, 2).data, t.data.reshape(3, 2))
    np.testing.assert_array_equal(t.transpose(1, 0).data, t.data.T)
    np.testing.assert_array_equal(t.sum(axis=1).data, [3.0, 12.0])
    assert (t > 2).dtype == np.bool_ and not isinstance(t > 2, tg.Tensor)
    np.testing.assert_array_equal(t.argmax(axis=1), [2, 2])


def test_tensor_methods_record_inside_a_transform():
    def f(x):
        return (x.exp().log().tanh().sigmoid().relu().softmax() * 3).log_softmax().logsumexp()

    x = rng.standard_normal((2, 3))
    g = tg.grad(f)(x)
    assert g.shape == (2, 3)


def test_inference_path_returns_plain_arrays_and_records_nothing():
    params, X, y = make_mlp(n=8)
    logits = tg.relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    assert type(logits) is np.ndarray
    assert type(tg.nn.cross_entropy(logits, y)) is np.float64


def test_saved_arrays_are_released_after_grad():
    refs = []

    def f(x):
        h = tg.exp(x)  # exp's VJP saves its output
        refs.append(weakref.ref(h.data))
        return tg.sum(h * h)

    tg.grad(f)(np.ones(1000))
    gc.collect()
    assert refs[0]() is None


# --- errors ---------------------------------------------------------------------------


def test_grad_of_a_non_scalar_output_is_a_value_error_pointing_to_vjp():
    with pytest.raises(ValueError, match=r"returned shape \(3,\).*tg\.vjp"):
        tg.grad(lambda x: x * 2)(np.ones(3))


@pytest.mark.parametrize("x", [np.arange(3), np.array([True, False]), 3])
def test_differentiating_an_integer_or_boolean_argument_is_a_type_error(x):
    with pytest.raises(TypeError, match=r"argument 0 of dtype (int64|bool)"):
        tg.grad(lambda x: tg.sum(x * 1.0))(x)


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"W": np.ones(2), "b": "zeros"}, "argument 0['b'] is a str"),
        ({"W": np.ones(2), "b": None}, "argument 0['b'] is a NoneType"),
        ([np.ones(2), [np.ones(1), object()]], "argument 0[1][1] is a object"),
    ],
)
def test_non_array_pytree_leaf_is_a_type_error_naming_its_path(params, path):
    with pytest.raises(TypeError, match=re.escape(path)):
        tg.grad(lambda p: tg.sum(p["W"] if isinstance(p, dict) else p[0]))(params)


@pytest.mark.parametrize(
    ("a", "b"), [((3, 4), (5, 2)), ((4,), (3,)), ((2, 3, 4), (5, 4, 2)), ((), (3,))]
)
def test_matmul_with_incompatible_shapes_names_both(a, b):
    with pytest.raises(ValueError, match=re.escape(f"shapes {a} and {b} are incompatible")):
        tg.grad(lambda x: tg.sum(x @ np.ones(b)))(np.ones(a))


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="argnums 2 is out of range"):
        tg.grad(lambda a, b: a * b, argnums=2)(1.0, 2.0)


def test_has_aux_requires_a_pair():
    with pytest.raises(TypeError, match=r"has_aux=True: f must return a pair"):
        tg.grad(lambda x: x * 2, has_aux=True)(1.0)


def test_a_tensor_leaking_out_of_a_transform_is_reported():
    leaked = []
    tg.grad(lambda x: leaked.append(x) or tg.sum(x))(np.ones(2))
    with pytest.raises(ValueError, match="already returned"):
        tg.exp(leaked[0])


def test_traced_tensor_refuses_silent_conversion_to_ndarray():
    def f(x):
        np.asarray(x)
        return tg.sum(x)

    with pytest.raises(TypeError, match="ndarray of a traced Tensor would drop its gradient"):
        tg.grad(f)(np.ones(2))


@pytest.mark.parametrize(
    ("logits", "labels", "error", "message"),
    [
        (np.ones(3), np.array([0]), ValueError, r"logits must have shape \(N, C\)"),
        (np.ones((2, 3)), np.array([0, 3]), ValueError, r"\[0, 3\), got values from 0 to 3"),
        (np.ones((2, 3)), np.array([-1, 2]), ValueError, r"\[0, 3\), got values from -1 to 2"),
        (np.ones((2, 3)), np.array([-4, 0]), ValueError, r"\[0, 3\), got values from -4 to 0"),
        (np.ones((2, 3)), np.array([7, 1], np.uint8), ValueError, r"from 1 to 7"),
        # read as unsigned, -100 in int8 is 156: below 200 classes, yet still out of range
        (np.ones((1, 200)), np.array([-100], np.int8), ValueError, r"from -100 to -100"),
        (np.ones((2, 3)), np.array([0, 1, 2]), ValueError, r"must have shape \(2,\)"),
        (np.ones((2, 3)), np.ones((2, 2)), ValueError, r"the logits' shape \(2, 3\)"),
        (np.ones((2, 3)), np.array([True, False]), TypeError, "integers or floats"),
    ],
)
def test_cross_entropy_rejects_bad_labels(logits, labels, error, message):
    with pytest.raises(error, match=message):
        tg.nn.cross_entropy(logits, labels)
    with pytest.raises(error, match=message):  # the same while traced
        tg.grad(lambda z: tg.nn.cross_entropy(z, labels))(logits)
    if logits.ndim == 2:  # and under a second-order transform
        with pytest.raises(error, match=message):
            tg.hvp(lambda z: tg.nn.cross_entropy(z, labels), logits, np.ones_like(logits))


INTEGER_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@given(
    dtype=st.sampled_from(INTEGER_DTYPES),
    classes=st.integers(1, 300),  # beyond int8's largest label too
    data=st.data(),
)
def test_cross_entropy_accepts_exactly_the_labels_in_range_for_every_integer_dtype(
    dtype, classes, data
):
    labels = data.draw(hnp.arrays(dtype, st.integers(1, 6)))
    logits = np.zeros((len(labels), classes))
    outside = bool(np.any((labels < 0) | (labels >= classes)))
    jitted = tg.jit(tg.nn.cross_entropy)
    for f in (tg.nn.cross_entropy, jitted, jitted):  # eager, the trace, a replay
        if outside:
            with pytest.raises(ValueError, match=rf"labels must lie in \[0, {classes}\)"):
                f(logits, labels)
        else:
            assert f(logits, labels) == pytest.approx(np.log(classes), rel=1e-15)


def test_a_wrong_shaped_vjp_is_reported_with_the_leaf_it_reached():
    from tinygrad_np.extend import Primitive

    broken_sum = Primitive("broken_sum", np.sum, lambda ans, x: (lambda g: np.ones(5),))
    with pytest.raises(RuntimeError, match=r"shape \(5,\).*shape \(2, 3\).*argument 0\['W'\]"):
        tg.grad(lambda p: broken_sum(p["W"]))({"W": np.ones((2, 3))})


def test_inputs_that_share_a_cotangent_get_separate_gradient_arrays():
    c = np.arange(3.0)
    f = lambda p: tg.sum((p["a"] + p["b"]) * c)  # add's VJP hands one array to both
    grads = tg.grad(f)({"a": np.ones(3), "b": np.ones(3)})
    grads["a"] *= 10  # an optimizer scaling its gradient in place
    np.testing.assert_array_equal(grads["b"], c)


def test_a_primitive_that_saves_hands_its_vjp_the_forward_intermediates():
    from tinygrad_np.extend import Primitive

    seen = []

    def cube_forward(x):
        square = x * x
        return square * x, square

    def cube_vjps(ans, x, saved):
        seen.append(saved is not None)
        if saved is None:  # x is traced by an outer transform: stay differentiable
            return (lambda g: g * 3 * x * x,)
        return (lambda g: g * 3 * saved,)

    cube = Primitive("cube", cube_forward, cube_vjps, saves=True)
    assert cube(2.0) == 8.0  # no transform: the value alone
    assert tg.grad(cube)(2.0) == 12.0
    assert seen == [True]
    assert tg.grad(tg.grad(cube))(2.0) == 12.0  # 6x
    # recorded on the outer tape with plain values first, then on the inner one, whose
    # argument is an outer Tensor
    assert seen[1:] == [True, False]
    np.testing.assert_allclose(
        tg.vjp(cube, np.array([1.0, -2.0]))[1](np.ones(2))[0], [3.0, 12.0], rtol=0
    )


@pytest.mark.parametrize(
    ("shape", "g_shape"),
    [
        ((), (2, 3)),
        ((3,), (2, 3)),
        ((1, 3), (2, 3)),
        ((2, 1), (2, 3)),
        ((3, 1), (5, 3, 4)),
        ((1, 1, 4), (2, 3, 4)),
        ((2, 3), (2, 3)),
    ],
)
def test_unbroadcast_sums_exactly_the_broadcast_axes(shape, g_shape):
    from tinygrad_np.extend import unbroadcast

    g = rng.standard_normal(g_shape)
    # the reference: the adjoint of broadcasting, <g, broadcast(v)> = <unbroadcast(g), v>
    v = rng.standard_normal(shape)
    out = unbroadcast(g, shape)
    assert out.shape == shape
    np.testing.assert_allclose(np.sum(out * v), np.sum(g * np.broadcast_to(v, g_shape)), rtol=1e-12)
    np.testing.assert_array_equal(unbroadcast(g, list(shape)), out)  # any sequence of ints
