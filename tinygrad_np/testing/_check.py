"""``check_grads``: the engine's derivatives against finite differences.

First order: the engine's vector-Jacobian product ``J^T c`` for a random
cotangent ``c`` (``c = 1`` for a scalar output) is compared, element by element,
with the central-difference gradient of ``x -> sum(c * f(x))`` computed in
float64. Second order: for random directions ``v``, the engine's
Hessian-vector product (reverse over reverse) is compared with the central
difference of the engine's own first-order gradient along ``v``, again in
float64. Randomness comes from one seeded generator, so a failure reproduces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_np import reductions
from tinygrad_np.tensor import stop_gradient
from tinygrad_np.testing._arguments import Arguments, least_precise_dtype
from tinygrad_np.testing._numerical import (
    central_differences,
    checked_eps,
    directional_difference,
    one_sided_difference,
)
from tinygrad_np.testing._projections import DEFAULT_DIRECTIONS, STEP_DIVISORS, Projections
from tinygrad_np.transforms import grad, jvp, linearize, vjp
from tinygrad_np.tree import TreeDef, path_str, tree_flatten, tree_paths, tree_unflatten

__all__ = ["check_grads", "default_tolerance"]

Array = np.ndarray[Any, Any]

SUPPORTED_MODES = ("fwd", "rev")
METHODS = ("auto", "projection", "elementwise")
# "auto" checks element by element up to this many input elements: 2 evaluations of f per
# element, against ~7 per direction for projections (4 for the Richardson difference, and
# the engine's VJP and JVP), so below ~50 elements the exact per-element check is as cheap.
ELEMENTWISE_UP_TO = 50
SECOND_ORDER_DIRECTIONS = 2


def default_tolerance(dtype: Any) -> float:
    """The default ``rtol`` and ``atol`` of a check whose least precise input is ``dtype``.

    float64 (1e-6): the engine's own rounding, ~kappa * 1.1e-16, is negligible, so
    the bound is set by the float64 finite differences, whose error is about
    1e-11 * (kappa |f| + |f'''|) at the default eps (see ``_numerical``). 1e-6
    leaves five orders of magnitude for larger values and curvature, while a wrong
    VJP is off by a relative O(1) and any error above 1e-6 is caught.

    float32 (1000 * finfo.eps = 1.2e-4): the reference is still float64 (the
    inputs are promoted exactly), so what differs is the engine's float32
    rounding: about depth * kappa * u with u = 2**-24 ~ 6e-8 relative to the sizes
    involved. 1.2e-4 ~ 2000 u allows depth * kappa ~ 2000 (e.g. 20 ops at
    condition 100) and still catches a 0.1% error in a VJP. Other dtypes get the
    same 1000 eps rule, never below the float64 floor of 1e-6, and never above 2e-2:
    a check must still catch a VJP that is a few percent off. That cap is what
    float16 gets (1000 eps would be 0.98, passing anything): 2e-2 ~ 40 u with u =
    2**-11, room for shallow, well-conditioned checks (depth * kappa ~ 40); pass an
    explicit ``rtol``/``atol`` for deeper float16 computations.
    """
    return min(2e-2, max(1e-6, 1000 * float(np.finfo(np.dtype(dtype)).eps)))


@dataclass(frozen=True)
class _Tolerance:
    rtol: float
    atol: float
    dtype: np.dtype[Any]
    eps: float
    seed: int

    def describe(self) -> str:
        return (
            f"[least precise dtype {self.dtype}, eps {self.eps:g}, rtol {self.rtol:g}, "
            f"atol {self.atol:g}, seed {self.seed}]"
        )


def _checked_tolerance(value: float | None, name: str, default: float) -> float:
    if value is None:
        return default
    if not (isinstance(value, int | float | np.floating) and np.isfinite(value) and value >= 0):
        raise ValueError(f"check_grads: {name} must be a non-negative finite float, got {value!r}")
    return float(value)


def _checked_modes(modes: Sequence[str] | str) -> tuple[str, ...]:
    names = (modes,) if isinstance(modes, str) else tuple(modes)
    if not names:
        raise ValueError("check_grads: modes is empty; pass modes=('rev',)")
    for mode in names:
        if mode not in SUPPORTED_MODES:
            raise ValueError(
                f"check_grads: mode {mode!r} is not supported; modes is a sequence of "
                f"{SUPPORTED_MODES}"
            )
    return names


def _float_outputs(out: Any) -> tuple[list[Array], TreeDef]:
    leaves, treedef = tree_flatten(out)
    values = []
    for path, leaf in zip(tree_paths(out), leaves, strict=True):
        value = np.asarray(stop_gradient(leaf))
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(
                f"check_grads: f's output{path_str(path) if path else ''} has dtype "
                f"{value.dtype}; only floating-point outputs have gradients to check"
            )
        values.append(value)
    return values, treedef


def _random_cotangent(outputs: list[Array], rng: np.random.Generator) -> list[Array]:
    """``1`` for a lone scalar output, else standard normal entries in each output's dtype.

    A random cotangent makes one VJP check every output: a bug would have to be
    orthogonal to a random vector to slip through.
    """
    if len(outputs) == 1 and outputs[0].shape == ():
        return [np.ones((), outputs[0].dtype)]
    return [np.asarray(rng.standard_normal(out.shape), dtype=out.dtype) for out in outputs]


def _random_direction(values: list[Array], rng: np.random.Generator) -> list[Array]:
    """Standard normal entries scaled to max |v| = 1, in each leaf's dtype."""
    direction = [np.asarray(rng.standard_normal(value.shape)) for value in values]
    largest = max([0.0, *(float(np.max(np.abs(d))) for d in direction if d.size)])
    scale = 1.0 / largest if largest > 0 else 1.0
    return [(d * scale).astype(value.dtype) for d, value in zip(direction, values, strict=True)]


def _engine_failure(
    what: str, exc: Exception, arguments: Arguments, tolerance: _Tolerance
) -> AssertionError:
    shapes = ", ".join(
        f"{name} {value.shape}"
        for name, value in zip(arguments.names, arguments.values, strict=True)
    )
    return AssertionError(
        f"check_grads: the engine failed while computing the {what}: "
        f"{type(exc).__name__}: {exc}. The forward pass ran, so a VJP is broken "
        f"(for instance it returns a gradient of the wrong shape; the arguments are "
        f"{shapes}). {tolerance.describe()}"
    )


def _engine_leaves(grads: Any, arguments: Arguments, what: str, tolerance: _Tolerance) -> list[Any]:
    """The engine's per-argument gradients as a flat list, after checking their structure."""
    leaves, treedef = tree_flatten(tuple(grads))
    expected = TreeDef("tuple", (), tuple(arguments.treedefs))
    if treedef != expected:
        raise AssertionError(
            f"check_grads: the engine's {what} has structure {treedef}, but the arguments "
            f"have {expected} {tolerance.describe()}"
        )
    return leaves


def _compare(
    engine: Sequence[Any],
    reference: Sequence[Array],
    names: Sequence[str],
    what: str,
    reference_what: str,
    tolerance: _Tolerance,
) -> None:
    """Raise AssertionError at the worst element where ``|engine - reference|`` is too big.

    An element passes when ``|engine - reference| <= atol + rtol * |reference|``
    (NaN never passes). The worst element is the one with the largest ratio of
    difference to allowed difference, over all leaves.
    """
    worst: tuple[float, int, tuple[int, ...], float, float, float, int] | None = None
    for k, (computed, expected) in enumerate(zip(engine, reference, strict=True)):
        value = np.asarray(stop_gradient(computed))
        if value.shape != expected.shape:
            raise AssertionError(
                f"check_grads: the engine's {what} for {names[k]} has shape {value.shape}, "
                f"but {names[k]} has shape {expected.shape} {tolerance.describe()}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise AssertionError(
                f"check_grads: the engine's {what} for {names[k]} has dtype {value.dtype}, "
                f"not a floating dtype {tolerance.describe()}"
            )
        diff = np.abs(value.astype(np.float64) - expected)
        allowed = tolerance.atol + tolerance.rtol * np.abs(expected)
        bad = ~(diff <= allowed)
        if not bad.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bad, diff / allowed, 0.0)
        ratio = np.where(bad & ~(ratio > 1), np.inf, ratio)  # NaN, or allowed == 0
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
        candidate = (
            float(ratio[index]),
            k,
            index,
            float(value[index]),
            float(expected[index]),
            float(allowed[index]),
            int(bad.sum()),
        )
        if worst is None or candidate[0] > worst[0]:
            worst = candidate
    if worst is None:
        return
    _, k, index, computed_value, expected_value, allowed_value, count = worst
    size = int(np.asarray(reference[k]).size)
    raise AssertionError(
        f"check_grads: {what} mismatch at {names[k]}, element {index}: "
        f"engine {computed_value:.10g}, {reference_what} {expected_value:.10g}; "
        f"|difference| {abs(computed_value - expected_value):.3g} exceeds the tolerance "
        f"{allowed_value:.3g} (atol + rtol * |{reference_what}|); {count} of {size} "
        f"elements of {names[k]} are out of tolerance {tolerance.describe()}"
    )


def check_grads(
    f: Callable[..., Any],
    args: Any,
    order: int = 1,
    modes: Sequence[str] | str = ("fwd", "rev"),
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    seed: int = 0,
    num_directions: int | None = None,
    method: str = "auto",
) -> None:
    """Check the engine's derivatives of ``f`` at ``args`` against finite differences.

    ``args`` is the tuple (or list) of ``f``'s positional arguments; each may be a
    pytree (dict, list, tuple) of floating-point arrays, and every leaf is checked.
    A bare array is accepted as the only argument: ``check_grads(f, x)`` is
    ``check_grads(f, (x,))``. Integer data (labels) does not belong in ``args``:
    close over it, ``check_grads(lambda p: loss(p, X, y), (params,))``.

    ``f`` may return any pytree of float arrays. ``modes`` names what is checked:
    ``"rev"``, the engine's vector-Jacobian products with random cotangents (the
    gradient, for a scalar output), and ``"fwd"``, its Jacobian-vector products (the
    default is both, as in JAX). The reference is always central differences of ``f`` in
    float64: float32 inputs are promoted exactly for the numerical side, so the
    comparison measures the engine's float32 rounding, and the default tolerance
    reflects it (see :func:`default_tolerance`).

    ``method`` chooses how first order is compared:

    * ``"elementwise"``: every element of the VJP against its own central difference
      (two evaluations of ``f`` per input element), and JVPs along ``num_directions``
      (default 2) random directions output element by output element. Exact, and slow
      for large inputs.
    * ``"projection"``: ``num_directions`` (default 15) random projections ``<v, J u>``,
      four evaluations of ``f`` each, re-measured at smaller steps before a mismatch
      counts (so kinks crossed by the step are not false alarms), then localized by
      bisection to the element whose derivative is wrong. What it can miss, and with
      what probability, is stated in ``tinygrad_np.testing._projections``: a VJP off by
      a relative ``10 * rtol`` everywhere escapes 15 directions with probability below
      1e-6; an error in a few of n elements is diluted by about sqrt(n).
    * ``"auto"`` (default): elementwise up to 50 input elements, where it is as cheap,
      projections above.

    With ``order=2`` the first-order check runs, then along ``num_directions`` (default
    2) random directions ``u`` the engine's Hessian-vector products (reverse over
    reverse for ``"rev"``, forward over reverse for ``"fwd"``) must match, element by
    element, the float64 difference of the engine's own gradient along ``u``; a
    mismatch is re-measured from each side of the input and at smaller steps, since a
    kink makes the gradient jump.

    An element passes when ``|engine - reference| <= atol + rtol * |reference|``;
    ``rtol`` and ``atol`` default to :func:`default_tolerance` of the least precise
    dtype among inputs and outputs, ``eps`` (the relative step) to 1e-5. ``seed``
    fixes the random cotangents and directions. Inputs exactly at a kink (a ``relu``
    input of exactly 0, a tie in a ``max``) have no derivative for the differences to
    confirm: keep inputs off kinks (``tinygrad_np.testing.strategies``' ``min_magnitude``
    and ``min_gap``).

    Raises AssertionError naming the leaf (``argument 0['W1']``), the element
    index of the worst (elementwise) or localized (projection) mismatch, both values
    and the tolerance; a VJP that fails
    outright (e.g. returns a wrong shape) is reported as AssertionError too.
    ValueError or TypeError mean the check itself was misused.
    """
    mode_names = _checked_modes(modes)
    if isinstance(order, bool) or not isinstance(order, int) or order not in (1, 2):
        raise ValueError(f"check_grads: order must be 1 or 2, got {order!r}")
    if num_directions is not None and (
        isinstance(num_directions, bool)
        or not (isinstance(num_directions, int) and num_directions >= 1)
    ):
        raise ValueError(f"check_grads: num_directions must be an int >= 1, got {num_directions!r}")
    if method not in METHODS:
        raise ValueError(f"check_grads: method must be one of {METHODS}, got {method!r}")
    step = checked_eps(eps, "check_grads")
    arguments = Arguments.from_args(args, "check_grads")
    if not arguments.values:
        raise ValueError("check_grads: args has no array leaves, so there is nothing to check")
    rng = np.random.default_rng(seed)

    out, vjp_fn = vjp(f, *arguments.positional)  # errors in f itself surface unchanged
    outputs, out_def = _float_outputs(out)
    dtype = least_precise_dtype([v.dtype for v in arguments.values] + [o.dtype for o in outputs])
    default = default_tolerance(dtype)
    tolerance = _Tolerance(
        _checked_tolerance(rtol, "rtol", default),
        _checked_tolerance(atol, "atol", default),
        dtype,
        step,
        seed,
    )
    leaves64 = [value.astype(np.float64) for value in arguments.values]
    size = sum(value.size for value in arguments.values)
    if method == "projection" or (method == "auto" and size > ELEMENTWISE_UP_TO):
        _check_projections(
            f,
            vjp_fn,
            arguments,
            outputs,
            out_def,
            leaves64,
            mode_names,
            num_directions or DEFAULT_DIRECTIONS,
            rng,
            tolerance,
            (rtol, atol),
        )
    else:
        if "rev" in mode_names:
            _check_reverse(f, vjp_fn, arguments, outputs, out_def, leaves64, rng, tolerance)
        if "fwd" in mode_names:
            _check_forward(
                f, arguments, outputs, out_def, leaves64, num_directions or 2, rng, tolerance
            )
    if order == 2:
        cotangent = _random_cotangent(outputs, rng)
        for mode in ("rev", "fwd"):
            if mode in mode_names:
                _check_second_order(
                    f,
                    arguments,
                    out_def,
                    cotangent,
                    leaves64,
                    num_directions or SECOND_ORDER_DIRECTIONS,
                    rng,
                    tolerance,
                    forward=mode == "fwd",
                )


def _check_projections(
    f: Callable[..., Any],
    vjp_fn: Callable[[Any], Any],
    arguments: Arguments,
    outputs: list[Array],
    out_def: TreeDef,
    leaves64: list[Array],
    modes: Sequence[str],
    num_directions: int,
    rng: np.random.Generator,
    tolerance: _Tolerance,
    given: tuple[float | None, float | None],
) -> None:
    """First order by random projections (tinygrad_np.testing._projections)."""
    scalar_output = len(outputs) == 1 and outputs[0].shape == ()
    rtol_given, atol_given = given

    def outputs64(leaves: list[Array]) -> list[Array]:
        values, treedef = _float_outputs(arguments.call(f, leaves))
        if treedef != out_def:
            raise ValueError("check_grads: f returned outputs of a different structure")
        return [v.astype(np.float64) for v in values]

    pullback = _puller(vjp_fn, out_def, arguments, leaves64, scalar_output, tolerance)

    scale = max([1.0, *(float(np.max(np.abs(x))) for x in leaves64 if x.size)])
    step = tolerance.eps * scale
    projections = [
        Projections(
            leaves64,
            arguments.names,
            outputs64,
            pullback,
            _pusher(f, arguments.positional, arguments, modes, tolerance),
            step,
            tolerance.rtol,
            tolerance.atol,
        )
    ]
    # Below float64 the same projections are also taken with the engine run in float64 on
    # the exactly promoted inputs: the float32 run is held to float32's tolerance, which
    # at rtol 1.2e-4 cannot reliably see a rule that is 0.1% off in part of the gradient
    # (module docstring of _projections); in float64 (rtol 1e-6) the rule itself is seen.
    # The differences are shared, so this costs the engine's VJPs and JVPs only.
    if any(value.dtype != np.float64 for value in arguments.values):
        positional64 = arguments.rebuild(leaves64)
        out64, vjp_fn64 = vjp(f, *positional64)
        outputs_64, _ = _float_outputs(out64)
        precise = default_tolerance(least_precise_dtype([o.dtype for o in outputs_64]))
        projections.append(
            Projections(
                leaves64,
                arguments.names,
                outputs64,
                _puller(vjp_fn64, out_def, arguments, leaves64, scalar_output, tolerance),
                _pusher(f, positional64, arguments, modes, tolerance),
                step,
                precise if rtol_given is None else rtol_given,
                precise if atol_given is None else atol_given,
            )
        )
    for d in range(num_directions):
        v = _random_cotangent(outputs, rng)
        u = _random_direction(arguments.values, rng)
        measured: dict[int, float] = {}
        for k, projection in enumerate(projections):
            v_k = v if k == 0 else [x.astype(np.float64) for x in v]
            u_k = u if k == 0 else [x.astype(np.float64) for x in u]
            mismatch = projection.check_direction(v_k, u_k, modes, measured)
            if mismatch is None:
                continue
            leaf, index, engine, reference, evaluations = projection.localize(
                v_k, u_k, mismatch.mode
            )
            if mismatch.mode == "fwd":
                what = "Jacobian-vector product (forward mode) <v, J u>"
            elif scalar_output:
                what = "gradient, projected: <grad, u>,"
            else:
                what = "vector-Jacobian product, projected: <J^T v, u>,"
            precision = " (the engine run in float64 on the promoted inputs)" if k else ""
            raise AssertionError(
                f"check_grads: {what} mismatch along random direction {d + 1} of "
                f"{num_directions}{precision}: engine {mismatch.engine:.10g}, finite "
                f"differences {mismatch.reference:.10g}; |difference| "
                f"{abs(mismatch.engine - mismatch.reference):.3g} exceeds the allowed "
                f"{mismatch.allowed:.3g} at every step tried ({_steps()}), so it is not a "
                f"kink crossing. Localized by bisection ({evaluations} evaluations of f) to "
                f"{arguments.names[leaf]}, element {index}: engine {engine:.10g}, finite "
                f"differences {reference:.10g} {tolerance.describe()}"
            )


def _puller(
    vjp_fn: Callable[[Any], Any],
    out_def: TreeDef,
    arguments: Arguments,
    leaves64: list[Array],
    scalar_output: bool,
    tolerance: _Tolerance,
) -> Callable[[list[Array]], list[Any]]:
    """The engine's VJP on flat lists: cotangent leaves -> gradient leaves."""
    what = "gradient" if scalar_output else "vector-Jacobian product"

    def pullback(v: list[Array]) -> list[Any]:
        try:
            grads = vjp_fn(tree_unflatten(out_def, v))
        except Exception as exc:
            raise _engine_failure(what, exc, arguments, tolerance) from exc
        engine = _engine_leaves(grads, arguments, what, tolerance)
        _compare_shapes(engine, leaves64, arguments.names, what, tolerance)
        return engine

    return pullback


def _pusher(
    f: Callable[..., Any],
    positional: tuple[Any, ...],
    arguments: Arguments,
    modes: Sequence[str],
    tolerance: _Tolerance,
) -> Callable[[list[Array]], list[Any]] | None:
    """The engine's JVP at ``positional`` on flat lists (None without forward mode)."""
    if "fwd" not in modes:
        return None
    what = "Jacobian-vector product"
    try:
        _, jvp_fn = linearize(f, *positional)
    except Exception as exc:
        raise _engine_failure(what, exc, arguments, tolerance) from exc

    def push(u: list[Array]) -> list[Any]:
        try:
            return tree_flatten(jvp_fn(*arguments.rebuild(u)))[0]
        except Exception as exc:
            raise _engine_failure(what, exc, arguments, tolerance) from exc

    return push


def _steps() -> str:
    return ", ".join("eps" if d == 1 else f"eps/{d}" for d in STEP_DIVISORS)


def _compare_shapes(
    engine: list[Any], leaves64: list[Array], names: list[str], what: str, tolerance: _Tolerance
) -> None:
    for k, (computed, expected) in enumerate(zip(engine, leaves64, strict=True)):
        shape = np.shape(stop_gradient(computed))
        if shape != expected.shape:
            raise AssertionError(
                f"check_grads: the engine's {what} for {names[k]} has shape {shape}, "
                f"but {names[k]} has shape {expected.shape} {tolerance.describe()}"
            )


def _check_reverse(
    f: Callable[..., Any],
    vjp_fn: Callable[[Any], Any],
    arguments: Arguments,
    outputs: list[Array],
    out_def: TreeDef,
    leaves64: list[Array],
    rng: np.random.Generator,
    tolerance: _Tolerance,
) -> None:
    """The VJP (random cotangent) element by element."""
    cotangent = _random_cotangent(outputs, rng)
    scalar_output = len(outputs) == 1 and outputs[0].shape == ()
    what = "gradient" if scalar_output else "vector-Jacobian product (random cotangent)"

    try:
        engine_grads = vjp_fn(tree_unflatten(out_def, cotangent))
    except Exception as exc:
        raise _engine_failure(what, exc, arguments, tolerance) from exc
    engine = _engine_leaves(engine_grads, arguments, what, tolerance)

    cotangent64 = [c.astype(np.float64) for c in cotangent]

    def weighted_output(leaves: list[Array]) -> float:
        values, treedef = _float_outputs(arguments.call(f, leaves))
        if treedef != out_def:
            raise ValueError("check_grads: f returned outputs of a different structure")
        return float(
            sum(np.sum(c * v.astype(np.float64)) for c, v in zip(cotangent64, values, strict=True))
        )

    values = [np.asarray(stop_gradient(e), np.float64) for e in engine]
    reference: list[Array] = []
    for divisor in STEP_DIVISORS:
        measured = central_differences(
            weighted_output, leaves64, tolerance.eps / divisor, arguments.names
        )
        reference = _closest(values, measured, reference)
        if _all_within(values, reference, tolerance):
            break
    _compare(engine, reference, arguments.names, what, "finite differences", tolerance)


def _check_forward(
    f: Callable[..., Any],
    arguments: Arguments,
    outputs: list[Array],
    out_def: TreeDef,
    leaves64: list[Array],
    num_directions: int,
    rng: np.random.Generator,
    tolerance: _Tolerance,
) -> None:
    """JVPs along random directions against directional differences of ``f``, output
    element by output element."""
    output_names = [
        "output" + path_str(path)
        for path in tree_paths(tree_unflatten(out_def, [0] * out_def.num_leaves))
    ]

    def outputs64(leaves: list[Array]) -> list[Array]:
        values, treedef = _float_outputs(arguments.call(f, leaves))
        if treedef != out_def:
            raise ValueError("check_grads: f returned outputs of a different structure")
        return [v.astype(np.float64) for v in values]

    for d in range(num_directions):
        direction = _random_direction(arguments.values, rng)
        what = f"Jacobian-vector product (random direction {d + 1} of {num_directions})"
        try:
            _, pushed = jvp(f, arguments.positional, arguments.rebuild(direction))
        except Exception as exc:
            raise _engine_failure(what, exc, arguments, tolerance) from exc
        engine = tree_flatten(pushed)[0]
        values = [np.asarray(stop_gradient(e), np.float64) for e in engine]
        u64 = [v.astype(np.float64) for v in direction]
        reference: list[Array] = []
        for measure in _directional_measurements(outputs64, leaves64, u64, tolerance.eps):
            reference = _closest(values, measure(), reference)
            if _all_within(values, reference, tolerance):
                break
        _compare(engine, reference, output_names, what, "finite differences", tolerance)


def _directional_derivative(
    f: Callable[..., Any], cotangent: Any, direction: list[Array]
) -> Callable[..., Any]:
    """``x -> <J(x)^T c, v>``: its gradient is the Hessian-vector product along ``v``."""

    def derivative(*primals: Any) -> Any:
        _, gradient_fn = vjp(f, *primals)
        grads = tree_flatten(tuple(gradient_fn(cotangent)))[0]
        total: Any = 0.0
        for g, v in zip(grads, direction, strict=True):
            total = total + reductions.sum(g * v)
        return total

    return derivative


def _closest(values: list[Array], measured: list[Array], reference: list[Array]) -> list[Array]:
    """Per element, whichever of ``measured`` and ``reference`` is closer to ``values``.

    An elementwise comparison's reference: a mismatch at the first step is measured again at
    smaller steps (and, along a direction, from each side), since a difference taken across
    a kink or a near-tie, or of a function of high curvature, is off at the first step alone.
    Each element is compared with the measurement closest to the engine's value: a wrong
    derivative is far from all of them.
    """
    if not reference:
        return measured
    return [
        np.where(np.abs(e - m) < np.abs(e - r), m, r)
        for e, m, r in zip(values, measured, reference, strict=True)
    ]


def _directional_measurements(
    vector64: Callable[[list[Array]], list[Array]],
    leaves64: list[Array],
    u64: list[Array],
    eps: float,
) -> Iterator[Callable[[], list[Array]]]:
    """The measurements of the derivative of ``vector64`` along ``u``, in the order tried:
    central differences at each step, and from each side."""
    at_center: list[list[Array]] = []

    def one_sided(step: float, side: int) -> list[Array]:
        if not at_center:
            at_center.append(vector64(leaves64))
        return one_sided_difference(vector64, leaves64, at_center[0], u64, step, side)

    for divisor in STEP_DIVISORS:
        step = eps / divisor
        yield functools.partial(directional_difference, vector64, leaves64, u64, step)
        yield functools.partial(one_sided, step, +1)
        yield functools.partial(one_sided, step, -1)


def _all_within(engine: list[Array], reference: list[Array], tolerance: _Tolerance) -> bool:
    return all(
        bool(np.all(np.abs(e - r) <= tolerance.atol + tolerance.rtol * np.abs(r)))
        for e, r in zip(engine, reference, strict=True)
    )


def _check_second_order(
    f: Callable[..., Any],
    arguments: Arguments,
    out_def: TreeDef,
    cotangent: list[Array],
    leaves64: list[Array],
    num_directions: int,
    rng: np.random.Generator,
    tolerance: _Tolerance,
    forward: bool = False,
) -> None:
    """Engine HVPs against central differences of the engine's float64 gradient: reverse
    over reverse, or with ``forward`` the JVP of the engine's gradient (forward over reverse)."""
    argnums = tuple(range(len(arguments.positional)))
    cotangent_tree = tree_unflatten(out_def, cotangent)
    cotangent64_tree = tree_unflatten(out_def, [c.astype(np.float64) for c in cotangent])

    def engine_gradient64(leaves: list[Array]) -> list[Array]:
        _, gradient_fn = vjp(f, *arguments.rebuild(leaves))
        grads = tree_flatten(tuple(gradient_fn(cotangent64_tree)))[0]
        return [np.asarray(stop_gradient(g), dtype=np.float64) for g in grads]

    for d in range(num_directions):
        direction = _random_direction(arguments.values, rng)
        kind = "forward over reverse" if forward else "reverse over reverse"
        what = f"Hessian-vector product, {kind} (random direction {d + 1} of {num_directions})"

        try:
            if forward:
                hessian_vector = jvp(
                    lambda *primals: vjp(f, *primals)[1](cotangent_tree),
                    arguments.positional,
                    arguments.rebuild(direction),
                )[1]
            else:
                hessian_vector = grad(
                    _directional_derivative(f, cotangent_tree, direction), argnums=argnums
                )(*arguments.positional)
        except Exception as exc:
            raise _engine_failure(what, exc, arguments, tolerance) from exc
        engine = _engine_leaves(hessian_vector, arguments, what, tolerance)
        # A difference of the gradient across a kink (where the gradient jumps) is wrong at
        # any step. So a mismatch is re-measured: from each side alone (a single kink within
        # the step is on one side only), then all again at smaller steps. Each element is
        # compared with the closest of the measurements.
        u64 = [v.astype(np.float64) for v in direction]
        values = [np.asarray(stop_gradient(e), np.float64) for e in engine]
        reference: list[Array] = []
        for measure in _directional_measurements(engine_gradient64, leaves64, u64, tolerance.eps):
            reference = _closest(values, measure(), reference)
            if _all_within(values, reference, tolerance):
                break
        _compare(
            engine,
            reference,
            arguments.names,
            what,
            "finite differences of the engine's gradient",
            tolerance,
        )
