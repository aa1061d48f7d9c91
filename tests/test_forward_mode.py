"""Specification of forward mode and whole Jacobians: jvp, linearize, jacfwd, jacrev, hessian.

The conventions are JAX's. The properties run on the random straight-line programs of
tests/test_properties_compositions.py (every op family, conditioned for finite
differences): forward mode agrees with float64 finite differences to second order,
``jacfwd`` with ``jacrev``, the Hessian is symmetric and ``hessian @ v`` is ``hvp``.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_properties_compositions import programs_and_inputs

import tinygrad_np as tg
from tinygrad_np.testing import check_grads
from tinygrad_np.testing import strategies as tst

dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])

# jacfwd and jacrev evaluate the same derivatives as sums in different orders: in float64
# they differ by rounding, a few hundred ulps of the entries at the programs' sizes
# (|entries| <= ~1e3, depth <= 6 ops). 1e-9 relative to the largest entry leaves a
# margin of ~1e4 over that and still catches any wrong rule (off by O(1) or 0.1%).
CONSISTENCY = 1e-9


def assert_close(a, b, scale=None):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    bound = CONSISTENCY * max(
        1.0, float(np.max(np.abs(b), initial=0.0)) if scale is None else scale
    )
    np.testing.assert_allclose(a, b, rtol=0, atol=bound)


def weighted_sum(program, weights):
    """A scalar function of the program's inputs: sum(weights * program(*inputs))."""
    return lambda *inputs: tg.sum(program(*inputs) * weights)


def numerical_jacobian(f, x, eps=1e-6):
    """Central differences, column by column, in float64."""
    x = np.asarray(x, np.float64)
    columns = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        columns.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    out_shape = np.shape(f(x))
    return np.stack(columns, axis=-1).reshape(out_shape + x.shape)


# --- properties over random programs ------------------------------------------------------


@dtypes
@given(data=st.data())
def test_forward_mode_matches_finite_differences_to_second_order(dtype, data):
    program, inputs = data.draw(programs_and_inputs(dtype), label="program, inputs")
    check_grads(program, inputs, order=2, modes=("fwd",))


@given(data=st.data())
def test_jacfwd_equals_jacrev_and_finite_differences(data):
    program, inputs = data.draw(programs_and_inputs(np.float64), label="program, inputs")
    argnums = tuple(range(len(inputs)))
    forward = tg.jacfwd(program, argnums=argnums)(*inputs)
    reverse = tg.jacrev(program, argnums=argnums)(*inputs)
    assert isinstance(forward, tuple) and len(forward) == len(inputs)
    for n, (jf, jr) in enumerate(zip(forward, reverse, strict=True)):
        assert jf.shape == np.shape(program(*inputs)) + inputs[n].shape
        assert_close(jf, jr)

        def of_one(x, n=n):
            return program(*inputs[:n], x, *inputs[n + 1 :])

        # Central differences with eps 1e-6 in float64: error ~1e-10 * (|f| + |f'''|) ~ 1e-7
        # at the programs' bounded values; 1e-5 is the check_grads float64 tolerance scale.
        np.testing.assert_allclose(jr, numerical_jacobian(of_one, inputs[n]), rtol=1e-5, atol=1e-5)


@given(data=st.data())
def test_hessian_is_symmetric_and_times_v_is_hvp(data):
    program, inputs = data.draw(programs_and_inputs(np.float64), label="program, inputs")
    x = inputs[0]
    out_shape = np.shape(program(*inputs))
    weights = data.draw(tst.float_arrays(out_shape), label="weights")
    v = data.draw(tst.float_arrays(x.shape), label="v")

    def f(x):
        return weighted_sum(program, weights)(x, *inputs[1:])

    h = tg.hessian(f)(x)
    assert h.shape == x.shape + x.shape
    matrix = h.reshape(x.size, x.size)
    scale = float(np.max(np.abs(matrix), initial=1.0))
    assert_close(matrix, matrix.T, scale)
    assert_close(np.tensordot(h, v, axes=v.ndim), tg.hvp(f, x, v), scale * x.size)
    # ... and agrees with finite differences of the engine's gradient (float64, eps 1e-6).
    np.testing.assert_allclose(h, numerical_jacobian(tg.grad(f), x), rtol=1e-5, atol=1e-5)


# --- jvp and linearize ----------------------------------------------------------------------


def test_jvp_returns_the_value_and_the_directional_derivative():
    x, u = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])
    value, tangent = tg.jvp(lambda x: np.sin(x) * x, (x,), (u,))
    np.testing.assert_array_equal(value, np.sin(x) * x)
    np.testing.assert_allclose(tangent, (np.cos(x) * x + np.sin(x)) * u, rtol=1e-14)


def test_jvp_takes_several_pytree_primals_and_returns_pytree_outputs():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5])}
    x = np.array([0.2, -0.7])
    dparams = {"w": np.array([[0.1, 0.0], [0.0, 0.2]]), "b": np.array([1.0, 0.0])}
    dx = np.array([0.0, 1.0])

    def f(params, x):
        z = params["w"] @ x + params["b"]
        return {"z": z, "sum": [np.sum(z**2)]}

    value, tangent = tg.jvp(f, (params, x), (dparams, dx))
    dz = dparams["w"] @ x + dparams["b"] + params["w"] @ dx
    z = params["w"] @ x + params["b"]
    np.testing.assert_allclose(value["z"], z)
    np.testing.assert_allclose(tangent["z"], dz, rtol=1e-14)
    np.testing.assert_allclose(tangent["sum"][0], np.sum(2 * z * dz), rtol=1e-14)


def test_outputs_that_do_not_depend_on_the_primals_have_zero_tangents():
    x = np.ones(3, np.float32)
    _, tangent = tg.jvp(lambda x: (x * 2, np.arange(3.0)), (x,), (x,))
    np.testing.assert_array_equal(tangent[1], np.zeros(3))
    assert tangent[0].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tangents_have_the_dtypes_of_the_outputs(dtype):
    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(dtype)
    _, tangent = tg.jvp(lambda x: np.tanh(x @ x.T), (x,), (np.ones_like(x),))
    assert tangent.dtype == dtype
    # A float64 tangent for a float32 primal is taken in the primal's dtype.
    _, tangent = tg.jvp(lambda x: x * 3, (x,), (np.ones(x.shape),))
    assert tangent.dtype == dtype


def test_linearize_evaluates_the_jacobian_product_any_number_of_times():
    x = np.array([0.5, 1.5])
    x_before = x.copy()
    value, f_jvp = tg.linearize(lambda x: np.exp(x) * x[::-1], x)
    x[:] = 100.0  # the linearization is at the values passed, not at later ones
    jacobian = np.array([[np.exp(0.5) * 1.5, np.exp(0.5)], [np.exp(1.5), np.exp(1.5) * 0.5]])
    np.testing.assert_allclose(value, np.exp(x_before) * x_before[::-1])
    for u in (np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([2.0, -3.0])):
        np.testing.assert_allclose(f_jvp(u), jacobian @ u, rtol=1e-14)


def test_has_aux_returns_the_auxiliary_data_untraced():
    x = np.array([1.0, 2.0])
    _, tangent, aux = tg.jvp(lambda x: (x**2, {"mean": np.mean(x)}), (x,), (x,), has_aux=True)
    np.testing.assert_allclose(tangent, 2 * x * x)
    assert isinstance(aux["mean"], np.ndarray | np.generic) and aux["mean"] == 1.5


@pytest.mark.parametrize(
    ("primals", "tangents", "error", "pattern"),
    [
        (np.ones(2), np.ones(2), TypeError, "primals must be a tuple or list"),
        ((np.ones(2),), np.ones(2), TypeError, "tangents must be a tuple or list"),
        ((np.ones(2),), (np.ones(2), np.ones(2)), TypeError, "tree structure"),
        (({"a": np.ones(2)},), ({"b": np.ones(2)},), TypeError, "tree structure"),
        ((np.ones(2),), (np.ones(3),), ValueError, r"shape \(3,\).*no broadcasting"),
        ((np.ones((2, 2)),), (np.ones(2),), ValueError, "no broadcasting"),
        ((np.ones(2),), (np.ones(2, int),), TypeError, "kinds must match"),
        ((np.ones(2),), (np.ones(2) * 1j,), TypeError, "complex"),
        ((np.arange(2),), (np.arange(2),), TypeError, "only floating-point"),
    ],
)
def test_mismatched_primals_and_tangents_are_clear_errors(primals, tangents, error, pattern):
    with pytest.raises(error, match=pattern):
        tg.jvp(lambda x: x * 2, primals, tangents)


# --- composition with the other transforms ----------------------------------------------------


def loss(x):
    return np.sum(np.tanh(x) * x**2) + x[0] * x[1]


X = np.array([0.3, -1.2, 2.0])
V = np.array([1.0, 0.5, -2.0])


def test_jvp_of_grad_is_the_hessian_vector_product():
    _, forward_over_reverse = tg.jvp(tg.grad(loss), (X,), (V,))
    np.testing.assert_allclose(forward_over_reverse, tg.hvp(loss, X, V), rtol=1e-12)


def test_grad_of_jvp_is_the_hessian_vector_product():
    def directional(x):
        return tg.jvp(loss, (x,), (V,))[1]

    np.testing.assert_allclose(tg.grad(directional)(X), tg.hvp(loss, X, V), rtol=1e-12)


def test_jvp_of_jvp_is_the_second_directional_derivative():
    def directional(x):
        return tg.jvp(loss, (x,), (V,))[1]

    _, second = tg.jvp(directional, (X,), (V,))
    np.testing.assert_allclose(second, V @ tg.hessian(loss)(X) @ V, rtol=1e-12)


def test_jvp_refuses_to_transpose_a_custom_vjp_function():
    @tg.custom_vjp
    def clipped_identity(x):
        return x

    clipped_identity.defvjp(lambda x: (x, None), lambda _, g: (np.clip(g, -1, 1),))
    x = np.ones(3)
    tg.grad(lambda x: np.sum(clipped_identity(x)))(x)  # reverse mode is fine
    with pytest.raises(TypeError, match=r"clipped_identity: forward mode.*custom_vjp"):
        tg.jvp(clipped_identity, (x,), (x,))


# --- jacfwd, jacrev, jacobian, hessian: JAX's shapes and nesting --------------------------------


@pytest.mark.parametrize("jac", [tg.jacfwd, tg.jacrev, tg.jacobian], ids=lambda j: j.__name__)
def test_an_array_to_array_jacobian_has_shape_output_plus_input(jac):
    x = np.arange(6.0).reshape(2, 3) / 10
    j = jac(lambda x: np.sum(np.sin(x), axis=0) * x[0, 0])(x)
    assert j.shape == (3, 2, 3)
    np.testing.assert_allclose(
        j, numerical_jacobian(lambda x: np.sum(np.sin(x), axis=0) * x[0, 0], x), atol=1e-8
    )


@pytest.mark.parametrize("jac", [tg.jacfwd, tg.jacrev], ids=lambda j: j.__name__)
def test_pytree_jacobians_nest_output_outside_and_input_inside(jac):
    params = {"a": np.array([0.1, 0.2, 0.3]), "b": np.array(2.0)}

    def f(p):
        return {"u": p["a"] * p["b"], "v": (np.sum(p["a"]),)}

    j = jac(f)(params)
    assert set(j) == {"u", "v"}
    assert tg.tree_map(np.shape, j) == {
        "u": {"a": (3, 3), "b": (3,)},
        "v": ({"a": (3,), "b": ()},),
    }
    np.testing.assert_allclose(j["u"]["a"], 2.0 * np.eye(3))
    np.testing.assert_allclose(j["u"]["b"], params["a"])
    np.testing.assert_allclose(j["v"][0]["a"], np.ones(3))


@pytest.mark.parametrize("jac", [tg.jacfwd, tg.jacrev], ids=lambda j: j.__name__)
def test_a_tuple_of_argnums_gives_a_tuple_of_jacobians(jac):
    x, y = np.array([1.0, 2.0]), np.array([3.0])
    jx, jy = jac(lambda x, y: x * y, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(jx, 3.0 * np.eye(2))
    np.testing.assert_allclose(jy, x.reshape(2, 1))
    (only_y,) = jac(lambda x, y: x * y, argnums=(1,))(x, y)
    np.testing.assert_allclose(only_y, jy)
    np.testing.assert_allclose(jac(lambda x, y: x * y, argnums=1)(x, y), jy)


@pytest.mark.parametrize("jac", [tg.jacfwd, tg.jacrev, tg.hessian], ids=lambda j: j.__name__)
def test_jacobians_take_has_aux(jac):
    x = np.array([1.0, 2.0])
    j, aux = jac(lambda x: (np.sum(x**3), "note"), has_aux=True)(x)
    assert aux == "note"
    expected = np.diag(6 * x) if jac is tg.hessian else 3 * x**2
    np.testing.assert_allclose(j, expected)


@pytest.mark.parametrize("jac", [tg.jacfwd, tg.jacrev, tg.hessian], ids=lambda j: j.__name__)
def test_float32_stays_float32(jac):
    x = np.array([0.5, -0.25], np.float32)
    assert jac(lambda x: np.sum(np.exp(x) * x))(x).dtype == np.float32


def test_the_hessian_of_a_pytree_function_nests_like_jax():
    params = {"w": np.array([0.5, -1.0]), "c": np.array(0.3)}

    def f(p):
        return np.sum(np.tanh(p["w"] * p["c"]))

    h = tg.hessian(f)(params)
    assert tg.tree_map(np.shape, h) == {
        "w": {"w": (2, 2), "c": (2,)},
        "c": {"w": (2,), "c": ()},
    }
    np.testing.assert_allclose(h["w"]["c"], h["c"]["w"], rtol=1e-12)


def test_hessian_gives_a_newton_step_that_solves_a_quadratic():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])

    def f(x):
        return 0.5 * x @ (a @ x) - b @ x

    x = np.zeros(2)
    x = x - np.linalg.solve(tg.hessian(f)(x), tg.grad(f)(x))
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-12)


# --- optional: the same programs under JAX ------------------------------------------------------

# Each program is written once against an array namespace: NumPy (run on Tensors by dispatch)
# or jax.numpy. Inputs stay away from the kink of maximum (|x| >= 0.1).
JAX_PROGRAMS = {
    "layer": (lambda xp, x, w: xp.tanh(x @ w) * xp.sum(xp.sin(x), axis=1, keepdims=True), 2),
    "elementwise": (lambda xp, x, w: xp.log(1 + x**2) / (2 + xp.cos(w)), 2),
    "kinked": (lambda xp, x, w: xp.maximum(x, 0.0) * xp.exp(-(w**2)) + xp.sqrt(x**2 + 1), 2),
    "scalar": (lambda xp, x, w: xp.log(xp.sum(xp.exp(x @ w.T))) + xp.mean(x * w), 2),
}
SHAPES = {"layer": ((3, 2), (2, 3)), "elementwise": ((4,), (4,)), "kinked": ((2, 3), (2, 3)),
          "scalar": ((2, 3), (2, 3))}  # fmt: skip


@pytest.mark.parametrize("name", sorted(JAX_PROGRAMS))
@given(data=st.data())
def test_transforms_agree_with_jax(name, data):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    program, _ = JAX_PROGRAMS[name]
    x_shape, w_shape = SHAPES[name]
    x = data.draw(tst.float_arrays(x_shape, min_magnitude=0.1), label="x")
    w = data.draw(tst.float_arrays(w_shape), label="w")
    u, v = (data.draw(tst.float_arrays(s), label=f"tangent {s}") for s in (x_shape, w_shape))

    def ours(x, w):
        return program(np, x, w)

    def theirs(x, w):
        return program(jnp, x, w)

    def agree(a, b):
        for p, q in zip(tg.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
            q = np.asarray(q)
            assert np.shape(p) == q.shape
            assert_close(p, q)

    agree(tg.jvp(ours, (x, w), (u, v)), jax.jvp(theirs, (x, w), (u, v)))
    for transform in ("jacfwd", "jacrev"):
        agree(
            getattr(tg, transform)(ours, argnums=(0, 1))(x, w),
            getattr(jax, transform)(theirs, argnums=(0, 1))(x, w),
        )
    weights = np.linspace(-1, 1, np.size(ours(x, w))).reshape(np.shape(ours(x, w)))
    agree(
        tg.hessian(lambda x, w: np.sum(ours(x, w) * weights), argnums=(0, 1))(x, w),
        jax.hessian(lambda x, w: jnp.sum(theirs(x, w) * weights), argnums=(0, 1))(x, w),
    )


def test_the_hessian_of_a_vector_function_stacks_one_hessian_per_output():
    x = np.array([0.3, 0.5])
    h = tg.hessian(lambda x: np.stack([np.sum(np.sin(x)), np.sum(x**2)]))(x)
    assert h.shape == (2, 2, 2)
    np.testing.assert_allclose(h[0], np.diag(-np.sin(x)), rtol=1e-14)
    np.testing.assert_allclose(h[1], 2 * np.eye(2), rtol=1e-14)


def test_a_jacobian_can_be_differentiated_again():
    x = np.array([0.3, 0.5])
    # d/dx of sum(J), J = diag(x cos x + sin x): 2 cos x - x sin x
    g = tg.grad(lambda x: np.sum(tg.jacrev(lambda z: np.sin(z) * z)(x)))(x)
    np.testing.assert_allclose(g, 2 * np.cos(x) - x * np.sin(x), rtol=1e-14)
    g = tg.grad(lambda x: np.sum(tg.jacfwd(lambda z: np.sin(z) * z)(x)))(x)
    np.testing.assert_allclose(g, 2 * np.cos(x) - x * np.sin(x), rtol=1e-14)
