"""The table behind tests/test_numpy_coverage.py: one OpCase per way of calling a NumPy function.

Each op family keeps its cases in a module of its own, ``tests/cases_<family>.py``, as a
list named ``CASES``; :func:`all_cases` collects every such module. A case says how to
draw arguments for one NumPy callable (``np.sin``, ``np.linalg.det``) and, optionally,
which ndarray method and which PyTorch / JAX function compute the same thing. The generic
properties in tests/test_numpy_coverage.py then check, for every case, derivatives of
order 1 and 2 against float64 finite differences, that float32 stays float32, that the
``tg.*`` function and the Tensor method agree with NumPy, and, where torch or jax is
installed, values and gradients against them. A NumPy callable registered in
``NUMPY_OPS`` without a case fails ``test_every_registered_numpy_function_has_a_case``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np.testing import strategies as tst

# draw(data, dtype) -> (positional arguments, static keyword arguments)
Draw = Callable[[st.DataObject, Any], tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class OpCase:
    """One way of calling ``function``, with arguments drawn for a gradient check.

    ``draw`` returns the positional arguments (float arrays where differentiable, in the
    dtype it is given) and the static keyword arguments; inputs must be conditioned for
    finite differences (bounded, away from kinks and poles: see tests/test_properties_ops.py).
    ``argnums`` are the positional arguments whose gradients are checked (default: every
    floating ndarray argument, and every list or tuple of them, as ``np.stack`` takes).
    ``tg_function`` is the ``tg.*`` spelling (default ``tg.<function.__name__>``; None
    where there is none). ``method`` is the ndarray method (or property, ``"mT"``) that
    does the same as ``function(x, *rest, **statics)`` (``"sum"``), if any; the statics
    named in ``method_positional`` are given to it by position, in that order, for
    ndarray methods that take no keywords (``("axis1", "axis2")`` for ``x.swapaxes(0, 1)``).
    ``torch`` / ``jax`` map the module (``torch`` / ``jax.numpy``) to a function taking
    the same arguments, for the optional differential tests. ``dtype_argument`` is the
    argument that sets the result's dtype, if any: a static's name (``"dtype"``) or a
    positional argument's index (``1`` for ``np.astype(x, dtype)``); the float32 test then
    expects that dtype of the value (and float32 gradients still).

    ``outputs``, where given, maps the function's result to what the derivative and
    differential properties compare: a function of it defined by the math where the result
    itself is not (eigenvectors and singular vectors, whose signs are arbitrary, give way to
    the projectors ``v v.T``). It is applied to Tensors, so it is written with NumPy calls;
    the ``torch`` and ``jax`` functions must apply the same map to their own results.
    """

    function: Callable[..., Any]
    draw: Draw
    id: str = ""
    argnums: tuple[int, ...] | None = None
    tg_function: Callable[..., Any] | str | None = "default"
    method: str | None = None
    torch: Callable[[Any], Callable[..., Any]] | None = None
    jax: Callable[[Any], Callable[..., Any]] | None = None
    outputs: Callable[[Any], Any] | None = None
    order: int = 2
    float32: bool = True  # False only with a reason in a comment beside the case
    dtype_argument: str | int | None = None
    method_positional: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.id or qualified_name(self.function)


def qualified_name(function: Any) -> str:
    """``sin``, ``linalg.det``: how NumPy users spell the function after ``np.``."""
    module = getattr(function, "__module__", None) or "numpy"
    name = getattr(function, "__name__", repr(function))
    for prefix in ("linalg", "fft"):
        if module.startswith("numpy") and prefix in module.split("."):
            return f"{prefix}.{name}"
    return name


def all_cases() -> list[OpCase]:
    """Every case of every ``tests/cases_*.py`` module, in file order."""
    cases: list[OpCase] = []
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        cases.extend(importlib.import_module(path.stem).CASES)
    return cases


def float_array(data: st.DataObject, dtype: Any, shape: Any = None, **bounds: Any) -> Any:
    """One array of ``dtype`` and ``shape`` (a shape, a strategy, or None for any small one),
    drawn by ``tinygrad_np.testing.strategies.float_arrays`` with the value ``bounds``."""
    return data.draw(
        tst.float_arrays(tst.shapes() if shape is None else shape, dtype=dtype, **bounds)
    )


def _is_float_array(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _is_array_sequence(a: Any) -> bool:
    """A (nested) list or tuple of float arrays, such as ``np.stack`` or ``tg.array`` take."""
    leaves = tg.tree_leaves(a)
    return isinstance(a, list | tuple) and bool(leaves) and all(map(_is_float_array, leaves))


def default_argnums(args: tuple[Any, ...]) -> tuple[int, ...]:
    """The floating ndarray arguments, and the (nested) lists and tuples of them."""
    return tuple(i for i, a in enumerate(args) if _is_float_array(a) or _is_array_sequence(a))
