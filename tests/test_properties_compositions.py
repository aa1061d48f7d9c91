"""Random programs built from the op set have correct first and second derivatives.

Hypothesis writes small straight-line programs: each step applies one op
(elementwise, broadcasting binary, matmul, reduction with keepdims, softmax,
indexing, shape ops, maximum/minimum/clip/where, cross-entropy) to earlier
registers, and the last register is the output. Every register is 2-D with
sides n or 1, so any two broadcast against each other. ``check_grads(order=2)``
then checks the whole program, through the ops' VJPs composed and nested.

A program is kept only if it is well-conditioned for finite differences at its
inputs, checked on the actual values while it is drawn (``assume``):

* every intermediate is finite and at most ``VALUE_CAP`` in size, so the float64
  difference error stays near 1e-9 (|f|, |f'''| of order 10 to 1e3);
* every kink or tie is at least ``KINK_MARGIN`` away: relu/abs/where inputs from
  0, clip inputs from its bounds, maximum/minimum operands from each other, and
  the two largest (smallest) entries of a max (min) from each other. The input
  step is at most 2e-5 and must be amplified 2500-fold to cross such a margin
  (no op amplifies by more than ~60 = n * VALUE_CAP, and it takes a chain of several such);
* log, sqrt and pow get positive arguments by construction (``a * a + 0.5``),
  and division a denominator ``b * b + 0.5 >= 0.5``.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np.testing import check_grads
from tinygrad_np.testing import strategies as tst

VALUE_CAP = 20.0
KINK_MARGIN = 0.05
MAX_STEPS = 6


def _top_two_gap(x, axis, largest):
    if x.shape[axis] < 2:
        return np.inf
    ordered = np.sort(x, axis=axis)
    ordered = np.flip(ordered, axis) if largest else ordered
    first, second = np.take(ordered, 0, axis), np.take(ordered, 1, axis)
    return float(np.min(np.abs(first - second)))


def _distance_to_zero(x):
    return float(np.min(np.abs(x)))


@dataclass(frozen=True)
class Op:
    """One kind of step: how to apply it, and how far its inputs are from a kink."""

    arity: int
    apply: object  # (param, *registers) -> register
    params: object = None  # strategy of the static parameter (axis, orientation...)
    margin: object = None  # (param, *float64 inputs) -> distance to the nearest kink


def _matmul(orientation, a, b):
    transpose_a, transpose_b = orientation
    return (a.T if transpose_a else a) @ (b.T if transpose_b else b)


OPS = {
    "neg": Op(1, lambda p, a: -a),
    "exp": Op(1, lambda p, a: tg.exp(a)),
    "tanh": Op(1, lambda p, a: tg.tanh(a)),
    "sigmoid": Op(1, lambda p, a: tg.sigmoid(a)),
    "relu": Op(1, lambda p, a: tg.relu(a), margin=lambda p, a: _distance_to_zero(a)),
    "absolute": Op(1, lambda p, a: tg.absolute(a), margin=lambda p, a: _distance_to_zero(a)),
    "log": Op(1, lambda p, a: tg.log(a * a + 0.5)),
    "sqrt": Op(1, lambda p, a: tg.sqrt(tg.square(a) + 0.5)),
    "cube": Op(1, lambda p, a: a**3),
    "transpose": Op(1, lambda p, a: a.T),
    "reshape": Op(1, lambda p, a: tg.reshape(a, shape=a.shape[::-1])),
    "broadcast": Op(1, lambda p, a: tg.broadcast_to(a, shape=(p, p))),  # p = n, set when drawn
    "sum": Op(1, lambda p, a: tg.sum(a, axis=p, keepdims=True), params=st.sampled_from([0, 1])),
    "mean": Op(1, lambda p, a: a.mean(p, keepdims=True), params=st.sampled_from([0, 1])),
    "logsumexp": Op(
        1, lambda p, a: tg.logsumexp(a, axis=p, keepdims=True), params=st.sampled_from([0, 1])
    ),
    "max": Op(
        1,
        lambda p, a: tg.max(a, axis=p, keepdims=True),
        params=st.sampled_from([0, 1]),
        margin=lambda p, a: _top_two_gap(a, p, largest=True),
    ),
    "min": Op(
        1,
        lambda p, a: tg.min(a, axis=p, keepdims=True),
        params=st.sampled_from([0, 1]),
        margin=lambda p, a: _top_two_gap(a, p, largest=False),
    ),
    "softmax": Op(1, lambda p, a: tg.softmax(a, axis=p), params=st.sampled_from([0, 1, -1])),
    "log_softmax": Op(1, lambda p, a: tg.log_softmax(a, axis=p), params=st.sampled_from([0, -2])),
    "reverse": Op(
        1, lambda p, a: a[::-1] if p == 0 else a[:, ::-1], params=st.sampled_from([0, 1])
    ),
    # Integer-array indexing with a repeated row: its VJP must accumulate.
    "gather": Op(1, lambda p, a: a[np.minimum(np.arange(a.shape[0]) + 1, a.shape[0] - 1)]),
    "clip": Op(
        1,
        lambda p, a: tg.clip(a, -0.5, 0.5),
        margin=lambda p, a: min(_distance_to_zero(a - 0.5), _distance_to_zero(a + 0.5)),
    ),
    "cross_entropy": Op(
        1,
        lambda p, a: tg.reshape(
            tg.nn.cross_entropy(a, np.arange(a.shape[0]) % a.shape[1]), shape=(1, 1)
        ),
    ),
    "add": Op(2, lambda p, a, b: a + b),
    "sub": Op(2, lambda p, a, b: tg.sub(a, b)),
    "mul": Op(2, lambda p, a, b: a * b),
    "div": Op(2, lambda p, a, b: a / (b * b + 0.5)),
    "pow": Op(2, lambda p, a, b: (a * a + 0.5) ** b),
    "matmul": Op(2, _matmul),  # orientation chosen when drawn, from the shapes
    "maximum": Op(
        2, lambda p, a, b: tg.maximum(a, b), margin=lambda p, a, b: _distance_to_zero(a - b)
    ),
    "minimum": Op(
        2, lambda p, a, b: tg.minimum(a, b), margin=lambda p, a, b: _distance_to_zero(a - b)
    ),
    "where": Op(
        2, lambda p, a, b: tg.where(a > 0, a, b), margin=lambda p, a, b: _distance_to_zero(a)
    ),
}


@dataclass(frozen=True)
class Step:
    op: str
    operands: tuple[int, ...]
    param: object = None

    def __repr__(self):
        return f"{self.op}{self.operands}" + ("" if self.param is None else f"[{self.param!r}]")


@dataclass
class Program:
    """Straight-line code: registers 0..k-1 are the inputs, each step appends one."""

    num_inputs: int
    steps: list[Step] = field(default_factory=list)

    def __call__(self, *inputs):
        registers = list(inputs)
        for step in self.steps:
            operands = [registers[i] for i in step.operands]
            registers.append(OPS[step.op].apply(step.param, *operands))
        return registers[-1]

    def __repr__(self):
        lines = [f"inputs r0..r{self.num_inputs - 1}"]
        for k, step in enumerate(self.steps, start=self.num_inputs):
            lines.append(f"r{k} = {step!r}")
        return "; ".join(lines)


def _matmul_orientations(a_shape, b_shape):
    return [
        (ta, tb)
        for ta in (False, True)
        for tb in (False, True)
        if (a_shape[::-1] if ta else a_shape)[1] == (b_shape[::-1] if tb else b_shape)[0]
    ]


@st.composite
def programs_and_inputs(draw, dtype):
    """A well-conditioned random program and inputs for it (see the module docstring)."""
    n = draw(st.integers(2, 3))
    sides = st.sampled_from([(n, n), (n, 1), (1, n)])
    num_inputs = draw(st.integers(1, 3))
    inputs = tuple(draw(tst.float_arrays(draw(sides), dtype=dtype)) for _ in range(num_inputs))
    program = Program(num_inputs)
    registers = [x.astype(np.float64) for x in inputs]  # values the guards are checked on
    for _ in range(draw(st.integers(2, MAX_STEPS))):
        name = draw(st.sampled_from(sorted(OPS)))
        op = OPS[name]
        # Counted back from the newest register, so shrinking favours deep chains.
        operands = tuple(
            len(registers) - 1 - draw(st.integers(0, len(registers) - 1)) for _ in range(op.arity)
        )
        if name == "matmul":
            a, b = (registers[i] for i in operands)
            orientations = _matmul_orientations(a.shape, b.shape)
            if not orientations:  # a @ a.T always exists
                operands, orientations = (operands[0], operands[0]), [(False, True)]
            param = draw(st.sampled_from(orientations))
        elif name == "broadcast":
            param = n
        else:
            param = draw(op.params) if op.params is not None else None
        values = [registers[i] for i in operands]
        if op.margin is not None:
            assume(op.margin(param, *values) >= KINK_MARGIN)
        out = np.asarray(op.apply(param, *values), dtype=np.float64)
        assume(bool(np.all(np.isfinite(out))) and float(np.max(np.abs(out))) <= VALUE_CAP)
        program.steps.append(Step(name, operands, param))
        registers.append(out)
    return program, inputs


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@given(data=st.data())
def test_random_programs_have_correct_first_and_second_derivatives(dtype, data):
    program, inputs = data.draw(programs_and_inputs(dtype), label="program, inputs")
    check_grads(program, inputs, order=2)


def test_every_op_of_the_generator_alone_has_correct_derivatives():
    # Each op as a one-step program at hand-picked, well-conditioned inputs.
    x = np.array([[0.3, -1.2], [0.9, 1.7]])
    y = np.array([[0.6], [-0.8]])
    for name, op in OPS.items():
        operands = (0,) if op.arity == 1 else (0, 1)
        param = {"matmul": (False, False), "broadcast": 2}.get(name)
        if param is None and op.params is not None:
            param = 0
        program = Program(2, [Step(name, operands, param)])
        check_grads(program, (x, y), order=2)
