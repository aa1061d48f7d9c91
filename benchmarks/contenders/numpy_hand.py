"""Contender 1, the baseline: the tutorial's hand-written backprop, written with care.

Z1 = X@W1+b1, A1 = relu(Z1), Z2 = A1@W2+b2, A2 = softmax(Z2) (max-shifted),
dZ2 = (A2 - Y)/m, dW2 = A1.T@dZ2, db2 = sum(dZ2), dA1 = dZ2@W2.T, dZ1 = dA1*(Z1>0),
dW1 = X.T@dZ1, db1 = sum(dZ1), then W -= lr*dW.

Care taken: Z1 becomes A1 in place (relu(z) > 0 exactly where z > 0, so A1 serves as the mask),
the logits become the softmax and then dZ2 in place, the one-hot matrix is never built (the
label entries are decremented instead), and lr/m is folded into dZ2 so that every gradient comes
out already scaled by the learning rate and the update is a single in-place subtraction.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Params
from benchmarks.contenders import Contender


class HandNumpy(Contender):
    name = "numpy"
    label = "hand-written NumPy"

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        self.x, self.y = x, y
        self.p = {k: v.copy() for k, v in params.items()}
        self._loss = float("nan")

    def step(self, idx: np.ndarray | None) -> None:
        if idx is None:
            x, y = self.x, self.y
        else:
            x, y = self.x[idx], self.y[idx]
        p = self.p
        m = x.shape[0]
        rows = np.arange(m)

        a1 = x @ p["W1"]  # Z1
        a1 += p["b1"]
        np.maximum(a1, 0, out=a1)  # A1 = relu(Z1), in place
        z2 = a1 @ p["W2"]
        z2 += p["b2"]
        z2 -= z2.max(axis=1, keepdims=True)
        z_label = z2[rows, y]
        np.exp(z2, out=z2)
        total = z2.sum(axis=1)
        self._loss = float(np.mean(np.log(total) - z_label))  # mean cross-entropy
        z2 /= total[:, None]  # A2 = softmax
        z2[rows, y] -= 1  # A2 - Y without building Y
        z2 *= self.lr / m  # lr * dZ2: every gradient below comes out scaled by lr

        d_w2 = a1.T @ z2
        d_b2 = z2.sum(axis=0)
        dz1 = z2 @ p["W2"].T  # dA1
        dz1 *= a1 > 0  # dZ1
        d_w1 = x.T @ dz1
        d_b1 = dz1.sum(axis=0)

        p["W1"] -= d_w1
        p["b1"] -= d_b1
        p["W2"] -= d_w2
        p["b2"] -= d_b2

    def last_loss(self) -> float:
        return self._loss

    def params(self) -> Params:
        return self.p


CONTENDER = HandNumpy
