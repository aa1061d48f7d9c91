"""Finite differences of sampled values: ``np.gradient``.

``gradient`` estimates the derivative of a function from its samples ``f`` with central
differences inside and one-sided differences (first or second order) at the two ends,
as NumPy does. It is a linear function of ``f`` and a rational one of the sample spacing,
written with ops, so both may be traced: the spacing as a number per axis or as the
coordinates of the samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from tinygrad_np.construction import asarray, concatenate
from tinygrad_np.extend import implements, shape_of
from tinygrad_np.shape import astype, getitem, reshape
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = ["gradient"]


@implements(np.gradient)
def gradient(f: Any, *varargs: Any, axis: int | tuple[int, ...] | None = None,
             edge_order: int = 1) -> Any:  # fmt: skip
    """The derivative of sampled values ``f`` along each axis (each of ``axis``): one array,
    or a tuple of them for more than one axis.

    The spacing ``varargs`` is, as in NumPy: nothing (unit spacing), one number for every
    axis, or one number or 1-d array of sample coordinates per axis. Inside, the estimate
    is the second-order central difference; at the ends a one-sided difference of order
    ``edge_order`` (1 or 2). The result has ``f``'s floating dtype (float64 for integers).
    """
    f = asarray(f)
    shape = shape_of(f)
    axes = tuple(range(len(shape))) if axis is None else normalize_axis_tuple(axis, len(shape))
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    spacings = _spacings(varargs, axes, shape)
    dtype = np.result_type(stop_gradient(f))
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
        f = astype(f, dtype=dtype)
    derivatives = [
        astype(_along(f, ax, spacing, edge_order), dtype=dtype)
        for ax, spacing in zip(axes, spacings, strict=True)
    ]
    return derivatives[0] if len(derivatives) == 1 else tuple(derivatives)


def _spacings(varargs: tuple[Any, ...], axes: tuple[int, ...], shape: tuple[int, ...]) -> list[Any]:
    if not varargs:
        return [1.0] * len(axes)
    if len(varargs) == 1 and not shape_of(varargs[0]):
        return [varargs[0]] * len(axes)
    if len(varargs) != len(axes):
        raise TypeError(
            f"gradient: give no spacing, one number, or one number or coordinate array per "
            f"axis; got {len(varargs)} spacings for {len(axes)} axes"
        )
    for spacing, ax in zip(varargs, axes, strict=True):
        spacing_shape = shape_of(spacing)
        if len(spacing_shape) > 1:
            raise ValueError(
                f"gradient: a spacing must be a number or 1-d coordinates, got shape "
                f"{spacing_shape}"
            )
        if spacing_shape and spacing_shape[0] != shape[ax]:
            raise ValueError(
                f"gradient: {spacing_shape[0]} coordinates for axis {ax} of length {shape[ax]}; "
                "they must match"
            )
    return list(varargs)


def _along(f: Any, axis: int, spacing: Any, edge_order: int) -> Any:
    """The derivative estimate of ``f`` along ``axis`` with ``spacing`` (a number or the
    coordinates of the samples)."""
    ndim, length = len(shape_of(f)), shape_of(f)[axis]
    if length < edge_order + 1:
        raise ValueError(
            f"gradient: axis {axis} has {length} samples; edge_order={edge_order} needs at "
            f"least {edge_order + 1}"
        )

    def at(start: int | None, stop: int | None) -> Any:  # samples start:stop along axis
        return getitem(f, (*(slice(None),) * axis, slice(start, stop)))

    steps = _steps(spacing) if shape_of(spacing) else None
    if steps is not None and not isinstance(steps, Tensor) and np.all(steps == steps[0]):
        spacing, steps = steps[0], None  # equal constant steps: NumPy's uniform formulas
    if steps is None:
        h = spacing
        if edge_order == 1:
            first = (at(1, 2) - at(0, 1)) / h
            last = (at(-1, None) - at(-2, -1)) / h
        else:
            first = (-1.5 / h) * at(0, 1) + (2.0 / h) * at(1, 2) + (-0.5 / h) * at(2, 3)
            last = (0.5 / h) * at(-3, -2) + (-2.0 / h) * at(-2, -1) + (1.5 / h) * at(-1, None)
        inside = (at(2, None) - at(None, -2)) / (2.0 * h)
        return concatenate([first, inside, last], axis=axis)

    def step(i: int | slice) -> Any:
        return getitem(steps, i)

    def along_axis(weights: Any) -> Any:  # 1-d weights, broadcast along ``axis``
        return reshape(weights, shape=tuple(-1 if i == axis else 1 for i in range(ndim)))

    if edge_order == 1:
        first = (at(1, 2) - at(0, 1)) / step(0)
        last = (at(-1, None) - at(-2, -1)) / step(-1)
    else:
        d1, d2 = step(0), step(1)
        first = (
            -(2.0 * d1 + d2) / (d1 * (d1 + d2)) * at(0, 1)
            + (d1 + d2) / (d1 * d2) * at(1, 2)
            - d1 / (d2 * (d1 + d2)) * at(2, 3)
        )
        d1, d2 = step(-2), step(-1)
        last = (
            d2 / (d1 * (d1 + d2)) * at(-3, -2)
            - (d2 + d1) / (d1 * d2) * at(-2, -1)
            + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * at(-1, None)
        )
    d1, d2 = step(slice(None, -1)), step(slice(1, None))
    inside = (
        along_axis(-d2 / (d1 * (d1 + d2))) * at(None, -2)
        + along_axis((d2 - d1) / (d1 * d2)) * at(1, -1)
        + along_axis(d1 / (d2 * (d1 + d2))) * at(2, None)
    )
    return concatenate([first, inside, last], axis=axis)


def _steps(coordinates: Any) -> Any:
    """The differences of 1-d sample coordinates (of integers, in float64, as NumPy does)."""
    if not isinstance(coordinates, Tensor):
        coordinates = np.asarray(coordinates)
        if coordinates.dtype.kind in "iub":
            coordinates = coordinates.astype(np.float64)
    return getitem(coordinates, slice(1, None)) - getitem(coordinates, slice(None, -1))
