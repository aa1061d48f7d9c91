"""The rules the transforms enforce: a clear error, or the right answer.

Every check here stands between a caller and a silently wrong gradient: an
argument that cannot have one, ``argnums`` that name an argument twice, an output
that is not a real scalar, a tangent that would be broadcast, a gradient that
shares memory with something the caller can modify.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_np.jit import Tracer
from tinygrad_np.jit import asarray as as_array
from tinygrad_np.tensor import Tensor, stop_gradient
from tinygrad_np.tree import path_str, tree_flatten, tree_paths

__all__ = [
    "argnums_tuple",
    "check_like",
    "check_scalar_output",
    "float_value",
    "normalize_argnums",
    "own_memory",
]


def float_value(leaf: Any, where: str, transform: str) -> Any:
    """The value to trace for one leaf, after checking it can have a gradient."""
    if isinstance(leaf, Tensor):
        value = leaf if leaf.traced else leaf.data
    elif isinstance(leaf, Tracer):  # an array argument of a function tg.jit traces
        value = leaf
    elif isinstance(leaf, np.ndarray | np.generic | int | float | complex):
        value = Tensor(leaf).data  # (refusing masked arrays and np.matrix)
    else:
        raise TypeError(
            f"{transform}: {where} is a {type(leaf).__name__} ({leaf!r:.40}), not an array; "
            "every leaf of a differentiated argument must be a float array or scalar"
        )
    dtype = np.result_type(stop_gradient(value))
    if dtype.kind == "c":
        raise TypeError(
            f"{transform}: {where} is complex ({dtype}); complex numbers are not supported: "
            "tinygrad_np differentiates real floating-point functions only"
        )
    if dtype.kind != "f":
        raise TypeError(
            f"{transform}: cannot differentiate with respect to {where} of dtype {dtype}: "
            "only floating-point arrays have gradients (cast it with .astype(np.float64), "
            "or leave it out of argnums)"
        )
    return value


def argnums_tuple(argnums: Any, transform: str) -> tuple[int, ...]:
    """``argnums`` as a tuple, checked when the transform is made (ranges at each call)."""

    def is_int(n: Any) -> bool:
        return isinstance(n, int | np.integer) and not isinstance(n, bool)

    if is_int(argnums):
        return (int(argnums),)
    if isinstance(argnums, tuple | list) and argnums and all(is_int(n) for n in argnums):
        return tuple(int(n) for n in argnums)
    raise TypeError(
        f"{transform}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}"
    )


def normalize_argnums(nums: tuple[int, ...], nargs: int, transform: str) -> tuple[int, ...]:
    """``nums`` as non-negative positions of a call with ``nargs`` arguments, each once."""
    out: list[int] = []
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(
                f"{transform}: argnums {n} is out of range for a call with {nargs} "
                "positional arguments"
            )
        if n % nargs in out:
            raise ValueError(
                f"{transform}: argnums {nums} names argument {n % nargs} twice; each argument "
                "can be differentiated once (pass the value twice as separate arguments "
                "to get two gradients)"
            )
        out.append(n % nargs)
    return tuple(out)


_ARRAY_VALUES = (np.ndarray, np.generic, Tracer)  # (a tuple: no union built at every call)


def check_scalar_output(out: Any, has_aux: bool, transform: str) -> tuple[Any, Any, Any]:
    """``(loss, aux, loss's value)`` from ``f``'s output, which must be a real float scalar."""
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"has_aux=True: f must return a pair (loss, aux), got {type(out).__name__}"
            )
        loss, aux = out
    else:
        loss, aux = out, None
    value = stop_gradient(loss)
    if isinstance(value, _ARRAY_VALUES) and value.dtype.kind == "f":
        if value.shape != ():
            raise ValueError(
                f"{transform} needs f to return a scalar, but it returned shape {value.shape}; "
                "use tg.vjp to differentiate a non-scalar output"
            )
        return loss, aux, value
    if isinstance(value, float):
        return loss, aux, np.float64(value)
    if isinstance(value, np.ndarray | np.generic | int | complex):
        dtype = np.result_type(value)
        problem = (
            "complex numbers are not supported"
            if dtype.kind == "c"
            else "only a floating-point value has a gradient"
        )
        raise TypeError(
            f"{transform} needs f to return a real floating-point scalar, but it returned "
            f"a {type(value).__name__} of dtype {dtype}: {problem}"
        )
    hint = ""
    if value is None:
        hint = " (a missing return statement?)"
    elif isinstance(out, tuple) and len(out) == 2 and not has_aux:
        hint = "; to return auxiliary data with the loss, use has_aux=True"
    raise TypeError(
        f"{transform} needs f to return a real floating-point scalar, but it returned "
        f"{type(value).__name__} ({value!r:.60}){hint}"
    )


def check_like(value: Any, reference: Any, what: str, of: str, transform: str) -> list[Any]:
    """``value``'s leaves, checked to have ``reference``'s structure, shapes and dtype kinds.

    Tangents and cotangents must match exactly: broadcasting one would silently
    compute the product with a different vector.
    """
    leaves, treedef = tree_flatten(value)
    ref_leaves, ref_def = tree_flatten(reference)
    if treedef != ref_def:
        raise ValueError(
            f"{transform}: {what} must have the structure of {of} "
            f"({ref_def.num_leaves} leaves), got a different one ({treedef.num_leaves} leaves)"
        )
    for path, leaf, ref in zip(tree_paths(reference), leaves, ref_leaves, strict=True):
        where = f"{what}{path_str(path) if path else ''}"
        if ref is None:
            if leaf is not None:
                raise ValueError(f"{transform}: {where} must be None, as {of} is there")
            continue
        if not isinstance(leaf, Tensor | Tracer | np.ndarray | np.generic | int | float | complex):
            raise TypeError(f"{transform}: {where} is a {type(leaf).__name__}, not an array")
        try:  # Tensor() refuses masked arrays, whose masked-out values would be used
            have = as_array(stop_gradient(leaf) if isinstance(leaf, Tensor) else Tensor(leaf).data)
        except TypeError as error:
            raise TypeError(f"{transform}: {where}: {error}") from None
        want = as_array(stop_gradient(ref))
        if have.dtype.kind == "c":
            raise TypeError(f"{transform}: {where} is complex; complex numbers are not supported")
        if have.shape != want.shape:
            raise ValueError(
                f"{transform}: {where} has shape {have.shape} but {of} has shape "
                f"{want.shape} (no broadcasting: give the full shape)"
            )
        if have.dtype.kind != want.dtype.kind:
            raise TypeError(
                f"{transform}: {where} has dtype {have.dtype} but {of} has dtype "
                f"{want.dtype}: the kinds must match (floats for floats)"
            )
    return leaves


def _memory_owner(array: np.ndarray[Any, Any]) -> Any:
    """The object holding ``array``'s memory: its last ``base``, or itself."""
    while array.base is not None:  # (most arrays own theirs: the loop is not entered)
        if not isinstance(array.base, np.ndarray):
            return array.base
        array = array.base
    return array


def own_memory(grads: list[Any], callers: list[Any]) -> None:
    """Copy each gradient that shares memory with an earlier one or with a caller's array.

    The one aliasing policy of the transforms: a gradient handed to the caller can be
    updated in place without changing another gradient (``x + y`` hands both inputs
    one array, ``W + V.T`` a view of it), an input, or a cotangent the caller passed.
    Read-only arrays (broadcast views) are copied too, so every gradient is writable.
    """
    # Arrays that own their memory, the common case, are taken as they are without a call
    # (0.9-1.5 against 1.2-2.1 us for ten arrays, timeit, AMD EPYC).
    taken = {
        id(a if a.base is None else _memory_owner(a)) for a in callers if isinstance(a, np.ndarray)
    }
    for a in callers:  # arrays that tg.jit traces: their concrete arrays alias as theirs do
        if isinstance(a, Tracer) and isinstance(a._concrete, np.ndarray):
            taken.add(id(_memory_owner(a._concrete)))
    for i, grad in enumerate(grads):
        if isinstance(grad, np.ndarray):
            owner = id(grad if grad.base is None else _memory_owner(grad))
            if owner in taken or not grad.flags.writeable:
                grads[i] = grad = grad.copy()
                owner = id(grad)
            taken.add(owner)
        elif isinstance(grad, Tracer) and isinstance(grad._concrete, np.ndarray):
            owner = id(_memory_owner(grad._concrete))
            if owner in taken or not grad._concrete.flags.writeable:
                grads[i] = grad = grad.copy()  # recorded: every replay copies too
                owner = id(grad._concrete)
            taken.add(owner)
