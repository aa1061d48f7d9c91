"""Specification of products and linear algebra beyond the case table (tests/cases_linalg.py).

The case table checks every function's derivatives (orders 1 and 2, float64 and float32)
and its value through each spelling. Here: where the functions are reachable, what they
return, how they fail (as NumPy does, or naming the problem), and their behaviour at the
edges the table keeps away from (singular matrices, repeated eigenvalues, zero vectors).
"""

import re
import warnings

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np.testing import check_grads

LinAlgError = np.linalg.LinAlgError
rng = np.random.default_rng(0)

A3 = np.array([[2.0, 0.5, -0.3], [0.1, 1.5, 0.4], [-0.2, 0.3, 1.8]])
SPD3 = A3 @ A3.T + np.eye(3)
SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


def matrix_transpose(x):
    return np.transpose(x, (*range(np.ndim(x) - 2), np.ndim(x) - 1, np.ndim(x) - 2))


PRODUCTS = ["dot", "matmul", "einsum", "tensordot", "inner", "outer", "vdot", "kron", "cross"]
LINALG = ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd", "pinv", "norm"]


# --- where they live ---------------------------------------------------------------------------


def test_products_are_top_level_and_linear_algebra_lives_in_tg_linalg_as_in_numpy():
    for name in PRODUCTS:
        assert callable(getattr(tg, name)), name
        assert callable(getattr(np, name)), name
    for name in LINALG:
        assert callable(getattr(tg.linalg, name)), name
        assert not hasattr(tg, name), f"tg.{name}: NumPy has no np.{name}"


def test_the_one_product_that_is_an_ndarray_method_is_a_tensor_method_too():
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    np.testing.assert_array_equal(tg.Tensor(a).dot(b).data, a.dot(b))
    check_grads(lambda a, b: a.dot(b), (a, b), order=2)


def test_factorizations_return_plain_tuples_that_transforms_carry():
    # NumPy's named tuples (EighResult, SVDResult, SlogdetResult) are leaves of a pytree.
    for f in (np.linalg.eigh, np.linalg.svd, np.linalg.slogdet):
        out, _ = tg.vjp(lambda a, f=f: f(a), SPD3)
        assert type(out) is tuple, f.__name__
    on_arrays = tg.linalg.eigh(SPD3)  # plain arrays in: NumPy's own result
    assert on_arrays.eigenvalues.shape == (3,)


def test_slogdets_sign_is_a_constant_and_only_logabsdet_carries_a_gradient():
    def f(a):
        sign, logabsdet = np.linalg.slogdet(a)
        assert type(sign) is not tg.Tensor
        return sign * logabsdet

    np.testing.assert_allclose(tg.grad(f)(-A3), -np.linalg.inv(-A3).T, rtol=1e-12)


# --- failures, as NumPy's or naming the problem --------------------------------------------------


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "cholesky", "eigh"])
def test_a_non_square_matrix_is_refused_as_numpy_refuses_it(name):
    numpy_f, tg_f = getattr(np.linalg, name), getattr(tg.linalg, name)
    with pytest.raises(LinAlgError):
        numpy_f(np.ones((2, 3)))
    with pytest.raises(LinAlgError, match=rf"{name}: .*square.*\(2, 3\)"):
        tg.vjp(lambda a: numpy_f(a), np.ones((2, 3)))
    with pytest.raises(LinAlgError, match="at least two dimensions"):
        tg_f(tg.Tensor(np.ones(3)))


def test_singular_matrices_behave_as_in_numpy():
    for f in (np.linalg.inv, lambda a: np.linalg.solve(a, np.ones(2))):
        with pytest.raises(LinAlgError, match="Singular matrix"):
            f(SINGULAR)
        with pytest.raises(LinAlgError, match="Singular matrix"):
            tg.vjp(f, SINGULAR)
    assert tg.vjp(np.linalg.det, SINGULAR)[0] == np.linalg.det(SINGULAR) == 0.0
    sign, logabsdet = tg.vjp(lambda a: np.linalg.slogdet(a), SINGULAR)[0]
    assert (sign, logabsdet) == tuple(np.linalg.slogdet(SINGULAR)) == (0.0, -np.inf)


def test_det_has_its_gradient_the_cofactor_matrix_at_singular_matrices_too():
    # d det / dA = adj(A).T, which is [[4, -2], [-2, 1]] for [[1, 2], [2, 4]].
    np.testing.assert_allclose(tg.grad(np.linalg.det)(SINGULAR), [[4, -2], [-2, 1]], atol=1e-12)
    singular_stack = np.stack([SINGULAR, np.outer([1.0, -2.0], [0.5, 3.0]), np.zeros((2, 2))])
    check_grads(np.linalg.det, (singular_stack,))


def test_the_gradient_of_logabsdet_at_a_singular_matrix_is_an_error_not_a_number():
    with pytest.raises(LinAlgError, match=r"slogdet: the gradient of log.*singular.*infinite"):
        tg.grad(lambda a: np.linalg.slogdet(a)[1])(SINGULAR)


def test_cholesky_of_a_matrix_that_is_not_positive_definite_raises_as_in_numpy():
    with pytest.raises(LinAlgError, match="not positive definite"):
        tg.vjp(np.linalg.cholesky, -SPD3)


def test_eigh_names_a_bad_uplo():
    with pytest.raises(ValueError, match="eigh: UPLO must be 'L' or 'U', got 'X'"):
        tg.vjp(lambda a: np.linalg.eigh(a, "X"), SPD3)


def test_svd_refuses_to_differentiate_the_arbitrary_columns_of_full_matrices():
    a = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match=r"svd: U of a 4x2 matrix with full_matrices=True"):
        tg.grad(lambda a: np.sum(np.linalg.svd(a)[0]))(a)
    with pytest.raises(ValueError, match=r"svd: Vh of a 2x4 matrix .*full_matrices=False"):
        tg.grad(lambda a: np.sum(np.linalg.svd(a)[2]))(a.T)
    # The singular values are differentiable either way; square matrices entirely.
    check_grads(lambda a: np.linalg.svd(a)[1], (a,), order=2)
    square = rng.standard_normal((3, 3))
    check_grads(lambda a: np.linalg.svd(a)[0][:, 0] * np.linalg.svd(a)[2][0, 0], (square,))


def test_svd_with_hermitian_true_is_refused_for_traced_matrices():
    with pytest.raises(TypeError, match=r"svd\(\.\.\., hermitian=True\) is not differentiable"):
        tg.grad(lambda a: np.sum(np.linalg.svd(a, hermitian=True)[1]))(SPD3)
    s = np.linalg.svd(tg.Tensor(SPD3), hermitian=True)[1]  # a constant: NumPy's answer
    np.testing.assert_allclose(s.data, np.linalg.svd(SPD3, hermitian=True)[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ord": "fro", "axis": 0}, ValueError, r"norm: invalid norm order 'fro' for vectors"),
        ({"ord": 3}, ValueError, r"norm: invalid norm order 3 for matrices"),
        ({"axis": (0, -2)}, ValueError, r"norm: duplicate axes given"),
        ({"axis": (0, 1, 2)}, ValueError, r"improper number of dimensions to norm: 3 axes"),
        ({"axis": "a"}, TypeError, r"'axis' must be None, an integer or a tuple"),
    ],
)
def test_norm_names_a_bad_order_or_axis(kwargs, error, message):
    x = rng.standard_normal((2, 3, 2))[..., 0]
    with pytest.raises(error):
        np.linalg.norm(x, **kwargs)  # NumPy refuses it too
    with pytest.raises(error, match=message):
        tg.vjp(lambda x: np.linalg.norm(x, **kwargs), x)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ij,jk", (2, 3)), r"subscripts 'ij,jk' are for 2 operands, got 1"),
        (("i-j", (2, 3)), r"'-' in 'i-j' is not a label"),
        (("ij->k", (2, 3)), r"output label 'k' is not among the operands' labels"),
        (("ij->ii", (2, 2)), r"output label 'i' appears more than once"),
        (("ij,jk->ik", (2, 3), (4, 2)), r"label 'j' has size 3 in one operand and 4 in operand 1"),
        (("ii->i", (2, 3)), r"label 'i' repeats in operand 0 with sizes 2 and 3"),
        (("...i->i", (2, 3)), r"the operands' ellipses stand for 1 axes but the output 'i'"),
        (("ijk", (2, 3)), r"operand 0 has 2 axes but its subscripts 'ijk' name 3"),
        (("i.j", (2, 3)), r"must write an ellipsis as '...'"),
        (("i->i->i", (2,)), r"more than one '->'"),
    ],
)
def test_einsum_names_what_is_wrong_with_its_subscripts(args, message):
    subscripts, *shapes = args
    operands = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError):
        np.einsum(subscripts, *operands)  # NumPy refuses each of these too
    with pytest.raises(ValueError, match=message):
        tg.vjp(lambda *xs: np.einsum(subscripts, *xs), *operands)


def test_einsum_sublists_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"subscript 52 in operand 0's is not within"):
        tg.einsum(np.ones(2), [52])


def test_products_name_misaligned_shapes():
    cases = [  # NumPy's own error, which is an IndexError for too many tensordot axes
        (lambda a, b: np.tensordot(a, b, axes=1), (2, 3), (4, 2), r"tensordot: shape-mismatch"),
        (lambda a, b: np.tensordot(a, b, axes=([0], [0, 1])), (2, 3), (2, 3), r"different numbers"),
        (lambda a, b: np.tensordot(a, b, axes=3), (2, 3), (3, 2), r"axes=3 exceeds", IndexError),
        (lambda a, b: np.inner(a, b), (2, 3), (2, 4), r"inner: .*last axes \(3 and 4\)"),
        (lambda a, b: np.vdot(a, b), (2, 3), (5,), r"vdot: the operands have 6 and 5 elements"),
        (lambda a, b: np.cross(a, b), (4,), (3,), r"cross: .* 4 and 3 components"),
    ]
    for f, a_shape, b_shape, message, *numpy_error in cases:
        with pytest.raises(numpy_error[0] if numpy_error else ValueError):
            f(np.ones(a_shape), np.ones(b_shape))
        with pytest.raises(ValueError, match=message):
            tg.vjp(f, np.ones(a_shape), np.ones(b_shape))


def test_einsum_through_numpy_refuses_out_and_a_dtype_change_and_accepts_the_same_dtype():
    x = rng.standard_normal(3)
    with pytest.raises(TypeError, match=re.escape("np.einsum(..., out=...)")):
        tg.grad(lambda z: np.sum(np.einsum("i->i", z, out=np.zeros(3))))(x)
    with pytest.raises(TypeError, match=r"np\.einsum\(\.\.\., dtype=float32\) would change"):
        tg.grad(lambda z: np.einsum("i,i", z, z, dtype=np.float32))(x)
    np.testing.assert_allclose(tg.grad(lambda z: np.einsum("i,i", z, z, dtype=x.dtype))(x), 2 * x)


# --- behaviour at the edges --------------------------------------------------------------------


def test_eigh_eigenvalues_are_differentiable_where_they_repeat():
    # At the identity every eigenvalue repeats: sum(w**2) = ||A||_F**2 (of the triangle read
    # mirrored) still has its gradient, as the eigenvectors' VJP never runs.
    grad = tg.grad(lambda a: np.sum(np.linalg.eigh(a)[0] ** 2))(np.eye(3))
    np.testing.assert_allclose(grad, 2 * np.eye(3), atol=1e-12)


def test_eigh_leading_eigenvector_is_differentiable_while_the_others_repeat():
    # eigenvalues 1, 1, 4: the vector of 4 is well defined; its gradient must be finite and
    # right (the cotangent vanishes on the repeated block).
    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    a = (q * [1.0, 1.0, 4.0]) @ q.T

    def leading_projector(a):
        v = np.linalg.eigh(a)[1][:, 2]
        return np.einsum("i,j->ij", v, v)

    check_grads(leading_projector, (a,))


def test_eigh_and_cholesky_read_only_the_triangle_numpy_reads():
    noisy = SPD3 + np.triu(rng.standard_normal((3, 3)), 1)  # noise NumPy never reads
    for f in (
        lambda a: np.linalg.eigh(a)[0],
        lambda a: np.linalg.eigh(np.transpose(a), "U")[0],
        np.linalg.cholesky,
        lambda a: np.linalg.cholesky(np.transpose(a), upper=True),
    ):
        _, vjp_fn = tg.vjp(f, noisy)
        (g,) = vjp_fn(np.ones_like(f(noisy)))
        assert np.all(np.triu(g, 1) == 0), g


def test_pinv_of_a_matrix_of_fixed_lower_rank_has_the_gradient_of_its_rank():
    # x.T @ x has rank 2 for x of shape (2, 4): perturbing x keeps it, so the gradient exists.
    for x in (rng.standard_normal((2, 4)), rng.standard_normal((3, 2, 4))):
        check_grads(lambda x: np.linalg.pinv(matrix_transpose(x) @ x), (x,), order=2)


def test_pinv_of_an_ill_conditioned_full_rank_matrix_differentiates_twice_like_inv():
    # pinv = inv here, so their Hessian-vector products must agree to inv's own accuracy,
    # about cond(A) * eps = 1e-10 for cond(A) = 6e5 (A = X.T X, cond(X) = 800); the projector
    # terms of pinv's VJP, zero in exact arithmetic, made them differ by 30% as rounding noise.
    u, _, vt = np.linalg.svd(rng.standard_normal((5, 5)))
    x = (u * np.geomspace(1.0, 1.0 / 800, 5)) @ vt
    v, c = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))

    def hvp_of(inverse):
        def first(y):
            _, vjp_fn = tg.vjp(lambda z: inverse(matrix_transpose(z) @ z), y)
            return np.sum(vjp_fn(v)[0] * c)

        return tg.grad(first)(x)

    by_inv, by_pinv = hvp_of(np.linalg.inv), hvp_of(np.linalg.pinv)
    np.testing.assert_allclose(by_pinv, by_inv, rtol=1e-7, atol=1e-7 * np.max(np.abs(by_inv)))


def test_pinv_of_a_stack_mixing_ranks_differentiates_each_matrix_by_its_own_rank():
    full = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    low = rng.standard_normal((3, 2)) @ rng.standard_normal((2, 3))  # rank 2 of 3
    stack = np.stack([full, low])
    cotangent = rng.standard_normal((2, 3, 3))
    (together,) = tg.vjp(np.linalg.pinv, stack)[1](cotangent)
    for k, matrix in enumerate((full, low)):
        (alone,) = tg.vjp(np.linalg.pinv, matrix)[1](cotangent[k])
        np.testing.assert_allclose(together[k], alone, rtol=1e-12, atol=1e-12)
    # low keeps its rank along a perturbation within rank-2 matrices only: check the
    # stack's derivatives where they exist, through a factored parametrization
    left, right = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    stacked = lambda a, b, c: np.linalg.pinv(np.stack([a, b @ c]))
    check_grads(stacked, (full, left, right), order=2)


def test_norms_of_a_zero_vector_have_the_zero_subgradient():
    zero = np.zeros(3)
    for ord in (None, 2, 3, 1, np.inf):
        np.testing.assert_array_equal(tg.grad(lambda x, o=ord: np.linalg.norm(x, o))(zero), zero)


def test_inf_norm_ties_share_the_gradient_like_max():
    x = np.array([1.0, -3.0, 3.0])
    np.testing.assert_allclose(tg.grad(lambda x: np.linalg.norm(x, np.inf))(x), [0, -0.5, 0.5])


def test_norm_of_order_zero_counts_and_has_no_gradient():
    x = np.array([1.0, 0.0, -2.0])
    value, grad = tg.value_and_grad(lambda x: np.linalg.norm(x, 0))(x)
    assert value == 2.0
    np.testing.assert_array_equal(grad, np.zeros(3))


def test_cross_of_2_vectors_warns_as_numpy_does_and_differentiates():
    a, b = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors are deprecated"):
        expected = np.cross(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        np.testing.assert_allclose(tg.cross(a, b), expected, rtol=1e-12)
        check_grads(np.cross, (a, b), order=2)
        check_grads(np.cross, (a, b[:, :2]), order=2)  # the z components alone


def test_einsum_takes_a_precomputed_contraction_path():
    a, b, c = (rng.standard_normal(s) for s in ((2, 3), (3, 4), (4, 2)))
    path = np.einsum_path("ij,jk,kl->il", a, b, c, optimize="optimal")[0]
    check_grads(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c, optimize=path), (a, b, c))
