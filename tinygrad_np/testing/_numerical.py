"""Central finite differences in float64: the reference side of a gradient check.

Error of one central difference ``(f(x + h) - f(x - h)) / (2h)`` against ``f'(x)``:

* truncation, from the Taylor series: ``h**2 / 6 * |f'''|``;
* rounding, from evaluating ``f`` twice in float64 and subtracting:
  about ``kappa * u * |f| / h``, with ``u = 2**-53 ~ 1.1e-16`` and ``kappa`` the
  condition of evaluating ``f`` (a small multiple of the number of ops).

They balance near ``h ~ u**(1/3) ~ 5e-6``; :data:`DEFAULT_EPS` = 1e-5 gives
truncation ~ 1.7e-11 |f'''| and rounding ~ 1.1e-11 kappa |f|, so about 1e-9 for
the well-scaled functions (|f|, |f'''|, kappa up to ~10) a check should be run on.
Steps are relative, ``h = eps * max(1, |x|)``, so large inputs are not perturbed
below their own rounding, and the divisor is the step actually taken,
``(x + h) - (x - h)``, which removes the error of representing ``x + h``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_np.tensor import stop_gradient
from tinygrad_np.testing._arguments import Arguments

__all__ = [
    "DEFAULT_EPS",
    "central_differences",
    "directional_difference",
    "numerical_grad",
    "one_sided_difference",
]

DEFAULT_EPS = 1e-5

Array = np.ndarray[Any, Any]


def checked_eps(eps: float | None, caller: str) -> float:
    """``eps`` (or the default) after checking that it is a usable step."""
    if eps is None:
        return DEFAULT_EPS
    if not (isinstance(eps, int | float | np.floating) and np.isfinite(eps) and eps > 0):
        raise ValueError(f"{caller}: eps must be a positive finite float, got {eps!r}")
    return float(eps)


def central_differences(
    scalar_fn: Callable[[list[Array]], float],
    leaves: Sequence[Array],
    eps: float,
    names: Sequence[str],
) -> list[Array]:
    """The gradient of ``scalar_fn`` at ``leaves`` (float64 arrays), one element at a time."""
    center = [np.array(leaf, dtype=np.float64) for leaf in leaves]
    grads = []
    for k, leaf in enumerate(center):
        grad = np.empty_like(leaf)
        for index in np.ndindex(leaf.shape):
            x = float(leaf[index])
            h = eps * max(1.0, abs(x))
            x_plus, x_minus = x + h, x - h
            values = []
            for shifted in (x_plus, x_minus):
                moved = leaf.copy()
                moved[index] = shifted
                value = scalar_fn([*center[:k], moved, *center[k + 1 :]])
                if not np.isfinite(value):
                    raise ValueError(
                        f"finite differences: f is {value} when {names[k]}{list(index)} is "
                        f"moved to {shifted!r}; keep the inputs well inside f's domain "
                        "(or pass a smaller eps)"
                    )
                values.append(value)
            grad[index] = (values[0] - values[1]) / (x_plus - x_minus)
        grads.append(grad)
    return grads


def directional_difference(
    vector_fn: Callable[[list[Array]], list[Array]],
    leaves: Sequence[Array],
    direction: Sequence[Array],
    eps: float,
) -> list[Array]:
    """``(F(x + h v) - F(x - h v)) / (2h)`` for a list-of-arrays valued ``F``.

    The step is ``h = eps * max(1, max|x|)`` and the direction should have entries
    of size about 1, so no element moves by much more than its own relative step.
    """
    center = [np.asarray(leaf, dtype=np.float64) for leaf in leaves]
    scale = max([1.0, *(float(np.max(np.abs(x))) for x in center if x.size)])
    h = eps * scale
    plus = vector_fn([x + h * v for x, v in zip(center, direction, strict=True)])
    minus = vector_fn([x - h * v for x, v in zip(center, direction, strict=True)])
    return [(p - m) / (2 * h) for p, m in zip(plus, minus, strict=True)]


def one_sided_difference(
    vector_fn: Callable[[list[Array]], list[Array]],
    leaves: Sequence[Array],
    at_center: list[Array],
    direction: Sequence[Array],
    eps: float,
    side: int,
) -> list[Array]:
    """The derivative of ``F`` along ``side * direction`` from one side only, with ``F(x)``
    given as ``at_center``: Richardson's ``2 D(h/2) - D(h)`` of ``D(s) = (F(x + s v) -
    F(x)) / s``, error O(h^2). It never looks at the other side of ``x``, so it is right
    when a kink of ``F`` lies within the step on that other side. Steps as in
    :func:`directional_difference`.
    """
    center = [np.asarray(leaf, dtype=np.float64) for leaf in leaves]
    scale = max([1.0, *(float(np.max(np.abs(x))) for x in center if x.size)])
    h = side * eps * scale

    def forward(step: float) -> list[Array]:
        moved = vector_fn([x + step * v for x, v in zip(center, direction, strict=True)])
        return [(m - c) / step for m, c in zip(moved, at_center, strict=True)]

    coarse, fine = forward(h), forward(h / 2)
    return [2 * b - a for a, b in zip(coarse, fine, strict=True)]


def numerical_grad(f: Callable[..., Any], args: Any, eps: float | None = None) -> Any:
    """The gradient of scalar-valued ``f`` at ``args`` by central differences in float64.

    ``args`` is the tuple of ``f``'s positional arguments (each may be a pytree of
    float arrays), or one bare array for a function of one argument. Every leaf is
    promoted to float64 and moved by ``h = eps * max(1, |x|)`` (``eps`` defaults
    to :data:`DEFAULT_EPS`; see the module docstring for the error this gives).
    Returns float64 gradients shaped like ``args``: a tuple with one entry per
    argument, or a bare array for a bare array. Costs two calls of ``f`` per
    element, so keep the inputs small.
    """
    step = checked_eps(eps, "numerical_grad")
    arguments = Arguments.from_args(args, "numerical_grad")

    def scalar_fn(leaves: list[Array]) -> float:
        out = np.asarray(stop_gradient(arguments.call(f, leaves)))
        if out.shape != ():
            raise ValueError(
                f"numerical_grad: f must return a scalar, got an output of shape {out.shape}; "
                "for a vector output differentiate sum(cotangent * f(x)) instead"
            )
        return float(out)

    leaves64 = [value.astype(np.float64) for value in arguments.values]
    at_args = scalar_fn(leaves64)  # fails early, and clearly, for a non-scalar output
    if not np.isfinite(at_args):
        raise ValueError(f"numerical_grad: f is {at_args} at args; there is no gradient to take")
    grads = central_differences(scalar_fn, leaves64, step, arguments.names)
    return arguments.like_args(grads)
