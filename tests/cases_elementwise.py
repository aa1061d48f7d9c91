"""Cases for tests/test_numpy_coverage.py: elementwise functions (see tests/numpy_cases.py).

Inputs are conditioned for finite differences as in tests/test_properties_ops.py: values
bounded so that |f| and |f'''| stay below a few hundred (float64 difference error below
~1e-8, against check_grads' 1e-6), kinks and ties at least 0.05 away (KINK_MARGIN), poles
at least 0.2 away (POLE_MARGIN). Shapes are small (at most 3 per side): the element count
sets the cost of a finite-difference gradient, and every rank and broadcast still occurs.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy_cases import OpCase

import tinygrad_np as tg
from tinygrad_np.testing import strategies as tst

KINK_MARGIN = 0.05
POLE_MARGIN = 0.2
MAX_SIDE = 3


def shapes():
    return tst.shapes(max_side=MAX_SIDE)


def broadcast_shapes(count):
    return tst.broadcastable_shapes(count, max_side=MAX_SIDE)


def unary(low, high, min_magnitude=0.0):
    """Draw one array with values in [low, high] (and |x| >= min_magnitude)."""

    def draw(data, dtype):
        x = data.draw(
            tst.float_arrays(
                shapes(), dtype=dtype, min_value=low, max_value=high, min_magnitude=min_magnitude
            )
        )
        return (x,), {}

    return draw


def binary(first=None, second=None):
    """Draw two arrays of broadcastable shapes; ``first``/``second`` are float_arrays bounds."""

    def draw(data, dtype):
        drawn = data.draw(broadcast_shapes(2))
        x = data.draw(tst.float_arrays(drawn.input_shapes[0], dtype=dtype, **(first or {})))
        y = data.draw(tst.float_arrays(drawn.input_shapes[1], dtype=dtype, **(second or {})))
        return (x, y), {}

    return draw


def untied(count):
    """Draw ``count`` arrays of broadcastable shapes whose values are all 0.05 apart (no ties)."""

    def draw(data, dtype):
        drawn = data.draw(broadcast_shapes(count)).input_shapes
        sizes = [int(np.prod(shape)) for shape in drawn]
        # Up to 3 * 27 values 0.05 apart need a range of 4.05: [-2.1, 2.1] holds them.
        pool = data.draw(
            tst.float_arrays(
                sum(sizes), dtype=dtype, min_value=-2.1, max_value=2.1, min_gap=KINK_MARGIN
            )
        )
        parts = np.split(pool, np.cumsum(sizes)[:-1])
        return tuple(part.reshape(shape) for part, shape in zip(parts, drawn, strict=True)), {}

    return draw


def remainder_arguments(data, dtype):
    """``x`` and ``y`` with ``x / y`` at least 0.1 from an integer: remainder is smooth there.

    ``x = (k + f) * y`` with an integer ``k`` in [-3, 3] and ``f`` in [0.1, 0.9]; ``x`` takes
    the broadcast shape and ``y`` any shape that broadcasts to it. ``|y|`` in [0.5, 2].
    """
    drawn = data.draw(broadcast_shapes(2))
    y = data.draw(
        tst.float_arrays(drawn.input_shapes[1], min_value=-2.0, max_value=2.0, min_magnitude=0.5)
    )
    whole = data.draw(hnp.arrays(np.int64, drawn.result_shape, elements=st.integers(-3, 3)))
    fraction = data.draw(tst.float_arrays(drawn.result_shape, min_value=0.1, max_value=0.9))
    x = (whole + fraction) * y
    return (x.astype(dtype), y.astype(dtype)), {}


def where_arguments(data, dtype):
    drawn = data.draw(broadcast_shapes(3))
    condition = data.draw(hnp.arrays(np.bool_, drawn.input_shapes[0]))
    x = data.draw(tst.float_arrays(drawn.input_shapes[1], dtype=dtype))
    y = data.draw(tst.float_arrays(drawn.input_shapes[2], dtype=dtype))
    return (condition, x, y), {}


def select_arguments(data, dtype):
    """1 to 3 boolean conditions and float choices, all of broadcastable shapes, and a
    default: a float array (differentiated) or a number."""
    count = data.draw(st.integers(1, 3))
    drawn = data.draw(broadcast_shapes(2 * count + 1)).input_shapes
    conditions = [data.draw(hnp.arrays(np.bool_, shape)) for shape in drawn[:count]]
    choices = [data.draw(tst.float_arrays(shape, dtype=dtype)) for shape in drawn[count:-1]]
    if data.draw(st.booleans()):
        return (conditions, choices, data.draw(tst.float_arrays(drawn[-1], dtype=dtype))), {}
    return (conditions, choices), {"default": data.draw(st.sampled_from([0, 0.5, -2.0]))}


def clip_to_constant_bounds(data, dtype):
    # Values on both sides of both bounds, 0.05 away from them: the mask never flips.
    x = data.draw(tst.float_arrays(shapes(), dtype=dtype, avoid=(-0.5, 0.5), margin=KINK_MARGIN))
    return (x, -0.5, 0.5), {}


def power_of_a_positive_base(data, dtype):
    # A base >= 0.5 keeps log(x) and x**y smooth; |x**y| <= 4.
    return binary({"min_value": 0.5}, {})(data, dtype)


def torch_only(name):
    return lambda torch: getattr(torch, name)


def jnp_only(name):
    return lambda jnp: getattr(jnp, name)


def case(function, draw, torch=None, **options):
    """A case whose JAX function is ``jnp.<same name>`` and PyTorch's ``torch.<torch>``."""
    name = function.__name__
    return OpCase(
        function,
        draw,
        torch=None if torch is None else torch_only(torch),
        jax=jnp_only(name),
        **options,
    )


SMOOTH = unary(-4, 4)

CASES = [
    # arithmetic, with broadcasting
    case(np.add, binary(), torch="add"),
    case(np.subtract, binary(), torch="sub", tg_function=tg.sub),
    case(np.multiply, binary(), torch="mul", tg_function=tg.mul),
    # |y| >= 0.5: 1/y and its derivatives 1/y**2, 2/y**3 stay below 16.
    case(np.divide, binary({}, {"min_magnitude": 0.5}), torch="div", tg_function=tg.div),
    case(np.negative, SMOOTH, torch="neg", tg_function=tg.neg),
    case(np.power, power_of_a_positive_base, torch="pow", tg_function=tg.pow),
    case(np.reciprocal, unary(-4, 4, min_magnitude=0.5), torch="reciprocal"),
    case(np.remainder, remainder_arguments),  # torch.remainder has no gradient in its divisor
    # exponentials and logarithms; log'''(x) = 2/x**3 <= 250 for x >= 0.2
    case(np.exp, SMOOTH, torch="exp"),
    case(np.exp2, SMOOTH, torch="exp2"),
    case(np.expm1, SMOOTH, torch="expm1"),
    case(np.log, unary(POLE_MARGIN, 4), torch="log"),
    case(np.log2, unary(POLE_MARGIN, 4), torch="log2"),
    case(np.log10, unary(POLE_MARGIN, 4), torch="log10"),
    case(np.log1p, unary(-1 + POLE_MARGIN, 4), torch="log1p"),
    case(np.logaddexp, binary({"min_value": -4, "max_value": 4}), torch="logaddexp"),
    case(np.logaddexp2, binary({"min_value": -4, "max_value": 4}), torch="logaddexp2"),
    case(np.sqrt, unary(POLE_MARGIN, 4), torch="sqrt"),  # sqrt'''(x) ~ x**-2.5 <= 56
    case(np.square, SMOOTH, torch="square"),
    # trigonometry: bounded with all derivatives; tan, arcsin, arccos, arctanh 0.37 or more
    # inside their poles (tan''' <= 320 on [-1.2, 1.2], arctanh''' <= 130 on [-0.8, 0.8])
    case(np.sin, SMOOTH, torch="sin"),
    case(np.cos, SMOOTH, torch="cos"),
    case(np.tan, unary(-1.2, 1.2), torch="tan"),
    case(np.arcsin, unary(-0.8, 0.8), torch="asin"),
    case(np.arccos, unary(-0.8, 0.8), torch="acos"),
    case(np.arctan, SMOOTH, torch="atan"),
    # arctan2(x1, x2) jumps on x1 = 0, x2 <= 0: |x1| >= 0.5 keeps away from that cut.
    case(np.arctan2, binary({"min_magnitude": 0.5}, {}), torch="atan2"),
    case(np.hypot, binary({"min_magnitude": 0.5}, {}), torch="hypot"),  # r >= 0.5
    case(np.sinh, unary(-3, 3), torch="sinh"),
    case(np.cosh, unary(-3, 3), torch="cosh"),
    case(np.tanh, SMOOTH, torch="tanh"),
    case(np.arcsinh, SMOOTH, torch="asinh"),
    case(np.arccosh, unary(1 + POLE_MARGIN, 4), torch="acosh"),  # arccosh''' <= 30
    case(np.arctanh, unary(-0.8, 0.8), torch="atanh"),
    # Smooth through 0, which the range includes. No torch/jax: near 0 their derivatives
    # cancel (torch gives 0 at 1e-10, JAX -1.5e-6 where -3.3e-10 is right, -inf below 1e-160).
    OpCase(np.sinc, SMOOTH),
    case(np.deg2rad, SMOOTH, torch="deg2rad"),
    case(np.radians, SMOOTH, torch="deg2rad"),
    case(np.rad2deg, SMOOTH, torch="rad2deg"),
    case(np.degrees, SMOOTH, torch="rad2deg"),
    # kinks and ties kept 0.05 away
    case(np.absolute, unary(-2, 2, min_magnitude=KINK_MARGIN), torch="abs"),
    case(np.fabs, unary(-2, 2, min_magnitude=KINK_MARGIN), torch="abs"),
    case(np.maximum, untied(2), torch="maximum"),
    case(np.minimum, untied(2), torch="minimum"),
    case(np.fmax, untied(2), torch="fmax"),
    case(np.fmin, untied(2), torch="fmin"),
    case(np.clip, clip_to_constant_bounds, method="clip", torch="clip"),
    OpCase(np.clip, untied(3), id="clip[array bounds]", method="clip", jax=jnp_only("clip")),
    case(np.where, where_arguments, torch="where"),
    case(np.select, select_arguments),
    # NaN and infinities never reach a finite difference: finite values, where it is x itself
    case(np.nan_to_num, SMOOTH, torch="nan_to_num"),
    # real input only: real and conj are x, imag is 0
    case(np.real, SMOOTH, torch="real"),
    OpCase(np.real_if_close, SMOOTH),  # jax.numpy has no real_if_close
    case(np.imag, SMOOTH),  # torch.imag refuses real tensors
    case(np.conj, SMOOTH, method="conj", torch="conj"),
]
