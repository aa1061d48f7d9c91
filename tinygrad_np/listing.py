"""A tape as text, the Wengert list that ``print(tg.trace(f, ...))`` shows, or as a graph.

Only tapes made by ``tg.trace`` keep a :class:`Listing`: a training step records
nothing it does not need for its backward pass. ``tg.trace(f, ...).to_dot()`` draws
the same list as a Graphviz graph with the ``graphviz`` package (an optional
dependency: ``pip install "tinygrad_np[graph]"``), imported only when asked for.
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

    def to_dot(self) -> Any:
        """The tape as a ``graphviz.Digraph``: inputs as boxes, ops as ellipses (the last,
        the output, doubled), constants as plain text, an edge per argument (labelled with
        its position when an op takes several). ``.source`` is the DOT text; Jupyter draws
        it and ``.render()`` writes a file, both with Graphviz's ``dot`` program."""
        try:
            import graphviz
        except ImportError:
            raise ImportError(
                "Tape.to_dot needs the graphviz package: pip install graphviz (or "
                '"tinygrad_np[graph]"); drawing the graph also needs Graphviz\'s dot program '
                "(https://graphviz.org/download/)"
            ) from None
        graph = graphviz.Digraph("tape", graph_attr={"rankdir": "TB"})
        graph.attr("node", fontname="Helvetica", fontsize="11")
        graph.attr("edge", fontname="Helvetica", fontsize="10")
        for name, node, shape, dtype in self.inputs:
            graph.node(f"n{node}", f"%{node} {name}\n{shape} {dtype}", shape="box")
        constants = 0
        for op in self.ops:
            last = op is self.ops[-1]
            graph.node(
                f"n{op.node}",
                f"%{op.node} {op.name}\n{op.shape} {op.dtype}",
                shape="ellipse",
                peripheries="2" if last else "1",
            )
            for position, (arg, shape) in enumerate(op.args):
                label = {"label": str(position)} if len(op.args) > 1 else {}
                if arg is None:
                    source = f"c{constants}"
                    constants += 1
                    graph.node(source, f"const {shape}", shape="plaintext", fontcolor="gray40")
                else:
                    source = f"n{arg}"
                graph.edge(source, f"n{op.node}", **label)
        return graph

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
