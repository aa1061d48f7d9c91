"""Whole Jacobians and Hessians assembled from vector products: jacrev, jacfwd, hessian.

``jacrev`` linearizes once and pulls back one basis cotangent per output element
(``vjp``): one backward sweep per row, cheap when outputs are few. ``jacfwd``
linearizes once and pushes forward one basis tangent per input element
(``linearize``): one sweep per column, cheap when inputs are few. The conventions are
JAX's: for an input of shape ``I`` and an output of shape ``O`` the block has shape
``O + I``; for pytrees the output's structure is outside and the input's inside (with
a tuple ``argnums``, a tuple of those per output leaf). The rows and columns are stacked
with NumPy functions, so on traced values they are recorded like any op and the
results can be differentiated again: ``hessian`` is ``jacfwd(jacrev(f))``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_np.contract import argnums_tuple, normalize_argnums
from tinygrad_np.tensor import stop_gradient
from tinygrad_np.transforms import ArgNums, linearize, vjp
from tinygrad_np.tree import tree_flatten, tree_unflatten

__all__ = ["hessian", "jacfwd", "jacobian", "jacrev"]


def _shape_dtype(x: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    value = stop_gradient(x)
    return np.shape(value), np.result_type(value)


def _basis(shape: tuple[int, ...], dtype: Any, i: int) -> np.ndarray[Any, Any]:
    e = np.zeros(math.prod(shape), dtype)
    e[i] = 1
    return e.reshape(shape)


def _restricted(
    f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nums: tuple[int, ...]
) -> Callable[..., Any]:
    """``f`` as a function of the ``nums`` arguments only, the others held fixed."""

    def g(*chosen: Any) -> Any:
        full = list(args)
        for n, value in zip(nums, chosen, strict=True):
            full[n] = value
        return f(*full, **kwargs)

    return g


def _assemble(blocks: list[list[list[Any]]], out_def: Any, in_defs: list[Any], single: bool) -> Any:
    """``blocks[k][a]``: the arrays for output leaf ``k`` and argument ``a``, one per input
    leaf; nest them JAX's way (output structure outside, the arguments' inside)."""
    per_output = []
    for per_argument in blocks:
        trees = [tree_unflatten(d, leaves) for d, leaves in zip(in_defs, per_argument, strict=True)]
        per_output.append(trees[0] if single else tuple(trees))
    return tree_unflatten(out_def, per_output)


def jacrev(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The Jacobian of ``f`` with respect to the ``argnums`` arguments, by reverse mode.

    One vector-Jacobian product per output element. For an input of shape ``I`` and
    an output of shape ``O`` the result has shape ``O + I``; pytrees nest as in JAX
    (output structure outside). With ``has_aux`` ``f`` returns ``(out, aux)`` and the
    result is ``(jacobian, aux)``.
    """
    nums = argnums_tuple(argnums, "jacrev")
    single = not isinstance(argnums, tuple | list)

    @functools.wraps(f)
    def jacrev_f(*args: Any, **kwargs: Any) -> Any:
        call_nums = normalize_argnums(nums, len(args), "jacrev")
        chosen = [args[n] for n in call_nums]
        result = vjp(_restricted(f, args, kwargs, call_nums), *chosen, has_aux=has_aux)
        out, vjp_fn = result[0], result[1]
        out_leaves, out_def = tree_flatten(out)
        in_defs = [tree_flatten(c)[1] for c in chosen]
        in_shapes = [[_shape_dtype(x)[0] for x in tree_flatten(c)[0]] for c in chosen]
        zeros = [np.zeros(*_shape_dtype(o)) for o in out_leaves]
        blocks = []
        for k, leaf in enumerate(out_leaves):
            shape, dtype = _shape_dtype(leaf)
            rows: list[list[list[Any]]] = [[[] for _ in s] for s in in_shapes]
            for i in range(math.prod(shape)):
                cotangent = list(zeros)
                cotangent[k] = _basis(shape, dtype, i)
                grads = vjp_fn(tree_unflatten(out_def, cotangent))
                for a, g in enumerate(grads):
                    for j, row in enumerate(tree_flatten(g)[0]):
                        rows[a][j].append(row)
            blocks.append(
                [
                    [
                        _stack(r, shape + s, dtype)
                        for r, s in zip(rows[a], in_shapes[a], strict=True)
                    ]
                    for a in range(len(chosen))
                ]
            )
        jacobian = _assemble(blocks, out_def, in_defs, single)
        return (jacobian, result[2]) if has_aux else jacobian

    return jacrev_f


jacobian = jacrev
"""``jacobian`` is :func:`jacrev`, as in JAX."""


def jacfwd(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The Jacobian of ``f`` with respect to the ``argnums`` arguments, by forward mode.

    One Jacobian-vector product per input element (see :func:`tinygrad_np.linearize`).
    Shapes and nesting are those of :func:`jacrev`; with ``has_aux`` the result is
    ``(jacobian, aux)``.
    """
    nums = argnums_tuple(argnums, "jacfwd")
    single = not isinstance(argnums, tuple | list)

    @functools.wraps(f)
    def jacfwd_f(*args: Any, **kwargs: Any) -> Any:
        call_nums = normalize_argnums(nums, len(args), "jacfwd")
        chosen = [args[n] for n in call_nums]
        result = linearize(_restricted(f, args, kwargs, call_nums), *chosen, has_aux=has_aux)
        out, jvp_fn = result[0], result[1]
        out_leaves, out_def = tree_flatten(out)
        in_trees = [tree_flatten(c) for c in chosen]
        zeros = [[np.zeros(*_shape_dtype(x)) for x in leaves] for leaves, _ in in_trees]
        # columns[k][a][j]: the columns of output leaf k for input leaf j of argument a
        columns: list[list[list[list[Any]]]] = [
            [[[] for _ in leaves] for leaves, _ in in_trees] for _ in out_leaves
        ]
        for a, (leaves, _) in enumerate(in_trees):
            for j, x in enumerate(leaves):
                shape, dtype = _shape_dtype(x)
                for i in range(math.prod(shape)):
                    tangent = [list(z) for z in zeros]
                    tangent[a][j] = _basis(shape, dtype, i)
                    pushed = jvp_fn(
                        *(tree_unflatten(d, t) for (_, d), t in zip(in_trees, tangent, strict=True))
                    )
                    for k, column in enumerate(tree_flatten(pushed)[0]):
                        columns[k][a][j].append(column)
        blocks = []
        for k, leaf in enumerate(out_leaves):
            out_shape, out_dtype = _shape_dtype(leaf)
            blocks.append(
                [
                    [
                        _stack(columns[k][a][j], out_shape + _shape_dtype(x)[0], out_dtype, -1)
                        for j, x in enumerate(leaves)
                    ]
                    for a, (leaves, _) in enumerate(in_trees)
                ]
            )
        jacobian = _assemble(blocks, out_def, [d for _, d in in_trees], single)
        return (jacobian, result[2]) if has_aux else jacobian

    return jacfwd_f


def _stack(parts: list[Any], shape: tuple[int, ...], dtype: Any, axis: int = 0) -> Any:
    """``parts`` (rows or columns) stacked along ``axis`` and reshaped to ``shape``."""
    if not parts:  # an empty input or output: nothing to stack
        return np.zeros(shape, dtype)
    if len(parts) == 1:  # (a scalar output's one row: no stacking needed)
        return np.reshape(parts[0], shape)
    return np.reshape(np.stack(parts, axis=axis), shape)


def hessian(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The Hessian of scalar ``f``: ``jacfwd(jacrev(f))``, forward over reverse, as in JAX.

    For an argument of shape ``I`` the result has shape ``I + I``; for pytrees and a
    tuple ``argnums``, the nesting of :func:`jacrev` applied twice.
    """
    return jacfwd(jacrev(f, argnums, has_aux), argnums, has_aux)
