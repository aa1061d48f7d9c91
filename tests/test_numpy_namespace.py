"""Specification of ``tinygrad_np.numpy``: NumPy's namespace, in which NumPy code that
builds arrays from lists of traced values differentiates unchanged.

Through the namespace, every construction NumPy cannot dispatch (``np.array`` and
``np.asarray`` of lists, ``np.r_``/``np.c_``, ``np.full``, NumPy functions and ufuncs given
lists) has first and second derivatives that match finite differences; on plain input
every function gives NumPy's own result, of NumPy's type and dtype; every public NumPy name
is there; and what cannot carry a gradient is refused by name.
"""

import importlib
import types

import hypothesis.extra.numpy as hnp
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_np as tg
import tinygrad_np.numpy as np
from tinygrad_np.testing import check_grads

rng = numpy.random.default_rng(14)
X3 = numpy.array([0.3, -0.7, 1.2])
M23 = rng.standard_normal((2, 3))


# --- the constructions NumPy cannot dispatch, differentiated through the namespace ----------

CONSTRUCTIONS = {
    "array of elements": lambda x: np.array([x[0], x[1] * 2.0, 3.0]) ** 2,
    "array, nested, mixed": lambda x: np.array([[x[0], 1.0], (numpy.float64(2.0), x[2])]) ** 3,
    "array of arrays and lists": lambda x: np.array([x, numpy.ones(3), [x[2], 4.0, x[0]]]),
    "array of a traced Tensor": lambda x: np.array(x) * x,
    "array, ndmin": lambda x: np.sum(np.array([x[0], x[1]], ndmin=3), axis=(0, 1)),
    "array of a tuple": lambda x: np.array((x[0], x[1])) * x[:2],
    "asarray of a list": lambda x: np.asarray([x, x**2]),
    "asarray of a traced Tensor": lambda x: np.asarray(x) ** 2,
    "asanyarray": lambda x: np.asanyarray([x[0], x[1]]),
    "ascontiguousarray of a scalar": lambda x: np.ascontiguousarray(x[0] ** 2),
    "asfortranarray": lambda x: np.asfortranarray([[x[0], x[1]], [x[2], 1.0]]),
    "full": lambda x: np.full((2, 3), x[0]) * M23,
    "full of a list": lambda x: np.full((2, 2), [x[0], x[1]]) ** 2,
    "r_": lambda x: np.r_[x, 0.0, x[:2]] ** 2,
    "r_ of numbers and a range": lambda x: np.r_[x[0], 1:3, x[1]] * 2.0,
    "c_": lambda x: np.c_[x, x**2],
    "mean of a list": lambda x: np.mean([x[0], x[1]]) ** 2,
    "var of a list": lambda x: np.var([x[0], x[1], x[2]]),
    "std of a list": lambda x: np.std([[x[0], x[1]], [x[2], 2.0]], axis=0),
    "linalg.norm of a list": lambda x: np.linalg.norm([x[0], x[1], 1.0]),
    "append to a list": lambda x: np.append([x[0], 1.0], [[x[1]]]) ** 2,
    "sum of a list of arrays": lambda x: np.sum([x, 2.0 * x], axis=0),
    "dot with a list": lambda x: np.dot(x[:2], [x[0], x[2]]),
    "where with a list": lambda x: np.where([True, False, True], [x[0], x[1], x[2]], 0.5),
    "einsum of a list": lambda x: np.einsum("i,i->", [x[0], x[1]], x[1:]),
    "ufunc of a list": lambda x: np.sin([x[0], x[1]]),
    "binary ufunc of lists": lambda x: np.multiply([x[0], x[1]], [x[2], 2.0]),
    "ufunc of a Tensor and a list": lambda x: np.add(x, [x[1], 1.0, x[0]]) ** 2,
    "concatenate of lists": lambda x: np.concatenate([[x[0], x[1]], [x[2]], x]),
    "stack of a list and a Tensor": lambda x: np.stack([[x[0], x[1], x[2]], x]),
}


@pytest.mark.parametrize("f", CONSTRUCTIONS.values(), ids=CONSTRUCTIONS.keys())
def test_constructions_differentiate_to_second_order(f):
    check_grads(f, (X3,), order=2)


def test_constructions_keep_float32():
    def f(x):
        return np.sum(np.array([x[0], x[1]]) * np.mean([x[1], x[2]]))

    g = tg.grad(f)(X3.astype(numpy.float32))
    assert g.dtype == numpy.float32


def test_dtype_converts_as_astype_does():
    def f(x):
        built = np.array([x[0], x[1]], dtype=numpy.float32)
        assert built.dtype == numpy.float32
        as_integers = np.array([x[0], x[1]], dtype=numpy.int64)  # truncation: a constant
        assert type(as_integers) is numpy.ndarray
        return np.sum(2.0 * built) + np.sum(as_integers)

    numpy.testing.assert_array_equal(tg.grad(f)(X3), [2.0, 2.0, 0.0])


def test_single_tensor_builds_itself_under_nested_transforms():
    # the Hessian of sum(array([x0, x1])**3): the namespace's array at the inner level
    hessian = tg.hessian(lambda x: np.sum(np.array([x[0], x[1]]) ** 3))(X3)
    numpy.testing.assert_allclose(hessian, numpy.diag([6 * X3[0], 6 * X3[1], 0.0]))


@given(
    hnp.arrays(numpy.float64, st.integers(1, 4), elements=st.floats(-2, 2)),
    st.lists(st.sampled_from(["traced", "number", "array"]), min_size=1, max_size=4),
)
def test_array_of_any_mix_is_numpys_array_of_the_values(x, kinds):
    # Each item is a traced element, a number or a plain 0-d array; the value built from
    # them is NumPy's, and the gradient reaches the traced elements only.
    def items(z):
        made = []
        for i, kind in enumerate(kinds):
            j = i % len(x)
            made.append(
                z[j] if kind == "traced" else float(j) if kind == "number" else numpy.array(1.5)
            )
        return made

    expected = numpy.array(items(x))
    value, gradient = tg.value_and_grad(lambda z: np.sum(np.array(items(z)) ** 2))(x)
    numpy.testing.assert_allclose(value, numpy.sum(expected**2))
    counts = numpy.zeros_like(x)
    for i, kind in enumerate(kinds):
        if kind == "traced":
            counts[i % len(x)] += 1
    numpy.testing.assert_allclose(gradient, 2 * x * counts)


# --- plain input: NumPy's own results -------------------------------------------------------

P = rng.standard_normal((3, 4))
Q = rng.standard_normal((4, 3))
N = numpy.array([[3, 1], [0, 2]])
PLAIN_CALLS = {
    "array of a list": lambda n: n.array([[1, 2], [3, 4]]),
    "array, dtype positional": lambda n: n.array([1, 2], n.float32),
    "array, ndmin": lambda n: n.array(P, ndmin=4),
    "array of a generator": lambda n: n.array(v for v in [1.0, 2.0]).shape,
    "asarray": lambda n: n.asarray(P),
    "asarray of a tuple": lambda n: n.asarray((1, 2.5)),
    "asanyarray": lambda n: n.asanyarray([1, 2]),
    "ascontiguousarray": lambda n: n.ascontiguousarray(P.T),
    "asfortranarray": lambda n: n.asfortranarray(P),
    "full": lambda n: n.full((2, 2), 7),
    "full, dtype": lambda n: n.full(3, 1.5, n.float32),
    "r_": lambda n: n.r_[1:4, 0, P[0]],
    "r_ matrix": lambda n: n.r_["r", [1, 2]],
    "c_": lambda n: n.c_[P[:, 0], P[:, 1]],
    "sin": lambda n: n.sin(P),
    "sin of a list": lambda n: n.sin([0.5, 1.0]),
    "add, out": lambda n: n.add(P, 1.0, out=numpy.empty_like(P)),
    "add.reduce": lambda n: n.add.reduce(P, axis=1),
    "maximum.accumulate": lambda n: n.maximum.accumulate(P, axis=0),
    "multiply.outer": lambda n: n.multiply.outer([1, 2], [3, 4]),
    "add.reduceat": lambda n: n.add.reduceat(n.arange(8), [0, 4, 5]),
    "equal": lambda n: n.equal(N, 2),
    "mean of a list": lambda n: n.mean([1, 2, 4]),
    "mean, float32": lambda n: n.mean(P.astype(n.float32), axis=0),
    "var": lambda n: n.var(P, ddof=1),
    "std of a list": lambda n: n.std([[1.0, 2.0], [3.0, 5.0]], axis=1),
    "sum, int": lambda n: n.sum(N),
    "matmul": lambda n: n.matmul(P, Q),
    "dot": lambda n: n.dot(P, Q),
    "einsum": lambda n: n.einsum("ij,jk->ik", P, Q),
    "concatenate": lambda n: n.concatenate([P, P], axis=1),
    "stack of lists": lambda n: n.stack([[1, 2], [3, 4]]),
    "append": lambda n: n.append([1, 2], [[3]]),
    "where": lambda n: n.where(P > 0, P, 0),
    "argsort": lambda n: n.argsort(P, axis=1),
    "sort": lambda n: n.sort(P),
    "cumsum": lambda n: n.cumsum(N),
    "clip": lambda n: n.clip(P, -0.5, 0.5),
    "linalg.norm": lambda n: n.linalg.norm(P),
    "linalg.norm of a list": lambda n: n.linalg.norm([3.0, 4.0]),
    "linalg.inv": lambda n: n.linalg.inv(P[:, :3]),
    "fft.fft": lambda n: n.fft.fft(P[0]),
    "emath.sqrt": lambda n: n.emath.sqrt(-P[0]),
    "polynomial": lambda n: n.polynomial.polynomial.polyval(2.0, [1.0, 2.0, 3.0]),
    "zeros": lambda n: n.zeros((2, 3), n.int32),
    "arange": lambda n: n.arange(5.0),
    "linspace": lambda n: n.linspace(0, 1, 5),
    "reshape": lambda n: n.reshape(P, (2, 6)),
    "transpose": lambda n: n.transpose(P, (1, 0)),
    "pad": lambda n: n.pad(N, [(1, 0), (0, 1)]),
    "take": lambda n: n.take(P, [0, 2], axis=1),
    "isclose": lambda n: n.isclose(P, P),
    "nonzero": lambda n: n.nonzero(N)[0],
    "shape of a list": lambda n: n.shape([[1, 2, 3]]),
    "random normal": lambda n: n.random.default_rng(3).normal(size=3),
    "block": lambda n: n.block([[N, N], [N, N]]),
    "percentile": lambda n: n.percentile(P, [25, 50]),
    "histogram": lambda n: n.histogram(P, bins=3)[0],
}


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.r_["r", ...]: np.matrix
@pytest.mark.parametrize("call", PLAIN_CALLS.values(), ids=PLAIN_CALLS.keys())
def test_plain_input_gives_numpys_result_type_and_dtype(call):
    ours, theirs = call(np), call(numpy)
    assert type(ours) is type(theirs)
    assert getattr(ours, "dtype", None) == getattr(theirs, "dtype", None)
    assert numpy.array_equal(ours, theirs) or numpy.shape(ours) == numpy.shape(theirs) == ()


def test_constant_tensors_convert_as_in_numpy():
    t = tg.Tensor(numpy.array([1.0, 2.0]))
    for built in (np.asarray(t), np.array([t, t]), np.mean([t, t], axis=0)):
        assert type(built) is numpy.ndarray
    numpy.testing.assert_array_equal(np.array([t, t]), [[1.0, 2.0], [1.0, 2.0]])


# --- NumPy's names ---------------------------------------------------------------------------


def test_every_public_numpy_name_is_reachable():
    missing = [name for name in dir(numpy) if not name.startswith("_") and not hasattr(np, name)]
    assert missing == []
    assert set(np.__all__) == set(numpy.__all__)


@pytest.mark.parametrize("submodule", ["linalg", "fft", "random", "emath", "polynomial", "lib"])
def test_submodules_have_numpys_names_and_import_by_their_spelling(submodule):
    ours = importlib.import_module(f"tinygrad_np.numpy.{submodule}")
    theirs = getattr(numpy, submodule)
    assert ours is getattr(np, submodule)
    public = [name for name in dir(theirs) if not name.startswith("_")]
    assert [name for name in public if not hasattr(ours, name)] == []


def test_classes_constants_and_functions_outside_dispatch_are_numpys_own():
    for name in ("ndarray", "float64", "dtype", "ufunc", "pi", "inf", "newaxis", "zeros", "arange"):
        assert getattr(np, name) is getattr(numpy, name)
    assert np.random.default_rng is numpy.random.default_rng
    assert np.linalg.LinAlgError is numpy.linalg.LinAlgError
    assert isinstance(numpy.zeros(2), np.ndarray)
    assert not isinstance(np.array([1.0]), tg.Tensor)


def test_ufuncs_keep_their_attributes():
    assert np.add.ufunc is numpy.add
    assert (np.add.nin, np.add.nout, np.add.identity) == (2, 1, 0)
    assert np.add.types == numpy.add.types
    assert np.sin.__name__ == "sin"
    assert np.maximum.identity is None


# --- what cannot carry a gradient is refused by name -----------------------------------------


def refusal(f, error=TypeError):
    with pytest.raises(error) as raised:
        tg.grad(lambda z: tg.sum(f(z)))(X3)
    return str(raised.value)


def test_object_and_string_arrays_of_traced_values_are_refused():
    assert "cannot carry" in refusal(lambda z: np.array([z[0], z[1]], dtype=object))
    assert "cannot carry" in refusal(lambda z: np.array([z[0], None]))
    assert "cannot carry" in refusal(lambda z: np.array([z[0], "a"]))


def test_out_is_refused_as_elsewhere():
    assert "out=" in refusal(lambda z: np.mean([z[0], z[1]], out=numpy.empty(())))
    assert "out=" in refusal(lambda z: np.add([z[0], z[1]], 1.0, out=numpy.empty(2)))


def test_copy_false_where_numpy_would_copy_is_numpys_value_error():
    with pytest.raises(ValueError, match="copy=False"):
        tg.grad(lambda z: tg.sum(np.array([z[0], z[1]], copy=False)))(X3)
    with pytest.raises(ValueError, match="copy=False"):
        tg.grad(lambda z: tg.sum(np.asarray(z, dtype=numpy.float32, copy=False)))(X3)
    g = tg.grad(lambda z: tg.sum(np.asarray(z, copy=False)))(X3)
    numpy.testing.assert_array_equal(g, numpy.ones(3))


def test_unknown_options_and_like_are_refused():
    assert "unexpected keyword" in refusal(lambda z: np.array([z[0]], colour="red"))
    assert "like=" in refusal(lambda z: np.array([z[0]], like=numpy.empty(1)))


def test_ragged_lists_are_numpys_error():
    message = refusal(lambda z: np.array([z, z[:2]]), ValueError)
    assert "inhomogeneous" in message


def test_generators_are_not_sequences_to_numpy_here_either():
    built = np.array(v for v in [1.0, 2.0])
    assert built.dtype == object and built.shape == ()


def test_functions_without_a_differentiable_version_still_name_themselves():
    message = refusal(lambda z: np.median([z[0], z[1], z[2]]))
    assert "np.median" in message
    message = refusal(lambda z: np.add.reduce([z[0], z[1]]))
    assert "np.add.reduce" in message and "np.sum" in message


def test_submodule_namespaces_are_modules():
    assert isinstance(np.linalg, types.ModuleType)
    assert np.linalg.__name__ == "tinygrad_np.numpy.linalg"
    with pytest.raises(AttributeError, match="no attribute 'not_a_function'"):
        _ = np.linalg.not_a_function


# --- which lists are arrays is NumPy's dispatcher's answer -----------------------------------


def test_sequences_of_arrays_keep_their_items_as_the_arrays():
    # np.block takes nested lists of blocks: its Tensor blocks reach NumPy's dispatch (which
    # refuses np.block by name), rather than being built into one array of another shape
    assert "np.block" in refusal(lambda z: np.block([[z[0], z[1]], [z[2], 1.0]]))
    g = tg.grad(lambda z: np.sum(np.select([z > 0], [[z[0], z[1], z[2]]])))(X3)
    numpy.testing.assert_array_equal(g, [1.0, 0.0, 1.0])


def test_lists_numpy_does_not_take_as_arrays_are_left_to_numpy():
    # a shape is not an array: its traced element meets NumPy's conversion, as without
    # the namespace
    assert "__index__" in refusal(lambda z: np.reshape(z, [z[0], 3]))
