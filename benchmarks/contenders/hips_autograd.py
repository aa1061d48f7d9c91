"""Contender 5: HIPS autograd (tracing NumPy wrapper), ``value_and_grad`` + NumPy SGD."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import Params
from benchmarks.contenders import Contender, sgd_


class HipsAutograd(Contender):
    name = "autograd"
    label = "HIPS autograd"
    requires = ("autograd",)

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        import autograd
        import autograd.numpy as anp

        def loss(p: Any, xb: np.ndarray, yb: np.ndarray) -> Any:
            hidden = anp.maximum(anp.dot(xb, p["W1"]) + p["b1"], 0.0)
            z = anp.dot(hidden, p["W2"]) + p["b2"]
            z = z - anp.max(z, axis=1, keepdims=True)
            lse = anp.log(anp.sum(anp.exp(z), axis=1))
            return anp.mean(lse - z[np.arange(len(yb)), yb])

        self.value_and_grad = autograd.value_and_grad(loss)
        self.version = getattr(autograd, "__version__", "?")
        self.x, self.y = x, y
        self.p = {k: v.copy() for k, v in params.items()}
        self._loss: Any = float("nan")

    def step(self, idx: np.ndarray | None) -> None:
        if idx is None:
            x, y = self.x, self.y
        else:
            x, y = self.x[idx], self.y[idx]
        self._loss, grads = self.value_and_grad(self.p, x, y)
        sgd_(self.p, grads, self.lr)

    def last_loss(self) -> float:
        return float(self._loss)

    def params(self) -> Params:
        return self.p

    def describe(self) -> dict[str, str]:
        return {"autograd": self.version}


CONTENDER = HipsAutograd
