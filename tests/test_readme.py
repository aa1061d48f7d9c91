"""The README's examples run and its printed output is what the code prints."""

import re
from pathlib import Path

import numpy as np
import numpy_table
import pytest

from tinygrad_np.tensor import NUMPY_OPS, Primitive

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def fenced_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def block_containing(text):
    (block,) = [b for b in fenced_blocks("python") if text in b]
    return block


def test_the_first_example_trains_one_step():
    namespace = {}
    exec(compile(fenced_blocks("python")[0], "README.md", "exec"), namespace)
    params, grads = namespace["params"], namespace["grads"]
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    assert np.isfinite(namespace["value"]) and namespace["value"] > 0
    assert all(params[k].shape == grads[k].shape for k in params)


def test_the_printed_tape_is_what_trace_prints():
    namespace = {}
    exec(compile(fenced_blocks("python")[0], "README.md", "exec"), namespace)
    tg = namespace["tg"]
    tape = tg.trace(namespace["loss"], namespace["params"], namespace["X"], namespace["y"])
    assert fenced_blocks("text")[0].strip() == str(tape)


def test_ci_runs_the_readme_test_command():
    marker = README.index("<!-- test-command -->")
    command = fenced_blocks("bash")[1].strip()
    assert README.index(command) > marker
    assert "pytest" in command and "pip install" in command


def test_the_gradient_checking_example_runs_its_property_tests():
    namespace = {}
    exec(compile(block_containing("def test_swish"), "README.md", "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()  # hypothesis runs each property over its examples


def test_the_unchanged_numpy_example_gives_the_engine_gradient():
    namespace = {}
    exec(compile(fenced_blocks("python")[0], "README.md", "exec"), namespace)
    params, X, y, tg = namespace["params"], namespace["X"], namespace["y"], namespace["tg"]
    expected = tg.grad(namespace["loss"])(params, X, y)
    namespace["Y"] = np.eye(10)[y]
    exec(compile(block_containing("np.clip(A2"), "README.md", "exec"), namespace)
    for name, grad in namespace["grads"].items():
        # The same mathematics evaluated in another order: float64 rounding only.
        assert np.max(np.abs(grad - expected[name])) <= 1e-10 * np.max(np.abs(expected[name]))


def test_the_debug_checks_example_raises_naming_the_op():
    namespace = {}
    exec(compile(fenced_blocks("python")[0], "README.md", "exec"), namespace)
    block = block_containing("with tg.debug_checks():")
    with pytest.raises(RuntimeError, match=r"mul \(node %1\): its argument 1 was modified"):
        exec(compile(block, "README.md", "exec"), namespace)


def test_the_extension_example_differentiates_numpy_code_through_the_new_op():
    namespace = {}
    *body, last = block_containing("from tinygrad_np.extend import").strip().splitlines()
    assert "# array([0.08333333])" in last
    assert np.cbrt not in NUMPY_OPS  # the example must declare an op the library lacks
    try:
        exec(compile("\n".join(body), "README.md", "exec"), namespace)
        result = eval(last.split("  #")[0], namespace)
    finally:
        NUMPY_OPS.pop(np.cbrt, None)  # the example registered np.cbrt: undo it
    np.testing.assert_allclose(result, [1 / 12], rtol=1e-15)


def test_the_table_of_numpy_functions_is_the_registry():
    assert numpy_table.readme_table(README) == numpy_table.render(), (
        "README.md's table of supported NumPy functions differs from the op registry; "
        f"rewrite it with `{numpy_table.WRITE_COMMAND}`"
    )


def test_the_table_follows_the_registry_and_the_writer_rewrites_it(tmp_path):
    before = numpy_table.render()
    assert "`cbrt`" not in before
    Primitive("cbrt", np.cbrt, lambda ans, x: (lambda g: g / (3 * ans * ans),), numpy=[np.cbrt])
    try:
        after = numpy_table.render()
        stale = tmp_path / "README.md"
        stale.write_text(f"# title\n\n{before}\n\ntext after\n")
        numpy_table.write(stale)
    finally:
        NUMPY_OPS.pop(np.cbrt, None)
    assert "`cbrt`" in after
    assert stale.read_text() == f"# title\n\n{after}\n\ntext after\n"


def test_the_forward_mode_examples_run_and_gauss_newton_prints_what_the_readme_shows(capsys):
    namespace = {}
    exec(compile(block_containing("tg.linearize(f, x)"), "README.md", "exec"), namespace)
    assert np.allclose(namespace["H"], namespace["H"].T)
    gauss_newton = block_containing("def residuals")
    exec(compile(gauss_newton, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    shown = [line[2:] for line in gauss_newton.splitlines() if line.startswith("# ")]
    assert printed == shown
    np.testing.assert_allclose(namespace["theta"], [2.0, -1.5], rtol=1e-6)
