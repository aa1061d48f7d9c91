"""Specification: a clear error or the right answer, never a silently wrong gradient.

Each test pins one way the engine once returned a wrong number without complaint:
the error path with its message, or the right value against a closed form (the
random search for more such cases is tests/test_contract.py).
"""

import math
import operator

import numpy as np
import pytest

import tinygrad_np as tg

# --- conversions that would drop the gradient ------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(float, id="float"),
        pytest.param(int, id="int"),
        pytest.param(complex, id="complex"),
        pytest.param(operator.index, id="index"),
        pytest.param(lambda t: t.item(), id="item"),
        pytest.param(math.exp, id="math.exp"),
        pytest.param(np.float64, id="np.float64"),
        pytest.param(np.float32, id="np.float32"),
        pytest.param(lambda t: [1.0, 2.0, 3.0, 4.0][t], id="list-index"),
    ],
)
def test_a_traced_tensor_refuses_to_become_a_python_or_numpy_number(convert):
    with pytest.raises(TypeError, match="gradient"):
        tg.grad(lambda t: convert(t) * t)(3.0)


def test_storing_a_traced_tensor_into_an_ndarray_is_refused():
    def f(t):
        buffer = np.zeros(3)
        buffer[0] = t
        return tg.sum(t * buffer)

    # NumPy replaces the engine's TypeError by its own ValueError for element assignment,
    # keeping ours as the cause.
    with pytest.raises((TypeError, ValueError)) as caught:
        tg.grad(f)(3.0)
    error = caught.value if isinstance(caught.value, TypeError) else caught.value.__cause__
    assert isinstance(error, TypeError) and "drop its gradient" in str(error)

    def g(t):
        buffer = np.zeros(2)
        buffer[:] = t
        return tg.sum(t)

    with pytest.raises(TypeError, match="gradient"):
        tg.grad(g)(np.ones(2))


def test_bool_of_a_traced_tensor_still_drives_control_flow():
    def f(x):
        return x * x if x > 0 else -x

    assert tg.grad(f)(3.0) == 6.0
    assert tg.grad(f)(-3.0) == -1.0
    assert bool(tg.grad(lambda t: t * (1.0 if bool(t) else 2.0))(np.float64(2.0)) == 1.0)


def test_constant_tensors_convert_as_before():
    assert float(tg.Tensor(2.5)) == 2.5
    assert int(tg.Tensor(7)) == 7
    assert tg.Tensor(3.0).item() == 3.0
    assert [10, 20, 30][tg.Tensor(np.int64(1))] == 20
    assert math.exp(tg.Tensor(0.0)) == 1.0


# --- argnums -------------------------------------------------------------------------------


def test_argnums_naming_an_argument_twice_is_an_error():
    x = np.arange(3.0)
    with pytest.raises(ValueError, match="twice"):
        tg.grad(lambda a, b: tg.sum(a * b), argnums=(0, 0))(x, 2 * x)
    with pytest.raises(ValueError, match="twice"):
        tg.grad(lambda a, b: tg.sum(a * b), argnums=(1, -1))(x, 2 * x)


@pytest.mark.parametrize("argnums", [True, 1.0, "0", None, (), (0, (1,)), [0, 1.0], np.bool_(0)])
def test_argnums_must_be_ints(argnums):
    with pytest.raises(TypeError, match="argnums"):
        tg.grad(lambda a, b: tg.sum(a * b), argnums=argnums)


def test_numpy_integer_argnums_behave_like_ints():
    x, y = np.arange(3.0), np.ones(3)
    f = lambda a, b: tg.sum(a * b)
    np.testing.assert_array_equal(tg.grad(f, argnums=np.int64(1))(x, y), x)
    gx, gy = tg.grad(f, argnums=[np.int32(0), 1])(x, y)
    np.testing.assert_array_equal(gx, y)
    np.testing.assert_array_equal(gy, x)


# --- what grad may differentiate ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "message"),
    [
        (lambda t: None, "missing return"),
        (lambda t: "loss", "str"),
        (lambda t: {"loss": tg.sum(t)}, "dict"),
        (lambda t: [tg.sum(t)], "list"),
        (lambda t: (tg.sum(t), t), "has_aux=True"),
        (lambda t: tg.sum(t * 1j), "complex"),
        (lambda t: np.int64(3), "only a floating-point value"),
        (lambda t: 3, "only a floating-point value"),
        (lambda t: True, "only a floating-point value"),
    ],
)
def test_grad_needs_a_real_floating_scalar(f, message):
    with pytest.raises(TypeError, match=message):
        tg.grad(f)(np.ones(3))
    with pytest.raises(TypeError, match=message):
        tg.value_and_grad(f)(np.ones(3))


def test_a_complex_intermediate_is_refused_even_if_the_loss_is_real():
    with pytest.raises(TypeError, match="complex numbers are not supported"):
        tg.grad(lambda t: tg.sum(np.abs(t * 1j)))(np.ones(3))


def test_complex_arguments_are_refused():
    with pytest.raises(TypeError, match="complex numbers are not supported"):
        tg.grad(lambda t: tg.sum(t))(np.ones(3, complex))
    with pytest.raises(TypeError, match="complex numbers are not supported"):
        tg.grad(lambda t: t)(1j)


def test_a_constant_float_loss_has_zero_gradient():
    value, grads = tg.value_and_grad(lambda t: 2.5)(np.ones(3))
    assert value == 2.5
    np.testing.assert_array_equal(grads, np.zeros(3))


# --- tangents and cotangents match exactly --------------------------------------------------


def test_hvp_refuses_a_direction_that_would_broadcast():
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*no broadcasting"):
        tg.hvp(lambda a: tg.sum(a**3), np.array([1.0, 2.0]), np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        tg.hvp(lambda a: tg.sum(a**3), np.array([1.0, 2.0]), np.ones(()))


def test_hvp_refuses_a_direction_of_another_structure_or_kind():
    x = {"a": np.ones(2), "b": np.ones(3)}
    with pytest.raises(ValueError, match="structure"):
        tg.hvp(lambda p: tg.sum(p["a"]) + tg.sum(p["b"]), x, {"a": np.ones(2)})
    with pytest.raises(TypeError, match="dtype"):
        tg.hvp(lambda a: tg.sum(a**3), np.ones(2), np.ones(2, int))
    with pytest.raises(TypeError, match="complex"):
        tg.hvp(lambda a: tg.sum(a**3), np.ones(2), np.ones(2, complex))


def test_vjp_fn_refuses_cotangents_that_do_not_match_the_output():
    _out, vjp_fn = tg.vjp(lambda t: (t * 2, tg.sum(t)), np.ones(3))
    with pytest.raises(ValueError, match=r"cotangent\[0\] has shape \(1,\)"):
        vjp_fn((np.ones(1), 1.0))
    with pytest.raises(ValueError, match="structure"):
        vjp_fn(np.ones(3))
    with pytest.raises(TypeError, match="dtype"):
        vjp_fn((np.ones(3, int), 1.0))
    with pytest.raises(TypeError, match="complex"):
        vjp_fn((np.ones(3), 1j))
    with pytest.raises(TypeError, match="not an array"):
        vjp_fn((np.ones(3), "one"))
    assert vjp_fn((np.ones(3), 1.0))[0].tolist() == [3.0, 3.0, 3.0]


# --- gradients own their memory ------------------------------------------------------------------


def test_gradients_of_a_sum_with_a_transpose_do_not_alias():
    params = {"W": np.ones((3, 2)), "V": np.ones((2, 3))}
    grads = tg.grad(lambda p: tg.sum(np.ones((4, 3)) @ (p["W"] + p["V"].T)))(params)
    expected_V = grads["V"].copy()
    grads["W"] *= 0
    np.testing.assert_array_equal(grads["V"], expected_V)
    assert not np.shares_memory(grads["W"], grads["V"])


def test_the_same_array_passed_twice_gets_two_gradient_arrays():
    x = np.arange(3.0)
    ga, gb = tg.grad(lambda a, b: tg.sum(a + b), argnums=(0, 1))(x, x)
    assert not np.shares_memory(ga, gb)
    assert not np.shares_memory(ga, x) and not np.shares_memory(gb, x)


def test_vjp_gradients_never_share_memory_with_cotangents_or_each_other():
    _out, vjp_fn = tg.vjp(lambda a, b: a + b.T, np.ones((2, 3)), np.ones((3, 2)))
    cotangent = np.arange(6.0).reshape(2, 3)
    ga, gb = vjp_fn(cotangent)
    for g in (ga, gb):
        assert not np.shares_memory(g, cotangent)
    assert not np.shares_memory(ga, gb)


# --- reduced precision ----------------------------------------------------------------------


def test_cross_entropy_of_many_float16_rows_does_not_overflow():
    logits = np.zeros((40000, 10), np.float16)
    loss = tg.nn.cross_entropy(logits, np.zeros(40000, int))
    assert loss.dtype == np.float16
    # log 10 rounded to float16
    assert loss == np.float16(np.log(10.0))


def test_mean_of_more_float16_elements_than_float16_can_count():
    value, grads = tg.value_and_grad(tg.mean)(np.ones(70000, np.float16))
    assert value == 1.0 and grads.dtype == np.float16
    # 1/70000 is a float16 subnormal: the gradient is that number, rounded once.
    np.testing.assert_array_equal(grads, np.full(70000, np.float16(1 / 70000)))


def test_float16_cross_entropy_gradient_beyond_65504_rows():
    n = 70000
    _value, grads = tg.value_and_grad(tg.nn.cross_entropy)(
        np.zeros((n, 10), np.float16), np.zeros(n, int)
    )
    assert grads.dtype == np.float16
    expected = np.full((n, 10), 0.1 / n)
    expected[:, 0] -= 1 / n
    # float16 subnormals near 1.4e-6 are spaced 6e-8 apart: half a spacing of error.
    np.testing.assert_allclose(grads, expected, rtol=0, atol=3e-8)


# --- edges of the domain ---------------------------------------------------------------------


def test_zero_to_a_positive_power_has_zero_derivative_in_the_exponent():
    g = tg.grad(lambda y: np.sum(np.array([0.0, 2.0]) ** y))(1.5)
    assert g == pytest.approx(2.0**1.5 * np.log(2.0), rel=1e-15)


def test_x_to_the_power_zero_has_zero_derivative_even_at_zero():
    g = tg.grad(lambda x: tg.sum(x ** np.array([0.0, 1.0, 2.0])))(np.zeros(3))
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])
    second = tg.grad(lambda x: tg.sum(tg.grad(lambda z: tg.sum(z ** np.array([0.0, 1.0])))(x)))
    np.testing.assert_array_equal(second(np.array([0.0, 0.0])), [0.0, 0.0])


def test_expm1_and_sigmoid_derivatives_keep_relative_precision_in_their_tails():
    assert tg.grad(tg.expm1)(-40.0) == pytest.approx(np.exp(-40.0), rel=1e-15)
    assert tg.grad(tg.sigmoid)(40.0) == pytest.approx(np.exp(-40.0), rel=1e-14)
    assert tg.grad(tg.sigmoid)(-40.0) == pytest.approx(np.exp(-40.0), rel=1e-14)


def test_a_nan_maximum_takes_the_gradient_of_its_slice_alone():
    g = tg.grad(lambda x: tg.sum(tg.max(x, axis=1)))(np.array([[1.0, np.nan, 2.0], [1, 3, 2]]))
    np.testing.assert_array_equal(g, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


# --- foreign arrays --------------------------------------------------------------------------


class LabelledArray:
    """A stand-in for xarray.DataArray: array-like, with operators of its own."""

    __array_priority__ = 100

    def __init__(self, values):
        self.data = np.asarray(values, float)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(isinstance(i, tg.Tensor) for i in inputs):
            return NotImplemented
        values = [i.data if isinstance(i, LabelledArray) else i for i in inputs]
        return LabelledArray(getattr(ufunc, method)(*values, **kwargs))


def test_a_foreign_array_type_is_converted_so_the_gradient_survives():
    weights = LabelledArray([1.0, 2.0, 3.0])
    g = tg.grad(lambda x: tg.sum(x * weights))(2.0)
    assert g == 6.0
    value = tg.value_and_grad(lambda x: tg.sum(weights * x))(2.0)[0]
    assert type(value) in (np.float64, np.ndarray)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "mask"),
        (lambda: np.matrix([[1.0, 2.0]]), "@"),
    ],
)
def test_masked_arrays_and_matrices_are_refused(make, message):
    other = make()
    with pytest.raises(TypeError, match=message):
        tg.grad(lambda x: tg.sum(x * other))(np.ones(2))
    with pytest.raises(TypeError, match=message):
        tg.grad(lambda x: tg.sum(x))(other)
    with pytest.raises(TypeError, match=message):
        tg.Tensor(other)


# --- mutation after recording --------------------------------------------------------------


def test_vjp_copies_its_primals_and_its_output():
    a = np.array([1.0, 2.0])
    out, vjp_fn = tg.vjp(lambda t: t * t, a)
    a[:] = 100
    np.testing.assert_array_equal(vjp_fn(np.ones(2))[0], [2.0, 4.0])
    out, vjp_fn = tg.vjp(tg.exp, np.zeros(2))
    out *= 5
    np.testing.assert_array_equal(vjp_fn(np.ones(2))[0], [1.0, 1.0])


def test_debug_checks_name_the_op_whose_input_was_modified():
    scale = np.array([1.0, 2.0])

    def f(t):
        y = t * scale
        scale[:] = 0  # after mul recorded it: its VJP would read the zeros
        return tg.sum(y)

    with tg.debug_checks(), pytest.raises(RuntimeError, match=r"mul \(node %1\).*argument 1"):
        tg.grad(f)(np.ones(2))


def test_debug_checks_pass_silently_when_nothing_was_modified():
    with tg.debug_checks():
        np.testing.assert_array_equal(tg.grad(lambda t: tg.sum(t * t))(np.ones(2)), [2.0, 2.0])
        _out, vjp_fn = tg.vjp(lambda t: tg.exp(t)[np.array([0, 0])], np.zeros(2))
        np.testing.assert_array_equal(vjp_fn(np.ones(2))[0], [2.0, 0.0])
