"""Specification of the package layout: modules import no private names and form no cycle.

Read from the source with ``ast`` (every import statement, at any depth), so the rules
hold for code that is never run by the other tests too.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinygrad_np"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name):
    """``(imported module, [names taken from it])`` for every import in module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:  # `from tinygrad_np import nn`: the module itself
                    yield submodule, []
                else:
                    yield base, [alias.name]


def internal_edges():
    return {
        name: {target for target, _ in imports(name) if target in MODULES and target != name}
        for name in MODULES
    }


def test_no_module_imports_a_private_name_of_another():
    private = [
        f"{name} imports {taken} from {target}"
        for name in MODULES
        for target, names in imports(name)
        if target in MODULES
        for taken in names
        if taken.startswith("_")
    ]
    assert not private, private


def test_no_module_imports_the_package_itself():
    # The package's __init__ imports every module: importing it back would be a cycle.
    offenders = [name for name, targets in internal_edges().items() if "tinygrad_np" in targets]
    assert not offenders, offenders


def test_there_is_no_import_cycle():
    edges = internal_edges()
    edges["tinygrad_np"] = set()  # the package's face imports all; nothing imports it back
    done, on_path, cycles = set(), [], []

    def visit(module):
        if module in on_path:
            cycles.append([*on_path[on_path.index(module) :], module])
            return
        if module in done:
            return
        on_path.append(module)
        for target in sorted(edges[module]):
            visit(target)
        on_path.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
    assert not cycles, cycles


def test_the_layout_checks_see_the_engine_and_the_op_families():
    edges = internal_edges()
    assert "tinygrad_np.tensor" in edges["tinygrad_np.elementwise"] | edges["tinygrad_np.extend"]
    assert "tinygrad_np.extend" in edges["tinygrad_np.elementwise"]
    # (jit: the engine lets tg.jit's Tracer through where it would convert an array)
    assert edges["tinygrad_np.tensor"] == {
        "tinygrad_np.debug",
        "tinygrad_np.jit",
        "tinygrad_np.listing",
    }
    assert edges["tinygrad_np.jit"] == {"tinygrad_np.tree"}  # below the engine
