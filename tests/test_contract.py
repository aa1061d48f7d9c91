"""The engine's contract, searched for counterexamples.

The contract: every call either raises a clear TypeError or ValueError, or returns
values equal to float64 finite differences (or a closed form) within the dtype's
tolerance. Hypothesis searches for calls that do neither:

1. random programs over random pytrees of float arguments, for random ``argnums``,
   in float64, float32 and float16, against float64 finite differences;
2. random misuse (argnums, f's output, non-float arguments, cotangents and
   tangents unlike the output, conversions of traced Tensors, foreign arrays),
   which must raise with a message naming the problem;
3. aliasing: returned gradients never share memory with each other, the inputs or
   the caller's cotangents, and updating one in place changes nothing else;
4. reduced precision at up to 10**6 elements: float16 and float32 sums, means,
   logsumexp, softmax and cross-entropy equal the float64 computation rounded;
5. gradients at the edges of the ops' domains, against closed forms.

Tolerances come from :func:`tinygrad_np.testing.default_tolerance` (whose
docstring derives them from each dtype's eps) or from an error analysis written
next to the check; none was tuned to make a test pass.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_np as tg
from tinygrad_np.testing import default_tolerance, numerical_grad
from tinygrad_np.testing import strategies as tst
from tinygrad_np.tree import path_str, tree_paths

FLOATS = [np.float64, np.float32, np.float16]
FLOAT_IDS = ["float64", "float32", "float16"]


def _profile_examples(divisor: int, least: int) -> int:
    """A share of the active profile's max_examples (the thorough profile goes deeper)."""
    return max(least, settings.default.max_examples // divisor)


def _least_precise(dtypes: list[Any]) -> np.dtype[Any]:
    floating = [np.dtype(d) for d in dtypes if np.dtype(d).kind == "f"]
    return max(floating, key=lambda d: float(np.finfo(d).eps), default=np.dtype(np.float64))


def _assert_close(engine: Any, reference: Any, tol: float, what: str) -> None:
    """``|engine - reference| <= tol + tol * |reference|`` elementwise, as check_grads does."""
    value = np.asarray(engine, dtype=np.float64)
    expected = np.asarray(reference, dtype=np.float64)
    assert value.shape == expected.shape, f"{what}: shape {value.shape} != {expected.shape}"
    bad = ~(np.abs(value - expected) <= tol + tol * np.abs(expected))
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {bad.size} elements off by more than {tol:g} "
        f"(relative and absolute)\nengine    {value[bad][:6]}\nreference {expected[bad][:6]}"
    )


# =====================================================================================
# 1. Random programs over random pytrees, random argnums
# =====================================================================================
#
# Every register has at most three axes, each of length n or 1, so any two registers
# broadcast against each other and every binary op is defined. Each step applies one
# op to earlier registers; a step is kept only when its inputs lie inside the op's
# smooth domain (checked on the float64 values while the program is drawn) and its
# output is finite and at most VALUE_CAP in size. That keeps the float64 central
# differences accurate to ~1e-9 (see tinygrad_np.testing._numerical), five orders of
# magnitude below the float64 tolerance, so a mismatch is the engine's.
#
# Kinks (abs at 0, ties of max) are kept KINK_MARGIN away: the finite-difference step is
# at most 2e-5, so crossing 0.05 takes a 2500-fold amplification, a chain of several of
# the steepest steps (a / b amplifies by |a| / b**2 <= 80, matmul by n * 20 <= 60, exp by
# e**2.5 ~ 12).
#
# float16 runs shallower programs with smaller values: its default tolerance 2e-2 ~ 40 u
# (u = 2**-11) is meant for depth * condition ~ 40 (see default_tolerance), so a
# float16 program has at most 3 steps with intermediates at most 4 in size, and its
# kink margin (0.1) is larger than the float16 rounding of such values (4 * 3 u ~ 6e-3).

KINK_MARGIN = {np.float64: 0.05, np.float32: 0.05, np.float16: 0.1}
VALUE_CAP = {np.float64: 20.0, np.float32: 20.0, np.float16: 4.0}
MAX_STEPS = {np.float64: 6, np.float32: 6, np.float16: 3}


def _swap_last(x: Any) -> Any:
    nd = x.ndim if isinstance(x, tg.Tensor) else np.ndim(x)
    return tg.transpose(x, axes=(*range(nd - 2), nd - 1, nd - 2)) if nd >= 2 else x


def _matmul_fits(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> bool:
    if not a_shape or not b_shape:
        return False
    try:
        np.matmul(np.zeros(a_shape), np.zeros(b_shape))
    except ValueError:
        return False
    return True


def _normalized_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _top_two_gap(x: np.ndarray, axis: Any) -> float:
    """The smallest gap between the two largest entries of any slice reduced by ``axis``."""
    axes = _normalized_axes(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    if count < 2:
        return math.inf
    moved = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim))
    ordered = np.sort(moved.reshape(*moved.shape[: x.ndim - len(axes)], count), axis=-1)
    return float(np.min(ordered[..., -1] - ordered[..., -2]))


@dataclass(frozen=True)
class Op:
    """One kind of step.

    ``apply(param, *operands)``; ``domain(*values)`` says whether float64 operand values
    are inside the op's smooth domain; ``param(draw, *values)`` draws the static
    parameter; ``kink(param, *values)`` is the distance to the nearest kink.
    """

    arity: int
    apply: Callable[..., Any]
    domain: Callable[..., bool] | None = None
    param: Callable[..., Any] | None = None
    kink: Callable[..., float] | None = None


def _axis_param(draw: Any, x: np.ndarray) -> Any:
    return draw(tst.axis_and_keepdims(x.shape))


def _softmax_axis(draw: Any, x: np.ndarray) -> int:
    return draw(st.integers(-x.ndim, x.ndim - 1))


def _reshape_target(draw: Any, x: np.ndarray) -> tuple[int, ...]:
    # Same count of n-long axes, unit axes moved around: the result still broadcasts.
    n_axes = sum(1 for side in x.shape if side != 1)
    ndim = draw(st.integers(n_axes, 3))
    long_positions = draw(st.permutations(range(ndim)))[:n_axes]
    side = max(x.shape, default=1)
    target = [side if i in long_positions else 1 for i in range(ndim)]
    if target and draw(st.booleans()):
        target[draw(st.integers(0, ndim - 1))] = -1
    return tuple(target)


def _permutation(draw: Any, x: np.ndarray) -> tuple[int, ...] | None:
    if draw(st.booleans()):
        return None
    return tuple(draw(st.permutations(range(x.ndim))))


def _orientation(draw: Any, a: np.ndarray, b: np.ndarray) -> tuple[bool, bool]:
    return draw(st.sampled_from(_matmul_orientations(a, b)))


def _matmul_orientations(a: np.ndarray, b: np.ndarray) -> list[tuple[bool, bool]]:
    found = []
    for ta in (False, True):
        for tb in (False, True):
            if (ta and a.ndim < 2) or (tb and b.ndim < 2):
                continue
            a_shape = a.shape[:-2] + a.shape[-2:][::-1] if ta else a.shape
            b_shape = b.shape[:-2] + b.shape[-2:][::-1] if tb else b.shape
            if _matmul_fits(a_shape, b_shape):
                found.append((ta, tb))
    return found


def _matmul(p: tuple[bool, bool], a: Any, b: Any) -> Any:
    return tg.matmul(_swap_last(a) if p[0] else a, _swap_last(b) if p[1] else b)


def _smallest(x: np.ndarray) -> float:
    return float(np.min(x))


def _largest(x: np.ndarray) -> float:
    return float(np.max(x))


def _magnitude(x: np.ndarray) -> float:
    return float(np.min(np.abs(x)))


OPS: dict[str, Op] = {
    # unary (tanh first: hypothesis shrinks towards the first op, so make it one that is
    # defined everywhere)
    "tanh": Op(1, lambda p, a: tg.tanh(a)),
    "exp": Op(1, lambda p, a: tg.exp(a), domain=lambda a: _largest(a) <= 2.5),
    "expm1": Op(1, lambda p, a: tg.expm1(a), domain=lambda a: _largest(a) <= 2.5),
    "sigmoid": Op(1, lambda p, a: tg.sigmoid(a)),
    "square": Op(1, lambda p, a: tg.square(a)),
    "sqrt": Op(1, lambda p, a: tg.sqrt(a), domain=lambda a: _smallest(a) >= 0.25),
    "log": Op(1, lambda p, a: tg.log(a), domain=lambda a: _smallest(a) >= 0.25),
    "log1p": Op(1, lambda p, a: tg.log1p(a), domain=lambda a: _smallest(a) >= -0.5),
    "neg": Op(1, lambda p, a: -a),
    "abs": Op(1, lambda p, a: tg.absolute(a), kink=lambda p, a: _magnitude(a)),
    # binary, broadcasting
    "add": Op(2, lambda p, a, b: a + b),
    "sub": Op(2, lambda p, a, b: tg.sub(a, b)),
    "mul": Op(2, lambda p, a, b: a * b),
    "div": Op(2, lambda p, a, b: a / b, domain=lambda a, b: _magnitude(b) >= 0.5),
    "pow": Op(
        2,
        lambda p, a, b: a**b,
        domain=lambda a, b: _smallest(a) >= 0.25 and float(np.max(np.abs(b))) <= 2.0,
    ),
    "matmul": Op(
        2, _matmul, domain=lambda a, b: bool(_matmul_orientations(a, b)), param=_orientation
    ),
    # reductions over random axes, with or without keepdims
    "sum": Op(1, lambda p, a: tg.sum(a, axis=p[0], keepdims=p[1]), param=_axis_param),
    "mean": Op(1, lambda p, a: tg.mean(a, axis=p[0], keepdims=p[1]), param=_axis_param),
    "logsumexp": Op(1, lambda p, a: tg.logsumexp(a, axis=p[0], keepdims=p[1]), param=_axis_param),
    "max": Op(
        1,
        lambda p, a: tg.max(a, axis=p[0], keepdims=p[1]),
        param=_axis_param,
        kink=lambda p, a: _top_two_gap(a, p[0]),
    ),
    # shape
    "reshape": Op(1, lambda p, a: tg.reshape(a, shape=p), param=_reshape_target),
    "transpose": Op(1, lambda p, a: tg.transpose(a, axes=p), param=_permutation),
    # softmax family
    "softmax": Op(
        1, lambda p, a: tg.softmax(a, axis=p), domain=lambda a: a.ndim >= 1, param=_softmax_axis
    ),
    "log_softmax": Op(
        1, lambda p, a: tg.log_softmax(a, axis=p), domain=lambda a: a.ndim >= 1, param=_softmax_axis
    ),
}


@dataclass(frozen=True)
class Step:
    op: str
    operands: tuple[int, ...]
    param: Any = None

    def __repr__(self) -> str:
        return f"{self.op}{self.operands}" + ("" if self.param is None else f"[{self.param!r}]")


@dataclass
class Program:
    """Straight-line code over registers; registers 0..k-1 are the float leaves.

    The loss is ``sum(readout * last register)``: a random readout makes every
    element of the last register count, with no symmetry (softmax sums to 1) that
    would make the gradient vanish identically.
    """

    num_inputs: int
    readout: np.ndarray
    steps: list[Step] = field(default_factory=list)

    def outputs(self, *inputs: Any) -> Any:
        registers = list(inputs)
        for step in self.steps:
            registers.append(OPS[step.op].apply(step.param, *(registers[i] for i in step.operands)))
        return registers[-1]

    def __call__(self, *inputs: Any) -> Any:
        return tg.sum(self.outputs(*inputs) * self.readout)

    def __repr__(self) -> str:
        lines = [f"inputs r0..r{self.num_inputs - 1}"]
        lines += [f"r{k} = {s!r}" for k, s in enumerate(self.steps, start=self.num_inputs)]
        return "; ".join(lines)


@st.composite
def programs(draw: Any, inputs: list[Any], dtype: Any) -> Program:
    """A well-conditioned random program over ``inputs`` (see the section comment)."""
    registers = [np.asarray(x, dtype=np.float64) for x in inputs]
    steps: list[Step] = []
    target = draw(st.integers(1, MAX_STEPS[dtype]))
    # A drawn step outside its op's domain is dropped and another drawn in its place.
    for _ in range(4 * target):
        if len(steps) == target:
            break
        name = draw(st.sampled_from(list(OPS)))
        op = OPS[name]
        # Counted back from the newest register, so shrinking favours deep chains.
        operands = tuple(
            len(registers) - 1 - draw(st.integers(0, len(registers) - 1)) for _ in range(op.arity)
        )
        values = [registers[i] for i in operands]
        if op.domain is not None and not op.domain(*values):
            continue
        param = op.param(draw, *values) if op.param is not None else None
        if op.kink is not None and op.kink(param, *values) < KINK_MARGIN[dtype]:
            continue
        out = np.asarray(op.apply(param, *values), dtype=np.float64)
        if not (np.all(np.isfinite(out)) and np.max(np.abs(out), initial=0) <= VALUE_CAP[dtype]):
            continue
        steps.append(Step(name, operands, param))
        registers.append(out)
    readout = draw(
        tst.float_arrays(registers[-1].shape, dtype=dtype, min_value=-1.0, max_value=1.0)
    )
    return Program(len(inputs), readout, steps)


def _leaf_arrays(n: int, dtype: Any) -> st.SearchStrategy[Any]:
    """A float leaf: an array of sides n or 1 (0 to 2 axes), some of them all positive."""
    shapes = st.sampled_from([0, 1, 2, 2, 2]).flatmap(
        lambda ndim: st.tuples(*[st.sampled_from([n, 1])] * ndim)
    )
    bounds = st.sampled_from([(-2.0, 2.0), (0.3, 2.0)])
    arrays = st.tuples(shapes, bounds).flatmap(
        lambda sb: tst.float_arrays(sb[0], dtype=dtype, min_value=sb[1][0], max_value=sb[1][1])
    )
    # NumPy scalars (and, in float64, Python floats) are leaves too: their gradients
    # come back as NumPy scalars.
    scalars = tst.float_arrays((), dtype=dtype).map(lambda a: a[()])
    options = [arrays, arrays, arrays, arrays, scalars]
    if dtype is np.float64:
        options.append(st.floats(-2.0, 2.0, allow_subnormal=False))
    return st.one_of(*options)


def pytrees(leaves: st.SearchStrategy[Any], max_leaves: int = 4) -> st.SearchStrategy[Any]:
    """Nested dicts, lists and tuples (empty ones included) over ``leaves``."""
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.lists(children, max_size=3).map(tuple),
            st.dictionaries(st.sampled_from(["W", "b", "layer", "x"]), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def argnums_for(draw: Any, nargs: int, candidates: list[int]) -> tuple[Any, tuple[int, ...]]:
    """A random ``argnums`` naming distinct ``candidates``, and its positions in order.

    An int, a tuple or a list, with each position written as ``p`` or its alias ``p - nargs``.
    """
    positions = draw(st.lists(st.sampled_from(candidates), min_size=1, unique=True))
    written = [p - nargs if draw(st.booleans()) else p for p in positions]
    form = draw(
        st.sampled_from(["int", "tuple", "list"] if len(positions) == 1 else ["tuple", "list"])
    )
    if form == "int":
        return written[0], tuple(positions)
    return (tuple(written) if form == "tuple" else list(written)), tuple(positions)


def _float_leaves(args: Any, skip: int | None) -> list[Any]:
    return [leaf for i, a in enumerate(args) if i != skip for leaf in tg.tree_leaves(a)]


@st.composite
def pytree_calls(draw: Any, dtype: Any) -> Any:
    """Arguments (float pytrees and one non-float argument), a program, and argnums."""
    n = draw(st.integers(2, 3))
    args = draw(st.lists(pytrees(_leaf_arrays(n, dtype)), min_size=1, max_size=3))
    if not _float_leaves(args, None):
        args[0] = [args[0], draw(_leaf_arrays(n, dtype))]
    # Data that is not differentiated (labels, a config) sits among the arguments.
    static = draw(st.integers(0, len(args)))
    args.insert(static, {"labels": np.arange(n), "name": "batch"})
    program = draw(programs(_float_leaves(args, static), dtype))
    candidates = [i for i in range(len(args)) if i != static]
    argnums, positions = draw(argnums_for(len(args), candidates))
    return args, static, program, argnums, positions


@pytest.mark.parametrize("dtype", FLOATS, ids=FLOAT_IDS)
@given(data=st.data())
def test_value_and_grad_of_random_programs_over_pytrees_equals_float64_finite_differences(
    dtype, data
):
    args, static, program, argnums, positions = data.draw(pytree_calls(dtype), label="call")

    def f(*call_args):
        return program(*_float_leaves(call_args, static))

    value, grads = tg.value_and_grad(f, argnums=argnums)(*args)
    also = tg.grad(f, argnums=argnums)(*args)

    # The shape of the result follows argnums: a bare pytree for an int, else a tuple.
    single = isinstance(argnums, int)
    per_arg = (grads,) if single else grads
    assert isinstance(per_arg, tuple) and len(per_arg) == len(positions)
    for p, g, g_again in zip(positions, per_arg, (also,) if single else also, strict=True):
        assert tg.tree_flatten(g)[1] == tg.tree_flatten(args[p])[1]
        for leaf, leaf_grad, again in zip(
            tg.tree_leaves(args[p]), tg.tree_leaves(g), tg.tree_leaves(g_again), strict=True
        ):
            assert np.shape(leaf_grad) == np.shape(leaf)
            assert np.asarray(leaf_grad).dtype == np.asarray(leaf).dtype
            np.testing.assert_array_equal(leaf_grad, again)  # grad is value_and_grad's [1]

    def of_selected(*selected):
        call_args = list(args)
        for p, a in zip(positions, selected, strict=True):
            call_args[p] = a
        return f(*call_args)

    selected = tuple(args[p] for p in positions)
    reference = numerical_grad(of_selected, selected)
    leaves = _float_leaves(args, static)
    tol = default_tolerance(_least_precise([np.asarray(x).dtype for x in leaves]))
    for k, (g, r) in enumerate(zip(per_arg, reference, strict=True)):
        for i, (gl, rl) in enumerate(zip(tg.tree_leaves(g), tg.tree_leaves(r), strict=True)):
            _assert_close(gl, rl, tol, f"gradient of argument {positions[k]}, leaf {i}")
    value64 = program(*[np.asarray(x, dtype=np.float64) for x in leaves])
    _assert_close(value, value64, tol, "value")


# =====================================================================================
# 2. Misuse: a TypeError or ValueError whose message names the problem
# =====================================================================================


def _raises(error: type[Exception] | tuple[type[Exception], ...], *phrases: str) -> Any:
    """``pytest.raises`` that also wants one of ``phrases`` in the message (any case)."""
    pattern = "|".join(f"(?i:{re.escape(p)})" for p in phrases)
    return pytest.raises(error, match=pattern)


def _loss(*args: Any) -> Any:
    total: Any = 0.0
    for leaf in tg.tree_leaves(args):
        total = total + tg.sum(leaf * leaf)
    return total


_NOT_INTS = st.one_of(
    st.booleans(),
    st.just(np.bool_(True)),
    st.just(np.bool_(False)),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.none(),
    st.just(()),
    st.just([]),
    st.just(np.array(0)),
    st.just(np.array([0])),
    st.just(range(1)),
    st.just({0}),
)


@st.composite
def _bad_argnums(draw: Any) -> Any:
    """An argnums that is not an int, nor a non-empty tuple or list of ints."""
    bad = draw(_NOT_INTS)
    wrap = draw(st.sampled_from(["bare", "tuple", "list", "nested"]))
    if wrap == "bare":
        return bad
    others = draw(st.lists(st.integers(0, 1), max_size=2))
    if wrap == "nested":  # a tuple holding a tuple of valid ints
        return (*others, (0,))
    items = [*others, bad]
    items = draw(st.permutations(items))
    return tuple(items) if wrap == "tuple" else list(items)


TRANSFORMS = {
    "grad": lambda f, argnums: tg.grad(f, argnums=argnums),
    "value_and_grad": lambda f, argnums: tg.value_and_grad(f, argnums=argnums),
    "grad, has_aux": lambda f, argnums: tg.grad(lambda *a: (f(*a), None), argnums, has_aux=True),
}


@given(argnums=_bad_argnums(), transform=st.sampled_from(sorted(TRANSFORMS)))
def test_argnums_that_are_not_ints_are_a_type_error(argnums, transform):
    x = np.array([1.0, 2.0])
    with _raises(TypeError, "argnums must be an int"):
        TRANSFORMS[transform](_loss, argnums)(x, x)


@st.composite
def _out_of_range_argnums(draw: Any) -> tuple[Any, int]:
    nargs = draw(st.integers(1, 4))
    wrong = draw(st.one_of(st.integers(nargs, nargs + 3), st.integers(-nargs - 3, -nargs - 1)))
    valid = draw(st.lists(st.integers(0, nargs - 1), unique=True, max_size=nargs - 1))
    items = draw(st.permutations([*valid, wrong]))
    form = draw(st.sampled_from(["int", "tuple", "list"]))
    argnums = wrong if form == "int" else (tuple(items) if form == "tuple" else list(items))
    return argnums, nargs


@given(case=_out_of_range_argnums(), transform=st.sampled_from(sorted(TRANSFORMS)))
def test_argnums_out_of_range_are_a_value_error(case, transform):
    argnums, nargs = case
    with _raises(ValueError, "out of range"):
        TRANSFORMS[transform](_loss, argnums)(*[np.array([1.0, 2.0])] * nargs)


@st.composite
def _repeated_argnums(draw: Any) -> tuple[Any, int]:
    nargs = draw(st.integers(1, 4))
    twice = draw(st.integers(0, nargs - 1))
    # The same position written twice, or once as p and once as its alias p - nargs.
    spellings = draw(st.lists(st.sampled_from([twice, twice - nargs]), min_size=2, max_size=3))
    others = draw(st.lists(st.integers(0, nargs - 1).filter(lambda p: p != twice), unique=True))
    items = draw(st.permutations([*spellings, *others]))
    return (tuple(items) if draw(st.booleans()) else list(items)), nargs


@given(case=_repeated_argnums(), transform=st.sampled_from(sorted(TRANSFORMS)))
def test_argnums_naming_one_argument_twice_are_a_value_error(case, transform):
    argnums, nargs = case
    with _raises(ValueError, "twice"):
        TRANSFORMS[transform](_loss, argnums)(*[np.array([1.0, 2.0])] * nargs)


# What f may wrongly return, given its traced argument, and the phrase the error must hold.
BAD_OUTPUTS: dict[str, tuple[Callable[[Any], Any], type[Exception], str]] = {
    "None": (lambda x: None, TypeError, "missing return"),
    "str": (lambda x: "loss", TypeError, "str"),
    "bytes": (lambda x: b"loss", TypeError, "bytes"),
    "dict of losses": (lambda x: {"loss": tg.sum(x)}, TypeError, "dict"),
    "list of losses": (lambda x: [tg.sum(x)], TypeError, "list"),
    "(loss, aux) without has_aux": (lambda x: (tg.sum(x), x), TypeError, "has_aux"),
    "Python complex": (lambda x: 1 + 2j, TypeError, "complex"),
    "NumPy complex": (lambda x: np.complex64(1), TypeError, "complex"),
    "traced complex": (lambda x: tg.sum(x) * 1j, TypeError, "complex"),
    "Python int": (lambda x: 3, TypeError, "floating-point"),
    "Python bool": (lambda x: True, TypeError, "floating-point"),
    "NumPy int": (lambda x: np.int32(3), TypeError, "floating-point"),
    "NumPy bool": (lambda x: np.bool_(False), TypeError, "floating-point"),
    "0-d int array": (lambda x: np.array(3), TypeError, "floating-point"),
    "constant int Tensor": (lambda x: tg.Tensor(np.array(3)), TypeError, "floating-point"),
    "non-scalar traced array": (lambda x: x * 2, ValueError, "scalar"),
    "non-scalar constant array": (lambda x: np.ones((2, 2)), ValueError, "scalar"),
    "1-element traced array": (lambda x: tg.reshape(tg.sum(x), shape=(1,)), ValueError, "scalar"),
}


@given(
    case=st.sampled_from(sorted(BAD_OUTPUTS)),
    x=tst.float_arrays(st.sampled_from([(2,), (2, 3), (1,)])),
    value_and=st.booleans(),
)
def test_f_must_return_a_real_floating_point_scalar(case, x, value_and):
    returns, error, phrase = BAD_OUTPUTS[case]
    transform = tg.value_and_grad if value_and else tg.grad
    with _raises(error, phrase):
        transform(returns)(x)


@given(
    out=st.one_of(
        tst.float_arrays((2,)),
        st.lists(st.floats(-1, 1), min_size=3, max_size=3).map(tuple),
        st.just(None),
        st.just("loss"),
    )
)
def test_has_aux_needs_f_to_return_a_pair(out):
    with _raises(TypeError, "pair"):
        tg.grad(lambda x: out, has_aux=True)(np.array([1.0, 2.0]))


def _not_float_leaves() -> st.SearchStrategy[tuple[Any, str]]:
    """Leaves that cannot be differentiated, and what the error must say about them."""
    return st.one_of(
        hnp.arrays(st.sampled_from([np.int8, np.int64, np.uint16]), (2,)).map(
            lambda a: (a, "dtype")
        ),
        hnp.arrays(np.bool_, st.sampled_from([(), (3,)])).map(lambda a: (a, "dtype")),
        hnp.arrays(st.sampled_from([np.complex64, np.complex128]), (2,)).map(
            lambda a: (a, "complex")
        ),
        st.sampled_from(
            [
                (3, "dtype"),
                (True, "dtype"),
                (np.int64(3), "dtype"),
                (1.5j, "complex"),
                (np.complex128(1), "complex"),
                ("weights", "not an array"),
                (None, "not an array"),
                (object(), "not an array"),
                (np.array(["a"]), "dtype"),
                (np.array([1.0], dtype=object), "dtype"),
                (ForeignArray([1.0, 2.0]), "not an array"),  # converted by ops, not bound
            ]
        ),
    )


@st.composite
def _argument_with_one_bad_leaf(draw: Any) -> tuple[Any, tuple[Any, ...], str]:
    """A float pytree with one leaf replaced; the bad leaf's path and expected phrase."""
    tree = draw(pytrees(tst.float_arrays((2,)), max_leaves=4))
    bad, phrase = draw(_not_float_leaves())
    leaves, treedef = tg.tree_flatten(tree)
    if not leaves:
        return bad, (), phrase
    k = draw(st.integers(0, len(leaves) - 1))
    leaves[k] = bad
    return tg.tree_unflatten(treedef, leaves), tree_paths(tree)[k], phrase


@given(case=_argument_with_one_bad_leaf(), position=st.integers(0, 2), nargs=st.integers(1, 3))
def test_differentiating_a_non_float_leaf_is_a_type_error_naming_its_path(case, position, nargs):
    argument, path, phrase = case
    position %= nargs
    args = [np.array([1.0, 2.0])] * nargs
    args[position] = argument
    name = f"argument {position}" + (path_str(path) if path else "")
    with _raises(TypeError, phrase) as raised:
        tg.grad(lambda *a: 0.0, argnums=tuple(range(nargs)))(*args)
    assert name in str(raised.value)


# --- cotangents for vjp_fn and tangents for hvp: exactly like the output / like x ---------
#
# Each mutation changes one property of a correct cotangent (or tangent), so the error
# it must raise is known. Broadcasting is refused too: a cotangent of shape (1, n) for an
# (m, n) output would silently compute the product with a different vector.

_NON_ARRAYS = ["cotangent", None, object()]


@st.composite
def _float_tree_and_unlike(draw: Any) -> tuple[Any, Any, type[Exception], str]:
    """A pytree of float arrays, a tree unlike it in one way, the error and its phrase."""
    dtype = draw(st.sampled_from(FLOATS))
    tree = draw(pytrees(tst.float_arrays(tst.shapes(max_dims=2, max_side=3), dtype=dtype)))
    leaves, treedef = tg.tree_flatten(tree)
    kinds = ["extra leaf", "leaf became a list"]
    if leaves:
        kinds += ["missing leaf", "broadcastable shape", "other shape", "integer dtype"]
        kinds += ["boolean dtype", "complex dtype", "non-array leaf"]
    kind = draw(st.sampled_from(kinds))
    if kind == "extra leaf":
        return tree, [tree, np.zeros(1, dtype)], ValueError, "structure"
    if kind == "leaf became a list":
        if not leaves:  # no leaf to wrap: wrap the whole (empty) tree instead
            return tree, (tree,), ValueError, "structure"
        k = draw(st.integers(0, len(leaves) - 1))
        leaves = [*leaves[:k], [leaves[k]], *leaves[k + 1 :]]
        return tree, tg.tree_unflatten(treedef, leaves), ValueError, "structure"
    if kind == "missing leaf":  # the same containers, one leaf short
        path = tree_paths(tree)[draw(st.integers(0, len(leaves) - 1))]
        return tree, (_drop_leaf(tree, path) if path else []), ValueError, "structure"
    k = draw(st.integers(0, len(leaves) - 1))
    leaf = leaves[k]
    if kind == "broadcastable shape":
        # Shapes that broadcast to the leaf's, or squeeze to it: (1, *shape) for a 0-d leaf.
        shape = leaf.shape
        options = [(1, *shape)]
        options += [(*shape[:i], 1, *shape[i + 1 :]) for i, n in enumerate(shape) if n > 1]
        if shape:
            options += [(), shape[1:]]
        bad, error, phrase = np.ones(draw(st.sampled_from(options)), dtype), ValueError, "shape"
    elif kind == "other shape":
        bad, error, phrase = np.ones((*leaf.shape, 2), dtype), ValueError, "shape"
    elif kind == "integer dtype":
        bad, error, phrase = np.ones(leaf.shape, np.int64), TypeError, "dtype"
    elif kind == "boolean dtype":
        bad, error, phrase = np.ones(leaf.shape, np.bool_), TypeError, "dtype"
    elif kind == "complex dtype":
        bad, error, phrase = np.ones(leaf.shape, np.complex128), TypeError, "complex"
    else:
        bad = draw(st.sampled_from([*_NON_ARRAYS, ForeignArray(np.ones(leaf.shape))]))
        error, phrase = TypeError, "not an array"
    leaves = [*leaves[:k], bad, *leaves[k + 1 :]]
    return tree, tg.tree_unflatten(treedef, leaves), error, phrase


def _drop_leaf(tree: Any, path: tuple[Any, ...]) -> Any:
    key, rest = path[0], path[1:]
    if isinstance(tree, dict):
        out = dict(tree)
        if rest:
            out[key] = _drop_leaf(tree[key], rest)
        else:
            del out[key]
        return out
    items = list(tree)
    if rest:
        items[key] = _drop_leaf(tree[key], rest)
    else:
        del items[key]
    return tuple(items) if isinstance(tree, tuple) else items


@given(case=_float_tree_and_unlike())
def test_vjp_fn_refuses_a_cotangent_unlike_the_output(case):
    like, unlike, error, phrase = case
    flat = [np.ravel(x) for x in tg.tree_leaves(like)]
    sizes = [x.size for x in flat]
    x = np.concatenate([np.zeros(1, np.float64), *[x.astype(np.float64) for x in flat]])
    treedef = tg.tree_flatten(like)[1]

    def f(v):  # returns a pytree shaped like `like`, every leaf traced
        leaves, start = [], 1
        for leaf, size in zip(tg.tree_leaves(like), sizes, strict=True):
            leaves.append(tg.reshape(v[start : start + size], shape=leaf.shape) * 2.0)
            start += size
        return tg.tree_unflatten(treedef, leaves)

    _, vjp_fn = tg.vjp(f, x)
    vjp_fn(like)  # the well-formed cotangent is accepted
    with _raises(error, phrase):
        vjp_fn(unlike)


@given(case=_float_tree_and_unlike())
def test_hvp_refuses_a_tangent_unlike_x(case):
    like, unlike, error, phrase = case
    tg.hvp(_loss, like, like)  # the well-formed tangent is accepted
    with _raises(error, phrase):
        tg.hvp(_loss, like, unlike)


@given(
    data=st.data(),
    dtype=st.sampled_from(FLOATS[:2]),
    receiver=st.sampled_from(["vjp_fn's cotangent", "hvp's tangent"]),
)
def test_a_masked_cotangent_or_tangent_is_refused_or_its_mask_respected(data, dtype, receiver):
    # Ops refuse masked arrays because converting one silently drops its mask. A masked
    # cotangent (or direction) deserves the same: either a TypeError naming the mask, or
    # the masked entries count as absent (0), as in np.sum(c * out) for masked c.
    x = data.draw(tst.float_arrays((2, 3), dtype=dtype, min_value=0.5, max_value=2.0), label="x")
    values = data.draw(
        tst.float_arrays((2, 3), dtype=dtype, min_value=-2, max_value=2, min_magnitude=0.5),
        label="cotangent values",
    )
    mask = data.draw(hnp.arrays(np.bool_, (2, 3)).filter(np.any), label="mask")
    masked = np.ma.masked_array(values, mask=mask)
    if receiver == "vjp_fn's cotangent":
        _, vjp_fn = tg.vjp(lambda t: t * t, x)

        def receive(c):
            return vjp_fn(c)[0]
    else:

        def receive(v):
            return tg.hvp(lambda t: tg.sum(t**3), x, v)

    try:
        got = receive(masked)
    except TypeError as error:
        assert "mask" in str(error).lower(), repr(error)
        return
    expected = receive(np.where(mask, 0, values).astype(dtype))
    _assert_close(got, expected, default_tolerance(dtype), f"a masked {receiver}")


# --- traced Tensors refuse to become Python numbers or ndarrays -------------------------


def _store_in_ndarray(t: Any) -> None:
    buf = np.zeros((3, *np.shape(t.data)), dtype=t.dtype)
    buf[0] = t


CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "float()": float,
    "int()": int,
    "complex()": complex,
    "operator.index": operator.index,
    ".item()": lambda t: t.item(),
    "math.exp": math.exp,
    "math.log": math.log,
    "np.float64(t)": np.float64,
    "np.float32(t)": np.float32,
    "np.asarray(t)": np.asarray,
    "np.array(t, float)": lambda t: np.array(t, dtype=float),
    "buf[0] = t": _store_in_ndarray,
    "list index": lambda t: [0.0, 1.0][t],
    "range(t)": range,
}


def _mentions_gradient(error: BaseException) -> bool:
    return "gradient" in str(error)


@given(
    conversion=st.sampled_from(sorted(CONVERSIONS)),
    x=st.sampled_from(FLOATS).flatmap(
        lambda dtype: tst.float_arrays(st.sampled_from([(), (1,), (2,), (2, 2)]), dtype=dtype)
    ),
    depth=st.integers(1, 2),
    derived=st.booleans(),
)
def test_traced_tensors_refuse_conversions_that_would_drop_the_gradient(
    conversion, x, depth, derived
):
    def f(t):
        target = t * 2.0 + 1.0 if derived else t
        CONVERSIONS[conversion](target)
        return tg.sum(t * t)

    transform = tg.grad(f) if depth == 1 else tg.grad(lambda t: tg.sum(tg.grad(f)(t)))
    with pytest.raises((TypeError, ValueError)) as raised:
        transform(x)
    error = raised.value
    if isinstance(error, ValueError):
        # NumPy's `buf[0] = t` reports float()'s TypeError as a ValueError "from" it.
        assert isinstance(error.__cause__, TypeError), repr(error)
        assert _mentions_gradient(error.__cause__), repr(error.__cause__)
    else:
        assert _mentions_gradient(error), repr(error)


@given(
    x=st.one_of(
        st.just(0.0),
        st.floats(-3, 3, allow_subnormal=False),
    ),
    shape=st.sampled_from([(), (1,), (1, 1)]),
    dtype=st.sampled_from(FLOATS),
    depth=st.integers(1, 2),
)
def test_bool_of_a_traced_scalar_branches_on_its_value(x, shape, dtype, depth):
    # Branching is control flow, not a value that could carry a gradient: allowed.
    value = np.full(shape, x, dtype)
    x = float(value.flat[0])  # as rounded to the dtype (tiny values round to 0)

    def f(t):
        if t:  # bool(t)
            y = 3.0 * t * t
        else:
            y = tg.exp(t)
        if bool(t > 0.5) and tg.sum(t) > 0.5:  # comparisons give plain booleans
            y = y + t
        return tg.sum(y)

    if depth == 1:
        g = tg.grad(f)(value)
        expected = (6 * x if x != 0 else 1.0) + (1.0 if x > 0.5 else 0.0)
    else:  # the branch is taken inside an inner transform, on a doubly traced Tensor
        g = tg.grad(lambda t: tg.sum(tg.grad(f)(t)))(value)
        expected = 6.0 if x != 0 else 1.0
    # 2 units of rounding of |6x| + 1 in the dtype.
    tol = 2 * float(np.finfo(dtype).eps) * (6 * abs(x) + 1)
    np.testing.assert_allclose(np.asarray(g, np.float64), expected, rtol=0, atol=tol)


@given(x=tst.float_arrays((2,)), depth=st.integers(1, 2))
def test_bool_of_a_traced_array_of_several_elements_is_numpys_value_error(x, depth):
    def f(t):
        if t:
            return tg.sum(t)
        return tg.sum(t * t)

    transform = tg.grad(f) if depth == 1 else tg.grad(lambda t: tg.sum(tg.grad(f)(t)))
    with _raises(ValueError, "ambiguous"):
        transform(x)


# --- arrays from elsewhere: masked arrays and matrices refused, duck arrays converted ----


def _own(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The foreign library's own operator: it converts the other operand itself."""
    return lambda self, other: ForeignArray(op(self.values, np.asarray(other)))


class ForeignArray:
    """A duck array in the style of xarray: NumPy converts it with ``__array__``, its own
    operators return ForeignArray, and it handles ufuncs by unwrapping ForeignArrays and
    wrapping the result, declining (NotImplemented) operands it does not know.
    """

    def __init__(self, data: Any) -> None:
        self.values = np.asarray(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.array(self.values, dtype=dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        known = (ForeignArray, np.ndarray, np.generic, int, float)
        if not all(isinstance(x, known) for x in inputs):
            return NotImplemented
        plain = [x.values if isinstance(x, ForeignArray) else x for x in inputs]
        return ForeignArray(getattr(ufunc, method)(*plain, **kwargs))

    __add__ = _own(operator.add)
    __radd__ = _own(lambda a, b: b + a)
    __sub__ = _own(operator.sub)
    __rsub__ = _own(lambda a, b: b - a)
    __mul__ = _own(operator.mul)
    __rmul__ = _own(lambda a, b: b * a)
    __truediv__ = _own(operator.truediv)
    __rtruediv__ = _own(lambda a, b: b / a)
    __matmul__ = _own(operator.matmul)
    __rmatmul__ = _own(lambda a, b: b @ a)
    __pow__ = _own(operator.pow)
    __rpow__ = _own(lambda a, b: b**a)


class UfuncOptOutArray(ForeignArray):
    """A duck array that opts out of ufuncs altogether (``__array_ufunc__ = None``)."""

    __array_ufunc__ = None


MASK = np.array([[True, False, True], [False, True, False], [True, True, False]])

# (spelling, whether the engine sees the call first). t is traced, o the other array.
# Where the other array's own operator runs first, the contract still holds: it must raise
# a TypeError (its conversion of t is refused) or compute the right thing.
SPELLINGS: dict[str, tuple[Callable[[Any, Any], Any], bool]] = {
    "t + o": (lambda t, o: t + o, True),
    "t - o": (lambda t, o: t - o, True),
    "t * o": (lambda t, o: t * o, True),
    "t / o": (lambda t, o: t / o, True),
    "t ** o": (lambda t, o: t**o, True),
    "t @ o": (lambda t, o: t @ o, True),
    "tg.add(o, t)": (lambda t, o: tg.add(o, t), True),
    "tg.sub(o, t)": (lambda t, o: tg.sub(o, t), True),
    "tg.mul(o, t)": (lambda t, o: tg.mul(o, t), True),
    "tg.div(o, t)": (lambda t, o: tg.div(o, t), True),
    "tg.pow(o, t)": (lambda t, o: tg.pow(o, t), True),
    "tg.matmul(o, t)": (lambda t, o: tg.matmul(o, t), True),
    "tg.dot(o, t)": (lambda t, o: tg.dot(o, t), True),
    "tg.maximum(o, t)": (lambda t, o: tg.maximum(o, t), True),
    "tg.minimum(t, o)": (lambda t, o: tg.minimum(t, o), True),
    "tg.where(mask, t, o)": (lambda t, o: tg.where(MASK, t, o), True),
    "tg.where(mask, o, t)": (lambda t, o: tg.where(MASK, o, t), True),
    "np.dot(o, t)": (lambda t, o: np.dot(o, t), True),
    "np.add(t, o)": (lambda t, o: np.add(t, o), False),
    "np.multiply(o, t)": (lambda t, o: np.multiply(o, t), False),
    "o + t": (lambda t, o: o + t, False),
    "o * t": (lambda t, o: o * t, False),
    "o - t": (lambda t, o: o - t, False),
    "o / t": (lambda t, o: o / t, False),
    "o @ t": (lambda t, o: o @ t, False),
}


@st.composite
def _traced_and_other(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    # All in [0.5, 2]: away from 0 for division, positive for pow; all values 0.05 apart
    # (no ties for maximum and minimum), far more than the finite-difference step.
    other_size = draw(st.sampled_from([3, 9]))
    values = draw(tst.float_arrays(9 + other_size, min_value=0.5, max_value=2.0, min_gap=0.05))
    return values[:9].reshape(3, 3), values[9:].reshape((3, 3) if other_size == 9 else (3,))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@given(
    spelling=st.sampled_from(sorted(SPELLINGS)),
    kind=st.sampled_from(["masked array", "np.matrix"]),
    arrays=_traced_and_other(),
)
def test_masked_arrays_and_matrices_meeting_a_traced_tensor_are_a_type_error(
    spelling, kind, arrays
):
    t, o = arrays
    other = np.ma.masked_array(o, mask=np.ones(o.shape, bool)) if kind == "masked array" else None
    if other is None:
        other = np.matrix(o if o.ndim == 2 else o[None, :])
    apply, _ = SPELLINGS[spelling]
    # The engine names the type; where the other array's operator runs first, it converts t,
    # which a traced Tensor refuses (naming the gradient).
    with _raises(TypeError, "mask", "matrix", "gradient"):
        tg.grad(lambda x: tg.sum(apply(x, other)))(t)


@given(
    spelling=st.sampled_from(sorted(SPELLINGS)),
    foreign_type=st.sampled_from([ForeignArray, UfuncOptOutArray]),
    arrays=_traced_and_other(),
    readout=tst.float_arrays((3, 3), min_value=-1, max_value=1),
)
def test_foreign_duck_arrays_are_converted_so_the_gradient_is_right(
    spelling, foreign_type, arrays, readout
):
    t, o = arrays
    apply, engine_first = SPELLINGS[spelling]
    foreign = foreign_type(o)

    def loss(x, other):
        out = apply(x, other)
        return tg.sum(out * readout[: out.shape[-1]] if out.ndim == 1 else out * readout)

    try:
        value, g = tg.value_and_grad(loss)(t, foreign)
    except TypeError as error:
        # Only a call the other array's own code saw first may refuse, and only for a
        # reason it can name: the gradient (t refused conversion) or its ufunc opt-out.
        assert not engine_first, f"{spelling}: {error!r}"
        assert _mentions_gradient(error) or "ufunc" in str(error), repr(error)
        return
    assert isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0
    reference = numerical_grad(lambda x: loss(x, o), t)
    _assert_close(g, reference, default_tolerance(np.float64), spelling)


# =====================================================================================
# 3. Aliasing: every returned gradient is the caller's own array
# =====================================================================================
#
# Pass-through programs are where aliasing comes from: `x + y` hands both inputs the
# same cotangent array, `W + V.T` a view of it, and an identity hands vjp_fn's caller
# their own cotangent back. The arguments share memory among themselves too: the same
# array object in several leaves, transposed, flattened and reversed views of it.


@dataclass(frozen=True)
class Ref:
    """A leaf to be: ``view`` of base array ``base`` (a pytree leaf, unlike a tuple)."""

    view: str
    base: int


VIEWS: dict[str, Callable[[np.ndarray], Any]] = {
    "same object": lambda b: b,
    "transposed view": lambda b: b.T,
    "flattened view": lambda b: b.reshape(-1),
    "reversed view": lambda b: b[::-1],
    "row view": lambda b: b[0],
    "0-d view": lambda b: b[0, 0, ...],
    "NumPy scalar": lambda b: b[0, 0],
    "copy": lambda b: b.copy(),
}

# Expressions of one leaf x (and, for the binary ones, a second leaf y of fitting shape).
PASS_THROUGH: dict[str, Callable[..., Any]] = {
    "x": lambda x: x,
    "x + 0": lambda x: x + 0.0,
    "0 + x": lambda x: 0.0 + x,
    "x - 0": lambda x: x - 0.0,
    "x * 1": lambda x: x * 1.0,
    "neg(-x)": lambda x: tg.neg(-x),
    "reshape(x, -1)": lambda x: tg.reshape(x, shape=(-1,)),
    "transpose(x)": lambda x: tg.transpose(x),
    "x.T.T": lambda x: x.T.T,
    "broadcast_to(x, x.shape)": lambda x: tg.broadcast_to(x, shape=x.shape),
    "x[...]": lambda x: x[...],
    "stop_gradient(x)": lambda x: tg.stop_gradient(x),
}
# Each with the shape y must have, given x's.
PAIRS: dict[str, tuple[Callable[..., Any], Callable[[tuple[int, ...]], tuple[int, ...]]]] = {
    "x + y": (lambda x, y: x + y, lambda shape: shape),
    "x + y.T": (lambda x, y: x + y.T, lambda shape: shape[::-1]),
    "x - y.T": (lambda x, y: x - tg.transpose(y), lambda shape: shape[::-1]),
}


@dataclass(frozen=True)
class Expr:
    kind: str
    x: int
    y: int | None = None

    def __call__(self, leaves: list[Any], numerically: bool = False) -> Any:
        if numerically and self.kind == "stop_gradient(x)":
            # Finite differences know no stop_gradient: hold the value constant.
            return tg.stop_gradient(leaves[self.x]) * 0.0
        if self.y is None:
            return PASS_THROUGH[self.kind](leaves[self.x])
        return PAIRS[self.kind][0](leaves[self.x], leaves[self.y])


@st.composite
def aliased_calls(draw: Any) -> tuple[list[Any], list[Expr]]:
    """Arguments sharing memory in every way VIEWS allows, and pass-through expressions."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    sides = st.integers(1, 3)
    bases = draw(
        st.lists(tst.float_arrays(st.tuples(sides, sides), dtype=dtype), min_size=1, max_size=3)
    )
    refs = st.builds(Ref, st.sampled_from(list(VIEWS)), st.integers(0, len(bases) - 1))
    trees = draw(st.lists(pytrees(refs, max_leaves=4), min_size=1, max_size=3))
    args = [tg.tree_map(lambda r: VIEWS[r.view](bases[r.base]), t) for t in trees]
    leaves = tg.tree_leaves(args)
    if not leaves:
        args.append(bases[0])
        leaves = [bases[0]]
    exprs = []
    for _ in range(draw(st.integers(1, 5))):
        x = draw(st.integers(0, len(leaves) - 1))
        shape = np.shape(leaves[x])
        pairs = [
            (name, y)
            for name, (_, partner) in PAIRS.items()
            for y in range(len(leaves))
            if np.shape(leaves[y]) == partner(shape)
        ]
        if pairs and draw(st.booleans()):
            name, y = draw(st.sampled_from(pairs))
            exprs.append(Expr(name, x, y))
        else:
            exprs.append(Expr(draw(st.sampled_from(list(PASS_THROUGH))), x))
    # The same output twice: its cotangents are summed.
    if draw(st.booleans()):
        exprs.append(draw(st.sampled_from(exprs)))
    return args, exprs


def _arrays(tree: Any) -> list[np.ndarray]:
    return [x for x in tg.tree_leaves(tree) if isinstance(x, np.ndarray)]


def _assert_own_memory(grads: Any, others: dict[str, Any]) -> None:
    """No returned gradient shares memory with another, nor with any of ``others``."""
    mine = _arrays(grads)
    for i, g in enumerate(mine):
        assert g.flags.writeable, f"gradient {i} is read-only"
        for j in range(i):
            assert not np.shares_memory(g, mine[j]), f"gradients {j} and {i} share memory"
        for what, tree in others.items():
            for k, a in enumerate(_arrays(tree)):
                assert not np.shares_memory(g, a), f"gradient {i} shares memory with {what} {k}"


def _assert_updates_stay_local(grads: Any, others: dict[str, Any], recompute: Any) -> None:
    """Updating each gradient in place changes no other array, nor what is computed next."""
    mine = _arrays(grads)
    watched = mine + [a for tree in others.values() for a in _arrays(tree)]
    before = [a.copy() for a in watched]
    returned = before[: len(mine)]
    for i, g in enumerate(mine):
        g += 1000.0
        for j, (a, old) in enumerate(zip(watched, before, strict=True)):
            if j != i:
                np.testing.assert_array_equal(a, old, err_msg=f"updating gradient {i}")
        before[i] = g.copy()
    again = _arrays(recompute())
    for i, (g, old) in enumerate(zip(again, returned, strict=True)):
        np.testing.assert_array_equal(g, old, err_msg=f"gradient {i} after the updates")


def _random_cotangent(draw: Any, out: list[Any]) -> list[Any]:
    """Random cotangents; some are the same array as an earlier one, or its transpose."""
    cts: list[Any] = []
    for leaf in out:
        shape, dtype = np.shape(leaf), np.asarray(leaf).dtype
        same = [c for c in cts if c.shape == shape]
        flipped = [c for c in cts if c.shape == shape[::-1] and len(shape) == 2]
        choice = draw(st.sampled_from(["fresh", "same", "transposed"]))
        if choice == "same" and same:
            cts.append(draw(st.sampled_from(same)))
        elif choice == "transposed" and flipped:
            cts.append(draw(st.sampled_from(flipped)).T)
        else:
            cts.append(draw(tst.float_arrays(shape, dtype=dtype, min_value=-1, max_value=1)))
    return cts


@given(call=aliased_calls(), data=st.data())
def test_vjp_gradients_share_no_memory_and_updating_one_changes_nothing_else(call, data):
    args, exprs = call

    def f(*a, numerically=False):
        leaves = tg.tree_leaves(a)
        return [e(leaves, numerically) for e in exprs]

    out, vjp_fn = tg.vjp(f, *args)
    ct = _random_cotangent(data.draw, out)
    grads = vjp_fn(ct)

    def weighted(*a):
        total: Any = 0.0
        for y, c in zip(f(*a, numerically=True), ct, strict=True):
            total = total + tg.sum(y * c)
        return total

    reference = numerical_grad(weighted, tuple(args))
    tol = default_tolerance(_least_precise([np.asarray(x).dtype for x in tg.tree_leaves(args)]))
    for g, r in zip(tg.tree_leaves(grads), tg.tree_leaves(reference), strict=True):
        _assert_close(g, r, tol, "vjp of a pass-through program")
    others = {"argument leaf": args, "cotangent": ct, "output": out}
    _assert_own_memory(grads, others)
    _assert_updates_stay_local(grads, others, lambda: vjp_fn(ct))


@given(call=aliased_calls(), data=st.data())
def test_grad_gradients_share_no_memory_and_updating_one_changes_nothing_else(call, data):
    args, exprs = call

    def loss(*a, numerically=False):
        total: Any = 0.0
        for e in exprs:
            y = e(tg.tree_leaves(a), numerically)
            # A 0-d output is added as it is: the seed itself reaches the leaves.
            total = total + (y if np.ndim(tg.stop_gradient(y)) == 0 else tg.sum(y))
        return total

    argnums, positions = data.draw(argnums_for(len(args), list(range(len(args)))))
    value, grads = tg.value_and_grad(loss, argnums=argnums)(*args)
    per_arg = (grads,) if isinstance(argnums, int) else grads

    def of_selected(*selected):
        call_args = list(args)
        for p, a in zip(positions, selected, strict=True):
            call_args[p] = a
        return loss(*call_args, numerically=True)

    reference = numerical_grad(of_selected, tuple(args[p] for p in positions))
    tol = default_tolerance(_least_precise([np.asarray(x).dtype for x in tg.tree_leaves(args)]))
    for g, r in zip(tg.tree_leaves(per_arg), tg.tree_leaves(reference), strict=True):
        _assert_close(g, r, tol, "gradient of a pass-through program")
    others = {"argument leaf": args, "value": value}
    _assert_own_memory(per_arg, others)
    _assert_updates_stay_local(per_arg, others, lambda: tg.grad(loss, argnums=argnums)(*args))


@given(call=aliased_calls(), data=st.data())
def test_constant_tensor_cotangents_do_not_make_gradients_alias_them(call, data):
    # vjp_fn accepts Tensors as cotangents (a nested transform passes traced ones). A
    # constant Tensor wraps the caller's array without a copy, so the aliasing rule must
    # see through it: no gradient may share its memory.
    args, exprs = call

    def f(*a):
        return [e(tg.tree_leaves(a)) for e in exprs]

    out, vjp_fn = tg.vjp(f, *args)
    ct = _random_cotangent(data.draw, out)
    grads = vjp_fn([tg.Tensor(c) for c in ct])
    plain = [g.data if isinstance(g, tg.Tensor) else g for g in tg.tree_leaves(grads)]
    for g, expected in zip(plain, tg.tree_leaves(vjp_fn(ct)), strict=True):
        np.testing.assert_array_equal(g, expected)
    _assert_own_memory(plain, {"argument leaf": args, "cotangent": ct, "output": out})


def _copy_tree(tree: Any) -> Any:
    return tg.tree_map(lambda x: x.copy() if isinstance(x, np.ndarray) else x, tree)


@pytest.mark.parametrize("dtype", FLOATS[:2], ids=FLOAT_IDS[:2])
@given(data=st.data())
def test_vjp_fn_ignores_updates_to_the_primals_and_the_output_made_after_vjp(dtype, data):
    # vjp_fn's VJPs read the primals and intermediate results (exp's output, mul's other
    # operand...): vjp copies the primals and the output, so updating the caller's arrays
    # afterwards cannot change what vjp_fn returns.
    args, static, program, _, _ = data.draw(pytree_calls(dtype), label="call")
    primals = [a for i, a in enumerate(args) if i != static]

    def f(*p):
        return program.outputs(*_float_leaves(p, None))

    expected_fn = tg.vjp(f, *_copy_tree(primals))[1]  # on copies nobody touches
    out, vjp_fn = tg.vjp(f, *primals)
    ct = data.draw(tst.float_arrays(np.shape(out), dtype=dtype), label="cotangent")
    for leaf in _arrays(primals):
        leaf *= -3.0
        leaf += 1.0
    for leaf in _arrays(out):
        leaf[...] = np.nan
    got, expected = vjp_fn(ct), expected_fn(ct)
    # Identical arithmetic on identical numbers; 16 eps only absorbs a different
    # SIMD path for differently aligned copies.
    tol = 16 * float(np.finfo(dtype).eps)
    for g, e in zip(tg.tree_leaves(got), tg.tree_leaves(expected), strict=True):
        _assert_close(g, e, tol, "vjp_fn after the primals and the output were updated")


# =====================================================================================
# 4. Reduced precision at up to 10**6 elements: the float64 result, rounded
# =====================================================================================
#
# Each value and gradient is compared with the float64 computation on the same
# (dtype-rounded) inputs. A correct float16/float32 implementation differs from it by its
# rounding errors only, which per element are bounded by
#
#     |engine - exact| <= rtol * scale + summed + (1 + factor) * tiny
#
# * rtol = default_tolerance(dtype): 2e-2 ~ 40 u for float16 (u = 2**-11), 1.2e-4 ~ 2000 u
#   for float32 (u = 2**-24). ``scale`` is the magnitude of the terms before any
#   cancellation (|x| + |lse| for log_softmax's x - lse), so rtol * scale covers every
#   elementwise rounding along a chain of up to 40 ops. The longest chain is logsumexp's
#   float16 VJP, exp(x - lse) from the rounded lse: relative error (|lse| + |x - lse| + 3) u,
#   which the data below keeps under 35 u (|lse| <= 15; terms with |x - lse| > 16.6 lie
#   below float16's subnormal spacing, under the last term).
# * summed: the error of a sum over N terms. The engine's policy is that float16 sums
#   accumulate in float32 (as np.mean does); NumPy's pairwise summation (blocks of 128
#   elements, 8 accumulators, then halving) errs by at most (log2 N + 16) u32 sum |terms|,
#   ~36 u32 = 2.1e-6 sum |terms| at N = 10**6. A sum accumulated in float16 instead
#   (NumPy does that along a strided axis) errs by up to N u16 sum |terms|, and stalls
#   outright once the partial sum's spacing exceeds twice the terms (2048 + 1 = 2048).
# * tiny = the dtype's subnormal spacing (6e-8 for float16, 1.4e-45 for float32). Results
#   below the smallest normal (6.1e-5 in float16: softmax of 10**6 elements is ~1e-6)
#   are multiples of tiny; each rounding there errs by up to tiny / 2, amplified by what
#   multiplies it afterwards (``factor``).
#
# Where the float64 result rounds to +-inf in the dtype (a float16 sum beyond 65504), the
# engine may give that infinity. Anything else (NaN, inf from a finite result, a stalled
# sum, a mean's gradient of 0 because float16 cannot hold a count of 10**5) fails.

SIZES = [10**3, 10**5, 10**6]
REDUCED = [np.float16, np.float32]
REDUCED_IDS = ["float16", "float32"]
LARGE = settings(max_examples=_profile_examples(8, 4))


def _summation_error(count: int) -> float:
    """Bound on a float32-accumulated pairwise sum's error, per unit of sum |terms|."""
    return (math.log2(max(count, 1)) + 16) * 2.0**-24


def _assert_rounded(
    engine: Any,
    exact: Any,
    dtype: Any,
    what: str,
    *,
    scale: Any,
    summed: Any = 0.0,
    factor: Any = 0.0,
) -> None:
    value = np.asarray(engine)
    assert value.dtype == np.dtype(dtype), f"{what}: dtype {value.dtype}, not {np.dtype(dtype)}"
    e = value.astype(np.float64)
    r = np.asarray(exact, dtype=np.float64)
    assert e.shape == r.shape, f"{what}: shape {e.shape} != {r.shape}"
    with np.errstate(over="ignore"):
        rounded = r.astype(dtype).astype(np.float64)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    allowed = default_tolerance(dtype) * np.asarray(scale) + summed + (1 + factor) * tiny
    allowed = np.broadcast_to(allowed, r.shape)
    with np.errstate(invalid="ignore"):
        ok = np.abs(e - r) <= allowed
    ok |= np.isinf(rounded) & (e == rounded)
    assert ok.all(), (
        f"{what}: {int((~ok).sum())} of {ok.size} elements differ from the float64 result "
        f"by more than rounding\nengine  {e[~ok][:5]}\nfloat64 {r[~ok][:5]}\n"
        f"allowed {allowed[~ok][:5]}"
    )


def _large_array(
    dtype: Any, size: int, layout: str, short: int, loc: float, scale: float, seed: int
) -> np.ndarray:
    short = min(short, size)
    shape = {"flat": (size,), "rows": (size // short, short), "columns": (short, size // short)}
    return np.random.default_rng(seed).normal(loc, scale, shape[layout]).astype(dtype)


def _logsumexp64(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    shift = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axis)


LARGE_CASES = dict(
    size=st.sampled_from(SIZES),
    layout=st.sampled_from(["flat", "rows", "columns"]),
    short=st.sampled_from([10, 100, 1000]),
    loc=st.floats(-2.0, 0.5),
    scale=st.floats(0.25, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
# Always tried as well: a million elements, reduced along the long, strided axis.
LARGEST = dict(size=10**6, layout="rows", short=100, loc=0.5, scale=0.5, seed=0)


@pytest.mark.parametrize("reduction", ["sum", "mean", "logsumexp"])
@pytest.mark.parametrize("dtype", REDUCED, ids=REDUCED_IDS)
@LARGE
@example(**LARGEST, axis=0, keepdims=False)
@given(**LARGE_CASES, axis=st.sampled_from([None, 0, -1]), keepdims=st.booleans())
def test_large_reductions_equal_the_float64_result_rounded(
    dtype, reduction, size, layout, short, loc, scale, seed, axis, keepdims
):
    x = _large_array(dtype, size, layout, short, loc, scale, seed)
    x64 = x.astype(np.float64)
    op = {"sum": tg.sum, "mean": tg.mean, "logsumexp": tg.logsumexp}[reduction]
    out, vjp_fn = tg.vjp(lambda t: op(t, axis=axis, keepdims=keepdims), x)
    c = np.random.default_rng(seed + 1).uniform(-1, 1, np.shape(out)).astype(dtype)
    (g,) = vjp_fn(c)
    c64 = np.asarray(c, np.float64)
    c64 = c64 if keepdims or axis is None else np.expand_dims(c64, axis)
    count = x.size if axis is None else x.shape[axis]
    if reduction == "logsumexp":
        exact = _logsumexp64(x64, axis, keepdims)
        value_scale = np.abs(exact) + np.max(np.abs(x64), axis=axis, keepdims=keepdims)
        _assert_rounded(
            out, exact, dtype, "logsumexp", scale=value_scale, summed=_summation_error(count)
        )
        grad_exact = c64 * np.exp(x64 - _logsumexp64(x64, axis, True))
        _assert_rounded(g, grad_exact, dtype, "its gradient", scale=np.abs(grad_exact), factor=1)
        return
    per = count if reduction == "mean" else 1
    exact = np.sum(x64, axis=axis, keepdims=keepdims) / per
    terms = np.sum(np.abs(x64), axis=axis, keepdims=keepdims) / per
    summed = _summation_error(count) * terms
    _assert_rounded(out, exact, dtype, reduction, scale=np.abs(exact), summed=summed)
    grad_exact = np.broadcast_to(c64 / per, x.shape)
    # c * (1 / count) may round in the subnormal range: (1 + |c|) tiny / 2 <= tiny.
    _assert_rounded(g, grad_exact, dtype, "its gradient", scale=np.abs(grad_exact), factor=1)


@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", REDUCED, ids=REDUCED_IDS)
@LARGE
@example(**LARGEST, axis=0)
@given(**LARGE_CASES, axis=st.sampled_from([0, -1]))
def test_large_softmax_equals_the_float64_result_rounded(
    dtype, function, size, layout, short, loc, scale, seed, axis
):
    x = _large_array(dtype, size, layout, short, loc, scale, seed)
    x64 = x.astype(np.float64)
    count = x.shape[axis]
    op = tg.softmax if function == "softmax" else tg.log_softmax
    out, vjp_fn = tg.vjp(lambda t: op(t, axis=axis), x)
    c = np.random.default_rng(seed + 1).uniform(-1, 1, x.shape).astype(dtype)
    (g,) = vjp_fn(c)
    c64 = c.astype(np.float64)
    lse = _logsumexp64(x64, axis, True)
    s = np.exp(x64 - lse)
    if function == "softmax":
        _assert_rounded(out, s, dtype, "softmax", scale=s, summed=_summation_error(count) * s)
        # s * (c - d), d = sum(c * s): d's products round (u sum|c s|, or tiny / 2 each when
        # subnormal) and accumulate (summation error); s errs by rtol s + tiny.
        d = np.sum(c64 * s, axis=axis, keepdims=True)
        terms = np.sum(np.abs(c64 * s), axis=axis, keepdims=True)
        exact = s * (c64 - d)
        _assert_rounded(
            g,
            exact,
            dtype,
            "softmax's gradient",
            scale=np.abs(exact) + s * (np.abs(d) + terms),
            summed=s * _summation_error(count) * terms,
            factor=np.abs(c64 - d) + s * count / 2,
        )
        return
    log_s = x64 - lse
    scale_value = np.abs(x64) + np.abs(lse)
    _assert_rounded(
        out, log_s, dtype, "log_softmax", scale=scale_value, summed=_summation_error(count)
    )
    # c - exp(log_s) * T, T = sum(c): T accumulates; exp(log_s) errs by rtol s + tiny.
    total = np.sum(c64, axis=axis, keepdims=True)
    exact = c64 - s * total
    _assert_rounded(
        g,
        exact,
        dtype,
        "log_softmax's gradient",
        scale=np.abs(exact) + s * np.abs(total),
        summed=s * _summation_error(count) * np.sum(np.abs(c64), axis=axis, keepdims=True),
        factor=np.abs(total),
    )


@pytest.mark.parametrize("labels_kind", ["integer labels", "probability rows"])
@pytest.mark.parametrize("dtype", REDUCED, ids=REDUCED_IDS)
@LARGE
@example(**{**LARGEST, "short": 10})
@given(**LARGE_CASES)
def test_large_cross_entropy_equals_the_float64_result_rounded(
    dtype, labels_kind, size, layout, short, loc, scale, seed
):
    del layout  # logits are always (N, C): rows of `short` classes
    logits = _large_array(dtype, size, "rows", short, loc, scale, seed)
    n, classes = logits.shape
    x64 = logits.astype(np.float64)
    lse = _logsumexp64(x64, -1, True)
    p = np.exp(x64 - lse)
    rng = np.random.default_rng(seed + 1)
    if labels_kind == "integer labels":
        labels = rng.integers(0, classes, n)
        value, g = tg.value_and_grad(tg.nn.cross_entropy)(logits, labels)
        picked = x64[np.arange(n), labels]
        terms = np.mean(np.abs(lse[:, 0]) + np.abs(picked))
        _assert_rounded(
            value,
            np.mean(lse[:, 0] - picked),
            dtype,
            "cross-entropy",
            scale=terms,
            summed=_summation_error(n) * terms,
        )
        onehot = np.zeros_like(p)
        onehot[np.arange(n), labels] = 1
        _assert_rounded(
            g,
            (p - onehot) / n,
            dtype,
            "its gradient",
            scale=(p + onehot) / n,
            summed=_summation_error(classes) * p / n,
            factor=1,
        )
        return
    y = np.exp(rng.normal(0, 1, logits.shape))
    y = (y / y.sum(-1, keepdims=True)).astype(dtype)
    y64 = y.astype(np.float64)
    value, (g_logits, g_labels) = tg.value_and_grad(tg.nn.cross_entropy, argnums=(0, 1))(logits, y)
    spread = np.abs(x64) + np.abs(lse)  # log softmax = x - lse, before cancellation
    terms = np.sum(y64 * spread) / n
    _assert_rounded(
        value,
        -np.sum(y64 * (x64 - lse)) / n,
        dtype,
        "cross-entropy",
        scale=terms,
        summed=_summation_error(logits.size) * terms,
    )
    mass = y64.sum(-1, keepdims=True)
    _assert_rounded(
        g_logits,
        (p * mass - y64) / n,
        dtype,
        "its logits gradient",
        scale=(p * mass + y64) / n,
        summed=_summation_error(classes) * (p * mass + y64) / n,
        factor=2,
    )
    _assert_rounded(
        g_labels,
        -(x64 - lse) / n,
        dtype,
        "its labels gradient",
        scale=spread / n,
        summed=_summation_error(classes) / n,
        factor=np.abs(x64 - lse),
    )


# =====================================================================================
# 5. Gradients at the edges of the ops' domains
# =====================================================================================
#
# Finite differences cannot step across these edges, so the references are closed forms,
# evaluated in float64 on the dtype-rounded inputs. Relative accuracy is what is asked
# there: the whole point of expm1 and the stable sigmoid is that tiny results keep their
# digits, so the tolerance is default_tolerance(dtype) relative to the result, with no
# absolute term that a 0 could hide under.


def _assert_relative(engine: Any, exact: Any, dtype: Any, what: str) -> None:
    value = np.asarray(engine)
    assert value.dtype == np.dtype(dtype), f"{what}: dtype {value.dtype}"
    e, r = value.astype(np.float64), np.asarray(exact, np.float64)
    ok = np.abs(e - r) <= default_tolerance(dtype) * np.abs(r)
    assert ok.all(), f"{what}:\nengine {e[~ok][:5]}\nexact  {r[~ok][:5]}"


def _in_dtype(dtype: Any, shapes: Any = None, **bounds: Any) -> st.SearchStrategy[np.ndarray]:
    return tst.float_arrays(
        shapes if shapes is not None else tst.shapes(min_dims=1), dtype=dtype, **bounds
    )


@given(data=st.data(), dtype=st.sampled_from(FLOATS), base_kind=st.sampled_from(["array", "0.0"]))
def test_a_zero_base_gives_the_exponent_a_zero_gradient(data, dtype, base_kind):
    # d/dy x**y = x**y log x, which is 0 * log 0 at x = 0: the limit, for y > 0, is 0.
    y = data.draw(_in_dtype(dtype, min_value=0.1, max_value=3.0), label="y")
    if base_kind == "0.0":
        base: Any = 0.0
        x = np.zeros(y.shape, dtype)
    else:  # zeros and positive bases mixed, broadcasting against y
        x = data.draw(_in_dtype(dtype, y.shape, min_value=0.25, max_value=2.0), label="x")
        x = np.where(data.draw(hnp.arrays(np.bool_, y.shape), label="zero here"), 0, x)
        x = x.astype(dtype)
        base = x
    c = data.draw(_in_dtype(dtype, y.shape, min_value=-1, max_value=1), label="cotangent")
    _, vjp_fn = tg.vjp(lambda b, e: b**e, base, y)
    with np.errstate(divide="ignore", invalid="ignore"):  # the base's, 0**(y - 1) for y < 1
        g_base, g_y = vjp_fn(c)
    x64, y64, c64 = (a.astype(np.float64) for a in (x, y, c))
    with np.errstate(divide="ignore"):
        exact = np.where(x64 > 0, c64 * x64**y64 * np.log(np.where(x64 > 0, x64, 1)), 0.0)
    assert np.all(g_y[x == 0] == 0), "the exponent's gradient at a zero base"
    _assert_close(g_y, exact, default_tolerance(dtype), "the exponent's gradient")
    if base_kind == "array":
        # The base's gradient y x**(y - 1) is finite wherever x > 0, or x = 0 and y >= 1.
        finite = (x64 > 0) | (y64 >= 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            exact_base = c64 * y64 * np.where(x64 > 0, x64, 0.0) ** (y64 - 1)
        _assert_close(g_base[finite], exact_base[finite], default_tolerance(dtype), "the base's")


@given(
    data=st.data(),
    dtype=st.sampled_from(FLOATS),
    exponent_kind=st.sampled_from(["array", "0", "0.0"]),
)
def test_a_zero_exponent_gives_the_base_a_zero_gradient_even_at_zero(data, dtype, exponent_kind):
    # d/dx x**0 = 0 * x**-1, which is 0 * inf at x = 0: the limit is 0 (x**0 = 1 everywhere).
    x = data.draw(_in_dtype(dtype, min_value=0.25, max_value=2.0), label="x")
    x = np.where(data.draw(hnp.arrays(np.bool_, x.shape), label="zero base"), 0, x).astype(dtype)
    if exponent_kind == "array":
        y = data.draw(_in_dtype(dtype, x.shape, min_value=1.0, max_value=3.0), label="y")
        y = np.where(data.draw(hnp.arrays(np.bool_, x.shape), label="zero exponent"), 0, y)
        y = y.astype(dtype)
        exponent: Any = y
    else:
        y = np.zeros(x.shape, dtype)
        exponent = 0 if exponent_kind == "0" else 0.0
    c = data.draw(_in_dtype(dtype, x.shape, min_value=-1, max_value=1), label="cotangent")
    _, vjp_fn = tg.vjp(lambda b: b**exponent, x)
    (g,) = vjp_fn(c)
    assert np.all(g[y == 0] == 0), "the base's gradient where the exponent is 0"
    x64, y64, c64 = (a.astype(np.float64) for a in (x, y, c))
    exact = np.where(y64 == 0, 0.0, c64 * y64 * x64 ** np.where(y64 == 0, 1.0, y64 - 1))
    _assert_close(g, exact, default_tolerance(dtype), "the base's gradient")


@given(data=st.data(), dtype=st.sampled_from(FLOATS), op=st.sampled_from(["sqrt", "log"]))
def test_sqrt_and_log_gradients_stay_accurate_just_above_zero(data, dtype, op):
    # From the smallest normal number of the dtype up to 1e-3; 1/x and 1/(2 sqrt x) are
    # finite there in every dtype (1 / 6.1e-5 = 16384 < 65504 in float16).
    tiny = float(np.finfo(dtype).tiny)
    exponents = data.draw(
        _in_dtype(np.float64, min_value=math.log10(tiny), max_value=-3.0), label="log10 x"
    )
    x = np.maximum((10.0**exponents).astype(dtype), np.asarray(tiny, dtype))
    g = tg.grad(lambda t: tg.sum(getattr(tg, op)(t)))(x)
    x64 = x.astype(np.float64)
    exact = 1 / (2 * np.sqrt(x64)) if op == "sqrt" else 1 / x64
    _assert_relative(g, exact, dtype, f"d {op}(x) / dx near 0")


@given(data=st.data(), dtype=st.sampled_from(FLOATS))
def test_expm1_gradient_keeps_its_relative_accuracy_far_below_zero(data, dtype):
    # expm1(x) + 1 rounds to 0 once exp(x) < eps (x < log eps); the derivative exp(x) must
    # keep its digits down to where it leaves the normal range.
    lowest = math.log(float(np.finfo(dtype).tiny)) + 1
    highest = math.log(float(np.finfo(dtype).eps))
    x = data.draw(_in_dtype(dtype, min_value=lowest, max_value=highest), label="x")
    g = tg.grad(lambda t: tg.sum(tg.expm1(t)))(x)
    _assert_relative(g, np.exp(x.astype(np.float64)), dtype, "d expm1(x) / dx")


@given(data=st.data(), dtype=st.sampled_from(FLOATS))
def test_sigmoid_gradient_keeps_its_relative_accuracy_at_large_magnitudes(data, dtype):
    # sigmoid'(x) = sigmoid(x) sigmoid(-x) ~ exp(-|x|): 1 - sigmoid(x) would round to 0
    # for x > -log eps. Both signs, up to where exp(-|x|) leaves the normal range.
    lowest = -math.log(float(np.finfo(dtype).eps))
    highest = -math.log(float(np.finfo(dtype).tiny)) - 1
    magnitude = data.draw(_in_dtype(dtype, min_value=lowest, max_value=highest), label="|x|")
    signs = data.draw(hnp.arrays(np.bool_, magnitude.shape), label="negative")
    x = np.where(signs, -magnitude, magnitude).astype(dtype)
    g = tg.grad(lambda t: tg.sum(tg.sigmoid(t)))(x)
    e = np.exp(-np.abs(x.astype(np.float64)))
    _assert_relative(g, e / (1 + e) ** 2, dtype, "d sigmoid(x) / dx")


@given(
    data=st.data(),
    dtype=st.sampled_from(FLOATS),
    reduction=st.sampled_from(["max", "min"]),
    keepdims=st.booleans(),
)
def test_a_nan_is_the_extremum_of_its_slice_and_takes_the_gradient(
    data, dtype, reduction, keepdims
):
    shape = data.draw(tst.shapes(min_dims=1), label="shape")
    x = data.draw(tst.float_arrays(shape, dtype=dtype, min_gap=0.05), label="x")
    nan_at = data.draw(st.tuples(*[st.integers(0, n - 1) for n in shape]), label="NaN at")
    x[nan_at] = np.nan
    axis = data.draw(tst.axes(len(shape)), label="axis")
    op = tg.max if reduction == "max" else tg.min
    out, vjp_fn = tg.vjp(lambda t: op(t, axis=axis, keepdims=keepdims), x)
    c = data.draw(tst.float_arrays(np.shape(out), dtype=dtype, min_value=0.5), label="cotangent")
    (g,) = vjp_fn(c)
    # Expected: each slice's cotangent lands on its NaN if it has one, else on its extremum.
    axes = _normalized_axes(axis, len(shape))
    kept = [i for i in range(len(shape)) if i not in axes]
    moved = np.moveaxis(x.astype(np.float64), axes, range(len(kept), len(shape)))
    flat = moved.reshape(*moved.shape[: len(kept)], -1)
    pick = np.where(
        np.isnan(flat).any(-1),
        np.argmax(np.isnan(flat), -1),
        (np.argmax if reduction == "max" else np.argmin)(np.nan_to_num(flat, nan=0.0), -1),
    )
    c_kept = np.reshape(np.asarray(c, np.float64), moved.shape[: len(kept)])
    expected_flat = np.zeros(flat.shape)
    np.put_along_axis(expected_flat, pick[..., None], c_kept[..., None], -1)
    expected = np.moveaxis(expected_flat.reshape(moved.shape), range(len(kept), len(shape)), axes)
    np.testing.assert_array_equal(np.asarray(g, np.float64), expected.astype(dtype))


# Elementwise ops, with the domain their finite inputs are drawn from.
ELEMENTWISE: dict[str, tuple[int, Callable[..., Any], float, float]] = {
    "exp": (1, tg.exp, -2.0, 2.0),
    "tanh": (1, tg.tanh, -2.0, 2.0),
    "sigmoid": (1, tg.sigmoid, -2.0, 2.0),
    "square": (1, tg.square, -2.0, 2.0),
    "neg": (1, tg.neg, -2.0, 2.0),
    "abs": (1, tg.absolute, 0.25, 2.0),
    "sqrt": (1, tg.sqrt, 0.25, 2.0),
    "log": (1, tg.log, 0.25, 2.0),
    "log1p": (1, tg.log1p, -0.5, 2.0),
    "expm1": (1, tg.expm1, -2.0, 2.0),
    "x ** 3": (1, lambda x: x**3, -2.0, 2.0),
    "x + y": (2, lambda x, y: x + y, -2.0, 2.0),
    "x - y": (2, lambda x, y: x - y, -2.0, 2.0),
    "x * y": (2, lambda x, y: x * y, -2.0, 2.0),
    "x / y": (2, lambda x, y: x / y, 0.5, 2.0),
    "x ** y": (2, lambda x, y: x**y, 0.5, 2.0),
    "maximum": (2, tg.maximum, -2.0, 2.0),
    "where": (2, lambda x, y: tg.where(MASK[0], x, y), -2.0, 2.0),
}


@given(
    data=st.data(),
    name=st.sampled_from(sorted(ELEMENTWISE)),
    special=st.sampled_from([np.nan, np.inf, -np.inf]),
    dtype=st.sampled_from(FLOATS[:2]),
    operand=st.integers(0, 1),
)
def test_a_non_finite_element_leaves_the_other_elements_gradients_alone(
    data, name, special, dtype, operand
):
    arity, op, low, high = ELEMENTWISE[name]
    size = 3  # the width of MASK's rows, for `where`
    # maximum is a kink where its operands tie: keep them 0.05 apart (all values distinct).
    values = data.draw(
        tst.float_arrays((arity, size), dtype=dtype, min_value=low, max_value=high, min_gap=0.05),
        label="operands",
    )
    at = data.draw(st.integers(0, size - 1), label="non-finite element")
    operand = min(operand, arity - 1)
    poisoned = values.copy()
    poisoned[operand, at] = special
    c = data.draw(tst.float_arrays((size,), dtype=dtype, min_value=0.5), label="cotangent")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        _, vjp_fn = tg.vjp(op, *poisoned)
        grads = vjp_fn(c)
    others = np.arange(size) != at
    # Elementwise: element i's gradient depends on element i alone, so the reference is the
    # gradient of the same op on the finite elements only.
    reference = numerical_grad(
        lambda *a: (
            tg.sum(op(*a) * c[others])
            if name != "where"
            else tg.sum(tg.where(MASK[0][others], *a) * c[others])
        ),
        tuple(v[others] for v in values),
    )
    for k, (g, r) in enumerate(zip(grads, reference, strict=True)):
        _assert_close(g[others], r, default_tolerance(dtype), f"operand {k} of {name}")
