"""The NumPy tutorial's own code, differentiated unchanged by ``tg.grad``.

``relu``, ``softmax``, ``categorical_cross_entropy`` and ``forward`` below are the classic
from-scratch MNIST tutorial's, written with ``np.*`` calls; the one change is that the
parameters come in as an argument instead of living in globals. Given Tensors, those NumPy
calls run as tinygrad_np ops and record on the tape (``tinygrad_np/numpy_dispatch.py``), so
``tg.grad(loss)`` works on them as written. This script sets that gradient next to the
tutorial's hand-derived backward pass on a batch of MNIST and prints how far apart they are.

    python experiments/tutorial_unchanged.py               # 256 images
    python experiments/tutorial_unchanged.py --batch 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_np as tg
from tinygrad_np.datasets import DatasetError, mnist

# --- the tutorial's code ------------------------------------------------------------------


def relu(z: Any) -> Any:
    return np.maximum(0, z)


def softmax(z: Any) -> Any:
    exps = np.exp(z - np.max(z, axis=1, keepdims=True))
    return exps / np.sum(exps, axis=1, keepdims=True)


def categorical_cross_entropy(y_true: Any, y_pred: Any) -> Any:
    y_pred = np.clip(y_pred, 1e-12, 1 - 1e-12)
    return -np.mean(np.sum(y_true * np.log(y_pred), axis=1))


def forward(params: dict[str, Any], X: Any) -> tuple[Any, Any, Any, Any]:
    Z1 = np.dot(X, params["W1"]) + params["b1"]
    A1 = relu(Z1)
    Z2 = np.dot(A1, params["W2"]) + params["b2"]
    A2 = softmax(Z2)
    return Z1, A1, Z2, A2


def backward(params: dict[str, Any], X: Any, Y: Any) -> dict[str, Any]:
    """The tutorial's backpropagation, derived by hand (softmax + cross-entropy jointly)."""
    m = X.shape[0]
    Z1, A1, _, A2 = forward(params, X)
    dZ2 = A2 - Y
    dW2 = np.dot(A1.T, dZ2) / m
    db2 = np.sum(dZ2, axis=0, keepdims=True) / m
    dA1 = np.dot(dZ2, params["W2"].T)
    dZ1 = dA1 * (Z1 > 0)
    dW1 = np.dot(X.T, dZ1) / m
    db1 = np.sum(dZ1, axis=0, keepdims=True) / m
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# --- the same code, differentiated --------------------------------------------------------


def loss(params: dict[str, Any], X: Any, Y: Any) -> Any:
    return categorical_cross_entropy(Y, forward(params, X)[3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python experiments/tutorial_unchanged.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--batch", type=int, default=256, help="number of training images")
    batch = parser.parse_args(argv).batch
    if not 1 <= batch <= 60_000:
        parser.error(f"--batch must lie in [1, 60000] (the training set), got {batch}")

    try:
        images, labels, _, _ = mnist()
    except (DatasetError, OSError) as e:
        parser.exit(2, f"error: cannot read MNIST: {e}\n")
    X = images[:batch].reshape(batch, -1) / 255.0
    Y = np.eye(10)[labels[:batch]]
    rng = np.random.default_rng(0)  # the tutorial's initialisation: small weights, zero biases
    params = {
        "W1": rng.standard_normal((784, 128)) * 0.01,
        "b1": np.zeros((1, 128)),
        "W2": rng.standard_normal((128, 10)) * 0.01,
        "b2": np.zeros((1, 10)),
    }

    value, grads = tg.value_and_grad(loss)(params, X, Y)
    by_hand = backward(params, X, Y)

    print(f"MNIST batch of {batch} images, float64; loss {value:.6f}")
    print(f"{'parameter':<10} {'shape':<11} max |tg.grad - by hand| / max |by hand|")
    for name in params:
        difference = np.max(np.abs(grads[name] - by_hand[name])) / np.max(np.abs(by_hand[name]))
        print(f"{name:<10} {grads[name].shape!s:<11} {difference:.1e}")


if __name__ == "__main__":
    main()
