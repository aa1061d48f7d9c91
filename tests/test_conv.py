"""Specification of convolution and pooling (``tg.nn.conv2d``, ``conv_transpose2d``,
``max_pool2d``, ``avg_pool2d``): PyTorch's NCHW conventions, derivatives to second order,
dtypes, bounded memory and clear errors.

Values are checked against direct loop definitions written here (and, where torch is
installed, against ``torch.nn.functional`` in float64); derivatives, in reverse and
forward mode, against float64 finite differences with ``check_grads``, whose default
tolerances carry the error analysis (``tinygrad_np.testing._check``). Convolutions are
bilinear, so any bounded values condition them; max pooling is given values pairwise at
least ``TIE_GAP`` apart, so that no finite-difference step (1e-5 relative; the
second-order direction has max |v| = 1) changes which element of a window is the largest.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np import conv
from tinygrad_np.extend import Primitive
from tinygrad_np.testing import check_grads
from tinygrad_np.testing import strategies as tst

# Forward mode is the transpose of the VJPs: checking both checks that they are linear.
BOTH_MODES = ("fwd", "rev")

TIE_GAP = 0.02
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
COVERED: set[str] = set()


def covers(*names: str) -> Any:
    """Record that the decorated property checks the derivatives of these primitives."""
    COVERED.update(names)
    return lambda test: test


# --- direct definitions ------------------------------------------------------------------


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


def reference_conv2d(x: Any, w: Any, b: Any, stride: Any, padding: Any) -> Any:
    """y[n, o, p, q] = b[o] + sum_{c,i,j} w[o, c, i, j] x_padded[n, c, p*sh + i, q*sw + j]."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, h, width = x.shape
    o, _, kh, kw = w.shape
    ho, wo = (h - kh) // sh + 1, (width - kw) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for p in range(ho):
        for q in range(wo):
            window = x[:, :, p * sh : p * sh + kh, q * sw : q * sw + kw]
            y[:, :, p, q] = np.einsum("ncij,ocij->no", window, w)
    return y if b is None else y + b[:, None, None]


def reference_pool(x: Any, kernel: Any, stride: Any, reduce: Any) -> Any:
    (kh, kw), (sh, sw) = pair(kernel), pair(stride if stride is not None else kernel)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, c, ho, wo), x.dtype)
    for p in range(ho):
        for q in range(wo):
            y[:, :, p, q] = reduce(x[:, :, p * sh : p * sh + kh, q * sw : q * sw + kw], axis=(2, 3))
    return y


def check_with_optional_bias(f: Any, x: Any, w: Any, b: Any) -> None:
    """check_grads of ``f(x, w, b)`` to second order, in ``b`` too unless it is None."""
    if b is None:
        check_grads(lambda x, w: f(x, w, None), (x, w), order=2, modes=BOTH_MODES)
    else:
        check_grads(f, (x, w, b), order=2, modes=BOTH_MODES)


def batch_last(x: Any) -> Any:
    """The same (N, C, H, W) values with the batch axis innermost in memory."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


# --- problems ------------------------------------------------------------------------------


def int_or_pair(values: tuple[int, int]) -> st.SearchStrategy[Any]:
    """The pair as given, or as one int when both are equal (both spellings are accepted)."""
    if values[0] == values[1]:
        return st.sampled_from([values[0], values])
    return st.just(values)


@st.composite
def conv_problems(draw: st.DrawFn, dtype: Any = np.float64, bias: bool | None = None) -> Any:
    """(x, w, b, stride, padding): small, every geometry (strides beyond the kernel,
    padding on one axis only, windows that leave rows uncovered)."""
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = [
        draw(st.integers(max(1, k - 2 * p), k - 2 * p + 4))
        for k, p in zip(kernel, padding, strict=True)
    ]
    x = draw(tst.float_arrays((n, c, *size), dtype=dtype))
    w = draw(tst.float_arrays((o, c, *kernel), dtype=dtype))
    with_bias = draw(st.booleans()) if bias is None else bias
    b = draw(tst.float_arrays((o,), dtype=dtype)) if with_bias else None
    return x, w, b, draw(int_or_pair(stride)), draw(int_or_pair(padding))


@st.composite
def pool_problems(draw: st.DrawFn, dtype: Any = np.float64, min_gap: float = 0.0) -> Any:
    """(x, kernel_size, stride): overlapping, touching and gapped windows."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(kernel[0], kernel[0] + 4)),
        draw(st.integers(kernel[1], kernel[1] + 4)),
    )
    x = draw(tst.float_arrays(shape, dtype=dtype, min_value=-4, max_value=4, min_gap=min_gap))
    return x, draw(int_or_pair(kernel)), stride if stride is None else draw(int_or_pair(stride))


# --- conv2d --------------------------------------------------------------------------------


@given(conv_problems())
def test_conv2d_is_the_cross_correlation_pytorch_computes(problem):
    x, w, b, stride, padding = problem
    y = tg.nn.conv2d(x, w, b, stride=stride, padding=padding)
    np.testing.assert_allclose(
        y, reference_conv2d(x, w, b, stride, padding), rtol=1e-12, atol=1e-12
    )


@covers("conv2d", "conv_transpose2d", "conv2d_weight")
@dtypes
@given(data=st.data())
def test_conv2d_has_correct_first_and_second_derivatives(dtype, data):
    x, w, b, stride, padding = data.draw(conv_problems(dtype))
    # Bilinear in (x, w): the Hessian-vector products go through conv_transpose2d and
    # conv2d_weight, and their own VJPs (conv2d and one another).
    check_with_optional_bias(lambda x, w, b: tg.nn.conv2d(x, w, b, stride, padding), x, w, b)


@dtypes
@given(data=st.data())
def test_conv2d_inside_a_nonlinear_function_has_correct_second_derivatives(dtype, data):
    x, w, b, stride, padding = data.draw(conv_problems(dtype, bias=True))
    check_grads(
        lambda x, w, b: tg.tanh(tg.nn.conv2d(tg.tanh(x), w, b, stride, padding)),
        (x, w, b),
        order=2,
        modes=BOTH_MODES,
    )


@given(conv_problems(bias=True))
def test_the_transposed_convolution_is_the_adjoint_of_the_convolution(problem):
    x, w, _, stride, padding = problem
    y = tg.nn.conv2d(x, w, None, stride, padding)
    cotangent = np.random.default_rng(0).standard_normal(y.shape)
    # <conv2d(x, w), g> = <x, conv2d's input VJP(g)>, and that VJP is the transposed
    # convolution with the output_padding that restores x's size.
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    extra = [
        (size + 2 * p - k) % s
        for size, p, k, s in zip(x.shape[2:], (ph, pw), w.shape[2:], (sh, sw), strict=True)
    ]
    back = tg.nn.conv_transpose2d(cotangent, w, None, stride, padding, output_padding=tuple(extra))
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y * cotangent), np.sum(x * back), rtol=1e-10)


@covers("conv_transpose2d", "conv2d", "conv2d_weight")
@dtypes
@given(data=st.data())
def test_conv_transpose2d_has_correct_first_and_second_derivatives(dtype, data):
    x, w, b, stride, padding = data.draw(conv_problems(dtype))
    (sh, sw) = pair(stride)
    extra = (data.draw(st.integers(0, sh - 1)), data.draw(st.integers(0, sw - 1)))
    w_t = w.transpose(1, 0, 2, 3)  # (in, out, kh, kw): x's channels are w_t's inputs
    b_t = None if b is None else data.draw(tst.float_arrays((w_t.shape[1],), dtype=dtype))
    # The output of a transposed convolution of this input must not be empty.
    ho = (x.shape[2] - 1) * sh - 2 * pair(padding)[0] + w.shape[2] + extra[0]
    wo = (x.shape[3] - 1) * sw - 2 * pair(padding)[1] + w.shape[3] + extra[1]
    if min(ho, wo) < 1:
        with pytest.raises(ValueError, match="empty output"):
            tg.nn.conv_transpose2d(x, w_t, b_t, stride, padding, extra)
        return
    check_with_optional_bias(
        lambda x, w, b: tg.nn.conv_transpose2d(x, w, b, stride, padding, extra), x, w_t, b_t
    )


@given(conv_problems(np.float32))
def test_float32_stays_float32(problem):
    x, w, b, stride, padding = problem
    y = tg.nn.conv2d(x, w, b, stride, padding)
    assert y.dtype == np.float32
    grads = tg.grad(lambda x, w, b: tg.sum(tg.nn.conv2d(x, w, b, stride, padding) ** 2), (0, 1, 2))(
        x, w, b if b is not None else np.zeros(w.shape[0], np.float32)
    )
    assert [g.dtype for g in grads] == [np.float32] * 3
    # float32 rounding of sums of at most 27 products of values up to 2 in magnitude.
    np.testing.assert_allclose(y, reference_conv2d(x, w, b, stride, padding), rtol=1e-5, atol=1e-5)


def test_float16_is_computed_in_float32_and_rounded_back():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 8, 9, 9)), rng.standard_normal((4, 8, 3, 3))
    y = tg.nn.conv2d(x.astype(np.float16), w.astype(np.float16), padding=1)
    assert y.dtype == np.float16
    x16, w16 = x.astype(np.float16), w.astype(np.float16)
    exact = reference_conv2d(x16, w16.astype(np.float64), None, 1, 1)
    # Summed in float32 (error at most 72 * 2**-24 of the sum of |products|, 72 terms),
    # then rounded once to float16 (half a unit: 2**-11 relative, 2**-25 absolute below
    # the normal range). Summing in float16 would err by 2**13 times as much.
    float32_error = 72 * 2**-24 * reference_conv2d(np.abs(x16), np.abs(w16), None, 1, 1)
    bound = float32_error + 2**-11 * (np.abs(exact) + float32_error) + 2**-25
    assert np.all(np.abs(y - exact) <= bound)


def test_the_result_does_not_depend_on_the_inputs_memory_layout():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 2, 7, 6)), rng.standard_normal((4, 2, 3, 3))
    expected = tg.nn.conv2d(x, w, stride=2, padding=1)
    for layout in (batch_last(x), np.asfortranarray(x), x[:, :, ::-1, :][:, :, ::-1, :]):
        assert np.array_equal(tg.nn.conv2d(layout, w, stride=2, padding=1), expected)


def test_a_large_batch_is_unfolded_in_chunks_within_the_memory_budget(monkeypatch):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((64, 4, 16, 16)), rng.standard_normal((8, 4, 3, 3))

    def loss(x, w):
        return tg.sum(tg.nn.conv2d(x, w, padding=1) ** 2)

    whole_value, whole_grads = tg.value_and_grad(loss, (0, 1))(x, w)
    unfolded = 4 * 3 * 3 * 16 * 16 * 64 * 8  # the whole batch's matrix: 4.7 MB
    budget = 2**18
    monkeypatch.setattr(conv, "UNFOLD_BUDGET_BYTES", budget)
    value, grads = tg.value_and_grad(loss, (0, 1))(x, w)
    np.testing.assert_allclose(value, whole_value, rtol=1e-12)
    for chunked, whole in zip(grads, whole_grads, strict=True):
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)

    tracemalloc.start()
    try:
        y = tg.nn.conv2d(x, w, padding=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output, one chunk's padded input and product, and one chunk's matrix (<= budget).
    assert peak < y.nbytes + 3 * budget < unfolded / 2


def test_the_batch_may_be_empty():
    y = tg.nn.conv2d(np.zeros((0, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2))
    assert y.shape == (0, 2, 3, 3)
    assert tg.nn.max_pool2d(np.zeros((0, 3, 4, 4)), 2).shape == (0, 3, 2, 2)


# --- pooling -------------------------------------------------------------------------------


@given(pool_problems())
def test_max_pool2d_is_the_maximum_of_each_window(problem):
    x, kernel, stride = problem
    expected = reference_pool(x, kernel, stride, np.max)
    assert np.array_equal(tg.nn.max_pool2d(x, kernel, stride), expected)


@given(pool_problems())
def test_avg_pool2d_is_the_mean_of_each_window(problem):
    x, kernel, stride = problem
    expected = reference_pool(x, kernel, stride, np.mean)
    np.testing.assert_allclose(tg.nn.avg_pool2d(x, kernel, stride), expected, rtol=1e-14)


@covers("max_pool2d", "window_scatter", "window_gather")
@dtypes
@given(data=st.data())
def test_max_pool2d_has_correct_first_and_second_derivatives(dtype, data):
    x, kernel, stride = data.draw(pool_problems(dtype, min_gap=TIE_GAP))
    # tanh around it makes the second derivative non-zero: it goes through the scatter
    # of max pooling's VJP and that scatter's VJP, the gather.
    check_grads(
        lambda x: tg.tanh(tg.nn.max_pool2d(x, kernel, stride)), (x,), order=2, modes=BOTH_MODES
    )


@covers("avg_pool2d", "window_spread")
@dtypes
@given(data=st.data())
def test_avg_pool2d_has_correct_first_and_second_derivatives(dtype, data):
    x, kernel, stride = data.draw(pool_problems(dtype))
    check_grads(
        lambda x: tg.tanh(tg.nn.avg_pool2d(x, kernel, stride)), (x,), order=2, modes=BOTH_MODES
    )


@given(pool_problems(np.float32))
def test_pooling_keeps_float32(problem):
    x, kernel, stride = problem
    for pool in (tg.nn.max_pool2d, tg.nn.avg_pool2d):
        assert pool(x, kernel, stride).dtype == np.float32
        assert tg.grad(lambda x: tg.sum(pool(x, kernel, stride)))(x).dtype == np.float32  # noqa: B023


def test_a_tied_window_gives_its_gradient_to_its_first_maximal_element():
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]]]])  # windows 2x2, stride 1: ties
    grad = tg.grad(lambda x: tg.sum(tg.nn.max_pool2d(x, 2, 1)))(x)
    # Window (0, 0) = [[1, 3], [3, 0]]: first 3 in row-major order is (0, 1).
    # Window (0, 1) = [[3, 3], [0, 3]]: first 3 is (0, 1) again, which collects both.
    assert np.array_equal(grad, [[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]])


def test_a_window_holding_nan_is_nan_and_its_last_nan_gets_the_gradient():
    x = np.array([[[[np.nan, 5.0], [np.nan, 1.0]]]])
    y, vjp_fn = tg.vjp(lambda x: tg.nn.max_pool2d(x, 2), x)
    assert np.isnan(y).all()
    (grad,) = vjp_fn(np.ones((1, 1, 1, 1)))
    assert np.array_equal(grad, [[[[0.0, 0.0], [1.0, 0.0]]]])


def test_an_infinite_cotangent_reaches_only_the_chosen_element():
    x = np.array([[[[1.0, 4.0], [2.0, 3.0]]]])
    _, vjp_fn = tg.vjp(lambda x: tg.nn.max_pool2d(x, 2), x)
    (grad,) = vjp_fn(np.full((1, 1, 1, 1), np.inf))
    assert np.array_equal(grad, [[[[0.0, np.inf], [0.0, 0.0]]]])  # not inf * 0 = nan


def test_overlapping_windows_add_their_gradients():
    x = np.arange(16.0).reshape(1, 1, 4, 4)  # the maximum of every 3x3 window is its corner
    grad = tg.grad(lambda x: tg.sum(tg.nn.avg_pool2d(x, 3, 1)))(x)
    counts = np.array([1, 2, 2, 1])  # how many windows cover each row (and column)
    assert np.allclose(grad[0, 0], np.outer(counts, counts) / 9)
    grad = tg.grad(lambda x: tg.sum(tg.nn.max_pool2d(x, 3, 1)))(x)
    expected = np.zeros((4, 4))
    expected[2:, 2:] = 1
    assert np.array_equal(grad[0, 0], expected)


# --- every path, checked by the engine's debug checks ------------------------------------------


def test_every_vjp_returns_its_inputs_shape_and_dtype_to_second_order():
    rng = np.random.default_rng(3)
    # Values 0.01 apart (no near-ties for the max pooling) within [-1.25, 1.25], and weights
    # of standard deviation 0.5: with N(0, 1) weights this network's Hessian entries reach
    # 1e3 and the truncation error of the central differences exceeds 1e-6, while the
    # engine's Hessian-vector products still equal PyTorch's to 1e-12.
    x = (rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 100 - 1.25).astype(np.float32)
    w = (0.5 * rng.standard_normal((4, 3, 3, 2))).astype(np.float32)
    b = (0.5 * rng.standard_normal(4)).astype(np.float32)

    def network(x, w, b):
        pooled = tg.nn.max_pool2d(x, 2, 1)
        y = tg.tanh(tg.nn.conv2d(pooled, w, b, stride=(2, 1), padding=1))
        z = tg.nn.conv_transpose2d(y, w, None, stride=(2, 1), padding=1, output_padding=(1, 0))
        return tg.nn.avg_pool2d(tg.tanh(z), (2, 1))

    with tg.debug_checks():
        for dtype in (np.float32, np.float64):
            args = tuple(a.astype(dtype) for a in (x, w, b))
            check_grads(network, args, order=2, modes=BOTH_MODES)


def test_every_convolution_and_pooling_primitive_has_a_derivative_property():
    primitives = {
        v.name
        for v in vars(conv).values()
        if isinstance(v, Primitive) and v.impl.__module__ == conv.__name__  # declared there
    }
    assert primitives
    assert primitives <= COVERED, sorted(primitives - COVERED)


# --- errors --------------------------------------------------------------------------------


def errors() -> dict[str, tuple[Any, str]]:
    x, w = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3))
    return {
        "x is 3-d": (
            lambda: tg.nn.conv2d(np.zeros((3, 5, 5)), w),
            r"x must be a batch of images \(N, C, H, W\), got shape \(3, 5, 5\)",
        ),
        "w is 3-d": (lambda: tg.nn.conv2d(x, np.zeros((4, 3, 3))), r"w must be 4-d .* \(4, 3, 3\)"),
        "channels": (
            lambda: tg.nn.conv2d(x, np.zeros((4, 2, 3, 3))),
            r"x of shape \(2, 3, 5, 5\) has 3 channels but w of shape \(4, 2, 3, 3\) expects 2",
        ),
        "bias": (
            lambda: tg.nn.conv2d(x, w, np.zeros(3)),
            r"b must have shape \(4,\).* got \(3,\)",
        ),
        "kernel too large": (
            lambda: tg.nn.conv2d(x, np.zeros((4, 3, 8, 3)), padding=1),
            r"kernel 8x3 is larger than the padded input 7x7 \(x of shape \(2, 3, 5, 5\), "
            r"w of shape \(4, 3, 8, 3\)",
        ),
        "stride 0": (lambda: tg.nn.conv2d(x, w, stride=0), "stride must be positive, got 0"),
        "negative padding": (
            lambda: tg.nn.conv2d(x, w, padding=(1, -1)),
            r"padding must be non-negative, got \(1, -1\)",
        ),
        "fractional stride": (
            lambda: tg.nn.conv2d(x, w, stride=1.5),
            "stride must be an int or a pair of ints, got 1.5",
        ),
        "stride triple": (
            lambda: tg.nn.conv2d(x, w, stride=(1, 1, 1)),
            r"stride must be an int or a pair of ints, got \(1, 1, 1\)",
        ),
        "output_padding": (
            lambda: tg.nn.conv_transpose2d(x, np.zeros((3, 2, 3, 3)), stride=2, output_padding=2),
            "output_padding 2 must be smaller than stride",
        ),
        "transpose channels": (
            lambda: tg.nn.conv_transpose2d(x, w),
            r"x of shape \(2, 3, 5, 5\) has 3 channels but w of shape \(4, 3, 3, 3\) expects 4 "
            r"\(w is \(in_channels, out_channels, kh, kw\)\)",
        ),
        "pool kernel too large": (
            lambda: tg.nn.max_pool2d(x, (2, 6)),
            r"max_pool2d: the kernel 2x6 is larger than the input 5x5 "
            r"\(x of shape \(2, 3, 5, 5\)\)",
        ),
        "pool stride": (lambda: tg.nn.avg_pool2d(x, 2, stride=-1), "stride must be positive"),
        "pool rank": (
            lambda: tg.nn.avg_pool2d(np.zeros((5, 5)), 2),
            r"avg_pool2d: x must be a batch of images .* got shape \(5, 5\)",
        ),
    }


@pytest.mark.parametrize("case", sorted(errors()))
def test_bad_shapes_and_arguments_raise_a_value_error_naming_them(case):
    call, message = errors()[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_integer_images_and_weights_have_no_convolution():
    with pytest.raises(TypeError, match="need floating-point arrays, got int64"):
        tg.nn.conv2d(np.ones((1, 1, 3, 3), np.int64), np.ones((1, 1, 2, 2), np.int64))


def test_uint8_images_with_float32_weights_give_float32():
    x = np.arange(18, dtype=np.uint8).reshape(1, 2, 3, 3)
    y = tg.nn.conv2d(x, np.ones((1, 2, 2, 2), np.float32))
    assert y.dtype == np.float32 and y[0, 0, 0, 0] == 0 + 1 + 3 + 4 + 9 + 10 + 12 + 13


# --- against PyTorch (optional) --------------------------------------------------------------


def assert_agree_with_torch(ours: Any, theirs: Any, arrays: list[Any]) -> None:
    """Values and VJPs (random cotangent) of ``ours`` and ``theirs`` on ``arrays`` (None
    for an absent bias) agree in float64 to rounding."""
    torch = pytest.importorskip("torch")
    present = [i for i, a in enumerate(arrays) if a is not None]

    def with_present(*values: Any) -> Any:
        full = list(arrays)
        for i, value in zip(present, values, strict=True):
            full[i] = value
        return ours(*full)

    out, vjp_fn = tg.vjp(with_present, *[arrays[i] for i in present])
    cotangent = np.random.default_rng(0).standard_normal(out.shape)
    grads = vjp_fn(cotangent)
    tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    their_out = theirs(*tensors)
    their_out.backward(torch.tensor(cotangent))
    # Sums of at most 27 products of values below 4 in magnitude, in two summation orders.
    np.testing.assert_allclose(out, their_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for i, mine in zip(present, grads, strict=True):
        np.testing.assert_allclose(mine, tensors[i].grad.numpy(), rtol=1e-12, atol=1e-12)


@given(conv_problems())
def test_conv2d_agrees_with_pytorch_forward_and_backward(problem):
    torch = pytest.importorskip("torch")
    x, w, b, stride, padding = problem
    assert_agree_with_torch(
        lambda *a: tg.nn.conv2d(*a, stride=stride, padding=padding),
        lambda *a: torch.nn.functional.conv2d(*a, stride=stride, padding=padding),
        [x, w, b],
    )


@given(conv_problems(bias=True), st.data())
def test_conv_transpose2d_agrees_with_pytorch_forward_and_backward(problem, data):
    torch = pytest.importorskip("torch")
    x, w, _, stride, padding = problem
    w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3))
    b = np.arange(w_t.shape[1], dtype=np.float64)
    extra = tuple(data.draw(st.integers(0, s - 1)) for s in pair(stride))
    out_h = (x.shape[2] - 1) * pair(stride)[0] - 2 * pair(padding)[0] + w.shape[2] + extra[0]
    out_w = (x.shape[3] - 1) * pair(stride)[1] - 2 * pair(padding)[1] + w.shape[3] + extra[1]
    if min(out_h, out_w) < 1:
        return
    assert_agree_with_torch(
        lambda *a: tg.nn.conv_transpose2d(*a, stride=stride, padding=padding, output_padding=extra),
        lambda *a: torch.nn.functional.conv_transpose2d(
            *a, stride=stride, padding=padding, output_padding=extra
        ),
        [x, w_t, b],
    )


@given(pool_problems(), st.booleans())
def test_pooling_agrees_with_pytorch_forward_and_backward_ties_included(problem, tied):
    torch = pytest.importorskip("torch")
    x, kernel, stride = problem
    if tied:  # a few distinct values: most windows hold ties
        x = np.round(x / 3)
    for ours, theirs in [
        (tg.nn.max_pool2d, torch.nn.functional.max_pool2d),
        (tg.nn.avg_pool2d, torch.nn.functional.avg_pool2d),
    ]:
        assert_agree_with_torch(
            lambda x: ours(x, kernel, stride),  # noqa: B023
            lambda x: theirs(x, kernel, stride),  # noqa: B023
            [x],
        )


@given(conv_problems(bias=False))
def test_conv2d_second_derivatives_agree_with_pytorch(problem):
    torch = pytest.importorskip("torch")
    x, w, _, stride, padding = problem
    rng = np.random.default_rng(1)
    y_shape = reference_conv2d(x, w, None, stride, padding).shape
    cotangent, vx, vw = (
        rng.standard_normal(y_shape),
        rng.standard_normal(x.shape),
        rng.standard_normal(w.shape),
    )

    def ours(x, w):  # <grad of <conv2d(x, w), tanh-weighted cotangent>, v>
        gx, gw = tg.grad(
            lambda x, w: tg.sum(tg.tanh(tg.nn.conv2d(x, w, None, stride, padding)) * cotangent),
            (0, 1),
        )(x, w)
        return tg.sum(gx * vx) + tg.sum(gw * vw)

    hx, hw = tg.grad(ours, (0, 1))(x, w)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = torch.tanh(torch.nn.functional.conv2d(xt, wt, None, stride, padding))
    gx, gw = torch.autograd.grad((y * torch.tensor(cotangent)).sum(), (xt, wt), create_graph=True)
    tx, tw = torch.autograd.grad(
        (gx * torch.tensor(vx)).sum() + (gw * torch.tensor(vw)).sum(), (xt, wt)
    )
    np.testing.assert_allclose(hx, tx.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hw, tw.numpy(), rtol=1e-10, atol=1e-10)
