"""Neural-network building blocks: a dense layer, the loss, dropout, and (from
``tinygrad_np.conv``) convolution and pooling.

The dense layer and the loss could be written from the other ops; as single primitives
they record one op instead of several and can do in place what the composition cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_np import random
from tinygrad_np.conv import avg_pool2d, conv2d, conv_transpose2d, max_pool2d
from tinygrad_np.elementwise import mul
from tinygrad_np.extend import Primitive, broadcast_vjp, shape_of
from tinygrad_np.jit import Tracer, pure_callback
from tinygrad_np.reductions import log_softmax, per_count, softmax
from tinygrad_np.reductions import sum as reduce_sum
from tinygrad_np.shape import reshape
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "avg_pool2d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "linear",
    "max_pool2d",
]


def _linear_forward(x: Any, weight: Any, bias: Any) -> Any:
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"linear: x of shape {x.shape} does not fit weight of shape {weight.shape}: "
            "weight must be (in_features, out_features) and x (..., in_features)"
        )
    out = np.matmul(x, weight)
    if bias is None:
        return out
    # The product is a fresh array that nothing else holds, so the bias can go in place
    # (a pass and an output-sized allocation fewer than x @ weight + bias), provided
    # that gives exactly that sum: same dtype, no broadcasting of the product.
    try:
        return np.add(out, bias, out=out, casting="no")
    except (TypeError, ValueError):
        pass
    try:
        summed = np.add(out, bias)  # e.g. a float64 bias promotes, as in x @ weight + bias
    except ValueError:
        summed = None
    if summed is None or summed.shape != out.shape:
        raise ValueError(
            f"linear: bias of shape {np.shape(bias)} does not broadcast to the output's "
            f"shape {out.shape}"
        )
    return summed


def _linear_vjps(ans: Any, x: Any, weight: Any, bias: Any) -> tuple[Any, Any, Any]:
    x_shape = shape_of(x)
    if len(x_shape) == 2:
        d_weight = lambda g: x.T @ g
    else:  # every leading axis of x (or none) is a batch axis: flatten them into one
        in_features, out_features = shape_of(weight)
        d_weight = lambda g: (
            reshape(x, shape=(-1, in_features)).T @ reshape(g, shape=(-1, out_features))
        )
    d_bias = None if bias is None else broadcast_vjp(bias, shape_of(ans))
    return (lambda g: g @ weight.T), d_weight, d_bias


_linear = Primitive("linear", _linear_forward, _linear_vjps)


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """A dense layer, ``x @ weight + bias``, as one op.

    ``weight`` is (in_features, out_features), ``x`` is (..., in_features) and ``bias``
    (if any) broadcasts to the output (..., out_features), e.g. (out_features,). The
    value and gradients are those of ``x @ weight + bias``; the tape records one op
    instead of two and the bias is added into the product in place.
    """
    if not isinstance(x, np.ndarray | Tensor | Tracer):  # the VJPs need arrays' .T and .shape
        x = np.asarray(x)
    if not isinstance(weight, np.ndarray | Tensor | Tracer):
        weight = np.asarray(weight)
    if not (bias is None or isinstance(bias, np.ndarray | Tensor | Tracer | float | int)):
        bias = np.asarray(bias)  # (Python numbers stay weak scalars: 0.5 keeps float32)
    return _linear(x, weight, bias)


def _nll_forward(logits: Any, labels: Any) -> tuple[Any, Any]:
    if logits.dtype == np.float16:
        # Sums over the batch overflow float16 (40000 rows of loss log 10 exceed 65504):
        # computed in float32, as np.mean does for float16, and the loss rounded back.
        loss, saved = _nll_forward(logits.astype(np.float32), labels)
        return loss.astype(np.float16), saved
    # The ufuncs' reduce methods are what ndarray.max/.sum call, minus a Python wrapper each.
    n = logits.shape[0]
    if labels.ndim == 1:
        # Class-major, (C, N): NumPy reduces a short contiguous axis slowly (the max over 10
        # logits per row: 7 us at N = 128, 2.9 ms at N = 60000), while reducing (C, N) over
        # its first axis is C elementwise passes over N rows (2 us with the transposing copy,
        # 0.3 ms). The copy is ours, so the shift and the exp are done in place.
        by_class = logits.T.copy()
        by_class -= np.maximum.reduce(by_class, axis=0)
        rows = np.arange(n)
        label_logits = by_class[labels, rows]  # shifted; labels >= C raise IndexError here
        exp_shifted = np.exp(by_class, out=by_class)
        row_sums = np.add.reduce(exp_shifted, axis=0)
        # -log softmax at the label, summed as two non-negative sums (no cancellation)
        loss = (np.add.reduce(np.log(row_sums)) - np.add.reduce(label_logits)) / n
        # Saved for the VJP: softmax = exp_shifted / row_sums, so the backward pass does
        # not repeat the row max, exp and sum.
        return loss, (exp_shifted, row_sums, rows)
    shifted = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)
    log_normalizer = np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))
    return -(labels * (shifted - log_normalizer)).sum() / n, None


def _nll_vjps(ans: Any, logits: Any, labels: Any, saved: Any) -> tuple[Any, Any]:
    n = logits.shape[0]  # ndarrays and Tensors alike
    if labels.ndim == 1:
        # The famous simplification: d(loss)/d(logits) = (softmax - onehot) / N.
        def d_logits(g: Any) -> Any:
            if saved is None or isinstance(g, Tensor):  # differentiable, for nesting
                classes = np.arange(np.shape(stop_gradient(logits))[1])
                onehot = (labels[:, None] == classes).astype(stop_gradient(logits).dtype)
                return (softmax(logits) - onehot) * per_count(g, n)
            # Plain arrays (the training hot path): the same formula, updated in place, in
            # the forward pass's class-major layout. Its transpose, an (N, C) view, goes to
            # the matrix products (BLAS takes either layout) and to the bias's sum over N
            # (now a contiguous axis).
            exp_shifted, row_sums, rows = saved
            d = exp_shifted / row_sums
            d[labels, rows] -= 1
            scale = g.astype(d.dtype) if isinstance(g, Tracer) else np.asarray(g, d.dtype)
            d *= scale / n  # (d is float32 for float16 logits)
            return d.T.astype(logits.dtype, copy=False)

        return d_logits, None
    return (
        lambda g: (
            (softmax(logits) * reduce_sum(labels, axis=-1, keepdims=True) - labels)
            * per_count(g, n)
        ),
        lambda g: log_softmax(logits) * -per_count(g, n),
    )


_cross_entropy = Primitive("cross_entropy", _nll_forward, _nll_vjps, saves=True)


def _label_range_error(labels: Any, c: int) -> ValueError:
    return ValueError(
        f"cross_entropy: labels must lie in [0, {c}), got values from "
        f"{labels.min()} to {labels.max()}"
    )


def _check_label_range(labels: Any, c: int) -> None:
    """Both bounds, for a program replayed by tg.jit (where the gather's IndexError would not
    pass through cross_entropy to be explained)."""
    if labels.size and (np.minimum.reduce(labels) < 0 or np.maximum.reduce(labels) >= c):
        raise _label_range_error(labels, c)


def cross_entropy(logits: Any, labels: Any) -> Any:
    """Mean categorical cross-entropy of ``softmax(logits)`` against ``labels``.

    ``logits`` has shape (N, C). ``labels`` is either integer class indices of
    shape (N,) or probability rows (e.g. one-hot) of shape (N, C). Computed from
    ``log_softmax``, so logits of any magnitude give finite values and gradients;
    the gradient with respect to the logits is ``(softmax(logits) - onehot) / N``.
    """
    if not isinstance(logits, Tensor | Tracer):
        logits = np.asarray(logits)
    logits_shape = stop_gradient(logits).shape
    if len(logits_shape) != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), got {logits_shape}")
    n, c = logits_shape
    label_values = labels if type(labels) is np.ndarray else stop_gradient(labels)
    if not isinstance(label_values, np.ndarray | Tracer):
        label_values = np.asarray(label_values)
    kind = label_values.dtype.kind
    if kind in "iu":
        if label_values.shape != (n,):
            raise ValueError(
                f"cross_entropy: integer labels must have shape ({n},) to match logits "
                f"{logits_shape}, got {label_values.shape}"
            )
        if isinstance(label_values, Tracer):  # tg.jit: checked again at every call
            pure_callback(_check_label_range, label_values, c)
        # A label >= C makes the forward pass's gather of label logits raise IndexError;
        # only negative labels, which would index from the end, need a pass of their own.
        elif n and kind == "i" and np.minimum.reduce(label_values) < 0:
            raise _label_range_error(label_values, c)
        try:
            return _cross_entropy(logits, label_values)
        except IndexError:
            raise _label_range_error(label_values, c) from None
    if kind != "f":
        raise TypeError(
            f"cross_entropy: labels must be integers or floats, not {label_values.dtype}"
        )
    if label_values.shape != logits_shape:
        raise ValueError(
            f"cross_entropy: probability labels must have the logits' shape {logits_shape}, "
            f"got {label_values.shape}"
        )
    return _cross_entropy(logits, labels if isinstance(labels, Tensor) else label_values)


def dropout(x: Any, rate: float, key: random.Key) -> Any:
    """``x`` with each element zeroed with probability ``rate`` and the others scaled by
    ``1 / (1 - rate)``, so that the expected value is ``x`` (as ``torch.nn.functional.dropout``
    in training mode).

    The randomness is the explicit ``key`` (see :mod:`tinygrad_np.random`): the same key
    and shape give the same mask whatever ``x``'s dtype, so the function is pure and a
    run is reproducible; pass a new key at every step (``tg.random.fold_in(key, step)``).
    Element ``i`` is kept where the i-th of ``x.size`` float32 uniforms drawn from
    ``tg.random.generator(key)`` is ``>= rate``. ``rate`` 0 returns ``x`` itself (use it,
    or skip the call, at evaluation time) and ``rate`` 1 zeros. The gradient is the same
    mask times the cotangent; float32 stays float32.
    """
    if not isinstance(rate, int | float | np.integer | np.floating) or isinstance(rate, bool):
        raise TypeError(f"dropout: rate must be a number in [0, 1], got {rate!r}")
    if not 0 <= rate <= 1:
        raise ValueError(f"dropout: rate must lie in [0, 1], got {rate}")
    if not isinstance(key, Tracer):  # (a key that tg.jit traces is checked as it is drawn from)
        random.check_key(key, "dropout")
    if rate == 0:
        return x
    if not isinstance(x, np.ndarray | Tensor | Tracer):
        x = np.asarray(x)
    values = stop_gradient(x)
    dtype = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    if rate == 1:
        return mul(x, np.zeros(values.shape, dtype))
    kept = pure_callback(_kept, key, values.shape, rate)  # under tg.jit: drawn at every call
    return mul(x, kept * dtype.type(1 / (1 - rate)))


def _kept(key: random.Key, shape: tuple[int, ...], rate: float) -> Any:
    """Where dropout keeps ``x``: the uniforms drawn from ``key`` that are at least ``rate``."""
    generator = random.generator(random.check_key(key, "dropout"))
    return generator.random(shape, dtype=np.float32) >= rate
