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

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_np import ops
from tinygrad_np.tensor import Tensor, _data

__all__ = ["CONSTANT_FUNCTIONS", "CONSTANT_UFUNCS", "FUNCTIONS", "UFUNCS"]

# --- ufuncs -------------------------------------------------------------------------------

# The primitives themselves where the public op is a plain pass-through: one call less.
UFUNCS: dict[np.ufunc, Callable[..., Any]] = {
    np.add: ops._add,
    np.subtract: ops._sub,
    np.multiply: ops._mul,
    np.true_divide: ops._div,  # np.divide is the same ufunc
    np.negative: ops._neg,
    np.power: ops._pow,
    np.matmul: ops._matmul,
    np.exp: ops._exp,
    np.log: ops._log,
    np.tanh: ops._tanh,
    np.maximum: ops.maximum,
    np.minimum: ops.minimum,
    np.sqrt: ops._sqrt,
    np.square: ops._square,
    np.log1p: ops._log1p,
    np.expm1: ops._expm1,
    np.absolute: ops._absolute,  # np.abs is the same ufunc
}

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
        np.isfinite,
        np.isinf,
        np.isnan,
        np.sign,
        np.floor,
        np.ceil,
    }
)

# What to write instead, for ufuncs and ufunc methods people reach for.
_UFUNC_HINTS: dict[str, str] = {
    "add.reduce": "np.sum(x, axis)",
    "maximum.reduce": "np.max(x, axis)",
    "minimum.reduce": "np.min(x, axis)",
    "at": "np.where or a sum of one-hot terms: Tensors are immutable",
    "log2": "np.log(x) / np.log(2)",
    "log10": "np.log(x) / np.log(10)",
    "exp2": "np.power(2.0, x)",
    "reciprocal": "1 / x",
    "fabs": "np.abs(x)",
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
        op = UFUNCS.get(ufunc)
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
    have, want = np.result_type(_data(result)), np.dtype(dtype)
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


class _Unset:
    """Marks an option the caller did not give."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _refuse_options(name: str, **options: Any) -> None:
    """Raise ``_Unsupported`` for the first option the caller actually gave."""
    for key, value in options.items():
        changes_nothing = (key == "out" and value is None) or (key == "where" and value is True)
        if value is _UNSET or changes_nothing:
            continue
        if key == "out":
            raise _Unsupported(_out_reason(name))
        raise _Unsupported(f"{name}(..., {key}=...) is not differentiable in tinygrad_np yet")


def _sum_like(name: str, op: Callable[..., Any]) -> Callable[..., Any]:
    """np.sum and np.mean. NumPy checks the call's signature before dispatching, so this
    one signature (a superset of both) only has to accept what NumPy lets through."""

    def sum_like(
        a: Any,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        keepdims: Any = False,
        initial: Any = _UNSET,
        where: Any = _UNSET,
    ) -> Any:
        if out is not None or initial is not _UNSET or where is not _UNSET:
            _refuse_options(name, out=out, initial=initial, where=where)
        result = op(a, axis, bool(keepdims))
        if dtype is not None:
            _check_dtype(name, result, dtype)
        return result

    return sum_like


def _max_like(name: str, op: Callable[..., Any]) -> Callable[..., Any]:
    """np.max, np.amax, np.min and np.amin."""

    def max_like(
        a: Any,
        axis: Any = None,
        out: Any = None,
        keepdims: Any = False,
        initial: Any = _UNSET,
        where: Any = _UNSET,
    ) -> Any:
        if out is not None or initial is not _UNSET or where is not _UNSET:
            _refuse_options(name, out=out, initial=initial, where=where)
        return op(a, axis, bool(keepdims))

    return max_like


def _dot(a: Any, b: Any, out: Any = None) -> Any:
    if out is not None:
        raise _Unsupported(_out_reason("np.dot"))
    return ops.dot(a, b)


def _clip(
    a: Any,
    a_min: Any = _UNSET,
    a_max: Any = _UNSET,
    out: Any = None,
    *,
    min: Any = _UNSET,  # NumPy's keyword names
    max: Any = _UNSET,
    **kwargs: Any,
) -> Any:
    _refuse_options("np.clip", out=out, **kwargs)
    lo = min if a_min is _UNSET else a_min
    hi = max if a_max is _UNSET else a_max
    if (a_min is not _UNSET and min is not _UNSET) or (a_max is not _UNSET and max is not _UNSET):
        raise TypeError("np.clip: give each bound once, as a_min/a_max or as min/max")
    return ops.clip(a, None if lo is _UNSET else lo, None if hi is _UNSET else hi)


def _reshape(a: Any, shape: Any = _UNSET, order: str = "C", *, copy: Any = None) -> Any:
    _refuse_options(
        "np.reshape", order=_UNSET if order == "C" else order, copy=_UNSET if copy is None else copy
    )
    if shape is _UNSET:
        raise TypeError("np.reshape() missing the new shape")
    return ops.reshape(a, shape)


def _transpose(a: Any, axes: Any = None) -> Any:
    return ops.transpose(a, axes)


def _broadcast_to(array: Any, shape: Any, subok: bool = False) -> Any:
    return ops.broadcast_to(array, (shape,) if isinstance(shape, int) else tuple(shape))


def _where(condition: Any, x: Any = _UNSET, y: Any = _UNSET) -> Any:
    if x is _UNSET and y is _UNSET:
        return np.nonzero(_data(condition))  # indices: no gradient
    if x is _UNSET or y is _UNSET:
        raise ValueError("np.where: either both or neither of x and y should be given")
    return ops.where(condition, x, y)


FUNCTIONS: dict[Callable[..., Any], Callable[..., Any]] = {
    np.dot: _dot,
    np.sum: _sum_like("np.sum", ops.sum),
    np.mean: _sum_like("np.mean", ops.mean),
    np.max: _max_like("np.max", ops.max),
    np.amax: _max_like("np.amax", ops.max),
    np.min: _max_like("np.min", ops.min),
    np.amin: _max_like("np.amin", ops.min),
    np.clip: _clip,
    np.reshape: _reshape,
    np.transpose: _transpose,
    np.broadcast_to: _broadcast_to,
    np.where: _where,
}

# Functions whose result carries no gradient (indices, shapes, fresh constants, booleans):
# NumPy runs them on the data.
CONSTANT_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset(
    {
        np.argmax,
        np.argmin,
        np.zeros_like,
        np.ones_like,
        np.full_like,
        np.shape,
        np.ndim,
        np.size,
        np.result_type,
        np.nonzero,
        np.isclose,
        np.allclose,
        np.array_equal,
    }
)

# What to write instead of NumPy functions people reach for.
_FUNCTION_HINTS: dict[str, str] = {
    "einsum": "np.dot or np.matmul",
    "tensordot": "np.dot or np.matmul, with np.reshape / np.transpose",
    "inner": "np.dot(a, b.T), or np.sum(a * b, axis=-1)",
    "outer": "a[:, None] * b[None, :]",
    "vdot": "np.sum(a * b)",
    "average": "np.mean, or np.sum(w * x) / np.sum(w)",
    "var": "np.mean(np.square(x - np.mean(x, axis, keepdims=True)), axis)",
    "std": "np.sqrt of the variance, written with np.mean",
    "ravel": "np.reshape(x, -1)",
    "squeeze": "np.reshape",
    "expand_dims": "np.reshape, or x[None]",
    "swapaxes": "np.transpose",
    "moveaxis": "np.transpose",
    "copy": "the Tensor itself: Tensors are immutable",
    "norm": "np.sqrt(np.sum(np.square(x)))",
}


def array_function(
    func: Callable[..., Any], types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Tensor.__array_function__``: run ``func`` on Tensors as tinygrad_np ops."""
    handler = FUNCTIONS.get(func)
    if handler is not None:
        try:
            return handler(*args, **kwargs)
        except _Unsupported as problem:
            name = f"np.{_qualified_name(func)}"
            return _on_data_unless_traced(func, name, args, kwargs, str(problem))
    for t in types:
        if not (issubclass(t, Tensor) or issubclass(t, np.ndarray)):
            return NotImplemented  # another array type's turn
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
        return x.data
    if isinstance(x, list | tuple):
        return type(x)(_strip(item) for item in x)
    if isinstance(x, dict):
        return {key: _strip(value) for key, value in x.items()}
    return x
