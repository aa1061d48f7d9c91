"""Cases for tests/test_numpy_coverage.py: products and linear algebra (see tests/numpy_cases.py).

Inputs are conditioned for finite differences, and small (matrices of side 1 to 3, stacks
of at most 2 x 2 of them) so that second-order checks stay cheap:

* square matrices are ``D (I + E)`` with ``|E_ij| <= 1/4`` and ``D`` a diagonal of signs:
  ``||E||_2 <= 3/4``, so every singular value lies in [1/4, 7/4] (condition <= 7) and
  both signs of the determinant occur;
* symmetric matrices are ``Q diag(w) Q.T`` with ``Q`` orthogonal and the eigenvalues ``w``
  at least 0.5 apart (in [0.5, 3] for positive-definite ones), and general ones
  ``U diag(s) V.T`` with singular values in [0.5, 3.5] at least 0.25 apart: the
  ``1 / (w_j - w_i)`` terms of the eigenvector and singular-vector VJPs stay <= 2 (<= 1.2);
* where NumPy reads one triangle only (``eigh``, ``cholesky``, ``pinv(hermitian=True)``),
  the other holds noise, which must not matter;
* the vector norms' kinks are avoided: entries are at least 0.25 from 0 and, for the
  ``inf`` orders, the magnitudes at least 0.15 apart; for the matrix ``1`` and ``inf``
  orders, the column (row) sums of ``|x|`` differ by at least 0.2 per entry summed.

Eigenvectors and singular vectors have arbitrary signs, so their cases compare the
projectors ``v_k v_k.T`` and ``u_k vh_k`` (``outputs=``), which the math defines; the
torch and jax functions apply the same map, and read the same triangle NumPy reads.
float32 runs every case: at condition <= 7 and a depth of a few ops the float32 error
stays far below the default tolerance (see tinygrad_np.testing.default_tolerance).
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy_cases import OpCase

from tinygrad_np.testing import strategies as tst

STACKS = tst.shapes(max_dims=2, max_side=2)  # no stack, or up to 2 x 2 matrices
SIDES = st.integers(1, 3)


def _uniform(data, shape, low=-1.0, high=1.0):
    return data.draw(tst.float_arrays(tuple(shape), min_value=low, max_value=high))


def _signs(data, shape):
    return np.where(data.draw(hnp.arrays(np.bool_, tuple(shape))), -1.0, 1.0)


def _orthogonal(data, stack, n):
    """Orthogonal matrices: the Q of a QR factorization (an orthogonal Q even if singular)."""
    return np.linalg.qr(_uniform(data, (*stack, n, n)))[0]


def _spaced(data, shape, low, high, gap):
    return data.draw(tst.float_arrays(tuple(shape), min_value=low, max_value=high, min_gap=gap))


def well_conditioned(data, stack, n):
    """``D (I + E)``: singular values in [1/4, 7/4], determinants of both signs."""
    perturbation = _uniform(data, (*stack, n, n), -0.25, 0.25)
    return _signs(data, (*stack, n, 1)) * (np.eye(n) + perturbation)


def symmetric(data, stack, n, low=-3.0, high=3.0, gap=0.5):
    """``Q diag(w) Q.T`` with eigenvalues in [low, high], at least ``gap`` apart."""
    q = _orthogonal(data, stack, n)
    w = _spaced(data, (*stack, n), low, high, gap)
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def with_noise_outside(data, matrix, lower):
    """``matrix`` with noise in the strict triangle NumPy does not read."""
    n = matrix.shape[-1]
    unread = np.triu(np.ones((n, n)), 1) if lower else np.tril(np.ones((n, n)), -1)
    return matrix + unread * _uniform(data, matrix.shape)


def full_rank(data, stack, m, n):
    """``U diag(s) V.T`` with singular values in [0.5, 3.5], at least 0.25 apart."""
    k = min(m, n)
    u = _orthogonal(data, stack, m)[..., :k]
    v = _orthogonal(data, stack, n)[..., :k]
    s = _spaced(data, (*stack, k), 0.5, 3.5, 0.25)
    return (u * s[..., None, :]) @ np.swapaxes(v, -1, -2)


def _cast(dtype, *arrays):
    return tuple(np.asarray(a, dtype=dtype) for a in arrays)


# --- products ------------------------------------------------------------------------------


def draw_matmul(data, dtype):
    return data.draw(tst.matmul_arrays(dtype=dtype)), {}


def _shape_ending(data, ndim, last):
    shape = data.draw(tst.shapes(min_dims=ndim, max_dims=ndim, max_side=3))
    return (*shape[:-1], last) if ndim else ()


def draw_dot(data, dtype):
    """Every rank pair np.dot takes: 0-d scales, else the last axis of a meets the
    second-to-last (or only) axis of b."""
    k = data.draw(SIDES)
    a_shape = _shape_ending(data, data.draw(st.integers(0, 3)), k)
    b_ndim = data.draw(st.integers(0, 3))
    b_shape = data.draw(tst.shapes(min_dims=b_ndim, max_dims=b_ndim, max_side=3))
    if b_ndim == 1 and a_shape:
        b_shape = (k,)
    elif b_ndim >= 2 and a_shape:
        b_shape = (*b_shape[:-2], k, b_shape[-1])
    return _cast(dtype, _uniform(data, a_shape), _uniform(data, b_shape)), {}


def draw_vdot(data, dtype):
    a = _uniform(data, data.draw(tst.shapes(max_side=3)))
    b = _uniform(data, data.draw(tst.reshape_targets(a.shape, allow_infer=False)))
    return _cast(dtype, a, b), {}


def draw_inner(data, dtype):
    k = data.draw(SIDES)
    a_shape = _shape_ending(data, data.draw(st.integers(0, 3)), k)
    b_shape = _shape_ending(data, data.draw(st.integers(0 if a_shape else 1, 3)), k)
    if not a_shape:  # a 0-d operand scales any other
        b_shape = data.draw(tst.shapes(max_side=3))
    return _cast(dtype, _uniform(data, a_shape), _uniform(data, b_shape)), {}


def draw_two_any(data, dtype, max_dims=3, max_side=3):
    shapes = [data.draw(tst.shapes(max_dims=max_dims, max_side=max_side)) for _ in range(2)]
    return _cast(dtype, *(_uniform(data, s) for s in shapes)), {}


def draw_tensordot(data, dtype):
    """Contracted axes (0 to 2) placed anywhere in both operands, as an int or as a pair."""
    contracted = data.draw(tst.shapes(max_dims=2, max_side=3))
    free_a = data.draw(tst.shapes(max_dims=2, max_side=3))
    free_b = data.draw(tst.shapes(max_dims=2, max_side=3))
    n = len(contracted)
    if data.draw(st.booleans()):  # axes=N: a's last N against b's first N
        a_shape, b_shape, axes = (*free_a, *contracted), (*contracted, *free_b), n
    else:
        a_order = data.draw(st.permutations(range(len(free_a) + n)))
        b_order = data.draw(st.permutations(range(len(free_b) + n)))
        a_axes = [a_order.index(len(free_a) + i) for i in range(n)]
        b_axes = [b_order.index(i) for i in range(n)]
        a_sides = (*free_a, *contracted)
        b_sides = (*contracted, *free_b)
        a_shape = tuple(a_sides[i] for i in a_order)
        b_shape = tuple(b_sides[i] for i in b_order)
        # negative axes, and a bare int where one axis is contracted, are NumPy's too
        if data.draw(st.booleans()):
            a_axes = [i - len(a_shape) for i in a_axes]
        axes = (a_axes[0], b_axes[0]) if n == 1 and data.draw(st.booleans()) else (a_axes, b_axes)
    return _cast(dtype, _uniform(data, a_shape), _uniform(data, b_shape)), {"axes": axes}


def draw_kron(data, dtype):
    return draw_two_any(data, dtype, max_dims=2, max_side=2)


def draw_cross(data, dtype):
    """3-vectors along any axis of broadcastable stacks: separate axisa/axisb/axisc, or axis."""
    drawn = data.draw(tst.broadcastable_shapes(2, max_dims=2, max_side=2))
    if data.draw(st.booleans()):  # one axis for all three: the stacks get equal ranks
        nd = len(drawn.result_shape)
        batch_a, batch_b = ((1,) * (nd - len(s)) + s for s in drawn.input_shapes)
        axis = data.draw(st.integers(-nd - 1, nd))
        a_shape = _insert(batch_a, axis, 3)
        b_shape = _insert(batch_b, axis, 3)
        statics = {"axis": axis}
    else:
        batch_a, batch_b = drawn.input_shapes
        axisa = data.draw(st.integers(-len(batch_a) - 1, len(batch_a)))
        axisb = data.draw(st.integers(-len(batch_b) - 1, len(batch_b)))
        out_nd = len(drawn.result_shape) + 1
        axisc = data.draw(st.integers(-out_nd, out_nd - 1))
        a_shape, b_shape = _insert(batch_a, axisa, 3), _insert(batch_b, axisb, 3)
        statics = {"axisa": axisa, "axisb": axisb, "axisc": axisc}
    return _cast(dtype, _uniform(data, a_shape), _uniform(data, b_shape)), statics


def _insert(shape, axis, side):
    """``shape`` with an axis of ``side`` entries at position ``axis`` of the result."""
    position = axis if axis >= 0 else len(shape) + 1 + axis
    return (*shape[:position], side, *shape[position:])


@st.composite
def einsum_problems(draw):
    """Random einsum problems: 1 to 3 operands, repeated labels (diagonals, traces),
    labels summed in one operand alone, size-1 axes broadcast against longer ones,
    ellipses anywhere in a term, implicit or explicit outputs."""
    labels = draw(st.lists(st.sampled_from("ijkAB"), min_size=1, max_size=4, unique=True))
    sizes = {c: draw(SIDES) for c in labels}
    n_operands = draw(st.integers(1, 3))
    uses_ellipsis = draw(st.booleans())
    batch = draw(tst.broadcastable_shapes(n_operands, max_dims=2, max_side=2))
    terms, shapes = [], []
    for k in range(n_operands):
        named = draw(st.lists(st.sampled_from(labels), max_size=3))
        sides = [sizes[c] for c in named]
        for c in set(named):  # a label used once in this operand may be broadcast from 1
            if named.count(c) == 1 and draw(st.integers(0, 3)) == 0:
                sides[named.index(c)] = 1
        term = "".join(named)
        if uses_ellipsis:
            cut = draw(st.integers(0, len(named)))
            term = term[:cut] + "..." + term[cut:]
            sides = [*sides[:cut], *batch.input_shapes[k], *sides[cut:]]
        terms.append(term)
        shapes.append(tuple(sides))
    used = sorted({c for t in terms for c in t if c != "."})
    if draw(st.booleans()):
        subscripts = ",".join(terms)
    else:
        out = draw(st.permutations(used))[: draw(st.integers(0, len(used)))]
        if uses_ellipsis and (batch.result_shape or draw(st.booleans())):
            cut = draw(st.integers(0, len(out)))
            out = [*out[:cut], "...", *out[cut:]]
        subscripts = ",".join(terms) + "->" + "".join(out)
    return subscripts, shapes


OPTIMIZE = st.sampled_from([False, True, "greedy", "optimal"])


def draw_einsum(data, dtype):
    subscripts, shapes = data.draw(einsum_problems())
    arrays = _cast(dtype, *(_uniform(data, s) for s in shapes))
    return (subscripts, *arrays), {"optimize": data.draw(OPTIMIZE)}


def _sublist(term):
    """'iA...' -> [34, 0, Ellipsis]: NumPy numbers A-Z as 0-25 and a-z as 26-51."""
    term = term.replace("...", ".")
    return [
        Ellipsis if c == "." else (ord(c) - 65 if c.isupper() else ord(c) - 97 + 26) for c in term
    ]


def draw_einsum_sublists(data, dtype):
    subscripts, shapes = data.draw(einsum_problems())
    arrays = _cast(dtype, *(_uniform(data, s) for s in shapes))
    inputs, _, output = subscripts.partition("->")
    args = [
        x
        for array, term in zip(arrays, inputs.split(","), strict=True)
        for x in (array, _sublist(term))
    ]
    if "->" in subscripts:
        args.append(_sublist(output))
    return tuple(args), {}


def draw_einsum_batched_matmul(data, dtype):
    """'...ij,...jk->...ik' with broadcast stacks: one spelling torch and jax share."""
    drawn = data.draw(tst.broadcastable_shapes(2, max_dims=2, max_side=2))
    i, j, k = (data.draw(SIDES) for _ in range(3))
    a = _uniform(data, (*drawn.input_shapes[0], i, j))
    b = _uniform(data, (*drawn.input_shapes[1], j, k))
    return ("...ij,...jk->...ik", *_cast(dtype, a, b)), {}


# --- linear algebra --------------------------------------------------------------------------


def draw_square(data, dtype):
    return _cast(dtype, well_conditioned(data, data.draw(STACKS), data.draw(SIDES))), {}


def draw_solve(data, dtype):
    """b a vector (1-d, NumPy 2's rule) or a stack of matrices; stacks broadcast."""
    drawn = data.draw(tst.broadcastable_shapes(2, max_dims=2, max_side=2))
    n = data.draw(SIDES)
    a = well_conditioned(data, drawn.input_shapes[0], n)
    if data.draw(st.booleans()):
        b = _uniform(data, (n,))
    else:
        b = _uniform(data, (*drawn.input_shapes[1], n, data.draw(SIDES)))
    return _cast(dtype, a, b), {}


def draw_cholesky(data, dtype):
    upper = data.draw(st.booleans())
    spd = symmetric(data, data.draw(STACKS), data.draw(SIDES), low=0.5, high=3.0, gap=0.0)
    return _cast(dtype, with_noise_outside(data, spd, lower=not upper)), {"upper": upper}


def draw_eigh(data, dtype):
    uplo = data.draw(st.sampled_from(["L", "U"]))
    s = symmetric(data, data.draw(STACKS), data.draw(SIDES))
    return _cast(dtype, with_noise_outside(data, s, lower=uplo == "L")), {"UPLO": uplo}


def draw_svd(full_matrices, compute_uv=True, square=False):
    def draw(data, dtype):
        m = data.draw(SIDES)
        n = m if square else data.draw(SIDES)
        a = full_rank(data, data.draw(STACKS), m, n)
        return _cast(dtype, a), {"full_matrices": full_matrices, "compute_uv": compute_uv}

    return draw


def draw_pinv(data, dtype):
    m, n = data.draw(SIDES), data.draw(SIDES)
    return _cast(dtype, full_rank(data, data.draw(STACKS), m, n)), {}


def draw_pinv_hermitian(data, dtype):
    s = symmetric(data, data.draw(STACKS), data.draw(SIDES), low=0.5, high=3.0, gap=0.0)
    s = s * _signs(data, s.shape[:-2])[..., None, None]  # definite of either sign
    return _cast(dtype, with_noise_outside(data, s, lower=True)), {"hermitian": True}


def _axis_and_keepdims(data, ndim):
    axis = data.draw(st.none() | st.integers(-ndim, ndim - 1)) if ndim > 1 else None
    return {"axis": axis, "keepdims": data.draw(st.booleans())}


def draw_vector_norm(data, dtype):
    """Vector orders: None, 2, 1, 0, inf, -inf and other p, over one axis or all."""
    ord = data.draw(st.sampled_from([None, 2, 1, 0, np.inf, -np.inf, 3, 1.5, 0.5, -1, -2.5]))
    shape = data.draw(tst.shapes(min_dims=1, max_dims=2, max_side=3))
    if ord in (np.inf, -np.inf):  # distinct magnitudes: no tie for the extreme
        x = _spaced(data, shape, 0.25, 2.0, 0.15) * _signs(data, shape)
    else:
        x = data.draw(tst.float_arrays(shape, min_value=-2, max_value=2, min_magnitude=0.25))
    statics = _axis_and_keepdims(data, len(shape))
    if statics["axis"] is None and len(shape) > 1 and ord is not None:
        statics["axis"] = -1  # axis=None with an order is a matrix norm for 2-d
    return _cast(dtype, x), {"ord": ord, **statics}


def _matrix_axes(data, ndim):
    row, col = data.draw(st.permutations(range(ndim)))[:2]
    if data.draw(st.booleans()):
        row -= ndim
    return row, col


def draw_matrix_norm(data, dtype):
    """Matrix orders over two axes of a 2-d or 3-d array, or axis=None for a matrix."""
    ord = data.draw(st.sampled_from([None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]))
    ndim = data.draw(st.integers(2, 3))
    m, n = data.draw(SIDES), data.draw(SIDES)
    stack = data.draw(tst.shapes(min_dims=ndim - 2, max_dims=ndim - 2, max_side=2))
    if ord in (1, -1, np.inf, -np.inf):
        # |entries| in [0.2, 1] plus j (a permutation) on line j of the kept axis: the sums
        # of |x| over the other axis differ by at least 0.2 per entry summed.
        kept = -1 if ord in (1, -1) else -2
        lines = (m, n)[kept]
        offsets = np.array(data.draw(st.permutations(range(lines))), dtype=float)
        offsets = offsets[:, None] if kept == -2 else offsets[None, :]
        x = (_uniform(data, (*stack, m, n), 0.2, 1.0) + offsets) * _signs(data, (*stack, m, n))
    elif ord in (None, "fro"):  # entries away from 0: the norm of a 1 x 1 matrix is |x|
        x = data.draw(
            tst.float_arrays((*stack, m, n), min_value=-2, max_value=2, min_magnitude=0.25)
        )
    else:
        x = full_rank(data, stack, m, n)
    if ndim == 2 and data.draw(st.booleans()):
        statics = {"axis": None}
    else:
        row, col = _matrix_axes(data, ndim)
        x = np.moveaxis(x, (-2, -1), (row, col))
        statics = {"axis": (row, col)}
    return _cast(dtype, x), {"ord": ord, **statics, "keepdims": data.draw(st.booleans())}


# --- the same maps in torch and jax -----------------------------------------------------------


def eigenprojectors(result):
    """``(w, v) -> (w, v_k v_k.T for each k)``: independent of the eigenvectors' signs."""
    w, v = result
    return w, np.einsum("...ik,...jk->...kij", v, v)


def singular_components(result):
    """``(U, S, Vh) -> (S, u_k vh_k for each k)``: independent of the vectors' signs."""
    u, s, vh = result
    return s, np.einsum("...ik,...kj->...kij", u, vh)


def _torch_mirrored(torch, a, lower):
    return torch.tril(a) + torch.tril(a, -1).mT if lower else torch.triu(a) + torch.triu(a, 1).mT


def _jax_mirrored(jnp, a, lower):
    t = jnp.swapaxes
    return (
        jnp.tril(a) + t(jnp.tril(a, -1), -1, -2)
        if lower
        else jnp.triu(a) + t(jnp.triu(a, 1), -1, -2)
    )


def torch_eigh(torch):
    def eigh(a, UPLO):
        w, v = torch.linalg.eigh(_torch_mirrored(torch, a, UPLO == "L"))
        return w, torch.einsum("...ik,...jk->...kij", v, v)

    return eigh


def jax_eigh(jnp):
    def eigh(a, UPLO):
        w, v = jnp.linalg.eigh(_jax_mirrored(jnp, a, UPLO == "L"), symmetrize_input=False)
        return w, jnp.einsum("...ik,...jk->...kij", v, v)

    return eigh


def torch_svd(torch):
    def svd(a, full_matrices, compute_uv):
        if not compute_uv:
            return torch.linalg.svdvals(a)
        u, s, vh = torch.linalg.svd(a, full_matrices=full_matrices)
        return s, torch.einsum("...ik,...kj->...kij", u, vh)

    return svd


def jax_svd(jnp):
    def svd(a, full_matrices, compute_uv):
        if not compute_uv:
            return jnp.linalg.svd(a, compute_uv=False)
        u, s, vh = jnp.linalg.svd(a, full_matrices=full_matrices)
        return s, jnp.einsum("...ik,...kj->...kij", u, vh)

    return svd


def torch_solve(torch):
    def solve(a, b):
        # Matrices of equal ranks, so that torch reads b as NumPy 2 does (a vector only
        # when 1-d): torch takes b for a stack of vectors when it has one axis fewer than a.
        if b.ndim == 1:
            b_matrices = b[:, None].expand(*a.shape[:-2], b.shape[0], 1)
            return torch.linalg.solve(a, b_matrices)[..., 0]
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return torch.linalg.solve(a.expand(*batch, *a.shape[-2:]), b.expand(*batch, *b.shape[-2:]))

    return solve


def torch_norm(torch):
    def norm(x, ord=None, axis=None, keepdims=False):
        return torch.linalg.norm(x, ord, axis, keepdims)

    return norm


def torch_tensordot(torch):
    def tensordot(a, b, axes):
        if not isinstance(axes, int):
            axes = [list(np.atleast_1d(axes[0])), list(np.atleast_1d(axes[1]))]
        return torch.tensordot(a, b, dims=axes)

    return tensordot


CASES = [
    # products
    OpCase(
        np.matmul,
        draw_matmul,
        method="__matmul__",
        torch=lambda t: t.matmul,
        jax=lambda j: j.matmul,
    ),
    OpCase(np.dot, draw_dot, method="dot", jax=lambda jnp: jnp.dot),
    OpCase(np.vdot, draw_vdot, jax=lambda jnp: jnp.vdot),
    OpCase(np.inner, draw_inner, jax=lambda jnp: jnp.inner),
    OpCase(np.outer, draw_two_any, jax=lambda jnp: jnp.outer),
    OpCase(np.kron, draw_kron, torch=lambda t: t.kron, jax=lambda jnp: jnp.kron),
    OpCase(np.tensordot, draw_tensordot, torch=torch_tensordot, jax=lambda jnp: jnp.tensordot),
    OpCase(np.cross, draw_cross, jax=lambda jnp: jnp.cross),
    OpCase(np.einsum, draw_einsum, id="einsum"),
    OpCase(np.einsum, draw_einsum_sublists, id="einsum sublists"),
    OpCase(
        np.einsum,
        draw_einsum_batched_matmul,
        id="einsum batched matmul",
        torch=lambda t: t.einsum,
        jax=lambda jnp: jnp.einsum,
    ),
    # linear algebra
    OpCase(np.linalg.inv, draw_square, torch=lambda t: t.linalg.inv, jax=lambda j: j.linalg.inv),
    OpCase(np.linalg.det, draw_square, torch=lambda t: t.linalg.det, jax=lambda j: j.linalg.det),
    OpCase(
        np.linalg.slogdet,
        draw_square,
        torch=lambda t: lambda a: tuple(t.linalg.slogdet(a)),
        jax=lambda j: lambda a: tuple(j.linalg.slogdet(a)),
    ),
    OpCase(np.linalg.solve, draw_solve, torch=torch_solve, jax=lambda j: j.linalg.solve),
    OpCase(
        np.linalg.cholesky,
        draw_cholesky,
        torch=lambda t: (
            lambda a, upper: t.linalg.cholesky(_torch_mirrored(t, a, not upper), upper=upper)
        ),
        jax=lambda j: (
            lambda a, upper: j.linalg.cholesky(_jax_mirrored(j, a, not upper), upper=upper)
        ),
    ),
    OpCase(np.linalg.eigh, draw_eigh, outputs=eigenprojectors, torch=torch_eigh, jax=jax_eigh),
    OpCase(
        np.linalg.svd,
        draw_svd(full_matrices=False),
        id="linalg.svd reduced",
        outputs=singular_components,
        torch=torch_svd,
        jax=jax_svd,
    ),
    OpCase(
        np.linalg.svd,
        draw_svd(full_matrices=True, square=True),
        id="linalg.svd full square",
        outputs=singular_components,
        torch=torch_svd,
        jax=jax_svd,
    ),
    OpCase(
        np.linalg.svd,
        draw_svd(full_matrices=True),
        id="linalg.svd full, singular values used",
        outputs=lambda result: result[1],
    ),
    OpCase(
        np.linalg.svd,
        draw_svd(full_matrices=False, compute_uv=False),
        id="linalg.svd values only",
        torch=torch_svd,
        jax=jax_svd,
    ),
    OpCase(np.linalg.pinv, draw_pinv, torch=lambda t: t.linalg.pinv, jax=lambda j: j.linalg.pinv),
    OpCase(
        np.linalg.pinv,
        draw_pinv_hermitian,
        id="linalg.pinv hermitian",
        torch=lambda t: lambda a, hermitian: t.linalg.pinv(_torch_mirrored(t, a, True)),
        jax=lambda j: lambda a, hermitian: j.linalg.pinv(_jax_mirrored(j, a, True)),
    ),
    OpCase(
        np.linalg.norm,
        draw_vector_norm,
        id="linalg.norm vector",
        torch=torch_norm,
        jax=lambda j: j.linalg.norm,
    ),
    OpCase(
        np.linalg.norm,
        draw_matrix_norm,
        id="linalg.norm matrix",
        torch=torch_norm,
        jax=lambda j: j.linalg.norm,
    ),
]
