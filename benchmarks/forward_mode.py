"""What forward mode and whole Jacobians cost on the MLP, against a plain forward pass.

Forward mode is computed by transposing the pullback (``tinygrad_np.linearize``), so a
``jvp`` costs a forward pass, a backward pass recorded on a second tape, and a sweep
back over that tape. This measures, on the 784-128-10 MLP loss in float32:

* time of ``loss``, ``value_and_grad``, ``jvp`` (random tangent for every parameter),
  ``linearize`` alone and one more product from a linearization, as ratios to the
  forward pass measured in the same run (medians of interleaved repeats);
* peak memory above the inputs (``tracemalloc``, which sees NumPy's allocations) of the
  same calls;
* ``jacrev`` and ``jacfwd`` of the logits (10) with respect to one image (784): 10
  backward sweeps against 784 forward ones.

at batch 128 and at the full training set (60,000 rows).

    python benchmarks/forward_mode.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinygrad_np as tg
from experiments import model


def _median_times(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall time of each call, the calls interleaved so that drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _peak_bytes(call: Callable[[], Any]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def _table(title: str, calls: dict[str, Callable[[], Any]], repeats: int) -> None:
    """Time, ratio to the first call (the forward pass) and peak memory of each call."""
    times = _median_times(calls, repeats)
    base = next(iter(times.values()))
    print(f"\n{title}")
    print("| call | time | ratio to forward | peak memory above inputs |")
    print("|---|---|---|---|")
    for name, call in calls.items():
        peak = _peak_bytes(call)
        print(f"| {name} | {times[name] * 1e3:.2f} ms | {times[name] / base:.2f}x | "
              f"{peak / 2**20:.2f} MiB |")  # fmt: skip


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(batch: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    params = model.init_params(rng)
    x = rng.random((batch, 784), dtype=np.float32)
    labels = rng.integers(0, 10, batch)
    tangent = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    _, f_jvp = tg.linearize(lambda p: model.loss(p, x, labels), params)

    calls = {
        "forward (loss)": lambda: model.loss(params, x, labels),
        "value_and_grad": lambda: tg.value_and_grad(model.loss)(params, x, labels),
        "jvp": lambda: tg.jvp(lambda p: model.loss(p, x, labels), (params,), (tangent,)),
        "linearize": lambda: tg.linearize(lambda p: model.loss(p, x, labels), params),
        "one more product from linearize": lambda: f_jvp(tangent),
    }
    _table(f"batch {batch}, float32 ({repeats} interleaved repeats, medians)", calls, repeats)


def measure_jacobians(repeats: int) -> None:
    rng = np.random.default_rng(0)
    params = model.init_params(rng)
    image = rng.random((1, 784), dtype=np.float32)

    def logits(x: Any) -> Any:
        return model.forward(params, x)[0]

    calls = {
        "forward (logits of one image)": lambda: logits(image),
        "jacrev (10 x 784)": lambda: tg.jacrev(logits)(image),
        "jacfwd (10 x 784)": lambda: tg.jacfwd(logits)(image),
    }
    title = f"Jacobian of the logits with respect to one image ({repeats} repeats, medians)"
    _table(title, calls, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, batch 128 only")
    args = parser.parse_args()
    print(f"CPU: {_cpu()}; numpy {np.__version__}")
    measure(128, repeats=5 if args.quick else 200)
    measure_jacobians(repeats=2 if args.quick else 10)
    if not args.quick:
        measure(60_000, repeats=7)


if __name__ == "__main__":
    main()
