"""``check_grads``' fast method: random projections, re-measured at kinks, localized by bisection.

The per-element check costs two evaluations of ``f`` per input element. A projection
costs O(1): for a random direction ``u`` over every input leaf and a random cotangent
``v``, the engine's ``<J^T v, u>`` (reverse mode) and ``<v, J u>`` (forward mode) must
equal ``<v, D_u>``, where ``D_u`` is the float64 finite difference of ``f`` along ``u``.

Finite differences. ``D_u`` is Richardson's extrapolation of two central differences,
``(4 D(h/2) - D(h)) / 3``: truncation error O(h^4) instead of O(h^2), for 4 evaluations.
``h = eps * max(1, max|x|)`` and ``max|u| = 1``, so no element moves by more than its
own relative step.

Tolerance. The per-element check allows each gradient element an error
``delta_i <= atol + rtol |w_i|`` (``w = J^T v``; see ``default_tolerance``). Projected
on ``u``, whose entries have random signs independent of their sizes, the error
``sum_i delta_i u_i`` exceeds ``SIGMAS * sqrt(sum_i (atol + rtol |w_i|)^2 u_i^2)``
with probability at most ``2 exp(-SIGMAS^2 / 2) = 7.5e-6`` (Hoeffding), whatever the
``delta_i``; it can never exceed ``sum_i (atol + rtol |w_i|) |u_i|``. The smaller of the
two is the allowed difference. Forward mode's ``<v, J u>`` is held to the same bound.

What it misses. A wrong gradient ``w + e`` is caught along one direction unless
``|<e, u>|`` falls below the allowed difference. With ``e`` spread like the gradient
(``|e_i| = r |w_i|``, a VJP off by a relative ``r``) and ``atol`` small against
``rtol |w_i|``, that needs a standard normal below ``SIGMAS * rtol / r`` in absolute
value: for ``r = 10 rtol`` a chance of 0.38 per direction, so ``DEFAULT_DIRECTIONS`` = 15
directions miss it with probability < 1e-6, and larger errors far less often. An error
confined to a few of ``n`` elements is diluted:
one element wrong by ``|e_i|`` is seen only when ``|e_i u_i|`` clears the bound over all
``n`` terms, about ``SIGMAS * rtol * |w|`` (for a dense gradient, roughly ``|w_i| *
SIGMAS * rtol * sqrt(n)``). The per-element method has no such dilution.

Kinks. ``relu``, ``abs``, ``max`` have kinks; a finite difference whose step straddles
one is wrong, and moving every input at once makes that likely at model scale. A
mismatch is therefore re-measured with the step divided by 10, 100 and 1000: a kink
crossing goes away as the step shrinks (the inputs are a fixed distance from the kink),
a wrong derivative does not. Only a mismatch at every step is a failure. (At eps/1000 =
1e-8 the float64 rounding error of a difference, ~1e-16 |f| / 1e-8, is still far below
the tolerances.) An input exactly at a kink stays one at every step: keep inputs off
kinks (the strategies' ``min_magnitude``, ``min_gap``).

Below float64. For float32 inputs the projections are taken twice, with the same ``u``,
``v`` and differences: once with the engine in float32 (float32's tolerance), and once
with the engine run in float64 on the exactly promoted inputs (float64's tolerance).
The first checks what the float32 run computes; the second checks the rules with enough
precision to see a VJP 0.1% off, which float32's rtol of 1.2e-4 cannot reliably show
through a projection when the error is confined to part of the gradient.

Localization. On a failure the same comparison is repeated with ``u`` restricted to one
leaf at a time, then to halves of that leaf's elements, following the larger relative
mismatch, down to a single element, whose two derivatives are then computed directly:
about ``4 * (leaves + 2 log2(size))`` evaluations of ``f``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_DIRECTIONS", "SIGMAS", "STEP_DIVISORS", "Projections"]

Array = np.ndarray[Any, Any]

DEFAULT_DIRECTIONS = 15
SIGMAS = 5.0
STEP_DIVISORS = (1, 10, 100, 1000)


def richardson(
    outputs64: Callable[[list[Array]], list[Array]],
    center: Sequence[Array],
    direction: Sequence[Array],
    h: float,
) -> list[Array]:
    """``(4 D(h/2) - D(h)) / 3`` with ``D(s)`` the central difference of ``outputs64``
    along ``direction`` with step ``s``: the derivative along ``direction``, error O(h^4)."""

    def central(step: float) -> list[Array]:
        plus = outputs64([x + step * u for x, u in zip(center, direction, strict=True)])
        minus = outputs64([x - step * u for x, u in zip(center, direction, strict=True)])
        return [(p - m) / (2 * step) for p, m in zip(plus, minus, strict=True)]

    coarse, fine = central(h), central(h / 2)
    return [(4 * b - a) / 3 for a, b in zip(coarse, fine, strict=True)]


@dataclass
class Mismatch:
    """A direction along which the engine and the finite differences disagree."""

    mode: str  # "rev" or "fwd"
    engine: float
    reference: float
    allowed: float


@dataclass
class Projections:
    """Everything the projection check of one call needs, the engine's side precomputed.

    ``pullback(v)`` and ``push(u)`` are the engine's VJP and JVP on lists of leaves
    (``push`` is None when forward mode is not checked); ``outputs64`` evaluates ``f`` in
    float64 on a list of input leaves.
    """

    leaves64: list[Array]
    names: list[str]
    outputs64: Callable[[list[Array]], list[Array]]
    pullback: Callable[[list[Array]], list[Array]]
    push: Callable[[list[Array]], list[Array]] | None
    h: float
    rtol: float
    atol: float

    def allowed(self, w: Sequence[Array], u: Sequence[Array]) -> float:
        """The largest difference a correct engine can show along ``u`` (module docstring)."""
        worst = 0.0
        square = 0.0
        for wi, ui in zip(w, u, strict=True):
            bound = (self.atol + self.rtol * np.abs(wi)) * np.abs(ui)
            worst += float(np.sum(bound))
            square += float(np.sum(bound * bound))
        return min(worst, SIGMAS * math.sqrt(square))

    def reference(self, v64: Sequence[Array], u: Sequence[Array], divisor: float) -> float:
        derivative = richardson(self.outputs64, self.leaves64, u, self.h / divisor)
        return float(sum(np.sum(a * b) for a, b in zip(v64, derivative, strict=True)))

    def check_direction(
        self,
        v: Sequence[Array],
        u: Sequence[Array],
        modes: Sequence[str],
        measured: dict[int, float] | None = None,
    ) -> Mismatch | None:
        """None if every mode agrees with finite differences at one of the steps.

        ``measured`` caches the finite differences by step divisor, for another check of
        the same ``v`` and ``u``."""
        measured = {} if measured is None else measured
        v64 = [np.asarray(x, np.float64) for x in v]
        u64 = [np.asarray(x, np.float64) for x in u]
        w = [np.asarray(x, np.float64) for x in self.pullback(list(v))]
        allowed = self.allowed(w, u64)
        engine = {"rev": _dot(w, u64)}
        if "fwd" in modes and self.push is not None:
            engine["fwd"] = _dot(v64, [np.asarray(x, np.float64) for x in self.push(list(u))])
        worst: Mismatch | None = None
        for divisor in STEP_DIVISORS:
            if divisor not in measured:
                measured[divisor] = self.reference(v64, u64, divisor)
            reference = measured[divisor]
            worst = None
            for mode in modes:
                difference = abs(engine[mode] - reference)
                if not difference <= allowed:  # (NaN never passes)
                    if worst is None or difference > abs(worst.engine - worst.reference):
                        worst = Mismatch(mode, engine[mode], reference, allowed)
            if worst is None:
                return None
        return worst

    def localize(
        self, v: Sequence[Array], u: Sequence[Array], mode: str
    ) -> tuple[int, tuple[int, ...], float, float, int]:
        """``(leaf, element index, engine derivative, finite difference, evaluations)`` of
        the element with the wrong derivative, found by bisection (module docstring)."""
        v64 = [np.asarray(x, np.float64) for x in v]
        w = [np.asarray(x, np.float64) for x in self.pullback(list(v))]
        evaluations = 0

        def ratio(leaf: int, lo: int, hi: int) -> float:
            nonlocal evaluations
            restricted = [np.zeros_like(x, np.float64) for x in self.leaves64]
            flat = restricted[leaf].reshape(-1)
            flat[lo:hi] = np.asarray(u[leaf], np.float64).reshape(-1)[lo:hi]
            if mode == "fwd" and self.push is not None:
                engine = self._pushed(v64, restricted, u)
            else:
                engine = _dot(w, restricted)
            reference = self.reference(v64, restricted, 1)
            evaluations += 4
            allowed = self.allowed(w, restricted)
            difference = abs(engine - reference)
            if not difference <= difference:  # NaN: as wrong as it gets
                return math.inf
            if allowed == 0:
                return math.inf if difference > 0 else 0.0
            return difference / allowed

        sizes = [x.size for x in self.leaves64]
        leaf = max(range(len(sizes)), key=lambda k: ratio(k, 0, sizes[k]) if sizes[k] else -1.0)
        lo, hi = 0, sizes[leaf]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ratio(leaf, lo, mid) >= ratio(leaf, mid, hi) else (mid, hi)
        index = tuple(int(i) for i in np.unravel_index(lo, self.leaves64[leaf].shape))
        # The element's own derivatives: the engine's (J^T v)_i, or (J e_i) projected on v
        # in forward mode, against one central difference along e_i.
        basis = [np.zeros_like(x, np.float64) for x in self.leaves64]
        basis[leaf].reshape(-1)[lo] = 1.0
        if mode == "fwd" and self.push is not None:
            engine_value = self._pushed(v64, basis, u)
        else:
            engine_value = float(w[leaf].reshape(-1)[lo])
        reference_value = self.reference(v64, basis, 1)
        evaluations += 4
        return leaf, index, engine_value, reference_value, evaluations

    def _pushed(
        self, v64: Sequence[Array], direction: Sequence[Array], like: Sequence[Array]
    ) -> float:
        """``<v, J direction>`` by the engine's forward mode, the direction in ``like``'s dtypes."""
        assert self.push is not None
        tangent = [d.astype(np.asarray(x).dtype) for d, x in zip(direction, like, strict=True)]
        return _dot(v64, [np.asarray(x, np.float64) for x in self.push(tangent)])


def _dot(a: Sequence[Array], b: Sequence[Array]) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(a, b, strict=True)))
