"""Specification of building arrays from traced values and cutting them into pieces.

The coverage table (tests/cases_construction.py) checks every function's derivatives over
drawn shapes; this file pins what the table cannot say: what NumPy's own ``np.array``,
``np.asarray``, ``np.full`` and ``np.r_``/``np.c_`` do with a traced Tensor (a TypeError
naming the spelling that works, never a silent constant), ``tg.array`` of nested lists
mixing Tensors, arrays and numbers, joining lists that mix Tensors with plain arrays
through NumPy's spelling, ``tg.r_``/``tg.c_``, and the errors.
"""

import re

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np.testing import check_grads

rng = np.random.default_rng(14)
A32, C32, V10 = rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), rng.standard_normal(10)


def refusal(f, x=None):
    """The TypeError ``f`` raises on a traced Tensor inside ``tg.grad``."""
    x = np.array([0.5, 1.5]) if x is None else x
    with pytest.raises(TypeError) as error:
        tg.grad(lambda z: tg.sum(f(z)))(x)
    return str(error.value)


# --- NumPy's constructors cannot return a Tensor: they say so, and what to write ---------


@pytest.mark.parametrize(
    "f",
    [
        lambda z: np.array([z[0], z[1]]),
        lambda z: np.array([z, z]),
        lambda z: np.asarray(z),
        lambda z: np.array(z),
        lambda z: np.full((2, 2), z[0]),
        lambda z: np.r_[z, z],
        lambda z: np.c_[z, z],
    ],
    ids=["array of elements", "array of arrays", "asarray", "array", "full", "r_", "c_"],
)
def test_numpys_constructors_refuse_traced_values_and_name_the_tg_spelling(f):
    message = refusal(f)
    assert "would drop its gradient" in message
    for spelling in ("tg.array", "np.stack", "tg.full", "tg.r_"):
        assert spelling in message


def test_numpys_array_with_like_names_tg_array():
    message = refusal(lambda z: np.array([z[0], z[1]], like=z))
    assert message == "np.array is not differentiable in tinygrad_np yet; use tg.array, or np.stack"


def test_constant_tensors_still_convert_to_arrays():
    t = tg.Tensor(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(np.array([t, t]), [[1.0, 2.0], [1.0, 2.0]])


# --- tg.array: nested lists of Tensors, arrays and numbers ------------------------------


@pytest.mark.parametrize(
    ("f", "x"),
    [
        (lambda x: tg.array([x, x * 1.0, x + 2.5]), 3.0),
        (lambda x: tg.array([[x, x * 1.0, x + 2.5], [x**2, x, x / 2.0]]), 3.0),
        (lambda x: tg.array([x, x * 1.0, x + 2.5]) * 2, 3.0),
        (lambda x: tg.array(x), 3.0),
        (lambda x: tg.array([x, x]), A32),
        (lambda x: tg.array([[2 * x, x + 1], [x, x]]), A32),
        (lambda x: tg.array([(x[0], 1.0), [np.float64(2.0), x[1]]]), np.array([0.3, -0.7])),
        (lambda x: tg.array([x[:2], np.ones(2), [x[2], 4.0]]), np.array([0.3, -0.7, 1.1])),
        (lambda x: tg.max(tg.array([[x, x], [x, 0.5]]), axis=1), 1.0),
    ],
    ids=[
        "1-d of scalars",
        "2-d of scalars",
        "fan-out",
        "scalar",
        "of arrays",
        "2-d of arrays",
        "tuples and numbers",
        "arrays, lists and numbers",
        "max of ties",
    ],
)
def test_array_of_nested_sequences_has_first_and_second_derivatives(f, x):
    check_grads(f, (x,), order=2)


def test_array_gives_numpys_values_shape_and_dtype():
    x32 = np.array([0.5, -1.5], np.float32)
    out, _ = tg.vjp(lambda x: tg.array([[x[0], 2.0], [x[1], 3.0]]), x32)
    expected = np.array([[x32[0], 2.0], [x32[1], 3.0]])
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    out, _ = tg.vjp(lambda x: tg.array([x, x]), x32)
    assert out.dtype == np.float32


def test_array_dtype_and_ndmin():
    x = np.array([0.25, -1.75])
    out, vjp_fn = tg.vjp(lambda x: tg.array([x, x], dtype=np.float32, ndmin=4), x)
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32
    (g,) = vjp_fn(np.ones((1, 1, 2, 2), np.float32))
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, [2.0, 2.0])
    as_int = tg.grad(lambda x: tg.sum(x * tg.array([x, x], dtype=np.int64)[0]))(x)
    np.testing.assert_array_equal(as_int, x.astype(np.int64))  # the int array is a constant


def test_array_and_asarray_of_plain_values_are_numpys():
    for built in (tg.array([[1, 2], [3, 4]], dtype=np.float32), tg.asarray([[1.0, 2.0]])):
        assert type(built) is np.ndarray
    np.testing.assert_array_equal(tg.array([1, 2], ndmin=2), np.array([1, 2], ndmin=2))
    x = np.ones(3)
    assert tg.asarray(x) is x


def test_asarray_of_a_tensor_is_the_tensor():
    def f(x):
        assert tg.asarray(x) is x
        return tg.sum(tg.asarray(x, dtype=np.float32))

    assert tg.grad(f)(np.ones(2)).dtype == np.float64


def test_array_of_ragged_lists_is_numpys_error():
    with pytest.raises(ValueError, match="inhomogeneous"):
        tg.grad(lambda x: tg.sum(tg.array([x, x[:1]])))(np.ones(2))


# --- joining lists that mix Tensors, arrays and numbers, through NumPy's spelling -------


@pytest.mark.parametrize(
    ("f", "args"),
    [
        (lambda x: np.concatenate((A32, x)), (C32,)),
        (lambda x: np.concatenate((C32, x, C32), axis=1), (A32,)),
        (lambda x: np.concatenate((C32, x, C32), 1), (A32,)),
        (lambda x: np.concatenate([x, [[1.0, 2.0]], np.zeros((1, 2))]), (A32,)),
        (lambda x: np.concatenate([x, np.arange(4)], axis=None), (A32,)),
        (lambda x, y: np.stack([x, np.ones((3, 2)), y], axis=-1), (A32, C32)),
        (lambda x: np.stack(x, axis=1), (A32,)),
        (lambda x: np.vstack((np.ones(2), x)), (A32,)),
        (lambda x: np.hstack([x, np.ones((3, 1))]), (A32,)),
        (lambda x: np.dstack([x, np.ones((3, 2))]), (A32,)),
        (lambda x: np.column_stack([x[:, 0], np.ones(3), x]), (A32,)),
        (lambda x: np.append(x, np.ones(2)), (A32,)),
        (lambda x: np.append(np.ones((1, 2)), x, axis=0), (A32,)),
        (lambda a, b: np.append(a, b), ([1.0, 2.0, 3.0], 4.0)),
        (lambda x: np.split(x, 2)[0], (V10,)),
    ],
    ids=[
        "concatenate array first",
        "concatenate axis keyword",
        "concatenate axis by position",
        "concatenate list and array",
        "concatenate flattened with integers",
        "stack",
        "stack of a Tensor's rows",
        "vstack",
        "hstack",
        "dstack",
        "column_stack",
        "append flattened",
        "append along an axis",
        "append to a list of Tensors",
        "one piece of a split",
    ],
)
def test_numpy_joins_of_mixed_lists_differentiate(f, args):
    check_grads(f, args, order=2)


def test_joins_of_mixed_lists_give_numpys_values_and_dtypes():
    x32 = np.arange(6, dtype=np.float32).reshape(3, 2)
    for join in (
        lambda x: np.concatenate([x, np.ones((1, 2), np.float32)]),
        lambda x: np.concatenate([x, np.ones((1, 2))]),  # float64 joins make float64
        lambda x: np.stack([x, x], axis=1),
        lambda x: np.vstack([x, [7.0, 8.0]]),
    ):
        out, _ = tg.vjp(join, x32)
        expected = join(x32)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out, expected)


def test_join_errors_are_numpys_or_clearer():
    cases = [
        (lambda x: np.stack([]), ValueError, "need at least one array to stack"),
        (lambda x: tg.concatenate([]), ValueError, "need at least one array to concatenate"),
        (lambda x: np.stack([x, x[:1]]), ValueError, r"same shape, got shapes \[\(1,\), \(2,\)\]"),
        (lambda x: np.concatenate([x, np.ones((2, 2))]), ValueError, "dimension"),
        (lambda x: tg.concatenate(y for y in [x]), TypeError, "as a sequence such as a list"),
        (lambda x: np.split(x, 3), ValueError, "use array_split"),
        (lambda x: np.array_split(x, 0), ValueError, "sections must be positive"),
        (lambda x: np.hsplit(x[0], 1), ValueError, "hsplit: needs an array of at least 1"),
        (lambda x: np.vsplit(x, 1), ValueError, "vsplit: needs an array of at least 2"),
        (lambda x: np.dsplit(np.stack([x, x]), 1), ValueError, "dsplit: needs an array of at"),
    ]
    for f, error, message in cases:
        with pytest.raises(error, match=message):
            tg.grad(lambda x, f=f: tg.sum(tg.array(f(x))))(np.array([0.5, 1.5]))


@pytest.mark.parametrize("join", [np.concatenate, np.stack, np.vstack, np.hstack])
def test_joins_follow_numpys_casting_rule(join):
    """``dtype``/``casting`` as NumPy checks them: each piece must cast to the result's dtype
    under the rule (np.row_stack passes both to vstack), else NumPy's TypeError."""
    x = np.array([[0.5, 1.5]])
    for casting in ("no", "equiv", "safe", "same_kind", "unsafe"):
        g = tg.grad(lambda x, rule=casting: np.sum(join([x, x], casting=rule) ** 2))(x)
        np.testing.assert_allclose(g, 4 * x)
    g32 = tg.grad(lambda x: np.sum(join([x, x], dtype=np.float32) ** 2))(x)
    assert g32.dtype == np.float64 and np.allclose(g32, 4 * x)
    with pytest.raises(TypeError, match="cannot cast array data from float64 to int64"):
        tg.grad(lambda x: np.sum(join([x, x], dtype=np.int64)))(x)
    with pytest.raises(TypeError, match="from float32 to float64 according to the rule 'no'"):
        tg.grad(lambda x: np.sum(join([x.astype(np.float32), x], casting="no")))(x)
    with pytest.raises(ValueError, match=r"casting must be one of .* \(got 'sideways'\)"):
        tg.grad(lambda x: np.sum(join([x], casting="sideways")))(x)
    as_int = tg.vjp(lambda x: join([x, x], dtype=np.int64, casting="unsafe"), x)[0]
    np.testing.assert_array_equal(as_int, join([x, x], dtype=np.int64, casting="unsafe"))


def test_split_gives_a_list_of_traced_pieces_with_numpys_values():
    x = np.arange(7.0)
    seen = []

    def f(x):
        pieces = np.array_split(x, [2, 5, 9])
        seen.append(pieces)
        return tg.sum(pieces[1] * pieces[1])

    g = tg.grad(f)(x)
    (pieces,) = seen
    assert isinstance(pieces, list) and all(p.traced for p in pieces)
    for got, want in zip(pieces, np.array_split(x, [2, 5, 9]), strict=True):
        np.testing.assert_array_equal(got.data, want)
    np.testing.assert_array_equal(g, [0, 0, 4, 6, 8, 0, 0])


# --- tg.r_ and tg.c_ -----------------------------------------------------------------------


R_CASES = [
    (lambda r_, c_, x: r_[x], (A32,)),
    (lambda r_, c_, x: r_[x, x], (A32,)),
    (lambda r_, c_, x: r_[x, C32], (A32,)),
    (lambda r_, c_, x: r_[x, C32, x], (A32,)),
    (lambda r_, c_, x: r_[x, V10, 1:10], (V10,)),
    (lambda r_, c_, x: r_[x, 2.5, 0:1:5j], (V10[:3],)),
    (lambda r_, c_, x: r_["0,2", x, x], (V10[:3],)),
    (lambda r_, c_, x: r_["0,2,0", x, x[0]], (V10[:3],)),
    (lambda r_, c_, x: r_["1,2,0", x, 2 * x], (V10[:3],)),
    (lambda r_, c_, x: r_["-1", x, x], (A32,)),
    (lambda r_, c_, x: c_[x, C32, x], (A32,)),
    (lambda r_, c_, x: c_[x[:, 0], C32, 1:4], (A32,)),
    (lambda r_, c_, x: c_[x[0], x[1]], (A32,)),
]
R_IDS = [
    "r_ one",
    "r_ twice",
    "r_ with constant",
    "r_ mixed",
    "r_ slice",
    "r_ number and linspace",
    "r_ ndmin 2",
    "r_ trans1d 0",
    "r_ axis 1 trans1d 0",
    "r_ axis -1",
    "c_",
    "c_ column and range",
    "c_ of rows",
]


@pytest.mark.parametrize(("f", "args"), R_CASES, ids=R_IDS)
def test_r_and_c_differentiate_with_numpys_values(f, args):
    check_grads(lambda x: f(tg.r_, tg.c_, x), args, order=2)
    expected = f(np.r_, np.c_, *args)
    out, _ = tg.vjp(lambda x: f(tg.r_, tg.c_, x), *args)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


def test_r_keeps_float32_against_python_numbers():
    out, _ = tg.vjp(lambda x: tg.r_[x, 1.0], np.ones(2, np.float32))
    assert out.dtype == np.float32


def test_r_and_c_refuse_matrix_syntax_and_misplaced_directives():
    x = tg.Tensor(np.ones(2))
    with pytest.raises(TypeError, match=r"np\.matrix"):
        tg.r_["r", x, x]
    with pytest.raises(TypeError, match=r"np\.matrix"):
        tg.r_["1, 2; 3, 4"]
    with pytest.raises(ValueError, match="special directives must be the first entry"):
        tg.r_[x, "0"]
    with pytest.raises(ValueError, match=re.escape("unknown special directive 'a,b'")):
        tg.r_["a,b", x]


# --- full and linspace ---------------------------------------------------------------------


def test_full_of_a_traced_value():
    check_grads(lambda v: tg.full((2, 3), v), (1.5,), order=2)
    check_grads(lambda v: tg.full([4, 3], v * v), (np.array([1.0, 2.0, 3.0]),), order=2)
    g = tg.grad(lambda v: tg.sum(tg.full(5, v, dtype=np.float32)))(np.float64(2.0))
    assert g == 5.0
    plain = tg.full((2, 2), 1.5)
    assert type(plain) is np.ndarray and plain.flags.writeable


@pytest.mark.parametrize("num", [0, 1, 5])
@pytest.mark.parametrize("endpoints", [(1.2, 3.4), (1.2, -3.4), (1.2, 1.2)])
def test_linspace_between_traced_endpoints(num, endpoints):
    check_grads(lambda a, b: np.linspace(a, b, num), endpoints, order=2)
    out, _ = tg.vjp(lambda a, b: np.linspace(a, b, num), *endpoints)
    np.testing.assert_allclose(out, np.linspace(*endpoints, num), rtol=1e-15)


def test_linspace_with_one_traced_endpoint_step_and_dtypes():
    check_grads(lambda b: np.linspace(0.5, b, 4, retstep=True), (np.array([1.0, 2.0]),), order=2)
    out, _ = tg.vjp(lambda b: np.linspace(np.float32(0), b, 3), np.float32(2.0))
    assert out.dtype == np.float32
    samples = tg.grad(lambda b: tg.sum(b * np.linspace(0.0, b, 4, dtype=np.int64)))(3.5)
    assert samples == np.sum(np.linspace(0.0, 3.5, 4, dtype=np.int64))  # a constant
    with pytest.raises(ValueError, match="must be non-negative"):
        tg.grad(lambda b: tg.sum(np.linspace(0.0, b, -1)))(1.0)


@pytest.mark.parametrize(
    "f",
    [
        lambda z: tg.array([z[0], "a"]),
        lambda z: tg.array([z[0], None]),
        lambda z: tg.array([z[0], z[1]], dtype=object),
        lambda z: tg.astype(z, dtype=object),
        lambda z: tg.astype(z, dtype="U8"),
    ],
    ids=["string", "None", "dtype object", "astype object", "astype string"],
)
def test_arrays_that_cannot_carry_a_gradient_are_refused(f):
    assert "cannot carry" in refusal(f)
