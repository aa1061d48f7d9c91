"""Contender 2: tinygrad_np, the model as a forward function under ``tg.value_and_grad``.

The layers are ``tg.nn.linear`` (one op each, the bias added in place, as the hand-written
step does and as PyTorch's addmm does); ``tinygrad_np_ops`` is the same model written with
``x @ W + b``, i.e. a matmul and a broadcasting add recorded separately.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Params
from benchmarks.contenders import Contender, sgd_


def unavailable() -> str | None:
    try:
        import tinygrad_np as tg
    except ImportError as e:  # pragma: no cover - the package is part of this repository
        return f"tinygrad_np does not import: {e}"
    missing = [n for n in ("value_and_grad", "relu", "nn") if not hasattr(tg, n)]
    missing += [f"nn.{n}" for n in ("cross_entropy", "linear") if not hasattr(tg.nn, n)]
    if missing:
        return "tinygrad_np lacks " + ", ".join(missing)
    return None


def make_loss(fused_layers: bool = True) -> Any:
    import tinygrad_np as tg

    if not fused_layers:

        def loss_with_ops(params: Any, x: np.ndarray, y: np.ndarray) -> Any:
            hidden = tg.relu(x @ params["W1"] + params["b1"])
            return tg.nn.cross_entropy(hidden @ params["W2"] + params["b2"], y)

        return loss_with_ops

    def loss(params: Any, x: np.ndarray, y: np.ndarray) -> Any:
        hidden = tg.relu(tg.nn.linear(x, params["W1"], params["b1"]))
        return tg.nn.cross_entropy(tg.nn.linear(hidden, params["W2"], params["b2"]), y)

    return loss


class TinygradNp(Contender):
    name = "tinygrad_np"
    label = "tinygrad_np"
    fused_layers = True

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        import tinygrad_np as tg

        self.x, self.y = x, y
        self.p = {k: v.copy() for k, v in params.items()}
        self.value_and_grad = tg.value_and_grad(make_loss(self.fused_layers))
        self._loss: Any = float("nan")

    def step(self, idx: np.ndarray | None) -> None:
        if idx is None:
            x, y = self.x, self.y
        else:
            x, y = self.x[idx], self.y[idx]
        self._loss, grads = self.value_and_grad(self.p, x, y)
        sgd_(self.p, grads, self.lr)

    def last_loss(self) -> float:
        return float(self._loss)  # value_and_grad returns a NumPy scalar

    def params(self) -> Params:
        return self.p

    def describe(self) -> dict[str, str]:
        import tinygrad_np as tg

        # the engine changes often: identify exactly which sources this worker ran
        digest = hashlib.sha256()
        for path in sorted(Path(tg.__file__).parent.rglob("*.py")):
            digest.update(path.read_bytes())
        return {
            "tinygrad_np": str(getattr(tg, "__version__", "repo")),
            "tinygrad_np_sources_sha256": digest.hexdigest()[:16],
        }


class TinygradNpOps(TinygradNp):
    name = "tinygrad_np_ops"
    label = "tinygrad_np, x @ W + b"
    fused_layers = False


class TinygradNpJit(TinygradNp):
    """The same step, value_and_grad and the in-place SGD update, under ``tg.jit``: traced at
    the first batch of each shape, then replayed (bitwise the eager contender's parameters)."""

    name = "tinygrad_np_jit"
    label = "tinygrad_np, tg.jit step"

    def __init__(self, x: np.ndarray, y: np.ndarray, params: Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        import tinygrad_np as tg

        value_and_grad = self.value_and_grad

        def train_step(params: Params, x: np.ndarray, y: np.ndarray) -> Any:
            loss, grads = value_and_grad(params, x, y)
            for k, p in params.items():  # sgd_'s two in-place passes, recorded
                g = grads[k]
                g *= lr
                p -= g
            return loss

        self.train_step = tg.jit(train_step)

    def step(self, idx: np.ndarray | None) -> None:
        if idx is None:
            x, y = self.x, self.y
        else:
            x, y = self.x[idx], self.y[idx]
        self._loss = self.train_step(self.p, x, y)


CONTENDER = TinygradNp
