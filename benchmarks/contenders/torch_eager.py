"""Contender 3: PyTorch eager on the CPU, default thread count, autograd + manual SGD."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import Params
from benchmarks.contenders import Contender


class TorchEager(Contender):
    name = "torch"
    label = "PyTorch eager (CPU)"
    requires = ("torch",)
    numpy_based = False

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        import torch

        self.torch = torch
        self.x = torch.from_numpy(x)  # shares memory, no copy
        self.y = torch.from_numpy(y)
        self.p = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
        self._loss: Any = None

    def step(self, idx: np.ndarray | None) -> None:
        torch = self.torch
        if idx is None:
            x, y = self.x, self.y
        else:
            rows = torch.from_numpy(idx)
            x, y = self.x.index_select(0, rows), self.y.index_select(0, rows)
        p = self.p
        # addmm(b, x, W) = x @ W + b in one op: what torch.nn.Linear runs
        hidden = torch.relu(torch.addmm(p["b1"], x, p["W1"]))
        loss = torch.nn.functional.cross_entropy(torch.addmm(p["b2"], hidden, p["W2"]), y)
        loss.backward()
        with torch.no_grad():
            for t in p.values():
                assert t.grad is not None
                t.sub_(t.grad, alpha=self.lr)
                t.grad = None
        self._loss = loss.detach()

    def last_loss(self) -> float:
        return float(self._loss.item())

    def params(self) -> Params:
        return {k: v.detach().numpy().copy() for k, v in self.p.items()}

    def describe(self) -> dict[str, str]:
        torch = self.torch
        return {
            "torch": torch.__version__,
            "torch_threads": str(torch.get_num_threads()),
            "torch_blas": str(torch.__config__.show().count("oneAPI Math Kernel") and "mkl"),
        }


CONTENDER = TorchEager
