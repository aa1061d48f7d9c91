"""``tg.jit``: trace a function once into a flat program of NumPy calls, then replay it.

The first call of ``jit(f)`` with a given *signature* (the pytree structure of the arguments,
the shape, dtype and layout of each array among them, which of those arrays share memory, the
values of everything else) runs ``f`` eagerly on :class:`Tracer` stand-ins for the arrays. A
Tracer holds the concrete array of that call and records every NumPy call made on it (ufuncs
through ``__array_ufunc__``, functions through ``__array_function__``, operators, indexing and
the ndarray methods a model uses) as one step of a straight-line program, the step run on the
concrete arrays as it is recorded. The tape, the Tensors, the VJP closures and the checks of
``value_and_grad`` or an optimizer inside ``f`` all run once, at trace time: what they leave
behind is their NumPy calls, which is all the program keeps. That program is then compiled into
one Python function (``Jitted.source`` shows it) and later calls with the same signature run it:
no dispatch, no tape, no pytree checks.

The tracer works below the engine, at the level of NumPy, because the engine computes from
values while it records: a VJP maker builds ReLU's mask with ``ans > 0``, the cross-entropy
gathers at the labels. Recorded as NumPy calls on Tracers, such masks are recomputed by every
replay; anything the tracer cannot see is refused at trace time instead of being baked in.
``bool()``, ``float()``, ``int()``, ``operator.index`` and ``np.asarray`` of a Tracer raise
:class:`ConcretizationTypeError` (a TypeError) naming the conversion and the NumPy call whose
result it was: Python control flow on traced values would freeze the first call's branch.
Branch on shapes and static arguments instead, or compute both sides and ``np.where``.
Calls whose result's shape depends on traced values (``x[mask]``, ``np.nonzero``,
``np.unique``, ...) raise it too, since a program's shapes are fixed: mask instead. Code
that must read values in Python (an optimizer's step count and schedule, an input check, a
random key) runs through :func:`pure_callback`, which records the whole Python function as one
step. Random numbers come from explicit key arguments (``tg.random``); a trace that draws
from NumPy's global random state, or from a Generator that ``f`` reads by name (a global, or
in its closure), is refused, and so is a Generator passed as an argument: every replay would
repeat the trace's draws. Floating-point error settings that ``f`` makes
with ``np.errstate`` (those that differ from the caller's when the trace began) are replayed
around the calls they covered; every other call warns or raises as the caller's settings at
that call say, as it would eagerly.

Replay makes the NumPy calls of eager execution on the same values, so its results equal
eager execution bit for bit. What it changes is when independent calls run and where results
go. A scheduler first reorders the steps as far as their data allow (a step follows the steps
that made what it reads and the writes of any memory it reads or writes, and a write follows
the earlier reads of that memory; callbacks and writes into the arguments keep their order):
a step that lets a MiB or more die runs as soon as it can and one that allocates a MiB or more
as late as it can, so that large arrays die sooner. Then the planner walks the program
once and computes each array's life, from the step that makes it to the last step that reads
or writes it (a view keeps its base alive). Each fresh array result of a ufunc, a ufunc's
reduce, ``np.matmul``, a reducing method, ``.copy()`` or ``np.empty_like`` gets a place in one
block of memory allocated with the program, at an offset no array alive at the same time
occupies (the largest placed first, as TensorFlow Lite's arena planner does), so the block is
about the most memory alive at any one step; the step writes there with ``out=``, and an
elementwise ufunc may write over an operand that dies with it. Arrays returned to the caller
never live in that block: they are allocated by the call (as in eager execution), or are the
caller's own arguments, so a later call never overwrites them. With ``donate_argnums`` the
caller gives up the listed arguments' arrays: results of the same layout may then be written
into them (``p - lr * g`` over ``p``), as JAX's buffer donation does; a donated array must not
be used after the call. Since the block is shared by a program's calls, call a jitted
function from one thread at a time (a call while another runs raises RuntimeError).

Programs are cached per signature in a least-recently-used cache of ``cache_size`` entries
(8 by default); a call with a new signature traces again. Python numbers in the arguments are
part of the signature by value (NumPy treats them as weak scalars, which no traced array can
imitate): pass a 0-d array to trace one. Arrays that ``f`` reads but does not take as
arguments are constants of the program, copied (layout and all) when a step first reads them,
and so are the Python values it reads (a global learning rate, an attribute): changing them
later changes nothing; pass them as arguments.
A jitted function called while another one is traced runs as part of that trace (inlined).
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import linecache
import operator
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
from numpy.lib.array_utils import byte_bounds

from tinygrad_np.tree import TreeDef, path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = [
    "ConcretizationTypeError",
    "Jitted",
    "Tracer",
    "asarray",
    "jit",
    "might",
    "pure_callback",
]


class ConcretizationTypeError(TypeError):
    """A traced value was needed as a Python value (``if x > 0:``, ``float(x)``, ...)."""


# Functions of shapes and dtypes only: run on the concrete arrays, nothing recorded.
_STATIC_FUNCTIONS = frozenset(
    {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj}
)
# ndarray methods a Tracer records (each run as a method call at replay).
_METHODS = frozenset(
    {
        "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "copy",
        "cumprod", "cumsum", "diagonal", "dot", "fill", "flatten", "max", "mean", "min",
        "nonzero", "prod", "ravel", "repeat", "reshape", "round", "sort", "squeeze", "std",
        "sum", "swapaxes", "take", "trace", "transpose", "var", "view",
    }
)  # fmt: skip
_PROPERTIES = frozenset({"T", "mT", "real", "imag"})
# A Python value that no NumPy call can have computed from a traced array.
_LITERALS = (type(None), bool, int, str, type(Ellipsis))


class _Value:
    """A value of the program: its number and what the planner needs to know of its array.

    The program holds these, not the Tracers: a concrete array of the trace is freed when
    ``f`` lets go of its Tracer, as eager execution frees it, so tracing needs about the
    memory of an eager call."""

    __slots__ = (
        "c_contiguous", "dtype", "f_contiguous", "is_array", "nbytes", "number", "shape",
        "strides",
    )  # fmt: skip

    def __init__(self, number: int, concrete: Any) -> None:
        self.number = number
        self.is_array = type(concrete) is np.ndarray
        if self.is_array:
            self.shape, self.dtype, self.strides = concrete.shape, concrete.dtype, concrete.strides
            self.nbytes = concrete.nbytes
            self.c_contiguous = concrete.flags.c_contiguous
            self.f_contiguous = concrete.flags.f_contiguous

    @property
    def layout(self) -> tuple[Any, ...]:
        return (self.shape, self.dtype.str, self.strides)


class _Step:
    """One recorded call: ``kind`` says how it is written (see ``_Compiler.statement``)."""

    __slots__ = ("args", "errstate", "fn", "kind", "kwargs", "name", "outputs", "values")

    def __init__(
        self, kind: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], name: str
    ) -> None:
        self.kind, self.fn, self.args, self.kwargs, self.name = kind, fn, args, kwargs, name
        self.outputs: Any = None  # the result's pattern: _Values, tuples/lists of them, None
        self.values: list[_Value] = []  # the traced arguments
        # np.errstate settings the traced function made around this call (as a dict of the
        # ones that differ from the caller's): replayed around it, so that what f silenced
        # stays silent and the rest follows the caller's settings at each call.
        self.errstate: dict[str, str] = {}


class _Trace:
    """The program being recorded: its steps, and which buffer each Tracer lives in."""

    def __init__(self) -> None:
        self.steps: list[_Step] = []
        self.buffer_of: list[int | None] = []  # value number -> number of its memory's owner
        # id(a memory-owning object alive) -> the number of the first value in its memory
        self.owners: dict[int, int] = {}
        self.pinned: list[Any] = []  # owners that cannot be weakly referenced, kept alive
        # id(an array constant) -> (the array, a snapshot of it): the program reads snapshots,
        # so a constant that f changes after a step used it still reads as that step saw it.
        self.constants: dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
        self.alive = True
        self.errstate = _errstate()  # the caller's, as the trace began

    def new(self, concrete: Any, origin: str) -> Tracer:
        tracer = object.__new__(Tracer)
        number = len(self.buffer_of)
        tracer._concrete, tracer._trace, tracer._origin = concrete, self, origin
        tracer._value = _Value(number, concrete)
        buffer = None
        if isinstance(concrete, np.ndarray):
            owner = _memory_owner(concrete)
            buffer = self.owners.get(id(owner))
            if buffer is None:
                buffer = self.owners[id(owner)] = number
                try:  # forgotten when the memory is freed, before its id can be reused
                    weakref.finalize(owner, self.owners.pop, id(owner), None)
                except TypeError:
                    self.pinned.append(owner)
        self.buffer_of.append(buffer)
        return tracer

    def record(
        self, kind: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], name: str
    ) -> Any:
        """Run one call on the concrete values, record it, and return its traced result."""
        step = _Step(kind, fn, self.freeze(args), self.freeze(kwargs), name)
        errstate = _errstate()
        if errstate != self.errstate:
            step.errstate = {k: v for k, v in errstate.items() if self.errstate[k] != v}
        arguments: list[Tracer] = []
        concrete_args = _concretize(args, self, step, arguments)
        concrete_kwargs = _concretize(kwargs, self, step, arguments)
        step.values = [t._value for t in arguments]
        if kind == "call":
            result = fn(*concrete_args, **concrete_kwargs)
        elif kind == "method":
            result = getattr(concrete_args[0], fn)(*concrete_args[1:], **concrete_kwargs)
        elif kind == "getattr":
            result = getattr(concrete_args[0], fn)
        elif kind == "getitem":
            result = concrete_args[0][concrete_args[1]]
        else:  # setitem
            concrete_args[0][concrete_args[1]] = concrete_args[2]
            result = None
        existing = {id(t._concrete): t for t in arguments}
        traced = self._wrap(result, existing, name)
        step.outputs = _values_of(traced)
        self.steps.append(step)
        return traced

    def freeze(self, template: Any) -> Any:
        """``template`` as the program keeps it: each Tracer replaced by its value, each array
        constant by a snapshot of its current value."""
        if isinstance(template, Tracer):
            return template._value
        if type(template) is tuple or type(template) is list:
            return type(template)(self.freeze(t) for t in template)
        if type(template) is dict:
            return {k: self.freeze(v) for k, v in template.items()}
        if not isinstance(template, np.ndarray):
            return template
        known = self.constants.get(id(template))
        if known is not None and known[0] is template and _same_bytes(known[1], template):
            return known[1]
        snapshot = _snapshot(template)
        self.constants[id(template)] = (template, snapshot)
        return snapshot

    def _wrap(self, result: Any, existing: dict[int, Tracer], name: str) -> Any:
        """The Tracers standing for ``result`` (an argument written with ``out=`` keeps its own)."""
        if isinstance(result, tuple | list):
            return _like(result, [self._wrap(r, existing, name) for r in result])
        if result is None:
            return None
        if isinstance(result, np.ndarray | np.generic | bool | int | float | complex):
            same = existing.get(id(result))
            if same is not None and same._concrete is result and isinstance(result, np.ndarray):
                return same
            return self.new(result, name)
        raise TypeError(
            f"jit: {name} returned a {type(result).__name__}, which a traced program cannot hold "
            "(arrays, NumPy scalars and tuples or lists of them only)"
        )


def _snapshot(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A copy of ``array`` with its exact layout: the same strides (a broadcast view stays
    one) and the same alignment, since NumPy and BLAS choose their loops, and so the order
    of their floating-point operations, by layout."""
    if array.dtype.hasobject:
        return array.copy()
    low, high = byte_bounds(array)
    memory = np.empty(high - low + _ALIGNMENT, np.uint8)
    start = (low - memory.ctypes.data) % _ALIGNMENT
    ctypes.memmove(memory.ctypes.data + start, low, high - low)
    copy = np.ndarray(
        array.shape,
        array.dtype,
        buffer=memory,
        offset=start + array.ctypes.data - low,
        strides=array.strides,
    )
    copy.flags.writeable = array.flags.writeable
    return copy


def _same_bytes(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a_bytes, b_bytes = (np.ascontiguousarray(x).reshape(-1).view(np.uint8) for x in (a, b))
    return bool(np.array_equal(a_bytes, b_bytes))


def _errstate() -> dict[str, str]:
    return {k: str(v) for k, v in np.geterr().items()}


def _memory_owner(array: np.ndarray[Any, Any]) -> Any:
    """The object that owns an array's memory: ``.base`` followed through views, and through
    the DummyArray that as_strided (so sliding_window_view) puts between a view and its array
    (so that such a view keeps that array alive in the plan)."""
    owner: Any = array
    while True:
        base = getattr(owner, "base", None)
        if base is None and isinstance(owner, memoryview):  # np.frombuffer(memoryview(b))
            base = owner.obj
        if base is None:
            return owner
        owner = base


def _shared_memory(arrays: list[Any]) -> tuple[Any, ...] | None:
    """Which of a call's arrays share a memory owner (None: none do), for its signature: a
    program orders its steps by the memory they read and write, so one traced with separate
    arrays must not be replayed on arrays that overlap (``f(a, a)``, two views of one array),
    where a write into one is a write into the other."""
    seen = set()
    for a in arrays:  # (at every call: the usual arrays own their memory, and differ)
        if type(a) is np.ndarray:
            owner = id(a if a.base is None else _memory_owner(a))
            if owner in seen:
                owners: dict[int, int] = {}
                groups = [
                    owners.setdefault(id(_memory_owner(a)), len(owners))
                    for a in arrays
                    if type(a) is np.ndarray
                ]
                return ("shared memory", tuple(groups))
            seen.add(owner)
    return None


def _like(sequence: Any, items: list[Any]) -> Any:
    """``items`` in a sequence of ``sequence``'s type (a named tuple, as np.linalg.svd's
    result, takes them by position)."""
    return type(sequence)(*items) if hasattr(sequence, "_fields") else type(sequence)(items)


def _values_of(pattern: Any) -> Any:
    """A result's pattern of Tracers as the program keeps it (their values)."""
    if isinstance(pattern, Tracer):
        return pattern._value
    if isinstance(pattern, tuple | list):
        return _like(pattern, [_values_of(p) for p in pattern])
    return pattern


def _concretize(template: Any, trace: _Trace, step: _Step, found: list[Tracer]) -> Any:
    """``template`` with each Tracer replaced by its concrete value (and added to ``found``)."""
    if isinstance(template, Tracer):
        if template._trace is not trace or not trace.alive:
            raise TypeError(
                f"jit: {step.name} got a traced value from another trace, or from a call that "
                "has returned (a Tracer leaked out of the function being jitted); return it "
                "instead of storing it"
            )
        found.append(template)
        return template._concrete
    if type(template) is tuple or type(template) is list:
        return type(template)(_concretize(t, trace, step, found) for t in template)
    if type(template) is dict:
        return {k: _concretize(v, trace, step, found) for k, v in template.items()}
    if type(template) is slice:
        for bound in (template.start, template.stop, template.step):
            if isinstance(bound, Tracer):
                raise ConcretizationTypeError(
                    f"jit: slicing with a traced bound (the result of {bound._origin}) in "
                    f"{step.name}: the result's shape would depend on a traced value; slice "
                    "with Python ints or static arguments, or use a mask"
                )
    return template


def _trace_of(values: Sequence[Any]) -> _Trace | None:
    for value in values:
        if isinstance(value, Tracer):
            return value._trace
        if type(value) is tuple or type(value) is list:
            found = _trace_of(value)
            if found is not None:
                return found
    return None


def _defers(values: Sequence[Any]) -> bool:
    """Whether another array type (a Tensor) among ``values`` should handle the call."""
    for value in values:
        kind = type(value)
        if kind is Tracer or kind is np.ndarray or isinstance(value, _LITERALS):
            continue
        if type(value) is tuple or type(value) is list:
            if _defers(value):
                return True
        elif getattr(kind, "__array_ufunc__", None) not in (None, np.ndarray.__array_ufunc__):
            return True
    return False


def _concretization_error(what: str, tracer: Tracer) -> ConcretizationTypeError:
    return ConcretizationTypeError(
        f"jit: {what} of a traced value (the result of {tracer._origin}): a traced value was "
        "used in Python control flow or converted to a Python or NumPy value, which would bake "
        "the first call's value into the trace. Compute with arrays instead (np.where(x > 0, "
        "a, b) for a branch), branch on shapes or static arguments (static_argnums), or run "
        "the Python code through tg.pure_callback"
    )


def _argument(args: Any, kwargs: dict[str, Any], position: int, name: str) -> Any:
    return args[position] if len(args) > position else kwargs.get(name)


def _traced_argument(position: int, name: str) -> Callable[[Any, dict[str, Any]], bool]:
    return lambda args, kwargs: isinstance(_argument(args, kwargs, position, name), Tracer)


def _string_argument(position: int, name: str) -> Callable[[Any, dict[str, Any]], bool]:
    return lambda args, kwargs: isinstance(_argument(args, kwargs, position, name), str)


def _always(args: Any, kwargs: dict[str, Any]) -> bool:
    return True


# Functions whose result's shape depends on the values they are given (how many elements are
# nonzero, or unique, ...), with when it does: a program of fixed shapes cannot replay them.
_VALUE_SHAPED: dict[Any, Callable[[Any, dict[str, Any]], bool]] = {
    **{
        f: _always
        for f in (
            np.nonzero, np.flatnonzero, np.argwhere, np.extract, np.unique, np.trim_zeros,
            np.bincount, np.setdiff1d, np.intersect1d, np.union1d, np.setxor1d, np.roots,
            np.polydiv, *(getattr(np, f"unique_{kind}", None) for kind in
                          ("all", "counts", "inverse", "values")),
        )
    },
    np.where: lambda args, kwargs: len(args) + len(kwargs) == 1,  # np.where(condition)
    np.compress: _traced_argument(0, "condition"),
    np.delete: _traced_argument(1, "obj"),
    np.repeat: _traced_argument(1, "repeats"),
    np.histogram: _string_argument(1, "bins"),  # bins="auto" and the like
    np.histogram_bin_edges: _string_argument(1, "bins"),
    np.histogramdd: _string_argument(1, "bins"),
    np.histogram2d: _string_argument(2, "bins"),
}  # fmt: skip
_VALUE_SHAPED.pop(None, None)
# Functions whose result's shape or dtype depends on the values only at times: recorded, and
# their result checked at every replay. (Least squares has residuals only at full rank, real
# matrices have real or complex eigenvalues; polyfit(full=True) returns lstsq's residuals.)
_VALUE_TYPED = frozenset({np.linalg.lstsq, np.linalg.eig, np.linalg.eigvals, np.polyfit})


def _value_shaped_error(what: str) -> ConcretizationTypeError:
    return ConcretizationTypeError(
        f"jit: {what}: the shape of the result depends on the values, so a program traced "
        "once could not replay it for other values. Keep shapes fixed: mask instead of "
        "selecting (np.where(mask, x, 0), x * mask, np.sum(x, where=mask)), or compute it "
        "outside the jitted function"
    )


def _has_traced_boolean(index: Any) -> bool:
    if isinstance(index, Tracer):
        return index.dtype == np.bool_
    if type(index) is tuple or type(index) is list:
        return any(_has_traced_boolean(i) for i in index)
    return False


def _ufunc_name(ufunc: np.ufunc, method: str) -> str:
    return f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")


_NUMBERS = (bool, int, float, complex)
# Python's own arithmetic, for traced Python numbers (a pure_callback's results): NumPy's would
# turn two floats into an np.float64, which is no longer a weak scalar.
_PYTHON_OPERATORS: dict[Any, Callable[[Any, Any], Any]] = {
    np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
    np.true_divide: operator.truediv, np.floor_divide: operator.floordiv,
    np.remainder: operator.mod, np.power: operator.pow,
}  # fmt: skip


def _is_number(x: Any) -> bool:
    return type(x._concrete if isinstance(x, Tracer) else x) in _NUMBERS


def _binary(ufunc: np.ufunc) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    python = _PYTHON_OPERATORS.get(ufunc)

    def forward(self: Tracer, other: Any) -> Any:
        if python is not None and _is_number(self) and _is_number(other):
            name = f"operator.{python.__name__}"
            return self._trace.record("call", python, (self, other), {}, name)
        return ufunc(self, other)

    def reflected(self: Tracer, other: Any) -> Any:
        if python is not None and _is_number(self) and _is_number(other):
            name = f"operator.{python.__name__}"
            return self._trace.record("call", python, (other, self), {}, name)
        return ufunc(other, self)

    def in_place(self: Tracer, other: Any) -> Any:
        return ufunc(self, other, out=(self,))

    return forward, reflected, in_place


class Tracer:
    """An array being traced by :func:`jit`: the concrete array of the tracing call, and
    the place in the program where it was computed.

    It supports NumPy's ufuncs and functions, the operators, indexing and the common
    ndarray methods and properties, each recorded. Shape, dtype, ``ndim``, ``size`` and
    ``len`` are static (part of the signature). Converting it to a Python value or to an
    ndarray raises :class:`ConcretizationTypeError`.
    """

    __slots__ = ("_concrete", "_origin", "_trace", "_value")
    _concrete: Any
    _origin: str
    _trace: _Trace
    _value: _Value

    def __init__(self) -> None:
        raise TypeError("Tracers are made by tg.jit while it traces a function")

    @property
    def _number(self) -> int:
        return self._value.number

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape (static: part of the jitted function's signature)."""
        return np.shape(self._concrete)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype (static)."""
        return np.result_type(self._concrete)

    @property
    def ndim(self) -> int:
        """The number of dimensions (static)."""
        return np.ndim(self._concrete)

    @property
    def size(self) -> int:
        """The number of elements (static)."""
        return int(np.size(self._concrete))

    @property
    def strides(self) -> tuple[int, ...]:
        """The memory layout (static: fixed by the layouts of the arguments, which are part
        of the signature, and by the calls that made this array)."""
        return np.asarray(self._concrete).strides

    @property
    def itemsize(self) -> int:
        """The size of one element in bytes (static)."""
        return self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Tracer(shape={self.shape}, dtype={self.dtype}, from {self._origin})"

    # --- recorded calls ------------------------------------------------------------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out", ())
        if _defers(inputs) or _defers(out):
            return NotImplemented
        name = _ufunc_name(ufunc, method)
        written = list(out) + ([inputs[0]] if method == "at" else [])
        for target in written:
            if target is not None and not isinstance(target, Tracer):
                raise TypeError(
                    f"jit: {name} would write a traced value into an array that is not traced "
                    "(with out= or an in-place operator, into an array made from constants or "
                    "not taken as an argument): later reads of it could not be recorded, and "
                    "the next call would not write it. Use the returned value (a = a & t "
                    "rather than a &= t), or pass that array as an argument"
                )
        trace = _trace_of(inputs) or _trace_of(out)
        assert trace is not None
        fn = ufunc if method == "__call__" else getattr(ufunc, method)
        return trace.record("call", fn, inputs, kwargs, name)

    def __array_function__(
        self, func: Callable[..., Any], types: Any, args: Any, kwargs: dict[str, Any]
    ) -> Any:
        for t in types:
            if not issubclass(t, Tracer | np.ndarray):
                return NotImplemented
        if func in _STATIC_FUNCTIONS:
            step = _Step("call", func, args, kwargs, "")
            return func(
                *_concretize(args, self._trace, step, []),
                **_concretize(kwargs, self._trace, step, []),
            )
        name = f"np.{getattr(func, '__name__', repr(func))}"
        module = getattr(func, "__module__", "") or ""
        if module.startswith("numpy.linalg"):
            name = f"np.linalg.{func.__name__}"
        value_shaped = _VALUE_SHAPED.get(func)
        if value_shaped is not None and value_shaped(args, kwargs):
            raise _value_shaped_error(f"{name} of a traced value")
        if func in _VALUE_TYPED:
            func = _Checked(func, name)
        out = kwargs.get("out")
        outs = out if isinstance(out, tuple) else (out,)
        if out is not None and not all(isinstance(o, Tracer) for o in outs):
            raise TypeError(
                f"jit: {name}(..., out=an array that is not traced) would write a traced value "
                "into it, and the next call would not; use the returned value"
            )
        return self._trace.record("call", func, args, kwargs, name)

    def __getitem__(self, index: Any) -> Any:
        if _has_traced_boolean(index):
            raise _value_shaped_error("indexing with a traced boolean mask (x[mask])")
        return self._trace.record("getitem", None, (self, index), {}, "indexing ([])")

    def __setitem__(self, index: Any, value: Any) -> None:
        if _defers((value,)):
            raise TypeError(
                "jit: storing a Tensor into a traced array (a[i] = t) would drop its gradient"
            )
        self._trace.record("setitem", None, (self, index, value), {}, "assignment ([]=)")

    def __getattr__(self, name: str) -> Any:
        if name in _METHODS:
            record = self._trace.record

            def method(*args: Any, **kwargs: Any) -> Any:
                if name == "nonzero" or (
                    name == "repeat" and _traced_argument(0, "repeats")(args, kwargs)
                ):
                    raise _value_shaped_error(f"ndarray.{name} of a traced value")
                return record("method", name, (self, *args), kwargs, f"ndarray.{name}")

            return method
        if name in _PROPERTIES:
            return self._trace.record("getattr", name, (self,), {}, f"ndarray.{name}")
        if not name.startswith("__") and hasattr(np.ndarray, name):
            raise TypeError(
                f"jit: ndarray.{name} of a traced array is not supported: its result could "
                "not be recomputed by later calls (tg.jit records NumPy functions, operators, "
                "indexing and the methods " + ", ".join(sorted(_METHODS)) + ")"
            )
        raise AttributeError(f"'Tracer' object has no attribute {name!r}")

    # --- conversions to Python values: refused ----------------------------------------

    def __bool__(self) -> bool:
        raise _concretization_error("bool() (an if, while, and, or, not)", self)

    def __float__(self) -> float:
        raise _concretization_error("float()", self)

    def __int__(self) -> int:
        raise _concretization_error("int()", self)

    def __complex__(self) -> complex:
        raise _concretization_error("complex()", self)

    def __index__(self) -> int:
        raise _concretization_error("use as an index or size (__index__)", self)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise _concretization_error(
            "conversion to an ndarray (np.asarray, np.array, or storing into an ndarray that "
            "is not traced)",
            self,
        )

    def item(self, *args: Any) -> Any:
        """Refused: the value would be a Python constant of the trace."""
        raise _concretization_error(".item()", self)

    def tolist(self) -> Any:
        """Refused: the values would be Python constants of the trace."""
        raise _concretization_error(".tolist()", self)

    def __contains__(self, value: Any) -> bool:
        raise _concretization_error("`in`", self)

    __hash__ = None  # type: ignore[assignment]

    def __neg__(self) -> Any:
        return np.negative(self)

    def __pos__(self) -> Any:
        return np.positive(self)

    def __abs__(self) -> Any:
        return np.absolute(self)

    def __invert__(self) -> Any:
        return np.invert(self)

    def __lt__(self, other: Any) -> Any:
        return np.less(self, other)

    def __le__(self, other: Any) -> Any:
        return np.less_equal(self, other)

    def __gt__(self, other: Any) -> Any:
        return np.greater(self, other)

    def __ge__(self, other: Any) -> Any:
        return np.greater_equal(self, other)

    def __eq__(self, other: Any) -> Any:
        return np.equal(self, other)

    def __ne__(self, other: Any) -> Any:
        return np.not_equal(self, other)

    __add__, __radd__, __iadd__ = _binary(np.add)
    __sub__, __rsub__, __isub__ = _binary(np.subtract)
    __mul__, __rmul__, __imul__ = _binary(np.multiply)
    __truediv__, __rtruediv__, __itruediv__ = _binary(np.true_divide)
    __floordiv__, __rfloordiv__, __ifloordiv__ = _binary(np.floor_divide)
    __mod__, __rmod__, __imod__ = _binary(np.remainder)
    __pow__, __rpow__, __ipow__ = _binary(np.power)
    __matmul__, __rmatmul__, __imatmul__ = _binary(np.matmul)
    __and__, __rand__, __iand__ = _binary(np.bitwise_and)
    __or__, __ror__, __ior__ = _binary(np.bitwise_or)
    __xor__, __rxor__, __ixor__ = _binary(np.bitwise_xor)


def pure_callback(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, recorded as one step when an argument is traced.

    For Python code that reads values (an input check, an optimizer's step count turned into
    a learning rate, drawing random numbers from a key): while :func:`jit` traces, it runs
    on the concrete values and every replay runs it again on that call's values. ``function``
    must be pure: its result (arrays, NumPy or Python scalars, or tuples and lists of them)
    depends on its arguments only, and has the structure, types, shapes and dtypes of the
    traced call's result (a replay checks, and raises TypeError otherwise: the program was
    planned for them). Without traced arguments it is a plain call.
    """
    trace = _trace_of(args) or _trace_of(list(kwargs.values()))
    if trace is None:
        return function(*args, **kwargs)
    name = f"pure_callback({getattr(function, '__qualname__', repr(function))})"
    return trace.record("call", _Checked(function, name), args, kwargs, name)


class _Checked:
    """A function (a pure_callback's, or a NumPy function in ``_VALUE_TYPED``) that checks at
    every replay that its result has the structure, types, shapes and dtypes of the traced
    call's: the program was planned for those (a result of another shape would be broadcast
    into the memory planned for the traced one)."""

    __slots__ = ("__name__", "function", "kinds", "name")

    def __init__(self, function: Callable[..., Any], name: str) -> None:
        self.function, self.name, self.kinds = function, name, None
        self.__name__ = getattr(function, "__name__", "callback")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.function(*args, **kwargs)
        kinds = _kinds(result)
        if self.kinds is None:  # the traced call
            self.kinds = kinds
        elif kinds != self.kinds:
            raise TypeError(
                f"jit: {self.name} returned {_describe(kinds)} where the traced call returned "
                f"{_describe(self.kinds)}; the program was built for the traced call's "
                "result, whose structure, types, shapes and dtypes every call must keep"
            )
        return result


def _kinds(result: Any) -> Any:
    if type(result) is np.ndarray:
        return ("array", result.shape, result.dtype)
    if type(result) is tuple or type(result) is list:
        return (type(result), tuple(_kinds(r) for r in result))
    return (type(result),)


def _describe(kinds: Any) -> str:
    if kinds[0] == "array":
        return f"a {kinds[2]} array of shape {kinds[1]}"
    if len(kinds) == 2:
        return f"a {kinds[0].__name__} of ({', '.join(_describe(k) for k in kinds[1])})"
    return str(kinds[0].__name__)


def might(condition: Any) -> bool:
    """``condition.any()``, except that a traced condition might hold at some call: True. For
    ops that skip work when a mask is empty; under :func:`jit` the work is always recorded."""
    return isinstance(condition, Tracer) or bool(condition.any())


def asarray(x: Any, dtype: Any = None) -> Any:
    """``np.asarray(x, dtype)``, except that an array being traced stays a Tracer (``x``
    itself, or ``x.astype(dtype)``): for code that converts its inputs."""
    if not isinstance(x, Tracer):
        return np.asarray(x, dtype)
    if dtype is not None and np.dtype(dtype) != x.dtype:
        x = x.astype(dtype)
    if not isinstance(x._concrete, np.ndarray):  # a NumPy scalar: np.asarray makes a 0-d array
        x = np.copy(x)
    return x


# --- compiling a trace into a Python function -------------------------------------------------


class _Compiler:
    """Writes a trace as the source of one Python function, and plans its buffers."""

    def __init__(
        self, trace: _Trace, inputs: list[_Value], outputs: list[Any], donated: set[int]
    ) -> None:
        self.trace, self.inputs, self.outputs = trace, inputs, outputs
        self.namespace: dict[str, Any] = {"np": np}
        self.names: dict[int, str] = {}  # id(constant) -> its name in the namespace
        # id(step) -> how its result is written into the program's memory, and where
        self.buffers: dict[int, tuple[str, str]] = {}
        self.donated = donated  # numbers of the input Tracers the caller donated

    def constant(self, value: Any, prefix: str = "c") -> str:
        name = self.names.get(id(value))
        if name is None:
            name = f"{prefix}{len(self.names)}"
            self.names[id(value)] = name
            self.namespace[name] = value
        return name

    def expr(self, template: Any) -> str:
        if isinstance(template, _Value):
            return f"v{template.number}"
        if isinstance(template, _LITERALS) and type(template) in _LITERALS:
            return repr(template)
        if type(template) is tuple:
            return "(" + "".join(f"{self.expr(t)}, " for t in template) + ")"
        if type(template) is list:
            return "[" + ", ".join(self.expr(t) for t in template) + "]"
        if type(template) is slice:
            parts = (template.start, template.stop, template.step)
            return "slice(" + ", ".join(self.expr(p) for p in parts) + ")"
        if type(template) is dict and all(type(k) is str for k in template):
            return "{" + ", ".join(f"{k!r}: {self.expr(v)}" for k, v in template.items()) + "}"
        return self.constant(template)

    def function(self, fn: Any) -> str:
        name = str(getattr(fn, "__name__", ""))
        if isinstance(fn, np.ufunc) and getattr(np, name, None) is fn:
            return f"np.{name}"
        owner = getattr(fn, "__self__", None)  # a ufunc method such as np.add.reduce
        owner_name = str(getattr(owner, "__name__", ""))
        if isinstance(owner, np.ufunc) and getattr(np, owner_name, None) is owner:
            return f"np.{owner_name}.{name}"
        for module, prefix in ((np, "np."), (np.linalg, "np.linalg.")):
            if name and getattr(module, name, None) is fn:
                return prefix + name
        return self.constant(fn, "f")

    def target(self, pattern: Any, written: set[int]) -> str:
        if isinstance(pattern, _Value):
            return "_" if pattern.number in written else f"v{pattern.number}"
        if isinstance(pattern, tuple | list):
            inner = "".join(f"{self.target(p, written)}, " for p in pattern)
            return f"({inner})" if inner else "_"
        return "_"

    def call(self, step: _Step, out: str = "") -> str:
        args = [self.expr(a) for a in step.args]
        kwargs = [f"{k}={self.expr(v)}" for k, v in step.kwargs.items()] + ([out] if out else [])
        if step.kind == "call":
            return f"{self.function(step.fn)}({', '.join(args + kwargs)})"
        if step.kind == "method":
            return f"{args[0]}.{step.fn}({', '.join(args[1:] + kwargs)})"
        if step.kind == "getattr":
            return f"{args[0]}.{step.fn}"
        index = self.expr(step.args[1])
        return f"{args[0]}[{index}]"

    def statement(self, step: _Step) -> str:
        if step.kind == "setitem":
            array, index, value = (self.expr(a) for a in step.args)
            return f"{array}[{index}] = {value}"
        written = {v.number for v in step.values}
        if (
            step.kind == "method"
            and step.fn in _IDENTITY_METHODS
            and _single(step.outputs, -1) in written
        ):
            return "pass  # " + self.call(step) + " is the array itself"
        planned = self.buffers.get(id(step))
        if planned is not None:
            how, buffer = planned
            result = f"v{step.outputs.number}"
            if how == "empty":
                return f"{result} = {buffer}"
            if how == "zeros":
                return f"np.copyto({buffer}, 0); {result} = {buffer}"
            if how == "copy":  # (astype's casting, which copyto checks otherwise)
                source = self.expr(step.args[0])
                return f"np.copyto({buffer}, {source}, casting='unsafe'); {result} = {buffer}"
            return f"{result} = {self.call(step, f'out={buffer}')}"
        target = self.target(step.outputs, written)
        return self.call(step) if target == "_" else f"{target} = {self.call(step)}"

    def source(self) -> str:
        lines = [f"def program({', '.join(f'v{v.number}' for v in self.inputs)}):"]
        for step in self.trace.steps:
            statement = self.statement(step)
            if step.errstate:
                settings = ", ".join(f"{k}={v!r}" for k, v in sorted(step.errstate.items()))
                statement = f"with np.errstate({settings}): {statement}"
            lines.append(f"    {statement}")
        results = []
        for kind, value in self.outputs:
            if kind == "traced":
                results.append(f"v{value.number}")
            else:  # an array constant: a copy per call, so no call returns another's array
                results.append(f"{self.constant(value)}.copy()")
        lines.append(f"    return ({''.join(r + ', ' for r in results)})")
        return "\n".join(lines) + "\n"


def _single(pattern: Any, default: int) -> int:
    return pattern.number if isinstance(pattern, _Value) else default


_program_numbers = itertools.count()


def _compile(compiler: _Compiler) -> tuple[Callable[..., tuple[Any, ...]], str]:
    source = compiler.source()
    filename = f"<tg.jit program {next(_program_numbers)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = dict(compiler.namespace)
    exec(compile(source, filename, "exec"), namespace)
    return namespace["program"], source


# --- the jitted function ----------------------------------------------------------------------

_Entry = tuple[Callable[..., tuple[Any, ...]], TreeDef, list[Any], str]


class Jitted:
    """``f`` traced once per signature and replayed (see :func:`jit`)."""

    def __init__(
        self,
        f: Callable[..., Any],
        static_argnums: tuple[int, ...],
        donate_argnums: tuple[int, ...],
        cache_size: int,
    ) -> None:
        self.f, self.static_argnums, self.donate_argnums = f, static_argnums, donate_argnums
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[Any, _Entry] = collections.OrderedDict()
        self.traces = 0  # how many times f has been traced
        self._running = False  # a program is running: its memory is in use
        self.__wrapped__ = f
        self.__name__ = getattr(f, "__name__", "jitted")
        self.__doc__ = getattr(f, "__doc__", None)

    def __repr__(self) -> str:
        return f"jit({getattr(self.f, '__qualname__', self.f)!r})"

    def _split(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The call's cache key, its traced leaves, and the tree whose leaves they are."""
        dynamic = list(args)
        statics = []
        for n in self.static_argnums:
            if n >= len(args):
                raise ValueError(
                    f"jit: static_argnums names argument {n}, but the call has {len(args)} "
                    "positional arguments"
                )
            value = args[n]
            if isinstance(value, _GENERATORS):
                raise TypeError(
                    f"jit: static argument {n} is a NumPy random {type(value).__name__}: "
                    + _GENERATOR_ADVICE
                )
            try:
                hash(value)
            except TypeError:
                raise TypeError(
                    f"jit: static argument {n} must be hashable, got {type(value).__name__}"
                ) from None
            statics.append(value)
            dynamic[n] = None
        tree = (tuple(dynamic), kwargs)
        key: list[Any] = [tuple(statics)]
        arrays: list[Any] = []
        if not _signature(tree, key, arrays):
            leaves, treedef = tree_flatten(tree)
            if any(isinstance(leaf, Tracer) for leaf in leaves):
                return None, [], tree  # called while an outer function is traced
            for i, leaf in enumerate(leaves):
                if not (type(leaf) is np.ndarray or isinstance(leaf, np.generic)):
                    if _static_key(leaf) is None:
                        self._static_leaf(leaf, i, leaves, treedef)  # raises, naming the leaf
        sharing = _shared_memory(arrays)
        if sharing is not None:
            key.append(sharing)
        return tuple(key), arrays, tree

    def _static_leaf(self, leaf: Any, i: int, leaves: list[Any], treedef: TreeDef) -> NoReturn:
        if isinstance(leaf, np.ndarray):
            problem = f"an ndarray subclass ({type(leaf).__name__})"
        elif isinstance(leaf, Tracer):
            problem = "a Tracer"
        elif isinstance(leaf, _GENERATORS):
            problem = f"a NumPy random {type(leaf).__name__}"
        elif hasattr(leaf, "__array_ufunc__") or hasattr(leaf, "__array_function__"):
            problem = f"a {type(leaf).__name__} (pass its data as an ndarray)"
        else:
            problem = f"an unhashable {type(leaf).__name__}"
        group, position, *path = tree_paths(tree_unflatten(treedef, leaves))[i]
        where = f"argument {position}" if group == 0 else f"keyword argument {position!r}"
        where += path_str(tuple(path)) if path else ""
        if isinstance(leaf, _GENERATORS):
            raise TypeError(f"jit: {where} is {problem}: {_GENERATOR_ADVICE}")
        raise TypeError(
            f"jit: {where} is {problem}; the leaves of a jitted function's arguments are "
            "ndarrays, NumPy scalars, or hashable values that become part of the signature"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key, arrays, tree = self._split(args, kwargs)
        if key is None:  # inside another jitted function's trace: part of its program
            return self.f(*args, **kwargs)
        entry = self._cache.get(key)
        if entry is None:
            return self._trace(key, args, tree)
        self._cache.move_to_end(key)
        program, out_def, statics, _ = entry
        if self.donate_argnums:
            _check_donated(args, self.donate_argnums, arrays)
        if self._running:
            raise RuntimeError(
                f"jit: {self!r} was called while another call of it was running (from another "
                "thread, or from a callback inside it); its calls share their memory, so call "
                "it from one thread at a time"
            )
        self._running = True
        try:
            results = program(*arrays)
        finally:
            self._running = False
        if statics:
            results = _merge(results, statics)
        return tree_unflatten(out_def, list(results))

    def source(self, *args: Any, **kwargs: Any) -> str:
        """The Python source of the program for this call's signature (traced first, by
        calling ``f`` on the arguments, if it has not been)."""
        key, _, tree = self._split(args, kwargs)
        if key is None:
            raise TypeError("jit: source() of traced arguments: call it outside the trace")
        if key not in self._cache:
            self._trace(key, args, tree)
        return self._cache[key][3]

    def _trace(self, key: Any, args: tuple[Any, ...], tree: Any) -> Any:
        leaves, treedef = tree_flatten(tree)
        trace = _Trace()
        inputs: list[Tracer] = []
        traced_leaves = []
        for leaf in leaves:
            if type(leaf) is np.ndarray or isinstance(leaf, np.generic):
                inputs.append(trace.new(leaf, f"argument leaf {len(inputs)}"))
                traced_leaves.append(inputs[-1])
            else:
                traced_leaves.append(leaf)
        dynamic, call_kwargs = tree_unflatten(treedef, traced_leaves)
        call_args = list(dynamic)
        for n in self.static_argnums:
            call_args[n] = args[n]
        donated = {t._number for n in self.donate_argnums for t in _tracers_in(call_args[n])}
        generators: dict[str, Any] = {"NumPy's global random state": None}
        generators.update(_generators_read_by(self.f))
        states = {name: _random_state(g) for name, g in generators.items()}
        try:
            out = self.f(*call_args, **call_kwargs)
        finally:
            trace.alive = False
        for name, g in generators.items():
            if not _equal_states(states[name], _random_state(g)):
                raise TypeError(
                    f"jit: the function drew random numbers from {name} while it was traced; "
                    + _GENERATOR_ADVICE
                )
        out_leaves, out_def = tree_flatten(out)
        outputs: list[Any] = []  # ("traced", Tracer) or ("constant", array)
        statics: list[Any] = []  # (position, value) of outputs that are Python values
        first: list[Any] = []
        for i, leaf in enumerate(out_leaves):
            if isinstance(leaf, Tracer):
                if leaf._trace is not trace:
                    raise TypeError("jit: the function returned a Tracer of another trace")
                outputs.append(("traced", leaf))
                first.append(leaf._concrete)
            elif isinstance(leaf, np.ndarray | np.generic):
                outputs.append(("constant", leaf.copy()))  # as it is now, for every call
                first.append(leaf.copy())
            elif isinstance(leaf, (*_LITERALS, float, complex)):
                statics.append((i, leaf))
                first.append(leaf)
            else:
                path = tree_paths(out)[i]
                where = path_str(path) if path else ""
                why = (
                    "a named tuple, which pytrees keep whole: return tuple(...) of it"
                    if hasattr(leaf, "_fields")
                    else "not an array (a Tensor must not leave the transform that made it)"
                )
                raise TypeError(
                    f"jit: the function's output{where} is a {type(leaf).__name__}, {why}"
                )
        values = [(kind, v._value if kind == "traced" else v) for kind, v in outputs]
        compiler = _Compiler(trace, [t._value for t in inputs], values, donated)
        _schedule(compiler)
        _plan(compiler)
        program, source = _compile(compiler)
        self._cache[key] = (program, out_def, statics, source)
        self.traces += 1
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return tree_unflatten(out_def, first)


def _signature(tree: Any, key: list[Any], arrays: list[Any]) -> bool:
    """Append ``tree``'s structure and its leaves' signatures to ``key`` and its arrays to
    ``arrays``, in ``tree_flatten``'s order; False if a leaf can be neither traced nor hashed.
    (A walk of its own: a third of tree_flatten's time, paid at every call.)"""
    kind = type(tree)
    if kind is np.ndarray:
        key.append((tree.shape, tree.dtype, tree.strides))  # strides: the layout, exactly
        arrays.append(tree)
        return True
    if kind is dict or (isinstance(tree, dict) and kind is not Tracer):
        key.append(("dict", tuple(tree)))
        for child in tree.values():
            if not _signature(child, key, arrays):
                return False
        return True
    if (
        kind is tuple
        or kind is list
        or (isinstance(tree, list | tuple) and not hasattr(tree, "_fields"))
    ):
        key.append(len(tree) if kind is tuple else (kind, len(tree)))
        for child in tree:
            if not _signature(child, key, arrays):
                return False
        return True
    if isinstance(tree, np.generic):
        key.append(kind)
        arrays.append(tree)
        return True
    static = _static_key(tree)
    key.append(static)
    return static is not None


_GENERATORS = (np.random.Generator, np.random.RandomState, np.random.BitGenerator)
_GENERATOR_ADVICE = (
    "every later call would repeat the numbers it drew at the trace. Pass a key "
    "(tg.random.key) as an argument and draw from it (tg.random.generator, tg.nn.dropout)"
)


def _static_key(leaf: Any) -> Any:
    """What a leaf that is not traced contributes to the signature (None: it cannot)."""
    if (
        isinstance(leaf, (np.ndarray, Tracer, *_GENERATORS))
        or hasattr(leaf, "__array_ufunc__")
        or hasattr(leaf, "__array_function__")
    ):
        return None
    try:
        hash(leaf)
    except TypeError:
        return None
    if type(leaf) is float:  # -0.0 == 0.0 and nan != nan: compared by their bits
        return (float, leaf.hex())
    return ("static", type(leaf), leaf)


def _values_in(pattern: Any) -> list[_Value]:
    """The values in a step's result pattern."""
    if isinstance(pattern, _Value):
        return [pattern]
    if isinstance(pattern, tuple | list):
        return [v for p in pattern for v in _values_in(p)]
    return []


def _tracers_in(tree: Any) -> list[Tracer]:
    return [leaf for leaf in tree_flatten(tree)[0] if isinstance(leaf, Tracer)]


def _generators_read_by(f: Callable[..., Any]) -> dict[str, Any]:
    """The NumPy random generators ``f`` reads by name: from its closure, or its module's
    globals (draws from them during the trace would be baked into the program)."""
    function = getattr(f, "__func__", f)  # (a bound method's function)
    code = getattr(function, "__code__", None)
    if code is None:
        return {}
    found = {}
    for name, cell in zip(code.co_freevars, function.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not yet filled
            continue
        if isinstance(value, _GENERATORS):
            found[f"the {type(value).__name__} {name!r} it closes over"] = value
    for name in code.co_names:
        value = function.__globals__.get(name)
        if isinstance(value, _GENERATORS):
            found[f"the {type(value).__name__} {name!r} (a global)"] = value
    return found


def _random_state(generator: Any) -> Any:
    if generator is None:  # NumPy's global random state
        return np.random.get_state(legacy=False)  # noqa: NPY002
    if isinstance(generator, np.random.RandomState):
        return generator.get_state(legacy=False)
    bits = generator.bit_generator if isinstance(generator, np.random.Generator) else generator
    return bits.state


def _equal_states(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal_states(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return bool(a == b)


def _merge(results: tuple[Any, ...], statics: list[Any]) -> tuple[Any, ...]:
    merged = list(results)
    for i, value in statics:
        merged.insert(i, value)
    return tuple(merged)


def _check_donated(
    args: tuple[Any, ...], donate_argnums: tuple[int, ...], arrays: list[Any]
) -> None:
    """A donated array must be writable and shared with no other argument."""
    donated_ids = set()
    for n in donate_argnums:
        for leaf in tree_flatten(args[n])[0]:
            if isinstance(leaf, np.ndarray):
                if not leaf.flags.writeable or leaf.base is not None:
                    raise ValueError(
                        f"jit: donated argument {n} holds an array that is read-only or a view "
                        "of another array; donate arrays that own their memory"
                    )
                donated_ids.add(id(leaf))
    seen: set[int] = set()
    for a in arrays:
        owner = a if not isinstance(a, np.ndarray) or a.base is None else a.base
        if id(owner) in seen and id(owner) in donated_ids:
            raise ValueError("jit: a donated array is also passed as another argument")
        seen.add(id(owner))


_REDUCING_METHODS = frozenset({"sum", "mean", "max", "min", "prod"})


def _dense(value: _Value) -> bool:
    """Whether the array's elements fill its memory without gaps in some order of its axes
    (C or F order, or a transposition of either, as batch-last convolution outputs are): an
    array of that layout can be placed in the program's block at the size of its data."""
    expected = value.dtype.itemsize
    for stride, size in sorted(zip(value.strides, value.shape, strict=True)):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True


def _writes_fresh_result(step: _Step, buffer_of: list[int | None]) -> str | None:
    """How ``step`` can write its fresh array result into a given array: ``"out"`` (a ufunc,
    a ufunc's reduce, np.matmul, ndarray.sum and the other reducing methods), ``"elementwise"``
    (an elementwise ufunc, which may also overwrite an operand of its result's layout),
    ``"copy"`` (ndarray.copy, ndarray.astype, np.copy: np.copyto), ``"empty"``
    (np.empty_like: the array itself), ``"zeros"`` (np.zeros_like: filled with 0), or None."""
    if "out" in step.kwargs or "where" in step.kwargs:
        return None
    result = step.outputs
    if not (isinstance(result, _Value) and result.is_array):
        return None
    if buffer_of[result.number] != result.number or any(
        v.number == result.number for v in step.values
    ):
        return None  # a view, or an argument itself (astype(copy=False) of its own dtype)
    fn = step.fn
    if step.kind == "method":
        if fn in _REDUCING_METHODS:
            return "out"
        if fn in ("copy", "astype"):
            return "copy"
        return None
    if step.kind != "call":
        return None
    if fn is np.empty_like:
        return "empty"
    if fn is np.zeros_like:
        return "zeros"
    if fn is np.copy:
        return "copy"
    if isinstance(fn, np.ufunc) and fn.nout == 1:
        return "elementwise" if fn.signature is None else "out"
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc) and getattr(fn, "__name__", "") == "reduce":
        return "out"
    return None


# NumPy functions that write none of their arguments (except an out= one): steps calling them
# may trade places with other readers of the same arrays. A function not listed here is taken
# to write every array it is given (np.copyto, np.put, ...), which keeps its place among them.
_PURE_FUNCTIONS = frozenset(
    getattr(np, name) for name in (
        "broadcast_to", "clip", "concatenate", "copy", "cumsum", "dot", "einsum", "empty_like",
        "expand_dims", "full_like", "matmul", "moveaxis", "ones_like", "ravel", "reshape",
        "squeeze", "stack", "sum", "swapaxes", "take", "take_along_axis", "tensordot",
        "transpose", "where", "zeros_like",
    )
) | {np.lib.stride_tricks.sliding_window_view}  # fmt: skip
_WRITING_METHODS = frozenset({"fill", "sort"})  # ndarray methods that change the array itself
# ndarray methods with no out= that may return the array itself, unchanged (x.astype(dtype,
# copy=False) in x's own dtype): then there is nothing to replay
_IDENTITY_METHODS = frozenset(
    {"astype", "conj", "ravel", "reshape", "squeeze", "swapaxes", "transpose", "view"}
)
_EFFECTS = -1  # a pseudo-buffer: callbacks (which may raise) and writes into the arguments


def _buffers_of(values: list[_Value], buffer_of: list[int | None]) -> set[int]:
    return {b for v in values if (b := buffer_of[v.number]) is not None}


def _writes(
    step: _Step, buffer_of: list[int | None], inputs: set[int], donated: dict[int, Any]
) -> set[int]:
    """The buffers ``step`` may write (``_EFFECTS`` included for a callback, or a write into
    an argument's memory, so that those keep their order). ``donated``: buffer -> layout of
    the donated arguments, which a result of their layout computed from them may be written
    over (the planner decides): such a step counts as writing them."""
    fn, out = step.fn, step.kwargs.get("out")
    written = _buffers_of(_values_in(out), buffer_of) if out is not None else set()
    if step.kind == "setitem" or (step.kind == "method" and fn in _WRITING_METHODS):
        written |= _buffers_of(_values_in(step.args[0]), buffer_of)
    elif step.kind == "call":
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, np.ufunc) and getattr(fn, "__name__", "") == "at":
            written |= _buffers_of(_values_in(step.args[0]), buffer_of)
        elif not (
            isinstance(fn, np.ufunc)
            or isinstance(owner, np.ufunc)
            or fn in _PURE_FUNCTIONS
            or fn in _PYTHON_OPERATORS.values()
        ):  # a callback or an unlisted function: it may write anything it is given
            written |= _buffers_of(step.values, buffer_of) | {_EFFECTS}
    for v in _values_in(step.outputs):
        if v in step.values and (
            step.kind == "call" or (step.kind == "method" and fn not in _IDENTITY_METHODS)
        ):  # it returned an array it was given: its out, passed by position as np.dot(a, b,
            # c) or x.clip(0, 1, c) allow, or an array it changed (np.nan_to_num(x, copy=False))
            written |= _buffers_of([v], buffer_of)
        for r in step.values:
            b = buffer_of[r.number]
            if b in donated and v.is_array and v.layout == donated[b]:
                written.add(b)
    if written & inputs:
        written.add(_EFFECTS)
    return written


def _schedule(compiler: _Compiler) -> None:
    """Reorder the program's steps, where their data allow it, so that large arrays die
    sooner and the planned block is smaller; every step still reads exactly the values it
    read when traced, so results stay bitwise those of eager execution.

    A step must follow the steps that made the values it reads, the last step that wrote any
    memory it reads or writes, and, if it writes, every step since that read that memory.
    Among the steps whose predecessors have run, the next is the one that adds the least
    memory (new arrays, less the arrays whose last use it is) in whole MiB, the earliest on
    a tie: eager order, except that steps that free a MiB or more run as soon as they can and
    steps that allocate a MiB or more as late as they can.
    (The MLP's backward pass then computes the second layer's weight gradient before the
    hidden layer's cotangent, and the hidden activations' memory is free for it: at full
    batch the block is 71 MiB instead of the 129 MiB eager execution peaks at.)
    """
    trace = compiler.trace
    steps, buffer_of = trace.steps, trace.buffer_of
    inputs = _buffers_of(compiler.inputs, buffer_of)
    donated = {
        v.number: v.layout
        for v in compiler.inputs
        if v.number in compiler.donated and buffer_of[v.number] == v.number and v.is_array
    }
    kept = inputs | _buffers_of([v for kind, v in compiler.outputs if kind == "traced"], buffer_of)
    producer: dict[int, int] = {}
    last_writer: dict[int, int] = {}
    readers: dict[int, list[int]] = collections.defaultdict(list)
    predecessors: list[set[int]] = []
    touches: list[set[int]] = []
    created: list[int] = []  # bytes of the new arrays each step makes
    size: dict[int, int] = {}
    for i, step in enumerate(steps):
        before = {producer[v.number] for v in step.values if v.number in producer}
        read = {b for v in step.values if (b := buffer_of[v.number]) is not None}
        written = _writes(step, buffer_of, inputs, donated)
        for b in read | written:
            if b in last_writer:
                before.add(last_writer[b])
        for b in written:
            before.update(readers.pop(b, ()))
            last_writer[b] = i
        for b in read - written:
            readers[b].append(i)
        created.append(0)
        for v in _values_in(step.outputs):
            producer[v.number] = i
            b = buffer_of[v.number]
            if b == v.number and v.is_array and v not in step.values:  # a new array
                last_writer[b], size[b] = i, v.nbytes
                created[i] += v.nbytes
                read.add(b)
        predecessors.append(before - {i})
        touches.append((read | written) - {_EFFECTS})
    uses = collections.Counter(b for t in touches for b in t)
    successors: list[list[int]] = [[] for _ in steps]
    waiting = [len(p) for p in predecessors]
    for i, before in enumerate(predecessors):
        for j in before:
            successors[j].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    order: list[int] = []

    def added_mib(i: int) -> int:
        dying = sum(size.get(b, 0) for b in touches[i] if uses[b] == 1 and b not in kept)
        return int((created[i] - dying) / 2**20)  # (toward 0: small changes keep eager order)

    while ready:
        i = min(ready, key=lambda i: (added_mib(i), i))
        ready.remove(i)
        order.append(i)
        for b in touches[i]:
            uses[b] -= 1
        for j in successors[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    assert len(order) == len(steps)
    trace.steps = [steps[i] for i in order]


_ALIGNMENT = 64  # bytes: each planned array starts on a cache line


def _plan(compiler: _Compiler) -> None:
    """Place results in one block of memory allocated once, at offsets reused once their last
    reader has run (see the module's documentation).

    An array's life runs from the step that makes it to the last step that reads or writes
    it through any value (a view keeps its base alive). A result the caller gets back keeps
    its own, fresh array (or goes into a donated argument of its exact layout).
    """
    trace = compiler.trace
    buffer_of = trace.buffer_of
    end = len(trace.steps)
    last_use: dict[int | None, int] = {}
    for i, step in enumerate(trace.steps):
        for v in step.values:
            last_use[buffer_of[v.number]] = i
        for v in _values_in(step.outputs):
            last_use[buffer_of[v.number]] = i
    returned = set()
    for kind, value in compiler.outputs:
        if kind == "traced" and buffer_of[value.number] is not None:
            returned.add(buffer_of[value.number])
            last_use[buffer_of[value.number]] = end
    # Donated arguments: [layout, name, free after step, buffer]; taken by a result of that layout.
    donated: list[list[Any]] = [
        [v.layout, f"v{v.number}", last_use.get(v.number, -1), v.number]
        for v in compiler.inputs
        if v.number in compiler.donated and buffer_of[v.number] == v.number and v.is_array
    ]
    # Results that can share memory, grouped: an elementwise ufunc's result joins the group
    # of an operand that dies at its step (it is written over it). A group: [size, first
    # step, last step]; group_of: buffer number -> group.
    groups: list[list[int]] = []
    group_of: dict[int, int] = {}
    where: list[tuple[_Step, str, _Value]] = []
    for i, step in enumerate(trace.steps):
        how = _writes_fresh_result(step, buffer_of)
        if how is None:
            continue
        result = step.outputs
        layout = result.layout
        if result.number in returned or not _dense(result):
            for entry in donated:
                if entry[0] == layout and (
                    entry[2] < i
                    or (
                        entry[2] == i
                        and how == "elementwise"
                        and _only_whole(step, entry[3], layout, buffer_of)
                    )
                ):
                    compiler.buffers[id(step)] = (how, entry[1])
                    entry[2] = end  # it now holds a result the caller gets
                    break
            continue  # otherwise a fresh array, as eager execution allocates it
        size = -(-max(result.nbytes, 1) // _ALIGNMENT) * _ALIGNMENT
        life = last_use.get(result.number, i)
        group = _dying_operand_group(step, how, groups, group_of, size, buffer_of, i)
        if group is None:
            group_of[result.number] = len(groups)
            groups.append([size, i, life])
        else:
            group_of[result.number] = group
            groups[group][2] = life
        where.append((step, how, result))
    offsets = _offsets(groups)
    extent = max([offsets[g] + size for g, (size, _, _) in enumerate(groups)], default=0)
    memory = np.empty(extent + _ALIGNMENT, np.uint8)
    shift = (-memory.ctypes.data) % _ALIGNMENT
    compiler.namespace["memory"] = memory
    views: dict[tuple[int, Any], str] = {}
    for step, how, result in where:
        offset = offsets[group_of[result.number]]
        key = (offset, result.layout)
        name = views.get(key)
        if name is None:
            name = views[key] = f"m{len(views)}"
            compiler.namespace[name] = np.ndarray(
                result.shape,
                result.dtype,
                buffer=memory,
                offset=shift + offset,
                strides=result.strides,
            )
        compiler.buffers[id(step)] = (how, name)


def _dying_operand_group(
    step: _Step,
    how: str,
    groups: list[list[int]],
    group_of: dict[int, int],
    size: int,
    buffer_of: list[int | None],
    i: int,
) -> int | None:
    """The group of an operand of an elementwise ufunc that dies at this step and has the
    result's layout (the ufunc then writes over it), or None."""
    if how != "elementwise":
        return None
    for v in step.values:
        buffer = buffer_of[v.number]
        group = group_of.get(buffer) if buffer is not None else None
        if group is not None and groups[group][2] == i and groups[group][0] == size:
            if _only_whole(step, buffer, step.outputs.layout, buffer_of):  # type: ignore[arg-type]
                return group
    return None


def _offsets(groups: list[list[int]]) -> list[int]:
    """An offset for each group ``[size, first step, last step]``, no two groups alive at a
    common step overlapping: the largest placed first, each at the lowest offset that fits
    (greedy by size, as TensorFlow Lite's arena planner does); near the largest total alive
    at any one step."""
    offsets = [0] * len(groups)
    placed: list[tuple[int, int, int, int]] = []  # (offset, end offset, first step, last step)
    for g in sorted(range(len(groups)), key=lambda g: (-groups[g][0], groups[g][1])):
        size, first, last = groups[g]
        busy = sorted((o, e) for o, e, begin, end in placed if begin <= last and first <= end)
        offset = 0
        for low, high in busy:
            if offset + size <= low:
                break
            offset = max(offset, high)
        offsets[g] = offset
        placed.append((offset, offset + size, first, last))
    return offsets


def _only_whole(step: _Step, buffer: int, layout: Any, buffer_of: list[int | None]) -> bool:
    """Whether every operand of ``step`` in ``buffer`` is the whole array in ``layout`` (an
    elementwise ufunc may then write its result over it)."""
    found = False
    for v in step.values:
        if buffer_of[v.number] == buffer:
            if not (v.is_array and v.layout == layout):
                return False
            found = True
    return found


def jit(
    f: Callable[..., Any],
    static_argnums: int | Sequence[int] = (),
    donate_argnums: int | Sequence[int] = (),
    cache_size: int = 8,
) -> Jitted:
    """``f`` traced into a program of NumPy calls at its first call, replayed after.

    ``static_argnums`` names positional arguments that are not traced: their values are part
    of the signature (they must be hashable), so Python may branch on them. ``donate_argnums``
    names arguments whose arrays the caller gives up: results may be written into them, and
    they must not be used after the call. Each signature's program is cached; at most
    ``cache_size`` of them (least recently used dropped first). Results are bitwise those of
    calling ``f`` itself. See the module's documentation for what can be traced.
    """
    if not callable(f):
        raise TypeError(f"jit: f must be callable, got {type(f).__name__}")
    statics = _argnums("static_argnums", static_argnums)
    donated = _argnums("donate_argnums", donate_argnums)
    if set(statics) & set(donated):
        raise ValueError("jit: an argument cannot be both static and donated")
    if not (isinstance(cache_size, int) and cache_size >= 1):
        raise ValueError(f"jit: cache_size must be a positive int, got {cache_size!r}")
    return Jitted(f, statics, donated, cache_size)


def _argnums(name: str, argnums: Any) -> tuple[int, ...]:
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        raise TypeError(f"jit: {name} must be non-negative ints, got {argnums!r}")
    return tuple(sorted(set(numbers)))
