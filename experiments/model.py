"""The 784-128-10 MLP shared by the experiments: init, forward, loss, accuracy.

Conventions (the tutorial's): a batch ``x`` holds one flattened image per row,
shape (N, 784); ``W1`` is (784, 128) and ``b1`` (1, 128), so the hidden layer is
``relu(x @ W1 + b1)`` (one ``tg.nn.linear`` op); ``W2`` is (128, 10) and ``b2``
(1, 10). The model outputs logits; softmax is folded into the loss (``tg.nn.cross_entropy``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

import tinygrad_np as tg

DESCRIPTION = "784-128-10 MLP"
JIT = True  # train.py traces the training step with tg.jit (bitwise the same, faster)
PARAM_SHAPES = {"W1": (784, 128), "b1": (1, 128), "W2": (128, 10), "b2": (1, 10)}

Params = dict[str, Any]


def preprocess(images: npt.NDArray[np.uint8], dtype: npt.DTypeLike = np.float32) -> Any:
    """uint8 images (N, 28, 28) -> rows (N, 784) of ``dtype`` in [0, 1]."""
    return images.reshape(len(images), -1).astype(dtype) / 255


def inputs(images: Any) -> Any:
    """Float images (N, 28, 28) -> the rows (N, 784) the MLP reads."""
    return images.reshape(len(images), -1)


def init_params(rng: np.random.Generator, dtype: npt.DTypeLike = np.float32) -> Params:
    """He-normal weights (std sqrt(2 / fan_in), suited to ReLU) and zero biases."""
    params = {}
    for name, shape in PARAM_SHAPES.items():
        if name.startswith("W"):
            w = rng.standard_normal(shape) * np.sqrt(2 / shape[0])
            params[name] = w.astype(dtype)
        else:
            params[name] = np.zeros(shape, dtype)
    return params


def zeros_params(dtype: npt.DTypeLike = np.float32) -> Params:
    """All-zero parameters: the template that ``checkpoint.load(like_params=...)`` checks."""
    return {name: np.zeros(shape, dtype) for name, shape in PARAM_SHAPES.items()}


def forward(params: Params, x: Any) -> Any:
    """Logits (N, 10) for rows ``x`` (N, 784)."""
    hidden = tg.relu(tg.nn.linear(x, params["W1"], params["b1"]))
    return tg.nn.linear(hidden, params["W2"], params["b2"])


def loss(params: Params, x: Any, labels: Any) -> Any:
    """Mean cross-entropy; ``labels`` are class indices (N,) or one-hot rows (N, 10)."""
    return tg.nn.cross_entropy(forward(params, x), labels)


def probabilities(params: Params, x: Any, batch_size: int = 10_000) -> Any:
    """Softmax class probabilities (N, 10), computed ``batch_size`` rows at a time."""
    return np.concatenate(
        [tg.softmax(forward(params, x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def plots(params: Params, out: Any) -> list[str]:
    """The MLP's own figure: its 128 hidden units' input weights as 28x28 images."""
    from experiments import plots as figures  # matplotlib only when plotting

    figures.first_layer_weights(params["W1"], out / "first_layer_weights.png")
    return ["first_layer_weights.png"]


def accuracy(params: Params, x: Any, labels: Any) -> float:
    """Fraction of rows whose most probable class is the label (index form)."""
    return float(np.mean(np.argmax(probabilities(params, x), axis=1) == labels))
