"""A tape as text: the Wengert list that ``print(tg.trace(f, ...))`` shows.

Only tapes made by ``tg.trace`` keep a :class:`Listing`: a training step records
nothing it does not need for its backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Listing", "OpRecord"]


class OpRecord(NamedTuple):
    """One recorded op.

    ``args`` holds, per positional argument, ``(node or None, shape)``: ``node`` is
    the tape node of a traced input, ``None`` for a constant.
    """

    name: str
    args: tuple[tuple[int | None, tuple[int, ...]], ...]
    node: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


class Listing:
    """The inputs and ops of one tape, in the order they were recorded."""

    def __init__(self) -> None:
        self.inputs: list[tuple[str, int, tuple[int, ...], np.dtype[Any]]] = []
        self.ops: list[OpRecord] = []

    def input(self, name: str, node: int, value: Any) -> None:
        self.inputs.append((name, node, np.shape(value), np.result_type(value)))

    def op(self, name: str, args: Sequence[tuple[int | None, Any]], node: int, ans: Any) -> None:
        """Op ``name`` made ``node`` from ``args``: (its node or None, its plain value) each."""
        shapes = tuple((arg_node, np.shape(value)) for arg_node, value in args)
        self.ops.append(OpRecord(name, shapes, node, np.shape(ans), np.result_type(ans)))

    def __str__(self) -> str:
        lines = [f"Tape: {len(self.inputs)} inputs, {len(self.ops)} ops"]
        for name, node, shape, dtype in self.inputs:
            lines.append(f"  %{node} = input {name} {shape} {dtype}")
        for op in self.ops:
            args = ", ".join(
                ("const" if node is None else f"%{node}") + f" {shape}" for node, shape in op.args
            )
            lines.append(f"  %{op.node} = {op.name}({args}) -> {op.shape} {op.dtype}")
        return "\n".join(lines)
