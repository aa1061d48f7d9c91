"""Transforms: functions that take a function and return its derivative.

Each runs the function once on Tensors bound to a fresh tape (the forward pass
records), then sweeps the tape backwards from seeds. There is one backward path,
:func:`_linearize`'s pullback: ``vjp`` seeds it with the caller's cotangent,
``value_and_grad`` with a one at the scalar output; ``grad`` and ``hvp`` are built
on ``value_and_grad``. The checks that keep a wrong answer from passing silently
are in :mod:`tinygrad_np.contract`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_np import reductions
from tinygrad_np.contract import (
    argnums_tuple,
    check_like,
    check_scalar_output,
    float_value,
    normalize_argnums,
    own_memory,
)
from tinygrad_np.jit import Tracer
from tinygrad_np.jit import asarray as as_array
from tinygrad_np.tensor import Tape, Tensor, backward, stop_gradient
from tinygrad_np.tree import TreeDef, path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = ["grad", "hvp", "jvp", "linearize", "trace", "value_and_grad", "vjp"]

ArgNums = int | tuple[int, ...] | list[int]
_ARRAYS = (np.ndarray, Tracer)  # (a tuple: a union type would be built at every call)
Pullback = Callable[[dict[int, Any], list[Any], bool], list[Any]]


def _where(argnum: int, arg: Any, i: int) -> str:
    """The name of leaf ``i`` of argument ``argnum`` in messages."""
    path = tree_paths(arg)[i]
    return f"argument {argnum}" + (path_str(path) if path else "")


def _bind(tape: Tape, arg: Any, argnum: int, transform: str) -> tuple[Any, list[Any], TreeDef]:
    """``arg`` with its leaves bound to ``tape``, its leaves, and its structure."""
    leaves, treedef = tree_flatten(arg)
    tensors = []
    for i, leaf in enumerate(leaves):
        if not (type(leaf) is np.ndarray and leaf.dtype.kind == "f"):  # paths only when needed
            leaf = float_value(leaf, _where(argnum, arg, i), transform)
        name = _where(argnum, arg, i).replace("argument ", "arg") if tape.log is not None else ""
        tensors.append(tape.bind(leaf, name))
    return tree_unflatten(treedef, tensors), leaves, treedef


def _gradient(cotangent: Any, leaf: Any, where: Callable[[], str]) -> Any:
    """A leaf's gradient with the leaf's shape and dtype (zeros if nothing reached it)."""
    value = stop_gradient(leaf)
    shape, dtype = np.shape(value), np.result_type(value)
    if isinstance(cotangent, Tensor) and not cotangent.traced:
        cotangent = cotangent.data  # a constant: the caller gets an array
    if cotangent is None:
        cotangent = np.zeros(shape, dtype)
    elif not isinstance(cotangent, Tensor):
        cotangent = as_array(cotangent)
        if cotangent.shape != shape:
            raise RuntimeError(
                f"a VJP returned a gradient of shape {cotangent.shape} for an input of shape "
                f"{shape}: that op's VJP is wrong (the gradient of {where()})"
            )
        cotangent = cotangent.astype(dtype, copy=False)
    if isinstance(cotangent, np.ndarray | Tracer) and not isinstance(
        leaf, np.ndarray | Tensor | Tracer
    ):
        return cotangent[()]  # a scalar argument gets a NumPy scalar gradient
    return cotangent


def _linearize(
    f: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    argnums: tuple[int, ...],
    transform: str,
    log: bool = False,
) -> tuple[Tape, Any, Pullback]:
    """Run ``f`` with the ``argnums`` arguments traced; return the tape, output and pullback.

    ``pullback(seeds, callers, consume)`` sweeps the tape back from ``seeds`` (output
    node -> cotangent) and returns one gradient pytree per traced argument, none of
    them sharing memory with another, with a traced leaf or with the arrays in ``callers``.
    """
    tape = Tape(log=log)
    call_args = list(args)
    traced = []  # (argnum, argument, its leaves, first node, structure)
    for n in argnums:
        first = tape.num_nodes
        call_args[n], leaves, treedef = _bind(tape, args[n], n, transform)
        traced.append((n, args[n], leaves, first, treedef))
    try:
        out = f(*call_args, **kwargs)
    finally:
        tape.alive = False

    def pullback(seeds: dict[int, Any], callers: list[Any], consume: bool) -> list[Any]:
        cotangents = backward(tape, seeds, consume) if seeds else {}
        grads = []
        for n, arg, leaves, first, _ in traced:
            for i, leaf in enumerate(leaves):
                g = cotangents.get(first + i)
                # The common case, an array like the leaf, is checked inline: 2.0 against
                # 5.4 us for the MLP's four parameters (timeit, AMD EPYC, 2026-11-29).
                if not (
                    type(g) is np.ndarray
                    and type(leaf) is np.ndarray
                    and g.shape == leaf.shape
                    and g.dtype is leaf.dtype
                ):
                    g = _gradient(g, leaf, lambda: _where(n, arg, i))  # noqa: B023
                grads.append(g)
        own_memory(grads, callers + [x for t in traced for x in t[2]])
        trees, start = [], 0
        for _, _, leaves, _, treedef in traced:
            trees.append(tree_unflatten(treedef, grads[start : start + len(leaves)]))
            start += len(leaves)
        return trees

    return tape, out, pullback


def _lower(x: Any, tape: Tape) -> Any:
    """A traced value of ``tape`` as seen by the level outside it."""
    return x._value if isinstance(x, Tensor) and x._tape is tape else x


def _copy_arrays(tree: Any) -> Any:
    leaves, treedef = tree_flatten(tree)
    return tree_unflatten(
        treedef, [x.copy() if isinstance(x, np.ndarray | Tracer) else x for x in leaves]
    )


def _output_leaves(out: Any, tape: Tape, transform: str) -> tuple[list[Any], TreeDef, list[Any]]:
    """``out``'s leaves, its structure, and the leaves as seen outside ``tape``."""
    out_leaves, out_def = tree_flatten(out)
    lowered = [_lower(x, tape) for x in out_leaves]
    for path, x in zip(tree_paths(out), lowered, strict=True):
        if not (
            x is None or isinstance(x, Tensor | Tracer | np.ndarray | np.generic | int | float)
        ):
            raise TypeError(
                f"{transform}: f's output{path_str(path) if path else ''} is a "
                f"{type(x).__name__}, not an array"
            )
    return out_leaves, out_def, lowered


def _split_aux(out: Any, has_aux: bool, tape: Tape, transform: str) -> tuple[Any, Any]:
    """``(out, aux)`` from ``f``'s result; ``aux`` as seen outside ``tape`` (no gradient)."""
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"{transform}: has_aux=True: f must return a pair (out, aux), got {type(out).__name__}"
        )
    leaves, treedef = tree_flatten(out[1])
    return out[0], tree_unflatten(treedef, [_lower(x, tape) for x in leaves])


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """Evaluate ``f(*primals)`` and return ``(out, vjp_fn)`` (``(out, vjp_fn, aux)`` with
    ``has_aux``, when ``f`` returns ``(out, aux)``).

    ``vjp_fn(cotangent)``, with ``cotangent`` shaped like ``out`` (same structure,
    shapes and dtype kinds, no broadcasting), returns the tuple of gradients of
    ``sum(cotangent * out)``, one per primal, each shaped like its primal. It may be
    called any number of times. The primals are copied, and so is ``out``: the
    caller may modify either before calling ``vjp_fn``.
    """
    nums = tuple(range(len(primals)))
    tape, out, pullback = _linearize(f, _copy_arrays(primals), {}, nums, "vjp")
    out, aux = _split_aux(out, has_aux, tape, "vjp")
    out_leaves, out_def, lowered = _output_leaves(out, tape, "vjp")
    callers = [x for x in tree_flatten(primals)[0] if isinstance(x, np.ndarray | Tracer)]

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        ct_leaves = check_like(cotangent, out, "cotangent", "the output", "vjp_fn")
        seeds: dict[int, Any] = {}
        for leaf, ct in zip(out_leaves, ct_leaves, strict=True):
            if isinstance(leaf, Tensor) and leaf._tape is tape:
                ct = ct if isinstance(ct, Tensor) and ct.traced else as_array(stop_gradient(ct))
                previous = seeds.get(leaf._node)
                seeds[leaf._node] = ct if previous is None else previous + ct
        # (A constant Tensor cotangent holds the caller's array too.)
        return tuple(pullback(seeds, callers + [stop_gradient(c) for c in ct_leaves], False))

    value = _copy_arrays(tree_unflatten(out_def, lowered))
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def linearize(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """Evaluate ``f(*primals)`` and return ``(out, jvp_fn)`` (``(out, jvp_fn, aux)`` with
    ``has_aux``): ``jvp_fn(*tangents)`` is the Jacobian of ``f`` at ``primals`` times the
    tangents, callable any number of times. Each tangent must have its primal's
    structure, shape and dtype kind; the result has ``out``'s structure and dtypes.

    Forward mode by transposition. The pullback ``c -> J^T c`` is linear in ``c``, and
    every VJP is written with ops, so running it once on a traced (zero) cotangent
    records ``J^T`` as a tape of linear ops; sweeping that tape backwards from a tangent
    ``u`` computes ``(J^T)^T u = J u``. No op needs a tangent rule of its own. The cost:
    one forward pass and one backward pass recorded once, then one backward sweep per
    ``jvp_fn`` call. (A ``custom_vjp`` function is refused: its ``f_bwd`` need not be
    linear, as JAX refuses forward mode through one.)
    """
    nums = tuple(range(len(primals)))
    primals = _copy_arrays(primals)  # jvp_fn may run after the caller changed them
    tape, out, pullback = _linearize(f, primals, {}, nums, "linearize")
    out, aux = _split_aux(out, has_aux, tape, "linearize")
    out_leaves, out_def, lowered = _output_leaves(out, tape, "linearize")
    transposed = Tape(transposing=True)
    seeds: dict[int, Any] = {}
    cotangent_nodes: list[int | None] = []  # per output leaf: its cotangent's node on transposed
    for leaf in out_leaves:
        if isinstance(leaf, Tensor) and leaf._tape is tape:
            value = stop_gradient(leaf)
            cotangent = transposed.bind(np.zeros(np.shape(value), np.result_type(value)))
            previous = seeds.get(leaf._node)
            seeds[leaf._node] = cotangent if previous is None else previous + cotangent
            cotangent_nodes.append(cotangent._node)
        else:
            cotangent_nodes.append(None)
    try:
        # The values recorded here are all products with a zero cotangent, thrown away:
        # only the ops matter, so 0 * inf and the like must not warn.
        with np.errstate(all="ignore"):
            transpose = tree_flatten(tuple(pullback(seeds, [], True)))[0]
    finally:
        transposed.alive = False
    primal_leaves = tree_flatten(tuple(primals))[0]

    def jvp_fn(*tangents: Any) -> Any:
        t_leaves = _check_tangents(tangents, primals, "jvp")
        tangent_seeds: dict[int, Any] = {}
        for g, u, primal in zip(transpose, t_leaves, primal_leaves, strict=True):
            if isinstance(g, Tensor) and g._tape is transposed:
                if not (isinstance(u, Tensor) and u.traced):  # in the primal's own dtype
                    u = as_array(stop_gradient(u), np.result_type(stop_gradient(primal)))
                previous = tangent_seeds.get(g._node)
                tangent_seeds[g._node] = u if previous is None else previous + u
        pushed = backward(transposed, tangent_seeds, False) if tangent_seeds else {}
        results = []
        for node, value in zip(cotangent_nodes, lowered, strict=True):
            dtype = np.result_type(stop_gradient(value))
            t = pushed.get(node) if node is not None else None
            if t is None:
                t = np.zeros(np.shape(stop_gradient(value)), dtype)
            elif isinstance(t, Tensor) and t.traced:
                t = t if t.dtype == dtype else t.astype(dtype)
            else:
                t = as_array(stop_gradient(t)).astype(dtype)  # always a fresh array
            if not isinstance(value, np.ndarray | Tensor | Tracer) and isinstance(
                t, np.ndarray | Tracer
            ):
                t = t[()]  # a scalar output gets a scalar tangent, as vjp gives scalar gradients
            results.append(t)
        return tree_unflatten(out_def, results)

    value = tree_unflatten(out_def, lowered)
    return (value, jvp_fn, aux) if has_aux else (value, jvp_fn)


def _check_tangents(tangents: Any, primals: Any, transform: str) -> list[Any]:
    """The tangents' leaves, checked against the primals (JAX's error types)."""
    if (
        len(tangents) != len(primals)
        or tree_flatten(tuple(tangents))[1] != tree_flatten(tuple(primals))[1]
    ):
        raise TypeError(
            f"{transform}: the tangents must have the primals' tree structure: "
            f"{len(primals)} primals with {tree_flatten(tuple(primals))[1]}, got "
            f"{len(tangents)} tangents with {tree_flatten(tuple(tangents))[1]}"
        )
    return check_like(tuple(tangents), tuple(primals), "tangent", "its primal", transform)


def jvp(f: Callable[..., Any], primals: Any, tangents: Any, has_aux: bool = False) -> Any:
    """``(f(*primals), J tangents)``: the Jacobian-vector product, as ``jax.jvp``.

    ``primals`` and ``tangents`` are tuples (or lists) of the same length; each tangent
    has its primal's pytree structure, shapes and dtype kinds, with no broadcasting.
    The output may be any pytree of arrays; the tangent output has its structure and
    dtypes. With ``has_aux`` ``f`` returns ``(out, aux)`` and the result is
    ``(out, tangent_out, aux)``. Composes with the other transforms (``jvp`` of
    ``grad``, ``grad`` of ``jvp``). See :func:`linearize` for how it is computed.
    """
    for name, value in (("primals", primals), ("tangents", tangents)):
        if not isinstance(value, tuple | list):
            raise TypeError(
                f"jvp: {name} must be a tuple or list of arguments (one per positional "
                f"argument of f), got {type(value).__name__}; write jvp(f, (x,), (v,))"
            )
    _check_tangents(tuple(tangents), tuple(primals), "jvp")
    result = linearize(f, *primals, has_aux=has_aux)
    tangent_out = result[1](*tangents)
    return (result[0], tangent_out, result[2]) if has_aux else (result[0], tangent_out)


def value_and_grad(
    f: Callable[..., Any], argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """``f``'s value and its gradient with respect to the ``argnums`` arguments.

    ``f`` must return a real floating-point scalar (or ``(scalar, aux)`` with
    ``has_aux``). The result is ``(value, grads)``, or ``((value, aux), grads)``;
    ``grads`` is shaped like the argument (a pytree for a pytree), or a tuple of those
    when ``argnums`` is a tuple. ``argnums`` names distinct positional arguments.
    It is :func:`vjp` with a cotangent of one, the tape consumed as it is swept.
    """
    nums = argnums_tuple(argnums, "grad")
    single = not isinstance(argnums, tuple | list)

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        if single and 0 <= nums[0] < len(args):  # a valid int: nothing to normalize
            call_nums = nums
        else:
            call_nums = normalize_argnums(nums, len(args), "grad")
        tape, out, pullback = _linearize(f, args, kwargs, call_nums, "grad")
        loss, aux, value = check_scalar_output(out, has_aux, "grad")
        traced_loss = isinstance(loss, Tensor) and loss._tape is tape
        seeds = {loss._node: np.array(1, value.dtype)} if traced_loss else {}
        grads = pullback(seeds, [a for a in args if isinstance(a, _ARRAYS)], True)
        result = grads[0] if single else tuple(grads)
        value = _lower(loss, tape)
        if type(value) is np.ndarray:  # f may return (a view of) an input: not the caller's own
            value = value.copy()
        elif isinstance(value, Tracer) and isinstance(value._concrete, np.ndarray):
            value = value.copy()  # (as above, for an array that tg.jit traces)
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
    v_leaves = check_like(v, x, "v", "x", "hvp")

    def directional_derivative(y: Any) -> Any:
        total: Any = 0.0
        for g, direction in zip(tree_flatten(grad(f)(y))[0], v_leaves, strict=True):
            total = total + reductions.sum(g * direction)
        return total

    return grad(directional_derivative)(x)


def trace(f: Callable[..., Any], *args: Any, argnums: ArgNums = 0, **kwargs: Any) -> Tape:
    """Run ``f(*args)`` once and return its tape; ``print`` it to see every op.

    The ``argnums`` arguments are traced (as ``grad`` would); the rest appear as
    constants.
    """
    nums = normalize_argnums(argnums_tuple(argnums, "trace"), len(args), "trace")
    tape, _, _ = _linearize(f, args, kwargs, nums, "trace", log=True)
    return tape
