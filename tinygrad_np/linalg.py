"""Products and linear algebra: ``matmul`` (``@``), ``dot``, ``einsum`` and the rest of
NumPy's products, and ``tg.linalg.inv`` ... ``norm``, mirroring ``np.linalg``.

The products are NumPy's top-level functions, so they are ``tg.einsum`` as well as
``np.einsum`` on Tensors. The factorizations and solvers are spelled as in NumPy,
``tg.linalg.inv`` (``np.linalg.inv`` on Tensors), and are not repeated at the top level:
code moves between ``np`` and ``tg`` by changing the module name only.

For ``C = A @ B`` the VJPs are ``dA = G @ B.T`` and ``dB = A.T @ G``; 1-d operands are
treated as matrices with a unit axis, as NumPy does, and batch axes that were
broadcast are summed back. ``einsum``'s VJP for each operand is itself an einsum, and
``tensordot``, ``inner``, ``outer``, ``vdot``, ``kron`` and ``cross`` are written with
these ops, so every derivative of every order is one of theirs.

The matrix functions take stacks of matrices (the last two axes) as NumPy does. Their
VJPs are the standard ones (Giles, "An extended collection of matrix derivative results",
2008; Murray, "Differentiation of the Cholesky decomposition", 2016; Townsend,
"Differentiating the singular value decomposition", 2016), written with these ops so
that second derivatives are right. Where a function reads only one triangle of its
argument (``eigh``, ``cholesky``), the gradient is that of the function NumPy computes:
zero on the triangle it ignores. A factorization's outputs (``eigh``'s ``w`` and ``v``,
``svd``'s ``U``, ``S``, ``Vh``) are computed once and recorded as separate ops of the
argument, so an output the function never uses costs nothing in the backward pass.
"""

from __future__ import annotations

import math
import operator
import string
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from tinygrad_np import reductions
from tinygrad_np.elementwise import absolute, mul, where
from tinygrad_np.extend import Primitive, implements, shape_of, unbroadcast
from tinygrad_np.shape import broadcast_to, reshape, transpose
from tinygrad_np.tensor import Tensor, stop_gradient

# The products are NumPy top-level functions, so they are tg.* too. The linear algebra
# (inv, det, slogdet, solve, cholesky, eigh, svd, pinv, norm) is tg.linalg.* only, as
# NumPy's is np.linalg.* only.
__all__ = [
    "cross",
    "dot",
    "einsum",
    "inner",
    "kron",
    "matmul",
    "outer",
    "tensordot",
    "vdot",
]

LinAlgError = np.linalg.LinAlgError


def _swap_last(x: Any) -> Any:
    """``x`` with its last two axes swapped (the transpose of each matrix of a stack)."""
    nd = len(shape_of(x))
    return transpose(x, axes=(*range(nd - 2), nd - 1, nd - 2))


def _dtype(x: Any) -> np.dtype[Any]:
    return np.result_type(stop_gradient(x))


# --- matmul and dot ------------------------------------------------------------------------


def _matmul(a: Any, b: Any) -> Any:
    """``a @ b`` with NumPy's rules for 1-d, 2-d and batched operands."""
    try:
        return np.matmul(a, b)
    except ValueError:
        raise ValueError(
            f"matmul: shapes {np.shape(a)} and {np.shape(b)} are incompatible "
            "(the last axis of the first must match the "
            + ("only" if np.ndim(b) == 1 else "second-to-last")
            + " axis of the second, batch axes must broadcast, and neither may be 0-d)"
        ) from None


def _matmul_vjps(ans: Any, a: Any, b: Any) -> tuple[Any, Any]:
    a_shape, b_shape = shape_of(a), shape_of(b)
    # Two matrices, the common case, straight to the two products: 1.9-2.3 against 2.5-3.2 ms
    # through the batched path below for (128, 784) @ (784, 128) float32 (timeit, AMD EPYC).
    if len(a_shape) == 2 and len(b_shape) == 2:
        return (lambda g: g @ b.T), (lambda g: a.T @ g)
    if len(a_shape) == 1 and len(b_shape) == 1:  # inner product
        return (lambda g: g * b), (lambda g: g * a)
    # Treat a 1-d operand as a matrix with a unit axis, as NumPy does, then drop it.
    a2 = a if len(a_shape) > 1 else reshape(a, shape=(1, a_shape[0]))
    b2 = b if len(b_shape) > 1 else reshape(b, shape=(b_shape[0], 1))
    a2_shape, b2_shape = shape_of(a2), shape_of(b2)

    def as_matrix_cotangent(g: Any) -> Any:
        shape = shape_of(g)
        if len(a_shape) == 1:
            shape = (*shape[:-1], 1, shape[-1]) if len(b_shape) > 1 else shape
        if len(b_shape) == 1:
            shape = (*shape, 1)
        return reshape(g, shape=shape) if shape != shape_of(g) else g

    def da(g: Any) -> Any:
        d = unbroadcast(as_matrix_cotangent(g) @ _swap_last(b2), a2_shape)
        return reshape(d, shape=a_shape)

    def db(g: Any) -> Any:
        d = unbroadcast(_swap_last(a2) @ as_matrix_cotangent(g), b2_shape)
        return reshape(d, shape=b_shape)

    return da, db


matmul = Primitive(
    "matmul",
    _matmul,
    _matmul_vjps,
    numpy=[np.matmul],
    methods=["__matmul__"],
    reflected=["__rmatmul__"],
)
# np.dot for the operands where it is matmul, computed by np.dot itself.
_dot = Primitive("dot", np.dot, _matmul_vjps)


@implements(np.dot, methods=["dot"])
def dot(a: Any, b: Any) -> Any:
    """``np.dot(a, b)``: a product for 0-d operands, else a sum over the last axis of ``a``
    and the second-to-last (or only) axis of ``b``.

    Only for ``a.ndim >= 2`` and ``b.ndim >= 3`` does this differ from ``matmul`` (whose
    batch axes broadcast): there every row of ``a`` meets every matrix of ``b``, and the
    result has shape ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``.
    """
    a_shape, b_shape = shape_of(a), shape_of(b)
    if not a_shape or not b_shape:
        return mul(a, b)
    contracted = -2 if len(b_shape) > 1 else -1
    if a_shape[-1] != b_shape[contracted]:
        raise ValueError(
            f"dot: shapes {a_shape} and {b_shape} not aligned: the last axis of the first "
            f"({a_shape[-1]}) must match the "
            + ("second-to-last" if contracted == -2 else "only")
            + f" axis of the second ({b_shape[contracted]})"
        )
    if len(a_shape) == 1 or len(b_shape) <= 2:
        return _dot(a, b)
    # Move b's contracted axis to the front, flatten both sides to matrices, multiply once.
    n, b_ndim = a_shape[-1], len(b_shape)
    b_front = transpose(b, axes=(b_ndim - 2, *range(b_ndim - 2), b_ndim - 1))
    b_matrix = reshape(b_front, shape=(n, math.prod(b_shape[:-2]) * b_shape[-1]))
    product = matmul(reshape(a, shape=(math.prod(a_shape[:-1]), n)), b_matrix)
    return reshape(product, shape=(*a_shape[:-1], *b_shape[:-2], b_shape[-1]))


# --- einsum --------------------------------------------------------------------------------

# NumPy's labels, in the order its sublist form numbers them (0-25 'A'-'Z', 26-51 'a'-'z').
_LABELS = string.ascii_uppercase + string.ascii_lowercase


def _einsum_spec_vjps(
    ans: Any, *operands: Any, subscripts: str, optimize: Any = False
) -> list[Callable[[Any], Any]]:
    # ``subscripts`` is normalized (see _normalized_subscripts): explicit, letters only, and
    # a label has one size wherever it appears, so each VJP is an einsum of the same kind.
    inputs, output = subscripts.split("->")
    terms = inputs.split(",")
    sizes = {
        c: n
        for term, o in zip(terms, operands, strict=True)
        for c, n in zip(term, shape_of(o), strict=True)
    }
    dtype = _dtype(ans)
    unused = [c for c in _LABELS if c not in subscripts]
    # The VJPs plan their own contraction paths, greedily whenever the forward optimizes: an
    # explicit path names the forward's operands, and 'optimal' searches every order of the
    # VJP's operands (with the identities and ones added below, and nested again for higher
    # orders), which grows factorially: 0.85 s per call was measured for such VJPs.
    vjp_optimize = "greedy" if optimize is not False else False

    def operand_vjp(k: int) -> Callable[[Any], Any]:
        others = [o for j, o in enumerate(operands) if j != k]
        other_terms = [t for j, t in enumerate(terms) if j != k]
        fresh = iter(unused)
        extra_terms: list[str] = []
        extra_operands: list[Any] = []
        target, seen = [], set()
        for c in terms[k]:
            if c in seen:  # a repeated label ('ii'): the gradient lies on that diagonal
                d = next(fresh, None)
                if d is None:
                    raise ValueError(
                        f"einsum: {subscripts!r} uses too many labels to differentiate"
                    )
                extra_terms.append(c + d)
                extra_operands.append(np.eye(sizes[c], dtype=dtype))
                target.append(d)
            else:
                seen.add(c)
                target.append(c)
        present = set(output).union(*other_terms, *extra_terms)
        for c in sorted(seen - present):  # summed in this operand alone: the gradient is constant
            extra_terms.append(c)  # along it, so it is spread by a row of ones
            extra_operands.append(np.ones(sizes[c], dtype=dtype))
        spec = ",".join([output, *other_terms, *extra_terms]) + "->" + "".join(target)
        return lambda g: _einsum(
            g, *others, *extra_operands, subscripts=spec, optimize=vjp_optimize
        )

    return [operand_vjp(k) for k in range(len(operands))]


def _einsum_impl(*operands: Any, subscripts: str, optimize: Any = False) -> Any:
    """``np.einsum`` of normalized subscripts (explicit output, letters only)."""
    return np.einsum(subscripts, *operands, optimize=optimize)


_einsum: Primitive = Primitive("einsum", _einsum_impl, _einsum_spec_vjps)


def _sublist_labels(sublist: Any, where: str) -> str:
    """A sublist (``[0, 1, Ellipsis]``) as subscript letters, numbered as NumPy does."""
    labels = []
    for item in sublist:
        if item is Ellipsis:
            labels.append("...")
            continue
        try:
            i = operator.index(item)
        except TypeError:
            raise TypeError(
                f"einsum: {where} subscripts must be integers or Ellipsis, got {item!r}"
            ) from None
        if not 0 <= i < len(_LABELS):
            raise ValueError(
                f"einsum: subscript {i} in {where} is not within the valid range [0, 52)"
            )
        labels.append(_LABELS[i])
    return "".join(labels)


def _subscripts_and_operands(args: Sequence[Any]) -> tuple[str, list[Any]]:
    """``einsum``'s arguments in either form as ``(subscripts string, operands)``."""
    if not args:
        raise TypeError("einsum: no subscripts and no operands given")
    if isinstance(args[0], str):
        return args[0], list(args[1:])
    # The sublist form: op0, sublist0, op1, sublist1, ..., [output sublist].
    pairs, output = (args[:-1], args[-1]) if len(args) % 2 else (args, None)
    terms = [_sublist_labels(s, f"operand {i}'s") for i, s in enumerate(pairs[1::2])]
    subscripts = ",".join(terms)
    if output is not None:
        subscripts += "->" + _sublist_labels(output, "the output's")
    return subscripts, list(pairs[0::2])


def _split_ellipsis(term: str, where: str) -> tuple[str, str] | None:
    """``(before, after)`` the ``...`` of ``term``, or None without one."""
    if "." not in term:
        return None
    if term.count("...") != 1 or term.replace("...", "").count("."):
        raise ValueError(f"einsum: {where} {term!r} must write an ellipsis as '...', at most once")
    before, after = term.split("...")
    return before, after


def _normalized_subscripts(subscripts: str, shapes: Sequence[tuple[int, ...]]) -> str:
    """NumPy's einsum ``subscripts`` for operands of ``shapes``, made explicit.

    Ellipses become letters, the implicit output is spelled out (broadcast axes, then the
    labels used once, in NumPy's order), and a size-1 axis broadcast against a longer one
    of the same label gets a label of its own (it is summed away, as broadcasting does).
    The result computes the same as the original, and each operand's VJP is then an
    einsum of the same kind.
    """
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise ValueError(f"einsum: subscripts {subscripts!r} have more than one '->'")
    inputs, output = spec.split("->") if "->" in spec else (spec, None)
    for c in spec.replace("->", "").replace(",", "").replace(".", ""):
        if c not in _LABELS:
            raise ValueError(f"einsum: {c!r} in {subscripts!r} is not a label (use a-z, A-Z)")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} are for {len(terms)} operands, got {len(shapes)}"
        )
    unused = iter(c for c in _LABELS if c not in spec)

    def fresh() -> str:
        c = next(unused, None)
        if c is None:
            raise ValueError(f"einsum: {subscripts!r} needs more than 52 labels with its ellipses")
        return c

    parts = [_split_ellipsis(t, f"operand {k}'s subscripts") for k, t in enumerate(terms)]
    ellipsis_ndims = []
    for k, (term, part, shape) in enumerate(zip(terms, parts, shapes, strict=True)):
        named = len(term) if part is None else len(part[0]) + len(part[1])
        ndim = len(shape) - named
        if ndim < 0 or (part is None and ndim > 0):
            raise ValueError(
                f"einsum: operand {k} has {len(shape)} axes but its subscripts {term!r} "
                f"name {named}" + ("" if part else " and have no '...' for the others")
            )
        ellipsis_ndims.append(ndim)
    broadcast = [fresh() for _ in range(max(ellipsis_ndims, default=0))]
    labelled = []
    for term, part, ndim in zip(terms, parts, ellipsis_ndims, strict=True):
        if part is None:
            labelled.append(list(term))
        else:
            labelled.append([*part[0], *broadcast[len(broadcast) - ndim :], *part[1]])

    if output is None:  # implicit: broadcast axes, then the labels used once, sorted
        counts = Counter(c for term in terms for c in term if c != ".")
        out = broadcast + sorted(c for c, n in counts.items() if n == 1)
    else:
        part = _split_ellipsis(output, "the output")
        if part is None and broadcast:
            raise ValueError(
                f"einsum: the operands' ellipses stand for {len(broadcast)} axes but the "
                f"output {output!r} has no '...' to keep them"
            )
        out = list(output) if part is None else [*part[0], *broadcast, *part[1]]
        named_inputs = set().union(*labelled)
        for c in out:
            if out.count(c) > 1:
                raise ValueError(f"einsum: output label {c!r} appears more than once")
            if c not in named_inputs:
                raise ValueError(f"einsum: output label {c!r} is not among the operands' labels")

    sizes: dict[str, int] = {}
    for k, (labels, shape) in enumerate(zip(labelled, shapes, strict=True)):
        own: dict[str, int] = {}
        for c, n in zip(labels, shape, strict=True):
            if own.setdefault(c, n) != n:
                raise ValueError(
                    f"einsum: label {c!r} repeats in operand {k} with sizes {own[c]} and {n}"
                )
            if n != 1 and sizes.setdefault(c, n) != n:
                raise ValueError(
                    f"einsum: label {c!r} has size {sizes[c]} in one operand and {n} in "
                    f"operand {k}; they must be equal or one of them 1"
                )
    for labels, shape in zip(labelled, shapes, strict=True):
        broadcast_here = {c for c, n in zip(labels, shape, strict=True) if n < sizes.get(c, 1)}
        for c in sorted(broadcast_here):  # a label of its own, summed over its one entry
            own_label = fresh()
            labels[:] = [own_label if label == c else label for label in labels]
    return ",".join("".join(labels) for labels in labelled) + "->" + "".join(out)


@implements(np.einsum)
def einsum(*operands: Any, optimize: Any = False) -> Any:
    """``np.einsum``: Einstein summation, in either of NumPy's forms.

    ``einsum('ij,jk->ik', a, b)`` or ``einsum(a, [0, 1], b, [1, 2], [0, 2])``; implicit
    outputs (``'ij,jk'``), ellipses broadcasting like NumPy's (``'...ij,...jk'``), repeated
    labels for diagonals and traces (``'ii->i'``, ``'ii'``) and any number of operands.
    ``optimize`` is NumPy's (``False``, ``True``, ``'greedy'``, ``'optimal'`` or a path);
    the VJPs use it too (a path, which names the forward's operands, becomes ``'greedy'``).

    The VJP of each operand is itself an einsum of the cotangent with the other operands
    (with an identity matrix for a repeated label and ones for a label summed in that
    operand alone), so every order of derivative is an einsum.
    """
    subscripts, arrays = _subscripts_and_operands(operands)
    shapes = [shape_of(a) for a in arrays]
    spec = _normalized_subscripts(subscripts, shapes)
    return _einsum(*arrays, subscripts=spec, optimize=optimize)


# --- tensordot, inner, outer, vdot, kron, cross ----------------------------------------------


def _axes_list(axes: Any, ndim: int, which: str) -> list[int]:
    items = [axes] if isinstance(axes, int | np.integer) else list(axes)
    return [normalize_axis_index(int(a), ndim, msg_prefix=f"tensordot: {which}") for a in items]


@implements(np.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """``np.tensordot``: sum products over ``axes`` of ``a`` and ``b``.

    ``axes=N`` pairs the last ``N`` axes of ``a`` with the first ``N`` of ``b``;
    ``axes=(axes_a, axes_b)`` names them (ints or sequences). The result has ``a``'s free
    axes, then ``b``'s. Computed as NumPy does, as one matrix product of the operands
    transposed and reshaped, so its derivatives are those of ``matmul``.
    """
    a_shape, b_shape = shape_of(a), shape_of(b)
    if isinstance(axes, int | np.integer):
        n = int(axes)
        if n < 0:
            raise ValueError(f"tensordot: axes must be non-negative, got {n}")
        if n > len(a_shape) or n > len(b_shape):
            raise ValueError(
                f"tensordot: axes={n} exceeds the operands' dimensions {a_shape} and {b_shape}"
            )
        axes_a = list(range(len(a_shape) - n, len(a_shape)))
        axes_b = list(range(n))
    else:
        try:
            given_a, given_b = axes
        except (TypeError, ValueError):
            raise ValueError(
                f"tensordot: axes must be an int or a pair (axes_a, axes_b), got {axes!r}"
            ) from None
        axes_a = _axes_list(given_a, len(a_shape), "axes_a")
        axes_b = _axes_list(given_b, len(b_shape), "axes_b")
        if len(axes_a) != len(axes_b):
            raise ValueError(
                f"tensordot: axes_a {given_a!r} and axes_b {given_b!r} name different numbers "
                "of axes"
            )
    for i, j in zip(axes_a, axes_b, strict=True):
        if a_shape[i] != b_shape[j]:
            raise ValueError(
                f"tensordot: shape-mismatch for sum: axis {i} of {a_shape} has "
                f"{a_shape[i]} entries, axis {j} of {b_shape} has {b_shape[j]}"
            )
    free_a = [i for i in range(len(a_shape)) if i not in axes_a]
    free_b = [j for j in range(len(b_shape)) if j not in axes_b]
    summed = math.prod(a_shape[i] for i in axes_a)
    a_matrix = _permuted(a, [*free_a, *axes_a], (math.prod(a_shape[i] for i in free_a), summed))
    b_matrix = _permuted(b, [*axes_b, *free_b], (summed, math.prod(b_shape[j] for j in free_b)))
    out_shape = (*(a_shape[i] for i in free_a), *(b_shape[j] for j in free_b))
    return reshape(matmul(a_matrix, b_matrix), shape=out_shape)


def _permuted(x: Any, order: list[int], shape: tuple[int, ...]) -> Any:
    """``x`` with its axes in ``order``, reshaped to ``shape`` (no op where nothing moves)."""
    if order != sorted(order):
        x = transpose(x, axes=tuple(order))
    return x if shape_of(x) == shape else reshape(x, shape=shape)


@implements(np.inner)
def inner(a: Any, b: Any) -> Any:
    """``np.inner``: sums over the last axes of ``a`` and ``b`` (a product for 0-d ones).

    The result has shape ``a.shape[:-1] + b.shape[:-1]``.
    """
    a_shape, b_shape = shape_of(a), shape_of(b)
    if not a_shape or not b_shape:
        return mul(a, b)
    if a_shape[-1] != b_shape[-1]:
        raise ValueError(
            f"inner: shapes {a_shape} and {b_shape} not aligned: their last axes "
            f"({a_shape[-1]} and {b_shape[-1]}) must match"
        )
    return tensordot(a, b, axes=(-1, -1))


@implements(np.outer)
def outer(a: Any, b: Any) -> Any:
    """``np.outer``: ``out[i, j] = a.ravel()[i] * b.ravel()[j]``."""
    return reshape(a, shape=(-1, 1)) * reshape(b, shape=(1, -1))


@implements(np.vdot)
def vdot(a: Any, b: Any) -> Any:
    """``np.vdot`` on real arrays: the dot product of ``a`` and ``b`` flattened."""
    a_size, b_size = math.prod(shape_of(a)), math.prod(shape_of(b))
    if a_size != b_size:
        raise ValueError(
            f"vdot: the operands have {a_size} and {b_size} elements; they must have as many"
        )
    return _dot(reshape(a, shape=(-1,)), reshape(b, shape=(-1,)))


@implements(np.kron)
def kron(a: Any, b: Any) -> Any:
    """``np.kron``: the Kronecker product, blocks of ``b`` scaled by the entries of ``a``.

    The operand with fewer axes gets leading unit axes; the result's shape is the
    elementwise product of the two shapes. A 0-d operand scales the other.
    """
    a_shape, b_shape = shape_of(a), shape_of(b)
    if not a_shape or not b_shape:
        return mul(a, b)
    nd = max(len(a_shape), len(b_shape))
    a_full = (1,) * (nd - len(a_shape)) + a_shape
    b_full = (1,) * (nd - len(b_shape)) + b_shape
    # Interleave: a's axes at even positions, b's at odd, so each a entry meets a block of b.
    a_spread = reshape(a, shape=tuple(n for side in a_full for n in (side, 1)))
    b_spread = reshape(b, shape=tuple(n for side in b_full for n in (1, side)))
    product = a_spread * b_spread
    return reshape(product, shape=tuple(p * q for p, q in zip(a_full, b_full, strict=True)))


def _levi_civita(dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    epsilon = np.zeros((3, 3, 3), dtype)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        epsilon[i, j, k], epsilon[i, k, j] = 1, -1
    return epsilon


def _move_axis(x: Any, source: int, destination: int) -> Any:
    """``np.moveaxis`` for one axis (both given as non-negative or negative indices)."""
    nd = len(shape_of(x))
    source, destination = source % nd, destination % nd
    order = [i for i in range(nd) if i != source]
    order.insert(destination, source)
    return x if order == list(range(nd)) else transpose(x, axes=tuple(order))


@implements(np.cross)
def cross(
    a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None
) -> Any:
    """``np.cross``: cross products of the vectors along ``axisa`` of ``a`` and ``axisb``
    of ``b`` (the other axes broadcast), placed along ``axisc`` of the result.

    ``axis`` sets all three. Vectors have 3 components, or 2 (the third taken as 0; NumPy
    deprecates this and so warns); two 2-vectors give the z component alone. Computed as
    ``einsum`` with the Levi-Civita symbol, so its derivatives are einsums.
    """
    if axis is not None:
        axisa = axisb = axisc = axis
    a_shape, b_shape = shape_of(a), shape_of(b)
    a = _move_axis(a, normalize_axis_index(axisa, len(a_shape), msg_prefix="cross: axisa"), -1)
    b = _move_axis(b, normalize_axis_index(axisb, len(b_shape), msg_prefix="cross: axisb"), -1)
    na, nb = shape_of(a)[-1], shape_of(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(
            f"cross: incompatible dimensions for cross product: the vectors have {na} and "
            f"{nb} components (each must have 2 or 3)"
        )
    if na == 2 or nb == 2:
        warnings.warn(
            "Arrays of 2-dimensional vectors are deprecated. Use arrays of 3-dimensional "
            "vectors instead. (deprecated in NumPy 2.0)",
            DeprecationWarning,
            stacklevel=2,
        )
    epsilon = _levi_civita(np.result_type(_dtype(a), _dtype(b)))
    if na == nb == 2:
        return einsum("...j,...k,jk->...", a, b, epsilon[2, :2, :2])
    product = einsum("...j,...k,ijk->...i", a, b, epsilon[:, :na, :nb])
    nd = len(shape_of(product))
    return _move_axis(product, nd - 1, normalize_axis_index(axisc, nd, msg_prefix="cross: axisc"))


# --- factorizations: several outputs, computed once ----------------------------------------

# output_vjp(a, output, **options) -> (g -> gradient of a) or None; output(k) is output k
# at a's level: the plain array, or an op of a on the outer tape when a is itself traced.
OutputVJP = Callable[..., Callable[[Any], Any] | None]


def _factorization_outputs(name: str, output_vjps: Sequence[OutputVJP]) -> Primitive:
    """One op per output of a factorization computed once: ``op(a, index=k, outputs=...)``.

    Recording each output as its own op of ``a`` gives each its own VJP: an output the
    function never uses gets no cotangent, so its VJP never runs (no ``0 * inf`` from the
    eigenvector terms when only eigenvalues are used and some repeat). A VJP that needs
    the other outputs gets them from ``output(k)`` at ``a``'s level, so that when ``a`` is
    itself traced they are recorded as functions of ``a`` and second derivatives are right.
    """

    def impl(a: Any, *, index: int, outputs: tuple[Any, ...], **options: Any) -> Any:
        return outputs[index]

    def vjps(ans: Any, a: Any, *, index: int, outputs: tuple[Any, ...], **options: Any) -> Any:
        def output(k: int) -> Any:
            return select(a, index=k, outputs=outputs, **options)

        return (output_vjps[index](a, output, **options),)

    select = Primitive(name, impl, vjps)
    return select


def _is_traced(*args: Any) -> bool:
    return any(isinstance(a, Tensor) and a.traced for a in args)


def _has_tensor(*args: Any) -> bool:
    return any(isinstance(a, Tensor) for a in args)


def _square_stack(a: Any, name: str) -> tuple[int, ...]:
    shape = shape_of(a)
    if len(shape) < 2:
        raise LinAlgError(
            f"{name}: {len(shape)}-dimensional array given; it must have at least two "
            "dimensions (a matrix, or a stack of them)"
        )
    if shape[-1] != shape[-2]:
        raise LinAlgError(
            f"{name}: the last two dimensions must be square (a stack of square matrices), "
            f"got shape {shape}"
        )
    return shape


def _triangle_masks(n: int, lower: bool) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(the strict triangle NumPy reads besides the diagonal, the diagonal), as booleans."""
    strict = np.tri(n, k=-1, dtype=bool)
    return (strict if lower else strict.T), np.eye(n, dtype=bool)


def _read_triangle_gradient(gradient: Any, n: int, lower: bool) -> Any:
    """The gradient of ``f(A)`` that reads one triangle of ``A`` and mirrors it.

    ``gradient`` is that of ``f`` at the mirrored (symmetric) matrix ``S``. An entry of the
    triangle read stands for ``S[i, j]`` and ``S[j, i]``: it gets both; the other triangle
    is never read and gets nothing.
    """
    strict, diagonal = _triangle_masks(n, lower)
    return (gradient + _swap_last(gradient)) * strict + gradient * diagonal


def _mirrored(a: Any, n: int, lower: bool) -> Any:
    """The symmetric matrix made of ``a``'s lower (or upper) triangle, as NumPy reads it."""
    strict, diagonal = _triangle_masks(n, lower)
    kept = a * (strict | diagonal)
    return kept + _swap_last(a * strict)


def _inverse_gaps(values: Any) -> Any:
    """``F[..., i, j] = 1 / (values[j] - values[i])``, and 0 where they are equal.

    Where two values are exactly equal the vectors are not differentiable, and the terms
    coupling the pair are taken as 0 instead of dividing by zero. The gradient is then
    still right for functions of the values and of the vectors of values that do not repeat
    (their cotangents vanish on the repeated block), and not meaningful for functions of the
    vectors of a repeated value (whose derivative is a 0/0 limit the cotangent cannot give).
    """
    plain = stop_gradient(values)
    ties = plain[..., None, :] == plain[..., :, None]  # the diagonal too
    gaps = reshape(values, shape=(*shape_of(values)[:-1], 1, shape_of(values)[-1])) - reshape(
        values, shape=(*shape_of(values), 1)
    )
    return where(ties, 0, 1 / where(ties, 1, gaps))


# --- inv, det, slogdet, solve ------------------------------------------------------------------


def _inv(a: Any) -> Any:
    """The inverse of a square matrix (or of each matrix of a stack)."""
    _square_stack(a, "inv")
    return np.linalg.inv(a)


inv: Primitive = Primitive(
    "inv",
    _inv,
    lambda ans, a: (lambda g: -(_swap_last(ans) @ g @ _swap_last(ans)),),
    numpy=[np.linalg.inv],
    doc="""``np.linalg.inv``: the inverse of a square matrix, or of each matrix of a stack.

    A singular matrix raises ``LinAlgError`` as in NumPy. The VJP is
    ``-inv(a).T @ g @ inv(a).T``.
    """,
)


def _cofactor(a: Any) -> Any:
    """The cofactor matrix ``det(a) * inv(a).T``, the gradient of ``det``.

    From the SVD ``a = U diag(s) V.T``: ``det(U) det(V) U diag(prod of the other s) V.T``,
    which holds at singular matrices too, where ``inv`` does not exist.
    """
    u, s, vh = np.linalg.svd(a)
    ones = np.ones((*s.shape[:-1], 1), s.dtype)
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    signs = np.linalg.det(u) * np.linalg.det(vh)
    return (u * (before * after)[..., None, :]) @ vh * signs[..., None, None]


def _cofactor_vjps(ans: Any, a: Any) -> tuple[Any]:
    # d(det A inv(A).T) = det A (tr(inv(A) dA) inv(A).T - inv(A).T dA.T inv(A).T), which
    # gives g -> <g, inv(A).T> C - C g.T inv(A).T for C = ans: A must be invertible here.
    def vjp(g: Any) -> Any:
        a_inv_t = _swap_last(inv(a))
        trace = reductions.sum(g * a_inv_t, axis=(-2, -1), keepdims=True)
        return trace * ans - ans @ _swap_last(g) @ a_inv_t

    return (vjp,)


_cofactor_op: Primitive = Primitive("cofactor", _cofactor, _cofactor_vjps)


def _det(a: Any) -> Any:
    """The determinant of a square matrix (or of each matrix of a stack)."""
    _square_stack(a, "det")
    return np.linalg.det(a)


def _expand_matrix(g: Any) -> Any:
    """A per-matrix value (shape ``S``) as shape ``S + (1, 1)``, to scale each matrix."""
    return reshape(g, shape=(*shape_of(g), 1, 1))


det = Primitive(
    "det",
    _det,
    lambda ans, a: (lambda g: _expand_matrix(g) * _cofactor_op(a),),
    numpy=[np.linalg.det],
    doc="""``np.linalg.det``: the determinant of a square matrix, or of each of a stack.

    The gradient is the cofactor matrix ``det(a) * inv(a).T``, computed from an SVD so
    that it is right at singular matrices too; second derivatives need ``a`` invertible.
    """,
)


def _logabsdet_vjp(a: Any, output: Callable[[int], Any]) -> Callable[[Any], Any]:
    def vjp(g: Any) -> Any:
        try:
            a_inv_t = _swap_last(inv(a))
        except LinAlgError:
            raise LinAlgError(
                "slogdet: the gradient of log|det(a)| at a singular matrix is infinite"
            ) from None
        return _expand_matrix(g) * a_inv_t

    return vjp


_slogdet_output = _factorization_outputs("slogdet", [lambda a, output: None, _logabsdet_vjp])


@implements(np.linalg.slogdet)
def slogdet(a: Any) -> Any:
    """``np.linalg.slogdet``: ``(sign, logabsdet)`` of a square matrix or each of a stack.

    ``sign`` (1, -1 or 0) is a plain array: it has no gradient. The gradient of
    ``logabsdet`` is ``inv(a).T`` (infinite at a singular matrix, where the backward pass
    raises ``LinAlgError``). Returns a plain tuple (NumPy's named tuple is a leaf of a
    pytree, so a tuple is what a transform can carry).
    """
    if not _has_tensor(a):
        return np.linalg.slogdet(a)
    _square_stack(a, "slogdet")
    sign, logabsdet = np.linalg.slogdet(stop_gradient(a))
    return sign, _slogdet_output(a, index=1, outputs=(sign, logabsdet))


def _solve_vjps(ans: Any, a: Any, b: Any) -> tuple[Any, Any]:
    a_shape, b_shape = shape_of(a), shape_of(b)
    vector = len(b_shape) == 1  # NumPy 2: b is a vector only when it is 1-d
    shared: list[Any] = [None, None]  # (g, solve(a.T, g)): both VJPs need it

    def as_matrix(x: Any) -> Any:
        return reshape(x, shape=(*shape_of(x), 1)) if vector else x

    def solved(g: Any) -> Any:
        if shared[0] is not g:
            shared[:] = g, solve(_swap_last(a), as_matrix(g))
        return shared[1]

    def db(g: Any) -> Any:
        d = solved(g)
        return unbroadcast(reshape(d, shape=shape_of(d)[:-1]) if vector else d, b_shape)

    def da(g: Any) -> Any:
        return unbroadcast(-(solved(g) @ _swap_last(as_matrix(ans))), a_shape)

    return da, db


def _solve(a: Any, b: Any) -> Any:
    """The solution ``x`` of ``a @ x = b`` (``b`` a vector when 1-d, else a stack of matrices)."""
    _square_stack(a, "solve")
    return np.linalg.solve(a, b)


solve: Primitive = Primitive(
    "solve",
    _solve,
    _solve_vjps,
    numpy=[np.linalg.solve],
    doc="""``np.linalg.solve``: ``x`` with ``a @ x = b`` for square ``a`` (or a stack).

    As in NumPy 2, ``b`` is a vector when 1-d and a (stack of) matrices otherwise; batch
    axes broadcast. A singular ``a`` raises ``LinAlgError``. The VJPs are
    ``db = solve(a.T, g)`` and ``da = -db @ x.T``, summed over broadcast batch axes.
    """,
)

# --- cholesky, eigh ------------------------------------------------------------------------


def _cholesky(a: Any, *, upper: bool = False) -> Any:
    """The Cholesky factor of a symmetric positive-definite matrix (or of each of a stack)."""
    _square_stack(a, "cholesky")
    return np.linalg.cholesky(a, upper=upper)


def _cholesky_vjps(ans: Any, a: Any, *, upper: bool = False) -> tuple[Any]:
    n = shape_of(a)[-1]
    factor = _swap_last(ans) if upper else ans  # the lower factor L, a = L @ L.T
    # Phi(X): the lower triangle of X with its diagonal halved.
    phi = np.tri(n, dtype=_dtype(ans)) - 0.5 * np.eye(n, dtype=_dtype(ans))

    def vjp(g: Any) -> Any:
        g_lower = _swap_last(g) if upper else g
        p = (_swap_last(factor) @ g_lower) * phi
        # L^-T P L^-1 (Murray 2016): the gradient of f(L(S)) at symmetric S, symmetrized.
        left = solve(_swap_last(factor), p)
        s = _swap_last(solve(_swap_last(factor), _swap_last(left)))
        return _read_triangle_gradient(0.5 * (s + _swap_last(s)), n, lower=not upper)

    return (vjp,)


cholesky = Primitive(
    "cholesky",
    _cholesky,
    _cholesky_vjps,
    numpy=[np.linalg.cholesky],
    doc="""``np.linalg.cholesky``: the lower factor ``L`` with ``a = L @ L.T`` (``upper=True``:
    the upper factor ``L.T``), for symmetric positive-definite ``a`` or a stack.

    NumPy reads only the lower triangle of ``a`` (the upper one with ``upper=True``), so
    the gradient is zero on the other triangle and an entry of the one read counts for
    both symmetric entries. A matrix that is not positive definite raises ``LinAlgError``.
    """,
)


def _eigh_eigenvalues_vjp(a: Any, output: Callable[[int], Any], *, UPLO: str) -> Any:
    v = output(1)

    def vjp(g: Any) -> Any:  # V diag(g) V.T
        n = shape_of(v)[-1]
        vg = v * reshape(g, shape=(*shape_of(g)[:-1], 1, n))
        return _read_triangle_gradient(vg @ _swap_last(v), n, lower=UPLO.upper() == "L")

    return vjp


def _eigh_eigenvectors_vjp(a: Any, output: Callable[[int], Any], *, UPLO: str) -> Any:
    w, v = output(0), output(1)
    gaps = _inverse_gaps(w)

    def vjp(g: Any) -> Any:  # V (F o (V.T g)) V.T
        inner = gaps * (_swap_last(v) @ g)
        n = shape_of(v)[-1]
        return _read_triangle_gradient(v @ inner @ _swap_last(v), n, lower=UPLO.upper() == "L")

    return vjp


_eigh_output = _factorization_outputs("eigh", [_eigh_eigenvalues_vjp, _eigh_eigenvectors_vjp])


@implements(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> Any:
    """``np.linalg.eigh``: ``(w, v)``, the eigenvalues (ascending) and eigenvectors (the
    columns of ``v``) of a symmetric matrix, or of each of a stack.

    NumPy reads only the lower triangle of ``a`` (``UPLO='U'``: the upper one), so the
    gradient is zero on the other triangle. The eigenvalues are differentiable wherever
    they are distinct (a symmetric function of them, such as their sum, everywhere), and
    their gradient never involves the eigenvectors' VJP. The eigenvectors are differentiable
    where the eigenvalues are distinct: their VJP has ``1 / (w_j - w_i)`` terms, taken as 0
    where two eigenvalues are exactly equal, which keeps the gradient right for the
    eigenvectors of eigenvalues that do not repeat (the leading one of a covariance matrix,
    say) and leaves it meaningless for the vectors of a repeated eigenvalue.
    Returns a plain tuple (NumPy's named tuple would be a leaf of a pytree).
    """
    if UPLO not in ("L", "U", "l", "u"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    if not _has_tensor(a):
        return np.linalg.eigh(a, UPLO)  # type: ignore[call-overload]
    _square_stack(a, "eigh")
    w, v = np.linalg.eigh(stop_gradient(a), UPLO)  # type: ignore[call-overload]
    outputs = (w, v)
    return tuple(_eigh_output(a, index=k, outputs=outputs, UPLO=UPLO) for k in (0, 1))


# --- svd, pinv -------------------------------------------------------------------------------


def _reduced_svd(a: Any, output: Callable[[int], Any], full_matrices: bool) -> tuple[Any, ...]:
    """``(U, s, Vh)`` of the reduced SVD at ``a``'s level."""
    m, n = shape_of(a)[-2:]
    if full_matrices and m != n:
        # The full factors' extra columns are arbitrary: compute the reduced ones at a's level.
        reduced = svd(a, full_matrices=False)
        return tuple(reduced)
    return output(0), output(1), output(2)


def _svd_u_vjp(a: Any, output: Callable[[int], Any], *, full_matrices: bool) -> Any:
    m, n = shape_of(a)[-2:]
    if full_matrices and m != n:

        def refuse(g: Any) -> Any:
            raise ValueError(
                f"svd: U of a {m}x{n} matrix with full_matrices=True is not differentiable: "
                "its last columns are an arbitrary basis of the complement. Use "
                "full_matrices=False (the singular values alone are differentiable either way)"
            )

        return refuse
    u, s, vh = output(0), output(1), output(2)
    gaps = _inverse_gaps(s * s)
    k = shape_of(s)[-1]

    def vjp(g: Any) -> Any:  # U (J S) V.T + (I - U U.T) g S^-1 V.T, J = F o (U.T g - g.T U)
        ut_g = _swap_last(u) @ g
        j = gaps * (ut_g - _swap_last(ut_g)) * _as_row(s)
        grad = u @ j @ vh
        if m > k:
            grad = grad + ((g - u @ ut_g) / _as_row(s)) @ vh
        return grad

    return vjp


def _svd_s_vjp(a: Any, output: Callable[[int], Any], *, full_matrices: bool) -> Any:
    u, _, vh = _reduced_svd(a, output, full_matrices)
    return lambda g: (u * _as_row(g)) @ vh  # U diag(g) V.T


def _svd_vh_vjp(a: Any, output: Callable[[int], Any], *, full_matrices: bool) -> Any:
    m, n = shape_of(a)[-2:]
    if full_matrices and m != n:

        def refuse(g: Any) -> Any:
            raise ValueError(
                f"svd: Vh of a {m}x{n} matrix with full_matrices=True is not differentiable: "
                "its last rows are an arbitrary basis of the complement. Use "
                "full_matrices=False (the singular values alone are differentiable either way)"
            )

        return refuse
    u, s, vh = output(0), output(1), output(2)
    gaps = _inverse_gaps(s * s)
    k = shape_of(s)[-1]

    def vjp(g: Any) -> Any:  # U (S K) V.T + U S^-1 g_v.T (I - V V.T), K = F o (V.T g_v - g_v.T V)
        vt_gv = vh @ _swap_last(g)  # V.T g_v with g_v = g.T
        kk = _as_column(s) * (gaps * (vt_gv - _swap_last(vt_gv)))
        grad = u @ kk @ vh
        if n > k:
            grad = grad + (u / _as_row(s)) @ (g - (g @ _swap_last(vh)) @ vh)
        return grad

    return vjp


def _as_row(x: Any) -> Any:
    """``x[..., None, :]``: scales the columns of a matrix."""
    return reshape(x, shape=(*shape_of(x)[:-1], 1, shape_of(x)[-1]))


def _as_column(x: Any) -> Any:
    """``x[..., :, None]``: scales the rows of a matrix."""
    return reshape(x, shape=(*shape_of(x), 1))


_svd_output = _factorization_outputs("svd", [_svd_u_vjp, _svd_s_vjp, _svd_vh_vjp])


@implements(np.linalg.svd)
def svd(
    a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False
) -> Any:
    """``np.linalg.svd``: ``(U, S, Vh)`` with ``a = U @ diag(S) @ Vh`` (``S`` alone with
    ``compute_uv=False``), for a matrix or each of a stack.

    The gradient is defined where the singular values are distinct and nonzero (``S``
    alone: where they are distinct and nonzero, and its VJP never involves those of ``U``
    and ``Vh``). Terms ``1 / (s_j**2 - s_i**2)`` are taken as 0 at exact ties, as in ``eigh``.
    With ``full_matrices=True`` a non-square matrix's ``U`` or ``Vh`` has arbitrary extra
    columns or rows: a cotangent reaching them raises ``ValueError`` (``S`` is still
    differentiable). ``hermitian=True`` is not differentiable (use ``eigh``). Returns a
    plain tuple (NumPy's named tuple would be a leaf of a pytree).
    """
    data = stop_gradient(a)
    if not _has_tensor(a):
        return np.linalg.svd(data, full_matrices, compute_uv, hermitian)  # type: ignore[call-overload]
    if hermitian:
        if _is_traced(a):
            raise TypeError(
                "svd(..., hermitian=True) is not differentiable in tinygrad_np; use "
                "np.linalg.eigh for symmetric matrices, or hermitian=False"
            )
        result = np.linalg.svd(data, full_matrices, compute_uv, hermitian)  # type: ignore[call-overload]
        return Tensor(result) if not compute_uv else tuple(Tensor(r) for r in result)
    if len(shape_of(a)) < 2:
        raise LinAlgError(
            f"svd: {len(shape_of(a))}-dimensional array given; it must have at least two "
            "dimensions (a matrix, or a stack of them)"
        )
    full = bool(full_matrices) and compute_uv
    outputs = tuple(np.linalg.svd(data, full_matrices=full))
    if not compute_uv:
        return _svd_output(a, index=1, outputs=outputs, full_matrices=False)
    return tuple(_svd_output(a, index=k, outputs=outputs, full_matrices=full) for k in range(3))


class _NotGiven:
    def __repr__(self) -> str:
        return "<not given>"


_NOT_GIVEN: Any = _NotGiven()  # pinv's rtol left out: NumPy's default applies


def _pinv(a: Any, *, rcond: Any = None, hermitian: bool = False, rtol: Any = _NOT_GIVEN) -> Any:
    """The Moore-Penrose pseudo-inverse (of each matrix of a stack)."""
    if rtol is _NOT_GIVEN:
        return np.linalg.pinv(a, rcond=rcond, hermitian=hermitian)
    return np.linalg.pinv(a, rcond=rcond, hermitian=hermitian, rtol=rtol)


def _pinv_ranks(a: Any, rcond: Any, hermitian: bool, rtol: Any) -> Any:
    """The rank of each matrix as ``np.linalg.pinv`` counts it: its singular values above
    the cutoff, with NumPy's rule for ``rcond`` and ``rtol``."""
    values = np.asarray(stop_gradient(a))
    if rcond is None:
        if rtol is _NOT_GIVEN:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(values.shape[-2:]) * np.finfo(values.dtype).eps
        else:
            rcond = rtol
    singular = np.linalg.svd(values, compute_uv=False, hermitian=hermitian)
    cutoff = np.asarray(rcond)[..., None] * np.max(singular, axis=-1, keepdims=True)
    return np.sum(singular > cutoff, axis=-1)


def _pinv_vjps(
    ans: Any, a: Any, *, rcond: Any = None, hermitian: bool = False, rtol: Any = _NOT_GIVEN
) -> tuple[Any]:
    m, n = shape_of(a)[-2:]
    matrix = _mirrored(a, n, lower=True) if hermitian else a  # hermitian=True reads the lower one
    dtype = _dtype(ans)
    p, pt = ans, _swap_last(ans)
    # The projector terms below vanish identically where A has full row rank (A P = I) or
    # full column rank (P A = I), which a small perturbation keeps: there they are dropped.
    # As computed they are rounding noise of size cond(A) * eps, which their derivatives
    # amplify: second derivatives at a full-rank A with cond 1e3 were off by up to 50%
    # with them, and are now as accurate as inv's. Per matrix of a stack, by a 0/1 factor.
    if min(m, n) == 0:
        ranks = np.zeros(shape_of(a)[:-2], bool)
    else:
        ranks = _pinv_ranks(matrix, rcond, hermitian, rtol)
    row_deficient, column_deficient = ranks < m, ranks < n

    def vjp(g: Any) -> Any:
        # Golub and Pereyra (1973), for a perturbation that keeps the rank, P = pinv(A):
        # (-P g.T P + P P.T g (I - A P) + (I - P A) g P.T P).T. Transposing last rather than
        # transposing each term is the same in exact arithmetic; at rank-deficient matrices
        # its second derivative is the more accurate (against 80-digit references, by 10**1
        # to 10**8 at cond 1e2 to 1e6, where both lose digits as cond(A) grows).
        gt = _swap_last(g)
        inner = -(p @ gt @ p)
        if np.any(row_deficient):
            term = (p @ pt) @ g @ (np.eye(m, dtype=dtype) - matrix @ p)
            inner = inner + term * row_deficient[..., None, None].astype(dtype)
        if np.any(column_deficient):
            term = (np.eye(n, dtype=dtype) - p @ matrix) @ g @ (pt @ p)
            inner = inner + term * column_deficient[..., None, None].astype(dtype)
        grad = _swap_last(inner)
        return _read_triangle_gradient(grad, n, lower=True) if hermitian else grad

    return (vjp,)


_pinv_op = Primitive("pinv", _pinv, _pinv_vjps)


@implements(np.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = _NOT_GIVEN) -> Any:
    """``np.linalg.pinv``: the Moore-Penrose pseudo-inverse of a matrix or each of a stack.

    Singular values below the cutoff (``rcond`` or ``rtol`` times the largest, as in NumPy)
    count as zero. The gradient is that of a matrix of fixed rank (Golub and Pereyra):
    right wherever no singular value is near the cutoff, so that a small change of ``a``
    keeps its rank. ``hermitian=True`` reads the lower triangle only, as NumPy does.
    """
    if len(shape_of(a)) < 2:
        raise LinAlgError(
            f"pinv: {len(shape_of(a))}-dimensional array given; it must have at least two "
            "dimensions (a matrix, or a stack of them)"
        )
    return _pinv_op(a, rcond=rcond, hermitian=hermitian, rtol=rtol)


# --- norm ------------------------------------------------------------------------------------


def _spread(g: Any, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Any:
    """A reduction's cotangent broadcast back over the reduced ``axes``."""
    if not keepdims:
        g = reshape(g, shape=tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return broadcast_to(g, shape=shape)


def _vector_norm_impl(x: Any, *, ord: Any, axis: Any, keepdims: bool) -> Any:
    """``np.linalg.norm`` for a vector norm or a Frobenius norm, called as the user did."""
    return np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


def _vector_norm_vjps(ans: Any, x: Any, *, ord: Any, axis: Any, keepdims: bool) -> Any:
    shape, values = shape_of(x), stop_gradient(x)
    nd = len(shape)
    if axis is None:
        axes = tuple(range(nd))
    else:
        given = axis if isinstance(axis, tuple) else (axis,)
        axes = tuple(sorted(normalize_axis_index(int(a), nd) for a in given))

    def spread(y: Any) -> Any:
        return _spread(y, shape, axes, keepdims)

    if ord == 0:  # a count of the nonzero entries: piecewise constant
        return (None,)
    signs = np.sign(values)
    if ord in (np.inf, -np.inf):  # the largest (smallest) |x| takes it, ties share it equally
        extreme = stop_gradient(ans)
        extreme = extreme if keepdims else np.reshape(extreme, _kept_shape(shape, axes))
        mask = np.abs(values) == extreme
        share = (signs * mask / np.sum(mask, axis=axes, keepdims=True)).astype(values.dtype)
        return (lambda g: spread(g) * share,)
    if ord == 1:
        return (lambda g: spread(g) * signs,)
    # At a zero norm every entry is 0 and 0 is the subgradient chosen (|x|'s is 0 at 0 too).
    safe_norm = where(stop_gradient(ans) == 0, 1, ans)
    if ord in (None, 2, "fro", "f"):
        return (lambda g: spread(g / safe_norm) * x,)
    p = float(ord)  # d/dx_i (sum |x|**p)**(1/p) = sign(x_i) |x_i|**(p-1) / norm**(p-1)
    return (lambda g: spread(g / safe_norm ** (p - 1)) * (absolute(x) ** (p - 1) * signs),)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


_vector_norm = Primitive("norm", _vector_norm_impl, _vector_norm_vjps)


def _matrix_norm(x: Any, ord: Any, axis: Any, row: int, col: int, keepdims: bool) -> Any:
    shape = shape_of(x)
    if ord in (None, "fro", "f"):
        return _vector_norm(x, ord=ord, axis=axis, keepdims=keepdims)
    if ord in (2, -2, "nuc"):
        nd = len(shape)
        order = [i for i in range(nd) if i not in (row, col)] + [row, col]
        s = svd(transpose(x, axes=tuple(order)), compute_uv=False)
        reduce = {2: reductions.max, -2: reductions.min, "nuc": reductions.sum}[ord]
        out = reduce(s, axis=-1)
    elif ord in (1, -1, np.inf, -np.inf):
        # 1: the largest column sum of |x| (sum over rows); inf: the largest row sum.
        summed, kept = (row, col) if ord in (1, -1) else (col, row)
        sums = reductions.sum(absolute(x), axis=summed)
        extremum = reductions.max if ord in (1, np.inf) else reductions.min
        out = extremum(sums, axis=kept - (kept > summed))
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    return reshape(out, shape=_kept_shape(shape, (row, col))) if keepdims else out


@implements(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.linalg.norm``: a vector norm over one axis, a matrix norm over two.

    Vector orders: ``None``/2 (Euclidean), ``inf``/``-inf`` (largest/smallest ``|x|``),
    0 (the count of nonzeros: no gradient), 1, and any other real ``p``:
    ``sum(|x|**p)**(1/p)``. Matrix orders: ``None``/``'fro'``, ``'nuc'`` (sum of the
    singular values), ``inf``/``-inf`` (largest/smallest row sum of ``|x|``), 1/-1
    (columns), 2/-2 (largest/smallest singular value). ``axis=None`` is the whole array
    as a vector for ``ord=None``, and its one or two axes otherwise, as in NumPy.

    At a kink the subgradient is the one ``abs``, ``max`` and ``svd`` give: 0 for a zero
    entry in ``|x|``, ties sharing equally for the ``inf`` and 1 orders, and 0 for the
    Euclidean and ``p > 1`` norms of a zero vector (where autograd and JAX give NaN).
    """
    shape = shape_of(x)
    nd = len(shape)
    if axis is None:
        if ord is None or (ord in ("fro", "f") and nd == 2) or (ord == 2 and nd == 1):
            return _vector_norm(x, ord=ord, axis=None, keepdims=keepdims)
        axes: tuple[int, ...] = tuple(range(nd))
    elif isinstance(axis, tuple):
        axes = axis
    else:
        try:
            axes = (int(axis),)  # as NumPy converts it
        except (TypeError, ValueError):
            raise TypeError(
                f"norm: 'axis' must be None, an integer or a tuple of integers, got {axis!r}"
            ) from None
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
        normalize_axis_index(axes[0], nd, msg_prefix="norm: axis")
        return _vector_norm(x, ord=ord, axis=axis, keepdims=keepdims)
    if len(axes) == 2:
        row = normalize_axis_index(axes[0], nd, msg_prefix="norm: axis")
        col = normalize_axis_index(axes[1], nd, msg_prefix="norm: axis")
        if row == col:
            raise ValueError(f"norm: duplicate axes given: {axis!r}")
        return _matrix_norm(x, ord, axis, row, col, keepdims)
    raise ValueError(
        f"norm: improper number of dimensions to norm: {len(axes)} axes of a {nd}-dimensional "
        "array (a vector norm takes one axis, a matrix norm two)"
    )
