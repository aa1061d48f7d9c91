"""The engine: Tape, Tensor, Primitive and the backward pass.

A transform (``grad``, ``vjp``, ...) opens a :class:`Tape` and wraps the values it
differentiates in Tensors bound to that tape. Calling a :class:`Primitive` on a
bound Tensor computes the result with NumPy and appends one record to the tape:
the result's node number and, for each input it came from, that input's node
number and a vector-Jacobian product (VJP) closure. :func:`backward` walks the
records in reverse, feeding each output's cotangent through the VJPs of its
record and summing what arrives at each input. That list of records is the
Wengert list of the computation.

Transforms nest because tapes have levels. A Tensor of an inner tape holds, as
its value, a Tensor of the next outer tape (or, at the outermost level, an
ndarray). A primitive works at the highest level among its arguments: it
unwraps those, calls itself on the unwrapped values (which records on the outer
tapes, if any) and wraps the result. VJPs are written with primitives too, so
the backward pass of an inner tape is itself recorded on the outer ones, which
is exactly what differentiating a gradient needs.

Ops are declared once, as Primitives (or as plain functions of Primitives): the
declaration also says which NumPy functions the op stands for on Tensors and which
Tensor methods and operators call it (:func:`implements`).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import operator
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from tinygrad_np.debug import Watch, watching
from tinygrad_np.jit import Tracer
from tinygrad_np.listing import Listing, OpRecord

__all__ = [
    "NUMPY_OPS",
    "Primitive",
    "Tape",
    "Tensor",
    "backward",
    "identity_vjp",
    "implements",
    "stop_gradient",
]

VJP = Callable[[Any], Any]
VJPMaker = Callable[..., Sequence[VJP | None]]
Op = TypeVar("Op", bound=Callable[..., Any])

_tape_levels = itertools.count(1)


class Tape:
    """A Wengert list: ``records[i] = (output node, [(input node, its VJP), ...])``."""

    __slots__ = ("alive", "level", "log", "num_nodes", "records", "transposing", "watch")

    def __init__(self, log: bool = False, transposing: bool = False) -> None:
        """An empty tape, one level above those already made. ``log=True`` also keeps the
        listing that printing and :meth:`to_dot` show (``tg.trace`` makes such a tape)."""
        self.level = next(_tape_levels)
        # Set for the tape of a transposed pullback (forward mode): its inputs are
        # cotangents, and every VJP run on them must be linear.
        self.transposing = transposing
        self.records: list[tuple[int, list[tuple[int, VJP]]]] = []
        self.num_nodes = 0
        self.alive = True
        self.log = Listing() if log else None  # only for display (tg.trace)
        self.watch: Watch | None = watching()  # only inside tg.debug_checks()

    def bind(self, value: Any, name: str = "") -> Tensor:
        """A new input node of this tape holding ``value``."""
        # A traced Tensor is made without a constructor call: 180-300 against 270-470 ns per
        # Tensor (timeit, AMD EPYC), for every input and every op of a step.
        tensor = object.__new__(Tensor)
        tensor._value, tensor._tape, tensor._node = value, self, self.num_nodes
        self.num_nodes += 1
        if self.log is not None:
            self.log.input(name, tensor._node, _data(value))
        if self.watch is not None:
            self.watch.node(tensor._node, "input", value)
        return tensor

    @property
    def ops(self) -> list[OpRecord]:
        """The recorded ops in order (name, arguments' nodes and shapes, result); logged
        tapes only."""
        if self.log is None:
            raise ValueError("this tape was not made with log=True; use tg.trace to get one")
        return self.log.ops

    def __len__(self) -> int:
        """The number of ops recorded (the records the backward pass walks)."""
        return len(self.records)

    def __iter__(self) -> Iterator[OpRecord]:
        """The recorded ops, as :attr:`ops`."""
        return iter(self.ops)

    def to_dot(self) -> Any:
        """This tape as a ``graphviz.Digraph`` (see :meth:`Listing.to_dot`); needs the
        optional ``graphviz`` package."""
        if self.log is None:
            raise ValueError("this tape was not made with log=True; use tg.trace to get one")
        return self.log.to_dot()

    def __str__(self) -> str:
        """The Wengert list, one line per input and op (see the README's example)."""
        return str(self.log) if self.log is not None else f"Tape: {len(self)} ops (not logged)"

    __repr__ = __str__


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` as a constant: no gradient flows through it, at any level."""
    while isinstance(x, Tensor):
        x = x._value
    return x


_data = stop_gradient  # what the engine calls it: the plain value inside any Tensor


# Values an op holds as they are (a Tracer: an array that tg.jit is tracing); a tuple, as a
# union type would be built again at every call.
_KEPT = (np.generic, int, float, complex, Tracer)


def _plain(op: str, x: Any) -> Any:
    """``x`` as a value an op may hold: an ndarray, a NumPy or Python scalar, or None.

    Other array types are converted, so that a Tensor never carries one (their own
    operators would escape the tape). Masked arrays and ``np.matrix`` are refused:
    converting would silently drop the mask, or change what ``*`` means.
    """
    if isinstance(x, Tensor):
        return _data(x)
    if x is None or isinstance(x, _KEPT):
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{op}: masked arrays are not supported (converting one would drop its mask); "
            "use np.ma.filled(x, value) or x.compressed() first"
        )
    if isinstance(x, np.matrix):
        raise TypeError(
            f"{op}: np.matrix is not supported (its * is a matrix product); use np.asarray(x) and @"
        )
    return x if type(x) is np.ndarray else np.asarray(x)


class Tensor:
    """An array that transforms can trace. ``Tensor(data)`` wraps an array-like.

    Inside a transform the arguments being differentiated arrive as Tensors and
    every op on them is recorded. ``.data`` is the underlying ndarray. Operators
    (``+``, ``@``, ...) and op methods (``.relu()``) are attached by the ops'
    declarations; ``t.name(...)`` for any other NumPy function ``np.name`` is
    ``np.name(t, ...)``, so ``t.sum(0)`` and ``t.max(axis=1)`` work as on ndarrays.
    """

    __slots__ = ("_node", "_tape", "_value")

    def __init__(self, data: Any) -> None:
        """A constant Tensor holding ``np.asarray(data)``; a traced Tensor is refused (the
        copy would drop its gradient)."""
        if isinstance(data, Tensor) and data.traced:
            raise TypeError(
                "Tensor(traced_tensor) would drop its gradient; use the Tensor itself, "
                "or tg.stop_gradient(x) if a constant is meant"
            )
        value = _plain("Tensor", data)
        self._value = value if isinstance(value, Tracer) else np.asarray(value)
        self._tape: Tape | None = None
        self._node = -1

    @property
    def data(self) -> Any:
        """The underlying ndarray (or NumPy scalar), whatever the nesting depth."""
        return _data(self._value)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the data, as ``ndarray.shape``."""
        return _data(self._value).shape  # type: ignore[no-any-return]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the data; ops keep it (float32 stays float32)."""
        return _data(self._value).dtype  # type: ignore[no-any-return]

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self.shape)

    @property
    def traced(self) -> bool:
        """Whether ops on this Tensor are being recorded."""
        return self._tape is not None

    def __repr__(self) -> str:
        """``Tensor([...], traced)`` or ``Tensor([...], constant)``."""
        kind = "traced" if self.traced else "constant"
        return f"Tensor({np.array2string(np.asarray(self.data), prefix='Tensor(')}, {kind})"

    def __len__(self) -> int:
        """The length of the first axis (a 0-d Tensor has none)."""
        if not self.shape:
            raise TypeError("len() of a 0-d Tensor")
        return self.shape[0]

    def __getattr__(self, name: str) -> Any:
        """``t.name(...)`` for a NumPy function ``np.name`` without a method here is
        ``np.name(t, ...)``, which NumPy hands back to the ops: ``t.sum(0)``, ``t.mean()``."""
        function = None if name.startswith("_") else getattr(np, name, None)
        if not callable(function):
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        return functools.partial(function, self)  # NumPy hands the call back to the ops

    # Python and NumPy numbers cannot carry a gradient: a traced Tensor refuses to become one.
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        """``np.asarray(t)``: the data of a constant Tensor. A traced Tensor raises
        ``TypeError``, since the array could not carry its gradient."""
        return np.asarray(self._constant("Conversion to an ndarray"), dtype=dtype)

    def _constant(self, conversion: str) -> Any:
        if self._tape is not None:
            raise TypeError(
                f"{conversion} of a traced Tensor would drop its gradient (math.* functions, "
                "np.float64(t) and storing into an ndarray convert this way too, and so do "
                "np.array, np.asarray, np.full, np.r_/np.c_ and NumPy functions given a list "
                "of Tensors, such as np.mean([t1, t2]), which cannot return a Tensor: build "
                "arrays of traced values with tg.array, np.stack or np.concatenate, tg.full, "
                "tg.r_/tg.c_, or write tg.mean([t1, t2]); NumPy code that does this runs "
                "unchanged with `import tinygrad_np.numpy as np`). Use tinygrad_np ops on the "
                "Tensor (tg.exp rather than math.exp), or tg.stop_gradient(t) where a constant "
                "is meant"
            )
        return self._value

    def __float__(self) -> float:
        """``float(t)`` of a constant Tensor; a traced one raises ``TypeError``."""
        return float(self._constant("float()"))

    def __int__(self) -> int:
        """``int(t)`` of a constant Tensor; a traced one raises ``TypeError``."""
        return int(self._constant("int()"))

    def __complex__(self) -> complex:
        """``complex(t)`` of a constant Tensor; a traced one raises ``TypeError``."""
        return complex(self._constant("complex()"))

    def __index__(self) -> int:
        """``t`` as an index, if constant and integer; a traced one raises ``TypeError``."""
        return operator.index(self._constant("Using it as an index (__index__)"))

    def item(self) -> Any:
        """The value as a Python number (constant Tensors only)."""
        return self._constant(".item()").item()

    def __bool__(self) -> bool:
        """``bool(t)``, also when traced: ``if loss > 0:`` branches on the value."""
        # Allowed even when traced: branching on a value is control flow, not a value that
        # could carry a gradient.
        return bool(self.data)

    __hash__ = None  # type: ignore[assignment]

    def __pos__(self) -> Tensor:
        """``+self``: the Tensor itself."""
        return self


# NumPy callables (ufuncs and functions) -> the op that runs them on Tensors.
NUMPY_OPS: dict[Any, Callable[..., Any]] = {}


def implements(
    *numpy_callables: Any,
    methods: Sequence[str] = (),
    reflected: Sequence[str] = (),
    properties: Sequence[str] = (),
) -> Callable[[Op], Op]:
    """Declare what an op stands for: ``@implements(np.add, methods=["__add__"])``.

    On Tensors, each NumPy callable runs the op (tinygrad_np.numpy_dispatch), each
    of ``methods`` is ``op(self, ...)``, each of ``reflected`` is ``op(other, self)``
    and each of ``properties`` is ``op(self)``. A Primitive takes the same keywords.
    """

    def register(op: Op) -> Op:
        for function in numpy_callables:
            NUMPY_OPS[function] = op
        for name in methods:
            setattr(Tensor, name, _method(name, op, lambda self, *a, **k: op(self, *a, **k)))
        for name in reflected:
            setattr(Tensor, name, _method(name, op, lambda self, other: op(other, self)))
        for name in properties:
            setattr(Tensor, name, property(lambda self: op(self), doc=_method_doc(name, op)))
        return op

    return register


# How help() shows the operators and methods the ops' declarations attach to Tensor.
_SYNTAX = {
    "__add__": "self + other", "__radd__": "other + self",
    "__sub__": "self - other", "__rsub__": "other - self",
    "__mul__": "self * other", "__rmul__": "other * self",
    "__truediv__": "self / other", "__rtruediv__": "other / self",
    "__matmul__": "self @ other", "__rmatmul__": "other @ self",
    "__pow__": "self ** other", "__rpow__": "other ** self",
    "__floordiv__": "self // other", "__rfloordiv__": "other // self",
    "__mod__": "self % other", "__rmod__": "other % self",
    "__neg__": "-self", "__abs__": "abs(self)", "__getitem__": "self[index]",
    "T": "self.T", "real": "self.real", "imag": "self.imag",
}  # fmt: skip


def _method(name: str, op: Callable[..., Any], method: Callable[..., Any]) -> Callable[..., Any]:
    """``method``, named, documented and signed as the Tensor method ``name`` that runs ``op``."""
    method.__name__, method.__qualname__ = name, f"Tensor.{name}"
    method.__doc__ = _method_doc(name, op)
    method.__signature__ = _method_signature(name, op)  # type: ignore[attr-defined]
    return method


def _method_arguments(name: str) -> list[str]:
    syntax = _SYNTAX.get(name, "")
    if syntax.startswith("other"):
        return ["other", "self"]
    if "other" in syntax:
        return ["self", "other"]
    if "index" in syntax:
        return ["self", "index"]
    return ["self"] if syntax else ["self", "..."]


def _method_doc(name: str, op: Callable[..., Any]) -> str:
    syntax = _SYNTAX.get(name, f"self.{name}(...)")
    summary = (inspect.getdoc(op) or "").split("\n\n")[0]
    if op.__name__.startswith("_"):  # a helper taking ndarray's spelling of the arguments
        head = f"``{syntax}``, with the arguments of ``ndarray.{name}``"
    else:
        head = f"``{syntax}``: the op ``{op.__name__}({', '.join(_method_arguments(name))})``"
    return f"{head}.\n\n{summary}".rstrip()


def _method_signature(name: str, op: Callable[..., Any]) -> inspect.Signature:
    arguments = _method_arguments(name)
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    if arguments[-1] != "...":
        order = sorted(arguments, key=lambda a: a != "self")
        return inspect.Signature([inspect.Parameter(a, positional) for a in order])
    try:  # a method such as reshape: the op's own parameters after the first
        first, *rest = inspect.signature(op).parameters.values()
        return inspect.Signature([first.replace(name="self"), *rest])
    except (TypeError, ValueError):  # no signature (a ufunc), or no first parameter
        return inspect.Signature(
            [
                inspect.Parameter("self", positional),
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        )


def _most_positional(impl: Callable[..., Any]) -> int:
    """How many positional (differentiable) arguments ``impl`` takes at most."""
    if isinstance(impl, np.ufunc):
        return impl.nin  # (a further one would be NumPy's out=)
    parameters = inspect.signature(impl).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return sys.maxsize
    return sum(p.kind in _POSITIONAL for p in parameters)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Primitive:
    """An op: its NumPy forward and, side by side, a maker of its VJPs.

    ``impl(*args, **statics)`` gets NumPy values and returns an ndarray or NumPy
    scalar. Positional arguments are the differentiable ones; static arguments (an
    axis, a shape, an index) are keyword-only, and a call passing more positional
    arguments than ``impl`` takes is refused. ``vjp(ans, *args, **statics)`` is
    called once per traced call with the result and the (unwrapped) arguments, and
    returns one closure ``g -> gradient`` per positional argument (``None`` where the
    argument is not differentiable). Closures capture only what their backward
    needs, so the tape retains no more; written with ops, they can be differentiated.

    With ``saves=True`` the forward may hand its VJPs intermediate results that would
    be costly to recompute: ``impl`` returns ``(ans, saved)`` and the VJP maker is
    called with ``saved=saved``. ``saved`` is plain NumPy, so it is ``None`` when the
    arguments are themselves traced by an outer transform: the VJPs must then be
    built from the (differentiable) arguments.

    ``doc`` becomes the op's docstring; ``numpy``, ``methods``, ``reflected`` and
    ``properties`` are passed to :func:`implements`.
    """

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        vjp: VJPMaker,
        *,
        saves: bool = False,
        doc: str | None = None,
        numpy: Sequence[Any] = (),
        methods: Sequence[str] = (),
        reflected: Sequence[str] = (),
        properties: Sequence[str] = (),
    ) -> None:
        self.name, self.impl, self.vjp, self.saves = name, impl, vjp, saves
        self.__name__ = self.__qualname__ = name  # it is the public function
        self.__doc__ = doc or impl.__doc__
        self.most_positional = _most_positional(impl)
        implements(*numpy, methods=methods, reflected=reflected, properties=properties)(self)

    def __repr__(self) -> str:
        return f"Primitive({self.name})"

    @property
    def __signature__(self) -> inspect.Signature | None:
        try:
            return inspect.signature(self.impl)
        except (TypeError, ValueError):  # some ufuncs and builtins have none
            return None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > self.most_positional:
            raise TypeError(
                f"{self.name}: takes at most {self.most_positional} positional (differentiable) "
                f"arguments, got {len(args)}; static arguments are keyword-only: "
                f"{self.name}{self.__signature__ or '(...)'}"
            )
        tape: Tape | None = None
        has_tensor = False
        for a in args:
            if isinstance(a, Tensor):
                has_tensor = True
                t = a._tape
                if t is not None and (tape is None or t.level > tape.level):
                    tape = t
        if not has_tensor:  # plain NumPy in, plain NumPy out: nothing to record
            ans = self.impl(*args, **kwargs)
            return ans[0] if self.saves else ans
        if tape is None:
            ans = self.impl(*[_plain(self.name, a) for a in args], **kwargs)
            return Tensor(ans[0] if self.saves else ans)
        if not tape.alive:
            raise ValueError(
                f"{self.name}: a Tensor from a transform that has already returned was used "
                "(it leaked out of the function being differentiated); use tg.stop_gradient "
                "or return the value instead of storing it"
            )
        vals = []
        traced = []  # positions of the arguments recorded on this tape
        nested = False
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                t = a._tape
                if t is tape:
                    traced.append(i)
                    a = a._value
                elif t is None:
                    a = a._value
                if isinstance(a, Tensor):
                    nested = True
            elif type(a) is not np.ndarray:
                a = _plain(self.name, a)
            vals.append(a)
        # With Tensors of outer tapes among the values, calling ourselves records there too.
        if not self.saves:
            ans = self(*vals, **kwargs) if nested else self.impl(*vals, **kwargs)
            vjps = self.vjp(ans, *vals, **kwargs)
        else:
            ans, saved = (self(*vals, **kwargs), None) if nested else self.impl(*vals, **kwargs)
            vjps = self.vjp(ans, *vals, saved=saved, **kwargs)
        if not nested:
            if type(ans) is not np.ndarray and not isinstance(ans, np.generic):
                ans = _plain(self.name, ans)
            if ans.dtype.kind == "c":
                raise TypeError(
                    f"{self.name}: the result is complex ({ans.dtype}); tinygrad_np "
                    "differentiates real floating-point functions only, and complex numbers "
                    "are not supported"
                )
        node = tape.num_nodes
        tape.num_nodes = node + 1
        edges = []
        for i in traced:
            vjp = vjps[i]
            if vjp is not None:  # None marks an argument with no gradient
                edges.append((args[i]._node, vjp))
        tape.records.append((node, edges))
        if tape.watch is not None:
            tape.watch.op(self.name, node, vals, kwargs, ans)
        if tape.log is not None:
            inputs = [
                (args[i]._node if i in traced else None, _data(a)) for i, a in enumerate(vals)
            ]
            tape.log.op(self.name, inputs, node, _data(ans))
        out = object.__new__(Tensor)  # as in Tape.bind
        out._value, out._tape, out._node = ans, tape, node
        return out


def identity_vjp(g: Any) -> Any:
    """The VJP of an op that passes its input through (``x`` in ``x + y``)."""
    return g


def backward(tape: Tape, seeds: dict[int, Any], consume: bool) -> dict[int, Any]:
    """Reverse sweep from ``seeds`` (cotangents at output nodes) to the tape's inputs.

    Returns the cotangent of every input node that one reached. With ``consume``
    the records are popped as they are used, so each closure (and the arrays it
    saved) is freed as soon as its VJP has run; the tape is then spent.
    """
    watch = tape.watch
    if watch is not None:
        watch.check_unmodified()
    cotangents = dict(seeds)
    records = tape.records if consume else list(tape.records)
    while records:
        node, edges = records.pop()
        g = cotangents.pop(node, None)
        if g is None:
            continue
        for parent, vjp in edges:
            contribution = vjp(g)
            if watch is not None:
                watch.check_vjp(node, parent, contribution)
            previous = cotangents.get(parent)
            cotangents[parent] = contribution if previous is None else previous + contribution
    return cotangents
