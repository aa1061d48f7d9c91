"""Specification of rearranging ops and ``np.gradient`` beyond the coverage table.

The table (tests/cases_rearranging.py, tests/cases_differences.py) checks derivatives
over drawn shapes; this file pins the choices: the gradient of ``sort`` and ``partition``
at ties, ``partition``'s arrangement being NumPy's own, which ``pad`` modes are
differentiable, and the errors.
"""

import re

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np.testing import check_grads

rng = np.random.default_rng(3)
X = rng.standard_normal((3, 4))


def test_sort_at_ties_sends_the_gradient_along_a_stable_sort():
    x = np.array([1.0, 1.0, 0.0, 1.0])
    weights = np.array([10.0, 20.0, 30.0, 40.0])
    g = tg.grad(lambda x: tg.sum(np.sort(x) * weights))(x)
    # Sorted: x[2], then the tied x[0], x[1], x[3] in their order.
    np.testing.assert_array_equal(g, [20.0, 30.0, 10.0, 40.0])


def test_sort_sorts_nans_last_and_refuses_fields():
    x = np.array([2.0, np.nan, -1.0])
    out, vjp_fn = tg.vjp(lambda x: np.sort(x), x)
    np.testing.assert_array_equal(out, np.sort(x))
    np.testing.assert_array_equal(vjp_fn(np.array([1.0, 2.0, 3.0]))[0], [2.0, 3.0, 1.0])
    with pytest.raises(ValueError, match="a Tensor has no fields"):
        tg.grad(lambda x: tg.sum(np.sort(x, order="a")))(x)


def test_partition_arranges_exactly_as_numpy_and_permutes_the_gradient():
    x = rng.permutation(20).astype(np.float64)
    for kth in (0, 7, [3, 11], -1):
        out, vjp_fn = tg.vjp(lambda x, kth=kth: np.partition(x, kth), x)
        arranged = np.partition(x, kth)
        np.testing.assert_array_equal(out, arranged)
        cotangent = np.arange(20.0)
        (g,) = vjp_fn(cotangent)
        # The element that lands at position j gets cotangent[j].
        source = np.argsort(x)[np.searchsorted(np.sort(x), arranged)]
        np.testing.assert_array_equal(x[source], arranged)
        np.testing.assert_array_equal(g[source], cotangent)
    check_grads(lambda x: np.partition(x, 2, axis=0), (X,), order=2)


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric", "wrap"])
def test_padding_with_copies_of_elements_adds_their_cotangents(mode):
    check_grads(lambda x: np.pad(x, ((2, 1), (3, 5)), mode=mode), (X,), order=2)
    g = tg.grad(lambda x: tg.sum(np.pad(x, 2, mode=mode)))(X)
    assert g.sum() == np.pad(X, 2, mode=mode).size  # every output is one input element


def test_padding_that_computes_new_values_is_refused_for_traced_arrays():
    for mode, options in [
        ("mean", {}),
        ("linear_ramp", {}),
        ("maximum", {}),
        ("reflect", {"reflect_type": "odd"}),
        (lambda vector, width, axis, kwargs: None, {}),
    ]:
        with pytest.raises(TypeError, match=r"pad: mode=.* is not differentiable"):
            tg.grad(lambda x, mode=mode, options=options: tg.sum(np.pad(x, 1, mode, **options)))(X)
    constant = tg.Tensor(X)
    padded = np.pad(constant, 1, mode="mean")
    assert isinstance(padded, tg.Tensor) and not padded.traced
    np.testing.assert_array_equal(padded.data, np.pad(X, 1, mode="mean"))


def test_constant_padding_errors():
    with pytest.raises(ValueError, match="unsupported keyword arguments for mode 'constant'"):
        tg.grad(lambda x: tg.sum(np.pad(x, 1, end_values=2)))(X)
    with pytest.raises(TypeError, match="constant_values must be numbers"):
        tg.grad(lambda x: tg.sum(np.pad(x, 1, constant_values=x[0, 0])))(X)
    with pytest.raises(ValueError, match="pad_width must not be negative"):
        tg.grad(lambda x: tg.sum(np.pad(x, -1)))(X)
    with pytest.raises(TypeError, match="pad_width must be integers"):
        tg.grad(lambda x: tg.sum(np.pad(x, 1.5)))(X)
    with pytest.raises(ValueError, match=r"pad_width of shape \(3, 2\)"):
        tg.grad(lambda x: tg.sum(np.pad(x, [(1, 1)] * 3)))(X)


def test_plain_arrays_get_numpys_results():
    v = np.arange(3.0)
    for mine, numpys in [
        (tg.diag(v, k=1), np.diag(v, k=1)),
        (tg.tril(X, k=-1), np.tril(X, k=-1)),
        (tg.pad(X, pad_width=1, mode="reflect"), np.pad(X, 1, mode="reflect")),
        (tg.sort(X, axis=0), np.sort(X, axis=0)),
        (tg.repeat(v, repeats=[1, 0, 2]), np.repeat(v, [1, 0, 2])),
        (tg.tile(v, reps=(2, 2)), np.tile(v, (2, 2))),
        (tg.diag([1.0, 2.0]), np.diag([1.0, 2.0])),  # lists, as NumPy takes them
        (tg.diagonal([[1, 2], [3, 4]]), np.diagonal([[1, 2], [3, 4]])),
        (tg.pad([1, 2], pad_width=1, mode="wrap"), np.pad([1, 2], 1, mode="wrap")),
        (tg.gradient([1, 2, 4]), np.gradient([1, 2, 4])),
        (tg.array_split([1.0, 2.0, 3.0], indices_or_sections=2)[1], [3.0]),
    ]:
        assert type(mine) is np.ndarray
        np.testing.assert_array_equal(mine, numpys)


@pytest.mark.parametrize(
    ("f", "error", "message"),
    [
        (lambda x: np.fliplr(x[0]), ValueError, "fliplr: needs at least 2 dimensions"),
        (lambda x: np.flipud(x[0, 0]), ValueError, "flipud: needs at least 1 dimension"),
        (lambda x: np.rot90(x, axes=(0,)), ValueError, "axes must name exactly 2 axes"),
        (lambda x: np.rot90(x, axes=(1, -1)), ValueError, "two axes must be different"),
        (lambda x: np.rot90(x, axes=(0, 2)), ValueError, "out of range for an array of 2"),
        (lambda x: np.repeat(x, -1), ValueError, "negative"),
        (lambda x: np.repeat(x, [1, 2], axis=0), ValueError, "could not be broadcast"),
        (lambda x: np.diag(x[None]), ValueError, "must be 1-d or 2-d, got shape (1, 3, 4)"),
        (lambda x: np.diagonal(x, axis1=1, axis2=-1), ValueError, "axis1 and axis2 must differ"),
        (lambda x: np.diagonal(x[0]), ValueError, "needs at least 2 dimensions"),
        (lambda x: np.tril(x[0, 0]), ValueError, "tril: needs at least 1 dimension"),
        (lambda x: np.partition(x, 4), ValueError, "out of bounds"),
        (lambda x: np.sort(x, axis=2), np.exceptions.AxisError, "axis 2 is out of bounds"),
    ],
)
def test_rearranging_errors_name_the_problem(f, error, message):
    with pytest.raises(error, match=re.escape(message)):
        tg.grad(lambda x: tg.sum(f(x)))(X)


# --- np.gradient ---------------------------------------------------------------------------


def test_gradient_matches_numpy_for_every_spacing_form():
    coordinates = np.array([0.0, 0.5, 1.75, 2.0])
    uniform = np.array([0.0, 0.5, 1.0, 1.5])  # equal steps: NumPy's uniform formulas
    for args, kwargs in [
        ((), {}),
        ((0.5,), {"edge_order": 2}),
        ((2.0, coordinates), {}),
        ((np.arange(3), coordinates), {"edge_order": 2}),
        ((uniform,), {"axis": 1}),
        ((coordinates,), {"axis": -1, "edge_order": 2}),
    ]:
        out, _ = tg.vjp(lambda f, args=args, kwargs=kwargs: np.gradient(f, *args, **kwargs), X)
        expected = np.gradient(X, *args, **kwargs)
        for got, want in zip(tg.tree_leaves(out), tg.tree_leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_gradient_of_integers_is_float64_and_of_float32_float32():
    assert tg.gradient(np.arange(5) ** 2).dtype == np.float64
    np.testing.assert_array_equal(tg.gradient(np.arange(5) ** 2), np.gradient(np.arange(5) ** 2))
    out, _ = tg.vjp(lambda f: np.gradient(f, np.array([0.0, 1.0, 3.0])), np.ones(3, np.float32))
    assert out.dtype == np.float32


def test_gradient_is_differentiable_in_the_coordinates():
    f = np.array([1.0, 4.0, 2.0, 3.0])
    check_grads(
        lambda x: np.gradient(f, x, edge_order=2), (np.array([0.0, 0.4, 1.5, 2.0]),), order=2
    )


@pytest.mark.parametrize(
    ("f", "error", "message"),
    [
        (lambda x: np.gradient(x[:1]), ValueError, "axis 0 has 1 samples; edge_order=1 needs"),
        (lambda x: np.gradient(x[:2], edge_order=2), ValueError, "edge_order=2 needs at least 3"),
        (lambda x: np.gradient(x, edge_order=3), ValueError, "edge_order must be 1 or 2"),
        (lambda x: np.gradient(x, 1.0, 2.0, 3.0), TypeError, "3 spacings for 2 axes"),
        (lambda x: np.gradient(x, np.ones((2, 2)), 1.0), ValueError, "number or 1-d coordinates"),
        (lambda x: np.gradient(x, np.arange(4.0), 1.0), ValueError, "4 coordinates for axis 0"),
    ],
)
def test_gradient_errors_name_the_problem(f, error, message):
    with pytest.raises(error, match=re.escape(message)):
        tg.grad(lambda x: tg.sum(tg.array(f(x))))(X)
