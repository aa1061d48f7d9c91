"""Every primitive's first and second derivatives agree with finite differences.

Each property draws shapes (every broadcast, axis and keepdims variant the op
accepts) and values, in float64 and float32, and runs ``check_grads`` with
``order=2``: the VJP against float64 central differences, then Hessian-vector
products against differences of the engine's gradient. ``check_grads``' default
tolerances carry the error analysis (``tinygrad_np.testing._check``).

Inputs are conditioned for finite differences: values are bounded (|x| <= 4, so
|f|, |f'''| stay below ~60 and the float64 difference error below ~1e-9), kinks
and ties are kept at least 0.05 away (relu's 0, max/min ties), poles at least
0.2 away (log, div). The relative step is 1e-5 and the second-order direction
has max |v| = 1, so no perturbation comes within 0.04 of a kink: every
finite difference sees a smooth function.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy_cases import all_cases

import tinygrad_np as tg
from tinygrad_np import elementwise, linalg, nn, reductions, shape
from tinygrad_np.extend import Primitive
from tinygrad_np.tensor import NUMPY_OPS
from tinygrad_np.testing import check_grads, default_tolerance, numerical_grad
from tinygrad_np.testing import strategies as tst

OP_MODULES = (elementwise, reductions, shape, linalg, nn)

COVERED: set[str] = set()


def covers(*names):
    """Record that the decorated property checks the gradients of these ops."""
    COVERED.update(names)
    return lambda test: test


dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])

# Margins (see the module docstring): kinks and ties, and poles.
KINK_MARGIN = 0.05
POLE_MARGIN = 0.2


def _name(fn):
    return fn.__name__


# --- elementwise arithmetic, with broadcasting --------------------------------------


@covers("add", "sub", "mul")
@dtypes
@pytest.mark.parametrize("op", [tg.add, tg.sub, tg.mul], ids=_name)
@given(data=st.data())
def test_broadcasting_arithmetic_has_correct_derivatives(op, dtype, data):
    x, y = data.draw(tst.broadcastable_arrays(2, dtype=dtype))
    check_grads(op, (x, y), order=2)


@covers("add", "mul")
@dtypes
@given(data=st.data())
def test_three_way_broadcast_unbroadcasts_every_operand(dtype, data):
    x, y, z = data.draw(tst.broadcastable_arrays(3, dtype=dtype))
    check_grads(lambda x, y, z: x * y + z, (x, y, z), order=2)


@covers("div")
@dtypes
@given(data=st.data())
def test_division_has_correct_derivatives(dtype, data):
    shapes = data.draw(tst.broadcastable_shapes(2))
    x = data.draw(tst.float_arrays(shapes.input_shapes[0], dtype=dtype))
    # |y| >= 0.5: 1/y and its derivatives 1/y**2, 2/y**3 stay below 16.
    y = data.draw(tst.float_arrays(shapes.input_shapes[1], dtype=dtype, min_magnitude=0.5))
    check_grads(tg.div, (x, y), order=2)


@covers("neg")
@dtypes
@given(data=st.data())
def test_negation_has_correct_derivatives(dtype, data):
    check_grads(tg.neg, (data.draw(tst.float_arrays(dtype=dtype)),), order=2)


@covers("pow")
@dtypes
@given(data=st.data())
def test_power_of_two_arrays_is_differentiable_in_base_and_exponent(dtype, data):
    shapes = data.draw(tst.broadcastable_shapes(2))
    # A positive base (>= 0.5) keeps log(x) and x**y smooth: |x**y| <= 4.
    x = data.draw(tst.float_arrays(shapes.input_shapes[0], dtype=dtype, min_value=0.5))
    y = data.draw(tst.float_arrays(shapes.input_shapes[1], dtype=dtype))
    check_grads(tg.pow, (x, y), order=2)


@covers("pow")
@dtypes
@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5])
@given(data=st.data())
def test_power_with_a_constant_exponent(dtype, exponent, data):
    if float(exponent).is_integer():
        # Integer powers are smooth for either sign; negative ones away from 0.
        x = data.draw(tst.float_arrays(dtype=dtype, min_magnitude=0.5))
    else:
        x = data.draw(tst.float_arrays(dtype=dtype, min_value=0.5))
    check_grads(lambda x: x**exponent, (x,), order=2)


@covers("pow")
@dtypes
@given(data=st.data())
def test_constant_base_to_an_array_power(dtype, data):
    base = data.draw(st.floats(0.5, 3.0))
    check_grads(lambda y: base**y, (data.draw(tst.float_arrays(dtype=dtype)),), order=2)


# --- matrix product -----------------------------------------------------------------


@covers("matmul")
@dtypes
@given(data=st.data())
def test_matmul_of_vectors_matrices_and_batches(dtype, data):
    a, b = data.draw(tst.matmul_arrays(dtype=dtype))
    check_grads(lambda a, b: a @ b, (a, b), order=2)


@covers("linear")
@dtypes
@given(data=st.data())
def test_dense_layer_over_any_batch_axes_with_any_bias(dtype, data):
    in_features, out_features = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    x = data.draw(tst.float_arrays((*batch, in_features), dtype=dtype))
    weight = data.draw(tst.float_arrays((in_features, out_features), dtype=dtype))
    out_shape = (*batch, out_features)
    # no bias, or one that broadcasts to the output without enlarging it: trailing axes,
    # each either the output's or 1
    trailing = data.draw(st.integers(0, len(out_shape)))
    bias_shape = data.draw(
        st.none()
        | st.tuples(*[st.sampled_from((1, n)) for n in out_shape[len(out_shape) - trailing :]])
    )
    if bias_shape is None:
        check_grads(nn.linear, (x, weight), order=2)
    else:
        bias = data.draw(tst.float_arrays(bias_shape, dtype=dtype))
        check_grads(nn.linear, (x, weight, bias), order=2)


# --- elementwise functions ----------------------------------------------------------

SMOOTH_UNARY = [
    # (op, value bounds): bounded so that |f| and |f'''| stay below ~60.
    (tg.exp, {"min_value": -4.0, "max_value": 4.0}),
    (tg.tanh, {"min_value": -4.0, "max_value": 4.0}),
    (tg.sigmoid, {"min_value": -4.0, "max_value": 4.0}),
    # log'''(x) = 2/x**3: x >= 0.2 keeps it below 250, i.e. truncation < 5e-9.
    (tg.log, {"min_value": POLE_MARGIN, "max_value": 4.0}),
]


@covers("exp", "tanh", "sigmoid", "log")
@dtypes
@pytest.mark.parametrize(("op", "bounds"), SMOOTH_UNARY, ids=[_name(op) for op, _ in SMOOTH_UNARY])
@given(data=st.data())
def test_smooth_elementwise_functions(op, bounds, dtype, data):
    check_grads(op, (data.draw(tst.float_arrays(dtype=dtype, **bounds)),), order=2)


SMOOTH_UNARY_EXTRA = [
    (tg.sqrt, {"min_value": POLE_MARGIN, "max_value": 4.0}),  # sqrt'''(x) ~ x**-2.5 <= 56
    (tg.square, {"min_value": -4.0, "max_value": 4.0}),
    (tg.log1p, {"min_value": -1.0 + POLE_MARGIN, "max_value": 4.0}),
    (tg.expm1, {"min_value": -4.0, "max_value": 4.0}),
    # Bounded by 1 with all their derivatives, over more than a period.
    (tg.sin, {"min_value": -4.0, "max_value": 4.0}),
    (tg.cos, {"min_value": -4.0, "max_value": 4.0}),
]


@covers("sqrt", "square", "log1p", "expm1", "sin", "cos")
@dtypes
@pytest.mark.parametrize(
    ("op", "bounds"), SMOOTH_UNARY_EXTRA, ids=[_name(op) for op, _ in SMOOTH_UNARY_EXTRA]
)
@given(data=st.data())
def test_numpy_style_elementwise_functions(op, bounds, dtype, data):
    check_grads(op, (data.draw(tst.float_arrays(dtype=dtype, **bounds)),), order=2)


@covers("sinc_derivative")
@dtypes
@given(data=st.data())
def test_sinc_derivatives_of_every_order_through_zero(dtype, data):
    # sinc' as a function, checked to second order: sinc'' and sinc''' against differences of
    # it, so the derivative op is differentiated twice. [-4, 4] holds 0 and both formulas.
    def sinc_prime(x):
        return tg.grad(lambda x: tg.sum(tg.sinc(x)))(x)

    x = data.draw(tst.float_arrays(dtype=dtype, min_value=-4.0, max_value=4.0))
    check_grads(sinc_prime, (x,), order=2)


@covers("absolute")
@dtypes
@given(data=st.data())
def test_absolute_value_away_from_its_kink(dtype, data):
    x = data.draw(tst.float_arrays(dtype=dtype, min_magnitude=KINK_MARGIN))
    check_grads(tg.absolute, (x,), order=2)


@covers("relu")
@dtypes
@given(data=st.data())
def test_relu_away_from_its_kink(dtype, data):
    x = data.draw(tst.float_arrays(dtype=dtype, min_magnitude=KINK_MARGIN))
    check_grads(tg.relu, (x,), order=2)


@st.composite
def untied_arrays(draw, count, dtype):
    """Broadcastable arrays whose values are all pairwise 0.05 apart: no ties between them."""
    shapes = draw(tst.broadcastable_shapes(count)).input_shapes
    sizes = [math.prod(shape) for shape in shapes]
    # Up to 3 * 64 values 0.05 apart need a range of up to 9.6: widen [-2, 2] when needed.
    bound = max(2.0, sum(sizes) * KINK_MARGIN / 2)
    pool = draw(
        tst.float_arrays(
            sum(sizes), dtype=dtype, min_value=-bound, max_value=bound, min_gap=KINK_MARGIN
        )
    )
    parts = np.split(pool, np.cumsum(sizes)[:-1])
    return tuple(part.reshape(shape) for part, shape in zip(parts, shapes, strict=True))


@covers("maximum", "minimum")
@dtypes
@pytest.mark.parametrize("op", [tg.maximum, tg.minimum], ids=_name)
@given(data=st.data())
def test_elementwise_maximum_and_minimum_of_two_arrays_without_ties(op, dtype, data):
    check_grads(op, data.draw(untied_arrays(2, dtype)), order=2)


@covers("maximum", "minimum")
@dtypes
@pytest.mark.parametrize("op", [tg.maximum, tg.minimum], ids=_name)
@given(data=st.data())
def test_elementwise_maximum_and_minimum_against_a_constant_bound(op, dtype, data):
    # x is 0.05 away from the bound 0.5 on either side, so the winner never flips.
    x = 0.5 + data.draw(tst.float_arrays(dtype=dtype, min_magnitude=KINK_MARGIN))
    check_grads(lambda x: op(x, 0.5), (x.astype(dtype),), order=2)


@covers("clip")
@dtypes
@given(data=st.data())
def test_clip_to_constant_bounds(dtype, data):
    # Values on both sides of both bounds, but 0.05 away from them: the mask never flips.
    x = data.draw(tst.float_arrays(dtype=dtype, avoid=(-0.5, 0.5), margin=KINK_MARGIN))
    check_grads(lambda x: tg.clip(x, -0.5, 0.5), (x,), order=2)


@covers("clip")
@dtypes
@given(data=st.data())
def test_clip_to_array_bounds_that_are_differentiated_too(dtype, data):
    # Tensor bounds make clip minimum(maximum(x, lo), hi); untied values keep it smooth.
    check_grads(tg.clip, data.draw(untied_arrays(3, dtype)), order=2)


@covers("where")
@dtypes
@given(data=st.data())
def test_where_routes_the_gradient_by_the_condition(dtype, data):
    shapes = data.draw(tst.broadcastable_shapes(3))
    condition = data.draw(hnp.arrays(np.bool_, shapes.input_shapes[0]))
    x = data.draw(tst.float_arrays(shapes.input_shapes[1], dtype=dtype))
    y = data.draw(tst.float_arrays(shapes.input_shapes[2], dtype=dtype))
    check_grads(lambda x, y: tg.where(condition, x, y), (x, y), order=2)


@covers("dot")
@dtypes
@given(data=st.data())
def test_dot_with_numpy_semantics(dtype, data):
    a_shape = data.draw(tst.shapes(min_dims=0, max_dims=3))
    n = a_shape[-1] if a_shape else 1
    b_batch = data.draw(tst.shapes(max_dims=2))
    b_shape = data.draw(
        st.sampled_from([(), (n,), (*b_batch, n, data.draw(st.integers(1, 3)))])
        if a_shape
        else tst.shapes()
    )
    a = data.draw(tst.float_arrays(a_shape, dtype=dtype))
    b = data.draw(tst.float_arrays(b_shape, dtype=dtype))
    check_grads(tg.dot, (a, b), order=2)


# --- reductions ---------------------------------------------------------------------


@covers("sum", "mean", "logsumexp")
@dtypes
@pytest.mark.parametrize("op", [tg.sum, tg.mean, tg.logsumexp], ids=_name)
@given(data=st.data())
def test_smooth_reductions_over_every_axis_choice(op, dtype, data):
    x = data.draw(tst.float_arrays(dtype=dtype))
    axis, keepdims = data.draw(tst.axis_and_keepdims(x.shape))
    check_grads(lambda x: op(x, axis=axis, keepdims=keepdims), (x,), order=2)


@covers("max", "min")
@dtypes
@pytest.mark.parametrize("op", [tg.max, tg.min], ids=_name)
@given(data=st.data())
def test_max_and_min_without_ties_over_every_axis_choice(op, dtype, data):
    # All values pairwise 0.05 apart: no ties along any axis, so max/min are smooth.
    x = data.draw(tst.float_arrays(dtype=dtype, min_gap=KINK_MARGIN))
    axis, keepdims = data.draw(tst.axis_and_keepdims(x.shape))
    check_grads(lambda x: op(x, axis=axis, keepdims=keepdims), (x,), order=2)


@covers("softmax", "log_softmax")
@dtypes
@pytest.mark.parametrize("op", [tg.softmax, tg.log_softmax], ids=_name)
@given(data=st.data())
def test_softmax_family_along_any_axis(op, dtype, data):
    x = data.draw(tst.float_arrays(tst.shapes(min_dims=1), dtype=dtype))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check_grads(lambda x: op(x, axis=axis), (x,), order=2)


@covers("cross_entropy")
@dtypes
@given(data=st.data())
def test_cross_entropy_with_class_indices(dtype, data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 5))
    logits = data.draw(tst.float_arrays((n, c), dtype=dtype, min_value=-3.0, max_value=3.0))
    labels = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, c - 1)))
    check_grads(lambda z: nn.cross_entropy(z, labels), (logits,), order=2)


@covers("cross_entropy")
@dtypes
@given(data=st.data())
def test_cross_entropy_with_probability_labels_in_both_arguments(dtype, data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 5))
    logits = data.draw(tst.float_arrays((n, c), dtype=dtype, min_value=-3.0, max_value=3.0))
    scores = data.draw(tst.float_arrays((n, c), dtype=np.float64))
    probabilities = (np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)).astype(dtype)
    check_grads(nn.cross_entropy, (logits, probabilities), order=2)


# --- shape ops ------------------------------------------------------------------------


@covers("reshape")
@dtypes
@given(data=st.data())
def test_reshape_to_any_shape_of_the_same_size(dtype, data):
    x = data.draw(tst.float_arrays(dtype=dtype))
    target = data.draw(tst.reshape_targets(x.shape))
    check_grads(lambda x: tg.reshape(x, shape=target), (x,), order=2)


@covers("transpose")
@dtypes
@given(data=st.data())
def test_transpose_by_any_permutation_with_axes_counted_from_either_end(dtype, data):
    x = data.draw(tst.float_arrays(dtype=dtype))
    permutation = data.draw(st.permutations(range(x.ndim)))
    from_end = data.draw(st.lists(st.booleans(), min_size=x.ndim, max_size=x.ndim))
    axes = tuple(a - x.ndim if flip else a for a, flip in zip(permutation, from_end, strict=True))
    check_grads(lambda x: tg.transpose(x, axes=axes), (x,), order=2)
    check_grads(tg.transpose, (x,), order=2)  # axes=None reverses them


@covers("broadcast_to")
@dtypes
@given(data=st.data())
def test_broadcast_to_any_compatible_shape(dtype, data):
    shapes = data.draw(tst.broadcastable_shapes(2))
    x = data.draw(tst.float_arrays(shapes.input_shapes[0], dtype=dtype))
    check_grads(lambda x: tg.broadcast_to(x, shape=shapes.result_shape), (x,), order=2)


# --- indexing -------------------------------------------------------------------------


@covers("getitem", "scatter_add")
@dtypes
@given(data=st.data())
def test_basic_indexing_and_its_transpose(dtype, data):
    x = data.draw(tst.float_arrays(dtype=dtype))
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True))
    # Second order differentiates getitem's VJP, scatter_add, and scatter_add's VJP.
    check_grads(lambda x: x[index], (x,), order=2)


@covers("getitem", "scatter_add")
@dtypes
@given(data=st.data())
def test_integer_array_indexing_accumulates_repeated_indices(dtype, data):
    x = data.draw(tst.float_arrays(tst.shapes(min_dims=1), dtype=dtype))
    index = data.draw(hnp.integer_array_indices(x.shape, result_shape=tst.shapes(max_dims=2)))
    check_grads(lambda x: x[index], (x,), order=2)


@covers("scatter_add")
@dtypes
@given(data=st.data())
def test_scatter_add_of_any_index(dtype, data):
    shape = data.draw(tst.shapes(min_dims=1))
    index = data.draw(hnp.integer_array_indices(shape, result_shape=tst.shapes(max_dims=2)))
    g = data.draw(tst.float_arrays(np.zeros(shape)[index].shape, dtype=dtype))
    check_grads(lambda g: tg.scatter_add(g, index=index, shape=shape), (g,), order=2)


# --- no gradient ----------------------------------------------------------------------


@covers("stop_gradient")
@given(data=st.data())
def test_stop_gradient_differentiates_as_a_frozen_constant(data):
    x, y = data.draw(tst.broadcastable_arrays(2))
    frozen = x.copy()
    engine = tg.grad(lambda x: tg.sum(tg.stop_gradient(x) * x * y))(x)
    reference = numerical_grad(lambda x: tg.sum(frozen * x * y), (x,))[0]
    tolerance = default_tolerance(np.float64)  # float64 finite differences, as in check_grads
    np.testing.assert_allclose(engine, reference, rtol=tolerance, atol=tolerance)


# --- checked through the table of NumPy-function cases ----------------------------------------

# These implement NumPy functions whose derivatives tests/test_numpy_coverage.py checks, to
# order 2 in float64 and float32, over the inputs of tests/cases_linalg.py. The cofactor
# matrix is det's VJP: its own VJP is det's second derivative.
covers(
    "einsum", "inv", "det", "cofactor", "slogdet", "solve", "cholesky", "eigh", "svd", "pinv",
    "norm",
)  # fmt: skip


# --- the suite covers the whole op table ---------------------------------------------------


def _covered_by_numpy_cases():
    """Ops checked by tests/test_numpy_coverage.py's properties: those a case's NumPy function
    runs (a function wrapping a primitive carries the primitive's name: maximum, fmax)."""
    ops = [NUMPY_OPS[case.function] for case in all_cases() if case.function in NUMPY_OPS]
    return {op.name if isinstance(op, Primitive) else op.__name__ for op in ops}


def test_every_primitive_has_a_derivative_property():
    primitives = {
        value.name
        for module in OP_MODULES
        for value in vars(module).values()
        if isinstance(value, Primitive)
    }
    assert primitives, "found no primitives: the op table moved?"
    untested = sorted(primitives - COVERED - _covered_by_numpy_cases())
    assert not untested, f"primitives without a derivative property: {untested}"
