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
from tinygrad_np.tensor import Tape, Tensor, _data, _plain, backward
from tinygrad_np.tree import LEAF, TreeDef, path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = ["grad", "hvp", "trace", "value_and_grad", "vjp"]

ArgNums = int | tuple[int, ...] | list[int]


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
    elif isinstance(leaf, np.ndarray | np.generic | int | float | complex):
        value = np.asarray(_plain(f"{transform}: {where}", leaf))
    else:
        raise TypeError(
            f"{transform}: {where} is a {type(leaf).__name__} ({leaf!r:.40}), not an array; "
            "every leaf of a differentiated argument must be a float array or scalar"
        )
    dtype = np.asarray(_data(value)).dtype
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


def _argnums_tuple(argnums: Any, transform: str) -> tuple[int, ...]:
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


def _normalize_argnums(nums: tuple[int, ...], nargs: int, transform: str) -> tuple[int, ...]:
    """``nums`` as non-negative positions of a call with ``nargs`` arguments, each once."""
    out = []
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


def _gradients(bound: list[_BoundArg], cotangents: dict[int, Any], callers: list[Any]) -> list[Any]:
    """One gradient pytree per bound argument; ``callers`` are the caller's arrays."""
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
    _own_memory(leaf_grads, callers)
    trees = []
    start = 0
    for b in bound:
        stop = start + len(b.leaves)
        trees.append(tree_unflatten(b.treedef, leaf_grads[start:stop]))
        start = stop
    return trees


def _memory_owner(array: np.ndarray[Any, Any]) -> Any:
    """The object holding ``array``'s memory: its last ``base``, or itself."""
    while array.base is not None:
        if not isinstance(array.base, np.ndarray):
            return array.base
        array = array.base
    return array


def _own_memory(grads: list[Any], callers: list[Any]) -> None:
    """Copy each gradient that shares memory with an earlier one or with a caller's array.

    The one aliasing policy of the transforms: a gradient handed to the caller can be
    updated in place without changing another gradient (``x + y`` hands both inputs
    one array, ``W + V.T`` a view of it), an input, or a cotangent the caller passed.
    """
    taken = {id(_memory_owner(a)) for a in callers if isinstance(a, np.ndarray)}
    for i, grad in enumerate(grads):
        if isinstance(grad, np.ndarray):
            owner = id(_memory_owner(grad))
            if owner in taken:
                grads[i] = grad = grad.copy()
                owner = id(grad)
            taken.add(owner)


def _check_scalar_output(out: Any, has_aux: bool, transform: str) -> tuple[Any, Any, Any]:
    """``(loss, aux, loss's value)`` from ``f``'s output, which must be a real float scalar."""
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"has_aux=True: f must return a pair (loss, aux), got {type(out).__name__}"
            )
        loss, aux = out
    else:
        loss, aux = out, None
    value = _data(loss)
    if isinstance(value, np.ndarray | np.generic) and value.dtype.kind == "f":
        if value.shape != ():
            raise ValueError(
                f"{transform} needs f to return a scalar, but it returned shape {value.shape}; "
                "use tg.vjp to differentiate a non-scalar output"
            )
        return loss, aux, value
    if isinstance(value, float):
        return loss, aux, np.float64(value)
    if isinstance(value, np.ndarray | np.generic | int | complex):
        dtype = np.asarray(value).dtype
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


def _check_like(value: Any, reference: Any, what: str, of: str, transform: str) -> list[Any]:
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
        if not isinstance(leaf, Tensor | np.ndarray | np.generic | int | float | complex):
            raise TypeError(f"{transform}: {where} is a {type(leaf).__name__}, not an array")
        have, want = np.asarray(_data(leaf)), np.asarray(_data(ref))
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


def _caller_arrays(args: Sequence[Any], bound: list[_BoundArg]) -> list[Any]:
    """The arrays a call was given: the differentiated leaves and top-level arrays."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    for b in bound:
        arrays += b.leaves
    return arrays


def _copy_arrays(tree: Any) -> Any:
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(treedef, [x.copy() if isinstance(x, np.ndarray) else x for x in leaves])


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """Evaluate ``f(*primals)`` and return ``(out, vjp_fn)``.

    ``vjp_fn(cotangent)``, with ``cotangent`` shaped like ``out`` (same structure,
    shapes and dtype kinds, no broadcasting), returns the tuple of gradients of
    ``sum(cotangent * out)``, one per primal, each shaped like its primal. It may be
    called any number of times. The primals are copied, and so is ``out``: the
    caller may modify either before calling ``vjp_fn``.
    """
    tape, out, bound = _run(f, _copy_arrays(primals), {}, tuple(range(len(primals))), "vjp")
    out_leaves, out_def = tree_flatten(out)
    lowered = [_lower(x, tape) for x in out_leaves]
    for path, x in zip(tree_paths(out), lowered, strict=True):
        if not (x is None or isinstance(x, Tensor | np.ndarray | np.generic | int | float)):
            raise TypeError(
                f"vjp: f's output{path_str(path) if path else ''} is a {type(x).__name__}, "
                "not an array"
            )
    out_value = _copy_arrays(tree_unflatten(out_def, lowered))
    callers = [leaf for leaf in tree_flatten(primals)[0] if isinstance(leaf, np.ndarray)]

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        ct_leaves = _check_like(cotangent, out, "cotangent", "the output", "vjp_fn")
        seeds: dict[int, Any] = {}
        for leaf, ct in zip(out_leaves, ct_leaves, strict=True):
            if isinstance(leaf, Tensor) and leaf._tape is tape:
                ct = ct if isinstance(ct, Tensor) else np.asarray(ct)
                previous = seeds.get(leaf._node)
                seeds[leaf._node] = ct if previous is None else previous + ct
        cotangents = backward(tape, seeds, consume=False)
        return tuple(_gradients(bound, cotangents, callers + ct_leaves))

    return out_value, vjp_fn


def value_and_grad(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """``f``'s value and its gradient with respect to the ``argnums`` arguments.

    ``f`` must return a real floating-point scalar (or ``(scalar, aux)`` with
    ``has_aux``). The result is ``(value, grads)``, or ``((value, aux), grads)``;
    ``grads`` is shaped like the argument (a pytree for a pytree), or a tuple of those
    when ``argnums`` is a tuple. ``argnums`` names distinct positional arguments.
    """
    nums = _argnums_tuple(argnums, "grad")
    single = not isinstance(argnums, tuple | list)
    first = nums[0]

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        if single and 0 <= first < len(args):  # the common case, inline
            call_nums: tuple[int, ...] = nums
        else:
            call_nums = _normalize_argnums(nums, len(args), "grad")
        tape, out, bound = _run(f, args, kwargs, call_nums, "grad")
        loss, aux, loss_value = _check_scalar_output(out, has_aux, "grad")
        cotangents: dict[int, Any] = {}
        traced_loss = isinstance(loss, Tensor) and loss._tape is tape
        if traced_loss:
            seed = np.array(1, loss_value.dtype)
            cotangents = backward(tape, {loss._node: seed}, consume=True)
        grads = _gradients(bound, cotangents, _caller_arrays(args, bound))
        result = grads[0] if single else tuple(grads)
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


def hvp(f: Callable[[Any], Any], x: Any, v: Any) -> Any:
    """Hessian of scalar ``f`` at ``x`` times ``v`` (reverse over reverse).

    ``v`` must have ``x``'s structure, shapes and dtype kinds exactly.
    """
    v_leaves = _check_like(v, x, "v", "x", "hvp")

    def directional_derivative(y: Any) -> Any:
        total: Any = 0.0
        for g, direction in zip(tree_flatten(grad(f)(y))[0], v_leaves, strict=True):
            total = total + ops.sum(g * direction)
        return total

    return grad(directional_derivative)(x)


def trace(f: Callable[..., Any], *args: Any, argnums: ArgNums = 0, **kwargs: Any) -> Tape:
    """Run ``f(*args)`` once and return its tape; ``print`` it to see every op.

    The ``argnums`` arguments are traced (as ``grad`` would); the rest appear as
    constants.
    """
    nums = _normalize_argnums(_argnums_tuple(argnums, "trace"), len(args), "trace")
    tape, _, _ = _run(f, args, kwargs, nums, "trace", log=True)
    return tape
