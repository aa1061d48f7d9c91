"""Transforms: functions that take a function and return its derivative.

All of them run the function once on Tensors bound to a fresh tape (the forward
pass records) and then sweep the tape backwards. ``value_and_grad`` and ``vjp``
share that machinery; ``grad`` and ``hvp`` are built on ``value_and_grad``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_np import ops
from tinygrad_np.tensor import Tape, Tensor, _data, backward
from tinygrad_np.tree import LEAF, TreeDef, path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = ["grad", "hvp", "trace", "value_and_grad", "vjp"]

ArgNums = int | tuple[int, ...]


class _BoundArg:
    """One differentiated argument: the argument itself, its leaves and structure.

    Its leaves are bound to consecutive tape nodes, ``first_node`` onwards.
    """

    __slots__ = ("arg", "argnum", "first_node", "leaves", "treedef")

    def __init__(
        self, arg: Any, argnum: int, leaves: list[Any], first_node: int, treedef: TreeDef
    ) -> None:
        self.arg, self.argnum, self.leaves, self.first_node = arg, argnum, leaves, first_node
        self.treedef = treedef

    def where(self, i: int) -> str:
        """The name of leaf ``i`` in messages (paths are only worked out when needed)."""
        return _where(self.argnum, tree_paths(self.arg)[i])


def _where(argnum: int, path: tuple[Any, ...]) -> str:
    return f"argument {argnum}" + (path_str(path) if path else "")


def _float_value(leaf: Any, where: str, transform: str) -> Any:
    """The value to trace for one leaf, after checking it can have a gradient."""
    if isinstance(leaf, Tensor):
        value = leaf if leaf.traced else leaf.data
    elif isinstance(leaf, np.ndarray | np.generic | int | float | bool | complex):
        value = np.asarray(leaf)
    else:
        raise TypeError(
            f"{transform}: {where} is a {type(leaf).__name__} ({leaf!r:.40}), not an array; "
            "every leaf of a differentiated argument must be a float array or scalar"
        )
    dtype = np.asarray(_data(value)).dtype
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(
            f"{transform}: cannot differentiate with respect to {where} of dtype {dtype}: "
            "only floating-point arrays have gradients (cast it with .astype(np.float64), "
            "or leave it out of argnums)"
        )
    return value


def _bind(tape: Tape, arg: Any, argnum: int, transform: str) -> tuple[Any, _BoundArg]:
    if type(arg) is dict and tape.log is None:
        # The usual parameters, a flat dict of float arrays, bound without tree_flatten's
        # recursion (measured: ~6 us of a batch-128 training step).
        values = list(arg.values())
        for value in values:
            if not (type(value) is np.ndarray and value.dtype.kind == "f"):
                break
        else:
            keys = tuple(arg)
            treedef = TreeDef("dict", keys, (LEAF,) * len(keys))
            b = _BoundArg(arg, argnum, values, tape.num_nodes, treedef)
            return dict(zip(keys, tape.bind_all(values), strict=True)), b
    leaves, treedef = tree_flatten(arg)
    b = _BoundArg(arg, argnum, leaves, tape.num_nodes, treedef)
    values = [
        leaf
        if type(leaf) is np.ndarray and leaf.dtype.kind == "f"  # the common case, checked fast
        else _float_value(leaf, b.where(i), transform)
        for i, leaf in enumerate(leaves)
    ]
    if tape.log is None:
        bound = tape.bind_all(values)
    else:
        names = [b.where(i).replace("argument ", "arg") for i in range(len(values))]
        bound = [tape.bind(value, name) for value, name in zip(values, names, strict=True)]
    return tree_unflatten(treedef, bound), b


def _normalize_argnums(argnums: ArgNums, nargs: int, transform: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    out = []
    for n in nums:
        if not -nargs <= n < nargs:
            raise ValueError(
                f"{transform}: argnums {n} is out of range for a call with {nargs} "
                "positional arguments"
            )
        out.append(n % nargs)
    return tuple(out)


def _run(
    f: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    argnums: tuple[int, ...],
    transform: str,
    log: bool = False,
) -> tuple[Tape, Any, list[_BoundArg]]:
    """Call ``f`` with the ``argnums`` arguments bound to a new tape."""
    tape = Tape(log=log)
    call_args = list(args)
    bound = []
    for n in argnums:
        call_args[n], b = _bind(tape, args[n], n, transform)
        bound.append(b)
    try:
        out = f(*call_args, **kwargs)
    finally:
        tape.alive = False
    return tape, out, bound


def _lower(x: Any, tape: Tape) -> Any:
    """A traced value of ``tape`` as seen by the level outside it."""
    return x._value if isinstance(x, Tensor) and x._tape is tape else x


def _gradient(cotangent: Any, leaf: Any) -> Any:
    """A leaf's gradient with the leaf's shape and dtype (zeros if nothing reached it)."""
    shape, dtype = np.shape(_data(leaf)), np.asarray(_data(leaf)).dtype
    if cotangent is None:
        cotangent = np.zeros(shape, dtype)
    elif not isinstance(cotangent, Tensor):
        cotangent = np.asarray(cotangent)
        if cotangent.shape != shape:
            raise RuntimeError(
                f"a VJP returned a gradient of shape {cotangent.shape} for an input of shape "
                f"{shape}: that op's VJP is wrong"
            )
        if cotangent.dtype != dtype:
            cotangent = cotangent.astype(dtype)
        elif not cotangent.flags.writeable:  # a broadcast view: give the caller its own array
            cotangent = cotangent.copy()
    if isinstance(cotangent, np.ndarray) and not isinstance(leaf, np.ndarray | Tensor):
        return cotangent[()]  # a scalar argument gets a NumPy scalar gradient
    return cotangent


def _gradients(bound: list[_BoundArg], cotangents: dict[int, Any]) -> list[Any]:
    """One gradient pytree per bound argument."""
    leaf_grads = []
    for b in bound:
        node = b.first_node
        for i, leaf in enumerate(b.leaves):
            grad = cotangents.get(node + i)
            if not (  # the common case, a fresh array like the leaf, is checked inline
                type(grad) is np.ndarray
                and grad.base is None
                and type(leaf) is np.ndarray
                and grad.shape == leaf.shape
                and grad.dtype is leaf.dtype
            ):
                try:
                    grad = _gradient(grad, leaf)
                except RuntimeError as error:
                    raise RuntimeError(f"{error} (the gradient of {b.where(i)})") from None
            leaf_grads.append(grad)
    if len(set(map(id, leaf_grads))) < len(leaf_grads):
        _unshare(leaf_grads)
    trees = []
    start = 0
    for b in bound:
        stop = start + len(b.leaves)
        trees.append(tree_unflatten(b.treedef, leaf_grads[start:stop]))
        start = stop
    return trees


def _unshare(grads: list[Any]) -> None:
    """Copy every array that appears a second time in ``grads``.

    An identity VJP (x + y) hands one array to two inputs: each gets its own, so
    updating one gradient in place cannot change another.
    """
    seen: set[int] = set()
    for i, grad in enumerate(grads):
        if isinstance(grad, np.ndarray):
            if id(grad) in seen:
                grads[i] = grad = grad.copy()
            seen.add(id(grad))


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """Evaluate ``f(*primals)`` and return ``(out, vjp_fn)``.

    ``vjp_fn(cotangent)``, with ``cotangent`` shaped like ``out``, returns the
    tuple of gradients of ``sum(cotangent * out)``, one per primal, each shaped
    like its primal. It may be called any number of times.
    """
    tape, out, bound = _run(f, primals, {}, tuple(range(len(primals))), "vjp")
    out_leaves, out_def = tree_flatten(out)
    out_value = tree_unflatten(out_def, [_lower(x, tape) for x in out_leaves])

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        ct_leaves, ct_def = tree_flatten(cotangent)
        if ct_def != out_def:
            raise ValueError("vjp_fn: the cotangent must have the structure of the output")
        seeds: dict[int, Any] = {}
        for path, leaf, ct in zip(tree_paths(out), out_leaves, ct_leaves, strict=True):
            ct = ct if isinstance(ct, Tensor) else np.asarray(ct)
            if np.shape(_data(ct)) != np.shape(_data(leaf)):
                raise ValueError(
                    f"vjp_fn: cotangent{path_str(path) if path else ''} has shape "
                    f"{np.shape(_data(ct))} but the output has shape {np.shape(_data(leaf))}"
                )
            if isinstance(leaf, Tensor) and leaf._tape is tape:
                previous = seeds.get(leaf._node)
                seeds[leaf._node] = ct if previous is None else previous + ct
        cotangents = backward(tape, seeds, consume=False)
        # Ops that pass the cotangent through (x + c, reshape, ...) would hand the caller's
        # own array, or a view of it, back as a gradient: copy those.
        callers = [ct for ct in ct_leaves if isinstance(ct, np.ndarray)]
        for node, g in cotangents.items():
            if isinstance(g, np.ndarray) and any(np.may_share_memory(g, ct) for ct in callers):
                cotangents[node] = g.copy()
        return tuple(_gradients(bound, cotangents))

    return out_value, vjp_fn


def value_and_grad(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """``f``'s value and its gradient with respect to the ``argnums`` arguments.

    ``f`` must return a scalar (or ``(scalar, aux)`` with ``has_aux``). The result is
    ``(value, grads)``, or ``((value, aux), grads)``; ``grads`` is shaped like the
    argument (a pytree for a pytree), or a tuple of those when ``argnums`` is a tuple.
    """

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        if type(argnums) is int and 0 <= argnums < len(args):  # the common case, inline
            nums: tuple[int, ...] = (argnums,)
        else:
            nums = _normalize_argnums(argnums, len(args), "grad")
        tape, out, bound = _run(f, args, kwargs, nums, "grad")
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(
                    f"has_aux=True: f must return a pair (loss, aux), got {type(out).__name__}"
                )
            loss, aux = out
        else:
            loss, aux = out, None
        loss_value = _data(loss)
        shape = (
            loss_value.shape
            if isinstance(loss_value, np.ndarray | np.generic)
            else np.shape(loss_value)
        )
        if shape != ():
            raise ValueError(
                f"grad needs f to return a scalar, but it returned shape {shape}; "
                "use tg.vjp to differentiate a non-scalar output"
            )
        cotangents: dict[int, Any] = {}
        traced_loss = isinstance(loss, Tensor) and loss._tape is tape
        if traced_loss:
            seed = np.array(1, loss_value.dtype)
            cotangents = backward(tape, {loss._node: seed}, consume=True)
        grads = _gradients(bound, cotangents)
        result = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = loss._value if traced_loss else loss  # _lower(loss, tape), inline
        if has_aux:
            leaves, treedef = tree_flatten(aux)
            return (value, tree_unflatten(treedef, [_lower(x, tape) for x in leaves])), result
        return value, result

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of scalar-valued ``f`` (``(grads, aux)`` with ``has_aux``)."""
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, grads = value_and_grad_f(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_f


def _tree_vdot(a: Any, b: Any) -> Any:
    a_leaves, a_def = tree_flatten(a)
    b_leaves, b_def = tree_flatten(b)
    if a_def != b_def:
        raise ValueError("hvp: the direction v must have the structure of x")
    total: Any = 0.0
    for x, y in zip(a_leaves, b_leaves, strict=True):
        total = total + ops.sum(x * y)
    return total


def hvp(f: Callable[[Any], Any], x: Any, v: Any) -> Any:
    """Hessian of scalar ``f`` at ``x`` times ``v`` (reverse over reverse)."""
    return grad(lambda y: _tree_vdot(grad(f)(y), v))(x)


def trace(f: Callable[..., Any], *args: Any, argnums: ArgNums = 0, **kwargs: Any) -> Tape:
    """Run ``f(*args)`` once and return its tape; ``print`` it to see every op.

    The ``argnums`` arguments are traced (as ``grad`` would); the rest appear as
    constants.
    """
    nums = _normalize_argnums(argnums, len(args), "trace")
    tape, _, _ = _run(f, args, kwargs, nums, "trace", log=True)
    return tape
