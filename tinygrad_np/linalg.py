"""Matrix products: ``matmul`` (``@``) and NumPy's ``dot``.

For ``C = A @ B`` the VJPs are ``dA = G @ B.T`` and ``dB = A.T @ G``; 1-d operands are
treated as matrices with a unit axis, as NumPy does, and batch axes that were
broadcast are summed back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_np.elementwise import mul
from tinygrad_np.extend import Primitive, implements, shape_of, unbroadcast
from tinygrad_np.shape import reshape, transpose

__all__ = ["dot", "matmul"]


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


def _swap_last(x: Any) -> Any:
    nd = len(shape_of(x))
    return transpose(x, axes=(*range(nd - 2), nd - 1, nd - 2))


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
