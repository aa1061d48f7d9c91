"""The engine: Tensor, Tape, Primitive and the backward pass.

A transform (``grad``, ``vjp``, ...) opens a :class:`Tape` and wraps the values it
differentiates in Tensors bound to that tape. Calling a :class:`Primitive` on a
bound Tensor computes the result with NumPy and appends one record to the tape:
the result's node number, the node numbers of the inputs it came from, and one
vector-Jacobian product (VJP) closure per such input. :func:`backward` walks the
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
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "OpRecord",
    "Primitive",
    "Tape",
    "Tensor",
    "backward",
    "debug_checks",
    "identity_vjp",
]

VJP = Callable[[Any], Any]
VJPMaker = Callable[..., Sequence[VJP | None]]

_tape_levels = itertools.count(1)

_debugging = contextvars.ContextVar("tinygrad_np_debug_checks", default=False)


@contextlib.contextmanager
def debug_checks() -> Iterator[None]:
    """Check, while active, what the engine otherwise trusts (at the cost of copies).

    Transforms started inside the block keep a copy of every array an op recorded
    (its inputs, static arguments such as indices, and its result), and the backward
    pass raises a RuntimeError naming the op if one was modified in place after it
    was recorded: the VJPs read those arrays, so the gradient would silently be that
    of different numbers. The rule it enforces: arrays a transform has seen must not
    be modified until the gradient has been computed.
    """
    token = _debugging.set(True)
    try:
        yield
    finally:
        _debugging.reset(token)


class OpRecord(NamedTuple):
    """One recorded op, kept only by tapes made with ``log=True`` (see ``tg.trace``).

    ``args`` holds, per positional argument, ``(node or None, shape)``: ``node`` is
    the tape node of a traced input, ``None`` for a constant.
    """

    name: str
    args: tuple[tuple[int | None, tuple[int, ...]], ...]
    node: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


class Tape:
    """A Wengert list: ``records[i] = (output node, [(input node, its VJP), ...])``."""

    __slots__ = ("alive", "inputs", "level", "log", "num_nodes", "records", "watched")

    def __init__(self, log: bool = False) -> None:
        self.level = next(_tape_levels)
        self.records: list[tuple[int, list[tuple[int, VJP]]]] = []
        self.num_nodes = 0
        self.alive = True
        # Filled only for display (tg.trace): input names and every op's signature.
        self.inputs: list[tuple[str, int, tuple[int, ...], np.dtype[Any]]] = []
        self.log: list[OpRecord] | None = [] if log else None
        # Only under debug_checks(): (op name, node, [(what, array, copy of it)]) per op.
        self.watched: list[tuple[str, int, list[tuple[str, Any, Any]]]] | None = (
            [] if _debugging.get() else None
        )

    def watch(
        self, name: str, node: int, args: Sequence[Any], kwargs: dict[str, Any], ans: Any
    ) -> None:
        """Keep a copy of every array op ``name`` recorded, to detect later mutation."""
        arrays = [(f"argument {i}", a) for i, a in enumerate(args)]
        for key, value in kwargs.items():
            parts = value if isinstance(value, tuple) else (value,)
            arrays += [
                (f"{key}={'' if len(parts) == 1 else f'[{j}]'}", p) for j, p in enumerate(parts)
            ]
        arrays.append(("result", ans))
        assert self.watched is not None
        self.watched.append(
            (name, node, [(what, a, a.copy()) for what, a in arrays if isinstance(a, np.ndarray)])
        )

    def check_unmodified(self) -> None:
        """Raise if an array watched by :meth:`watch` changed since it was recorded."""
        for name, node, arrays in self.watched or ():
            for what, array, copy in arrays:
                if array.shape != copy.shape or array.tobytes() != copy.tobytes():
                    raise RuntimeError(
                        f"{name} (node %{node}): its {what} was modified in place after the op "
                        "was recorded, so the gradient would be computed from other values. "
                        "Do not modify arrays a transform has seen until it has returned "
                        "(use a copy, or x = x + ... instead of x += ...)"
                    )

    def bind(self, value: Any, name: str = "") -> Tensor:
        """A new input node of this tape holding ``value``."""
        node = self.num_nodes
        self.num_nodes = node + 1
        if self.log is not None:
            self.inputs.append((name, node, tuple(np.shape(_data(value))), _data(value).dtype))
        return Tensor._bound(value, self, node)

    def bind_all(self, values: list[Any]) -> list[Tensor]:
        """``[bind(v) for v in values]`` in one call (no names: the tape must not log)."""
        tensors = []
        for value in values:  # Tensor._bound, inlined on the hot path
            tensor = object.__new__(Tensor)
            tensor._value, tensor._tape, tensor._node = value, self, self.num_nodes
            self.num_nodes += 1
            tensors.append(tensor)
        return tensors

    @property
    def ops(self) -> list[OpRecord]:
        if self.log is None:
            raise ValueError("this tape was not made with log=True; use tg.trace to get one")
        return self.log

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[OpRecord]:
        return iter(self.ops)

    def __str__(self) -> str:
        lines = [f"Tape: {len(self.inputs)} inputs, {len(self.ops)} ops"]
        for name, node, shape, dtype in self.inputs:
            lines.append(f"  %{node} = input {name} {shape} {dtype}")
        for op in self.ops:
            args = ", ".join(
                ("const" if node is None else f"%{node}") + f" {shape}" for node, shape in op.args
            )
            lines.append(f"  %{op.node} = {op.name}({args}) -> {op.shape} {op.dtype}")
        return "\n".join(lines)

    __repr__ = __str__


def _data(x: Any) -> Any:
    while isinstance(x, Tensor):
        x = x._value
    return x


class Primitive:
    """An op: a NumPy implementation and, side by side, a maker of its VJPs.

    ``impl(*args, **kwargs)`` gets NumPy values and returns an ndarray or NumPy scalar.
    ``vjp(ans, *args, **kwargs)`` is called once per traced call with the result
    and the (unwrapped) arguments, and returns one closure ``g -> gradient`` per
    positional argument (``None`` where the argument is not differentiable).
    Closures capture only what their backward needs, so the tape retains no more.

    With ``saves=True`` the forward may hand its VJPs intermediate results that would
    be costly to recompute: ``impl`` returns ``(ans, saved)`` and the VJP maker is
    called with ``saved=saved``. ``saved`` is plain NumPy, so it is ``None`` when the
    arguments are themselves traced by an outer transform: the VJPs must then be
    built from the (differentiable) arguments.
    """

    __slots__ = ("impl", "name", "saves", "vjp")

    def __init__(
        self, name: str, impl: Callable[..., Any], vjp: VJPMaker, saves: bool = False
    ) -> None:
        self.name = name
        self.impl = impl
        self.vjp = vjp
        self.saves = saves

    def __repr__(self) -> str:
        return f"Primitive({self.name})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
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
        if tape.watched is not None:
            tape.watch(self.name, node, vals, kwargs, ans)
        if tape.log is not None:
            tape.log.append(
                OpRecord(
                    self.name,
                    tuple(
                        (
                            a._node if isinstance(a, Tensor) and a._tape is tape else None,
                            tuple(np.shape(_data(a))),
                        )
                        for a in args
                    ),
                    node,
                    tuple(np.shape(_data(ans))),
                    np.asarray(_data(ans)).dtype,
                )
            )
        out = object.__new__(Tensor)  # Tensor._bound, inlined on the hot path
        out._value, out._tape, out._node = ans, tape, node
        return out


def _plain(op: str, x: Any) -> Any:
    """``x`` as a value an op may hold: an ndarray, a NumPy or Python scalar, or None.

    Other array types are converted, so that a Tensor never carries one (their own
    operators would escape the tape). Masked arrays and ``np.matrix`` are refused:
    converting would silently drop the mask, or change what ``*`` means.
    """
    if isinstance(x, Tensor):
        return _data(x)
    if x is None or isinstance(x, np.generic | int | float | complex):
        return x
    if isinstance(x, np.ma.MaskedArray | np.matrix):
        raise TypeError(
            f"{op}: {type(x).__module__}.{type(x).__name__} is not supported "
            + (
                "(converting it would drop its mask); use np.ma.filled(x, value) or "
                "x.compressed() first"
                if isinstance(x, np.ma.MaskedArray)
                else "(its * is a matrix product); use np.asarray(x) and @"
            )
        )
    return x if type(x) is np.ndarray else np.asarray(x)


def identity_vjp(g: Any) -> Any:
    """The VJP of an op that passes its input through (``x`` in ``x + y``)."""
    return g


def backward(tape: Tape, seeds: dict[int, Any], consume: bool) -> dict[int, Any]:
    """Reverse sweep from ``seeds`` (cotangents at output nodes) to the tape's inputs.

    Returns the cotangent of every input node that one reached. With ``consume``
    the records are popped as they are used, so each closure (and the arrays it
    saved) is freed as soon as its VJP has run; the tape is then spent.
    """
    if tape.watched is not None:
        tape.check_unmodified()
    cotangents = dict(seeds)
    records = tape.records if consume else list(tape.records)
    while records:
        node, edges = records.pop()
        g = cotangents.pop(node, None)
        if g is None:
            continue
        for parent, vjp in edges:
            contribution = g if vjp is identity_vjp else vjp(g)  # (add's, not worth a call)
            previous = cotangents.get(parent)
            cotangents[parent] = contribution if previous is None else previous + contribution
    return cotangents


class Tensor:
    """An array that transforms can trace. ``Tensor(data)`` wraps an array-like.

    Inside a transform the arguments being differentiated arrive as Tensors and
    every op on them is recorded. ``.data`` is the underlying ndarray.
    """

    __slots__ = ("_node", "_tape", "_value")

    # NumPy hands its calls on Tensors to tinygrad_np ops: see tinygrad_np/numpy_dispatch.py
    # (ops loads it last, as it needs the whole op table).
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return ops.numpy_dispatch.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return ops.numpy_dispatch.array_function(func, types, args, kwargs)

    def __init__(self, data: Any) -> None:
        if isinstance(data, Tensor) and data.traced:
            raise TypeError(
                "Tensor(traced_tensor) would drop its gradient; use the Tensor itself, "
                "or tg.stop_gradient(x) if a constant is meant"
            )
        self._value = np.asarray(_plain("Tensor", data))
        self._tape: Tape | None = None
        self._node = -1

    @classmethod
    def _bound(cls, value: Any, tape: Tape, node: int) -> Tensor:
        t = object.__new__(cls)
        t._value = value
        t._tape = tape
        t._node = node
        return t

    # --- what the Tensor holds -------------------------------------------------
    @property
    def data(self) -> Any:
        """The underlying ndarray (or NumPy scalar), whatever the nesting depth."""
        return _data(self._value)

    @property
    def shape(self) -> tuple[int, ...]:
        return _data(self._value).shape  # type: ignore[no-any-return]

    @property
    def dtype(self) -> np.dtype[Any]:
        return _data(self._value).dtype  # type: ignore[no-any-return]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def traced(self) -> bool:
        """Whether ops on this Tensor are being recorded."""
        return self._tape is not None

    def __repr__(self) -> str:
        kind = "traced" if self.traced else "constant"
        return f"Tensor({np.array2string(np.asarray(self.data), prefix='Tensor(')}, {kind})"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d Tensor")
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        if self.traced:
            raise TypeError(
                "a traced Tensor cannot become an ndarray: its gradient would be lost. "
                "Use tinygrad_np functions on it, or .data / tg.stop_gradient for a constant."
            )
        return np.asarray(self._value, dtype=dtype)

    # Python numbers cannot carry a gradient: a traced Tensor refuses to become one.
    def _constant(self, conversion: str) -> Any:
        if self._tape is not None:
            raise TypeError(
                f"{conversion} of a traced Tensor would drop its gradient (math.* functions, "
                "np.float64(t) and storing into an ndarray convert this way too). Use "
                "tinygrad_np ops on the Tensor (tg.exp rather than math.exp), or "
                "tg.stop_gradient(t) where a constant is meant"
            )
        return self.data

    def __float__(self) -> float:
        return float(self._constant("float()"))

    def __int__(self) -> int:
        return int(self._constant("int()"))

    def __complex__(self) -> complex:
        return complex(self._constant("complex()"))

    def __index__(self) -> int:
        return operator.index(self._constant("Using it as an index (__index__)"))

    def item(self) -> Any:
        """The value as a Python number (constant Tensors only)."""
        return self._constant(".item()").item()

    def __bool__(self) -> bool:
        # Allowed even when traced: branching on a value is control flow, not a value that
        # could carry a gradient.
        return bool(self.data)

    # --- comparisons give plain boolean arrays: they have no gradient --------------
    def __lt__(self, other: Any) -> Any:
        return self.data < _data(other)

    def __le__(self, other: Any) -> Any:
        return self.data <= _data(other)

    def __gt__(self, other: Any) -> Any:
        return self.data > _data(other)

    def __ge__(self, other: Any) -> Any:
        return self.data >= _data(other)

    def __eq__(self, other: object) -> Any:
        return self.data == _data(other)

    def __ne__(self, other: object) -> Any:
        return self.data != _data(other)

    __hash__ = None  # type: ignore[assignment]

    # --- arithmetic: straight to the primitives (one call less than ops.add & co.) ----
    def __add__(self, other: Any) -> Any:
        return ops._add(self, other)

    def __radd__(self, other: Any) -> Any:
        return ops._add(other, self)

    def __sub__(self, other: Any) -> Any:
        return ops._sub(self, other)

    def __rsub__(self, other: Any) -> Any:
        return ops._sub(other, self)

    def __mul__(self, other: Any) -> Any:
        return ops._mul(self, other)

    def __rmul__(self, other: Any) -> Any:
        return ops._mul(other, self)

    def __truediv__(self, other: Any) -> Any:
        return ops._div(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return ops._div(other, self)

    def __pow__(self, other: Any) -> Any:
        return ops._pow(self, other)

    def __rpow__(self, other: Any) -> Any:
        return ops._pow(other, self)

    def __matmul__(self, other: Any) -> Any:
        return ops._matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return ops._matmul(other, self)

    def __neg__(self) -> Any:
        return ops._neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Any:
        return ops.absolute(self)

    def __getitem__(self, index: Any) -> Any:
        return ops.getitem(self, index)

    # --- methods -------------------------------------------------------------------
    @property
    def T(self) -> Any:
        return ops.transpose(self)

    def transpose(self, *axes: Any) -> Any:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], tuple | list)):
            return ops.transpose(self, None if axes[0] is None else tuple(axes[0]))
        return ops.transpose(self, axes or None)

    def reshape(self, *shape: Any) -> Any:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return ops.reshape(self, shape)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Any:
        return ops.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Any:
        return ops.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Any:
        return ops.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Any:
        return ops.min(self, axis, keepdims)

    def argmax(self, axis: int | None = None) -> Any:
        """Indices of the maxima: plain integers, not differentiable."""
        return np.argmax(self.data, axis=axis)

    def exp(self) -> Any:
        return ops.exp(self)

    def log(self) -> Any:
        return ops.log(self)

    def tanh(self) -> Any:
        return ops.tanh(self)

    def sigmoid(self) -> Any:
        return ops.sigmoid(self)

    def relu(self) -> Any:
        return ops.relu(self)

    def softmax(self, axis: int = -1) -> Any:
        return ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Any:
        return ops.log_softmax(self, axis)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Any:
        return ops.logsumexp(self, axis, keepdims)


from tinygrad_np import ops  # noqa: E402  (ops needs Tensor; Tensor's methods need ops)
