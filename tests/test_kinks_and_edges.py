"""Where a derivative does not exist, or needs care, each op makes the documented choice.

The choices are listed in the docstrings of tinygrad_np/elementwise.py and
tinygrad_np/reductions.py; the generated properties (tests/test_numpy_coverage.py) keep
their inputs away from these points, so they are pinned here, through NumPy's spelling.
"""

import math

import numpy as np
import pytest

import tinygrad_np as tg


def grad_of_sum(f, *args, argnums=0):
    return tg.grad(lambda *a: tg.sum(f(*a)), argnums=argnums)(*args)


# --- fmax, fmin: NaN loses, ties as in maximum ----------------------------------------------


@pytest.mark.parametrize("function", [np.fmax, np.fmin])
def test_fmax_and_fmin_give_the_gradient_to_the_number_facing_a_nan(function):
    x = np.array([np.nan, 1.0, np.nan])
    y = np.array([2.0, np.nan, np.nan])
    gx, gy = grad_of_sum(function, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0])  # both NaN: nobody's
    np.testing.assert_array_equal(gy, [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("function", "beyond_the_bound"),
    [(np.fmax, [0, 1, 0]), (np.maximum, [0, 1, 0]), (np.fmin, [0, 0, 1]), (np.minimum, [0, 0, 1])],
)
def test_tied_tensors_share_and_a_tied_constant_bound_takes_nothing(function, beyond_the_bound):
    x = np.array([1.0, 2.0, 0.0])
    gx, gy = grad_of_sum(function, x, x.copy(), argnums=(0, 1))
    np.testing.assert_array_equal(gx, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(grad_of_sum(lambda x: function(x, 1.0), x), beyond_the_bound)


# --- remainder: the quotient is NumPy's, also at the jumps --------------------------------


def test_remainder_is_differentiated_with_numpys_quotient_at_and_between_jumps():
    x = np.array([3.0, -3.5, 7.0, 0.25])
    y = np.array([1.5, 1.5, -2.0, 0.5])  # 3 / 1.5 is a jump: the right-hand limit's slope
    gx, gy = grad_of_sum(np.remainder, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(gx, np.ones(4))
    np.testing.assert_array_equal(gy, -np.floor_divide(x, y))
    np.testing.assert_array_equal(gy, [-2.0, 3.0, 4.0, -0.0])


def test_the_modulo_operator_is_remainder_on_either_side():
    x = np.array([2.5, -1.0])
    np.testing.assert_array_equal(tg.grad(lambda x: tg.sum(x % 2.0))(x), [1.0, 1.0])
    # d/dx (7 % x) = -floor(7 / x)
    np.testing.assert_array_equal(tg.grad(lambda x: tg.sum(7.0 % x))(x), -np.floor(7.0 / x))
    assert np.mod is np.remainder and tg.mod is tg.remainder


# --- hypot and arctan2 at the origin ------------------------------------------------------


def test_hypot_has_gradient_zero_at_the_origin_only():
    x, y = np.array([0.0, 3.0]), np.array([0.0, -4.0])
    gx, gy = grad_of_sum(np.hypot, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(gx, [0.0, 0.6])
    np.testing.assert_array_equal(gy, [0.0, -0.8])


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_arctan2_gradient_is_nan_at_the_origin_where_it_jumps():
    gx1, gx2 = grad_of_sum(np.arctan2, np.array([0.0, 1.0]), np.array([0.0, 1.0]), argnums=(0, 1))
    assert np.isnan(gx1[0]) and np.isnan(gx2[0])
    np.testing.assert_allclose([gx1[1], gx2[1]], [0.5, -0.5], rtol=1e-15)


def test_arctan2_gradient_is_finite_and_right_where_the_squares_underflow_or_overflow():
    # d/dx1 arctan2(x1, x2) = x2 / (x1**2 + x2**2), here 4/25 / scale; at (3, 4) * 1e-200 the
    # squares underflow to 0 and at (3, 4) * 1e200 they overflow, but the gradient is a float
    for scale in (1e-200, 1e200, 1.0):
        gx1, gx2 = grad_of_sum(np.arctan2, np.array(3 * scale), np.array(4 * scale), argnums=(0, 1))
        np.testing.assert_allclose([gx1, gx2], [0.16 / scale, -0.12 / scale], rtol=1e-15)


# --- sinc, smooth through 0 -------------------------------------------------------------


def test_sinc_derivatives_at_zero_are_the_series_coefficients():
    def derivative(order):
        f = tg.sinc
        for _ in range(order):
            f = tg.grad(f)
        return f(0.0)

    # sinc(x) = 1 - (pi x)**2 / 6 + (pi x)**4 / 120 - ...: sinc'' = -pi**2/3, sinc'''' = pi**4/5
    expected = [1.0, 0.0, -(math.pi**2) / 3, 0.0, math.pi**4 / 5]
    for order, value in enumerate(expected):
        assert derivative(order) == pytest.approx(value, rel=1e-14, abs=1e-14), order


@pytest.mark.parametrize("x", [1e-300, 2.4e-253, 1e-10, 1e-4])
def test_sinc_derivative_keeps_its_precision_near_zero(x):
    # sinc'(x) = -(pi**2 / 3) x + (pi**4 / 30) x**3 - ...; the second term is below 1e-7 here.
    expected = -(math.pi**2) / 3 * x * (1 - math.pi**2 * x**2 / 10)
    assert tg.grad(np.sinc)(x) == pytest.approx(expected, rel=1e-12)


def test_sinc_derivative_far_from_zero_is_the_quotient_rule():
    x = np.array([-7.3, 0.96, 1.5, 12.25])  # |pi x| on both sides of the series' range
    t = np.pi * x
    expected = (np.cos(t) * t - np.sin(t)) / (t * x)
    np.testing.assert_allclose(grad_of_sum(np.sinc, x), expected, rtol=1e-13)


def test_sinc_stays_float32():
    g = tg.grad(lambda x: tg.sum(np.sinc(x)))(np.array([0.0, 0.5, 4.0], np.float32))
    assert g.dtype == np.float32


# --- nan_to_num ------------------------------------------------------------------------------


def test_nan_to_num_passes_the_gradient_only_where_x_is_finite():
    x = np.array([np.nan, np.inf, -np.inf, 2.0])
    value, g = tg.value_and_grad(
        lambda x: tg.sum(np.nan_to_num(x, nan=1.0, posinf=5.0, neginf=-5.0) * 3.0)
    )(x)
    assert value == 3.0 * (1.0 + 5.0 - 5.0 + 2.0)
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, 3.0])


def test_nan_to_num_with_copy_false_changes_no_array():
    x = np.array([np.nan, 1.0])
    tg.grad(lambda x: tg.sum(np.nan_to_num(x, copy=False)))(x)
    assert np.isnan(x[0])


# --- real, imag, conj on real input ----------------------------------------------------------


def test_real_imag_and_conj_of_real_tensors():
    x = np.array([1.5, -2.0])

    def f(t):
        assert t.real.traced and t.imag.traced
        return tg.sum(t.real * 2.0 + t.imag * 5.0 + t.conj() + np.conjugate(t) + np.imag(t))

    value, g = tg.value_and_grad(f)(x)
    assert value == pytest.approx(4 * x.sum())
    np.testing.assert_array_equal(g, [4.0, 4.0])


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="complex"):
        tg.grad(lambda z: tg.sum(np.real(z)))(np.array([1.0 + 2.0j]))


# --- absolute values at 0 -------------------------------------------------------------------


@pytest.mark.parametrize("function", [np.abs, np.fabs])
def test_absolute_values_have_derivative_zero_at_zero(function):
    np.testing.assert_array_equal(grad_of_sum(function, np.array([-1.0, 0.0, 2.0])), [-1, 0, 1])


# --- prod: the product of the others, also with zeros -----------------------------------


def products_of_others(x):
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


@pytest.mark.parametrize(
    "x",
    [
        [2.0, 3.0, 4.0],
        [0.0, 3.0, 4.0],  # one zero: only it has a nonzero gradient
        [0.0, 3.0, 0.0, 5.0],  # two zeros: every gradient is 0
        [1e-200, 1e-200, 3.0],  # the product underflows to 0 without a zero factor
        [1e200, 1e200, 0.5],  # and overflows to inf
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy's, at 1e400
def test_prod_gradient_is_the_product_of_the_other_elements(x):
    x = np.array(x)
    np.testing.assert_array_equal(tg.grad(np.prod)(x), products_of_others(x))


def test_prod_hessian_with_zeros_is_the_product_of_the_other_two():
    x = np.array([0.0, 3.0, 0.0, 5.0, 2.0])
    n = x.size
    hessian = np.array(
        [[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(n)] for i in range(n)]
    )
    for v in np.eye(n):
        np.testing.assert_array_equal(tg.hvp(np.prod, x, v), hessian @ v)


def test_prod_with_zeros_along_an_axis_matches_slice_by_slice():
    x = np.array([[[0.0, 2.0], [3.0, 0.5]], [[1.5, 0.0], [0.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]])
    g = tg.grad(lambda x: tg.sum(np.prod(x, axis=(0, 2), keepdims=True) * 2.0))(x)
    for j in range(x.shape[1]):
        slice_ = x[:, j, :]
        np.testing.assert_array_equal(
            g[:, j, :], 2.0 * products_of_others(slice_.ravel()).reshape(slice_.shape)
        )


# --- std, var ----------------------------------------------------------------------------


def test_std_of_a_constant_slice_has_gradient_zero():
    x = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    g = grad_of_sum(lambda x: np.std(x, axis=1), x)
    np.testing.assert_array_equal(g[0], [0.0, 0.0, 0.0])
    centered = x[1] - x[1].mean()
    np.testing.assert_allclose(g[1], centered / (3 * np.std(x[1])), rtol=1e-15)
    assert np.all(np.isfinite(tg.hvp(lambda x: tg.sum(np.std(x, axis=1)), x, np.ones_like(x))))


@pytest.mark.parametrize("function", [np.var, np.std])
def test_correction_is_ddofs_other_name(function):
    x = np.array([1.0, 2.0, 4.0, 8.0])
    by_ddof = tg.value_and_grad(lambda x: function(x, ddof=1))(x)
    by_correction = tg.value_and_grad(lambda x: function(x, correction=1))(x)
    np.testing.assert_array_equal(by_ddof[1], by_correction[1])
    assert by_ddof[0] == by_correction[0] == function(x, ddof=1)
    with pytest.raises(ValueError, match="ddof and correction"):
        tg.grad(lambda x: function(x, ddof=1, correction=1))(x)


# --- cumsum, diff, trace, ptp: spellings and refusals ------------------------------------


def test_diff_refuses_a_negative_order_and_a_0d_input():
    with pytest.raises(ValueError, match="non-negative"):
        tg.grad(lambda x: tg.sum(np.diff(x, n=-1)))(np.ones(3))
    with pytest.raises(ValueError, match="one-dimensional"):
        tg.grad(lambda x: tg.sum(np.diff(x)))(np.float64(1.0))


def test_diff_differentiates_a_traced_prepend_and_append():
    x, ends = np.array([1.0, 4.0, 9.0]), np.array([0.5, 20.0])

    def f(x, ends):
        return tg.sum(np.diff(x, prepend=ends[:1], append=ends[1:]) * np.arange(1.0, 5.0))

    gx, gends = tg.grad(f, argnums=(0, 1))(x, ends)
    # d/dx_k sum_i w_i (z_{i+1} - z_i) over z = (p, x, a): w_{k} - w_{k+1}
    np.testing.assert_array_equal(gx, [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(gends, [-1.0, 4.0])


def test_trace_is_np_trace_and_a_tensor_method_while_tg_trace_prints_tapes():
    x = np.arange(12.0).reshape(3, 4)
    g = tg.grad(lambda x: x.trace(offset=1) * 2.0)(x)
    np.testing.assert_array_equal(g, 2.0 * np.eye(3, 4, k=1))
    assert tg.reductions.trace is not tg.trace
    assert "trace" in str(tg.trace(lambda x: np.trace(x), x))


def test_tensor_methods_of_the_reductions():
    x = np.array([[1.0, 4.0, 2.0], [3.0, 0.5, 6.0]])

    def f(t):
        parts = [t.cumsum(1), t.prod(0), t.var(ddof=1), t.std(0), t.ptp(1), t.clip(1.0, 3.0)]
        return sum(tg.sum(p) for p in parts)

    expected = sum(
        np.sum(p)
        for p in [x.cumsum(1), x.prod(0), x.var(ddof=1), x.std(0), np.ptp(x, 1), x.clip(1, 3)]
    )
    assert tg.value_and_grad(f)(x)[0] == pytest.approx(expected, rel=1e-14)


# --- mean of a list -----------------------------------------------------------------------


def test_tg_mean_of_a_list_stacks_it_as_numpy_does():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([[0.5, 4.0, 2.0]])

    def f(x, y):
        return tg.sum(tg.mean([x, 2.0 * x, y[0], [1.0, 2.0, 3.0]], axis=0) * np.arange(3.0))

    value, (gx, gy) = tg.value_and_grad(f, argnums=(0, 1))(x, y)
    assert value == pytest.approx(np.sum(np.mean([x, 2 * x, y[0], [1, 2, 3]], axis=0) * [0, 1, 2]))
    np.testing.assert_allclose(gx, 3.0 / 4.0 * np.arange(3.0), rtol=1e-15)
    np.testing.assert_allclose(gy, [np.arange(3.0) / 4.0], rtol=1e-15)
    assert tg.mean([1.0, 3.0]) == 2.0  # no Tensor: NumPy's own


def test_numpys_mean_of_a_list_of_traced_tensors_names_tg_mean():
    with pytest.raises(TypeError, match=r"np\.mean\(\[t1, t2\]\).*tg\.mean\(\[t1, t2\]\)"):
        tg.grad(lambda x: np.mean([x, x]))(np.ones(3))


# --- select: the first condition that holds takes the gradient -----------------------------


def test_select_gives_the_gradient_to_the_first_choice_whose_condition_holds():
    x = np.array([-1.0, 0.5, 2.0, 3.0])
    choices = lambda x: [2.0 * x, 3.0 * x]
    # element 2 meets both conditions: the first wins; element 1 meets none: the default
    conditions = [x > 1.5, x < 0.0]
    conditions[1] = conditions[1] | (x > 2.5)
    gx, gd = tg.grad(lambda x, d: tg.sum(np.select(conditions, choices(x), d)), argnums=(0, 1))(
        x, np.full(4, 7.0)
    )
    np.testing.assert_array_equal(gx, [3.0, 0.0, 2.0, 2.0])
    np.testing.assert_array_equal(gd, [0.0, 1.0, 0.0, 0.0])


def test_select_refuses_what_numpy_refuses():
    x = np.ones(3)
    for call, error, message in [
        (lambda x: np.select([x > 0], [x, x]), ValueError, "1 conditions but choicelist has 2"),
        (lambda x: np.select([], []), ValueError, "empty condition list"),
        (lambda x: np.select([x], [x]), TypeError, "entry 0 of condlist has dtype float64"),
    ]:
        with pytest.raises(error, match=message):
            tg.grad(lambda x, call=call: tg.sum(call(x)))(x)
