"""The README's examples run and its printed output is what the code prints."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy_table
import pytest

from experiments import tutorial
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


def test_the_unchanged_numpy_example_gives_the_tutorials_hand_derived_gradient():
    namespace = {}
    exec(compile(block_containing("np.clip(A2"), "README.md", "exec"), namespace)
    params, X, Y = namespace["params"], namespace["X"], namespace["Y"]
    _, expected = tutorial.loss_and_gradients_by_hand(params, X, Y)
    for name, grad in namespace["grads"].items():
        # The same mathematics evaluated in another order: float64 rounding only.
        assert np.max(np.abs(grad - expected[name])) <= 1e-10 * np.max(np.abs(expected[name]))


def test_the_debug_checks_example_raises_naming_the_op():
    block = block_containing("with tg.debug_checks():")
    with pytest.raises(RuntimeError, match=r"mul \(node %1\): its argument 1 was modified"):
        exec(compile(block, "README.md", "exec"), {})


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


# --- every block, as a reader runs it ----------------------------------------------------------
#
# Each fenced block of the README runs here as shown (or, for the test command, in CI itself):
#
# * python: the blocks of one section run in order in one fresh interpreter (a section's blocks
#   may build on each other; each section starts from nothing), in an empty directory. A block
#   meant to fail says so on the failing line with a comment `# SomeError: message ...`.
# * bash: each command is run as written, where its section says (see BASH_BLOCKS).
# * text: output, compared with what the code prints (see TEXT_BLOCKS).
#
# A block of any other kind, or a bash or text block no handler recognizes, fails the suite:
# every block must be run by something.

REPOSITORY = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\n", flags=re.DOTALL | re.MULTILINE)
EXPECTED_ERROR = re.compile(
    r"#\s*([A-Z]\w*(?:Error|Exception)): (.*?)(?:\s*\.\.\.)?$", re.MULTILINE
)


class Block(NamedTuple):
    language: str
    text: str
    line: int  # where the block's code starts in README.md
    section: str  # the "## " heading above it ("" before the first)


def readme_blocks(readme: str = README) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(readme):
        before = readme[: match.start()]
        headings = re.findall(r"^## (.+)$", before, flags=re.MULTILINE)
        line = before.count("\n") + 2
        blocks.append(Block(match[1], match[2], line, headings[-1] if headings else ""))
    return blocks


RUN_SECTION = """
import json, re, sys
blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
for text, line in blocks:
    expected = re.search(sys.argv[1], text, flags=re.MULTILINE)
    try:
        exec(compile("\\n" * (line - 1) + text, "README.md", "exec"), namespace)
    except Exception as e:
        if expected and type(e).__name__ == expected[1] and str(e).startswith(expected[2]):
            continue
        raise
    if expected:
        sys.exit(f"the block at README.md:{line} should raise {expected[1]}: {expected[2]}")
"""


def sections_with_python() -> dict[str, list[Block]]:
    sections: dict[str, list[Block]] = {}
    for block in readme_blocks():
        if block.language == "python":
            sections.setdefault(block.section, []).append(block)
    return sections


@pytest.mark.parametrize("section", sections_with_python())
def test_every_python_block_runs_in_order_in_a_fresh_interpreter(section, tmp_path):
    blocks = [(b.text, b.line) for b in sections_with_python()[section]]
    process = subprocess.run(
        [sys.executable, "-c", RUN_SECTION, EXPECTED_ERROR.pattern],
        input=json.dumps(blocks),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert process.returncode == 0, process.stderr


def test_the_blocks_meant_to_fail_say_how():
    failing = [
        b for b in readme_blocks() if b.language == "python" and EXPECTED_ERROR.search(b.text)
    ]
    assert [EXPECTED_ERROR.search(b.text)[1] for b in failing] == [
        "RuntimeError",
        "ConcretizationTypeError",
    ]


def run_test_command_in_ci(block: Block, tmp_path: Path) -> None:
    """The test command is not run here (it runs this suite): .ci/run runs it, verbatim."""
    extract = re.search(r"^test_command=\$\((awk .*)\)$", (REPOSITORY / ".ci" / "run").read_text(),
                        flags=re.MULTILINE)  # fmt: skip
    assert extract, ".ci/run no longer reads the test command from README.md"
    process = subprocess.run(
        ["bash", "-c", extract[1]], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    assert process.stdout.strip() == block.text.strip()
    assert 'pip install -e ".[dev]"' in block.text and "python -m pytest" in block.text


def run_the_gradient_checking_tests_with_pytest(block: Block, tmp_path: Path) -> None:
    """`python -m pytest test_swish.py` on the block above it, saved under that name."""
    (example,) = [b for b in readme_blocks() if "def test_swish" in b.text]
    assert example.section == block.section and example.line < block.line
    (tmp_path / "test_swish.py").write_text(example.text)
    words = block.text.split()
    assert words[:3] == ["python", "-m", "pytest"]
    process = subprocess.run(
        [sys.executable, *words[1:], "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "2 passed" in process.stdout


def copy_of_the_repository(destination: Path) -> Path:
    """The files a fresh clone has (no virtual environment, runs, caches)."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "runs", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build"
    )
    return Path(shutil.copytree(REPOSITORY, destination / "tinygrad_np", ignore=ignore))


THOROUGH = os.environ.get("TINYGRAD_NP_HYPOTHESIS_PROFILE") == "thorough"


def train_the_default_recipe_in_a_fresh_environment(block: Block, tmp_path: Path) -> None:
    """The first command of the README, as a newcomer runs it: in a fresh clone, the whole
    default recipe. The thorough profile runs the whole line, a new virtual environment and
    its install included (a few minutes, and the package index must be reachable); the
    default suite runs its last command, the training, with this suite's interpreter, whose
    environment the test command (what CI runs) installed the same way with the dev extras,
    a superset of the experiments extras."""
    setup, _, train = block.text.strip().rpartition(" && ")
    assert (
        setup == 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[experiments]"'
    )
    assert train == "python experiments/train.py"
    clone = copy_of_the_repository(tmp_path)
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    argv = ["bash", "-c", block.text] if THOROUGH else [sys.executable, "experiments/train.py"]
    process = subprocess.run(
        argv, cwd=clone, capture_output=True, text=True, timeout=3600, env=environment
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    runs = clone / "runs" / "mnist"
    latest = runs / (runs / "latest").read_text().strip()
    metrics = json.loads((latest / "metrics.json").read_text())
    assert metrics["full_run"] and len(metrics["epochs"]) == 20
    # The README's figure for this recipe is 98.4-98.5% (seeds and BLAS kernels move it).
    assert metrics["final_test_accuracy"] >= 0.98


BASH_BLOCKS = {  # the first line of a bash block -> how it is run
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && python -m pytest':
        run_test_command_in_ci,
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[experiments]" && '
    "python experiments/train.py": train_the_default_recipe_in_a_fresh_environment,
    "python -m pytest test_swish.py": run_the_gradient_checking_tests_with_pytest,
}  # fmt: skip


def check_the_printed_tape(block: Block, tmp_path: Path) -> None:
    namespace = {}
    exec(compile(fenced_blocks("python")[0], "README.md", "exec"), namespace)
    tape = namespace["tg"].trace(
        namespace["loss"], namespace["params"], namespace["X"], namespace["y"]
    )
    assert block.text.strip() == str(tape)


TEXT_BLOCKS = {"Tape: ": check_the_printed_tape}  # how a text block starts -> its check


def block_handler(block: Block):
    if block.language == "bash":
        return BASH_BLOCKS.get(block.text.strip().splitlines()[0])
    if block.language == "text":
        return next(
            (check for start, check in TEXT_BLOCKS.items() if block.text.startswith(start)), None
        )
    return None


def test_every_block_is_run_by_something():
    for block in readme_blocks():
        if block.language != "python":
            assert block_handler(block) is not None, (
                f"README.md:{block.line}: no test runs this {block.language or 'unlabelled'} "
                "block; add its handler to tests/test_readme.py"
            )


@pytest.mark.parametrize(
    "block",
    [b for b in readme_blocks() if b.language != "python" and block_handler(b) is not None],
    ids=lambda b: f"line{b.line}",
)
def test_every_bash_and_text_block_does_what_it_shows(block, tmp_path):
    block_handler(block)(block, tmp_path)
