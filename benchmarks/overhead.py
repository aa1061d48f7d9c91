"""The engine's own cost inside the batch-128 training loop.

Three steps are timed in one process, in rotated order, on the same batches: the tinygrad_np
contender, the hand-written NumPy contender, and a *replay*: plain NumPy making exactly the
array calls the engine makes for this step (the same allocations, the cross-entropy's saved
softmax parts, the same two-pass SGD update), with no tape, Tensors or checks. tinygrad_np minus
replay is what the engine's Python costs per step; replay minus hand-written is what its choice
of NumPy calls costs. The replay mirrors the engine by hand, so a test checks that it trains
the same parameters as the tinygrad_np contender.

    python benchmarks/overhead.py [--rounds 20] [--steps 100] [--threads 1]
    taskset -c 0 python benchmarks/overhead.py --also tinygrad_np_jit,jax   # more contenders
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common
from benchmarks.contenders import Contender, get, sgd_


class EngineReplay(Contender):
    """The tinygrad_np step's NumPy work, call for call, without the engine."""

    name = "replay"
    label = "NumPy replay of the engine's array work"

    def __init__(self, x: np.ndarray, y: np.ndarray, params: common.Params, lr: float) -> None:
        super().__init__(x, y, params, lr)
        self.x, self.y = x, y
        self.p = {k: v.copy() for k, v in params.items()}
        self._loss = float("nan")

    def step(self, idx: np.ndarray | None) -> None:
        x, y = (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])
        p = self.p
        # forward: linear (the bias added in place), relu (+ its mask), linear, cross_entropy
        hidden = np.matmul(x, p["W1"])
        np.add(hidden, p["b1"], out=hidden, casting="no")
        relu = np.maximum(hidden, 0)
        positive = relu > 0
        logits = np.matmul(relu, p["W2"])
        np.add(logits, p["b2"], out=logits, casting="no")
        n = logits.shape[0]
        if n and np.minimum.reduce(y) < 0:  # the label check
            raise ValueError("negative label")
        by_class = logits.T.copy()  # cross_entropy works class-major, (10, N)
        by_class -= np.maximum.reduce(by_class, axis=0)
        rows = np.arange(n)
        label_logits = by_class[y, rows]
        exp_shifted = np.exp(by_class, out=by_class)
        row_sums = np.add.reduce(exp_shifted, axis=0)
        loss = (np.add.reduce(np.log(row_sums)) - np.add.reduce(label_logits)) / n
        self._loss = float(loss)
        # backward, in the tape's reverse order
        d_logits = exp_shifted / row_sums
        d_logits[y, rows] -= 1
        d_logits *= np.array(1, logits.dtype) / n
        d_logits = d_logits.T
        grads = {"b2": np.add.reduce(d_logits, (0,)), "W2": relu.T @ d_logits}
        d_hidden = (d_logits @ p["W2"].T) * positive
        grads["b1"] = np.add.reduce(d_hidden, (0,))
        grads["W1"] = x.T @ d_hidden
        sgd_(p, grads, self.lr)

    def last_loss(self) -> float:
        return self._loss

    def params(self) -> common.Params:
        return self.p


def measure(
    rounds: int,
    steps: int,
    source: str = "mnist",
    names: tuple[str, ...] = ("numpy", "tinygrad_np", "replay"),
) -> dict[str, list[float]]:
    """Microseconds per step of each contender, one value per round (``names``: contenders of
    benchmarks/contenders, and ``replay``)."""
    data = common.prepare("float32", source)
    steppers: dict[str, Contender] = {}
    for name in names:
        make = EngineReplay if name == "replay" else get(name)
        steppers[name] = make(data.x_train, data.y_train, common.init_params("float32"), common.LR)
    rng = np.random.default_rng(common.SHUFFLE_SEED)
    for stepper in steppers.values():  # untimed: JAX compiles, tg.jit traces
        for idx in common.batch_slices(rng.permutation(len(data.y_train)), 128)[:2]:
            stepper.step(idx)
        stepper.sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        batches = common.batch_slices(rng.permutation(len(data.y_train)), 128)[:steps]
        turn = r % len(names)
        for name in names[turn:] + names[:turn]:
            start = time.perf_counter()
            for idx in batches:
                steppers[name].step(idx)
            steppers[name].sync()
            times[name].append((time.perf_counter() - start) / len(batches) * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100, help="batches per round")
    parser.add_argument("--threads", default="1", help="OPENBLAS_NUM_THREADS for the rerun")
    parser.add_argument("--data", choices=("mnist", "synthetic"), default="mnist")
    parser.add_argument(
        "--also",
        default="",
        help="more contenders timed in the same rounds, e.g. tinygrad_np_jit,jax (pin the "
        "process to one core, taskset -c 0, for JAX to use one)",
    )
    args = parser.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != args.threads:
        # BLAS reads its thread count once, at import: run again with it set
        env = {**os.environ, "OPENBLAS_NUM_THREADS": args.threads, "OMP_NUM_THREADS": args.threads}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    names = ("numpy", "tinygrad_np", "replay", *filter(None, args.also.split(",")))
    times = {k: np.array(v) for k, v in measure(args.rounds, args.steps, args.data, names).items()}
    hand, replay, tg = times["numpy"], times["replay"], times["tinygrad_np"]
    print(f"us per step, median over {args.rounds} rounds of {args.steps} batches of 128 (float32,")
    print(f"{args.threads} BLAS thread(s)); the differences are medians of per-round differences:")
    rows = [
        ("hand-written NumPy", hand, ""),
        ("replay", replay, f"replay - hand {np.median(replay - hand):+6.1f}"),
        ("tinygrad_np", tg, f"tinygrad_np - replay {np.median(tg - replay):+6.1f}"),
    ]
    for label, values, difference in rows:
        print(f"  {label:18s}  {np.median(values):7.1f}   {difference}".rstrip())
    print(f"  tinygrad_np / hand  {np.median(tg / hand):7.3f}")
    for name in names[3:]:
        ratios = times[name] / hand  # per round: the same batches, moments apart
        low, high = np.percentile(ratios, [25, 75])
        print(
            f"  {name:18s}  {np.median(times[name]):7.1f}   / hand {np.median(ratios):.3f} "
            f"(quartiles {low:.3f}-{high:.3f})"
        )


if __name__ == "__main__":
    main()
