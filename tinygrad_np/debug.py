"""Opt-in checks of what the engine otherwise trusts: ``with tg.debug_checks(): ...``.

A transform started inside the block gives its tape a :class:`Watch`, which keeps

* a copy of every array an op recorded (its inputs, static arguments such as indices,
  and its result): the VJPs read those arrays, so one modified in place before the
  backward pass would silently give the gradient of other numbers;
* the shape and dtype of every node, so that a VJP returning a gradient of another
  shape, or of a less precise or different kind of dtype, than its input is reported
  with the op's name instead of surfacing far away, or never.

Both cost memory and time (every array is copied), so they are off by default.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["Watch", "debug_checks", "watching"]

_active = contextvars.ContextVar("tinygrad_np_debug_checks", default=False)


@contextlib.contextmanager
def debug_checks() -> Iterator[None]:
    """Check, while active, that recorded arrays stay unmodified and VJPs keep shapes.

    Violations raise a RuntimeError naming the op (and its node on the tape).
    """
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)


def watching() -> Watch | None:
    """A new Watch for a tape made now, or None outside ``debug_checks()``."""
    return Watch() if _active.get() else None


def _value(x: Any) -> Any:
    while hasattr(x, "_tape"):  # a Tensor, of this or an outer transform
        x = x._value
    return x


class Watch:
    """What one tape recorded, kept for the checks."""

    def __init__(self) -> None:
        self.copies: list[tuple[str, int, str, Any, Any]] = []
        self.nodes: dict[int, tuple[str, tuple[int, ...], np.dtype[Any]]] = {}

    def node(self, node: int, name: str, value: Any) -> None:
        """Remember node ``node``'s shape and dtype; ``name`` is the op that made it."""
        value = np.asarray(_value(value))
        self.nodes[node] = (name, value.shape, value.dtype)

    def op(
        self, name: str, node: int, args: Sequence[Any], kwargs: dict[str, Any], ans: Any
    ) -> None:
        """Copy every array op ``name`` (its result is ``node``) recorded."""
        self.node(node, name, ans)
        arrays = [(f"argument {i}", a) for i, a in enumerate(args)]
        for key, value in kwargs.items():
            parts = value if isinstance(value, tuple) else (value,)
            arrays += [(f"{key}=", p) for p in parts]
        arrays.append(("result", ans))
        for what, array in arrays:
            if isinstance(array, np.ndarray):
                self.copies.append((name, node, what, array, array.copy()))

    def check_unmodified(self) -> None:
        for name, node, what, array, copy in self.copies:
            if array.shape != copy.shape or array.tobytes() != copy.tobytes():
                raise RuntimeError(
                    f"{name} (node %{node}): its {what} was modified in place after the op "
                    "was recorded, so the gradient would be computed from other values. "
                    "Do not modify arrays a transform has seen until it has returned "
                    "(use a copy, or x = x + ... instead of x += ...)"
                )

    def check_vjp(self, node: int, parent: int, contribution: Any) -> None:
        """The VJP of op ``node`` gave ``contribution`` for input node ``parent``."""
        name = self.nodes[node][0]
        _, shape, dtype = self.nodes[parent]
        got = np.asarray(_value(contribution))
        # Promotion is allowed (a float32 input of a float64 op gets a float64 gradient, cast
        # where it reaches the caller); a change of shape or kind, or a loss of precision, is not.
        if got.shape != shape or got.dtype.kind != dtype.kind or got.dtype < dtype:
            raise RuntimeError(
                f"{name} (node %{node}): its VJP returned a gradient of shape {got.shape} and "
                f"dtype {got.dtype} for input %{parent} of shape {shape} and dtype {dtype}"
            )
