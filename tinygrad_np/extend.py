"""Writing your own ops: everything an op author needs, and the rules.

The ops that ship with tinygrad_np are written with exactly this module, so each of
them is an example (``tinygrad_np/elementwise.py`` is the simplest place to start).

An op is one declaration::

    import numpy as np
    from tinygrad_np.extend import Primitive, broadcast_vjp, shape_of

    def _hypot_vjps(ans, x, y):
        to_x, to_y = broadcast_vjp(x, shape_of(ans)), broadcast_vjp(y, shape_of(ans))
        return lambda g: to_x(g * x / ans), lambda g: to_y(g * y / ans)

    hypot = Primitive("hypot", np.hypot, _hypot_vjps, numpy=[np.hypot],
                      doc="Elementwise sqrt(x**2 + y**2).")

The rules:

1. ``impl(*args, **statics)`` computes the value with NumPy. Positional arguments are
   the ones that can be differentiated; static arguments (an axis, a shape, an index)
   are keyword-only, and a call passing them positionally is refused.
2. ``vjps(ans, *args, **statics)`` returns one function ``g -> gradient`` per positional
   argument (``None`` for one that has no gradient). Each maps the output's cotangent
   ``g`` to a gradient of that argument's shape and dtype; operands that were broadcast
   are summed back with :func:`broadcast_vjp` or :func:`unbroadcast`.
3. Write VJPs with tinygrad_np ops (operators, ``tg.exp``, ...), not with raw NumPy on
   ``g`` or the arguments: they are then recorded when the op is itself being
   differentiated, which is what ``grad(grad(f))``, ``hvp`` and ``check_grads(order=2)``
   need. Masks and indices computed from values are constants and may be NumPy.
4. A VJP function captures only what its backward needs: the tape keeps it alive until
   the backward pass has run.
5. ``numpy=[np.hypot]`` makes NumPy's function run your op on Tensors; ``methods=``
   (``["__add__"]``), ``reflected=`` (``["__radd__"]``) and ``properties=`` attach it to
   Tensor. :func:`implements` does the same for an op written as a plain function.

``with tg.debug_checks():`` verifies rule 2 at run time (shapes and dtypes of every
gradient) and that no recorded array is modified in place. For a composite whose
gradient should not be the derivative of its forward (a straight-through estimator,
gradient clipping), use :func:`custom_vjp`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_np.tensor import Primitive, Tensor, identity_vjp, implements, stop_gradient

__all__ = [
    "Primitive",
    "broadcast_vjp",
    "custom_vjp",
    "identity_vjp",
    "implements",
    "shape_of",
    "unbroadcast",
]


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an ndarray, a NumPy or Python scalar, or a Tensor at any nesting."""
    if type(x) is np.ndarray:
        return x.shape  # type: ignore[no-any-return]
    return np.shape(stop_gradient(x))


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes along which an operand of ``shape`` was broadcast."""
    shape = tuple(shape)
    g_shape = shape_of(g)
    return g if g_shape == shape else _summing_to(shape, g_shape)(g)


def broadcast_vjp(operand: Any, shape: tuple[int, ...]) -> Callable[[Any], Any]:
    """The VJP of broadcasting ``operand`` up to ``shape``: ``g -> unbroadcast(g, ...)``.

    Worked out when the op is recorded, as its cotangents will all have ``shape``.
    """
    operand_shape = operand.shape if type(operand) is np.ndarray else shape_of(operand)
    return identity_vjp if operand_shape == shape else _summing_to(operand_shape, shape)


@functools.lru_cache(maxsize=256)  # pure, and asked the same question at every step
def _summing_to(shape: tuple[int, ...], ans_shape: tuple[int, ...]) -> Callable[[Any], Any]:
    """A function summing an array of ``ans_shape`` down to broadcast-compatible ``shape``."""
    lead = len(ans_shape) - len(shape)  # leading axes added by broadcasting
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and ans_shape[lead + i] != 1)
    axes = (*range(lead), *stretched)
    # Plain arrays (the training hot path) are summed by np.add.reduce: ndarray.sum
    # minus its Python wrapper (1.3 against 2.9 us for a bias gradient at batch 128).
    # Tensors by their method, so that the sum is recorded.
    if not stretched:
        return lambda g: np.add.reduce(g, axes) if type(g) is np.ndarray else g.sum(axis=axes)
    return lambda g: (
        np.add.reduce(g, axes) if type(g) is np.ndarray else g.sum(axis=axes)
    ).reshape(shape)


def _transposing(g: Any) -> bool:
    """Whether ``g`` is traced, at any level, by the transposition that forward mode runs."""
    while isinstance(g, Tensor):
        if g._tape is not None and g._tape.transposing:
            return True
        g = g._value
    return False


class custom_vjp:
    """A function whose gradient is given, not derived: for straight-through estimators,
    gradient clipping and other deliberate departures from the chain rule.

    ::

        @tg.custom_vjp
        def round_ste(x):
            return np.round(x)

        round_ste.defvjp(lambda x: (np.round(x), None), lambda residuals, g: (g,))

    ``f_fwd(*args)`` returns ``(out, residuals)``; ``f_bwd(residuals, g)`` returns one
    cotangent per positional argument (``None`` for none). When the call is itself
    differentiated at a higher order, ``f_fwd`` and ``f_bwd`` receive Tensors: write
    them with tinygrad_np ops to make that derivative right too.
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        functools.update_wrapper(self, f)
        self.f = f
        self._primitive: Primitive | None = None

    def defvjp(
        self, f_fwd: Callable[..., tuple[Any, Any]], f_bwd: Callable[[Any, Any], Any]
    ) -> custom_vjp:
        name = getattr(self.f, "__name__", "custom_vjp")

        def vjps(ans: Any, *args: Any, saved: Any) -> list[Callable[[Any], Any]]:
            residuals = f_fwd(*args)[1] if saved is None else saved
            last: list[Any] = [None, None]  # (g, f_bwd(residuals, g)): one call per cotangent

            def cotangent(i: int, g: Any) -> Any:
                if _transposing(g):
                    raise TypeError(
                        f"{name}: forward mode (jvp, linearize, jacfwd, hessian) cannot "
                        "differentiate through a custom_vjp function: its f_bwd need not be "
                        "linear in the cotangent, which transposing it requires; use reverse "
                        "mode (grad, vjp, jacrev, hvp)"
                    )
                if last[0] is not g:
                    grads = tuple(f_bwd(residuals, g))
                    if len(grads) != len(args):
                        raise ValueError(
                            f"{name}: f_bwd returned {len(grads)} cotangents for "
                            f"{len(args)} positional arguments"
                        )
                    last[:] = g, grads
                grad = last[1][i]
                if grad is None:  # no gradient for this argument
                    return np.zeros(shape_of(args[i]), np.result_type(stop_gradient(args[i])))
                if shape_of(grad) != shape_of(args[i]):  # broadcasting it would be silent
                    raise ValueError(
                        f"{name}: f_bwd returned a cotangent of shape {shape_of(grad)} for "
                        f"argument {i} of shape {shape_of(args[i])}"
                    )
                return grad

            return [functools.partial(cotangent, i) for i in range(len(args))]

        self._primitive = Primitive(name, lambda *args: f_fwd(*args), vjps, saves=True)
        return self

    def __call__(self, *args: Any) -> Any:
        if self._primitive is None:
            raise TypeError(f"{self.f.__name__}: call defvjp(f_fwd, f_bwd) before using it")
        if not any(isinstance(a, Tensor) for a in args):
            return self.f(*args)
        return self._primitive(*args)
