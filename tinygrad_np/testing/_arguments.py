"""The arguments a gradient check differentiates: validated, flattened, named.

``check_grads`` and ``numerical_grad`` take ``args``, the tuple of positional
arguments of ``f``. Each argument may be a pytree; every leaf must be a
floating-point array or scalar, because a gradient is checked for every leaf.
Leaves are named in messages the way the engine names them: ``argument 0['W1']``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_np.tensor import Tensor, stop_gradient
from tinygrad_np.tree import TreeDef, path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = ["Arguments", "leaf_name", "least_precise_dtype"]

_SCALAR_TYPES = (np.ndarray, np.generic, Tensor, float, int)


def leaf_name(argnum: int, path: tuple[Any, ...]) -> str:
    """``argument 0['W1']``: how a leaf of the ``argnum``-th argument is named."""
    return f"argument {argnum}" + (path_str(path) if path else "")


def _as_positional(args: Any, caller: str) -> tuple[tuple[Any, ...], bool]:
    """``args`` as a tuple of positional arguments, and whether it was a bare array.

    A tuple or list is always the positional arguments. A bare array (ndarray,
    NumPy scalar, Python float or Tensor) is unambiguous, so it is accepted as
    the only argument. A dict is rejected: it would be ambiguous to guess that it
    is one pytree argument rather than a mistake.
    """
    if isinstance(args, tuple | list):
        return tuple(args), False
    if isinstance(args, _SCALAR_TYPES) and not isinstance(args, bool):
        return (args,), True
    raise TypeError(
        f"{caller}: args must be a tuple of f's positional arguments (or one bare array), "
        f"got a {type(args).__name__}; for a single pytree argument write {caller}(f, (params,))"
    )


def least_precise_dtype(dtypes: Sequence[np.dtype[Any]]) -> np.dtype[Any]:
    """The floating dtype with the largest machine epsilon (float64 if there is none)."""
    floating = [d for d in dtypes if np.issubdtype(d, np.floating)]
    if not floating:
        return np.dtype(np.float64)
    return max(floating, key=lambda d: float(np.finfo(d).eps))


@dataclass
class Arguments:
    """The positional arguments of ``f``, flattened to one list of named leaves.

    ``values[k]`` is the k-th leaf as an ndarray of its own dtype; ``names[k]``
    its name (``argument 0['W1']``). ``rebuild(leaves)`` puts a list of leaves
    back into the positional-argument structure.
    """

    positional: tuple[Any, ...]
    bare: bool
    treedefs: list[TreeDef]
    values: list[np.ndarray[Any, Any]]
    names: list[str]

    @classmethod
    def from_args(cls, args: Any, caller: str) -> Arguments:
        positional, bare = _as_positional(args, caller)
        treedefs, values, names = [], [], []
        for argnum, arg in enumerate(positional):
            leaves, treedef = tree_flatten(arg)
            treedefs.append(treedef)
            for path, leaf in zip(tree_paths(arg), leaves, strict=True):
                name = leaf_name(argnum, path)
                values.append(_float_leaf(leaf, name, caller))
                names.append(name)
        return cls(positional, bare, treedefs, values, names)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The least precise dtype among the leaves: it sets the default tolerance."""
        return least_precise_dtype([v.dtype for v in self.values])

    def rebuild(self, leaves: Sequence[Any]) -> tuple[Any, ...]:
        """Positional arguments with the given leaves, in the structure of the originals."""
        out, start = [], 0
        for treedef in self.treedefs:
            stop = start + treedef.num_leaves
            out.append(tree_unflatten(treedef, list(leaves[start:stop])))
            start = stop
        return tuple(out)

    def like_args(self, leaves: Sequence[Any]) -> Any:
        """Leaves shaped like ``args`` as the caller passed it (bare stays bare)."""
        rebuilt = self.rebuild(leaves)
        return rebuilt[0] if self.bare else rebuilt

    def call(self, f: Callable[..., Any], leaves: Sequence[Any]) -> Any:
        """``f`` applied to the given leaves, each wrapped as an untraced Tensor.

        Tensors, not bare ndarrays, so that ``f`` sees the same kind of object as
        under the engine (``x.relu()``, ``x.T`` and friends work alike).
        """
        return f(*self.rebuild([Tensor(np.asarray(leaf)) for leaf in leaves]))


def _float_leaf(leaf: Any, name: str, caller: str) -> np.ndarray[Any, Any]:
    if not isinstance(leaf, _SCALAR_TYPES) or isinstance(leaf, bool):
        raise TypeError(
            f"{caller}: {name} is a {type(leaf).__name__} ({leaf!r:.40}), not an array; "
            "every leaf of the checked arguments must be a float array or scalar"
        )
    if isinstance(leaf, Tensor) and leaf.traced:
        raise TypeError(f"{caller}: {name} is a traced Tensor; pass plain arrays to check")
    value = np.asarray(stop_gradient(leaf))
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(
            f"{caller}: {name} has dtype {value.dtype}, but only floating-point arguments "
            "have gradients to check; keep integer data (labels, indices) out of args by "
            "closing over it, e.g. check_grads(lambda p: loss(p, X, y), (params,))"
        )
    return value
