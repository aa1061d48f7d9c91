"""``tg.trace(f, ...).to_dot()``: the tape as a Graphviz graph (the optional graphviz package)."""

from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pytest

import tinygrad_np as tg


def mlp_loss(params, X, y):
    hidden = tg.relu(X @ params["W1"] + params["b1"])
    return tg.nn.cross_entropy(hidden @ params["W2"] + params["b2"], y)


@pytest.fixture
def tape() -> tg.Tape:
    rng = np.random.default_rng(0)
    params = {
        "W1": rng.random((4, 3)),
        "b1": np.zeros(3),
        "W2": rng.random((3, 2)),
        "b2": np.zeros(2),
    }
    return tg.trace(mlp_loss, params, rng.random((5, 4)), np.array([0, 1, 0, 1, 1]))


def nodes_and_edges(source: str) -> tuple[dict[str, str], list[tuple[str, str, str | None]]]:
    """{node id: label} and [(tail, head, edge label or None)] of a DOT source."""
    nodes = {
        m[1]: m[2] for m in re.finditer(r'^\t(\w+) \[label="(.*?)"', source, flags=re.M | re.S)
    }
    edges = [
        (m[1], m[2], m[3])
        for m in re.finditer(r"^\t(\w+) -> (\w+)(?: \[label=(\d+)\])?$", source, flags=re.M)
    ]
    return nodes, edges


def test_the_graph_has_a_node_per_input_op_and_constant_and_an_edge_per_argument(tape) -> None:
    pytest.importorskip("graphviz")
    nodes, edges = nodes_and_edges(tape.to_dot().source)
    constants = [n for n in nodes if n.startswith("c")]
    assert len(nodes) == len(tape.log.inputs) + len(tape.ops) + len(constants)
    assert [nodes[f"n{i}"].split("\n")[0] for i in range(4)] == [
        "%0 arg0['W1']", "%1 arg0['b1']", "%2 arg0['W2']", "%3 arg0['b2']",
    ]  # fmt: skip
    assert nodes["n9"] == "%9 cross_entropy\n() float64"
    # Every recorded argument is one edge into its op, labelled by position for several.
    expected = []
    for op in tape.ops:
        for position, (node, _) in enumerate(op.args):
            tail = f"n{node}" if node is not None else None
            expected.append((tail, f"n{op.node}", str(position) if len(op.args) > 1 else None))
    got = [(None if tail.startswith("c") else tail, head, label) for tail, head, label in edges]
    assert got == expected
    assert [nodes[c] for c in constants] == ["const (5, 4)", "const (5,)"]
    assert re.search(r"^\tn9 \[.*peripheries=2", tape.to_dot().source, flags=re.M | re.S)


def test_graphviz_draws_it_when_its_dot_program_is_installed(tape) -> None:
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    svg = tape.to_dot().pipe(format="svg").decode()
    assert svg.lstrip().startswith("<?xml") and "cross_entropy" in svg


def test_without_the_graphviz_package_the_error_says_what_to_install(tape, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    with pytest.raises(ImportError, match=r"Tape.to_dot needs the graphviz package: pip install"):
        tape.to_dot()


def test_importing_the_library_does_not_import_graphviz() -> None:
    import subprocess

    code = "import sys, tinygrad_np; print('graphviz' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        == "False\n"
    )


def test_only_a_traced_tape_can_be_drawn() -> None:
    with pytest.raises(ValueError, match=r"use tg\.trace to get one"):
        tg.Tape().to_dot()
