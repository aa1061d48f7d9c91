"""``help(tg)`` reads as reference documentation: every public name has a docstring of its own."""

from __future__ import annotations

import inspect
import pydoc
import types

import numpy as np

import tinygrad_np as tg


def tensor_attributes() -> dict[str, object]:
    """What the library defines on Tensor: its own methods and properties and what the ops'
    declarations attach (operators, methods such as ``relu``, properties such as ``T``)."""

    def shown(name: str, value: object) -> bool:
        if not name.startswith("_"):
            return True
        dunder = name.startswith("__") and name.endswith("__")
        return dunder and (callable(value) or isinstance(value, property))

    return {name: value for name, value in vars(tg.Tensor).items() if shown(name, value)}


def test_every_tensor_method_operator_and_property_has_a_docstring() -> None:
    attributes = tensor_attributes()
    expected = {"__add__", "__rmul__", "__matmul__", "__getitem__", "__array_ufunc__", "__eq__"}
    assert expected | {"__array_function__", "T", "shape", "relu", "reshape"} <= set(attributes)
    for name, value in attributes.items():
        function = value.fget if isinstance(value, property) else value
        doc = value.__doc__ if isinstance(value, property) else getattr(function, "__doc__", None)
        assert doc and doc.strip(), f"Tensor.{name} has no docstring"
        assert not doc.lstrip().startswith("#"), f"Tensor.{name} shows a source comment"
        if callable(function) and not isinstance(value, property):
            assert function.__name__ == name, f"Tensor.{name} is shown as {function.__name__}"
            assert "lambda" not in str(inspect.signature(value))


def test_operators_say_what_they_run_and_take_their_operands() -> None:
    assert tg.Tensor.__add__.__doc__.startswith("``self + other``: the op ``add(self, other)``")
    assert tg.Tensor.__rsub__.__doc__.startswith("``other - self``: the op ``sub(other, self)``")
    assert str(inspect.signature(tg.Tensor.__mul__)) == "(self, other)"
    assert str(inspect.signature(tg.Tensor.__neg__)) == "(self)"
    x = tg.Tensor(np.array([1.0, 2.0]))
    np.testing.assert_array_equal((3.0 - x).data, [2.0, 1.0])  # documented, and still working


def test_the_package_docstring_summarizes_its_modules() -> None:
    modules = [n for n in tg.__all__ if isinstance(getattr(tg, n), types.ModuleType)]
    assert {"nn", "optim", "checkpoint", "testing", "extend", "random"} <= set(modules)
    for name in [*modules, "datasets"]:
        assert f"``tg.{name}``" in tg.__doc__ or f"``tinygrad_np.{name}``" in tg.__doc__, name
    text = pydoc.render_doc(tg, renderer=pydoc.plaintext)
    assert "lambda self" not in text
