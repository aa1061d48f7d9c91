"""Contender 6, the floor: only the five matrix products of a step, same shapes and dtype.

X@W1, A1@W2 (forward), A1.T@dZ2, dZ2@W2.T, X.T@dZ1 (backward), written into preallocated
outputs. No gather (the batch is a contiguous slice of X), no elementwise work, no update: what
is left is the BLAS time that no implementation of this step can avoid.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import N_HIDDEN, N_IN, N_OUT, Params
from benchmarks.contenders import Contender


class GemmFloor(Contender):
    name = "floor"
    label = "floor: 5 GEMMs only"
    trains = False

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        n, dt = x.shape[0], x.dtype
        g = np.random.default_rng(7)
        self.x = x
        self.p = {k: v.copy() for k, v in params.items()}
        self.a1 = np.maximum(g.standard_normal((n, N_HIDDEN)), 0).astype(dt)
        self.dz2 = (0.01 * g.standard_normal((n, N_OUT))).astype(dt)
        self.dz1 = (0.01 * g.standard_normal((n, N_HIDDEN))).astype(dt)
        self.z1 = np.empty((n, N_HIDDEN), dt)
        self.z2 = np.empty((n, N_OUT), dt)
        self.da1 = np.empty((n, N_HIDDEN), dt)
        self.dw1 = np.empty((N_IN, N_HIDDEN), dt)
        self.dw2 = np.empty((N_HIDDEN, N_OUT), dt)

    def step(self, idx: np.ndarray | None) -> None:
        m = self.x.shape[0] if idx is None else len(idx)
        x, a1, dz2, dz1 = self.x[:m], self.a1[:m], self.dz2[:m], self.dz1[:m]
        w1, w2 = self.p["W1"], self.p["W2"]
        np.matmul(x, w1, out=self.z1[:m])
        np.matmul(a1, w2, out=self.z2[:m])
        np.matmul(a1.T, dz2, out=self.dw2)
        np.matmul(dz2, w2.T, out=self.da1[:m])
        np.matmul(x.T, dz1, out=self.dw1)

    def last_loss(self) -> float:
        return float("nan")

    def params(self) -> Params:
        return self.p


CONTENDER = GemmFloor
