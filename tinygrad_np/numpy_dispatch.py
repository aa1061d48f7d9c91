"""NumPy's dispatch protocols for Tensor: NumPy code run on Tensors records on the tape.

NumPy hands every ufunc call (``np.exp(t)``, ``ndarray * t``) whose inputs include a Tensor
to ``Tensor.__array_ufunc__``, and every other public function (``np.sum(t)``,
``np.dot(X, t)``) to ``Tensor.__array_function__``. Both land here, and one dict lookup
from the NumPy callable finds the tinygrad_np op that replaces it. So a forward pass
written with ``np.*`` differentiates unchanged under ``tg.grad``.

What comes back:

* a differentiable function returns a Tensor: traced inside a transform, constant for
  constant Tensors (as the ops themselves do);
* a function whose result has no gradient (comparisons, ``argmax``, ``zeros_like``,
  ``np.shape``, ``sign`` ...) returns NumPy's plain result, computed on the data;
* anything else refuses a traced Tensor with a TypeError naming the NumPy function, so a
  gradient is never dropped silently. A constant Tensor has no gradient to drop: there
  NumPy runs on its data, as it did through ``__array__`` before this module existed.
  Options the ops cannot honour (``out=``, ``where=``, ``initial=``, a ``dtype=`` that
  changes the dtype, ufunc methods such as ``np.add.reduce``) follow the same rule.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_np.jit import Tracer
from tinygrad_np.tensor import NUMPY_OPS, Primitive, Tensor, stop_gradient

__all__ = ["CONSTANT_FUNCTIONS", "CONSTANT_UFUNCS", "array_function", "array_ufunc"]

# Which NumPy callables run as which ops is declared with each op (``numpy=`` on a
# Primitive, ``@implements`` on a function): the table is tinygrad_np.tensor.NUMPY_OPS.

# Results with no gradient: booleans, or piecewise-constant values (derivative 0 wherever it
# exists). They run on the data and come back as plain arrays.
CONSTANT_UFUNCS: frozenset[np.ufunc] = frozenset(
    {
        np.less,
        np.less_equal,
        np.greater,
        np.greater_equal,
        np.equal,
        np.not_equal,
        np.logical_and,
        np.logical_or,
        np.logical_xor,
        np.logical_not,
        np.isfinite,
        np.isinf,
        np.isnan,
        np.signbit,
        np.sign,
        np.floor,
        np.ceil,
        np.rint,
        np.trunc,
        np.floor_divide,
    }
)

# What to write instead, for ufuncs and ufunc methods people reach for.
_UFUNC_HINTS: dict[str, str] = {
    "add.reduce": "np.sum(x, axis)",
    "maximum.reduce": "np.max(x, axis)",
    "minimum.reduce": "np.min(x, axis)",
    "at": "np.where or a sum of one-hot terms: Tensors are immutable",
    "float_power": "np.power(x, y)",
    "positive": "x itself",
}


class _Unsupported(Exception):
    """A call the ops cannot honour; fatal only when a traced Tensor takes part."""


def array_ufunc(
    ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Tensor.__array_ufunc__``: run ``ufunc`` on Tensors as a tinygrad_np op."""
    if method == "__call__":
        op = NUMPY_OPS.get(ufunc)
        if op is not None:
            if not kwargs:
                return op(*inputs)
            try:
                return _call_with_options(ufunc, op, inputs, kwargs)
            except _Unsupported as problem:
                name = f"np.{ufunc.__name__}"
                return _on_data_unless_traced(ufunc, name, inputs, kwargs, str(problem))
        if ufunc in CONSTANT_UFUNCS:
            _refuse_tensor_out(f"np.{ufunc.__name__}", kwargs)
            return ufunc(*_strip(inputs), **_strip(kwargs))
        name = f"np.{ufunc.__name__}"
        hint = _UFUNC_HINTS.get(ufunc.__name__)
    else:
        name = f"np.{ufunc.__name__}.{method}"
        hint = _UFUNC_HINTS.get(f"{ufunc.__name__}.{method}") or _UFUNC_HINTS.get(method)
    reason = f"{name} is not differentiable in tinygrad_np yet" + (f"; use {hint}" if hint else "")
    return _on_data_unless_traced(getattr(ufunc, method), name, inputs, kwargs, reason)


def _call_with_options(
    ufunc: np.ufunc, op: Callable[..., Any], inputs: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A supported ufunc called with keywords: only a no-op ``where=True`` or ``dtype=``."""
    name = f"np.{ufunc.__name__}"
    for key, value in kwargs.items():
        if key == "out":
            raise _Unsupported(_out_reason(name))
        if key == "where" and value is not True:
            raise _Unsupported(
                f"{name}(..., where=...) is not differentiable in tinygrad_np yet; "
                f"use np.where(condition, {name}(...), other)"
            )
        if key not in ("where", "dtype"):
            raise _Unsupported(f"{name}(..., {key}=...) is not differentiable in tinygrad_np yet")
    result = op(*inputs)
    if "dtype" in kwargs and kwargs["dtype"] is not None:
        _check_dtype(name, result, kwargs["dtype"])
    return result


def _check_dtype(name: str, result: Any, dtype: Any) -> None:
    have, want = np.result_type(stop_gradient(result)), np.dtype(dtype)
    if have != want:
        raise _Unsupported(
            f"{name}(..., dtype={want}) would change the dtype from {have} to {want}, "
            "which is not differentiable in tinygrad_np yet; compute in the inputs' dtype"
        )


def _out_reason(name: str) -> str:
    return (
        f"{name}(..., out=...) is not differentiable in tinygrad_np: it writes into an "
        "existing array (as `a += t` does), and a traced result cannot be stored in one; "
        "use the returned value instead (`a = a + t`)"
    )


# --- other NumPy functions ------------------------------------------------------------------


def _call_function(func: Callable[..., Any], op: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` (a NumPy function) as a call of ``op``.

    NumPy's signature binds the call; its first parameters are the op's positional ones,
    in order (``a`` is ``x``), the others go to the op's parameters of the same name.
    Options the op has no parameter for must have been left at what changes nothing
    (``out=None``, ``where=True``), except a ``dtype=`` that matches the result's.
    """
    name = f"np.{_qualified_name(func)}"
    numpy_signature, op_signature = _signature(func), _signature(op)
    given = numpy_signature.bind(*args, **kwargs).arguments
    op_positional = [p for p in op_signature.parameters.values() if p.kind in _POSITIONAL]
    numpy_order = list(numpy_signature.parameters)
    call_args: list[Any] = []
    call_kwargs: dict[str, Any] = {}
    dtype = None
    arguments = _flat_arguments(numpy_signature, given) if _variadic(func) else given.items()
    for key, value in arguments:
        if key == "*":  # NumPy's *args (np.einsum's operands): the op takes them as its own
            call_args.extend(value)
            continue
        parameter = numpy_signature.parameters.get(key)  # None for one of NumPy's **kwargs
        index = numpy_order.index(key) if parameter is not None else len(numpy_order)
        if parameter is not None and parameter.kind in _POSITIONAL and index < len(op_positional):
            if index == len(call_args):
                call_args.append(value)
            else:  # an optional argument before it was left out
                call_kwargs[op_positional[index].name] = value
        elif key in op_signature.parameters:
            call_kwargs[key] = value
        elif key == "dtype":
            dtype = value
        elif not ((key == "out" and value is None) or (key == "where" and value is True)):
            if key == "out":
                raise _Unsupported(_out_reason(name))
            raise _Unsupported(f"{name}(..., {key}=...) is not differentiable in tinygrad_np yet")
    result = op(*call_args, **call_kwargs)
    if dtype is not None:
        _check_dtype(name, result, dtype)
    return result


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@functools.cache
def _variadic(f: Callable[..., Any]) -> bool:
    """Whether NumPy's ``f`` takes ``*args`` or ``**kwargs`` (np.einsum does)."""
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return any(p.kind in kinds for p in _signature(f).parameters.values())


def _flat_arguments(signature: inspect.Signature, given: dict[str, Any]) -> list[tuple[str, Any]]:
    """The bound arguments, with NumPy's ``**kwargs`` spread into its keywords and its
    ``*args`` under the key ``"*"``."""
    flat: list[tuple[str, Any]] = []
    for key, value in given.items():
        kind = signature.parameters[key].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            flat.extend(value.items())
        else:
            flat.append(("*" if kind is inspect.Parameter.VAR_POSITIONAL else key, value))
    return flat


@functools.cache
def _signature(f: Callable[..., Any]) -> inspect.Signature:
    signature = f.__signature__ if isinstance(f, Primitive) else inspect.signature(f)
    if signature is None:
        raise TypeError(f"{f!r} has no signature to bind a NumPy call to")
    return signature


# Functions whose result carries no gradient (indices, shapes, fresh constants, booleans):
# NumPy runs them on the data.
CONSTANT_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    {
        np.argmax,
        np.argmin,
        np.argsort,
        np.argpartition,
        np.argwhere,
        np.nonzero,
        np.flatnonzero,
        np.count_nonzero,
        np.searchsorted,
        np.round,
        np.around,
        np.angle,
        np.fix,
        np.all,
        np.any,
        np.isposinf,
        np.isneginf,
        np.isreal,
        np.iscomplex,
        np.iscomplexobj,
        np.zeros_like,
        np.ones_like,
        np.full_like,
        np.shape,
        np.ndim,
        np.size,
        np.result_type,
        np.isclose,
        np.allclose,
        np.array_equal,
        np.array_equiv,
    }
)

# What to write instead of NumPy functions people reach for.
_FUNCTION_HINTS: dict[str, str] = {
    "average": "np.mean, or np.sum(w * x) / np.sum(w)",
    "array": "tg.array, or np.stack",  # reached with like=
    "asarray": "tg.asarray",
    "full": "tg.full",
}


def array_function(
    func: Callable[..., Any], types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Tensor.__array_function__``: run ``func`` on Tensors as tinygrad_np ops."""
    for t in types:
        if not issubclass(t, Tensor | np.ndarray | Tracer):
            return NotImplemented  # another array type's turn
    op = NUMPY_OPS.get(func)
    if op is not None:
        try:
            return _call_function(func, op, args, kwargs)
        except _Unsupported as problem:
            name = f"np.{_qualified_name(func)}"
            return _on_data_unless_traced(func, name, args, kwargs, str(problem))
    name = f"np.{_qualified_name(func)}"
    if func in CONSTANT_FUNCTIONS:
        _refuse_tensor_out(name, kwargs)
        return func(*_strip(args), **_strip(kwargs))
    hint = _FUNCTION_HINTS.get(getattr(func, "__name__", ""))
    reason = f"{name} is not differentiable in tinygrad_np yet" + (f"; use {hint}" if hint else "")
    return _on_data_unless_traced(func, name, args, kwargs, reason)


def _qualified_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", "") or ""
    name = getattr(func, "__name__", repr(func))
    # np.linalg.norm reads better than np.norm; top-level functions live in numpy._core etc.
    for public in ("linalg", "fft", "random"):
        if module.startswith(f"numpy.{public}"):
            return f"{public}.{name}"
    return str(name)


# --- the rule for everything unsupported --------------------------------------------------


def _on_data_unless_traced(
    numpy_callable: Callable[..., Any],
    name: str,
    args: Any,
    kwargs: dict[str, Any],
    reason: str,
) -> Any:
    """Refuse when a traced Tensor takes part; otherwise let NumPy run on the data."""
    if _has_traced(args) or _has_traced(tuple(kwargs.values())):
        raise TypeError(reason)
    _refuse_tensor_out(name, kwargs)
    return numpy_callable(*_strip(args), **_strip(kwargs))


def _refuse_tensor_out(name: str, kwargs: dict[str, Any]) -> None:
    if _has_tensor(kwargs.get("out")):
        raise TypeError(f"{name}(..., out=a Tensor): Tensors are immutable; use the returned value")


def _has_traced(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x.traced
    if isinstance(x, list | tuple):
        return any(_has_traced(item) for item in x)
    return False


def _has_tensor(x: Any) -> bool:
    if isinstance(x, Tensor):
        return True
    if isinstance(x, list | tuple):
        return any(_has_tensor(item) for item in x)
    return False


def _strip(x: Any) -> Any:
    """``x`` with every (constant) Tensor in it, however nested in lists, replaced by its data."""
    if isinstance(x, Tensor):
        return stop_gradient(x)
    if isinstance(x, list | tuple):
        return type(x)(_strip(item) for item in x)
    if isinstance(x, dict):
        return {key: _strip(value) for key, value in x.items()}
    return x


# NumPy hands its calls on Tensors to these; they are installed on Tensor here, where the
# dispatch lives, so that the engine does not depend on it.
def _tensor_array_ufunc(
    self: Tensor, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any
) -> Any:
    """NumPy's protocol for ufuncs (``np.exp(t)``, ``array * t``): the call runs as the
    tinygrad_np op registered for ``ufunc``, recorded on the tape when an input is traced.
    A ufunc whose result has no gradient (``np.sign``, comparisons) gives NumPy's result on
    the data; any other use on a traced Tensor raises ``TypeError`` naming the ufunc, so a
    gradient is never dropped (see the module docstring)."""
    return array_ufunc(ufunc, method, inputs, kwargs)


def _tensor_array_function(
    self: Tensor, func: Callable[..., Any], types: Any, args: Any, kwargs: Any
) -> Any:
    """NumPy's protocol for its other functions (``np.sum(t)``, ``np.dot(X, t)``): the call
    runs as the tinygrad_np op registered for ``func``. A function whose result has no
    gradient (``np.argmax``, ``np.zeros_like``, ``np.shape``) gives NumPy's result on the
    data; any other raises ``TypeError`` on a traced Tensor, naming the function."""
    return array_function(func, types, args, kwargs)


for _protocol, _function in (
    ("__array_ufunc__", _tensor_array_ufunc),
    ("__array_function__", _tensor_array_function),
):
    _function.__name__, _function.__qualname__ = _protocol, f"Tensor.{_protocol}"
    setattr(Tensor, _protocol, _function)


def _comparison_method(name: str, comparison: np.ufunc, symbol: str) -> Callable[..., Any]:
    def method(self: Tensor, other: Any) -> Any:
        return comparison(self, other)

    method.__name__, method.__qualname__ = name, f"Tensor.{name}"
    method.__doc__ = (
        f"``self {symbol} other``: ``np.{comparison.__name__}`` on the data, a plain\n"
        "boolean array (comparisons have no gradient)."
    )
    return method


# Comparisons are NumPy's, run on the data: plain boolean arrays, which have no gradient.
for _name, (_comparison, _symbol) in {
    "__lt__": (np.less, "<"),
    "__le__": (np.less_equal, "<="),
    "__gt__": (np.greater, ">"),
    "__ge__": (np.greater_equal, ">="),
    "__eq__": (np.equal, "=="),
    "__ne__": (np.not_equal, "!="),
}.items():
    setattr(Tensor, _name, _comparison_method(_name, _comparison, _symbol))
