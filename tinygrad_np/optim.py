"""Optimizers as pure functions over parameter pytrees.

An optimizer is a pair of functions, in the spirit of optax::

    opt = tg.optim.adam(lr=1e-3)
    state = opt.init(params)
    for x, y in batches:
        grads = tg.grad(loss)(params, x, y)
        params, state = opt.update(params, grads, state)

``update`` never modifies its arguments: it returns new parameters and a new
state. The state is itself a pytree -- a dict of arrays holding a step counter
(an int64 0-d array) and, per optimizer, moment estimates shaped like the
parameters -- so it can be saved next to the parameters (see
:mod:`tinygrad_np.checkpoint`).

Dtypes are preserved: float32 parameters get float32 updates and float32 state.
Hyperparameters are used as Python floats, which NumPy 2 treats as "weak"
scalars that adopt the array's dtype; a NumPy float64 scalar (or 0-d array)
would instead promote every update to float64.

The learning rate may be a constant or a schedule: a function of the number of
updates already applied (0 for the first) returning the rate for this update.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_np.tree import path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = [
    "Optimizer",
    "Schedule",
    "adam",
    "cosine_decay",
    "exponential_decay",
    "sgd",
]

Schedule = Callable[[int], float]
State = dict[str, Any]


@dataclass(frozen=True)
class Optimizer:
    """``init(params) -> state`` and ``update(params, grads, state) -> (params, state)``.

    ``name`` and ``hyperparams`` describe the optimizer (for logs and metadata).
    """

    name: str
    hyperparams: dict[str, Any]
    init: Callable[[Any], State] = field(repr=False)
    update: Callable[[Any, Any, State], tuple[Any, State]] = field(repr=False)


# --- learning-rate schedules -------------------------------------------------------------


def exponential_decay(lr: float, decay_rate: float, decay_steps: int) -> Schedule:
    """``lr * decay_rate ** (step / decay_steps)``: the rate shrinks by ``decay_rate``
    every ``decay_steps`` updates (smoothly, not in stairs)."""
    _check_positive("exponential_decay", "lr", lr)
    if not 0 < decay_rate <= 1:
        raise ValueError(f"exponential_decay: decay_rate must lie in (0, 1], got {decay_rate}")
    if decay_steps <= 0:
        raise ValueError(f"exponential_decay: decay_steps must be positive, got {decay_steps}")
    return lambda step: lr * decay_rate ** (step / decay_steps)


def cosine_decay(lr: float, decay_steps: int, final_lr: float = 0.0) -> Schedule:
    """Half a cosine from ``lr`` at step 0 down to ``final_lr`` at ``decay_steps``,
    then constant."""
    _check_positive("cosine_decay", "lr", lr)
    if decay_steps <= 0:
        raise ValueError(f"cosine_decay: decay_steps must be positive, got {decay_steps}")
    if not 0 <= final_lr <= lr:
        raise ValueError(f"cosine_decay: final_lr must lie in [0, lr={lr}], got {final_lr}")

    def schedule(step: int) -> float:
        progress = min(step, decay_steps) / decay_steps
        return final_lr + (lr - final_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    return schedule


# --- optimizers ----------------------------------------------------------------------------


def sgd(lr: float | Schedule, momentum: float = 0.0) -> Optimizer:
    """Stochastic gradient descent, optionally with (heavy-ball) momentum.

    Without momentum: ``p <- p - lr * g``. With momentum ``mu``:
    ``v <- mu * v + g`` then ``p <- p - lr * v`` (the PyTorch convention, where
    ``v`` starts at zero). The state is ``{"step"}`` or ``{"step", "velocity"}``.
    """
    rate = _as_schedule("sgd", lr)
    if not 0 <= momentum < 1:
        raise ValueError(f"sgd: momentum must lie in [0, 1), got {momentum}")
    momentum = float(momentum)  # a NumPy float64 scalar would promote float32 updates
    hyperparams = {"lr": lr if not callable(lr) else "schedule", "momentum": momentum}

    def init(params: Any) -> State:
        leaves = _float_leaves("sgd.init", params)
        state: State = {"step": np.zeros((), np.int64)}
        if momentum:
            state["velocity"] = _zeros_like(params, leaves)
        return state

    def update(params: Any, grads: Any, state: State) -> tuple[Any, State]:
        p_leaves, treedef, paths = _flatten_params("sgd.update", params)
        g_leaves = _matching("sgd.update", "grads", grads, p_leaves, treedef, paths)
        step = _step("sgd.update", state)
        neg_lr = -float(rate(step))
        if momentum:
            v_leaves = _matching(
                "sgd.update", "state['velocity']", state.get("velocity"), p_leaves, treedef, paths
            )
            new_v = []
            for g, v in zip(g_leaves, v_leaves, strict=True):
                nv = np.multiply(v, momentum, out=np.empty_like(v))
                nv += g
                new_v.append(nv)
            directions = new_v
        else:
            directions = g_leaves
        new_params = []
        for p, d in zip(p_leaves, directions, strict=True):
            new = np.multiply(d, neg_lr, out=np.empty_like(p))
            new += p
            new_params.append(new)
        new_state: State = {"step": np.asarray(step + 1, np.int64)}
        if momentum:
            new_state["velocity"] = tree_unflatten(treedef, new_v)
        return tree_unflatten(treedef, new_params), new_state

    return Optimizer("sgd", hyperparams, init, update)


def adam(
    lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> Optimizer:
    """Adam (Kingma & Ba, 2015) with bias correction.

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g**2``; then, at update
    ``t`` (1 for the first), ``p <- p - lr * m_hat / (sqrt(v_hat) + eps)`` with
    ``m_hat = m / (1 - b1**t)`` and ``v_hat = v / (1 - b2**t)``. The state is
    ``{"step", "m", "v"}``.
    """
    rate = _as_schedule("adam", lr)
    for name, beta in (("b1", b1), ("b2", b2)):
        if not 0 <= beta < 1:
            raise ValueError(f"adam: {name} must lie in [0, 1), got {beta}")
    if not eps >= 0:
        raise ValueError(f"adam: eps must be non-negative, got {eps}")
    b1, b2, eps = float(b1), float(b2), float(eps)  # NumPy scalars would promote float32
    hyperparams = {"lr": lr if not callable(lr) else "schedule", "b1": b1, "b2": b2, "eps": eps}

    def init(params: Any) -> State:
        leaves = _float_leaves("adam.init", params)
        return {
            "step": np.zeros((), np.int64),
            "m": _zeros_like(params, leaves),
            "v": _zeros_like(params, leaves),
        }

    def update(params: Any, grads: Any, state: State) -> tuple[Any, State]:
        p_leaves, treedef, paths = _flatten_params("adam.update", params)
        g_leaves = _matching("adam.update", "grads", grads, p_leaves, treedef, paths)
        m_leaves = _matching("adam.update", "state['m']", state.get("m"), p_leaves, treedef, paths)
        v_leaves = _matching("adam.update", "state['v']", state.get("v"), p_leaves, treedef, paths)
        step = _step("adam.update", state)
        t = step + 1
        # Python floats throughout, so that float32 arrays stay float32.
        lr_t = float(rate(step))
        step_size = lr_t / (1 - b1**t)
        v_scale = 1 / math.sqrt(1 - b2**t)
        new_p, new_m, new_v = [], [], []
        for p, g, m, v in zip(p_leaves, g_leaves, m_leaves, v_leaves, strict=True):
            # m + (1 - b1) (g - m) == b1 m + (1 - b1) g, with one array instead of three.
            m1 = np.subtract(g, m, out=np.empty_like(p))
            m1 *= 1 - b1
            m1 += m
            v1 = np.square(g, out=np.empty_like(p))
            v1 -= v
            v1 *= 1 - b2
            v1 += v
            # The new parameters are built in the array that first holds the denominator.
            p1 = np.sqrt(v1, out=np.empty_like(p))
            p1 *= v_scale
            p1 += eps
            np.divide(m1, p1, out=p1)
            p1 *= -step_size
            p1 += p
            new_p.append(p1)
            new_m.append(m1)
            new_v.append(v1)
        new_state: State = {
            "step": np.asarray(t, np.int64),
            "m": tree_unflatten(treedef, new_m),
            "v": tree_unflatten(treedef, new_v),
        }
        return tree_unflatten(treedef, new_p), new_state

    return Optimizer("adam", hyperparams, init, update)


# --- checks ----------------------------------------------------------------------------


def _check_positive(where: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
        raise ValueError(f"{where}: {name} must be a positive finite number, got {value!r}")


def _as_schedule(where: str, lr: float | Schedule) -> Schedule:
    if callable(lr):
        return lr
    _check_positive(where, "lr", lr)
    constant = float(lr)
    return lambda step: constant


def _where(paths: list[tuple[Any, ...]], i: int) -> str:
    return path_str(paths[i])


def _flatten_params(where: str, params: Any) -> tuple[list[Any], Any, list[tuple[Any, ...]]]:
    leaves = _float_leaves(where, params)
    _, treedef = tree_flatten(params)
    return leaves, treedef, tree_paths(params)


def _float_leaves(where: str, params: Any) -> list[Any]:
    leaves = tree_flatten(params)[0]
    if not leaves:
        raise ValueError(f"{where}: params has no leaves (nothing to optimize)")
    for path, leaf in zip(tree_paths(params), leaves, strict=True):
        if not isinstance(leaf, np.ndarray) or not np.issubdtype(leaf.dtype, np.floating):
            kind = leaf.dtype if isinstance(leaf, np.ndarray) else type(leaf).__name__
            raise TypeError(
                f"{where}: params{path_str(path) if path else ''} must be a floating-point "
                f"ndarray, got {kind}"
            )
    return leaves


def _zeros_like(params: Any, leaves: list[Any]) -> Any:
    return tree_unflatten(tree_flatten(params)[1], [np.zeros_like(p) for p in leaves])


def _matching(
    where: str,
    name: str,
    tree: Any,
    p_leaves: list[Any],
    treedef: Any,
    paths: list[tuple[Any, ...]],
) -> list[Any]:
    """The leaves of ``tree``, checked to mirror the parameters in structure, shape, dtype."""
    if tree is None:
        raise ValueError(f"{where}: {name} is missing (was the state made by this optimizer?)")
    leaves, tree_def = tree_flatten(tree)
    if tree_def != treedef:
        raise ValueError(
            f"{where}: {name} does not have the structure of params: its leaves are "
            f"{[path_str(p) for p in tree_paths(tree)]}, the parameters' are "
            f"{[path_str(p) for p in paths]}"
        )
    for i, (leaf, p) in enumerate(zip(leaves, p_leaves, strict=True)):
        shape, dtype = np.shape(leaf), getattr(leaf, "dtype", None)
        label = f"{name}{_where(paths, i) if paths[i] else ''}"
        if shape != p.shape:
            raise ValueError(f"{where}: {label} has shape {shape} but the parameter has {p.shape}")
        if dtype != p.dtype:
            raise TypeError(
                f"{where}: {label} has dtype {dtype} but the parameter has {p.dtype} "
                "(mixing dtypes would change the parameters' dtype)"
            )
    return leaves


def _step(where: str, state: Any) -> int:
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"{where}: state must be the dict made by init(), with a 'step' entry")
    step = np.asarray(state["step"])
    if step.shape != () or not np.issubdtype(step.dtype, np.integer) or step < 0:
        raise ValueError(
            f"{where}: state['step'] must be a non-negative integer scalar, got {state['step']!r}"
        )
    return int(step)
