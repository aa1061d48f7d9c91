"""Sliding-window layers over images: convolution, transposed convolution and pooling.

Images are laid out as PyTorch lays them out: a batch ``x`` is (N, C, H, W), a
convolution's weight is (out_channels, in_channels, kh, kw), and ``conv2d`` is the
cross-correlation ``torch.nn.functional.conv2d`` computes (the kernel is not flipped).

How a convolution is computed (im2col): every kh x kw window of the zero-padded input
is copied, through ``sliding_window_view``, into the columns of one matrix of shape
(C * kh * kw, Ho * Wo * N), and one matrix product with the weight as an
(O, C * kh * kw) matrix gives the whole output. The matrix's columns are ordered with
the batch innermost, so the result is a (N, O, Ho, Wo) view of an (O, Ho, Wo, N) array:
the product needs no reordering, and the next layer's windows and the backward pass's
matrices read it with long contiguous runs. NumPy treats such an array like any other;
``np.ascontiguousarray`` makes it C-ordered where that matters.

Memory: the unfolded matrix is C * kh * kw times the size of the output per channel,
so it is bounded: when it would exceed :data:`UNFOLD_BUDGET_BYTES` (64 MiB) for the
whole batch, the batch is processed in chunks of as many images as fit in the budget
(at least one), each chunk one matrix product. The backward pass unfolds in the same
chunks. A batch that was one chunk keeps its unfolded input from the forward pass for
the weight's gradient (at most the budget per convolution, until the backward pass has
used it); a larger batch's is unfolded again, chunk by chunk.

Derivatives, all to any order: the three convolution primitives are each other's VJPs.
For ``y = conv2d(x, w)``, ``dx = conv_transpose2d(g, w)`` (the transposed convolution:
one product back to columns, then the columns added into their windows) and
``dw = conv2d_weight(x, g)`` (a product of ``g`` with the unfolded ``x``); the VJPs of
those two are again the three primitives. Pooling is the same: max pooling's VJP
scatters ``g`` to the chosen elements and that scatter's VJP gathers, and average
pooling's window sum and its transpose, the spread of ``g`` over each window, are each
other's VJPs.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_np.extend import Primitive, shape_of
from tinygrad_np.jit import Tracer, might
from tinygrad_np.reductions import sum as reduce_sum
from tinygrad_np.shape import reshape
from tinygrad_np.tensor import Tensor, stop_gradient

__all__ = [
    "UNFOLD_BUDGET_BYTES",
    "avg_pool2d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
]

UNFOLD_BUDGET_BYTES = 64 * 2**20
"""Largest unfolded (im2col) matrix a convolution builds at once, in bytes; a batch whose
matrix would be larger is processed in chunks of images (at least one image per chunk)."""

Pair = tuple[int, int]


# --- arguments -----------------------------------------------------------------------------


def _pair(op: str, name: str, value: Any, least: int) -> Pair:
    """``value`` (an int or a pair of ints, each >= ``least``) as a pair; ValueError if not."""
    items = tuple(value) if isinstance(value, tuple | list) else (value, value)
    try:
        if len(items) != 2 or any(isinstance(v, bool) for v in items):
            raise TypeError
        pair = (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if min(pair) < least:
        bound = "positive" if least == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {bound}, got {value!r}")
    return pair


def _array(x: Any) -> Any:
    """A Tensor, ndarray or Tracer as it is; anything else (lists, scalars) as an ndarray."""
    return x if isinstance(x, np.ndarray | Tensor | Tracer) else np.asarray(x)


def _image_batch(op: str, name: str, x: Any) -> tuple[int, int, int, int]:
    shape = shape_of(x)
    if len(shape) != 4:
        raise ValueError(
            f"{op}: {name} must be a batch of images (N, C, H, W), got shape {shape} "
            f"({len(shape)}-d); add a batch axis with x[None] for a single image"
        )
    return (shape[0], shape[1], shape[2], shape[3])


def _output_size(
    op: str, size: Pair, kernel: Pair, stride: Pair, padding: Pair, shapes: str
) -> Pair:
    """(Ho, Wo) of a sliding window; ValueError when the kernel outgrows the padded input."""
    padded = (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{op}: the kernel {kernel[0]}x{kernel[1]} is larger than the "
            + ("padded " if any(padding) else "")
            + f"input {padded[0]}x{padded[1]} ({shapes})"
        )
    return (
        (padded[0] - kernel[0]) // stride[0] + 1,
        (padded[1] - kernel[1]) // stride[1] + 1,
    )


def _compute_dtype(*arrays: Any) -> tuple[np.dtype[Any], np.dtype[Any]]:
    """(the result's dtype, the dtype to compute in): float16 is computed in float32, as
    NumPy's float16 products and sums would round every partial sum to float16."""
    dtype = np.result_type(*[stop_gradient(a) for a in arrays if a is not None])
    if dtype.kind != "f":
        raise TypeError(f"convolution and pooling need floating-point arrays, got {dtype}")
    return dtype, (np.dtype(np.float32) if dtype == np.float16 else dtype)


# --- the unfolded (im2col) matrix ------------------------------------------------------------


def _batch_last(x: Any) -> Any:
    """An (N, C, H, W) array as a (C, H, W, N) view."""
    return x.transpose(1, 2, 3, 0)


def _chunks(n: int, bytes_per_image: int) -> Iterator[tuple[int, int]]:
    """Batch ranges whose unfolded matrices fit in UNFOLD_BUDGET_BYTES (at least one image)."""
    per_chunk = max(1, UNFOLD_BUDGET_BYTES // max(1, bytes_per_image))
    if n == 0:
        yield 0, 0
    for start in range(0, n, per_chunk):
        yield start, min(n, start + per_chunk)


def _unfold(
    x_last: Any, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, dtype: Any
) -> Any:
    """The (C * kh * kw, Ho * Wo * n) matrix of the windows of ``x_last`` (C, H, W, n):
    row (c, i, j), column (p, q, m) holds the padded input at (c, p*sh + i, q*sw + j, m)."""
    c, h, w, n = x_last.shape
    # New arrays are made "like" x_last (np.zeros_like, np.empty_like) so that tg.jit
    # records them as part of the program.
    if any(padding):
        padded_shape = (c, h + 2 * padding[0], w + 2 * padding[1], n)
        padded = np.zeros_like(x_last, dtype, order="C", shape=padded_shape)
        padded[:, padding[0] : padding[0] + h, padding[1] : padding[1] + w] = x_last
        x_last = padded
    elif x_last.strides[-1] != x_last.itemsize and n > 1:
        # A C-ordered (N, C, H, W) batch: copying the windows straight from it would read
        # one element per image at a time (15 ms for (128, 32, 12, 12) with 5x5 windows),
        # while one batch-last copy first and then long runs take 1.3 + 2.4 ms.
        x_last = x_last.astype(dtype, order="C")
    windows = sliding_window_view(x_last, kernel, axis=(1, 2))  # (C, H', W', n, kh, kw)
    windows = windows[:, :: stride[0], :: stride[1]][:, : out_hw[0], : out_hw[1]]
    cols = np.empty_like(x_last, dtype, order="C", shape=(c, *kernel, *out_hw, n))
    np.copyto(cols, windows.transpose(0, 4, 5, 1, 2, 3))  # one copy, cast included
    return cols.reshape(c * kernel[0] * kernel[1], out_hw[0] * out_hw[1] * n)


def _fold_into(padded: Any, cols: Any, kernel: Pair, stride: Pair, out_hw: Pair) -> None:
    """Add the (kh * kw * C, Ho * Wo * n) columns into their windows of ``padded``
    (C, H', W', n): the transpose of :func:`_unfold`. Windows overlap where the stride is
    below the kernel, so each of the kh * kw kernel offsets is one strided addition."""
    by_offset = cols.reshape(*kernel, padded.shape[0], *out_hw, padded.shape[3])
    reach = ((out_hw[0] - 1) * stride[0] + 1, (out_hw[1] - 1) * stride[1] + 1)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            padded[:, i : i + reach[0] : stride[0], j : j + reach[1] : stride[1]] += by_offset[i, j]


# --- the three convolution primitives --------------------------------------------------------


def _conv2d_forward(x: Any, w: Any, b: Any, *, stride: Pair, padding: Pair) -> Any:
    """(The convolution, the unfolded input when the whole batch was one chunk, else None):
    the weight's gradient reuses it rather than unfolding again."""
    n, c, h, width = x.shape
    o, _, kh, kw = w.shape
    dtype, work = _compute_dtype(x, w, b)
    out_hw = _output_size("conv2d", (h, width), (kh, kw), stride, padding, "")
    weights = w.reshape(o, c * kh * kw).astype(work, copy=False)
    out = np.empty_like(x, work, order="C", shape=(o, *out_hw, n))
    x_last = _batch_last(x)
    chunks = list(_chunks(n, c * kh * kw * out_hw[0] * out_hw[1] * work.itemsize))
    for start, stop in chunks:
        cols = _unfold(x_last[..., start:stop], (kh, kw), stride, padding, out_hw, work)
        if len(chunks) == 1:
            np.matmul(weights, cols, out=out.reshape(o, out_hw[0] * out_hw[1] * n))
        else:
            out[..., start:stop] = (weights @ cols).reshape(o, *out_hw, stop - start)
    if b is not None:
        out += b.astype(work, copy=False).reshape(o, 1, 1, 1)
    return _batch_last_to_nchw(out, dtype), (cols if len(chunks) == 1 else None)


def _batch_last_to_nchw(out: Any, dtype: np.dtype[Any]) -> Any:
    return out.astype(dtype, copy=False).transpose(3, 0, 1, 2)


def _conv_transpose_forward(g: Any, w: Any, *, stride: Pair, padding: Pair, out_hw: Pair) -> Any:
    n, o, ho, wo = g.shape
    _, c, kh, kw = w.shape
    dtype, work = _compute_dtype(g, w)
    # Row (i, j, c) of the product is kernel offset (i, j) of channel c: each offset's
    # columns are then one contiguous block for _fold_into.
    weights = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o).astype(work, copy=False)
    padded_hw = (out_hw[0] + 2 * padding[0], out_hw[1] + 2 * padding[1])
    padded = np.zeros_like(g, work, order="C", shape=(c, *padded_hw, n))
    g_last = _batch_last(g)
    for start, stop in _chunks(n, c * kh * kw * ho * wo * work.itemsize):
        # A view when g is batch-last in memory (as conv2d's results are), else a copy.
        g_matrix = g_last[..., start:stop].reshape(o, ho * wo * (stop - start))
        cols = weights @ g_matrix.astype(work, copy=False)
        _fold_into(padded[..., start:stop], cols, (kh, kw), stride, (ho, wo))
    inside = padded[:, padding[0] : padding[0] + out_hw[0], padding[1] : padding[1] + out_hw[1]]
    return _batch_last_to_nchw(inside, dtype)


def _conv2d_weight_forward(
    x: Any, g: Any, *, stride: Pair, padding: Pair, kernel: Pair, unfolded: Any = None
) -> Any:
    """The correlation of ``x`` with ``g``: conv2d's weight gradient. ``unfolded``, if
    given, is ``x`` already unfolded (in one chunk, in the compute dtype) by conv2d."""
    n, c, _, _ = x.shape
    _, o, ho, wo = g.shape
    dtype, work = _compute_dtype(x, g)
    x_last, g_last = _batch_last(x), _batch_last(g)
    dw = np.zeros_like(g, work, order="C", shape=(o, c * kernel[0] * kernel[1]))
    chunks = list(_chunks(n, c * kernel[0] * kernel[1] * ho * wo * work.itemsize))
    if unfolded is not None and (len(chunks) != 1 or unfolded.dtype != work):
        unfolded = None  # (a float64 cotangent for a float32 convolution, say)
    for start, stop in chunks:
        if unfolded is not None:
            cols = unfolded
        else:
            cols = _unfold(x_last[..., start:stop], kernel, stride, padding, (ho, wo), work)
        g_matrix = g_last[..., start:stop].reshape(o, ho * wo * (stop - start))
        g_matrix = g_matrix.astype(work, copy=False)
        dw += g_matrix @ cols.T
    return dw.reshape(o, c, *kernel).astype(dtype, copy=False)


def _conv2d_vjps(
    ans: Any, x: Any, w: Any, b: Any, *, stride: Pair, padding: Pair, saved: Any
) -> Any:
    statics = {"stride": stride, "padding": padding}
    x_hw, kernel = shape_of(x)[2:], shape_of(w)[2:]
    # The unfolded x is a function of x's value, which is fixed here: a constant, passed
    # as a static argument (so the closure stays an op applied to g).
    return (
        lambda g: _conv_transpose(g, w, out_hw=x_hw, **statics),
        lambda g: _conv2d_weight(x, g, kernel=kernel, unfolded=saved, **statics),
        None if b is None else (lambda g: reduce_sum(g, axis=(0, 2, 3))),
    )


def _conv_transpose_vjps(
    ans: Any, g: Any, w: Any, *, stride: Pair, padding: Pair, out_hw: Pair
) -> Any:
    statics = {"stride": stride, "padding": padding}
    kernel = shape_of(w)[2:]
    return (
        lambda h: _conv2d(h, w, None, **statics),
        lambda h: _conv2d_weight(h, g, kernel=kernel, **statics),
    )


def _conv2d_weight_vjps(
    ans: Any, x: Any, g: Any, *, stride: Pair, padding: Pair, kernel: Pair, unfolded: Any = None
) -> Any:
    statics = {"stride": stride, "padding": padding}
    x_hw = shape_of(x)[2:]
    return (
        lambda k: _conv_transpose(g, k, out_hw=x_hw, **statics),
        lambda k: _conv2d(x, k, None, **statics),
    )


_conv2d: Primitive = Primitive("conv2d", _conv2d_forward, _conv2d_vjps, saves=True)
_conv_transpose: Primitive = Primitive(
    "conv_transpose2d", _conv_transpose_forward, _conv_transpose_vjps
)
_conv2d_weight: Primitive = Primitive("conv2d_weight", _conv2d_weight_forward, _conv2d_weight_vjps)


def _checked_weights(op: str, x: Any, w: Any, b: Any, *, transposed: bool) -> None:
    """Rank and channel checks common to conv2d and conv_transpose2d."""
    x_shape, w_shape = shape_of(x), shape_of(w)
    in_axis, out_axis = (0, 1) if transposed else (1, 0)
    layout = (
        "(in_channels, out_channels, kh, kw)"
        if transposed
        else "(out_channels, in_channels, kh, kw)"
    )
    if len(w_shape) != 4:
        raise ValueError(f"{op}: w must be 4-d {layout}, got shape {w_shape}")
    if x_shape[1] != w_shape[in_axis]:
        raise ValueError(
            f"{op}: x of shape {x_shape} has {x_shape[1]} channels but w of shape {w_shape} "
            f"expects {w_shape[in_axis]} (w is {layout})"
        )
    if b is not None and shape_of(b) != (w_shape[out_axis],):
        raise ValueError(
            f"{op}: b must have shape ({w_shape[out_axis]},), one per output channel of w of "
            f"shape {w_shape}, got {shape_of(b)}"
        )


def conv2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0) -> Any:
    """2-d convolution (cross-correlation) of a batch of images, as ``torch.nn.functional.conv2d``.

    ``x`` is (N, C, H, W), ``w`` is (O, C, kh, kw) and ``b`` (if any) is (O,). ``stride``
    and ``padding`` are an int or a pair (along H, then W); the padding is zeros on both
    sides. The result is (N, O, Ho, Wo) with ``Ho = (H + 2 * padding - kh) // stride + 1``::

        y[n, o, p, q] = b[o] + sum over c, i, j of
                        w[o, c, i, j] * x_padded[n, c, p * stride + i, q * stride + j]

    Differentiable in ``x``, ``w`` and ``b``, to any order. Computed as one matrix product
    with the unfolded input (the module docstring says how, and how its memory is bounded
    by :data:`UNFOLD_BUDGET_BYTES`); the result is a view whose batch axis is innermost
    in memory. float32 stays float32; float16 is computed in float32 and rounded back.
    Raises ValueError naming the shapes for a wrong rank, a channel mismatch, a bias of
    the wrong shape, a kernel larger than the padded input, or a stride or padding that
    is not a positive (stride) or non-negative (padding) int or pair.
    """
    x, w = _array(x), _array(w)
    b = None if b is None else _array(b)
    stride = _pair("conv2d", "stride", stride, 1)
    padding = _pair("conv2d", "padding", padding, 0)
    x_shape = _image_batch("conv2d", "x", x)
    _checked_weights("conv2d", x, w, b, transposed=False)
    w_shape = shape_of(w)
    _output_size(
        "conv2d",
        (x_shape[2], x_shape[3]),
        (w_shape[2], w_shape[3]),
        stride,
        padding,
        f"x of shape {x_shape}, w of shape {w_shape}, padding {padding}",
    )
    _compute_dtype(x, w, b)
    return _conv2d(x, w, b, stride=stride, padding=padding)


def conv_transpose2d(
    x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0, output_padding: Any = 0
) -> Any:
    """Transposed 2-d convolution, as ``torch.nn.functional.conv_transpose2d``.

    The VJP of :func:`conv2d` with respect to its input: ``x`` is (N, C_in, H, W), ``w``
    is (C_in, C_out, kh, kw) (the weight of the convolution it transposes) and ``b`` (if
    any) is (C_out,). The result is (N, C_out, Ho, Wo) with
    ``Ho = (H - 1) * stride - 2 * padding + kh + output_padding``; ``output_padding``
    (smaller than ``stride``) picks among the input sizes a stride-``stride`` convolution
    maps to the same output size. Differentiable in every argument, to any order.
    """
    x, w = _array(x), _array(w)
    b = None if b is None else _array(b)
    stride = _pair("conv_transpose2d", "stride", stride, 1)
    padding = _pair("conv_transpose2d", "padding", padding, 0)
    extra = _pair("conv_transpose2d", "output_padding", output_padding, 0)
    if extra[0] >= stride[0] or extra[1] >= stride[1]:
        raise ValueError(
            f"conv_transpose2d: output_padding {output_padding!r} must be smaller than "
            f"stride {stride}"
        )
    x_shape = _image_batch("conv_transpose2d", "x", x)
    _checked_weights("conv_transpose2d", x, w, b, transposed=True)
    w_shape = shape_of(w)
    out_hw = (
        (x_shape[2] - 1) * stride[0] - 2 * padding[0] + w_shape[2] + extra[0],
        (x_shape[3] - 1) * stride[1] - 2 * padding[1] + w_shape[3] + extra[1],
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"conv_transpose2d: x of shape {x_shape} and w of shape {w_shape} with stride "
            f"{stride} and padding {padding} give an empty output {out_hw}"
        )
    _compute_dtype(x, w, b)
    out = _conv_transpose(x, w, stride=stride, padding=padding, out_hw=out_hw)
    return out if b is None else out + reshape(b, shape=(-1, 1, 1))


# --- pooling -----------------------------------------------------------------------------------


def _offsets(kernel: Pair, stride: Pair, out_hw: Pair) -> Iterator[tuple[int, Any]]:
    """(k, index) for each kernel offset (i, j), k = i * kw + j: ``x[index]`` is the
    (N, C, Ho, Wo) array of the offset's element in every window."""
    reach = ((out_hw[0] - 1) * stride[0] + 1, (out_hw[1] - 1) * stride[1] + 1)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = slice(i, i + reach[0], stride[0])
            cols = slice(j, j + reach[1], stride[1])
            yield i * kernel[1] + j, (slice(None), slice(None), rows, cols)


def _zeros_laid_out_like(
    like: Any, shape: tuple[int, ...], dtype: Any, *, zeros: bool = True
) -> Any:
    """Zeros of ``shape`` whose axes lie in memory in the order of ``like``'s (batch-last
    for a batch-last ``like``): elementwise work on arrays laid out alike runs along their
    contiguous axis, while mixed layouts make NumPy step through memory element by element
    (20-40 times slower for a (128, 32, 12, 12) pooling). ``zeros=False``: uninitialized,
    for a caller that writes every element."""
    outermost_first = sorted(range(len(shape)), key=lambda axis: -like.strides[axis])
    in_memory_order = tuple(shape[axis] for axis in outermost_first)
    make = np.zeros_like if zeros else np.empty_like
    array = make(like, dtype, order="C", shape=in_memory_order)
    return array.transpose(tuple(int(a) for a in np.argsort(outermost_first)))


def _laid_out_like(like: Any, x: Any) -> Any:
    """``x`` (of ``like``'s shape) in ``like``'s memory layout: itself, or a copy."""
    if x.strides == like.strides or x.size <= 1:
        return x
    copy = _zeros_laid_out_like(like, x.shape, x.dtype)
    copy[...] = x
    return copy


def _windows(x: Any, kernel: Pair, stride: Pair) -> list[Any]:
    """The (N, C, Ho, Wo) views of each kernel offset's element in every window of ``x``."""
    h, w = x.shape[2:]
    out_hw = ((h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1)
    return [x[index] for _, index in _offsets(kernel, stride, out_hw)]


def _max_pool_forward(x: Any, *, kernel: Pair, stride: Pair) -> Any:
    first, *others = _windows(x, kernel, stride)
    out = np.copy(first, order="K")  # keeps a batch-last layout
    for window in others:
        np.maximum(out, window, out=out)  # NaN wins, as in PyTorch
    return out


def _max_choice(x: Any, ans: Any, kernel: Pair, stride: Pair) -> Any:
    """Which kernel offset each window's maximum came from: the first maximal element in
    row-major order within the window, and where a window holds NaN, its last NaN
    (PyTorch's rule on the CPU)."""
    dtype = np.dtype(np.uint8 if kernel[0] * kernel[1] <= 256 else np.int32)
    choice = np.zeros_like(ans, dtype)  # in ans's (and x's) memory layout
    first, *others = _offsets(kernel, stride, ans.shape[2:])
    taken = x[first[1]] == ans  # offset 0 (choice 0) where it is maximal
    for k, index in others:
        first_here = np.greater(x[index] == ans, taken)  # maximal here and not before
        choice += first_here * dtype.type(k)  # (boolean arithmetic: masked copies are slower)
        taken |= first_here
    if might(np.isnan(ans)):
        for k, index in [first, *others]:
            np.copyto(choice, k, where=np.isnan(x[index]))
    return choice


def _window_scatter_forward(
    g: Any, *, choice: Any, kernel: Pair, stride: Pair, shape: tuple[int, ...]
) -> Any:
    """Zeros of ``shape`` with each ``g[n, c, p, q]`` added at its window's chosen element."""
    g = _laid_out_like(choice, g)  # the layout of choice, and of the x it was chosen from
    overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
    # Windows that tile the whole input (2x2 pooling of an even size) write every element
    # of dx below: its zero fill is skipped (saves 1.7 ms of a CNN training step of ~100).
    tiles = kernel == stride and shape[2:] == (g.shape[2] * stride[0], g.shape[3] * stride[1])
    dx = _zeros_laid_out_like(choice, shape, np.result_type(g), zeros=not tiles)
    # g times the 0/1 mask of each offset is 6 times faster than selecting with np.where;
    # where g is inf or nan, g * 0 is nan where no gradient goes, so those are zeroed again
    # (only when g has such elements, and under tg.jit always: it then changes nothing).
    not_finite = ~np.isfinite(g)
    fix = might(not_finite)
    for k, index in _offsets(kernel, stride, g.shape[2:]):
        chosen = choice == k
        with np.errstate(invalid="ignore"):  # inf * 0, zeroed below
            part = g * chosen if overlapping else np.multiply(g, chosen, out=dx[index])
        if fix:
            np.copyto(part, 0, where=np.greater(not_finite, chosen))  # not finite, not chosen
        if overlapping:  # an element can be chosen by several windows: add
            dx[index] += part
    return dx


def _window_gather_forward(h: Any, *, choice: Any, kernel: Pair, stride: Pair) -> Any:
    """``out[n, c, p, q]`` = ``h`` at window (p, q)'s chosen element: the transpose of
    :func:`_window_scatter_forward`."""
    out = np.zeros_like(choice, dtype=np.result_type(h))  # choice's layout
    for k, index in _offsets(kernel, stride, choice.shape[2:]):
        out += np.where(choice == k, h[index], 0)
    return out


_window_scatter: Primitive = Primitive(
    "window_scatter",
    _window_scatter_forward,
    lambda ans, g, *, choice, kernel, stride, shape: (
        lambda h: _window_gather(h, choice=choice, kernel=kernel, stride=stride),
    ),
)
_window_gather: Primitive = Primitive(
    "window_gather",
    _window_gather_forward,
    lambda ans, h, *, choice, kernel, stride: (
        lambda g: _window_scatter(
            g, choice=choice, kernel=kernel, stride=stride, shape=shape_of(h)
        ),
    ),
)


def _max_pool_vjps(ans: Any, x: Any, *, kernel: Pair, stride: Pair) -> Any:
    x_values = stop_gradient(x)
    choice = _max_choice(x_values, stop_gradient(ans), kernel, stride)
    shape = x_values.shape
    return (lambda g: _window_scatter(g, choice=choice, kernel=kernel, stride=stride, shape=shape),)


_max_pool: Primitive = Primitive("max_pool2d", _max_pool_forward, _max_pool_vjps)


def _window_mean_forward(x: Any, *, kernel: Pair, stride: Pair, divisor: int) -> Any:
    """The sum of each window divided by ``divisor`` (PyTorch divides, not multiplies)."""
    dtype, work = _compute_dtype(x)
    first, *others = _windows(x, kernel, stride)
    total = first.astype(work, order="K")
    for window in others:
        total += window
    total /= divisor
    return total.astype(dtype, copy=False)


def _window_spread_forward(
    g: Any, *, kernel: Pair, stride: Pair, divisor: int, shape: tuple[int, ...]
) -> Any:
    """Zeros of ``shape`` with ``g[n, c, p, q] / divisor`` added to every element of window
    (p, q): the transpose of :func:`_window_mean_forward`."""
    dtype, work = _compute_dtype(g)
    scaled = np.divide(g, divisor, dtype=work)
    dx = _zeros_laid_out_like(scaled, shape, work)
    for _, index in _offsets(kernel, stride, g.shape[2:]):
        dx[index] += scaled
    return dx.astype(dtype, copy=False)


_window_mean: Primitive = Primitive(
    "avg_pool2d",
    _window_mean_forward,
    lambda ans, x, *, kernel, stride, divisor: (
        lambda g: _window_spread(
            g, kernel=kernel, stride=stride, divisor=divisor, shape=shape_of(x)
        ),
    ),
)
_window_spread: Primitive = Primitive(
    "window_spread",
    _window_spread_forward,
    lambda ans, g, *, kernel, stride, divisor, shape: (
        lambda h: _window_mean(h, kernel=kernel, stride=stride, divisor=divisor),
    ),
)


def _pool_arguments(op: str, x: Any, kernel_size: Any, stride: Any) -> tuple[Any, Pair, Pair]:
    x = _array(x)
    kernel = _pair(op, "kernel_size", kernel_size, 1)
    steps = kernel if stride is None else _pair(op, "stride", stride, 1)
    x_shape = _image_batch(op, "x", x)
    _output_size(op, (x_shape[2], x_shape[3]), kernel, steps, (0, 0), f"x of shape {x_shape}")
    _compute_dtype(x)
    return x, kernel, steps


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None) -> Any:
    """The maximum of each ``kernel_size`` window of a batch of images (N, C, H, W), as
    ``torch.nn.functional.max_pool2d`` without padding (floor mode).

    ``kernel_size`` and ``stride`` are an int or a pair; ``stride`` defaults to the kernel
    size. The result is (N, C, Ho, Wo) with ``Ho = (H - kh) // stride + 1``.

    The gradient of each window goes to one element: the first maximal one in row-major
    order within the window, as PyTorch chooses (a window holding NaN gives NaN, and its
    gradient goes to its last NaN, as PyTorch's CPU kernel does). Where windows overlap,
    an element that is the maximum of several collects all their gradients. Differentiable
    to any order (the second derivative is zero).
    """
    x, kernel, steps = _pool_arguments("max_pool2d", x, kernel_size, stride)
    return _max_pool(x, kernel=kernel, stride=steps)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None) -> Any:
    """The mean of each ``kernel_size`` window of a batch of images (N, C, H, W), as
    ``torch.nn.functional.avg_pool2d`` without padding (floor mode).

    ``kernel_size`` and ``stride`` are an int or a pair; ``stride`` defaults to the kernel
    size. The result is (N, C, Ho, Wo) with ``Ho = (H - kh) // stride + 1``; every element
    of a window receives ``1 / (kh * kw)`` of its gradient. Differentiable to any order.
    """
    x, kernel, steps = _pool_arguments("avg_pool2d", x, kernel_size, stride)
    return _window_mean(x, kernel=kernel, stride=steps, divisor=kernel[0] * kernel[1])
