"""The machinery of ``tinygrad_np.numpy`` (see there): NumPy's callables wrapped to build
lists of traced values with ``tg.array`` where NumPy takes arrays, the submodules'
namespaces, and the constructors."""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy

from tinygrad_np import construction
from tinygrad_np.jit import Tracer
from tinygrad_np.tensor import Tensor

_ArrayFunctionDispatcher = type(numpy.mean)


# --- traced values inside lists -------------------------------------------------------------


def _holds_traced(x: Any) -> bool:
    """Whether ``x`` is a traced Tensor (or an array that tg.jit traces), or a (nested) list
    or tuple holding one."""
    if isinstance(x, Tracer):
        return True
    if isinstance(x, Tensor):
        return x.traced
    return isinstance(x, list | tuple) and any(_holds_traced(item) for item in x)


def _built(x: Any) -> Any:
    """``x`` built with ``tg.array`` if it is a list or tuple holding a traced Tensor."""
    return construction.array(x) if isinstance(x, list | tuple) and _holds_traced(x) else x


# --- asking NumPy's dispatcher which arguments are arrays ----------------------------------
#
# NumPy calls ``__array_function__`` on the "relevant" arguments its dispatcher returns
# (``a`` of np.mean; the items of np.concatenate's sequence), passing the types of all of
# them. A dry run replaces each list holding traced values by a list (or tuple) of a class
# of its own, and its items by a second such class, every array and Tensor by a stand-in,
# and calls the function: the first stand-in NumPy asks raises, with the types, before any
# implementation runs.


class _DryRun(Exception):
    def __init__(self, relevant: Iterable[type]) -> None:
        super().__init__()
        self.relevant = frozenset(relevant)


def _report(self: Any, func: Any, relevant: Any, args: Any, kwargs: Any) -> Any:
    raise _DryRun(relevant)


class _StandIn:
    """An array or Tensor, during a dry run."""

    __array_function__ = _report


_STAND_IN = _StandIn()


@functools.cache
def _candidate_classes(k: int) -> tuple[type, type, type, type]:
    """List and tuple classes standing for the ``k``-th list holding traced values, then
    for its items."""
    namespace = {"__array_function__": _report}
    return (
        type(f"_Whole{k}", (list,), namespace),
        type(f"_WholeTuple{k}", (tuple,), namespace),
        type(f"_Item{k}", (list,), namespace),
        type(f"_ItemTuple{k}", (tuple,), namespace),
    )


def _stand_in(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return type(x)(_stand_in(item) for item in x) if type(x) in (list, tuple) else x
    if isinstance(x, Tensor | numpy.ndarray) or hasattr(type(x), "__array_function__"):
        return _STAND_IN
    return x


def _stand_in_candidate(x: Any, k: int) -> Any:
    whole, whole_tuple, item, item_tuple = _candidate_classes(k)
    items = []
    for element in x:
        if isinstance(element, list | tuple) and _holds_traced(element):
            cls = item_tuple if isinstance(element, tuple) else item
            items.append(cls(_stand_in(e) for e in element))
        else:
            items.append(_stand_in(element))
    return (whole_tuple if isinstance(x, tuple) else whole)(items)


def _arrays_built(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """``args`` and ``kwargs`` with the lists NumPy's dispatcher treats as arrays (or as
    sequences of arrays) built with ``tg.array``; None when no list holding traced values
    is one of them."""
    keys = [*range(len(args)), *kwargs]
    values = [*args, *kwargs.values()]
    candidates = [
        i for i, v in enumerate(values) if isinstance(v, list | tuple) and _holds_traced(v)
    ]
    if not candidates:
        return None
    dry = [_stand_in(v) for v in values]
    for k, i in enumerate(candidates):
        dry[i] = _stand_in_candidate(values[i], k)
    try:
        func(*dry[: len(args)], **dict(zip(keys[len(args) :], dry[len(args) :], strict=True)))
    except _DryRun as asked:
        relevant = asked.relevant
    except Exception:  # the dispatcher itself refused these arguments: NumPy's error stands
        return None
    else:
        return None
    changed = False
    for k, i in enumerate(candidates):
        whole, whole_tuple, item, item_tuple = _candidate_classes(k)
        if whole in relevant or whole_tuple in relevant:
            values[i], changed = construction.array(values[i]), True
        elif item in relevant or item_tuple in relevant:
            values[i], changed = type(values[i])(_built(e) for e in values[i]), True
    if not changed:
        return None
    return tuple(values[: len(args)]), dict(
        zip(keys[len(args) :], values[len(args) :], strict=True)
    )


def _dispatching(func: Callable[..., Any]) -> Callable[..., Any]:
    """NumPy's ``func``, taking lists of traced values where it takes arrays."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TypeError:
            built = _arrays_built(func, args, kwargs)
            if built is None:
                raise
        return func(*built[0], **built[1])

    return call


# --- ufuncs ---------------------------------------------------------------------------------

# Which positional arguments of a ufunc's call and methods are its operands (NumPy's
# ``inputs``): all ``nin`` of a call, the array of a reduction, both of ``outer``, the
# array and the values of ``at``.
_OPERANDS: dict[str, tuple[int, ...]] = {
    "reduce": (0,),
    "accumulate": (0,),
    "reduceat": (0,),
    "outer": (0, 1),
    "at": (0, 2),
}
# The ufunc's attributes, copied onto the function standing for it.
_UFUNC_ATTRIBUTES = ("nin", "nout", "nargs", "ntypes", "types", "identity", "signature")


def _operands_built(args: tuple[Any, ...], positions: Iterable[int]) -> tuple[Any, ...] | None:
    built = list(args)
    for i in positions:
        if i < len(args):
            built[i] = _built(args[i])
    return None if all(b is a for a, b in zip(built, args, strict=True)) else tuple(built)


def _taking_lists(function: Callable[..., Any], operands: Iterable[int]) -> Callable[..., Any]:
    """``function`` (a ufunc or one of its methods), taking lists of traced values as the
    operands at the positions ``operands``."""
    positions = tuple(operands)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TypeError:
            built = _operands_built(args, positions)
            if built is None:
                raise
        return function(*built, **kwargs)

    return call


def _ufunc(ufunc: numpy.ufunc) -> Callable[..., Any]:
    """NumPy's ``ufunc``, taking lists of traced values as operands (``np.add([t1, t2], 1)``):
    a function with the ufunc's methods (``reduce``, ``accumulate``, ``reduceat``,
    ``outer``, ``at``) and attributes (``nin``, ``identity``, ...), and the ufunc itself as
    ``.ufunc``. It is not an ``np.ufunc`` instance (that class cannot be extended)."""
    call = _taking_lists(ufunc, range(ufunc.nin))
    for method, positions in _OPERANDS.items():
        setattr(call, method, _taking_lists(getattr(ufunc, method), positions))
    for attribute in _UFUNC_ATTRIBUTES:
        setattr(call, attribute, getattr(ufunc, attribute))
    setattr(call, "ufunc", ufunc)  # noqa: B010 (a function's attribute, for mypy)
    return call


# --- the namespace --------------------------------------------------------------------------

# Module attributes that belong to the import system, never forwarded from NumPy's modules.
_OWN = frozenset(
    {"__path__", "__file__", "__spec__", "__loader__", "__package__", "__cached__",
     "__builtins__", "__getattr__", "__dir__", "__name__", "__doc__", "__dict__"}
)  # fmt: skip


def _resolve(numpy_module: Any, name: str, namespace_name: str, path: tuple[str, ...]) -> Any:
    """The namespace's object for ``numpy_module.name``."""
    if name in _OWN:
        raise AttributeError(f"module {namespace_name!r} has no attribute {name!r}")
    try:
        value = getattr(numpy_module, name)
    except AttributeError:
        raise AttributeError(f"module {namespace_name!r} has no attribute {name!r}") from None
    if name.startswith("_"):
        return value
    if isinstance(value, numpy.ufunc):
        return _ufunc(value)
    if isinstance(value, _ArrayFunctionDispatcher):
        return _dispatching(value)
    if isinstance(value, types.ModuleType) and value.__name__.startswith("numpy."):
        return _namespace_of(f"{namespace_name}.{name}", (*path, name))
    return value


class _Namespace(types.ModuleType):
    """A NumPy submodule's namespace (``tinygrad_np.numpy.linalg``), resolved lazily: the
    submodule is ``numpy.<path>``, imported on first use as NumPy imports it."""

    def __init__(self, name: str, path: tuple[str, ...]) -> None:
        super().__init__(name, f"NumPy's numpy.{'.'.join(path)}, for traced values.")
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name in _OWN or name == "_path":
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = _resolve(self._numpy_module(), name, self.__name__, self._path)
        if not name.startswith("_"):
            setattr(self, name, value)
        return value

    def _numpy_module(self) -> Any:
        return functools.reduce(getattr, self._path, numpy)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._numpy_module())))


def _namespace_of(name: str, path: tuple[str, ...]) -> types.ModuleType:
    module = sys.modules.get(name)
    if not isinstance(module, _Namespace):
        module = sys.modules[name] = _Namespace(name, path)
    return module


# --- the constructors -----------------------------------------------------------------------


def _built_array(a: Any, name: str, dtype: Any, ndmin: int, options: dict[str, Any]) -> Any:
    """``tg.array(a)`` for NumPy's constructor ``name``, once its options are checked."""
    allowed = _OPTIONS[name]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"np.{name}() got an unexpected keyword argument {unknown[0]!r}")
    if options.get("like") is not None:
        raise TypeError(f"np.{name}(..., like=...) of traced values is not supported")
    if options.get("device") not in (None, "cpu"):
        raise ValueError(f"np.{name}(..., device={options['device']!r}): only 'cpu' exists")
    if isinstance(a, Tracer):
        return _traced_array(a, name, dtype, max(ndmin, options.get("ndmin", 0)), options)
    needs_copy = not isinstance(a, Tensor) or (dtype is not None and numpy.dtype(dtype) != a.dtype)
    if options.get("copy") is False and needs_copy:
        raise ValueError(
            f"np.{name}(..., copy=False): unable to avoid a copy while creating an array "
            "from this input (a list, or a change of dtype)"
        )
    return construction.array(a, dtype=dtype, ndmin=max(ndmin, options.get("ndmin", 0)))


def _traced_array(a: Tracer, name: str, dtype: Any, ndmin: int, options: dict[str, Any]) -> Any:
    """NumPy's constructor ``name`` of an array that tg.jit traces, with NumPy's copying:
    ``np.array`` copies unless told not to, ``np.asarray`` returns the array itself (so that
    writes through the result reach it, as they do eagerly)."""
    if name not in ("array", "asarray", "asanyarray"):  # (layouts: not recorded)
        raise TypeError(f"np.{name} of an array that tg.jit traces is not supported")
    copy = options.get("copy", True if name == "array" else None)
    changes_dtype = dtype is not None and numpy.dtype(dtype) != a.dtype
    if copy is False and changes_dtype:
        raise ValueError(f"np.{name}(..., copy=False): unable to avoid a copy (a change of dtype)")
    out: Any = a.astype(dtype) if changes_dtype else numpy.copy(a) if copy else a
    if out.ndim < ndmin:
        out = out.reshape((1,) * (ndmin - out.ndim) + out.shape)
    return out


# The keyword arguments of NumPy's constructors (order= and subok= concern memory layout
# and subclasses, which a Tensor does not have: they change nothing).
_OPTIONS: dict[str, frozenset[str]] = {
    "array": frozenset({"copy", "order", "subok", "ndmin", "like"}),
    "asarray": frozenset({"order", "device", "copy", "like"}),
    "asanyarray": frozenset({"order", "device", "copy", "like"}),
    "ascontiguousarray": frozenset({"like"}),
    "asfortranarray": frozenset({"like"}),
}


def array(object: Any, dtype: Any = None, **options: Any) -> Any:
    """NumPy's ``np.array(object, dtype=None, *, copy=True, order='K', subok=False,
    ndmin=0, like=None)``; of a traced Tensor, or of (nested) lists and tuples holding
    traced Tensors, ``tg.array`` (a Tensor that gives each its part of the gradient)."""
    try:
        return numpy.array(object, dtype, **options)
    except TypeError:
        if not _holds_traced(object):
            raise
    return _built_array(object, "array", dtype, 0, options)


def asarray(a: Any, dtype: Any = None, **options: Any) -> Any:
    """NumPy's ``np.asarray(a, dtype=None, order=None, *, device=None, copy=None,
    like=None)``; of a traced Tensor, or of (nested) lists and tuples holding traced
    Tensors, ``tg.asarray`` (a traced Tensor is itself)."""
    try:
        return numpy.asarray(a, dtype, **options)
    except TypeError:
        if not _holds_traced(a):
            raise
    return _built_array(a, "asarray", dtype, 0, options)


def asanyarray(a: Any, dtype: Any = None, **options: Any) -> Any:
    """NumPy's ``np.asanyarray``: :func:`asarray` (a Tensor has no subclass to keep)."""
    try:
        return numpy.asanyarray(a, dtype, **options)
    except TypeError:
        if not _holds_traced(a):
            raise
    return _built_array(a, "asanyarray", dtype, 0, options)


def ascontiguousarray(a: Any, dtype: Any = None, **options: Any) -> Any:
    """NumPy's ``np.ascontiguousarray``: :func:`asarray`, at least 1-d as NumPy's is (a
    Tensor has no memory layout to change)."""
    try:
        return numpy.ascontiguousarray(a, dtype, **options)
    except TypeError:
        if not _holds_traced(a):
            raise
    return _built_array(a, "ascontiguousarray", dtype, 1, options)


def asfortranarray(a: Any, dtype: Any = None, **options: Any) -> Any:
    """NumPy's ``np.asfortranarray``: :func:`asarray`, at least 1-d as NumPy's is (a Tensor
    has no memory layout to change)."""
    try:
        return numpy.asfortranarray(a, dtype, **options)
    except TypeError:
        if not _holds_traced(a):
            raise
    return _built_array(a, "asfortranarray", dtype, 1, options)


def full(
    shape: Any,
    fill_value: Any,
    dtype: Any = None,
    order: Any = "C",
    *,
    device: Any = None,
    like: Any = None,
) -> Any:
    """NumPy's ``np.full``; with a traced ``fill_value`` (or a list holding traced values),
    ``tg.full``, whose gradient sums the cotangent over the copies."""
    try:
        return numpy.full(shape, fill_value, dtype, order, device=device, like=like)
    except TypeError:
        if not _holds_traced(fill_value):
            raise
    if like is not None:
        raise TypeError("np.full(..., like=...) of traced values is not supported") from None
    return construction.full(shape, fill_value, dtype=dtype)


class _Concatenator:
    """NumPy's ``np.r_`` / ``np.c_``; with traced values among the items, ``tg.r_`` /
    ``tg.c_``."""

    def __init__(self, numpy_concatenator: Any, traced: Any) -> None:
        self._numpy, self._traced = numpy_concatenator, traced

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._numpy[key]
        except TypeError:
            if not _holds_traced(key):
                raise
        return self._traced[key]

    def __len__(self) -> int:
        return len(self._numpy)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._numpy, name)

    def __repr__(self) -> str:
        return f"np.{self._traced.name} (tinygrad_np.numpy)"


r_ = _Concatenator(numpy.r_, construction.r_)
c_ = _Concatenator(numpy.c_, construction.c_)


# NumPy's public submodules, importable through the namespace (``import tinygrad_np.numpy.linalg``).
SUBMODULES = (
    "char", "ctypeslib", "dtypes", "emath", "exceptions", "f2py", "fft", "lib", "linalg",
    "ma", "polynomial", "random", "rec", "strings", "testing", "typing",
)  # fmt: skip


def register_submodules(name: str) -> None:
    """Make NumPy's submodules importable as ``<name>.linalg`` and so on."""
    for submodule in SUBMODULES:
        _namespace_of(f"{name}.{submodule}", (submodule,))


def resolve(name: str, namespace_name: str) -> Any:
    """The namespace's object for ``numpy.<name>``."""
    return _resolve(numpy, name, namespace_name, ())
